"""Collect residual-stream activations: at chosen words of prompts, or at every token of a corpus.

Both stream to ``.npy`` shards in a cache folder keyed by the model's weights
(a fingerprint), the hooks, the exact token ids fed to the model and the settings:
one shard per block of corpus rows, or per batch of prompts. Each shard is
written atomically (temporary file, then ``os.replace``) and listed in a
manifest with its shape and SHA-256; on read every shard is re-validated, and
a missing or corrupted one is recomputed. An interrupted run resumes from the
shards already on disk. Prompt sets are cached only when a ``cache_dir`` is
given (the chapters use ``PROMPT_CACHE``, and ``CORPUS_CACHE`` for corpora).
"""

from __future__ import annotations

import hashlib
import json
import os
import re
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch
from tqdm.std import tqdm  # text bars on stderr: a notebook widget would not render in the book

from mvf import tokens as tokens_
from mvf.cache import CACHE_DIR, sha256_file, write_atomically

PROMPT_CACHE = CACHE_DIR / "prompt-activations"
CORPUS_CACHE = CACHE_DIR / "corpus-activations"
_BLOCK_HOOK = re.compile(r"^blocks\.(\d+)\.(.+)$")
# What the shards of each cache hold: part of the cache key, so that a change of precision is a new cache.
PROMPT_DTYPE, CORPUS_DTYPE = "float32", "float16"


def check_hook(model, hook: str) -> int:
    """Validate a hook name against the model and return its layer (-1 for hooks outside the blocks)."""
    match = _BLOCK_HOOK.match(hook)
    if match:
        layer = int(match.group(1))
        if layer >= model.cfg.n_layers:
            raise ValueError(
                f"layer {layer} in {hook!r} is out of range: this model has layers 0..{model.cfg.n_layers - 1}."
            )
    if hook not in model.hook_dict:
        sites = sorted({_BLOCK_HOOK.sub(r"blocks.{L}.\2", name) for name in model.hook_dict if ".hook_resid" in name})
        raise ValueError(f"unknown hook {hook!r}; residual-stream hooks are {sites} (e.g. 'blocks.3.hook_resid_post').")
    return int(match.group(1)) if match else -1


def collect_at_words(
    model,
    prompts: Sequence[str],
    words: Sequence[str],
    hooks: Sequence[str],
    batch_size: int = 32,  # pragma: no mutate (the batch size changes the speed, not the activations)
    cache_dir: str | os.PathLike | None = None,
) -> dict[str, torch.Tensor]:
    """Activations at the last token of ``words[i]`` in ``prompts[i]``: ``{hook: (n_prompts, d_model)}``."""
    if len(prompts) != len(words):
        raise ValueError(f"got {len(prompts)} prompts but {len(words)} words; pass one word per prompt.")
    bos = tokens_.prepends_bos(model)
    positions = [tokens_.word_position(model.tokenizer, p, w, bos) for p, w in zip(prompts, words)]
    return collect_at_positions(model, prompts, positions, hooks, batch_size, cache_dir)


def collect_at_positions(
    model,
    prompts: Sequence[str],
    positions: Sequence[int],
    hooks: Sequence[str],
    batch_size: int = 32,  # pragma: no mutate (the batch size changes the speed, not the activations)
    cache_dir: str | os.PathLike | None = None,
) -> dict[str, torch.Tensor]:
    """Activations at token ``positions[i]`` of ``prompts[i]``: ``{hook: (n_prompts, d_model)}`` float32.

    Each prompt is cut after its position (a causal model's activation there
    does not read the tokens after it), then prompts are batched in order of
    that length and right-padded to the longest of their batch; results come
    back in the prompts' order. With
    ``cache_dir`` each batch is a validated shard there, reused by later calls
    with the same weights, prompts, positions, hooks and batch size.
    """
    if len(prompts) == 0:
        raise ValueError("the prompt list is empty; pass at least one prompt.")
    if len(positions) != len(prompts):
        raise ValueError(f"got {len(prompts)} prompts but {len(positions)} positions; pass one position per prompt.")
    hooks = list(hooks)
    for hook in hooks:
        check_hook(model, hook)
    tokens, lengths = pad_prompts(model, prompts)
    positions = [int(p) for p in positions]
    if any(not 0 <= p < n for p, n in zip(positions, lengths)):
        raise ValueError("a position lies outside its prompt; positions count tokens from 0.")
    # A causal model's activation at position p reads tokens 0..p only: each prompt is cut after its position, and
    # batches of similar cut lengths pad less (any order gives the same activations).
    needed = [p + 1 for p in positions]
    order = np.argsort(needed, kind="stable")  # pragma: no mutate (another sort differs only between equal lengths)
    cache = None
    if cache_dir is not None:
        # "batches": how rows are grouped into shards; a cache of another grouping holds other rows under each index.
        settings = dict(weights=weights_fingerprint(model), hooks=hooks, tokens=ids_hash(tokens, lengths),
                        positions=positions, batch_size=batch_size, dtype=PROMPT_DTYPE, batches="by position")
        cache = ShardCache(Path(cache_dir) / f"prompts-{settings_key(settings)}", settings)
    shards = []
    starts = range(0, len(prompts), batch_size)
    for index, start in enumerate(tqdm(starts, desc="prompts", leave=False)):  # pragma: no mutate (the bar's look)
        rows = order[start : start + batch_size]
        shape = (len(rows), len(hooks), model.cfg.d_model)
        shard = cache.load(index, shape) if cache is not None else None
        if shard is None:
            shard = forward_at_positions(model, tokens[torch.from_numpy(rows), : max(needed[i] for i in rows)],
                                         [positions[i] for i in rows], hooks)  # fmt: skip
            if cache is not None:
                cache.save(index, shard)
        shards.append(shard)
    stacked = np.concatenate(shards)[np.argsort(order)]
    return {hook: torch.from_numpy(np.ascontiguousarray(stacked[:, i])) for i, hook in enumerate(hooks)}


class _Collected(Exception):
    """Raised by the last hook that is read: the rest of the forward pass is not needed."""


def forward_at_positions(model, batch: torch.Tensor, positions: list[int], hooks: list[str]) -> np.ndarray:
    """One batch ``(b, width)`` through the model: activations at ``positions`` ``(b, n_hooks, d_model)`` float32.

    The pass stops once every hook has been read. ``stop_at_layer`` cannot
    stop after the last block, and there the final norm and the unembedding
    cost more than a small model's blocks (a 128 256-token vocabulary).
    """
    rows, index = torch.arange(len(batch), device=batch.device), torch.tensor(positions, device=batch.device)  # pragma: no mutate (the device matters only off the CPU; the tests have none)
    # Hook points by identity: the bridge knows them under aliases (hook_resid_post is a block's hook_out), and one
    # filter resolves its alias table once where a list of names would resolve it once per name.
    points = model.hook_dict
    wanted = {id(points[hook]) for hook in hooks}
    picked: dict[int, torch.Tensor] = {}

    def read(activation: torch.Tensor, hook) -> None:
        picked[id(hook)] = activation[rows, index].float().cpu()
        if len(picked) == len(wanted):
            raise _Collected

    with torch.no_grad():
        try:
            model.run_with_hooks(batch, fwd_hooks=[(lambda name: id(points[name]) in wanted, read)])
        except _Collected:
            pass
    return torch.stack([picked[id(points[hook])] for hook in hooks], dim=1).numpy()


def logits_at_positions(model, batch: torch.Tensor, positions: torch.Tensor, fwd_hooks: Sequence = ()) -> torch.Tensor:
    """Next-token logits at ``positions[i]`` of row ``i`` of ``batch`` ``(b, width)``: ``(b, d_vocab)`` float32 on the CPU.

    ``fwd_hooks`` run as in ``run_with_hooks``. Only the chosen positions are
    unembedded (the unembedding's input is cut to them), which is exact, and
    for a 128 256-token vocabulary much faster than unembedding every position.
    """
    rows, index = torch.arange(len(batch), device=batch.device), positions.to(batch.device)

    def keep_chosen(residual: torch.Tensor, hook) -> torch.Tensor:  # noqa: ARG001 - TransformerLens passes the hook point
        return residual[rows, index][:, None]

    with torch.no_grad():
        logits = model.run_with_hooks(batch, fwd_hooks=[*fwd_hooks, ("unembed.hook_in", keep_chosen)])
    return logits[:, 0].float().cpu()


def pad_prompts(model, prompts: Sequence[str]) -> tuple[torch.Tensor, list[int]]:
    """Token ids of the prompts (BOS first if the model takes one) right-padded to one width ``(n, width)``, and lengths."""
    tokenizer = model.tokenizer
    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else 0
    # Each distinct prompt once: a sweep repeats every prompt once per method and new value.
    distinct = list(dict.fromkeys(prompts))
    ids = dict(zip(distinct, tokens_.encode_all(tokenizer, distinct, tokens_.prepends_bos(model))))
    encoded = [ids[p] for p in prompts]
    width = max(len(ids) for ids in encoded)
    tokens = torch.tensor([ids + [pad] * (width - len(ids)) for ids in encoded], device=model.cfg.device)
    return tokens, [len(ids) for ids in encoded]


def weights_fingerprint(model: torch.nn.Module) -> str:
    """SHA-256 (hex, 16 characters) of every parameter's name, shape and an evenly strided sample of its values.

    Cheap even for a 7B model on a GPU, and it changes when the weights do, so a
    cache keyed by it cannot serve activations of another checkpoint loaded
    under the same profile name. A model perturbed by :mod:`mvf.book.perturbation` keeps its unperturbed fingerprint.
    """
    if (kept := getattr(model, "mvf_fingerprint", None)) is not None:
        return kept
    digest = hashlib.sha256()
    for name, parameter in model.named_parameters():
        flat = parameter.detach().reshape(-1)
        sample = flat[:: max(1, flat.numel() // 4096)].float().cpu().numpy()
        digest.update(f"{name}{tuple(parameter.shape)}".encode())
        digest.update(sample.tobytes())
    return digest.hexdigest()[:16]


def settings_key(settings: dict) -> str:
    """The cache folder key of a settings dictionary (hex, 16 characters)."""
    return hashlib.sha256(json.dumps(settings, sort_keys=True).encode()).hexdigest()[:16]


def ids_hash(ids: torch.Tensor, lengths: Sequence[int] | None = None) -> str:
    """SHA-256 (hex, 16 characters) of token ids ``(n, seq_len)``, row ``i`` cut to ``lengths[i]`` (padding is not input).

    The model's exact input: a cache keyed by it cannot serve the activations
    of the same text tokenised otherwise (another tokenizer, BOS or not).
    """
    rows = ids.cpu().numpy().astype(np.int64)
    digest = hashlib.sha256()
    for row, length in zip(rows, lengths if lengths is not None else [rows.shape[1]] * len(rows)):
        digest.update(np.int64(length).tobytes() + row[:length].tobytes())
    return digest.hexdigest()[:16]


def corpus_hash(texts: Sequence[str]) -> str:
    """SHA-256 (hex, 16 characters) of a corpus or prompt set, independent of how it is held in memory."""
    digest = hashlib.sha256()
    for text in texts:
        digest.update(text.encode())
        digest.update(b"\x00")
    return digest.hexdigest()[:16]


def tokenize_corpus(tokenizer, texts: Sequence[str], seq_len: int, bos: bool = False) -> torch.Tensor:
    """Concatenate the texts (separated by EOS) and cut them into rows: ``(n_rows, seq_len)`` token ids.

    With ``bos`` every row starts with BOS followed by ``seq_len - 1`` corpus tokens.
    """
    eos = tokenizer.eos_token_id
    ids: list[int] = []
    for text in texts:
        ids.extend(tokenizer(text, add_special_tokens=False)["input_ids"])
        ids.append(eos)
    width = seq_len - int(bos)
    rows = len(ids) // width
    if rows == 0:
        raise ValueError(f"the corpus has {len(ids)} tokens, fewer than one row of seq_len={seq_len}.")
    table = torch.tensor(ids[: rows * width]).reshape(rows, width)
    if bos:
        bos_id = tokens_.encode(tokenizer, "", True)[0]  # pragma: no mutate (with any text BOS comes first)
        table = torch.cat([torch.full((rows, 1), bos_id), table], dim=1)
    return table


class ShardCache:
    """A folder of activation shards with a manifest; state is the folder, so it is a class."""

    def __init__(self, folder: Path, settings: dict):
        self.folder = Path(folder)
        self.folder.mkdir(parents=True, exist_ok=True)
        self.manifest_path = self.folder / "manifest.json"
        manifest = json.loads(self.manifest_path.read_text()) if self.manifest_path.exists() else {}
        if manifest.get("settings") != settings:
            manifest = {"settings": settings, "shards": {}}
        self.manifest = manifest

    def _path(self, index: int) -> Path:
        return self.folder / f"shard_{index:05d}.npy"

    def load(self, index: int, shape: tuple[int, ...]) -> np.ndarray | None:
        """The shard if present and intact (shape and checksum as recorded), else None."""
        entry, path = self.manifest["shards"].get(str(index)), self._path(index)
        if entry is None or not path.exists() or entry["shape"] != list(shape) or sha256_file(path) != entry["sha256"]:
            return None
        try:
            array = np.load(path)
        except (ValueError, OSError):
            return None
        return array if array.shape == shape else None

    def save(self, index: int, array: np.ndarray) -> None:
        path = self._path(index)
        write_atomically(path, lambda stream: np.save(stream, array))
        self.manifest["shards"][str(index)] = {"shape": list(array.shape), "sha256": sha256_file(path)}
        write_atomically(self.manifest_path, lambda stream: stream.write(json.dumps(self.manifest).encode()))


def collect_corpus(
    model,
    model_name: str,
    texts: Sequence[str],
    hook: str,
    cache_dir: str | os.PathLike,
    seq_len: int = 128,
    batch_size: int = 16,  # pragma: no mutate (the batch size changes the speed, not the activations)
    rows_per_shard: int = 64,  # pragma: no mutate (the shard size changes the files, not the activations)
) -> np.ndarray:
    """Activations at every token of a corpus: ``(n_rows * seq_len, d_model)`` float16, cached on disk.

    The forward pass stops after the hooked layer. Shards are validated on
    read; missing or corrupted ones are recomputed, so an interrupted call
    resumes where it stopped.
    """
    if len(texts) == 0:
        raise ValueError("the corpus is empty; pass at least one text.")
    layer = check_hook(model, hook)
    tokens = tokenize_corpus(model.tokenizer, texts, seq_len, tokens_.prepends_bos(model))
    settings = dict(model=model_name, weights=weights_fingerprint(model), hook=hook, tokens=ids_hash(tokens),
                    seq_len=seq_len, batch_size=batch_size, dtype=CORPUS_DTYPE)
    cache = ShardCache(Path(cache_dir) / f"{model_name}-{hook}-{settings_key(settings)}", settings)
    shards = []
    starts = range(0, len(tokens), rows_per_shard)
    for index, start in enumerate(tqdm(starts, desc=f"{hook} shards")):  # pragma: no mutate (the bar's look)
        rows = tokens[start : start + rows_per_shard]
        shape = (rows.numel(), model.cfg.d_model)
        shard = cache.load(index, shape)
        if shard is None:
            shard = forward_rows(model, rows, hook, layer, batch_size)
            cache.save(index, shard)
        shards.append(shard)
    return np.concatenate(shards)


def forward_rows(model, rows: torch.Tensor, hook: str, layer: int, batch_size: int) -> np.ndarray:
    """Activations of ``rows`` ``(n, seq_len)`` at ``hook``, flattened to ``(n * seq_len, d_model)`` float16."""
    parts = []

    def read(activation: torch.Tensor, hook) -> None:
        parts.append(activation.reshape(-1, activation.shape[-1]).to(torch.float16).cpu().numpy())

    # One forward hook that keeps what it reads, rather than run_with_cache's machinery for a cache of hook points.
    with torch.no_grad():
        for start in range(0, len(rows), batch_size):
            model.run_with_hooks(rows[start : start + batch_size].to(model.cfg.device), fwd_hooks=[(hook, read)],  # pragma: no mutate (the device matters only off the CPU)
                                 stop_at_layer=layer + 1)  # fmt: skip
    return np.concatenate(parts)


def resid_hooks(model, site: str = "hook_resid_post") -> list[str]:
    """The residual-stream hook of every layer, in order: ``blocks.{L}.{site}``."""
    hooks = [f"blocks.{layer}.{site}" for layer in range(model.cfg.n_layers)]
    for hook in hooks:
        check_hook(model, hook)
    return hooks
