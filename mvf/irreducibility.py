"""The paper's indices S and M_ε (§1) on a model's own circles: is the plane the value lives in irreducible?

Chapter 1 measures separability S and the ε-mixture index M on synthetic
planes; here the same functions read the planes a model's activations give a
periodic value, at every layer: the circle probe's plane (the one the
interventions patch) and the PCA plane of the class centroids (the circles
chapter's), beside the centroid plane of the same points under a shuffled
labelling of the points (each point given another point's class), which keeps the
points and takes away what their classes share.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from mvf import geometry, metrics
from mvf.probes import DEFAULT_K, SPANNED_RTOL, circle_plane, fit_circle_probe

PLANES = ("probe plane", "centroid plane", "shuffled-label centroid plane")


def planes(activations: np.ndarray, values: np.ndarray, period: int, k: int = DEFAULT_K, seed: int = 0) -> dict[str, np.ndarray]:
    """The points ``(n, d)`` projected on each plane: name → ``(n, 2)``.

    ``values``: ``(n,)`` each point's class in 0..period-1, every class present.
    """
    centred = activations - activations.mean(axis=0)
    shuffled = np.random.default_rng(seed).permutation(values)
    return dict(zip(PLANES, (
        centred @ circle_plane(fit_circle_probe(activations, values, period, k)).T,
        geometry.centroid_plane(activations, values, period)[0].transform(activations),
        geometry.centroid_plane(activations, shuffled, period)[0].transform(activations),
    )))  # fmt: skip


def by_layer(
    clean_by_hook: dict[str, np.ndarray], values: np.ndarray, period: int, k: int = DEFAULT_K, seed: int = 0
) -> pd.DataFrame:
    """S and M_ε of every plane (``planes``) at every hook, in order: columns ``layer``, ``S (<plane>)``, ``M (<plane>)``.

    ``clean_by_hook``: ``{hook: (n, d)}``; NaN at a layer whose points do not
    vary (``varies``). The indices of all layers' planes
    are computed in one batch each (``metrics`` takes ``(batch, n, 2)``). S's
    histogram has ``bins(n)`` bins a side (the paper's 10 needs 100 points; a
    task's prompts are fewer), so compare it only with references of as many
    points and bins (``bins`` column).
    """
    layers = list(clean_by_hook.values())
    table = pd.DataFrame({"layer": range(len(layers))})
    varying = [layer for layer, activations in enumerate(layers) if varies(activations)]
    projected = [planes(layers[layer], values, period, k, seed) for layer in varying]
    for name in PLANES:
        table[f"S ({name})"] = table[f"M ({name})"] = np.nan
        if projected:
            stacked = np.stack([layer[name] for layer in projected])
            table.loc[varying, f"S ({name})"] = np.atleast_1d(metrics.separability_index(stacked, bins=bins(len(values))))
            table.loc[varying, f"M ({name})"] = np.atleast_1d(metrics.mixture_index(stacked))
    return table.assign(bins=bins(len(values)))


def varies(activations: np.ndarray) -> bool:
    """Whether the points ``(n, d)`` differ beyond rounding (a constructed model's token that sees nothing before it
    has one activation for every prompt: no plane, S and M are NaN there)."""
    return bool(np.ptp(activations, axis=0).max() > SPANNED_RTOL * np.abs(activations).max())


def bins(n: int) -> int:
    """Histogram bins a side for S on ``n`` points: the paper's 10, or fewer, so that each bin expects a point."""
    return min(metrics.DEFAULT_BINS, int(np.sqrt(n)))
