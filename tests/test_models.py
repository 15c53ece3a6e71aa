"""mvf.models: the registry, offline loading of the embedded model, parity with transformers, clear errors."""

import json

import huggingface_hub
import pytest
import torch

from mvf import models
from mvf.cache import build_folder_atomically, sha256_file


def test_embedded_model_loads_offline_with_transformer_lens_hooks(model):
    assert model.cfg.n_layers == models.PROFILES["smollm2-135m"].n_layers
    assert model.cfg.d_model == models.PROFILES["smollm2-135m"].d_model
    tokens = torch.tensor([model.tokenizer("Monday, Tuesday, Wednesday,")["input_ids"]])
    logits, cache = model.run_with_cache(tokens, names_filter=["blocks.3.hook_resid_post", "blocks.0.hook_resid_pre"])
    assert cache["blocks.3.hook_resid_post"].shape == (1, tokens.shape[1], model.cfg.d_model)
    seen = []
    model.run_with_hooks(tokens, fwd_hooks=[("blocks.5.hook_resid_post", lambda act, hook: seen.append(act.shape))])
    assert seen == [(1, tokens.shape[1], model.cfg.d_model)]
    assert logits.shape[-1] == model.cfg.d_vocab


def test_logits_match_the_plain_transformers_model(model):
    tokens = torch.tensor([model.tokenizer("The museum is free to visit every Sunday in June.")["input_ids"]])
    with torch.no_grad():
        wrapped = model(tokens)
        plain = model.original_model(tokens).logits
    assert (wrapped - plain).abs().max().item() < 1e-3


def test_every_profile_is_described_with_its_gpu_memory(capsys):
    for name, profile in models.PROFILES.items():
        text = models.describe(name)
        assert f"{profile.n_layers} layers" in text and f"d_model {profile.d_model}" in text
        assert profile.gpu_memory_gib > profile.weights_gib
    assert "does not fit" in models.describe("llama-3-8b")
    assert capsys.readouterr().out


def test_unknown_model_lists_the_valid_names():
    with pytest.raises(ValueError, match="smollm2-135m"):
        models.load_model("gpt-5")


def test_offline_hub_model_names_the_way_forward():
    """The suite runs with HF_HUB_OFFLINE=1 (conftest): the message says the hub is switched off, in two lines,
    without the library's traceback."""
    with pytest.raises(models.HubUnavailableError, match=r"(?s)switched off \(HF_HUB_OFFLINE=1\).*smollm2-135m.*path=") as caught:
        models.load_model("gpt2-small", device="cpu")
    assert len(str(caught.value).splitlines()) == 2 and caught.value.__suppress_context__


def _boot_raising(error: OSError):
    def boot(*args, **kwargs):
        raise error

    return staticmethod(boot)


def _wrapped(outer: str, inner: Exception) -> OSError:
    """An OSError raised from ``inner``, as transformers raises the hub's errors."""
    try:
        raise OSError(outer) from inner
    except OSError as error:
        return error


def _gated() -> Exception:
    from huggingface_hub import errors

    try:  # the HTTP library huggingface-hub answers with: httpx2 in the pinned release, httpx in 1.3 (make lowest)
        import httpx2 as http
    except ImportError:
        import httpx as http
    response = http.Response(403, request=http.Request("GET", "https://huggingface.co/meta-llama/Meta-Llama-3-8B"))
    return errors.GatedRepoError("403 Client Error", response=response)


@pytest.mark.parametrize(("name", "cause", "environment", "expected"), [
    ("llama-3-8b", lambda: _wrapped("You are trying to access a gated repo.", _gated()), {},
     r"gated on the Hugging Face hub and no token is set.\nAccept its licence at https://huggingface.co/meta-llama.*"
     r"on Colab a secret named HF_TOKEN"),
    ("llama-3-8b", lambda: _wrapped("You are trying to access a gated repo.", _gated()), {"HF_TOKEN": "hf_x"},
     "the token's account has no access"),
    ("mistral-7b", lambda: _wrapped("We couldn't connect to 'https://huggingface.co'", ConnectionError("refused")), {},
     r"hub is unreachable \(no network\).\nOffline, load_model\('smollm2-135m'\)"),
    ("mistral-7b", lambda: OSError("disk quota exceeded"), {}, "OSError: disk quota exceeded"),
])  # fmt: skip
def test_each_hub_failure_names_its_cause_and_the_fix(monkeypatch, tmp_path, name, cause, environment, expected):
    monkeypatch.delenv("HF_HUB_OFFLINE")
    monkeypatch.delenv("HF_TOKEN", raising=False)
    monkeypatch.setattr(huggingface_hub.constants, "HF_TOKEN_PATH", str(tmp_path / "no-token"))  # no login() here
    for key, value in environment.items():
        monkeypatch.setenv(key, value)
    monkeypatch.setattr(models.TransformerBridge, "boot_transformers", _boot_raising(cause()))
    with pytest.raises(models.HubUnavailableError, match=expected) as caught:
        models.load_model(name, device="cpu")
    assert len(str(caught.value).splitlines()) == 2 and caught.value.__cause__ is None


def test_a_token_saved_by_login_counts_as_a_token(monkeypatch, tmp_path):
    monkeypatch.delenv("HF_HUB_OFFLINE")
    monkeypatch.delenv("HF_TOKEN", raising=False)
    (tmp_path / "token").write_text("hf_saved_by_login")
    monkeypatch.setattr(huggingface_hub.constants, "HF_TOKEN_PATH", str(tmp_path / "token"))
    monkeypatch.setattr(models.TransformerBridge, "boot_transformers",
                        _boot_raising(_wrapped("You are trying to access a gated repo.", _gated())))  # fmt: skip
    with pytest.raises(models.HubUnavailableError, match="the token's account has no access"):
        models.load_model("llama-3-8b", device="cpu")


def test_the_librarys_traceback_is_kept_on_request(monkeypatch):
    monkeypatch.setenv("MVF_TRACEBACK", "1")
    with pytest.raises(models.HubUnavailableError) as caught:
        models.load_model("gpt2-small", device="cpu")
    assert isinstance(caught.value.__cause__, OSError)


def test_no_gpu_and_a_gpu_too_small_are_named(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    with pytest.raises(models.DeviceError, match="torch sees no GPU.\nOn Colab: Runtime"):
        models.load_model("mistral-7b", device="cuda")
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "get_device_properties", lambda index: type("T4", (), {"total_memory": 15 * 2**30}))
    monkeypatch.setattr(torch.cuda, "get_device_name", lambda index: "Tesla T4")
    with pytest.raises(models.DeviceError, match=r"mistral-7b needs about \d+(\.\d+)? GiB .* \(Tesla T4\) has 15 GiB"):
        models.load_model("mistral-7b", device="cuda")


def test_missing_local_path_is_reported(tmp_path):
    with pytest.raises(FileNotFoundError, match="no model at"):
        models.load_model("mistral-7b", path=tmp_path / "absent")


def test_local_directory_is_accepted_for_a_hub_profile(model, tmp_path):
    from transformers import LlamaConfig, LlamaForCausalLM

    config = LlamaConfig(
        vocab_size=len(model.tokenizer), hidden_size=32, intermediate_size=64, num_hidden_layers=2,
        num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=64,
    )  # fmt: skip
    torch.manual_seed(0)
    LlamaForCausalLM(config).save_pretrained(tmp_path)
    model.tokenizer.save_pretrained(tmp_path)
    tiny = models.load_model("llama-3-8b", device="cpu", dtype="float32", path=tmp_path)
    assert tiny.cfg.n_layers == 2 and tiny.cfg.d_model == 32
    assert "blocks.1.hook_resid_post" in tiny.hook_dict


def test_converted_copy_holds_the_gguf_weights(model):
    from transformers import AutoModelForCausalLM

    gguf = models.embedded_gguf(models.profile("smollm2-135m"))
    direct = AutoModelForCausalLM.from_pretrained(gguf.parent, gguf_file=gguf.name, dtype=torch.float32).state_dict()
    converted = AutoModelForCausalLM.from_pretrained(models.converted_gguf(gguf), dtype=torch.float32).state_dict()
    assert direct.keys() == converted.keys()
    assert all(torch.equal(direct[name], converted[name]) for name in direct)


def test_damaged_converted_copy_is_rebuilt(tmp_path, monkeypatch):
    gguf = tmp_path / "tiny.gguf"
    gguf.write_bytes(b"not really a gguf")
    monkeypatch.setattr(models, "CACHE_DIR", tmp_path / "cache")
    calls = []

    def fake_convert(path, folder):
        calls.append(path)
        (folder / "model.safetensors").write_bytes(b"weights")
        (folder / "manifest.json").write_text(json.dumps({"sha256": {"model.safetensors": sha256_file(folder / "model.safetensors")}}))

    monkeypatch.setattr(models, "_convert_gguf", fake_convert)
    folder = models.converted_gguf(gguf)
    assert models.converted_gguf(gguf) == folder and len(calls) == 1
    (folder / "model.safetensors").write_bytes(b"weightz")  # same size as before: only the checksum can tell
    assert models.converted_gguf(gguf) == folder and len(calls) == 2
    assert (folder / "model.safetensors").read_bytes() == b"weights"
    (folder / "manifest.json").write_text("{")
    models.converted_gguf(gguf)
    assert len(calls) == 3 and not [p for p in folder.parent.iterdir() if p.name.startswith(".")]


def test_failed_conversion_leaves_nothing_behind(tmp_path):
    target = tmp_path / "converted"

    def broken(folder):
        (folder / "half.bin").write_bytes(b"x")
        raise RuntimeError("interrupted")

    with pytest.raises(RuntimeError, match="interrupted"):
        build_folder_atomically(target, broken)
    assert list(tmp_path.iterdir()) == []
