"""Sparse autoencoders: the paper's pretrained SAEs through SAELens, and the embedded model's own SAE.

Pretrained releases live in a registry (data, not code paths). The embedded
SAE ships in ``mvf/data/sae-smollm2/`` in SAELens' format (``cfg.json`` +
``sae_weights.safetensors``) beside ``provenance.json``, which records the
hook, the activation mode, the seed, the command that retrains it and its
measured quality.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import NamedTuple

import numpy as np
import torch
from sae_lens import SAE

from mvf.models import PROFILES, HubUnavailableError, profile, why_not_loaded
from mvf.progress import library_bars_off

EMBEDDED_SAE = Path(__file__).parent / "data" / "sae-smollm2"
EMBEDDED = "embedded"  # the release name profiles use for the SAE shipped in EMBEDDED_SAE
EMBEDDED_MODEL = "smollm2-135m"
# Attention-sink tokens ("massive activations": each row's first token, and about 1.6% of the others in SmolLM2's
# layer 5) have norms far above the rest and would dominate the SAE's squared error. Tokens whose norm exceeds
# this many times the median are left out of training, evaluation and splicing.
MASSIVE_NORM_RATIO = 3.0


@dataclass(frozen=True)
class PretrainedRelease:
    """A SAELens release used by the paper (or a newer model), with the hook the book uses it at."""

    release: str
    model: str
    sae_id: str
    hook: str
    description: str
    expected_fve: float


RELEASES: dict[str, PretrainedRelease] = {
    r.release: r
    for r in (
        PretrainedRelease(
            "gpt2-small-res-jb", "gpt2-small", "blocks.7.hook_resid_pre", "blocks.7.hook_resid_pre",
            "GPT-2 small residual SAEs (J. Bloom), 24 576 features; the paper's discovery SAE is layer 7", 0.9,
        ),
        PretrainedRelease(
            "mistral-7b-res-wg", "mistral-7b", "blocks.8.hook_resid_pre", "blocks.8.hook_resid_pre",
            "Mistral 7B residual SAEs (W. Gurnee); the paper uses layer 8", 0.8,
        ),
        PretrainedRelease(
            "gemma-scope-2b-pt-res-canonical", "gemma-2-2b", "layer_12/width_16k/canonical", "blocks.12.hook_resid_post",
            "Gemma Scope residual SAEs for Gemma 2 2B (JumpReLU), canonical L0 per width", 0.8,
        ),
    )  # fmt: skip
}


# Feature ids the paper reports for its circular clusters (GPT-2 small, layer 7; methods.md §2).
PAPER_FEATURES: dict[str, dict[str, list[int]]] = {
    "gpt2-small-res-jb": {
        "days": [2592, 4445, 4663, 4733, 6531, 8179, 9566, 20927, 24185],
        "months": [3977, 4140, 5993, 7299, 9104, 9401, 10449, 11196, 12661, 14715, 17068, 17528, 19589, 21033, 22043,
                   23304],
        "years": [1052, 2753, 4427, 6382, 8314, 9576, 9606, 13551, 19734, 20349],
    }
}  # fmt: skip


def paper_features(chosen: ChosenSAE) -> dict[str, list[int]]:
    """The paper's feature ids of its circular clusters in ``chosen``'s SAE.

    ``{}`` when the paper lists none for the release, or when the SAE is
    narrower than the ids reach: then it is not the release's own (a
    stand-in, a retrained SAE) and the ids would point at other features.
    """
    features = PAPER_FEATURES.get(chosen.name, {})
    widest = max((max(ids) for ids in features.values()), default=-1)
    return features if widest < chosen.sae.cfg.d_sae else {}


def load_sae(release: str, sae_id: str | None = None, device: str = "cpu") -> SAE:
    """A pretrained SAE from a SAELens release (``sae_id`` defaults to the book's choice for it).

    When the hub cannot serve it, the error says why (``models.why_not_loaded``)
    and names the embedded SAE (``load_embedded_sae()``) and
    ``load_sae_from_disk(path)`` as ways forward.
    """
    if release not in RELEASES:
        raise ValueError(f"unknown SAE release {release!r}; the book knows {sorted(RELEASES)}.")
    sae_id = sae_id or RELEASES[release].sae_id
    try:
        with library_bars_off():
            return SAE.from_pretrained(release, sae_id, device=device)
    except OSError as error:
        alternative = ("Offline, use load_embedded_sae() (SmolLM2's SAE, shipped with mvf) or load_sae_from_disk(path) "
                       "on a folder holding cfg.json and sae_weights.safetensors.")  # fmt: skip
        raise HubUnavailableError(why_not_loaded(error, f"the SAE {release}/{sae_id}", alternative)) from (
            error if os.environ.get("MVF_TRACEBACK") else None
        )


def load_sae_from_disk(path: str | Path, device: str = "cpu") -> SAE:
    """An SAE saved in SAELens' format (``cfg.json`` + ``sae_weights.safetensors``) in ``path``."""
    path = Path(path)
    missing = [name for name in ("cfg.json", "sae_weights.safetensors") if not (path / name).exists()]
    if missing:
        raise FileNotFoundError(f"{path} has no {', '.join(missing)}: not an SAE saved with SAELens' save_model.")
    return SAE.load_from_disk(path, device=device)


def load_embedded_sae(device: str = "cpu") -> tuple[SAE, dict]:
    """The embedded model's SAE and its provenance (hook, activation mode, seed, quality)."""
    return load_sae_from_disk(EMBEDDED_SAE, device=device), json.loads((EMBEDDED_SAE / "provenance.json").read_text())


@dataclass(frozen=True)
class ChosenSAE:
    """The SAE a chapter uses for a model: where it reads (``hook``), what it should explain, and its provenance."""

    sae: SAE
    name: str
    hook: str
    expected_fve: float
    provenance: dict | None


def sae_for_model(model_name: str, d_model: int, release: str | None = None, device: str = "cpu") -> ChosenSAE:
    """The SAE for the loaded ``model_name``: ``release`` if given, else the profile's (``ModelProfile.sae_release``).

    ``ValueError`` when the release was trained on another model, when the
    profile has no SAE, or when the SAE's width is not ``d_model``, the loaded
    model's (``model.cfg.d_model``; a local copy need not have the profile's).
    """
    p = profile(model_name)
    release = release or p.sae_release
    if release is None:
        raise ValueError(f"no SAE is registered for {model_name!r}; pass one of {sorted(RELEASES)} with its model, "
                         f"or use a model whose profile names one: {sorted(n for n in PROFILES if PROFILES[n].sae_release)}.")
    if release == EMBEDDED:
        if model_name != EMBEDDED_MODEL:
            raise ValueError(f"the embedded SAE was trained on {EMBEDDED_MODEL}, not {model_name!r}.")
        loaded, provenance = load_embedded_sae(device)
        fve = provenance["quality_on_held_out"]["fraction_variance_explained"]
        chosen = ChosenSAE(loaded, EMBEDDED, provenance["hook"], fve, provenance)
    else:
        if release in RELEASES and RELEASES[release].model != model_name:
            raise ValueError(f"the SAE release {release!r} was trained on {RELEASES[release].model}, not {model_name!r}: "
                             f"set MODEL = {RELEASES[release].model!r}, or SAE_RELEASE = None for {model_name}'s own.")
        loaded = load_sae(release, device=device)
        chosen = ChosenSAE(loaded, release, RELEASES[release].hook, RELEASES[release].expected_fve, None)
    if chosen.sae.cfg.d_in != d_model:
        raise ValueError(f"{chosen.name} reads {chosen.sae.cfg.d_in}-d activations but the loaded {model_name} has "
                         f"d_model {d_model}: load the model this SAE was trained on.")
    return chosen


def _norms(activations: np.ndarray, chunk: int = 1 << 16) -> np.ndarray:
    # float32 in chunks: float16 squares overflow, and a float32 copy of a whole corpus would not fit.
    return np.concatenate([np.linalg.norm(activations[i : i + chunk].astype(np.float32), axis=1)
                           for i in range(0, len(activations), chunk)])  # fmt: skip


def held_out_rows(n_rows: int, count: int, seed: int) -> np.ndarray:
    """The corpus rows an SAE is measured on and not trained on: ``count`` of ``n_rows``, drawn with ``seed``, sorted.

    Drawn from the whole corpus, whose sources are stored one after another.
    """
    if not 0 < count < n_rows:
        raise ValueError(f"cannot hold out {count} of {n_rows} rows; hold out at least one and leave some to train on.")
    return np.sort(np.random.default_rng(seed).choice(n_rows, count, replace=False))


def massive_norm_threshold(activations: np.ndarray) -> float:
    """The norm above which a token of ``(n, d)`` activations counts as massive: the ratio times the median."""
    return float(MASSIVE_NORM_RATIO * np.median(_norms(activations)))


def ordinary_tokens(activations: np.ndarray, seq_len: int, max_norm: float) -> np.ndarray:
    """Mask ``(n,)`` of the rows of ``(n, d)`` corpus activations (rows of ``seq_len`` tokens, flattened) that are
    neither the first token of their row nor above ``max_norm``."""
    if len(activations) % seq_len:
        raise ValueError(f"{len(activations)} activations are not whole rows of seq_len={seq_len}.")
    first = np.arange(len(activations)) % seq_len == 0
    return ~first & (_norms(activations) <= max_norm)


def sparse_codes(sae: SAE, activations: np.ndarray, batch_size: int = 4096):
    """SAE feature activations of ``(n, d_in)`` activations as a ``scipy.sparse.csr_matrix`` ``(n, d_sae)``."""
    from scipy import sparse

    blocks = []
    with torch.no_grad():
        for start in range(0, len(activations), batch_size):
            chunk = torch.as_tensor(activations[start : start + batch_size], dtype=torch.float32, device=sae.device)
            blocks.append(sparse.csr_matrix(sae.encode(chunk).cpu().numpy()))
    return sparse.vstack(blocks, format="csr")


class EncodedSample(NamedTuple):
    """A corpus sample through the model and its SAE: ``codes`` ``(n, d_sae)`` sparse, the ``strings`` of those n
    tokens, their activations ``(n, d_in)``, and the share of the sample's tokens ``left_out`` (first tokens of rows
    and massive-norm tokens)."""

    codes: object
    strings: list[str]
    activations: np.ndarray
    left_out: float


def encode_sample(model, model_name: str, chosen: ChosenSAE, texts: list[str], cache_dir, seq_len: int = 128) -> EncodedSample:
    """Encode ``texts`` as the discovery chapter does: activations at the SAE's hook (cached under ``cache_dir``), in
    rows of ``seq_len`` tokens, without each row's first token and the massive-norm tokens, then the SAE's codes."""
    from mvf import activations, tokens

    acts = activations.collect_corpus(model, model_name, texts, chosen.hook, cache_dir, seq_len=seq_len)
    token_ids = activations.tokenize_corpus(model.tokenizer, texts, seq_len, tokens.prepends_bos(model)).reshape(-1)
    max_norm = chosen.provenance["max_norm"] if chosen.provenance else massive_norm_threshold(acts)
    keep = ordinary_tokens(acts, seq_len, max_norm)
    strings = [model.tokenizer.decode([t]) for t in token_ids[keep].tolist()]
    return EncodedSample(sparse_codes(chosen.sae, acts[keep]), strings, acts[keep], float(1 - keep.mean()))


def quality(sae: SAE, activations: np.ndarray, batch_size: int = 4096) -> dict[str, float]:
    """L0, fraction of variance explained and fraction of dead features on held-out activations ``(n, d_in)``."""
    fired = torch.zeros(sae.cfg.d_sae, dtype=torch.bool)
    l0 = squared_error = 0.0
    x = torch.as_tensor(activations, dtype=torch.float32)
    with torch.no_grad():
        for start in range(0, len(x), batch_size):
            chunk = x[start : start + batch_size].to(sae.device)
            codes = sae.encode(chunk)
            squared_error += ((sae.decode(codes) - chunk) ** 2).sum().item()
            l0 += (codes > 0).sum().item()
            fired |= (codes > 0).any(dim=0).cpu()
    total_variance = ((x - x.mean(dim=0)) ** 2).sum().item()
    return {
        "l0": l0 / len(x),
        "fraction_variance_explained": 1 - squared_error / total_variance,
        "fraction_dead": 1 - fired.float().mean().item(),
    }


def check_activation_mode(sae: SAE, activations: np.ndarray, expected_fve: float, tolerance: float = 0.15) -> float:
    """The SAE's variance explained on ``(n, d_in)`` activations; ``ValueError`` if far below what it should reach.

    An SAE fed activations from the wrong weight processing (a bridge without
    compatibility mode for an SAE trained on HookedTransformer's processed
    weights, or the reverse) fails silently otherwise.
    """
    measured = quality(sae, activations)["fraction_variance_explained"]
    if measured < expected_fve - tolerance:
        raise ValueError(
            f"the SAE explains {measured:.2f} of the variance here but should explain about {expected_fve:.2f}: the "
            "activations probably come from the wrong activation mode. Load the model with the profile's "
            "compatibility_mode (mvf.models.load_model does) and use the hook the SAE was trained on."
        )
    return measured


def spliced_loss(model, sae: SAE, hook: str, tokens: torch.Tensor, max_norm: float, batch_size: int = 8) -> dict[str, float]:
    """Mean next-token loss of ``tokens`` ``(n, seq_len)`` without and with the SAE's reconstruction at ``hook``.

    The reconstruction replaces ordinary tokens only (see :func:`ordinary_tokens`);
    first tokens and massive ones pass through unchanged, as in training.
    """

    def splice(activation, hook):  # noqa: ARG001 - TransformerLens passes the hook point
        keep = activation.float().norm(dim=-1, keepdim=True) <= max_norm
        keep[:, 0] = False
        return torch.where(keep, sae.decode(sae.encode(activation.float())).to(activation.dtype), activation)

    clean = spliced = 0.0
    with torch.no_grad():
        for start in range(0, len(tokens), batch_size):
            batch = tokens[start : start + batch_size].to(model.cfg.device)
            clean += model(batch, return_type="loss").item() * len(batch)
            spliced += model.run_with_hooks(batch, return_type="loss", fwd_hooks=[(hook, splice)]).item() * len(batch)
    return {"loss_clean": clean / len(tokens), "loss_with_sae": spliced / len(tokens)}
