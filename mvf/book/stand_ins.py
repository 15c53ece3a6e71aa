"""Random-weight stand-ins of the paper's models and SAEs, served from a local Hugging Face hub cache.

A stand-in has the profile's architecture and tokenizer
(``mvf.book.paper_tokenizers``) and sits in a hub cache folder exactly where a
download would put it, so ``models.load_model(name)`` and ``sae.load_sae``
run their real code paths with ``HF_HUB_CACHE`` pointing there and
``HF_HUB_OFFLINE=1``, on a machine that has neither the weights nor a network.
``size="tiny"`` (d_model 64, at most 13 layers) runs every chapter on a CPU in the tests;
``size="full"`` has the real dimensions, to measure memory and time on a GPU
(``bench/gpu_smoke.py``). Their outputs mean nothing: every accuracy is at chance.
"""

from __future__ import annotations

import json
import tempfile
from pathlib import Path

import numpy as np
import torch

from mvf.book import paper_tokenizers
from mvf.cache import build_folder_atomically
from mvf.models import profile
from mvf.progress import library_bars_off
from mvf.sae import RELEASES

REVISION = "0" * 40  # the snapshot's commit hash; any 40 hex digits will do
# The released configurations (config.json on the hub) that matter for the code paths.
FULL = {
    "mistral-7b": dict(model_type="mistral", hidden_size=4096, intermediate_size=14336, num_attention_heads=32,
                       num_key_value_heads=8, max_position_embeddings=32768, rope_theta=10000.0, sliding_window=4096,
                       rms_norm_eps=1e-5, tie_word_embeddings=False),
    "llama-3-8b": dict(model_type="llama", hidden_size=4096, intermediate_size=14336, num_attention_heads=32,
                       num_key_value_heads=8, max_position_embeddings=8192, rope_theta=500000.0, rms_norm_eps=1e-5,
                       tie_word_embeddings=False),
    "gpt2-small": dict(model_type="gpt2", n_embd=768, n_head=12, n_positions=1024, n_inner=None),
    "gemma-2-2b": dict(model_type="gemma2", hidden_size=2304, intermediate_size=9216, num_attention_heads=8,
                       num_key_value_heads=4, head_dim=256, query_pre_attn_scalar=256, max_position_embeddings=8192,
                       sliding_window=4096, final_logit_softcapping=30.0, attn_logit_softcapping=50.0,
                       rms_norm_eps=1e-6, tie_word_embeddings=True),
}  # fmt: skip
TINY = {
    "mistral-7b": dict(hidden_size=64, intermediate_size=128, num_attention_heads=4, num_key_value_heads=2),
    "llama-3-8b": dict(hidden_size=64, intermediate_size=128, num_attention_heads=4, num_key_value_heads=2),
    "gpt2-small": dict(n_embd=64, n_head=4),
    "gemma-2-2b": dict(hidden_size=64, intermediate_size=128, num_attention_heads=4, num_key_value_heads=2, head_dim=16,
                       query_pre_attn_scalar=16),
}  # fmt: skip
# Enough for every layer a profile names (the SAE hooks at layers 7, 8 and 12, the off-circle layer 5).
TINY_LAYERS = 13
SIZES = ("tiny", "full")


def snapshot(cache: Path, repo_id: str) -> Path:
    """The snapshot folder of ``repo_id`` in the hub cache ``cache``, with ``refs/main`` pointing at it."""
    repo = Path(cache) / f"models--{repo_id.replace('/', '--')}"
    (repo / "refs").mkdir(parents=True, exist_ok=True)
    (repo / "refs" / "main").write_text(REVISION)
    return repo / "snapshots" / REVISION


def model_config(name: str, size: str, tokenizer):
    """The transformers config of ``name``'s stand-in: real or tiny widths and depth, the tokenizer's ids."""
    from transformers import AutoConfig

    if size not in SIZES:
        raise ValueError(f"size must be one of {SIZES}, not {size!r}.")
    if name not in FULL:
        raise ValueError(f"no stand-in for {name!r}; choose one of {sorted(FULL)}.")
    settings = {**FULL[name], **(TINY[name] if size == "tiny" else {})}
    n_layers = profile(name).n_layers if size == "full" else min(profile(name).n_layers, TINY_LAYERS)
    layers = {"n_layer" if name == "gpt2-small" else "num_hidden_layers": n_layers}
    # Full size keeps the released vocabulary (Gemma's 256 000 is larger than its stand-in tokenizer's).
    vocab = max(len(tokenizer), 256_000 if name == "gemma-2-2b" and size == "full" else 0)
    ids = {"vocab_size": vocab, "bos_token_id": tokenizer.bos_token_id, "eos_token_id": tokenizer.eos_token_id}
    return AutoConfig.for_model(**settings, **layers, **ids)


def serve_model(name: str, cache: Path, size: str = "tiny", seed: int = 0, device: str = "cpu") -> Path:
    """Write ``name``'s random-weight stand-in (and its tokenizer) where the hub would cache ``profile(name).hf_id``.

    ``full`` size builds the weights in the profile's dtype (bfloat16 for the
    7–8 B models: about 15 GiB of disk), drawn on ``device`` (a GPU draws them
    much faster than a CPU). A stand-in already served with the same size
    and seed is reused.
    """
    from transformers import AutoModelForCausalLM

    folder = snapshot(cache, profile(name).hf_id)
    served = folder / "stand_in.json"
    if served.exists() and json.loads(served.read_text()) == {"model": name, "size": size, "seed": seed}:
        return folder  # written whole by an earlier call (the folder is renamed into place only once complete)

    def build(temporary: Path) -> None:
        with tempfile.TemporaryDirectory() as scratch:
            tokenizer = paper_tokenizers.for_profile(name, Path(scratch))
        torch.manual_seed(seed)
        dtype = getattr(torch, profile(name).dtype) if size == "full" else torch.float32
        with torch.device(device):
            model = AutoModelForCausalLM.from_config(model_config(name, size, tokenizer), dtype=dtype)
        with library_bars_off():
            model.save_pretrained(temporary)
        tokenizer.save_pretrained(temporary)
        (temporary / "stand_in.json").write_text(json.dumps({"model": name, "size": size, "seed": seed}))

    build_folder_atomically(folder, build)
    return folder


def serve_sae(release: str, cache: Path, d_in: int, d_sae: int, seed: int = 0) -> Path:
    """Write a random SAE where the hub would cache ``release``'s book SAE, in that release's file layout.

    SAELens-format releases (``gpt2-small-res-jb``, ``mistral-7b-res-wg``)
    store ``cfg.json`` and ``sae_weights.safetensors`` in the SAE's folder, and
    any width works. Gemma Scope stores ``params.npz``, and SAELens reads its
    width from the folder name and its ``d_in`` from the model name, so a
    Gemma Scope stand-in must be full size (16 384 × 2 304).
    """
    from sae_lens import StandardSAE, StandardSAEConfig
    from sae_lens.loading.pretrained_saes_directory import get_pretrained_saes_directory

    entry = get_pretrained_saes_directory()[release]
    path = entry.saes_map[RELEASES[release].sae_id]
    folder = snapshot(cache, entry.repo_id) / path
    generator = np.random.default_rng(seed)
    if entry.conversion_func == "gemma_2":
        weights = {"w_enc": generator.standard_normal((d_in, d_sae), dtype=np.float32) / np.sqrt(d_in),
                   "w_dec": generator.standard_normal((d_sae, d_in), dtype=np.float32) / np.sqrt(d_in),
                   "b_enc": np.zeros(d_sae), "b_dec": np.zeros(d_in), "threshold": np.full(d_sae, 0.05)}  # fmt: skip
        build_folder_atomically(folder, lambda temporary: np.savez(
            temporary / "params.npz", **{key: value.astype(np.float32) for key, value in weights.items()}))
        return folder
    if entry.conversion_func is not None:
        raise ValueError(f"{release} uses SAELens' {entry.conversion_func!r} converter, which has no stand-in.")
    if d_sae < 2 * d_in:
        raise ValueError(f"d_sae must be at least 2 * d_in = {2 * d_in}: the stand-in reconstructs with ±e_i features.")
    config = StandardSAEConfig(d_in=d_in, d_sae=d_sae, dtype="float32", device="cpu")
    config.metadata.hook_name = RELEASES[release].hook
    config.metadata.model_name = RELEASES[release].model
    stand_in = StandardSAE(config)
    # Features ±e_i reconstruct every input exactly (ReLU(x) − ReLU(−x) = x), so the chapters' check that the SAE
    # explains the activations passes and the pipeline after it runs; the other features are random and never fire.
    identity = torch.eye(d_in)
    extra = torch.from_numpy(generator.standard_normal((d_sae - 2 * d_in, d_in), dtype=np.float32))
    with torch.no_grad():
        stand_in.W_enc.copy_(torch.cat([identity, -identity, torch.zeros(d_in, d_sae - 2 * d_in)], dim=1))
        stand_in.W_dec.copy_(torch.cat([identity, -identity, extra / extra.norm(dim=1, keepdim=True)]))
        stand_in.b_enc.zero_()
        stand_in.b_dec.zero_()
    build_folder_atomically(folder, stand_in.save_model)
    return folder
