"""Geometry of labelled point clouds: class centroids, their PCA plane and how circular their order is."""

from __future__ import annotations

import numpy as np
import pandas as pd
from sklearn.decomposition import PCA


def centroids(points: np.ndarray, labels: np.ndarray, n_classes: int) -> np.ndarray:
    """Mean point of each class: ``(n, d)``, labels ``(n,)`` in 0..n_classes-1 → ``(n_classes, d)``."""
    labels = np.asarray(labels)
    if points.ndim != 2 or len(points) != len(labels):
        raise ValueError(f"points must be (n, d) with one label each; got {points.shape} and {labels.shape}.")
    missing = sorted(set(range(n_classes)) - set(labels.tolist()))
    if missing:
        raise ValueError(f"classes {missing} have no points; every class needs at least one.")
    one_hot = np.eye(n_classes)[labels]
    return one_hot.T @ points / one_hot.sum(axis=0)[:, None]


def centroid_plane(points: np.ndarray, labels: np.ndarray, n_classes: int, k: int = 2) -> tuple[PCA, np.ndarray]:
    """PCA fitted on the class centroids (``k`` components) and the centroids projected ``(n_classes, k)``."""
    means = centroids(points, labels, n_classes)
    pca = PCA(n_components=k).fit(means)
    return pca, pca.transform(means)


# A frequency holding at least this share of the squared norm is a key frequency (a key circle); spread evenly over
# the 29 frequencies of 59 numbers, each would hold 3.4 %, over the 3 of 7 days 33 %.
KEY_SHARE = 0.05


def fourier_shares(rows: np.ndarray) -> np.ndarray:
    """Each frequency's share of the squared norm of ``(p, d)`` rows in cyclic order (embeddings, centroids): ``(p // 2,)``.

    The discrete Fourier transform over the p values of the centred rows:
    entry k − 1 holds frequency k's cos and sin components at 2πka/p
    (1 ≤ k ≤ p // 2); all zero when the rows are all alike.
    """
    p = len(rows)
    spectrum = np.fft.rfft(rows - rows.mean(axis=0), axis=0)[1 : p // 2 + 1]
    # Frequency k < p/2 has a twin at p − k holding as much again; p/2 of an even p has none.
    twins = np.where(2 * np.arange(1, p // 2 + 1) == p, 1.0, 2.0)
    power = twins * (np.abs(spectrum) ** 2).sum(axis=1)
    total = power.sum()
    return power / total if total > 0 else np.zeros_like(power)  # rows all alike: no frequency holds anything


def key_frequencies(shares: np.ndarray, minimum: float = KEY_SHARE) -> list[int]:
    """The frequencies holding at least ``minimum`` of the norm (``fourier_shares``), strongest first."""
    strongest = np.argsort(shares, kind="stable")[::-1]
    return [int(i) + 1 for i in strongest if shares[i] >= minimum]


def key_circles(points: np.ndarray, labels: np.ndarray, n_classes: int, minimum: float = KEY_SHARE) -> list[int]:
    """The circles of a labelled cloud ``(n, d)``: its centroids' key frequencies, the first always among them.

    Frequency p/2 of an even p is left out: it alternates along one direction,
    a line, not a circle.
    """
    found = key_frequencies(fourier_shares(centroids(points, labels, n_classes)), minimum)
    circles = [f for f in found if 2 * f != n_classes]
    return circles if 1 in circles else [1, *circles]


# A ring is open where one step between calendar neighbours is longer than this many times their median step: an
# ordered open arc (a semicircle, a parabola, the PCA horseshoe of a linear ordinal variable) has all its values in
# order too, and only its one long step, its gap, tells it from a circle. Which step that is does not depend on which
# value is numbered first. Set by ``ring_criterion_errors`` on labelled shapes (noisy rings and ellipses closed; arcs,
# horseshoes, spirals and rings with a value off its place open).
CLOSING_STEP = 1.7
# Nor is it closed when a value sits nearer its centre than this share of the median distance (a value at the
# centre sorts into its own place by angle, and its steps are no longer than a heptagon's).
OFF_RING = 0.3


def cyclic_order_score(plane: np.ndarray, closed: bool = True) -> float:
    """Share of angular neighbours that are calendar neighbours, for centroids ``(p, 2)`` in calendar order, on a closed ring.

    Walk the centroids by angle around their mean; count steps from class i to
    class i ± 1 (mod p), in whichever single direction gives more. When the
    longest step between calendar neighbours (``closing_step``, whichever
    pair it joins) is more than ``CLOSING_STEP`` times their median step, or
    a value sits nearer the centre than ``OFF_RING`` of the median distance,
    the ring is open at that longest step, which does not count. 1.0 means the classes
    sit around a closed circle in calendar order; an ordered open arc scores
    (p − 1)/p wherever its gap is; what random points score is
    ``random_order_score(p)``. ``closed=False`` counts every step: the order
    of the angles alone, which an open arc passes too.
    """
    return float(_ring_scores(np.asarray(plane), closed))


def closing_step(plane: np.ndarray) -> float:
    """The longest step between calendar neighbours (p − 1 to 0 among them) over their median step, for ``(p, 2)``.

    About 1 on a circle in calendar order, whichever value is numbered first;
    an ordered open arc has one long step, its gap (a semicircle of 7: about
    3.9). ``cyclic_order_score`` compares it with ``CLOSING_STEP``.
    """
    steps = _calendar_steps(plane)
    return float(steps.max() / np.median(steps))


def _calendar_steps(points: np.ndarray) -> np.ndarray:
    """Length of the step from each class i to class i + 1 (mod p), for centroids ``(..., p, 2)``: ``(..., p)``."""
    return np.linalg.norm(np.roll(points, -1, axis=-2) - points, axis=-1)


def _ring_scores(points: np.ndarray, closed: bool = True) -> np.ndarray:
    """``cyclic_order_score`` of each set of centroids ``(..., p, 2)``, vectorised over the leading axes."""
    p = points.shape[-2]
    centred = points - points.mean(axis=-2, keepdims=True)
    order = np.argsort(np.arctan2(centred[..., 1], centred[..., 0]))
    following = np.roll(order, -1, axis=-1)
    steps = (following - order) % p
    calendar = _calendar_steps(points)
    gap = np.argmax(calendar, axis=-1)[..., None]  # the calendar step i → i + 1 that is longest
    radius = np.linalg.norm(centred, axis=-1)
    is_open = calendar.max(axis=-1) > CLOSING_STEP * np.median(calendar, axis=-1)
    is_open |= radius.min(axis=-1) < OFF_RING * np.median(radius, axis=-1)  # a value off the ring, towards its centre
    at_gap = ((order == gap) & (following == (gap + 1) % p)) | ((following == gap) & (order == (gap + 1) % p))
    counted = ~(at_gap & is_open[..., None]) | (not closed)
    return np.maximum(((steps == 1) & counted).mean(axis=-1), ((steps == p - 1) & counted).mean(axis=-1))


def labelled_shapes(p: int, draws: int = 50, seed: int = 0) -> dict[str, tuple[bool, np.ndarray]]:
    """A family of centroid arrangements ``(draws, p, 2)`` in calendar order, each named with whether it is a closed ring.

    Each draw is turned by a random angle, so that any value may sit where
    the shape opens. Closed: rings with 5 % and 10 % noise, ellipses (axes 1
    and 0.5, 1 and 0.3), and an arc of 330°, whose gap is no longer than its
    step (a ring to the eye). Open: arcs of 180° and 240° and the widest whose
    gap is twice its step (270° for 7 values, 305° for 12), a horseshoe (an
    arc of 200° whose ends bend inwards), a spiral (an arc as wide, its radius
    growing from 1 to 2), and a ring with one value, anywhere, first and last
    included, at the centre.
    """
    generator = np.random.default_rng(seed)
    turn = generator.uniform(0, 2 * np.pi, size=(draws, 1))
    values = np.arange(p)
    widest = 360 * (p - 1) / (p + 1)  # the gap two steps wide: 270° for 7, 305° for 12

    def on(degrees: float, radius: np.ndarray | float = 1.0, noise: float = 0.03, span: int = p - 1) -> np.ndarray:
        angles = np.radians(degrees) * values / span + turn
        shape = radius * np.stack([np.cos(angles), np.sin(angles)], axis=-1)
        return shape + noise * generator.normal(size=shape.shape)

    shapes = {"ring, 5 % noise": (True, on(360, noise=0.05, span=p)), "ring, 10 % noise": (True, on(360, noise=0.1, span=p))}
    for ratio in (0.5, 0.3):
        ellipse = on(360, span=p)
        ellipse[..., 1] *= ratio
        shapes[f"ellipse {ratio}"] = (True, ellipse)
    shapes["arc 330°"] = (True, on(330))
    for degrees in (180, 240):
        shapes[f"arc {degrees}°"] = (False, on(degrees))
    shapes[f"arc {widest:.0f}°"] = (False, on(widest))
    shapes["horseshoe"] = (False, on(200, (1 - 0.4 * np.abs(np.linspace(-1, 1, p)) ** 3)[:, None]))
    shapes["spiral"] = (False, on(widest, (1 + values / (p - 1))[:, None]))
    missing = on(360, span=p)
    missing[np.arange(draws), generator.integers(0, p, size=draws)] = 0.0
    shapes["ring, one value at the centre"] = (False, missing)
    return shapes


def ring_criterion_errors(periods: tuple[int, ...] = (7, 12), draws: int = 50, seed: int = 0) -> pd.DataFrame:
    """How often ``cyclic_order_score`` == 1 (a closed ring) on each of ``labelled_shapes``: one row per period and
    shape, with whether it is closed and the share of its draws the criterion calls closed (for an open shape, the
    false-positive rate; for a closed one, one minus the false-negative rate)."""
    rows = []
    for p in periods:
        for name, (is_ring, planes) in labelled_shapes(p, draws, seed).items():
            rows.append({"p": p, "shape": name, "closed": is_ring, "called closed": float((_ring_scores(planes) == 1).mean())})
    return pd.DataFrame(rows)


def random_order_score(p: int, draws: int = 20_000, seed: int = 0, planes: int = 1) -> float:
    """Expected ``cyclic_order_score`` of p centroids drawn at random in the plane (standard normal; simulated, seeded).

    The chance level of the score: about 0.26 for 7 classes and 0.14 for 12
    (``draws`` random arrangements), not the 2/(p − 1) one might guess. With
    ``planes`` > 1, the expected *best* of that many independent arrangements:
    the chance level of a score maximised over several planes.
    """
    if p < 3:
        raise ValueError(f"a cyclic order needs at least 3 classes, got {p}.")
    points = np.random.default_rng(seed).normal(size=(draws, planes, p, 2))
    return float(_ring_scores(points).max(axis=1).mean())


def layer_circle_scores(activations: dict[str, np.ndarray], labels: np.ndarray, n_classes: int) -> pd.DataFrame:
    """Per hook: cyclic-order score of the centroids in their top-2 PCA plane, and variance explained by 2 PCs.

    ``activations``: ``{hook: (n, d_model)}``; returns one row per hook with
    columns ``cyclic order`` (a closed ring), ``angle order`` (the order of
    the angles alone, ``closed=False``), ``closing step``, ``centroid var (2 PCs)``, ``point var (2 PCs)``
    and ``top dim share``, the share of the points' squared norm held by the
    single largest residual dimension (near 1 when one outlier dimension
    dominates the PCA).
    """
    rows = {}
    for hook, points in activations.items():
        pca, plane = centroid_plane(points, labels, n_classes)
        rows[hook] = {
            "cyclic order": cyclic_order_score(plane),
            "angle order": cyclic_order_score(plane, closed=False),  # pragma: no mutate (closed=None is False)
            "closing step": closing_step(plane),
            "centroid var (2 PCs)": float(pca.explained_variance_ratio_.sum()),
            "point var (2 PCs)": float(PCA(n_components=2).fit(points).explained_variance_ratio_.sum()),
            "top dim share": float((points**2).sum(axis=0).max() / (points**2).sum()),
        }
    return pd.DataFrame(rows).T.rename_axis("hook")


def perfect_order_layers(scores: pd.DataFrame, column: str = "cyclic order") -> list[int]:
    """Positions (layers) of the rows of a ``layer_circle_scores`` table whose centroids go round in calendar order.

    ``column="angle order"``: whose angles are in calendar order, closed ring or open arc.
    """
    return np.flatnonzero(scores[column].to_numpy() == 1.0).tolist()
