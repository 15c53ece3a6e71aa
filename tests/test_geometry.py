"""mvf.geometry: centroids and the cyclic-order score on planted arrangements."""

import math
import statistics
import warnings

import numpy as np
import pandas as pd
import pytest
from sklearn.decomposition import PCA

from mvf import geometry


def _ring(order: np.ndarray) -> np.ndarray:
    angles = 2 * np.pi * np.argsort(order) / len(order)
    return np.column_stack([np.cos(angles), np.sin(angles)])


def test_calendar_circle_scores_one_in_either_direction():
    assert geometry.cyclic_order_score(_ring(np.arange(7))) == 1.0
    assert geometry.cyclic_order_score(_ring(np.arange(12))[::-1].copy()) == 1.0


def test_shuffled_circle_scores_low():
    shuffled = np.array([0, 3, 6, 2, 5, 1, 4])  # steps of 3: no calendar neighbours are angular neighbours
    assert geometry.cyclic_order_score(_ring(shuffled)) == 0.0


@pytest.mark.parametrize("p", [7, 12])
def test_a_noisy_circle_is_a_ring_and_ordered_open_arcs_are_not(p):
    """Every shape below is in calendar order by angle; only the circle's closing step looks like its other steps."""
    rng = np.random.default_rng(0)
    noisy = [geometry.cyclic_order_score(_ring(np.arange(p)) + 0.05 * rng.normal(size=(p, 2))) for _ in range(200)]
    assert np.mean(np.array(noisy) == 1.0) > 0.95
    half = np.pi * np.arange(p) / (p - 1)
    x = np.linspace(-1, 1, p)
    # The PCA horseshoe of a linear ordinal variable: values 0..p-1 seen through overlapping bumps along a line.
    bumps = np.exp(-((np.arange(p)[:, None] - np.arange(0, p, 0.25)[None]) ** 2) / 2)
    arcs = {"semicircle": np.column_stack([np.cos(half), np.sin(half)]), "parabola": np.column_stack([x, x**2]),
            "horseshoe": PCA(n_components=2).fit_transform(bumps)}  # fmt: skip
    for name, arc in arcs.items():
        assert geometry.cyclic_order_score(arc) == pytest.approx((p - 1) / p), name
        assert geometry.cyclic_order_score(arc, closed=False) == 1.0 and geometry.closing_step(arc) > 1.5, name
    assert geometry.closing_step(_ring(np.arange(p))) == pytest.approx(1.0)


def test_centroid_plane_recovers_a_planted_circle_in_high_dimensions():
    rng = np.random.default_rng(0)
    labels = np.repeat(np.arange(12), 30)
    basis = np.linalg.qr(rng.normal(size=(64, 2)))[0]
    circle = _ring(np.arange(12))[labels] @ basis.T
    points = 5 * circle + 0.1 * rng.normal(size=(len(labels), 64))
    pca, plane = geometry.centroid_plane(points, labels, 12)
    assert pca.explained_variance_ratio_.sum() > 0.95
    assert geometry.cyclic_order_score(plane) == 1.0
    table = geometry.layer_circle_scores({"layer": points}, labels, 12)
    assert table.loc["layer", "cyclic order"] == 1.0


def test_centroids_need_every_class():
    with pytest.raises(ValueError, match=r"classes \[2\]"):
        geometry.centroids(np.zeros((4, 3)), np.array([0, 1, 0, 1]), 3)


def test_perfect_order_layers_are_the_rows_scoring_one():
    table = pd.DataFrame({"cyclic order": [1.0, 5 / 6, 1.0, 2 / 6]}, index=[f"blocks.{i}.hook_resid_post" for i in range(4)])
    assert geometry.perfect_order_layers(table) == [0, 2]


def test_the_chance_level_of_the_cyclic_order_score_is_simulated():
    # Three points are always in calendar order one way round; only a step 1.7 x the median, or a point near the
    # centre, fails them.
    assert 0.9 < geometry.random_order_score(3) < 1.0
    assert 0.25 < geometry.random_order_score(7) < 0.29 < 2 / 6  # not the 2/(p − 1) guess
    assert 0.12 < geometry.random_order_score(12) < 0.16 < 2 / 11
    best_of = [geometry.random_order_score(7, draws=5000, planes=n) for n in (1, 2, 4)]
    assert best_of == sorted(best_of) and best_of[2] > 0.4  # the best of several planes is a higher bar
    with pytest.raises(ValueError, match="at least 3 classes"):
        geometry.random_order_score(2)


def test_centroids_are_class_means_for_classes_of_any_size():
    points = np.array([[1.0, 0.0], [3.0, 2.0], [10.0, 10.0], [0.0, 4.0], [2.0, 2.0]])
    means = geometry.centroids(points, np.array([0, 0, 1, 2, 2]), 3)
    np.testing.assert_allclose(means, [[2.0, 1.0], [10.0, 10.0], [1.0, 3.0]])


@pytest.mark.parametrize("points, labels", [(np.zeros((4, 3)), np.zeros(5, int)), (np.zeros(4), np.zeros(4, int))])
def test_centroids_need_one_label_per_point(points, labels):
    with pytest.raises(ValueError, match=r"points must be \(n, d\) with one label each; got \("):
        geometry.centroids(points, labels, 1)


def test_every_column_of_the_layer_table_is_what_it_says():
    """A semicircle of 7 centroids in 16 dimensions (an ordered open arc: every angle in order, no closing step),
    plus one loud dimension; each column against its own computation here."""
    rng = np.random.default_rng(0)
    labels = np.repeat(np.arange(7), 5)
    angles = np.pi * labels / 6
    points = np.zeros((len(labels), 16))
    points[:, 0], points[:, 1] = np.cos(angles), np.sin(angles)
    points[:, 2:] = 0.05 * rng.normal(size=(len(labels), 14))
    points[:, 5] += 3.0
    table = geometry.layer_circle_scores({"blocks.3.hook_resid_post": points}, labels, 7)
    assert table.index.name == "hook" and list(table.index) == ["blocks.3.hook_resid_post"]
    assert list(table.columns) == ["cyclic order", "angle order", "closing step", "centroid var (2 PCs)",
                                   "point var (2 PCs)", "top dim share"]  # fmt: skip
    row = table.iloc[0]
    assert row["cyclic order"] == pytest.approx(6 / 7) and row["angle order"] == 1.0
    _, plane = geometry.centroid_plane(points, labels, 7)
    assert plane.shape == (7, 2) and row["closing step"] == pytest.approx(geometry.closing_step(plane)) and row["closing step"] > 3
    means = geometry.centroids(points, labels, 7)
    variances = np.linalg.svd(means - means.mean(axis=0), compute_uv=False) ** 2
    assert row["centroid var (2 PCs)"] == pytest.approx(variances[:2].sum() / variances.sum())
    spread = np.linalg.svd(points - points.mean(axis=0), compute_uv=False) ** 2
    assert row["point var (2 PCs)"] == pytest.approx(spread[:2].sum() / spread.sum())
    assert row["top dim share"] == pytest.approx((points[:, 5] ** 2).sum() / (points**2).sum())


def _reference_order_score(plane: np.ndarray, closed: bool = True) -> float:
    """The cyclic-order score as its docstring states it, one step at a time."""
    p = len(plane)
    centre = plane.mean(axis=0)
    walk = sorted(range(p), key=lambda i: math.atan2(plane[i, 1] - centre[1], plane[i, 0] - centre[0]))
    calendar = [float(np.linalg.norm(plane[(i + 1) % p] - plane[i])) for i in range(p)]
    radii = [float(np.linalg.norm(point - centre)) for point in plane]
    gap = calendar.index(max(calendar))
    is_open = (max(calendar) > geometry.CLOSING_STEP * statistics.median(calendar)
               or min(radii) < geometry.OFF_RING * statistics.median(radii))  # fmt: skip
    counts = []
    for direction in (1, p - 1):
        steps = [(walk[j], walk[(j + 1) % p]) for j in range(p)]
        counts.append(sum((b - a) % p == direction and not (closed and is_open and {a, b} == {gap, (gap + 1) % p})
                          for a, b in steps))  # fmt: skip
    return max(counts) / p


@pytest.mark.parametrize("p", [5, 7, 12])
def test_the_score_of_random_arrangements_is_the_stated_walk(p):
    rng = np.random.default_rng(p)
    for plane in rng.normal(size=(200, p, 2)) + rng.normal(scale=3.0, size=(200, 1, 2)):
        for closed in (True, False):
            assert geometry.cyclic_order_score(plane, closed) == pytest.approx(_reference_order_score(plane, closed))


def test_the_chance_level_is_the_mean_score_of_seeded_random_arrangements():
    samples = np.random.default_rng(4).normal(size=(2000, 1, 7, 2))
    wanted = np.mean([_reference_order_score(sample[0]) for sample in samples])
    assert geometry.random_order_score(7, draws=2000, seed=4) == pytest.approx(wanted)
    assert geometry.random_order_score(7) == geometry.random_order_score(7, draws=20_000, seed=0)
    assert geometry.random_order_score(7) != geometry.random_order_score(7, seed=1)


def test_a_closing_step_exactly_at_the_limit_closes_the_ring(monkeypatch):
    """A unit square in calendar order: every step 1; with the limit at 1 × the median the closing step still counts."""
    square = np.array([[0.0, 0.0], [1.0, 0.0], [1.0, 1.0], [0.0, 1.0]])
    monkeypatch.setattr(geometry, "CLOSING_STEP", 1.0)
    assert geometry.cyclic_order_score(square) == 1.0
    monkeypatch.setattr(geometry, "CLOSING_STEP", 0.99)
    assert geometry.cyclic_order_score(square) == 0.75


@pytest.mark.parametrize("k", [1, 5, 14])
def test_the_key_frequency_is_the_embeddings_strongest(k):
    p, generator = 29, np.random.default_rng(k)
    angles = 2 * np.pi * k * np.arange(p) / p
    weaker = 2 * np.pi * ((k + 3) % (p // 2) + 1) * np.arange(p) / p
    embedding = np.zeros((p, 12))
    embedding[:, :2] = 3 * np.column_stack([np.cos(angles), np.sin(angles)])
    embedding[:, 2:4] = np.column_stack([np.cos(weaker), np.sin(weaker)])
    embedding += 0.1 * generator.standard_normal(embedding.shape) + 5.0  # an offset the centring removes
    shares = geometry.fourier_shares(embedding)
    assert shares.shape == (p // 2,) and np.isclose(shares.sum(), 1.0) and shares[k - 1] > 0.6
    assert geometry.key_frequencies(shares, minimum=0.05) == [k, (k + 3) % (p // 2) + 1]


def test_the_key_circles_of_a_cloud_are_its_centroids_circles_never_the_line_at_half_the_period():
    generator = np.random.default_rng(0)
    values = np.arange(120) % 12
    on = lambda f: np.column_stack([np.cos(2 * np.pi * f * values / 12), np.sin(2 * np.pi * f * values / 12)])  # noqa: E731
    # Frequencies 2 and 3 strong, 1 absent, and an alternation (frequency 6: a line) stronger than 3.
    points = np.hstack([2 * on(2), on(3), 1.5 * np.cos(np.pi * values)[:, None], 0.01 * generator.normal(size=(120, 3))])
    assert geometry.key_circles(points, values, 12) == [1, 2, 3]  # the first circle always, the line never
    assert geometry.key_circles(np.hstack([on(1), 0.01 * generator.normal(size=(120, 3))]), values, 12) == [1]


def test_rows_all_alike_hold_no_frequency_and_leave_the_first_circle_alone():
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        shares = geometry.fourier_shares(np.ones((7, 4)))
        assert np.array_equal(shares, np.zeros(3))
        assert geometry.key_circles(np.ones((14, 4)), np.arange(14) % 7, 7) == [1]


def test_which_value_is_numbered_first_does_not_change_the_verdict():
    """An ordered open arc and a noisy ring, their values renumbered from each place in turn: the same score."""
    half = np.pi * np.arange(7) / 6
    arc = np.column_stack([np.cos(half), np.sin(half)])
    ring = _ring(np.arange(12)) + 0.05 * np.random.default_rng(1).normal(size=(12, 2))
    for plane, score in ((arc, 6 / 7), (ring, 1.0)):
        for first in range(len(plane)):
            assert geometry.cyclic_order_score(np.roll(plane, -first, axis=0)) == pytest.approx(score), first


def test_the_ring_criterion_errs_rarely_on_labelled_shapes():
    errors = geometry.ring_criterion_errors()
    assert set(errors["shape"]) >= {"ring, 10 % noise", "ellipse 0.3", "arc 180°", "horseshoe", "spiral",
                                    "ring, one value at the centre"}  # fmt: skip
    false_positive = errors.loc[~errors["closed"], "called closed"].mean()
    false_negative = 1 - errors.loc[errors["closed"], "called closed"].mean()
    assert false_positive < 0.05 and false_negative < 0.05, errors
    assert (errors.loc[errors["shape"] == "ring, one value at the centre", "called closed"] == 0).all()

