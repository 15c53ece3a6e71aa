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

from mvf import geometry, irreducibility
from mvf.activations import check_hook, collect_at_positions, logits_at_positions, pad_prompts
from mvf.probes import SPANNED_RTOL, CircleProbe, circle_plane, circle_targets, fit_circle_probe, quality_by_layer
from mvf.tasks import Problem, candidates
from mvf.tasks import positions as positions_in
from mvf.tokens import prepends_bos


POSITIONS = ("operand", "final")
# The circle patch read against patches that carry no circle: through a probe of a scrambled calendar order, and
# through a random plane of the probe's PCA space.
NULLS = ("circle patch, shuffled-order probe (null)", "random-plane patch (null)")
# Ours: every key circle of the value at once (the Fourier frequencies of its class centroids), read against a random
# subspace of the same dimension of the space the activations span.
KEY_CIRCLES = "key circles patch (ours)"
KEY_SHUFFLED = "key circles patch, shuffled-order probes (null)"
KEY_NULL = "random-subspace patch of the key circles' dimension (null)"
# Each patch and the nulls it is compared with, pair by pair (``summarize``'s advantage columns).
PAIRED = {"circle patch": NULLS, KEY_CIRCLES: (KEY_SHUFFLED, KEY_NULL)}

# At the final position ("c") the paper's donor for a new answer γ' is the problem with answer γ' and duration β = 3.
PAPER_DONOR_SHIFT = 3
BOOTSTRAP_DRAWS = 1000  # resamples of the problems for each interval
INTERVAL = 0.95


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
    return circles_patch([probe], clean, points)


def circles_patch(probes: list[CircleProbe], clean: np.ndarray, points: np.ndarray) -> np.ndarray:
    """``circle_patch`` for several circles at once: each probe reads its own ``points[:, 2i : 2i + 2]``.

    ``probes``: fitted on the same activations (so they share their PCA
    components), each to its own labelling of the values (a model that keeps
    a value on several circles); ``points``: ``(n, 2 · len(probes))``. One
    smallest change of the PCA coordinates sets every circle together.
    """
    components = probes[0].components
    if any(not np.array_equal(probe.components, components) for probe in probes):
        raise ValueError("the probes must share their PCA components: fit them on the same activations with the same k.")
    maps = np.hstack([probe.weights[:-1] for probe in probes])
    now = np.hstack([probe.circle_point(clean) for probe in probes])
    return clean + (points - now) @ np.linalg.pinv(maps) @ components


def subspace_patch(basis: np.ndarray, clean: np.ndarray, donor: np.ndarray) -> np.ndarray:
    """Replace the component of ``clean`` ``(n, d)`` in the row space of ``basis`` ``(k, d)`` by ``donor``'s."""
    return clean + (donor - clean) @ basis.T @ basis


def random_basis(k: int, d: int, seed: int = 0) -> np.ndarray:
    """An orthonormal basis ``(k, d)`` of a random k-dimensional subspace."""
    return np.linalg.qr(np.random.default_rng(seed).normal(size=(d, k)))[0].T


def random_plane_of(probe: CircleProbe, seed: int = 0) -> np.ndarray:
    """Orthonormal basis ``(2, d)`` of a random plane of the space the probe's activations determine.

    Random directions of the whole space, projected onto that space: the
    plane does not depend on which basis of it PCA returned, which rounding
    decides where eigenvalues tie (the two coordinates of an exact circle).
    """
    return random_subspace_in(probe.components[: probe.determined], 2, seed)


def random_subspace_in(space: np.ndarray, dimension: int, seed: int = 0) -> np.ndarray:
    """Orthonormal basis ``(dimension, d)`` of a random subspace of the row space of ``space`` ``(m, d)`` (orthonormal rows).

    Random directions of the whole space, projected onto it: the subspace does
    not depend on which basis of it ``space`` holds.
    """
    return np.linalg.qr((random_basis(dimension, space.shape[1], seed) @ space.T @ space).T)[0].T


def shuffled_order(period: int, seed: int = 0) -> np.ndarray:
    """A seeded relabelling ``(period,)`` of the p values that is not a rotation or reflection of the calendar order.

    A rotated or reflected order is the same circle, so a probe fitted to it
    would be the real one; every other permutation scrambles the neighbours.
    """
    return shuffled_orders(period, 1, seed)[0]


def shuffled_orders(period: int, count: int, seed: int = 0) -> np.ndarray:
    """``count`` seeded relabellings ``(count, period)``, none a rotation or reflection of the calendar order (``shuffled_order``'s first)."""
    if period < 4:
        raise ValueError(f"a calendar order of {period} values has no relabelling that is not a rotation or reflection.")
    symmetries = {tuple((s * np.arange(period) + r) % period) for r in range(period) for s in (1, -1)}  # pragma: no mutate (−r over every r: the same rotations)
    generator = np.random.default_rng(seed)
    orders = []
    while len(orders) < count:
        if tuple(order := generator.permutation(period)) not in symmetries:
            orders.append(order)
    return np.array(orders)


def key_circle_probes(
    clean: np.ndarray, values: np.ndarray, period: int, frequencies: list[int], relabel: np.ndarray | None = None
) -> list[CircleProbe]:  # fmt: skip
    """One probe per frequency f, reading value y at angle 2πf·relabel[y]/p, all in one PCA space of 2·len(frequencies) dimensions.

    ``clean``: ``(n, d)``; ``values``: ``(n,)``; ``relabel``: ``(period,)`` a
    relabelling of the values (``shuffled_order``), the calendar order when
    ``None``. The probes share their PCA components (``circles_patch``).
    """
    order = np.arange(period) if relabel is None else relabel
    return [fit_circle_probe(clean, (f * order[values]) % period, period, k=2 * len(frequencies)) for f in frequencies]


def key_circle_points(values: np.ndarray, period: int, frequencies: list[int], relabel: np.ndarray | None = None) -> np.ndarray:
    """Where ``key_circle_probes`` read each value ``(n,)`` on every circle: ``(n, 2 · len(frequencies))``."""
    order = np.arange(period) if relabel is None else relabel
    return np.hstack([circle_targets((f * order[values]) % period, period) for f in frequencies])


def random_subspace_of(clean: np.ndarray, dimension: int, seed: int = 0) -> np.ndarray:
    """Orthonormal basis ``(dimension, d)`` of a random subspace of the space the centred activations ``(n, d)`` span.

    ``ValueError`` when they span no more than ``dimension`` directions: the
    subspace would be all of it, which is no null.
    """
    space = spanned(clean)
    if len(space) <= dimension:
        raise ValueError(f"the activations span {len(space)} directions: a random subspace of {dimension} of them "
                         f"is no null; use more problems.")  # fmt: skip
    return random_subspace_in(space, dimension, seed)


def spanned(clean: np.ndarray) -> np.ndarray:
    """Orthonormal basis ``(m, d)`` of the directions the centred activations ``(n, d)`` span (beyond rounding)."""
    _, singular, vt = np.linalg.svd(clean - clean.mean(axis=0), full_matrices=False)
    return vt[singular > SPANNED_RTOL * singular[0]]


def methods(
    probe: CircleProbe, clean: np.ndarray, donors: np.ndarray, seed: int = 0, null_probe: CircleProbe | None = None,
    null_order: np.ndarray | None = None, frequencies: list[int] | None = None, values: np.ndarray | None = None,
) -> dict[str, Callable]:  # fmt: skip
    """Each method: (problem indices, new values) ``(n_pairs,)`` → replacement activations ``(n_pairs, d)``.

    ``clean``: ``(n_problems, d)``; ``donors``: ``(n_pairs,)`` the matching
    problem of each pair (``matching_problems``). The paper's methods first,
    then ours, named so, then the nulls the circle patch is read against.
    "circle ablation" sets the circle's coordinates to the mean's (the centre
    of the circle: zero in the probe's centred coordinates); "circle only"
    keeps them and sets everything else to the mean. The nulls: the circle
    patch through ``null_probe``, fitted to the values relabelled by
    ``null_order`` (``shuffled_order``), aimed at the relabelled new value; and
    the mean with a random plane of the probe's PCA space set to the donor's,
    left out where the activations determine only two dimensions (an exact
    circle: its plane is the only one there, so the null would be the circle).
    With ``frequencies`` (``geometry.key_circles``) and the ``values`` ``(n_problems,)``
    the probes read, ours too: every key circle of the mean set at once
    (``KEY_CIRCLES``), against the same patch through shuffled-order probes and
    a random subspace of the same dimension set to the donor's (``PAIRED``).
    """
    period = probe.period
    mean = clean.mean(axis=0)
    k, d = probe.components.shape
    plane, randoms = circle_plane(probe), random_basis(k, d, seed)
    random_plane = random_plane_of(probe, seed)

    def everywhere(rows: np.ndarray) -> np.ndarray:
        return np.broadcast_to(mean, (len(rows), d))

    chosen = {
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
    if probe.determined > 2:  # in a space of two dimensions the only plane is the circle's own: no null
        chosen[NULLS[1]] = lambda i, y: subspace_patch(random_plane, everywhere(i), clean[donors])
    if null_probe is not None:
        chosen[NULLS[0]] = lambda i, y: circle_patch(null_probe, everywhere(i), circle_targets(null_order[y], period))
    if frequencies is not None:
        chosen |= key_methods(clean, values, period, frequencies, donors, null_order, seed)
    return chosen


def key_methods(
    clean: np.ndarray, values: np.ndarray, period: int, frequencies: list[int], donors: np.ndarray,
    null_order: np.ndarray | None, seed: int = 0,
) -> dict[str, Callable]:  # fmt: skip
    """Ours: ``KEY_CIRCLES`` and its nulls (``PAIRED``), as ``methods``' entries; see ``methods``.

    Empty where the activations span no more than the key circles' dimensions
    (a constructed model's exact circles): there every subspace of that
    dimension is the circles' own, and no null exists.
    """
    space = spanned(clean)
    if len(space) <= 2 * len(frequencies):
        return {}
    mean = clean.mean(axis=0)

    def everywhere(rows: np.ndarray) -> np.ndarray:
        return np.broadcast_to(mean, (len(rows), clean.shape[1]))

    key = key_circle_probes(clean, values, period, frequencies)
    subspace = random_subspace_in(space, 2 * len(frequencies), seed)
    chosen = {
        KEY_CIRCLES: lambda i, y: circles_patch(key, everywhere(i), key_circle_points(y, period, frequencies)),
        KEY_NULL: lambda i, y: subspace_patch(subspace, everywhere(i), clean[donors]),
    }
    if null_order is not None:
        shuffled = key_circle_probes(clean, values, period, frequencies, null_order)
        chosen[KEY_SHUFFLED] = lambda i, y: circles_patch(shuffled, everywhere(i),
                                                          key_circle_points(y, period, frequencies, null_order))  # fmt: skip
    return chosen


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


def following_share(grid: np.ndarray, expected: np.ndarray) -> np.ndarray:
    """Per radius, the share of angles whose most likely answer is the one the angle implies.

    ``grid``: ``(radii, angles, period)`` answer probabilities (:func:`off_circle_grid`); ``expected``: ``(angles,)``.
    """
    return (grid.argmax(axis=2) == expected).mean(axis=1)


def pair_effects(allowed_logits: torch.Tensor, old: np.ndarray, new: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per pair: the logit difference new answer − old answer ``(n,)`` and whether the new answer wins among the allowed ``(n,)``.

    ``allowed_logits``: ``(n, period)``, the logits of the allowed answers after each prompt, in calendar order.
    """
    allowed = allowed_logits.numpy().astype(np.float64)  # pragma: no mutate (astype(None) is float64 too)
    rows = np.arange(len(old))
    return allowed[rows, new] - allowed[rows, old], allowed.argmax(axis=1) == new


def bootstrap_means(values: np.ndarray, groups: np.ndarray, draws: int = BOOTSTRAP_DRAWS, seed: int = 0) -> np.ndarray:
    """Means of each row of ``values`` ``(m, n)`` over ``draws`` resamples of the groups (problems): ``(draws, m)``.

    ``groups``: ``(n,)`` the problem of each pair; whole problems are drawn
    with replacement, so the pairs of one problem, which share its prompt,
    count as one unit (seeded).
    """
    labels, inverse = np.unique(groups, return_inverse=True)
    counts = np.random.default_rng(seed).multinomial(len(labels), np.full(len(labels), 1 / len(labels)), size=draws)
    weights = counts[:, inverse]
    return weights @ values.T / weights.sum(axis=1, keepdims=True)


def summarize(diffs: dict[str, np.ndarray], wins: dict[str, np.ndarray], groups: np.ndarray, seed: int = 0) -> pd.DataFrame:
    """One row per method: mean logit difference, accuracy, and the shares of the full patch's shift, with intervals.

    ``diffs`` and ``wins``: method → ``(n_pairs,)`` (``pair_effects``), with
    "before", "full patch" and "mean ablation" among the methods. A method's
    *share from before* is (its logit difference − before's) / (full patch's −
    before's); its *share from mean ablation* measures both from the mean
    ablation instead, which already erases the old value. Each comes with the
    bootstrap 95 % interval over problems (``bootstrap_means``; ``low``, ``high``).

    A null's row (``PAIRED``) also holds the paired comparison with its patch,
    on the same resampled problems: ``advantage in share`` and ``advantage in
    wins`` (the patch's share of the shift and accuracy minus the null's, with
    intervals), and ``null reaches share`` / ``null reaches wins``, the share of
    resamples in which the null does at least as much as the patch (NaN on
    other rows).
    """
    names = list(diffs)
    # Row 0: the estimate on every problem; the other rows: the bootstrap draws (one resampling for both measures).
    drawn = bootstrap_means(np.stack([diffs[name] for name in names] + [wins[name] for name in names]), groups, seed=seed)
    estimate = np.concatenate([[diffs[name].mean() for name in names], [wins[name].mean() for name in names]])
    means, accuracy = np.split(np.vstack([estimate, drawn]), 2, axis=1)
    at = {name: j for j, name in enumerate(names)}
    before, ablated, full = (means[:, [at[name]]] for name in ("before", "mean ablation", "full patch"))
    with np.errstate(divide="ignore", invalid="ignore"):
        measures = {
            "logit diff": means,
            "shift from before": means - before,
            "share from before": (means - before) / (full - before),
            "share from mean ablation": (means - ablated) / (full - ablated),
        }
    paired = {null: patch for patch, nulls in PAIRED.items() if patch in at for null in nulls if null in at}
    rows = []
    for name, j in at.items():
        row = {"method": name, "accuracy": float(wins[name].mean())}
        for label, measured in measures.items():
            row |= _with_interval(label, measured[:, j])
        patch = at.get(paired.get(name))
        advantages = {"share": measures["share from before"], "wins": accuracy}
        for label, measured in advantages.items():
            difference = measured[:, patch] - measured[:, j] if patch is not None else np.full(len(measured), np.nan)
            row |= _with_interval(f"advantage in {label}", difference)
            row[f"null reaches {label}"] = float((difference[1:] <= 0).mean()) if patch is not None else np.nan
        rows.append(row)
    return pd.DataFrame(rows)


def _with_interval(label: str, measured: np.ndarray) -> dict[str, float]:
    """``{label: estimate, label low, label high}`` from ``(1 + draws,)``: the estimate, then the bootstrap draws."""
    low, high = 50 * (1 - INTERVAL), 50 * (1 + INTERVAL)
    if np.isnan(measured[1:]).all():
        return {label: float(measured[0]), f"{label} low": np.nan, f"{label} high": np.nan}
    return {label: float(measured[0]), f"{label} low": float(np.nanpercentile(measured[1:], low)),
            f"{label} high": float(np.nanpercentile(measured[1:], high))}  # fmt: skip


def sweep(
    model, problems: list[Problem], probes_by_hook: dict[str, CircleProbe], clean_by_hook: dict[str, np.ndarray],
    positions: np.ndarray, position: str, per_problem: int | None = None, seed: int = 0,
    batch_size: int = 512,  # pragma: no mutate (the batch size changes the speed, not the logits)
) -> pd.DataFrame:  # fmt: skip
    """Effect of every method at every hook: one row per (hook, method) (``summarize``'s columns); every method's pairs go through the model together.

    ``positions``: ``(n_problems,)`` token positions patched, at the
    ``position`` ("operand" or "final") whose value the probes read
    (``read_values``); ``clean_by_hook``: ``{hook: (n_problems, d)}`` clean
    activations there. The shuffled-order null's probe is fitted at each
    hook to the values relabelled by ``shuffled_order(period, seed)``; the
    key circles (ours, ``methods``) are the centroids' key frequencies
    (``geometry.key_circles``), listed in the ``frequencies`` column.
    A pair's new answer is y' + β at the operand, y' at the final position.
    """
    period = problems[0].period  # pragma: no mutate (the problems of a task share their period)
    index, target = target_pairs(problems, position, per_problem, seed)
    donors = matching_problems(problems, index, target, position)
    order, values = shuffled_order(period, seed), read_values(problems, position)
    relabelled = order[values]
    tables = []
    for hook, probe in tqdm(probes_by_hook.items(), desc="layers"):  # pragma: no mutate (the bar's look)
        clean = clean_by_hook[hook]
        null_probe = fit_circle_probe(clean, relabelled, period, k=len(probe.components))
        frequencies = geometry.key_circles(clean, values, period)
        chosen = methods(probe, clean, donors, seed, null_probe, order, frequencies, values)
        replaced = {name: method(index, target) for name, method in chosen.items()}
        table = measure(model, problems, index, donors, hook, positions, replaced, seed, batch_size)
        tables.append(table.assign(hook=hook, layer=check_hook(model, hook), frequencies=" ".join(map(str, frequencies))))
    columns = ["hook", "layer", "method"]
    table = pd.concat(tables, ignore_index=True)
    return table[columns + [c for c in table if c not in columns]]


def measure(
    model, problems: list[Problem], index: np.ndarray, donors: np.ndarray, hook: str, positions: np.ndarray,
    replaced: dict[str, np.ndarray], seed: int = 0,
    batch_size: int = 512,  # pragma: no mutate (the batch size changes the speed, not the logits)
) -> pd.DataFrame:  # fmt: skip
    """Run every method's replacements through the model and ``summarize`` them, with a ``chance`` column.

    ``index``, ``donors``: ``(n_pairs,)`` each pair's problem and its donor
    (whose answer is the new one); ``positions``: ``(n_problems,)`` the token
    patched in each problem; ``replaced``: method → ``(n_pairs, d)``, with
    "before", "full patch" and "mean ablation" among the methods.
    """
    allowed = candidates(model.tokenizer, problems)[index]
    old = np.array([problems[i].answer for i in index])
    new = np.array([problems[j].answer for j in donors])
    n = len(index)
    # One call for all methods: a few large batches cost a fraction of many small ones (bench/interventions.py).
    logits = patched_logits(model, [problems[i].prompt for i in index] * len(replaced), hook,
                            np.tile(positions[index], len(replaced)), np.concatenate(list(replaced.values())),
                            batch_size, allowed.repeat(len(replaced), 1))  # fmt: skip
    measured = {name: pair_effects(logits[k * n : (k + 1) * n], old, new) for k, name in enumerate(replaced)}
    table = summarize({name: m[0] for name, m in measured.items()}, {name: m[1] for name, m in measured.items()},
                      index, seed)  # fmt: skip
    return table.assign(chance=1 / problems[0].period)


def activations_at(
    model, problems: list[Problem], position: str, hooks: list[str], cache_dir=None
) -> tuple[np.ndarray, dict[str, np.ndarray]]:  # fmt: skip
    """Each problem's token index at ``position`` ("operand" or "final", from the tokenization) ``(n,)``, and the
    activations there at every hook ``{hook: (n, d)}`` float64 (cached under ``cache_dir`` when given)."""
    where = np.array([positions_in(model.tokenizer, p, prepends_bos(model))[position] for p in problems])
    clean = collect_at_positions(model, [p.prompt for p in problems], where, hooks, cache_dir=cache_dir)
    return where, {hook: acts.numpy().astype(np.float64) for hook, acts in clean.items()}  # pragma: no mutate (None: float64 too)


def position_sweep(
    model, problems: list[Problem], position: str, hooks: list[str], sweep_hooks: list[str], k: int = 5,
    per_problem: int | None = None, seed: int = 0, cache_dir=None,
) -> tuple[pd.DataFrame, pd.DataFrame]:  # fmt: skip
    """Probes at every hook of ``hooks`` and every method at ``sweep_hooks``, at one ``position`` of every problem.

    The clean activations at ``position`` ("operand" or "final", from the
    tokenization) are collected at every hook (cached under ``cache_dir``
    when given); returns ``probes.quality_by_layer``'s table, with the
    indices S and M of each layer's planes (``irreducibility.by_layer``), and
    ``sweep``'s, each with a ``position`` column.
    """
    period = problems[0].period  # pragma: no mutate (the problems of a task share their period)
    where, clean = activations_at(model, problems, position, hooks, cache_dir)
    values = read_values(problems, position)
    quality = quality_by_layer(clean, values, period, k=k, seed=seed)
    indices = irreducibility.by_layer(clean, values, period, k=k, seed=seed)
    quality = quality.merge(indices, on="layer").assign(position=position)
    fitted = {hook: fit_circle_probe(clean[hook], values, period, k=k) for hook in sweep_hooks}
    effects = sweep(model, problems, fitted, clean, where, position, per_problem=per_problem, seed=seed)
    return quality, effects.assign(position=position)


class Verdict(NamedTuple):
    """The paper's claim judged at one layer: ``category`` is one of ``VERDICTS``; ``sentence`` says why, with the
    numbers; ``rule``: the row of ``DECISIONS`` that decided it."""

    category: str
    sentence: str
    rule: int

    @property
    def reason(self) -> str:
        """The sentence without its leading category ("partly matches: …" → "…"): why, for a table of verdict words."""
        return self.sentence.split(": ", 1)[1]


VERDICTS = ("inconclusive", "matches", "partly matches", "does not match")
MATCH = 0.7  # a share of the full patch's shift at which the circle patch does "about as much" (the paper's claim)
MIN_PROBE_R2 = 0.5  # below it the probe does not read the value: no circle to patch
PART = 0.5  # below it, even at the interval's top, the circle carries less than half of the shift
NOTHING = 0.1  # a share, measured from mean ablation, under which the circle adds nothing to erasing the old value
SAME_ANSWER = 0.8  # the circle patch's accuracy, as a share of the full patch's, at which it moves the answer as far


def verdict(rows: pd.DataFrame, probe_r2: float | None = None, patch: str = "circle patch") -> Verdict:
    """The paper's claim at one layer and position, on its metric: does the circle patch shift the logit difference as the full patch does?

    ``rows``: ``summarize``'s table of one layer, indexed by method;
    ``probe_r2``: the circle probe's held-out R² there; ``patch``: the patch
    judged (the paper's ``"circle patch"``, or ours, ``KEY_CIRCLES``), read
    against its nulls (``PAIRED``). The rule, in order (the rows of ``DECISIONS``, ``Verdict.rule``):

    0. inconclusive when the probe does not read the value (R² below
       ``MIN_PROBE_R2``: the patch then moves along a plane fitted to noise);
    1. inconclusive when the full patch's own shift is not above 0 (its
       interval reaches 0: there is nothing to reproduce);
    2. inconclusive when the patch's share of it has an interval wider than 1;
    3. *does not match* when any null is not beaten, pair by pair on the same
       resampled problems (``beaten``): the lower bound of the patch's
       advantage in share is at most 0, or its advantage in wins is below 0
       across its whole interval (the null does as much, so the shift is not
       the circle's);
    4. inconclusive when the full patch makes the new answer win less than
       twice as often as chance (the ``chance`` column): the answers do not
       move, so there is no answer for the circle to carry;
    5. *matches* when the patch reproduces the full patch: a share of at least
       ``MATCH`` with a lower bound of at least ``PART``, and the new answer
       winning at least ``SAME_ANSWER`` times as often as after the full patch
       (the logit difference compares two answers only: a patch aimed at the
       old answer's neighbour raises it nearly as much as the right one);
    6. *does not match* when even the top of the share's interval is below
       ``PART``, or when the top of the share measured from mean ablation is
       below ``NOTHING`` (a patch from the mean gets the mean ablation's shift
       for free; a circle adding under a tenth of the rest adds nothing);
    7. *partly matches* otherwise.

    Shares and accuracies are compared as printed, to two decimals, so that an
    exact tie of a construction falls on the same side on every CPU.
    ``ValueError`` when a null's row lacks the paired comparison (a table
    from before ``summarize`` made it: recompute it).
    """
    rows = rows.select_dtypes("number").round(2).assign(chance=rows["chance"])
    full, circle = rows.loc["full patch"], rows.loc[patch]
    name = patch.split(" (")[0]
    nulls = rows.loc[[null for null in PAIRED[patch] if null in rows.index]]
    if len(nulls) and "advantage in share low" not in nulls:
        raise ValueError("a null's row has no paired interval: the table was summarised before the paired test "
                         "existed; recompute it (python -m mvf.commands.sweep_interventions).")  # fmt: skip
    if probe_r2 is not None and probe_r2 < MIN_PROBE_R2:
        return Verdict("inconclusive", f"inconclusive: the circle probe does not read the value here (held-out R² "
                       f"{probe_r2:.2f}), so there is no circle to patch", 0)  # fmt: skip
    if full["shift from before low"] <= 0:
        return Verdict("inconclusive", f"inconclusive: the full patch shifts the logit difference by "
                       f"{_interval(full, 'shift from before', '.2f')}, an interval that reaches 0, so there is no "  # pragma: no mutate (.2F differs only for inf and nan)
                       f"effect for the circle to reproduce", 1)  # fmt: skip
    if circle["share from before high"] - circle["share from before low"] > 1:
        return Verdict("inconclusive", f"inconclusive: the {name}'s share of the full patch's shift, "
                       f"{_interval(circle, 'share from before')}, is too uncertain to judge", 2)  # fmt: skip
    measured = (f"the {name} does {_interval(circle, 'share from before')} of the full patch's shift (wins "
                f"{circle['accuracy']:.2f}, the full patch {full['accuracy']:.2f}, chance {full['chance']:.2f})")  # fmt: skip
    against = "; ".join(f"against the {null.split(' (')[0]}: {_interval(row, 'advantage in share', '+.2f')} in share, "
                        f"{_interval(row, 'advantage in wins', '+.2f')} in wins" for null, row in nulls.iterrows())  # fmt: skip
    unbeaten = [null.split(" (")[0] for null, row in nulls.iterrows() if not beaten(row)]
    if unbeaten:
        return Verdict("does not match", f"does not match: the {' and the '.join(unbeaten)} "
                       f"{'does' if len(unbeaten) == 1 else 'do'} as much ({measured}; {against})", 3)  # fmt: skip
    if full["accuracy"] < 2 * full["chance"]:
        return Verdict("inconclusive", f"inconclusive: the answers do not move (the full patch's new answer wins "
                       f"{full['accuracy']:.2f}, under twice chance, {full['chance']:.2f})", 4)  # fmt: skip
    if _reproduces(circle, full):
        category, rule = "matches", 5
    elif circle["share from before high"] < PART or circle["share from mean ablation high"] < NOTHING:
        category, rule = "does not match", 6
    else:
        category, rule = "partly matches", 7
    nulls_said = f"it beats every null ({against})" if len(nulls) else "no null exists here (the activations span only its circles)"
    return Verdict(category, f"{category}: {measured}; {nulls_said}", rule)


# The rule of ``verdict`` as a decision table: the outcome, when it is reached (in this order) and why.
DECISIONS = pd.DataFrame(
    [
        ("inconclusive", f"the circle probe's held-out R² is below {MIN_PROBE_R2}", "no circle to patch: its plane is fitted to noise"),
        ("inconclusive", "the full patch's shift has an interval reaching 0", "nothing to reproduce"),
        ("inconclusive", "the circle's share has an interval wider than 1", "too uncertain to judge"),
        ("does not match", "a null is not beaten: the advantage in share has a lower bound ≤ 0, or the advantage in "
         "wins is below 0 across its interval", "a patch with no calendar circle does as much"),
        ("inconclusive", "the full patch's new answer wins less than twice chance", "the answers do not move"),
        ("matches", f"share ≥ {MATCH} with lower bound ≥ {PART}, and wins ≥ {SAME_ANSWER} × the full patch's",
         "the circle carries what the full patch does"),
        ("does not match", f"share's upper bound < {PART}, or the upper bound of its share from mean ablation < {NOTHING}",
         "the circle carries too little"),
        ("partly matches", "otherwise", "beats every null, carries part of the shift"),
    ],
    columns=["outcome", "when", "why"],
)  # fmt: skip


def sweep_verdicts(effects: pd.DataFrame, quality: pd.DataFrame, patch: str = "circle patch") -> pd.Series:
    """``verdict``'s category at every position and layer of a sweep: a Series indexed by ``(position, layer)``.

    ``effects`` and ``quality``: ``position_sweep``'s tables (a stored
    sweep's), each with ``position`` and ``layer`` columns; the probe's
    held-out R² comes from ``quality``'s row of the same position and layer.
    ``patch``: the patch judged (``verdict``); cells without it (a layer whose
    activations span only its circles has no key circles patch) are left out.
    """
    probe_r2 = quality.set_index(["position", "layer"])["circle R2"]
    judged = {key: verdict(rows.set_index("method"), probe_r2[key], patch).category
              for key, rows in effects.groupby(["position", "layer"], sort=False)
              if patch in set(rows["method"])}  # fmt: skip
    found = pd.Series(judged, dtype=object)
    found.index.names = ["position", "layer"]
    return found


def every_circle_key(effects: pd.DataFrame, period: int) -> pd.Series:
    """Whether every circle of the ``period`` values is key (``geometry.key_circles``) at each cell of a sweep's
    ``effects`` (its ``frequencies`` column): a Series of booleans indexed by ``(position, layer)``. There a shuffled
    order's key circles span the same space, so ``KEY_SHUFFLED`` is the same patch as ``KEY_CIRCLES``."""
    listed = effects.groupby(["position", "layer"], sort=False)["frequencies"].first()
    return listed.str.split().str.len() == (period - 1) // 2


def beaten(null: pd.Series) -> bool:
    """Whether a patch beats this null's row (``summarize``'s paired columns): more of the shift, pair by pair, with
    the advantage's lower bound above 0, and an advantage in wins not below 0 across its whole interval (its upper
    bound at least 0)."""
    return bool(null["advantage in share low"] > 0 and null["advantage in wins high"] >= 0)


def null_power(effects: pd.DataFrame, patch: str = "circle patch") -> pd.DataFrame:
    """The paired test's power, measured where the patch is known to carry the answer (a control's cells).

    ``effects``: ``summarize``'s rows of those cells, with ``method`` and
    ``cell`` columns (any label of the cell). One row per null of ``patch``
    (``PAIRED``) present: ``cells``, how many cells; ``beaten``, the share of
    them where the patch beats it (``beaten``; the power: where the answer is
    known, how often the test says so); and the mean share of resamples in which it reached the patch's
    share and wins (``null reaches share``, ``null reaches wins``).
    """
    rows = effects[effects["method"].isin(PAIRED[patch])].copy()
    rounded = rows.select_dtypes("number").round(2)  # as ``verdict`` compares them
    rows["beaten"] = [beaten(row) for _, row in rounded.iterrows()]
    return rows.groupby("method", sort=False).agg(
        cells=("cell", "nunique"), beaten=("beaten", "mean"), **{"null reaches share": ("null reaches share", "mean"),
                                                                  "null reaches wins": ("null reaches wins", "mean")})  # fmt: skip


def _reproduces(patch: pd.Series, full: pd.Series) -> bool:
    """Whether a patch's row does about what the full patch's does, by ``verdict``'s thresholds."""
    return bool(patch["share from before"] >= MATCH and patch["share from before low"] >= PART
                and patch["accuracy"] >= SAME_ANSWER * full["accuracy"])  # fmt: skip


def _interval(row: pd.Series, label: str, spec: str = ".0%") -> str:
    """``row[label]`` with its interval, e.g. "78 % [70 %, 85 %]"."""
    return f"{row[label]:{spec}} [{row[label + ' low']:{spec}}, {row[label + ' high']:{spec}}]"


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
    bar = tqdm(radii, desc="radii")  # pragma: no mutate (the bar's look)
    return np.stack([off_circle(model, problem, probe, hook, position, base, angles, float(r)) for r in bar])


def angle_answers(angles: np.ndarray, problem: Problem, position: str, order: np.ndarray | None = None) -> np.ndarray:
    """The answer each patched angle implies ``(n,)``: the value whose circle point is nearest, plus the shift at the operand position.

    ``order``: ``(period,)`` the relabelling the probe was fitted to
    (``shuffled_order``: value y sits at angle 2π·order[y]/p); ``None``: the
    calendar order.
    """
    nearest = np.round(np.asarray(angles) / (2 * np.pi / problem.period)).astype(int) % problem.period
    values = nearest if order is None else np.argsort(order)[nearest]
    return (values + (problem.shift if position == "operand" else 0)) % problem.period


TRACKING_NULL = "circle of shuffled order {} (null)"  # numbered from 1


def tracking_test(
    model, problems: list[Problem], position: str, hook: str, indices: list[int], angles: np.ndarray, k: int = 5,
    seed: int = 0, cache_dir=None, shuffles: int = 3,
) -> tuple[np.ndarray, dict[str, np.ndarray], Verdict]:  # fmt: skip
    """The off-distribution test at radius 1 from the mean activation (the paper's), against a shuffled order's circle.

    The activations at (``hook``, ``position``) of every problem are
    collected (cached under ``cache_dir`` when given) and the probe fitted on
    them; ``indices``: the problems
    patched (the paper shows one; pooling several is ours). The probe's
    point and each null's (probes fitted to ``shuffled_orders(period,
    shuffles, seed)``: with one, the verdict turned on which order was drawn)
    are placed at each of ``angles``; returns whether the most likely answer
    is the one the angle implies ``(len(indices), n_angles)``, the same for
    each null (keyed ``TRACKING_NULL.format(i)``, i from 1), and
    ``tracking_verdict``.
    """
    values, period = read_values(problems, position), problems[0].period
    where, at_hook = activations_at(model, problems, position, [hook], cache_dir)
    clean = at_hook[hook]
    base = clean.mean(axis=0)
    hits = {}
    nulls = [(TRACKING_NULL.format(i + 1), order) for i, order in enumerate(shuffled_orders(period, shuffles, seed))]
    for name, relabel in (("circle", None), *nulls):
        probe = fit_circle_probe(clean, values if relabel is None else relabel[values], period, k=k)
        hits[name] = np.array([
            off_circle(model, problems[i], probe, hook, int(where[i]), base, angles).argmax(axis=1)
            == angle_answers(angles, problems[i], position, relabel) for i in indices])  # fmt: skip
    circle = hits.pop("circle")
    return circle, hits, tracking_verdict(circle, hits, 1 / period, seed=seed)


def tracking_verdict(hits: np.ndarray, null_hits: dict[str, np.ndarray], chance: float, seed: int = 0) -> Verdict:
    """The paper's off-distribution claim: does the most likely answer follow the angle round the probe's circle?

    ``hits``: ``(n_problems, n_angles)`` whether it is the answer the angle
    implies (``angle_answers``); ``null_hits``: the same for each null's
    circle, at the same problems and angles; ``chance``: 1/p. Intervals are
    95 % over problems and angles, each resampled with replacement (crossed:
    a problem's angles are not independent draws, nor are its problems), the
    same draws for the share and the paired advantages. The
    rule, in order (the rows of ``TRACKING_DECISIONS``): 0 *does not match*
    when the share's lower bound is at most chance; 1 *does not match* when
    the advantage over a null has a lower bound at most 0; 2 *matches* when
    the share is at least ``MATCH`` with a lower bound of at least ``PART``;
    3 *partly matches* otherwise. Compared to two decimals, as printed.
    """
    hits = np.atleast_2d(hits).astype(float)
    if hits.size == 0:
        raise ValueError("no angles to judge: place the point at one angle at least.")
    names = list(null_hits)
    cells = np.stack([hits, *(hits - np.atleast_2d(null_hits[name]) for name in names)])  # (1 + nulls, problems, angles)
    generator = np.random.default_rng(seed)
    by_problem, by_angle = (generator.multinomial(n, np.full(n, 1 / n), size=BOOTSTRAP_DRAWS) for n in hits.shape)
    draws = np.einsum("dp,mpa,da->dm", by_problem, cells, by_angle) / (by_problem.sum(1) * by_angle.sum(1))[:, None]
    low, high = np.percentile(draws, [2.5, 97.5], axis=0).round(2)
    share, *advantage = cells.mean(axis=(1, 2)).round(2)
    measured = f"the answer follows the angle for {share:.2f} [{low[0]:.2f}, {high[0]:.2f}] of the angles (chance {chance:.2f})"
    against = "; ".join(f"against the {name.split(' (')[0]}: {advantage[i]:+.2f} [{low[1 + i]:+.2f}, {high[1 + i]:+.2f}]"
                        for i, name in enumerate(names))  # fmt: skip
    if low[0] <= round(chance, 2):
        return Verdict("does not match", f"does not match: {measured}", 0)
    unbeaten = [name.split(" (")[0] for i, name in enumerate(names) if low[1 + i] <= 0]
    if unbeaten:
        return Verdict("does not match", f"does not match: the {' and the '.join(unbeaten)} "
                       f"{'does' if len(unbeaten) == 1 else 'do'} as much ({measured}; {against})", 1)  # fmt: skip
    category, rule = ("matches", 2) if share >= MATCH and low[0] >= PART else ("partly matches", 3)
    return Verdict(category, f"{category}: {measured}; it beats every null ({against})", rule)


# The rule of ``tracking_verdict`` as a decision table: the outcome, when it is reached (in this order) and why.
TRACKING_DECISIONS = pd.DataFrame(
    [
        ("does not match", "the share of angles whose answer the angle implies has a lower bound ≤ chance", "the answer does not follow the angle"),
        ("does not match", "a null's circle is not beaten: the paired advantage has a lower bound ≤ 0", "any order of the names on a circle does as much"),
        ("matches", f"share ≥ {MATCH} with lower bound ≥ {PART}", "the answer follows the angle round the circle"),
        ("partly matches", "otherwise", "beats chance and every null on part of the circle"),
    ],
    columns=["outcome", "when", "why"],
)  # fmt: skip
