"""The stand-ins' configurations agree with the profiles, and the paper's tokenizers are the real ones."""

import pytest

from mvf import models, sae
from mvf.book import paper_tokenizers, stand_ins


@pytest.fixture(scope="module")
def tokenizers(tmp_path_factory):
    return {name: paper_tokenizers.for_profile(name, tmp_path_factory.mktemp(name)) for name in stand_ins.FULL}


@pytest.mark.parametrize("name", sorted(stand_ins.FULL))
def test_full_size_is_the_profile_and_tiny_keeps_what_the_chapters_need(tokenizers, name):
    tokenizer, p = tokenizers[name], models.profile(name)
    full = stand_ins.model_config(name, "full", tokenizer)
    tiny = stand_ins.model_config(name, "tiny", tokenizer)
    assert (full.hidden_size, full.num_hidden_layers) == (p.d_model, p.n_layers)
    assert tiny.hidden_size == 64 and tiny.num_hidden_layers == min(p.n_layers, stand_ins.TINY_LAYERS)
    assert tiny.bos_token_id == tokenizer.bos_token_id is not None
    assert len(tokenizer) <= tiny.vocab_size <= full.vocab_size
    sae_hooks = [sae.RELEASES[p.sae_release].hook] if p.sae_release in sae.RELEASES else []
    assert max([p.off_circle_layer, *(int(hook.split(".")[1]) for hook in sae_hooks)]) < tiny.num_hidden_layers


def test_the_tokenizers_are_the_papers(tokenizers):
    assert tokenizers["gpt2-small"]("Hello world")["input_ids"] == [15496, 995]  # GPT-2's ids, as the hub's tokenizer.json
    assert len(tokenizers["gpt2-small"]) == 50257 and len(tokenizers["mistral-7b"]) == 32000
    assert tokenizers["mistral-7b"].bos_token == "<s>" and tokenizers["gemma-2-2b"].bos_token == "<bos>"


def test_bad_requests_are_refused(tokenizers, tmp_path):
    with pytest.raises(ValueError, match="size must be one of"):
        stand_ins.model_config("mistral-7b", "huge", tokenizers["mistral-7b"])
    with pytest.raises(ValueError, match="no stand-in for 'smollm2-135m'"):
        stand_ins.model_config("smollm2-135m", "tiny", tokenizers["mistral-7b"])
    with pytest.raises(ValueError, match="at least 2 \\* d_in = 128"):
        stand_ins.serve_sae("gpt2-small-res-jb", tmp_path, d_in=64, d_sae=100)
    with pytest.raises(ValueError, match="no offline tokenizer"):
        paper_tokenizers.for_profile("smollm2-135m", tmp_path)


def test_a_served_stand_in_is_reused_and_another_seed_replaces_it(tmp_path):
    folder = stand_ins.serve_model("gpt2-small", tmp_path)
    weights = next(folder.glob("*.safetensors"))
    first = weights.stat().st_mtime_ns
    assert stand_ins.serve_model("gpt2-small", tmp_path) == folder and weights.stat().st_mtime_ns == first
    stand_ins.serve_model("gpt2-small", tmp_path, seed=1)
    assert next(folder.glob("*.safetensors")).stat().st_mtime_ns != first
