"""Explained variance of hidden states by groups of interpretable functions of the problem (the paper's §5).

Each group is a design matrix ``(n, g)`` built from the problems (one-hot
codes of the operand and shift, the circle of the answer, …). Groups enter a
ridge regression of the hidden states ``(n, d)`` (the paper: their top-20
principal components, :func:`top_components`) one after another; a group's
share is the rise in R² when it enters. Groups overlap (the circle of the
operand lies in the span of its one-hot), so the order matters:
:func:`order_effects` reports each group's share when it comes first, last,
in the stated order and averaged over all orders, and :func:`shuffled_shares`
the shares that circles of shuffled calendar orders get.
"""

from __future__ import annotations

from itertools import combinations
from math import factorial

import numpy as np
import pandas as pd
from sklearn.decomposition import PCA

from mvf.interventions import PART, Verdict, shuffled_orders
from mvf.probes import circle_targets
from mvf.tasks import Problem

# Relative ridge: λ = RIDGE · trace(XᵀX) / g. Only there to make overlapping groups (a one-hot and a circle of
# the same value) solvable; small enough that planted shares come back to within 1e-5.
RIDGE = 1e-8
UNEXPLAINED = "unexplained"


def _one_hot(values: np.ndarray, n_classes: int) -> np.ndarray:
    return np.eye(n_classes)[values]


PAPER_COMPONENTS = 20  # the paper regresses the top-20 principal components of the hidden states


def problem_groups(problems: list[Problem], order: str = "paper", relabel: np.ndarray | None = None) -> dict[str, np.ndarray]:
    """Groups of functions of the problems, in the order they enter the regression: name → ``(n, g)``.

    ``order="paper"``: the one-hot codes of the operand α and the shift β
    together (and of the list length, for a successor task), then the circle
    of the answer γ = α + β and the circle of α − β; what a circle adds is
    what an additive code of α and β cannot express. ``order="circles first"``
    (ours): the circles, then the one-hot codes, which catch whatever the
    circles missed. Groups that do not vary are left out, and so is the
    circle of α − β when β is constant (it is then the circle of γ rotated).
    ``relabel``: a permutation of the p values applied inside the circles, for
    the shuffled-code baseline (``shuffled_shares``).
    """
    if not problems:
        raise ValueError("no problems: pass the problems of a task (mvf.tasks.task).")
    if order not in ("paper", "circles first"):
        raise ValueError(f"order must be 'paper' or 'circles first', not {order!r}.")
    period = problems[0].period
    relabel = np.arange(period) if relabel is None else np.asarray(relabel)
    start, shift, answer, listed = (np.array([getattr(p, field) for p in problems]) for field in ("start", "shift", "answer", "listed"))
    shift_varies = len(set(shift)) > 1
    one_hots = [_one_hot(start, period)]
    if shift_varies:
        one_hots.append(_one_hot(shift - shift.min(), shift.max() - shift.min() + 1))
    if len(set(listed)) > 1:
        one_hots.append(_one_hot(listed - listed.min(), listed.max() - listed.min() + 1))
    circles = {"circle of answer": circle_targets(relabel[answer], period)}
    if shift_varies:
        circles["circle of operand − shift"] = circle_targets(relabel[(start - shift) % period], period)
    codes = {"one-hot codes": np.column_stack(one_hots)}
    return codes | circles if order == "paper" else circles | codes


def top_components(hidden: np.ndarray, k: int = PAPER_COMPONENTS) -> np.ndarray:
    """The hidden states' scores on their top ``k`` principal components ``(n, min(k, n − 1, d))``."""
    k = min(k, len(hidden) - 1, hidden.shape[1])
    return PCA(k, svd_solver="full").fit_transform(hidden)  # pragma: no mutate (another solver differs by rounding)


def shuffled_shares(
    hidden: np.ndarray, problems: list[Problem], order: str = "paper", shuffles: int = 20, seed: int = 0
) -> pd.DataFrame:
    """Each group's share with the circles drawn on shuffled calendar orders: one row per shuffle.

    The baseline of every circle's share: a circle of arbitrarily ordered
    values is a 2-D code of the value like any other, and takes some variance
    whenever the value matters at all.
    """
    orders = shuffled_orders(problems[0].period, shuffles, seed)
    return pd.DataFrame([explained_variance(hidden, problem_groups(problems, order, relabel)) for relabel in orders])


def circle_verdict(shares: pd.Series, shuffled: pd.DataFrame) -> Verdict:
    """Ours: does the circle of the answer explain more of the hidden states than any circle of a shuffled order?

    ``shares``: the circle of the answer's share at each layer (indexed by
    hook); ``shuffled``: the same share with each shuffled order's circle
    ``(shuffles, layers)`` (``shuffled_shares``' column, the same orders at
    every layer). Each takes its best layer: the circle's peak against every
    shuffled order's own peak, compared to two decimals. The rule, in order:
    0 *does not match* when a shuffled order's peak reaches the circle's;
    1 *matches* when the circle's peak is at least ``PART`` (half the
    variance); 2 *partly matches* otherwise (more than any shuffled order,
    less than half).
    """
    if shares.empty or shuffled.empty:
        raise ValueError("no layers or no shuffled orders to compare: decompose at least one layer, with shuffles > 0.")
    layer, peak = shares.idxmax(), round(float(shares.max()), 2)
    null_peak = round(float(shuffled.max(axis=1).max()), 2)
    measured = (f"the circle of the answer explains {peak:.2f} of the variance at its best layer ({layer}); the best of "
                f"{len(shuffled)} circles of shuffled orders, each at its own best layer, {null_peak:.2f}")  # fmt: skip
    if null_peak >= peak:
        return Verdict("does not match", f"does not match: a circle of a shuffled order explains as much ({measured})", 0)
    category, rule = ("matches", 1) if peak >= PART else ("partly matches", 2)
    return Verdict(category, f"{category}: {measured}", rule)


def _check(hidden: np.ndarray, groups: dict[str, np.ndarray]) -> None:
    if hidden.ndim != 2:
        raise ValueError(f"hidden states must be (n, d); got shape {hidden.shape}.")
    if not np.isfinite(hidden).all():
        raise ValueError("hidden states contain NaN or inf.")
    if not groups:
        raise ValueError("no groups to regress on.")
    for name, design in groups.items():
        if design.ndim != 2 or len(design) != len(hidden):
            raise ValueError(f"group {name!r} must be ({len(hidden)}, g), one row per hidden state; got {design.shape}.")
    if ((hidden - hidden.mean(axis=0)) ** 2).sum() == 0:
        raise ValueError("all hidden states are identical: there is no variance to explain.")


def _fit(centred: np.ndarray, design: np.ndarray, ridge: float) -> np.ndarray:
    """Ridge fit of centred ``(n, d)`` on ``(n, g)`` (centred here); returns the fitted values ``(n, d)``."""
    x = design - design.mean(axis=0)
    gram = x.T @ x
    lam = ridge * np.trace(gram) / max(len(gram), 1)
    return x @ np.linalg.solve(gram + lam * np.eye(len(gram)), x.T @ centred)


def _r2(centred: np.ndarray, total: float, design: np.ndarray | None, ridge: float) -> float:
    if design is None:
        return 0.0
    return 1 - float(((centred - _fit(centred, design, ridge)) ** 2).sum()) / total


def explained_variance(
    hidden: np.ndarray, groups: dict[str, np.ndarray], order: list[str] | None = None, ridge: float = RIDGE
) -> pd.Series:
    """Share of the variance of ``(n, d)`` hidden states each group adds when entered in ``order``.

    Returns a Series: group → share, then ``"unexplained"``; it sums to 1.
    ``order`` defaults to the order of ``groups``.
    """
    _check(hidden, groups)
    order = list(groups) if order is None else order
    if sorted(order) != sorted(groups):
        raise ValueError(f"order must name each group once: {sorted(groups)}; got {order}.")
    centred = hidden - hidden.mean(axis=0)
    total = float((centred**2).sum())
    shares, before = {}, 0.0
    for i, name in enumerate(order):
        after = _r2(centred, total, np.column_stack([groups[g] for g in order[: i + 1]]), ridge)
        shares[name], before = after - before, after
    return pd.Series(shares | {UNEXPLAINED: 1 - before})


def order_effects(hidden: np.ndarray, groups: dict[str, np.ndarray], ridge: float = RIDGE) -> pd.DataFrame:
    """Each group's share when it enters first, last, in the stated order, and averaged over all orders.

    The average over all orders is the Shapley value of R²; computed from the
    R² of every subset of groups (2^g fits), so keep g small (≤ 10).
    """
    _check(hidden, groups)
    names = list(groups)
    if len(names) > 10:
        raise ValueError(f"{len(names)} groups need 2^{len(names)} fits; merge some groups (at most 10).")
    centred = hidden - hidden.mean(axis=0)
    total = float((centred**2).sum())
    r2 = {
        subset: _r2(centred, total, np.column_stack([groups[g] for g in subset]) if subset else None, ridge)
        for size in range(len(names) + 1)  # pragma: no mutate (no subset is larger than all the groups)
        for subset in combinations(names, size)
    }
    g = len(names)
    rows = {}
    for name in names:
        others = [n for n in names if n != name]
        shapley = 0.0
        for size in range(g):
            weight = factorial(size) * factorial(g - size - 1) / factorial(g)
            for subset in combinations(others, size):
                with_name = tuple(n for n in names if n in subset or n == name)  # pragma: no mutate (its complement has the mirrored size and weight)
                shapley += weight * (r2[with_name] - r2[subset])
        rows[name] = {
            "first": r2[(name,)],
            "last": r2[tuple(names)] - r2[tuple(others)],
            "average over orders": shapley,
        }
    table = pd.DataFrame(rows).T
    table.insert(0, "stated order", explained_variance(hidden, groups, ridge=ridge)[names])
    return table


def residual(hidden: np.ndarray, groups: dict[str, np.ndarray], ridge: float = RIDGE) -> np.ndarray:
    """What no group explains: centred hidden states minus their fit on all groups, ``(n, d)``."""
    _check(hidden, groups)
    centred = hidden - hidden.mean(axis=0)
    return centred - _fit(centred, np.column_stack(list(groups.values())), ridge)


def residual_pca(hidden: np.ndarray, groups: dict[str, np.ndarray], k: int = 3, ridge: float = RIDGE) -> tuple[np.ndarray, np.ndarray]:
    """PCA of the residual: scores ``(n, k)`` and each component's share of the *total* variance ``(k,)``."""
    rest = residual(hidden, groups, ridge)
    if not 1 <= k <= min(rest.shape):
        raise ValueError(f"k={k} must be between 1 and {min(rest.shape)} for {rest.shape[0]} hidden states.")
    pca = PCA(k, svd_solver="full").fit(rest)  # pragma: no mutate (another solver differs by rounding)
    total = float(((hidden - hidden.mean(axis=0)) ** 2).sum()) / (len(hidden) - 1)
    return pca.transform(rest), pca.explained_variance_ / total


def varying(hidden: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """The hooks whose hidden states ``(n, d)`` differ between problems; the others have no variance to explain.

    Under rotary positions the embeddings (layer 0) of the final token are the
    same token's embedding in every problem.
    """
    return {hook: states for hook, states in hidden.items() if not np.allclose(states, states[0])}


def layer_table(hidden: dict[str, np.ndarray], groups: dict[str, np.ndarray], ridge: float = RIDGE) -> pd.DataFrame:
    """Explained variance per hook (rows, in the dict's order) and group (columns, stated order + unexplained)."""
    return pd.DataFrame({hook: explained_variance(states, groups, ridge=ridge) for hook, states in hidden.items()}).T
