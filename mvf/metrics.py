"""Reducibility metrics of 2-D features: separability index S and ε-mixture index M.

Both follow Engels et al. (2024), §1 of ``shared/paper/methods.md``:

* S(f) = min over rotations of the mutual information (bits) between the two
  coordinates, estimated with a 10×10 histogram over the data range at 100
  angles in [0, 2π]. Low S means separable.
* M_ε(f) = max over a unit direction v and offset c of the fraction of points
  with |z| < ε, where z = (v·f + c) / rms(v·f + c). High M means the points
  are mostly a mixture of lower-dimensional parts.

Every public function accepts numpy arrays or torch tensors of shape
``(n, 2)`` (one plane) or ``(batch, n, 2)`` (one result per plane).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
import torch

DEFAULT_BINS = 10
DEFAULT_ANGLES = 100
DEFAULT_EPSILON = 0.1

# Direction search for M: a coarse scan of [0, π), then two local refinements
# around the best directions. M is piecewise constant in the angle, so a local
# grid (not a gradient) is what finds the narrow optimum of a thin line.
_COARSE_DIRECTIONS = 90
_COARSE_POINTS = 1024
_REFINE_CANDIDATES = 2
_REFINE_STEPS = 9
_REFINE_ROUNDS = 3
# Planes per chunk keep the (planes, directions, n) workspace near 100 MB.
_WORKSPACE_ELEMENTS = 12_000_000


@dataclass(frozen=True)
class MutualInformationCurve:
    """Mutual information (bits) of the rotated coordinates at each angle.

    ``angles``: ``(angles,)`` radians; ``bits``: ``(angles,)`` or ``(batch, angles)``;
    ``best_angle`` and ``separability``: the argmin angle and the minimum, per plane.
    """

    angles: np.ndarray
    bits: np.ndarray
    best_angle: float | np.ndarray
    separability: float | np.ndarray


@dataclass(frozen=True)
class MixtureFit:
    """The best ε-mixture band of a plane (or of each plane in a batch).

    ``direction``: unit v, ``(2,)`` or ``(batch, 2)``; ``offset``: c;
    ``z``: normalised projections (v·f + c) / rms, ``(n,)`` or ``(batch, n)``;
    ``index``: M_ε, the fraction of points with |z| < ε.
    """

    direction: np.ndarray
    offset: float | np.ndarray
    z: np.ndarray
    epsilon: float
    index: float | np.ndarray


def as_planes(points, min_points: int = 3) -> tuple[np.ndarray, bool]:
    """Return float64 points of shape ``(batch, n, 2)`` and whether the input was a single plane.

    Raises ``ValueError`` for a wrong shape, non-finite values, too few points
    or a plane whose points are all identical.
    """
    if isinstance(points, torch.Tensor):
        points = points.detach().cpu().numpy()
    array = np.asarray(points, dtype=np.float64)
    if array.ndim not in (2, 3) or array.shape[-1] != 2:
        raise ValueError(
            f"points must have shape (n, 2) or (batch, n, 2), got {array.shape}; "
            "project the feature onto a plane first (e.g. two PCA components)."
        )
    single = array.ndim == 2
    planes = array[None] if single else array
    if planes.shape[0] == 0:
        raise ValueError("points has an empty batch dimension; pass at least one plane.")
    bad = ~np.isfinite(planes).all(axis=(1, 2))
    if bad.any():
        raise ValueError(
            f"points contain NaN or inf (plane {int(np.flatnonzero(bad)[0])}); "
            "drop or impute those rows before measuring."
        )
    if planes.shape[1] < min_points:
        raise ValueError(
            f"got {planes.shape[1]} points per plane but at least {min_points} are needed; "
            "collect more points (or use fewer histogram bins for S)."
        )
    spread = np.ptp(planes, axis=1).max(axis=1)
    degenerate = spread == 0
    if degenerate.any():
        raise ValueError(
            f"all points of plane {int(np.flatnonzero(degenerate)[0])} are identical; "
            "a single point has no shape to measure."
        )
    return planes, single


def _unbatch(values: np.ndarray, single: bool) -> float | np.ndarray:
    """One value per plane ``(batch,)`` → a float when the input was a single plane."""
    return float(values[0]) if single else values


def _check_bins_angles(bins: int, angles: int) -> None:
    if bins < 2:
        raise ValueError(f"bins must be at least 2, got {bins}.")
    if angles < 1:
        raise ValueError(f"angles must be at least 1, got {angles}.")


def rotation_angles(angles: int = DEFAULT_ANGLES) -> np.ndarray:
    """The paper's rotation grid: ``angles`` values evenly spaced over [0, 2π], shape ``(angles,)``."""
    return np.linspace(0.0, 2.0 * np.pi, angles)


def _mutual_information_bits(planes: np.ndarray, thetas: np.ndarray, bins: int) -> np.ndarray:
    """MI in bits of the rotated coordinates, ``(batch, n, 2)`` → ``(batch, angles)``.

    All rotations are one matrix product, and all (plane, angle) histograms are
    filled by a single ``bincount`` over a combined cell index instead of one
    ``histogram2d`` call each. float32 is enough for bin assignment after centring.
    """
    batch, n, _ = planes.shape
    count = len(thetas)
    cos, sin = np.cos(thetas), np.sin(thetas)
    # float32 halves the workspace; float64 would change only which bin a point on a bin edge falls in.
    rotation = np.concatenate([np.stack([cos, -sin]), np.stack([sin, cos])], axis=1)
    rotation = rotation.astype(np.float32)  # pragma: no mutate (the precision of the workspace)
    centred = planes - planes.mean(axis=1, keepdims=True)
    centred = centred.astype(np.float32)  # pragma: no mutate (the precision of the workspace)
    out = np.empty((batch, count))
    chunk = max(1, _WORKSPACE_ELEMENTS // (2 * n * count))  # pragma: no mutate (the chunk size changes memory only)
    for start in range(0, batch, chunk):  # pragma: no mutate (chunks change memory only; every plane is measured)
        rotated = centred[start : start + chunk] @ rotation
        bin_of = _bin_index(rotated, bins)
        m = rotated.shape[0] * count
        cells = bin_of[..., :count] * bins + bin_of[..., count:]
        cells += (np.arange(m, dtype=np.int32) * bins * bins).reshape(-1, 1, count)  # pragma: no mutate (int32 or 64, -1 or -2: numpy reads both alike)
        joint = np.bincount(cells.ravel(), minlength=m * bins * bins).reshape(m, bins, bins) / n
        out[start : start + chunk] = _joint_mutual_information(joint).reshape(-1, count)  # pragma: no mutate (reshape reads -2 as -1)
    return out / np.log(2.0)


def _bin_index(values: np.ndarray, bins: int) -> np.ndarray:
    """Histogram bin of each value over its column's [min, max] along axis 1, like ``np.histogram``."""
    low = values.min(axis=1, keepdims=True)
    high = values.max(axis=1, keepdims=True)
    width = high - low
    # np.histogram widens a zero range to ±0.5; any constant column lands in one bin either way (scale 0: bin 0).
    scale = bins / np.where(width > 0, width, np.inf)
    return np.minimum(((values - low) * scale).astype(np.int32), bins - 1)


def _joint_mutual_information(joint: np.ndarray) -> np.ndarray:
    """Mutual information (nats) of joint distributions ``(m, bins, bins)`` → ``(m,)``."""
    px = joint.sum(axis=2, keepdims=True)
    py = joint.sum(axis=1, keepdims=True)
    ratio = np.divide(joint, px * py, out=np.ones_like(joint), where=joint > 0)
    return (joint * np.log(ratio)).sum(axis=(1, 2))


def mutual_information_curve(points, bins: int = DEFAULT_BINS, angles: int = DEFAULT_ANGLES) -> MutualInformationCurve:
    """Mutual information over rotation angles, its minimum S and the angle where it is reached.

    ``points``: ``(n, 2)`` or ``(batch, n, 2)``; bits: ``(angles,)`` or ``(batch, angles)``.
    """
    _check_bins_angles(bins, angles)
    planes, single = as_planes(points, min_points=bins * bins)
    thetas = rotation_angles(angles)
    bits = _mutual_information_bits(planes, thetas, bins)
    best = bits.argmin(axis=1)
    return MutualInformationCurve(
        angles=thetas,
        bits=bits[0] if single else bits,
        best_angle=_unbatch(thetas[best], single),
        separability=_unbatch(bits.min(axis=1), single),
    )


def separability_index(points, bins: int = DEFAULT_BINS, angles: int = DEFAULT_ANGLES) -> float | np.ndarray:
    """Separability index S in bits: a float for ``(n, 2)``, shape ``(batch,)`` for ``(batch, n, 2)``."""
    return mutual_information_curve(points, bins=bins, angles=angles).separability


def _best_offsets(projections: np.ndarray, epsilon: float) -> tuple[np.ndarray, np.ndarray]:
    """Exact best offset along each direction: ``(rows, n)`` projections → counts and line positions ``(rows,)``.

    With q = p − mean(p), σ² = var(p) and w the line's position, a point is
    inside the band when (q − w)² < ε²(σ² + w²): an open interval of w whose
    ends grow monotonically with q. After sorting q, the left and right ends
    are both sorted, so the deepest overlap of the intervals is found with one
    ``searchsorted``: just right of left end j, points k..j are inside, where k
    counts the right ends at or before it.
    """
    mean = projections.mean(axis=1, keepdims=True)
    q = np.sort(projections - mean, axis=1)
    shrink = 1.0 - epsilon**2
    half = epsilon * np.sqrt(q**2 + shrink * q.var(axis=1, keepdims=True))
    left, right = (q - half) / shrink, (q + half) / shrink
    closed = torch.searchsorted(torch.from_numpy(right), torch.from_numpy(left), right=True, out_int32=True).numpy()
    counts = np.arange(1, q.shape[1] + 1) - closed
    best = counts.argmax(axis=1)[:, None]
    inner_right = np.take_along_axis(right, np.take_along_axis(closed, best, axis=1), axis=1)
    next_left = np.concatenate([left[:, 1:], np.full_like(left[:, :1], np.inf)], axis=1)
    next_left = np.take_along_axis(next_left, best, axis=1)
    position = (np.take_along_axis(left, best, axis=1) + np.minimum(inner_right, next_left)) / 2
    return np.take_along_axis(counts, best, axis=1)[:, 0], (position + mean)[:, 0]


def _scan_directions(planes: np.ndarray, thetas: np.ndarray, epsilon: float) -> tuple[np.ndarray, np.ndarray]:
    """Counts and line positions for every plane and direction: ``(b, n, 2)``, ``(b, d)`` → ``(b, d)`` each."""
    directions = np.stack([np.cos(thetas), np.sin(thetas)], axis=-1).astype(planes.dtype)
    projections = directions @ planes.transpose(0, 2, 1)
    counts, positions = _best_offsets(projections.reshape(-1, planes.shape[1]), epsilon)
    return counts.reshape(thetas.shape), positions.reshape(thetas.shape)


def _search_direction(planes: np.ndarray, epsilon: float) -> tuple[np.ndarray, np.ndarray]:
    """Best direction angle and line position per plane, ``(b, n, 2)`` → ``(b,)``, ``(b,)``.

    The coarse scan runs on an evenly strided subsample of the points; every
    refinement round re-scores on all points, with its grid centred on (and
    including) the best angles of the round before.
    """
    batch, n, _ = planes.shape
    step = np.pi / _COARSE_DIRECTIONS
    thetas = np.broadcast_to(np.arange(_COARSE_DIRECTIONS) * step, (batch, _COARSE_DIRECTIONS))
    counts, _ = _scan_directions(planes[:, :: max(1, n // _COARSE_POINTS)], thetas, epsilon)
    offsets = np.linspace(-1.0, 1.0, _REFINE_STEPS)
    for _ in range(_REFINE_ROUNDS):
        top = np.argsort(-counts, axis=1, kind="stable")[:, :_REFINE_CANDIDATES]
        centres = np.take_along_axis(thetas, top, axis=1)
        thetas = (centres[:, :, None] + step * offsets).reshape(batch, -1)
        counts, positions = _scan_directions(planes, thetas, epsilon)
        step *= 2 / (_REFINE_STEPS - 1)
    best = counts.argmax(axis=1)[:, None]
    return np.take_along_axis(thetas, best, axis=1)[:, 0], np.take_along_axis(positions, best, axis=1)[:, 0]


def normalised_projection(planes: np.ndarray, direction: np.ndarray, offset: np.ndarray) -> np.ndarray:
    """z = (v·f + c) / sqrt(mean((v·f + c)²)): ``(b, n, 2)``, ``(b, 2)``, ``(b,)`` → ``(b, n)``."""
    shifted = np.einsum("bnk,bk->bn", planes, direction) + offset[:, None]
    return shifted / np.sqrt(np.mean(shifted**2, axis=1, keepdims=True))


def best_mixture(points, epsilon: float = DEFAULT_EPSILON) -> MixtureFit:
    """The direction v, offset c and projections z that maximise the ε-mixture fraction.

    ``points``: ``(n, 2)`` or ``(batch, n, 2)``. Deterministic: a scan over
    directions with the exact offset optimum for each, refined locally.
    """
    if not epsilon > 0:
        raise ValueError(f"epsilon must be > 0, got {epsilon}; the paper uses 0.1.")
    if epsilon >= 1:
        raise ValueError(f"epsilon must be < 1, got {epsilon}; with ε ≥ 1 every plane is a 'mixture'.")
    planes, single = as_planes(points)
    batch, n, _ = planes.shape
    centred = (planes - planes.mean(axis=1, keepdims=True)).astype(np.float32)
    angle, position = np.empty(batch), np.empty(batch)
    chunk = max(1, _WORKSPACE_ELEMENTS // (n * _REFINE_CANDIDATES * _REFINE_STEPS * 4))
    for start in range(0, batch, chunk):
        found = _search_direction(centred[start : start + chunk], epsilon)
        angle[start : start + chunk], position[start : start + chunk] = found
    direction = np.stack([np.cos(angle), np.sin(angle)], axis=1)
    # The search ran on centred points; shift the line back to the raw coordinates.
    offset = -position - np.einsum("bk,bk->b", planes.mean(axis=1), direction)
    z = normalised_projection(planes, direction, offset)
    index = (np.abs(z) < epsilon).mean(axis=1)
    return MixtureFit(
        direction=direction[0] if single else direction,
        offset=_unbatch(offset, single),
        z=z[0] if single else z,
        epsilon=epsilon,
        index=_unbatch(index, single),
    )


def mixture_index(points, epsilon: float = DEFAULT_EPSILON) -> float | np.ndarray:
    """ε-mixture index M: a float for ``(n, 2)``, shape ``(batch,)`` for ``(batch, n, 2)``."""
    return best_mixture(points, epsilon=epsilon).index


def classify(separability: float, mixture: float, s_threshold: float = 0.1, m_threshold: float = 0.3) -> str:
    """'mixture' when M ≥ m_threshold, else 'separable' when S < s_threshold, else 'irreducible'.

    The thresholds are ours, not the paper's (it ranks features instead): a
    Gaussian has M ≈ 0.08 at ε = 0.1 and S ≈ 0.01 bits at 4096 points.
    """
    if mixture >= m_threshold:
        return "mixture"
    return "separable" if separability < s_threshold else "irreducible"


def reducibility_table(named_points: dict, epsilon: float = DEFAULT_EPSILON) -> pd.DataFrame:
    """A table of S (bits), M_ε and the resulting class for named planes ``(n, 2)`` of equal size."""
    planes = np.stack([as_planes(points)[0][0] for points in named_points.values()])
    s = separability_index(planes)
    m = mixture_index(planes, epsilon=epsilon)
    return pd.DataFrame(
        {"S (bits)": s, "M": m, "class": [classify(a, b) for a, b in zip(s, m)]},
        index=pd.Index(list(named_points), name="distribution"),
    )
