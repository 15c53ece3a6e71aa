"""mvf.models: the registry, offline loading of the embedded model, parity with transformers, clear errors."""

import json

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
    with pytest.raises(models.HubUnavailableError, match="hub is unreachable.*smollm2-135m.*path="):
        models.load_model("gpt2-small", device="cpu")


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
