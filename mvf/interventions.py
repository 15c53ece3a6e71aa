"""Interventions on one (layer, position): circle patching and the paper's baselines (§4).

Every intervention replaces the activation vector at one hook and one token
position. Since nothing before that point changes, the replacement can be
computed from the clean activations first (pure numpy, below) and then run
through the model in batches with one hook (``patched_logits``).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import NamedTuple

import numpy as np
import pandas as pd
import torch
from tqdm.std import tqdm  # text bars on stderr: a notebook widget would not render in the book

from mvf.activations import check_hook, collect_at_positions, logits_at_positions, pad_prompts
from mvf.probes import CircleProbe, circle_targets, fit_circle_probe, quality_by_layer
from mvf.tasks import Problem, candidates
from mvf.tasks import positions as positions_in
from mvf.tokens import prepends_bos


POSITIONS = ("operand", "final")
# At the final position ("c") the paper's donor for a new answer γ' is the problem with answer γ' and duration β = 3.
PAPER_DONOR_SHIFT = 3


def read_values(problems: list[Problem], position: str) -> np.ndarray:
    """What the probe reads at ``position``: the start α at ``operand`` ("a"), the answer γ = α + β at ``final`` ("c")."""
    if position not in POSITIONS:
        raise ValueError(f"position must be one of {POSITIONS}, not {position!r}.")
    return np.array([p.start if position == "operand" else p.answer for p in problems])


def target_pairs(
    problems: list[Problem], position: str = "operand", per_problem: int | None = None, seed: int = 0
) -> tuple[np.ndarray, np.ndarray]:
    """(problem, new value) pairs, the new value different from the one the position carries (``read_values``).

    Two ``(n_pairs,)`` arrays. Every other value by default; ``per_problem``
    draws that many of them per problem (seeded), to fit a CPU's time.
    """
    generator = np.random.default_rng(seed)
    pairs = []
    for i, (p, value) in enumerate(zip(problems, read_values(problems, position))):
        others = [y for y in range(p.period) if y != value]
        chosen = others if per_problem is None else sorted(generator.choice(others, min(per_problem, len(others)), replace=False))
        pairs += [(i, int(y)) for y in chosen]
    index, target = (np.array(column) for column in zip(*pairs))
    return index, target


def matching_problems(problems: list[Problem], index: np.ndarray, target: np.ndarray, position: str) -> np.ndarray:
    """The paper's donor of each pair ``(n_pairs,)``: the problem that is ``problems[i]`` with the patched value ``y'``.

    At ``operand`` it has start ``y'`` and the same shift; at ``final``, answer
    ``y'`` and the paper's shift 3 where the task has it (else the same shift);
    both keep the prompt's form (the successor task's list length).
    ``ValueError`` when the task has no such problem.
    """
    found = {(p.start, p.shift, p.listed): j for j, p in enumerate(problems)}
    shifts = {p.shift for p in problems}
    donors = []
    for i, y in zip(index, target):
        p = problems[i]
        shift = p.shift if position == "operand" or PAPER_DONOR_SHIFT not in shifts else PAPER_DONOR_SHIFT
        start = y if position == "operand" else (y - shift) % p.period
        if (start, shift, p.listed) not in found:
            raise ValueError(f"no problem matches {p.prompt!r} with value {y} at the {position} position.")
        donors.append(found[(start, shift, p.listed)])
    return np.array(donors)


def circle_patch(probe: CircleProbe, clean: np.ndarray, points: np.ndarray) -> np.ndarray:
    """Move each activation inside the probe's PCA subspace so that the probe reads ``points``.

    ``clean``: ``(n, d)``; ``points``: ``(n, 2)`` target circle points. The
    smallest change of the k PCA coordinates that makes the probe output the
    target (pseudo-inverse of its linear map), mapped back to ``(n, d)``.
    Applied to the mean activation this is the paper's circle patch,
    x* = mean − P(mean) + embed(target); applied to the clean activation, our
    stricter in-plane move, which keeps everything else the problem carries.
    """
    change = (points - probe.circle_point(clean)) @ np.linalg.pinv(probe.weights[:-1])
    return clean + change @ probe.components


def circle_plane(probe: CircleProbe) -> np.ndarray:
    """Orthonormal basis ``(2, d)`` of the plane in which ``circle_patch`` moves activations."""
    return np.linalg.qr((np.linalg.pinv(probe.weights[:-1]) @ probe.components).T)[0].T


def subspace_patch(basis: np.ndarray, clean: np.ndarray, donor: np.ndarray) -> np.ndarray:
    """Replace the component of ``clean`` ``(n, d)`` in the row space of ``basis`` ``(k, d)`` by ``donor``'s."""
    return clean + (donor - clean) @ basis.T @ basis


def random_basis(k: int, d: int, seed: int = 0) -> np.ndarray:
    """An orthonormal basis ``(k, d)`` of a random k-dimensional subspace."""
    return np.linalg.qr(np.random.default_rng(seed).normal(size=(d, k)))[0].T


def methods(probe: CircleProbe, clean: np.ndarray, donors: np.ndarray, seed: int = 0) -> dict[str, Callable]:
    """Each method: (problem indices, new values) ``(n_pairs,)`` → replacement activations ``(n_pairs, d)``.

    ``clean``: ``(n_problems, d)``; ``donors``: ``(n_pairs,)`` the matching
    problem of each pair (``matching_problems``). The paper's methods first,
    then ours, named so. "circle ablation" sets the circle's coordinates to
    the mean's (the centre of the circle: zero in the probe's centred
    coordinates); "circle only" keeps them and sets everything else to the mean.
    """
    period = probe.period
    mean = clean.mean(axis=0)
    k, d = probe.components.shape
    plane, randoms = circle_plane(probe), random_basis(k, d, seed)

    def everywhere(rows: np.ndarray) -> np.ndarray:
        return np.broadcast_to(mean, (len(rows), d))

    return {
        "before": lambda i, y: clean[i],
        "circle patch": lambda i, y: circle_patch(probe, everywhere(i), circle_targets(y, period)),
        "full patch": lambda i, y: clean[donors],
        f"PCA-{k} patch": lambda i, y: subspace_patch(probe.components, clean[i], clean[donors]),
        "mean ablation": lambda i, y: everywhere(i),
        "circle ablation": lambda i, y: subspace_patch(plane, clean[i], everywhere(i)),
        "circle only": lambda i, y: subspace_patch(plane, everywhere(i), clean[i]),
        "in-plane circle move (ours)": lambda i, y: circle_patch(probe, clean[i], circle_targets(y, period)),
        f"random {k}-d patch (ours)": lambda i, y: subspace_patch(randoms, clean[i], clean[donors]),
    }  # fmt: skip


def patched_logits(
    model, prompts: list[str], hook: str, positions: np.ndarray, replacements: np.ndarray, batch_size: int = 64,
    columns: torch.Tensor | None = None,
) -> torch.Tensor:  # fmt: skip
    """Final-token logits ``(n, d_vocab)`` with the activation at (``hook``, ``positions[i]``) set to ``replacements[i]``.

    ``columns``: token ids ``(n, c)``; then only those logits of each row are
    kept, ``(n, c)``, so that many rows never hold a whole vocabulary each.
    """
    check_hook(model, hook)
    tokens, lengths = pad_prompts(model, prompts)
    values = torch.tensor(replacements, dtype=torch.float32)  # a copy: replacements may be a read-only view
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

        logits = logits_at_positions(model, tokens[start : start + batch_size], last[start : start + batch_size],
                                     [(hook, replace)])  # fmt: skip
        out.append(logits if columns is None else logits.gather(1, columns[start : start + batch_size]))
    return torch.cat(out)


def effect(allowed_logits: torch.Tensor, old: np.ndarray, new: np.ndarray) -> dict[str, float]:
    """Mean logit difference (new answer − old answer) and accuracy of the new answer among the allowed ones.

    ``allowed_logits``: ``(n, period)``, the logits of the allowed answers after each prompt, in calendar order.
    """
    allowed = allowed_logits.numpy()
    rows = np.arange(len(old))
    return {
        "logit diff": float((allowed[rows, new] - allowed[rows, old]).mean()),
        "accuracy": float((allowed.argmax(axis=1) == new).mean()),
    }


def sweep(
    model, problems: list[Problem], probes_by_hook: dict[str, CircleProbe], clean_by_hook: dict[str, np.ndarray],
    positions: np.ndarray, position: str, per_problem: int | None = None, batch_size: int = 512, seed: int = 0,
) -> pd.DataFrame:  # fmt: skip
    """Effect of every method at every hook: one row per (hook, method); every method's pairs go through the model together.

    ``positions``: ``(n_problems,)`` token positions patched, at the
    ``position`` ("operand" or "final") whose value the probes read
    (``read_values``); ``clean_by_hook``: ``{hook: (n_problems, d)}`` clean
    activations there. A pair's new answer is y' + β at the operand, y' at the final position.
    """
    period = problems[0].period
    index, target = target_pairs(problems, position, per_problem, seed)
    donors = matching_problems(problems, index, target, position)
    allowed = candidates(model.tokenizer, problems)[index]
    old = np.array([problems[i].answer for i in index])
    new = np.array([problems[j].answer for j in donors])
    prompts = [problems[i].prompt for i in index]
    rows = []
    n = len(index)
    for hook, probe in tqdm(probes_by_hook.items(), desc="layers"):
        # One call for all methods: a few large batches cost a fraction of many small ones (bench/interventions.py).
        replaced = {name: method(index, target) for name, method in methods(probe, clean_by_hook[hook], donors, seed).items()}
        logits = patched_logits(model, prompts * len(replaced), hook, np.tile(positions[index], len(replaced)),
                                np.concatenate(list(replaced.values())), batch_size, allowed.repeat(len(replaced), 1))  # fmt: skip
        layer = check_hook(model, hook)
        for k, name in enumerate(replaced):
            rows.append({"hook": hook, "layer": layer, "method": name} | effect(logits[k * n : (k + 1) * n], old, new))
    return pd.DataFrame(rows).assign(chance=1 / period)


def position_sweep(
    model, problems: list[Problem], position: str, hooks: list[str], sweep_hooks: list[str], k: int = 5,
    per_problem: int | None = None, seed: int = 0, cache_dir=None,
) -> tuple[pd.DataFrame, pd.DataFrame]:  # fmt: skip
    """Probes at every hook of ``hooks`` and every method at ``sweep_hooks``, at one ``position`` of every problem.

    The clean activations at ``position`` ("operand" or "final", from the
    tokenization) are collected at every hook (cached under ``cache_dir``
    when given); returns ``probes.quality_by_layer``'s table and ``sweep``'s,
    each with a ``position`` column.
    """
    period = problems[0].period
    where = np.array([positions_in(model.tokenizer, p, prepends_bos(model))[position] for p in problems])
    values = read_values(problems, position)
    clean = collect_at_positions(model, [p.prompt for p in problems], where, hooks, cache_dir=cache_dir)
    clean = {hook: acts.numpy().astype(np.float64) for hook, acts in clean.items()}
    quality = quality_by_layer(clean, values, period, k=k, seed=seed).assign(position=position)
    fitted = {hook: fit_circle_probe(clean[hook], values, period, k=k) for hook in sweep_hooks}
    effects = sweep(model, problems, fitted, clean, where, position, per_problem=per_problem, seed=seed)
    return quality, effects.assign(position=position)


class Verdict(NamedTuple):
    """The paper's claim judged at one layer: ``category`` is one of ``VERDICTS``; ``sentence`` says why, with the numbers."""

    category: str
    sentence: str


VERDICTS = ("inconclusive", "matches", "partly matches", "does not match")


def verdict(accuracy: pd.Series, chance: float) -> Verdict:
    """The paper's claim for one layer, judged against chance: does the circle patch move the answer as the full patch does?

    ``accuracy``: method → share of pairs whose allowed answer became the new
    one. Inconclusive when the full patch itself does not reach twice chance
    (then the layer does not carry the value at that position, or the model
    cannot do the task); otherwise the circle patch's gain over chance as a
    share of the full patch's: at least 0.8 matches the paper, below 0.5 does not.
    """
    full, circle = accuracy["full patch"], accuracy["circle patch"]
    if full < 2 * chance:
        return Verdict("inconclusive", f"inconclusive: the full patch itself moves only {full:.2f} of the answers "
                       f"(chance {chance:.2f}), so there is no effect for the circle to reproduce")  # fmt: skip
    share = (circle - chance) / (full - chance)
    category = "matches" if share >= 0.8 else "does not match" if share < 0.5 else "partly matches"
    return Verdict(category, f"the circle patch gains {share:.0%} of the full patch's gain over chance ({circle:.2f} "
                   f"and {full:.2f} against chance {chance:.2f}): this {category} the paper")  # fmt: skip


def off_circle(
    model, problem: Problem, probe: CircleProbe, hook: str, position: int, base: np.ndarray,
    angles: np.ndarray, radius: float = 1.0,
) -> np.ndarray:  # fmt: skip
    """The model's distribution over the allowed answers as the probe's point moves to radius·(cos θ, sin θ).

    ``base``: the activation ``(d,)`` at (hook, position) whose circle point is
    moved: the paper's is the mean activation over the problems, ours the
    problem's own. ``angles``: ``(n,)`` radians. Returns probabilities
    ``(n, period)`` (softmax over the allowed answers).
    """
    points = radius * np.column_stack([np.cos(angles), np.sin(angles)])
    replacements = circle_patch(probe, np.broadcast_to(base, (len(angles), len(base))), points)
    logits = patched_logits(model, [problem.prompt] * len(angles), hook, np.full(len(angles), position), replacements)
    return torch.softmax(logits[:, candidates(model.tokenizer, [problem])[0]], dim=1).numpy()


def off_circle_grid(
    model, problem: Problem, probe: CircleProbe, hook: str, position: int, base: np.ndarray,
    angles: np.ndarray, radii: np.ndarray,
) -> np.ndarray:  # fmt: skip
    """``off_circle`` over a grid of radii (the paper's 0–1.9) and angles: probabilities ``(n_radii, n_angles, period)``."""
    return np.stack([off_circle(model, problem, probe, hook, position, base, angles, float(r))
                     for r in tqdm(radii, desc="radii")])  # fmt: skip


def angle_answers(angles: np.ndarray, problem: Problem, position: str) -> np.ndarray:
    """The answer each patched angle implies ``(n,)``: the nearest value, plus the shift at the operand position."""
    nearest = np.round(np.asarray(angles) / (2 * np.pi / problem.period)).astype(int)
    return (nearest + (problem.shift if position == "operand" else 0)) % problem.period
