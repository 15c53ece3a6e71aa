"""mvf.decompose: planted groups come back exactly, order effects have their known values, bad input fails."""

import numpy as np
import pytest

from mvf import decompose, tasks


def _orthonormal(d: int, k: int, seed: int) -> np.ndarray:
    return np.linalg.qr(np.random.default_rng(seed).normal(size=(d, k)))[0].T


@pytest.fixture
def planted():
    """Hidden states of the 49 Weekdays problems built from two groups and a residual, in orthogonal subspaces."""
    problems = tasks.weekdays()
    groups = decompose.problem_groups(problems)
    basis = _orthonormal(24, 15, seed=0)
    rng = np.random.default_rng(1)
    operand = groups["one-hot operand"] @ rng.normal(size=(7, 7)) @ basis[:7] * 3.0
    shift = groups["one-hot shift"] @ rng.normal(size=(7, 7)) @ basis[7:14]
    design = np.column_stack([groups["one-hot operand"], groups["one-hot shift"], np.ones(len(problems))])
    noise = rng.normal(size=len(problems))
    noise -= design @ np.linalg.lstsq(design, noise, rcond=None)[0]  # orthogonal to both groups and the mean
    rest = np.outer(noise, basis[14])
    hidden = operand + shift + rest + 5.0

    def variance(x):
        return ((x - x.mean(axis=0)) ** 2).sum()

    total = variance(hidden)
    expected = {"one-hot operand": variance(operand) / total, "one-hot shift": variance(shift) / total,
                "unexplained": variance(rest) / total}  # fmt: skip
    return hidden, {name: groups[name] for name in ("one-hot operand", "one-hot shift")}, expected


def test_planted_shares_come_back_exactly(planted):
    hidden, groups, expected = planted
    shares = decompose.explained_variance(hidden, groups)
    for name, share in expected.items():
        assert shares[name] == pytest.approx(share, abs=1e-6)
    assert shares.sum() == pytest.approx(1.0, abs=1e-9)


def test_uncorrelated_groups_do_not_depend_on_order(planted):
    hidden, groups, _ = planted
    effects = decompose.order_effects(hidden, groups)
    spread = effects[["stated order", "first", "last", "average over orders"]].max(axis=1) - effects.min(axis=1)
    assert (spread < 1e-6).all()


def test_residual_pca_finds_the_planted_residual(planted):
    hidden, groups, expected = planted
    _, share = decompose.residual_pca(hidden, groups, k=2)
    assert share[0] == pytest.approx(expected["unexplained"], abs=1e-6)
    assert share[1] < 1e-6


def test_nested_groups_make_the_order_matter():
    """The circle of the operand lies in the span of its one-hot: whichever comes first takes everything."""
    problems = tasks.weekdays()
    groups = decompose.problem_groups(problems)
    nested = {name: groups[name] for name in ("circle of operand", "one-hot operand")}
    hidden = nested["circle of operand"] @ np.random.default_rng(0).normal(size=(2, 16))
    stated = decompose.explained_variance(hidden, nested)
    assert stated["circle of operand"] == pytest.approx(1.0, abs=1e-6)
    assert stated["one-hot operand"] == pytest.approx(0.0, abs=1e-6)
    reversed_order = decompose.explained_variance(hidden, nested, order=["one-hot operand", "circle of operand"])
    assert reversed_order["one-hot operand"] == pytest.approx(1.0, abs=1e-6)
    effects = decompose.order_effects(hidden, nested)
    np.testing.assert_allclose(effects["first"], 1.0, atol=1e-6)
    np.testing.assert_allclose(effects["last"], 0.0, atol=1e-6)
    np.testing.assert_allclose(effects["average over orders"], 0.5, atol=1e-6)


def test_groups_follow_the_task():
    weekdays = decompose.problem_groups(tasks.weekdays())
    assert list(weekdays) == ["circle of answer", "circle of operand", "circle of operand − shift", "one-hot operand", "one-hot shift"]
    assert weekdays["one-hot shift"].shape == (49, 7)
    successor = decompose.problem_groups(tasks.task("month-successor"))
    assert list(successor) == ["circle of answer", "one-hot operand", "one-hot list length"]
    assert successor["one-hot list length"].shape == (36, 3)


def test_layer_table_has_one_row_per_hook(planted):
    hidden, groups, _ = planted
    table = decompose.layer_table({"blocks.0.hook_resid_post": hidden, "blocks.1.hook_resid_post": 2 * hidden}, groups)
    assert list(table.columns) == [*groups, "unexplained"]
    np.testing.assert_allclose(table.iloc[0], table.iloc[1], atol=1e-9)


@pytest.mark.parametrize(
    ("hidden", "match"),
    [
        (np.zeros((49, 3, 2)), "must be"),
        (np.full((49, 4), np.nan), "NaN"),
        (np.ones((49, 4)), "identical"),
        (np.ones((10, 4)), "one row per hidden state"),
    ],
)
def test_bad_hidden_states(hidden, match):
    with pytest.raises(ValueError, match=match):
        decompose.explained_variance(hidden, decompose.problem_groups(tasks.weekdays()))


def test_bad_order_and_empty_input(planted):
    hidden, groups, _ = planted
    with pytest.raises(ValueError, match="order must name each group once"):
        decompose.explained_variance(hidden, groups, order=["one-hot operand"])
    with pytest.raises(ValueError, match="no groups"):
        decompose.explained_variance(hidden, {})
    with pytest.raises(ValueError, match="no problems"):
        decompose.problem_groups([])
    with pytest.raises(ValueError, match="k=99"):
        decompose.residual_pca(hidden, groups, k=99)
