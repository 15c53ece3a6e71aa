"""mvf.decompose: planted groups come back exactly, order effects have their known values, bad input fails."""

import numpy as np
import pandas as pd
import pytest
from sklearn.decomposition import PCA

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


def _circle_layers(noise: float, layers: int = 3) -> dict[str, np.ndarray]:
    """Hidden states of the Weekdays problems: the answer's circle plus noise of this size, at a few layers."""
    answers = np.array([p.answer for p in tasks.weekdays()])
    rng = np.random.default_rng(5)
    return {f"blocks.{layer}.hook_resid_pre": probes.circle_targets(answers, 7) @ rng.normal(size=(2, 30))
            + noise * rng.normal(size=(49, 30)) for layer in range(layers)}  # fmt: skip


def _circle_verdict(hidden: dict[str, np.ndarray]) -> decompose.Verdict:
    problems, groups = tasks.weekdays(), decompose.problem_groups(tasks.weekdays(), "circles first")
    shares = decompose.layer_table(hidden, groups)["circle of answer"]
    shuffled = pd.DataFrame({hook: decompose.shuffled_shares(states, problems, "circles first")["circle of answer"]
                             for hook, states in hidden.items()})  # fmt: skip
    return decompose.circle_verdict(shares, shuffled)


@pytest.mark.parametrize("noise, category", [(0.05, "matches"), (2.0, "partly matches"), (30.0, "does not match")])
def test_the_circle_verdict_asks_more_than_every_shuffled_order_at_its_own_best_layer(noise, category):
    found = _circle_verdict(_circle_layers(noise))
    assert found.category == category, found.sentence
    assert "best of 20 circles of shuffled orders" in found.sentence


def test_the_circle_verdict_needs_layers_and_orders():
    with pytest.raises(ValueError, match="no layers or no shuffled orders"):
        decompose.circle_verdict(pd.Series(dtype=float), pd.DataFrame())


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


def _ridge_r2(hidden: np.ndarray, design: np.ndarray, ridge: float) -> float:
    """R² of scikit-learn's ridge regression (with intercept) at the penalty the module documents: ridge · trace(XᵀX)/g."""
    from sklearn.linear_model import Ridge

    x = design - design.mean(axis=0)
    alpha = ridge * np.trace(x.T @ x) / design.shape[1]
    fitted = Ridge(alpha=alpha).fit(design, hidden).predict(design)
    return 1 - ((hidden - fitted) ** 2).sum() / ((hidden - hidden.mean(axis=0)) ** 2).sum()


def _uncentred(seed: int = 0):
    """Hidden states and groups, neither centred, that overlap: no share is exact, each fit counts."""
    rng = np.random.default_rng(seed)
    groups = {"a": 3.0 + rng.normal(size=(30, 1)), "b": rng.normal(size=(30, 2)) - 2.0, "c": rng.normal(size=(30, 2))}
    hidden = np.column_stack(list(groups.values())) @ rng.normal(size=(5, 6)) + rng.normal(size=(30, 6)) + 7.0
    return hidden, groups


@pytest.mark.parametrize("ridge", [decompose.RIDGE, 0.3])
def test_shares_are_ridge_r2_increments_as_scikit_learn_computes_them(ridge):
    hidden, groups = _uncentred()
    shares = decompose.explained_variance(hidden, groups, ridge=ridge)
    assert shares["a"] == pytest.approx(_ridge_r2(hidden, groups["a"], ridge), abs=1e-9)
    both = _ridge_r2(hidden, np.column_stack([groups["a"], groups["b"]]), ridge)
    assert shares["b"] == pytest.approx(both - _ridge_r2(hidden, groups["a"], ridge), abs=1e-9)
    table = decompose.layer_table({"x": hidden, "y": hidden[::-1]}, groups, ridge=ridge)
    assert table.loc["x"].equals(shares) and list(table.index) == ["x", "y"]


def test_the_average_over_orders_is_the_mean_over_every_order():
    from itertools import permutations

    hidden, groups = _uncentred(1)
    table = decompose.order_effects(hidden, groups, ridge=0.3)
    assert list(table.columns) == ["stated order", "first", "last", "average over orders"]
    orders = [decompose.explained_variance(hidden, groups, list(order), ridge=0.3) for order in permutations(groups)]
    for name in groups:
        assert table.loc[name, "average over orders"] == pytest.approx(np.mean([o[name] for o in orders]), abs=1e-12)
        assert table.loc[name, "stated order"] == pytest.approx(orders[0][name], abs=1e-12)


def test_order_effects_take_up_to_ten_groups():
    rng = np.random.default_rng(0)
    hidden = rng.normal(size=(40, 3))
    groups = {f"g{i}": rng.normal(size=(40, 1)) for i in range(11)}
    assert len(decompose.order_effects(hidden, dict(list(groups.items())[:10]))) == 10
    with pytest.raises(ValueError, match=r"^11 groups need 2\^11 fits; merge some groups \(at most 10\).$"):
        decompose.order_effects(hidden, groups)


def test_the_residual_is_what_the_fit_leaves_of_the_centred_states():
    from sklearn.linear_model import LinearRegression

    hidden, groups = _uncentred(2)
    design = np.column_stack(list(groups.values()))
    wanted = hidden - LinearRegression().fit(design, hidden).predict(design)
    np.testing.assert_allclose(decompose.residual(hidden, groups), wanted, atol=1e-6)
    scores, shares = decompose.residual_pca(hidden, groups)
    assert scores.shape == (30, 3) and shares.shape == (3,)
    rest = decompose.residual(hidden, groups, ridge=0.3)
    pca = PCA(2).fit(rest)
    scores, shares = decompose.residual_pca(hidden, groups, k=2, ridge=0.3)
    np.testing.assert_allclose(np.abs(scores), np.abs(pca.transform(rest)), atol=1e-8)
    total = ((hidden - hidden.mean(axis=0)) ** 2).sum() / 29
    np.testing.assert_allclose(shares, pca.explained_variance_ / total)


def test_residual_pca_takes_k_from_one_to_the_smaller_side():
    hidden, groups = _uncentred(3)
    assert decompose.residual_pca(hidden, groups, k=1)[0].shape == (30, 1)
    assert decompose.residual_pca(hidden, groups, k=6)[0].shape == (30, 6)
    with pytest.raises(ValueError, match=r"^k=7 must be between 1 and 6 for 30 hidden states.$"):
        decompose.residual_pca(hidden, groups, k=7)
    with pytest.raises(ValueError, match=r"^k=0 must be between 1 and 6 for 30 hidden states.$"):
        decompose.residual_pca(hidden, groups, k=0)


def test_top_components_keep_no_more_than_the_dimensions():
    assert decompose.top_components(np.random.default_rng(0).normal(size=(20, 3)), k=5).shape == (20, 3)


@pytest.mark.parametrize("hidden, message", [
    (np.array([[1.0, 2.0], [1.0, 2.0], [1.0, 2.0]]), "^all hidden states are identical: there is no variance to explain.$"),
    (np.array([[0.0, np.nan], [1.0, 2.0], [1.0, 2.0]]), "^hidden states contain NaN or inf.$"),
])  # fmt: skip
def test_the_checks_say_what_is_wrong(hidden, message):
    with pytest.raises(ValueError, match=message):
        decompose.explained_variance(hidden, {"a": np.eye(3)[:, :2]})


def test_states_symmetric_about_their_mean_have_variance():
    """Centred values that cancel exactly (integers): the variance check squares them."""
    hidden = np.array([[0.0, 0.0], [2.0, 2.0], [1.0, 1.0], [1.0, 1.0]])
    shares = decompose.explained_variance(hidden, {"a": np.array([[0.0], [2.0], [1.0], [1.0]])})
    assert shares["a"] == pytest.approx(1.0)
    with pytest.raises(ValueError, match="^no groups to regress on.$"):
        decompose.explained_variance(hidden, {})


def test_groups_of_a_single_problem_and_of_two_shifts_or_list_lengths():
    weekdays = [p for p in tasks.weekdays() if p.shift in (1, 2)]
    groups = decompose.problem_groups(weekdays)
    assert groups["one-hot codes"].shape == (14, 9) and "circle of operand − shift" in groups
    lists = [p for p in tasks.task("weekday-successor") if p.listed in (2, 3)]
    assert decompose.problem_groups(lists)["one-hot codes"].shape == (14, 9)
    assert decompose.problem_groups(tasks.weekdays()[:1])["one-hot codes"].shape == (1, 7)
    with pytest.raises(ValueError, match=r"^no problems: pass the problems of a task \(mvf.tasks.task\).$"):
        decompose.problem_groups([])


def test_shuffled_shares_are_seeded_and_default_to_seed_zero(planted):
    hidden, _, _ = planted
    problems = tasks.weekdays()
    default = decompose.shuffled_shares(hidden, problems, shuffles=3)
    assert default.equals(decompose.shuffled_shares(hidden, problems, shuffles=3, seed=0))
    assert not default.equals(decompose.shuffled_shares(hidden, problems, shuffles=3, seed=1))
    with pytest.raises(ValueError, match="identical"):
        decompose.shuffled_shares(hidden[:1], problems[:1], shuffles=1)


def test_a_single_hidden_state_does_not_vary():
    assert decompose.varying({"one": np.ones((1, 4)), "two": np.array([[0.0], [1.0]])}).keys() == {"two"}
