"""Interventions on one (layer, position): circle patching and the paper's baselines (§4).

Every intervention replaces the activation vector at one hook and one token
position. Since nothing before that point changes, the replacement can be
computed from the clean activations first (pure numpy, below) and then run
through the model in batches with one hook (``patched_logits``).
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pandas as pd
import torch
from tqdm.std import tqdm  # text bars on stderr: a notebook widget would not render in the book

from mvf.activations import check_hook, logits_at_positions, pad_prompts
from mvf.probes import CircleProbe, circle_targets
from mvf.tasks import Problem, candidates


def target_pairs(problems: list[Problem]) -> tuple[np.ndarray, np.ndarray]:
    """Every (problem, new start value) pair with a new value different from the problem's: two ``(n_pairs,)`` arrays."""
    pairs = [(i, y) for i, p in enumerate(problems) for y in range(p.period) if y != p.start]
    index, target = (np.array(column) for column in zip(*pairs))
    return index, target


def circle_patch(probe: CircleProbe, clean: np.ndarray, points: np.ndarray) -> np.ndarray:
    """Move each activation inside the probe's PCA subspace so that the probe reads ``points``.

    ``clean``: ``(n, d)``; ``points``: ``(n, 2)`` target circle points. The
    smallest change of the k PCA coordinates that makes the probe output the
    target (pseudo-inverse of its linear map), mapped back to ``(n, d)``.
    """
    change = (points - probe.circle_point(clean)) @ np.linalg.pinv(probe.weights[:-1])
    return clean + change @ probe.components


def subspace_patch(basis: np.ndarray, clean: np.ndarray, donor: np.ndarray) -> np.ndarray:
    """Replace the component of ``clean`` ``(n, d)`` in the row space of ``basis`` ``(k, d)`` by ``donor``'s."""
    return clean + (donor - clean) @ basis.T @ basis


def random_basis(k: int, d: int, seed: int = 0) -> np.ndarray:
    """An orthonormal basis ``(k, d)`` of a random k-dimensional subspace."""
    return np.linalg.qr(np.random.default_rng(seed).normal(size=(d, k)))[0].T


def methods(probe: CircleProbe, clean: np.ndarray, starts: np.ndarray, period: int, seed: int = 0) -> dict[str, Callable]:
    """Each method: (problem indices, new values) ``(n_pairs,)`` → replacement activations ``(n_pairs, d)``.

    The donor of a pair is the mean clean activation of the problems whose
    start is the new value ("the matching problem": same task, new operand).
    """
    donors = np.stack([clean[starts == y].mean(axis=0) for y in range(period)])
    k, d = probe.components.shape
    randoms = random_basis(k, d, seed)
    return {
        "circle patch": lambda i, y: circle_patch(probe, clean[i], circle_targets(y, period)),
        "full patch": lambda i, y: donors[y],
        f"PCA-{k} subspace patch": lambda i, y: subspace_patch(probe.components, clean[i], donors[y]),
        f"random {k}-d subspace patch": lambda i, y: subspace_patch(randoms, clean[i], donors[y]),
        "subspace mean ablation": lambda i, y: subspace_patch(probe.components, clean[i], np.broadcast_to(clean.mean(axis=0), clean[i].shape)),
    }  # fmt: skip


def patched_logits(
    model, prompts: list[str], hook: str, positions: np.ndarray, replacements: np.ndarray, batch_size: int = 64
) -> torch.Tensor:
    """Final-token logits ``(n, d_vocab)`` with the activation at (``hook``, ``positions[i]``) set to ``replacements[i]``."""
    check_hook(model, hook)
    tokens, lengths = pad_prompts(model, prompts)
    values = torch.as_tensor(replacements, dtype=torch.float32)
    last = torch.tensor(lengths) - 1
    out = []
    for start in range(0, len(prompts), batch_size):
        rows = torch.arange(min(batch_size, len(prompts) - start))
        where = torch.as_tensor(positions[start : start + batch_size])
        new = values[start : start + batch_size]

        def replace(activation, hook):  # noqa: ARG001 - TransformerLens passes the hook point
            activation = activation.clone()
            activation[rows, where] = new.to(activation.device, activation.dtype)
            return activation

        out.append(logits_at_positions(model, tokens[start : start + batch_size], last[start : start + batch_size],
                                       [(hook, replace)]))  # fmt: skip
    return torch.cat(out)


def effect(logits: torch.Tensor, candidates: torch.Tensor, old: np.ndarray, new: np.ndarray) -> dict[str, float]:
    """Mean logit difference (new answer − old answer) and accuracy of the new answer among the allowed ones.

    ``logits``: ``(n, d_vocab)``; ``candidates``: ``(n, period)`` token ids of the allowed answers after each prompt.
    """
    allowed = logits.gather(1, candidates).numpy()
    rows = np.arange(len(old))
    return {
        "logit diff": float((allowed[rows, new] - allowed[rows, old]).mean()),
        "accuracy": float((allowed.argmax(axis=1) == new).mean()),
    }


def sweep(
    model, problems: list[Problem], probes_by_hook: dict[str, CircleProbe], clean_by_hook: dict[str, np.ndarray],
    positions: np.ndarray, batch_size: int = 64, seed: int = 0,
) -> pd.DataFrame:  # fmt: skip
    """Effect of every method at every hook: one row per (hook, method), all pairs batched through the model.

    ``positions``: ``(n_problems,)`` token positions patched; ``clean_by_hook``:
    ``{hook: (n_problems, d)}`` clean activations there.
    """
    period = problems[0].period
    starts = np.array([p.start for p in problems])
    index, target = target_pairs(problems)
    allowed = candidates(model.tokenizer, problems)[index]
    old = np.array([problems[i].answer for i in index])
    new = (target + np.array([problems[i].shift for i in index])) % period
    prompts = [problems[i].prompt for i in index]
    rows = []
    for hook, probe in tqdm(probes_by_hook.items(), desc="layers"):
        for name, method in methods(probe, clean_by_hook[hook], starts, period, seed).items():
            logits = patched_logits(model, prompts, hook, positions[index], method(index, target), batch_size)
            rows.append({"hook": hook, "layer": check_hook(model, hook), "method": name} | effect(logits, allowed, old, new))
    return pd.DataFrame(rows)


def off_circle(
    model, problem: Problem, probe: CircleProbe, hook: str, position: int, clean: np.ndarray,
    angles: np.ndarray, radius: float = 1.0,
) -> np.ndarray:  # fmt: skip
    """The model's distribution over the allowed answers as the probe's point moves to radius·(cos θ, sin θ).

    ``clean``: the problem's activation ``(d,)`` at (hook, position); ``angles``:
    ``(n,)`` radians. Returns probabilities ``(n, period)`` (softmax over the allowed answers).
    """
    points = radius * np.column_stack([np.cos(angles), np.sin(angles)])
    replacements = circle_patch(probe, np.broadcast_to(clean, (len(angles), len(clean))), points)
    logits = patched_logits(model, [problem.prompt] * len(angles), hook, np.full(len(angles), position), replacements)
    return torch.softmax(logits[:, candidates(model.tokenizer, [problem])[0]], dim=1).numpy()
