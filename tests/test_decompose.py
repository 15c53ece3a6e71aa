"""mvf.decompose: planted groups come back exactly, order effects have their known values, bad input fails."""

import numpy as np
import pytest

from mvf import decompose, probes, tasks


def _orthonormal(d: int, k: int, seed: int) -> np.ndarray:
    return np.linalg.qr(np.random.default_rng(seed).normal(size=(d, k)))[0].T


@pytest.fixture
def planted():
    """Hidden states of the 49 Weekdays problems built from two groups and a residual, in orthogonal subspaces."""
    problems = tasks.weekdays()
    groups = {"one-hot operand": np.eye(7)[[p.start for p in problems]], "one-hot shift": np.eye(7)[[p.shift - 1 for p in problems]]}
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
    return hidden, groups, expected


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
    starts = np.array([p.start for p in tasks.weekdays()])
    nested = {"circle of operand": probes.circle_targets(starts, 7), "one-hot operand": np.eye(7)[starts]}
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


def test_groups_follow_the_task_in_the_papers_order_or_ours():
    weekdays = decompose.problem_groups(tasks.weekdays())
    assert list(weekdays) == ["one-hot codes", "circle of answer", "circle of operand − shift"]
    assert weekdays["one-hot codes"].shape == (49, 14)  # one-hot α and one-hot β, together
    successor = decompose.problem_groups(tasks.task("month-successor"), order="circles first")
    assert list(successor) == ["circle of answer", "one-hot codes"]
    assert successor["one-hot codes"].shape == (36, 12 + 3)  # the operand and the list length
    with pytest.raises(ValueError, match="order must be"):
        decompose.problem_groups(tasks.weekdays(), order="random")


def test_in_the_papers_order_a_circle_gets_only_what_an_additive_code_cannot_express():
    """In the successor task γ = α + 1: its circle lies in the span of α's one-hot, so after it the circle adds nothing."""
    problems = tasks.task("weekday-successor")
    hidden = np.random.default_rng(0).normal(size=(len(problems), 30))
    shares = decompose.explained_variance(hidden, decompose.problem_groups(problems))
    assert shares["circle of answer"] == pytest.approx(0.0, abs=1e-6)
    assert decompose.explained_variance(hidden, decompose.problem_groups(problems, "circles first"))["circle of answer"] > 0.01


def test_a_planted_circle_beats_the_shuffled_calendar_orders():
    problems = tasks.weekdays()
    answers = np.array([p.answer for p in problems])
    rng = np.random.default_rng(2)
    hidden = probes.circle_targets(answers, 7) @ rng.normal(size=(2, 40)) + 0.05 * rng.normal(size=(49, 40))
    real = decompose.explained_variance(hidden, decompose.problem_groups(problems))["circle of answer"]
    shuffled = decompose.shuffled_shares(hidden, problems)["circle of answer"]
    # Any 2-D code of the answer takes part of a circle of the answer: ~0.4 on average, which is the baseline.
    assert real > 0.95 and shuffled.max() < real - 0.15 and shuffled.mean() < 0.6 and len(shuffled) == 20


def test_top_components_keep_what_there_is():
    hidden = np.random.default_rng(3).normal(size=(12, 50))
    assert decompose.top_components(hidden).shape == (12, 11)  # at most n − 1 components carry variance
    assert decompose.top_components(hidden, k=4).shape == (12, 4)


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


def test_hooks_without_variance_are_left_out():
    same = np.ones((5, 3))
    kept = decompose.varying({"blocks.0.hook_resid_pre": same, "blocks.1.hook_resid_pre": np.arange(15.0).reshape(5, 3)})
    assert list(kept) == ["blocks.1.hook_resid_pre"]


def test_the_circle_of_operand_minus_shift_is_that_value_on_the_circle():
    problems = tasks.task("weekdays")
    groups = decompose.problem_groups(problems)
    expected = [(p.start - p.shift) % 7 for p in problems]
    np.testing.assert_allclose(groups["circle of operand − shift"], probes.circle_targets(np.array(expected), 7))
    np.testing.assert_allclose(groups["circle of answer"], probes.circle_targets(np.array([p.answer for p in problems]), 7))
