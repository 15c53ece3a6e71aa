"""Plain transcriptions of the paper's estimators, one plane at a time.

They exist to validate ``mvf.metrics`` (tests) and to time it (``bench/metrics.py``);
use ``mvf.metrics`` for real work.
"""

from __future__ import annotations

import numpy as np
import torch

from mvf.metrics import DEFAULT_ANGLES, DEFAULT_BINS, DEFAULT_EPSILON, rotation_angles


def separability_index_reference(points: np.ndarray, bins: int = DEFAULT_BINS, angles: int = DEFAULT_ANGLES) -> float:
    """S in bits of one plane ``(n, 2)``: one ``np.histogram2d`` per rotation angle."""
    centred = points - points.mean(axis=0)
    values = []
    for theta in rotation_angles(angles):
        rotation = np.array([[np.cos(theta), -np.sin(theta)], [np.sin(theta), np.cos(theta)]])
        rotated = centred @ rotation.T
        joint, _, _ = np.histogram2d(rotated[:, 0], rotated[:, 1], bins=bins)
        joint /= joint.sum()
        px, py = joint.sum(axis=1), joint.sum(axis=0)
        mi = 0.0
        for i in range(bins):
            for j in range(bins):
                if joint[i, j] > 0:
                    mi += joint[i, j] * np.log(joint[i, j] / (px[i] * py[j]))
        values.append(mi / np.log(2.0))
    return float(min(values))


def mixture_index_reference(
    points: np.ndarray,
    epsilon: float = DEFAULT_EPSILON,
    steps: int = 10_000,
    lr: float = 0.1,
    anneal: bool = True,
    seed: int = 0,
) -> float:
    """M_ε of one plane ``(n, 2)`` by gradient ascent on the sigmoid-smoothed objective.

    Temperature T goes linearly from 1 towards 0 when ``anneal`` (the paper's
    synthetic demo) and stays at 1 otherwise (its GPT-2 pipeline).
    """
    generator = torch.Generator().manual_seed(seed)
    x = torch.as_tensor(points, dtype=torch.float64)
    a = torch.randn(2, generator=generator, dtype=torch.float64).requires_grad_()
    b = torch.zeros(1, dtype=torch.float64, requires_grad=True)
    optimiser = torch.optim.SGD([a, b], lr=lr)
    for step in range(steps):
        temperature = max(1.0 - step / steps, 1e-2) if anneal else 1.0
        shifted = x @ a + b
        z = shifted / torch.sqrt(torch.mean(shifted**2))
        objective = torch.mean(torch.sigmoid((epsilon - torch.abs(z)) / temperature))
        optimiser.zero_grad()
        (-objective).backward()
        optimiser.step()
    with torch.no_grad():
        shifted = x @ a + b
        z = shifted / torch.sqrt(torch.mean(shifted**2))
        return float((torch.abs(z) < epsilon).double().mean())
