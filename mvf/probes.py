"""Circle probes: PCA to k dimensions, then a linear map to (cos 2πy/p, sin 2πy/p) (the paper's §4)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
from sklearn.model_selection import KFold

DEFAULT_K = 5  # the paper's PCA dimension
FOLDS = 5  # cross-validation folds of the probes and of their shuffled-order baseline
# Directions whose singular value is below this fraction of the largest carry only rounding (activations are float32,
# relative precision 6e-8): PCA's choice of them is arbitrary, and a least-squares fit onto them amplifies noise.
SPANNED_RTOL = 1e-4
# Two singular values closer than this (relative) tie: which of their directions PCA keeps is rounding's choice.
TIE_RTOL = 1e-4


@dataclass(frozen=True)
class CircleProbe:
    """A fitted probe. ``mean`` ``(d,)``, ``components`` ``(k, d)`` (orthonormal rows), ``weights`` ``(k + 1, 2)``.

    ``determined``: how many leading components the activations determine (the rest get zero weight): components
    they span, not tied with the first one left out (see :func:`determined_components`).
    """

    mean: np.ndarray
    components: np.ndarray
    weights: np.ndarray
    period: int
    determined: int

    def reduced(self, activations: np.ndarray) -> np.ndarray:
        """Coordinates on the probe's PCA components: ``(n, d)`` → ``(n, k)``."""
        return (activations - self.mean) @ self.components.T

    def circle_point(self, activations: np.ndarray) -> np.ndarray:
        """Predicted (cos, sin) points: ``(n, d)`` → ``(n, 2)``."""
        reduced = self.reduced(activations)
        return np.column_stack([reduced, np.ones(len(reduced))]) @ self.weights

    def angle(self, activations: np.ndarray) -> np.ndarray:
        """Predicted angle in radians, ``(n, d)`` → ``(n,)``."""
        point = self.circle_point(activations)
        return np.arctan2(point[:, 1], point[:, 0])


def circle_plane(probe: CircleProbe) -> np.ndarray:
    """Orthonormal basis ``(2, d)`` of the plane in which the probe's circle patch moves activations (``interventions.circle_patch``)."""
    return np.linalg.qr((np.linalg.pinv(probe.weights[:-1]) @ probe.components).T)[0].T


def circle_targets(values: np.ndarray, period: int) -> np.ndarray:
    """(cos 2πy/p, sin 2πy/p) for integer values ``(n,)`` → ``(n, 2)``."""
    angle = 2 * np.pi * np.asarray(values) / period
    return np.column_stack([np.cos(angle), np.sin(angle)])


def _check(activations: np.ndarray, values: np.ndarray, k: int) -> None:
    if activations.ndim != 2 or len(activations) != len(values):
        raise ValueError(f"activations must be (n, d) with one value each; got {activations.shape} and {len(values)}.")
    if not np.isfinite(activations).all():
        raise ValueError("activations contain NaN or inf.")
    if k < 1:
        raise ValueError(f"k={k}: a probe needs at least one PCA dimension; use k >= 1 (the paper's is {DEFAULT_K}).")
    if len(np.unique(values)) < 3:
        raise ValueError(f"the values hold {len(np.unique(values))} distinct class(es); a circle needs at least 3: "
                         f"fit the probe on points of several values.")  # fmt: skip
    if k > min(activations.shape) - 1:
        raise ValueError(f"k={k} is too large: with {activations.shape[0]} points in {activations.shape[1]} "
                         f"dimensions, k can be at most {min(activations.shape) - 1}.")  # fmt: skip


def determined_components(singular: np.ndarray, k: int) -> int:
    """How many of the top ``k`` principal directions the data determine, from their singular values ``(m,)``.

    A direction whose singular value is below ``SPANNED_RTOL`` of the largest
    is not spanned (rounding's); where the k-th value ties with the (k+1)-th
    (within ``TIE_RTOL``), the split between them is rounding's too, and both
    are left out. Data in general position determine all k; a constructed
    model's exact circle (rank 2, two equal values) determines fewer.
    """
    used = min(k, int((singular > SPANNED_RTOL * singular[0]).sum())) if len(singular) else 0
    while 0 < used < len(singular) and singular[used - 1] - singular[used] <= TIE_RTOL * singular[used - 1]:
        used -= 1
    return used


def fit_circle_probe(activations: np.ndarray, values: np.ndarray, period: int, k: int = DEFAULT_K) -> CircleProbe:
    """Fit PCA-k of ``(n, d)`` activations, then least squares onto the circle points of ``values``.

    Only the components the activations determine (:func:`determined_components`) enter the fit; the others
    (none, on activations in general position) get zero weight.
    """
    _check(activations, values, k)
    return _circle_probes(activations, [values], period, k)[0]


def _circle_probes(activations: np.ndarray, value_sets: list[np.ndarray], period: int, k: int) -> list[CircleProbe]:
    """:func:`fit_circle_probe` for each of ``value_sets`` (each ``(n,)``) on the same activations, through one PCA."""
    mean = activations.mean(axis=0)
    centred = activations - mean
    _, singular, vt = np.linalg.svd(centred, full_matrices=False)  # pragma: no mutate (only rows of vt under k are read)
    used = determined_components(singular, k)
    design = np.column_stack([centred @ vt[:used].T, np.ones(len(activations))])
    # All the value sets' targets side by side: one least-squares solve, two columns each.
    fitted = _least_squares(design, np.hstack([circle_targets(values, period) for values in value_sets]))
    probes = []
    for columns in np.split(fitted, len(value_sets), axis=1):
        weights = np.zeros((k + 1, 2))
        weights[:used], weights[-1] = columns[:-1], columns[-1]
        probes.append(CircleProbe(mean, vt[:k], weights, period, used))
    return probes


def _least_squares(design: np.ndarray, targets: np.ndarray) -> np.ndarray:
    """Coefficients ``(m, ...)`` minimising ``|design @ coefficients - targets|`` for ``design`` ``(n, m)``."""
    return np.linalg.lstsq(design, targets, rcond=None)[0]  # pragma: no mutate (rcond=None is numpy 2's default)


def angular_error(predicted: np.ndarray, values: np.ndarray, period: int) -> np.ndarray:
    """Absolute angle between predicted angles ``(n,)`` and the true values' angles, in radians ``(n,)``."""
    difference = predicted - 2 * np.pi * np.asarray(values) / period
    return np.abs(np.angle(np.exp(1j * difference)))


def cross_validate(activations: np.ndarray, values: np.ndarray, period: int, k: int = DEFAULT_K, folds: int = FOLDS, seed: int = 0) -> dict[str, float]:
    """Held-out quality of the circle probe and of a linear (non-circular) probe of the same PCA rank.

    Circle probe: R² of the (cos, sin) prediction and mean angular error.
    Linear probe: PCA-k then least squares onto the value itself; its angular
    error reads the predicted value as an angle 2π·ŷ/p.
    """
    _check(activations, values, k)
    return _cross_validated(activations, [np.asarray(values)], period, k, folds, seed)[0]


def _cross_validated(
    activations: np.ndarray, value_sets: list[np.ndarray], period: int, k: int, folds: int, seed: int
) -> list[dict[str, float]]:  # fmt: skip
    """:func:`cross_validate` of each of ``value_sets``: the folds depend only on n and ``seed``, so each fold's PCA
    serves every value set."""
    n, m = len(activations), len(value_sets)
    predicted_points, predicted_angle, predicted_value = np.zeros((m, n, 2)), np.zeros((m, n)), np.zeros((m, n))
    for train, test in KFold(folds, shuffle=True, random_state=seed).split(activations):
        probes = _circle_probes(activations[train], [values[train] for values in value_sets], period, k)
        used = probes[0].determined
        design = np.column_stack([probes[0].reduced(activations)[:, :used], np.ones(n)])
        coefficients = _least_squares(design[train], np.column_stack([values[train] for values in value_sets]))
        predicted_value[:, test] = (design[test] @ coefficients).T
        for i, probe in enumerate(probes):
            predicted_points[i, test] = probe.circle_point(activations[test])
            predicted_angle[i, test] = probe.angle(activations[test])
    scores = []
    for values, points, angle, value in zip(value_sets, predicted_points, predicted_angle, predicted_value):
        targets = circle_targets(values, period)
        scores.append({
            "circle R2": 1 - ((points - targets) ** 2).sum() / ((targets - targets.mean(axis=0)) ** 2).sum(),
            "circle angular error": float(angular_error(angle, values, period).mean()),
            "linear R2": 1 - ((value - values) ** 2).sum() / ((values - values.mean()) ** 2).sum(),
            "linear angular error": float(angular_error(2 * np.pi * value / period, values, period).mean()),
        })  # fmt: skip
    return scores


def permutation_baseline(
    activations: np.ndarray, values: np.ndarray, period: int, k: int = DEFAULT_K, shuffles: int = 20, seed: int = 0
) -> np.ndarray:
    """Held-out circle R² of the same probe fitted to shuffled calendar orders: ``(shuffles,)``.

    Each shuffle relabels the p values by a random permutation (Monday might
    become 4, Tuesday 0, …), so the classes stay separable but their order on
    the circle is arbitrary. Any probe of rank k can fit some of such an
    arbitrary code; the real probe's margin over these R² is what says the
    calendar order is there.
    """
    _check(activations, values, k)
    generator = np.random.default_rng(seed)
    values = np.asarray(values)
    shuffled = [generator.permutation(period)[values] for _ in range(shuffles)]
    return np.array([scores["circle R2"] for scores in _cross_validated(activations, shuffled, period, k, FOLDS, seed)])


def quality_by_layer(
    clean_by_hook: dict[str, np.ndarray], values: np.ndarray, period: int, k: int = DEFAULT_K, seed: int = 0
) -> pd.DataFrame:
    """Per hook (in order, ``layer`` 0, 1, …): ``cross_validate``'s scores, the shuffled-order baseline and the margin.

    ``clean_by_hook``: ``{hook: (n, d)}``. Columns: ``layer``, the circle and
    linear probes' R² and angular errors, ``shuffled R2 (mean)`` and
    ``shuffled R2 (max)`` (``permutation_baseline``), and ``margin``, the
    circle R² minus the shuffled maximum.
    """
    rows = []
    for layer, activations in enumerate(clean_by_hook.values()):
        shuffled = permutation_baseline(activations, values, period, k=k, seed=seed)
        rows.append({"layer": layer} | cross_validate(activations, values, period, k=k, seed=seed)
                    | {"shuffled R2 (mean)": shuffled.mean(), "shuffled R2 (max)": shuffled.max()})  # fmt: skip
    table = pd.DataFrame(rows)
    return table.assign(margin=table["circle R2"] - table["shuffled R2 (max)"])
