"""mvf.probes: a planted circle is recovered; a line probe cannot do as well on it; bad input is refused."""

import numpy as np
import pytest

from mvf import probes


def _planted(period: int = 7, n: int = 280, d: int = 40, noise: float = 0.05, seed: int = 0):
    rng = np.random.default_rng(seed)
    values = np.arange(n) % period
    basis = np.linalg.qr(rng.normal(size=(d, 2)))[0]
    points = 3 * probes.circle_targets(values, period) @ basis.T + noise * rng.normal(size=(n, d))
    return points + rng.normal(size=d), values


def test_circle_probe_recovers_a_planted_circle():
    points, values = _planted()
    probe = probes.fit_circle_probe(points, values, 7)
    errors = probes.angular_error(probe.angle(points), values, 7)
    assert errors.max() < 0.1
    scores = probes.cross_validate(points, values, 7)
    assert scores["circle R2"] > 0.95 and scores["circle angular error"] < 0.1
    assert scores["linear angular error"] > 3 * scores["circle angular error"]


def test_noise_gives_no_circle():
    rng = np.random.default_rng(1)
    scores = probes.cross_validate(rng.normal(size=(280, 40)), np.arange(280) % 7, 7)
    assert scores["circle R2"] < 0.1


def test_bad_input():
    points, values = _planted(n=14, d=8)
    with pytest.raises(ValueError, match="k=20 is too large"):
        probes.fit_circle_probe(points, values, 7, k=20)
    with pytest.raises(ValueError, match="one value each"):
        probes.fit_circle_probe(points, values[:-1], 7)
    points[0, 0] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        probes.fit_circle_probe(points, values, 7)


def test_shuffled_calendar_orders_are_the_probes_baseline():
    generator = np.random.default_rng(0)
    values = np.repeat(np.arange(7), 6)
    angle = 2 * np.pi * values / 7
    circle = np.column_stack([np.cos(angle), np.sin(angle), generator.normal(size=(42, 10)) * 0.05])
    arbitrary = generator.normal(size=(7, 12))[values] + generator.normal(size=(42, 12)) * 0.05
    on_circle = probes.cross_validate(circle, values, 7)["circle R2"]
    assert on_circle > 0.95 and probes.permutation_baseline(circle, values, 7).max() < on_circle - 0.3
    # Arbitrary class codes: the real order is just one more arbitrary order, inside the shuffled ones' range.
    shuffled = probes.permutation_baseline(arbitrary, values, 7)
    assert shuffled.min() <= probes.cross_validate(arbitrary, values, 7)["circle R2"] <= shuffled.max()


def test_quality_by_layer_is_cross_validation_beside_its_shuffled_baseline():
    rng = np.random.default_rng(0)
    values = np.repeat(np.arange(12), 4)
    circle = np.column_stack([np.cos(2 * np.pi * values / 12), np.sin(2 * np.pi * values / 12)])
    clean = {"blocks.0": circle @ rng.normal(size=(2, 12)) + 0.05 * rng.normal(size=(48, 12)),
             "blocks.1": rng.normal(size=(48, 12))}  # fmt: skip
    table = probes.quality_by_layer(clean, values, 12, k=2, seed=0)
    assert list(table["layer"]) == [0, 1]
    assert table.loc[0, "circle R2"] == probes.cross_validate(clean["blocks.0"], values, 12, k=2, seed=0)["circle R2"]
    shuffled = probes.permutation_baseline(clean["blocks.0"], values, 12, k=2, seed=0)
    assert table.loc[0, "shuffled R2 (max)"] == shuffled.max() and table.loc[0, "shuffled R2 (mean)"] == shuffled.mean()
    np.testing.assert_allclose(table["margin"], table["circle R2"] - table["shuffled R2 (max)"])
    assert table.loc[0, "margin"] > 0.3 > table.loc[1, "margin"]


def _exact_circle(noise: float, seed: int) -> np.ndarray:
    """12 points on an exact circle (rank 2, two equal singular values) in 16 dimensions, plus relative noise."""
    angles = 2 * np.pi * np.arange(12) / 12
    basis = np.linalg.qr(np.random.default_rng(0).normal(size=(16, 2)))[0].T
    points = 3.0 + np.column_stack([np.cos(angles), np.sin(angles)]) @ basis
    return points * (1 + noise * np.random.default_rng(seed).normal(size=points.shape))


@pytest.mark.parametrize("singular, k, determined", [
    ([5.0, 4.0, 3.0, 2.0, 1.0, 0.5], 5, 5),     # general position: all k
    ([1.0, 1.0, 1e-9, 1e-9, 1e-9, 0.0], 5, 2),  # an exact circle: rank 2
    ([1.0, 0.9, 0.5, 0.3, 0.25, 0.25], 5, 4),  # the 5th ties with the 6th: their split is rounding's
    ([1.0, 0.5, 0.5, 0.5, 0.2], 2, 1),         # a tie across the cut, however wide
    ([0.0, 0.0, 0.0], 2, 0),                   # no variance at all
    ([], 2, 0),                                # no points
    ([2.0], 1, 1),                             # one direction
    ([1.0, 0.0], 2, 1),
    ([1.0, 0.5, 1e-4], 3, 2),                  # exactly SPANNED_RTOL of the largest is not spanned
    ([10.0, 5e-4], 2, 1),                      # the threshold is relative to the largest
    ([1.0, 1.0, 0.5], 1, 0),                   # the first ties with the second
    ([1.0, 0.5], 2, 2),                        # all of them: nothing beyond to tie with
    ([1e4, 9999.0], 1, 0),                     # a gap of exactly TIE_RTOL of the kept value is a tie
    ([1e4, 9998.0], 1, 1),
])
def test_determined_components(singular, k, determined):
    assert probes.determined_components(np.array(singular), k) == determined


def test_a_probe_of_an_exact_circle_does_not_fit_rounding():
    """Rounding-level noise picks PCA's directions beyond the circle's two; a fit onto them would read noise, and two
    machines' rounding would give two different probes (the constructed control's layer-1 and layer-2 patches)."""
    values = np.arange(12)
    fitted = [probes.fit_circle_probe(_exact_circle(1e-7, seed), values, 12, k=5) for seed in (1, 2)]
    assert [probe.determined for probe in fitted] == [2, 2]
    test_points = _exact_circle(0.0, 0) + np.random.default_rng(3).normal(scale=0.1, size=(12, 16))
    first, second = (probe.circle_point(test_points) for probe in fitted)
    assert np.abs(first - second).max() < 1e-4
    assert np.allclose(fitted[0].circle_point(_exact_circle(0.0, 0)), probes.circle_targets(values, 12), atol=1e-4)


@pytest.mark.parametrize("k, message", [
    (0, r"k=0: a probe needs at least one PCA dimension; use k >= 1 \(the paper's is 5\)."),
    (9, "k=9 is too large: with 9 points in 20 dimensions, k can be at most 8."),
])  # fmt: skip
def test_k_ranges_from_one_to_one_less_than_the_points_or_dimensions(k, message):
    points = np.random.default_rng(0).normal(size=(9, 20))
    values = np.arange(9) % 7
    for allowed in (1, 8):
        assert probes.fit_circle_probe(points, values, 7, k=allowed).components.shape == (allowed, 20)
    with pytest.raises(ValueError, match=f"^{message}$"):
        probes.fit_circle_probe(points, values, 7, k=k)
    points[2, 3] = np.inf
    with pytest.raises(ValueError, match="^activations contain NaN or inf.$"):
        probes.fit_circle_probe(points, values, 7, k=1)


def test_a_probe_of_fewer_than_three_values_is_refused():
    points = np.random.default_rng(0).normal(size=(9, 20))
    for values in (np.zeros(9, int), np.arange(9) % 2):
        with pytest.raises(ValueError, match="a circle needs at least 3"):
            probes.fit_circle_probe(points, values, 7, k=2)
    assert probes.fit_circle_probe(points, np.arange(9) % 3, 7, k=2).period == 7


def test_the_probe_centres_on_the_mean_of_each_dimension():
    points, values = _planted(d=12)
    probe = probes.fit_circle_probe(points, values, 7, k=3)
    np.testing.assert_allclose(probe.mean, points.mean(axis=0))
    np.testing.assert_allclose(probe.reduced(points).mean(axis=0), 0, atol=1e-10)


def _reference_cross_validation(points, values, period, k, folds, seed):
    """The held-out scores computed with scikit-learn's PCA and linear regression, fold by fold."""
    from sklearn.decomposition import PCA
    from sklearn.linear_model import LinearRegression
    from sklearn.model_selection import KFold

    targets = probes.circle_targets(values, period)
    points_hat, value_hat = np.zeros_like(targets), np.zeros(len(values))
    for train, test in KFold(folds, shuffle=True, random_state=seed).split(points):
        pca = PCA(k).fit(points[train])
        points_hat[test] = LinearRegression().fit(pca.transform(points[train]), targets[train]).predict(pca.transform(points[test]))
        value_hat[test] = LinearRegression().fit(pca.transform(points[train]), values[train]).predict(pca.transform(points[test]))
    angle_hat = np.arctan2(points_hat[:, 1], points_hat[:, 0])
    return {
        "circle R2": 1 - ((points_hat - targets) ** 2).sum() / ((targets - targets.mean(axis=0)) ** 2).sum(),
        "circle angular error": probes.angular_error(angle_hat, values, period).mean(),
        "linear R2": 1 - ((value_hat - values) ** 2).sum() / ((values - values.mean()) ** 2).sum(),
        "linear angular error": probes.angular_error(2 * np.pi * value_hat / period, values, period).mean(),
    }


def test_cross_validation_agrees_with_scikit_learn_and_uses_its_settings():
    """Unequal classes (their circle targets do not average to 0) and noise: every score against the reference, for
    the defaults (k = 5, 5 folds, seed 0) and for other settings."""
    rng = np.random.default_rng(4)
    values = np.concatenate([np.arange(60) % 7, np.zeros(15, int)])
    points = probes.circle_targets(values, 7) @ rng.normal(size=(2, 16)) + 0.4 * rng.normal(size=(75, 16))
    for settings in ({}, {"k": 2, "folds": 3, "seed": 5}):
        wanted = _reference_cross_validation(points, values, 7, **({"k": 5, "folds": 5, "seed": 0} | settings))
        scores = probes.cross_validate(points, values, 7, **settings)
        assert list(scores) == list(wanted)
        for name, value in wanted.items():
            assert scores[name] == pytest.approx(value, abs=1e-9), (settings, name)


def test_the_shuffled_baseline_is_the_same_probe_on_seeded_relabellings():
    rng = np.random.default_rng(2)
    values = np.arange(42) % 7
    points = probes.circle_targets(values, 7) @ rng.normal(size=(2, 10)) + 0.3 * rng.normal(size=(42, 10))
    assert len(probes.permutation_baseline(points, values, 7, k=2)) == 20
    generator = np.random.default_rng(6)
    wanted = [probes.cross_validate(points, generator.permutation(7)[values], 7, 3, seed=6)["circle R2"] for _ in range(4)]
    np.testing.assert_allclose(probes.permutation_baseline(points, values, 7, k=3, shuffles=4, seed=6), wanted)


def test_quality_by_layer_passes_its_seed_and_defaults_to_seed_zero():
    rng = np.random.default_rng(0)
    values = np.arange(35) % 7
    clean = {"blocks.0": probes.circle_targets(values, 7) @ rng.normal(size=(2, 10)) + 0.3 * rng.normal(size=(35, 10))}
    seeded = probes.quality_by_layer(clean, values, 7, k=2, seed=3).iloc[0]
    assert seeded["circle R2"] == probes.cross_validate(clean["blocks.0"], values, 7, k=2, seed=3)["circle R2"]
    assert seeded["shuffled R2 (max)"] == probes.permutation_baseline(clean["blocks.0"], values, 7, k=2, seed=3).max()
    assert probes.quality_by_layer(clean, values, 7, k=2).equals(probes.quality_by_layer(clean, values, 7, k=2, seed=0))
