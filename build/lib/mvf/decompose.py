"""Explained variance of hidden states by groups of interpretable functions of the problem (the paper's §5).

Each group is a design matrix ``(n, g)`` built from the problems (a one-hot
of the operand, the circle of the answer, …). Groups enter a ridge
regression of the hidden states ``(n, d)`` one after another; a group's
share is the rise in R² when it enters. Groups overlap (the circle of the
operand lies in the span of its one-hot), so the order matters:
:func:`order_effects` reports each group's share when it comes first, last,
in the stated order and averaged over all orders.
"""

from __future__ import annotations

from itertools import combinations
from math import factorial

import numpy as np
import pandas as pd
from sklearn.decomposition import PCA

from mvf.probes import circle_targets
from mvf.tasks import Problem

# Relative ridge: λ = RIDGE · trace(XᵀX) / g. Only there to make overlapping groups (a one-hot and a circle of
# the same value) solvable; small enough that planted shares come back to within 1e-5.
RIDGE = 1e-8
UNEXPLAINED = "unexplained"


def _one_hot(values: np.ndarray, n_classes: int) -> np.ndarray:
    return np.eye(n_classes)[values]


def problem_groups(problems: list[Problem]) -> dict[str, np.ndarray]:
    """The stated groups, in their stated order (circles first, then one-hots): name → ``(n, g)``.

    Groups that do not vary over the problems (the shift of a successor task,
    the list length of an arithmetic task) are left out, and so is the circle
    of the operand when the shift is constant: it is then a rotation of the
    circle of the answer, spanning the same plane.
    """
    if not problems:
        raise ValueError("no problems: pass the problems of a task (mvf.tasks.task).")
    period = problems[0].period
    start, shift, answer, listed = (np.array([getattr(p, field) for p in problems]) for field in ("start", "shift", "answer", "listed"))
    groups = {
        "circle of answer": circle_targets(answer, period),
        "circle of operand": circle_targets(start, period),
        "circle of operand − shift": circle_targets((start - shift) % period, period),
        "one-hot operand": _one_hot(start, period),
        "one-hot shift": _one_hot(shift - shift.min(), shift.max() - shift.min() + 1),
        "one-hot list length": _one_hot(listed - listed.min(), listed.max() - listed.min() + 1),
    }
    if len(set(shift)) == 1:
        del groups["circle of operand"], groups["circle of operand − shift"], groups["one-hot shift"]
    if len(set(listed)) == 1:
        del groups["one-hot list length"]
    return groups


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
        for size in range(len(names) + 1)
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
                with_name = tuple(n for n in names if n in subset or n == name)
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
    pca = PCA(k, svd_solver="full").fit(rest)
    total = float(((hidden - hidden.mean(axis=0)) ** 2).sum()) / (len(hidden) - 1)
    return pca.transform(rest), pca.explained_variance_ / total


def layer_table(hidden: dict[str, np.ndarray], groups: dict[str, np.ndarray], ridge: float = RIDGE) -> pd.DataFrame:
    """Explained variance per hook (rows, in the dict's order) and group (columns, stated order + unexplained)."""
    return pd.DataFrame({hook: explained_variance(states, groups, ridge=ridge) for hook, states in hidden.items()}).T
