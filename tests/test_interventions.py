"""mvf.interventions: exactness of the patches, no-op patches, and batched vs one-at-a-time agreement."""

import warnings

import numpy as np
import pandas as pd
import pytest
import torch

from mvf import activations, geometry, interventions, irreducibility, probes, tasks

HOOK = "blocks.4.hook_resid_post"


@pytest.fixture(scope="module")
def setup(model):
    problems = tasks.task("weekday-successor")
    positions = np.array([tasks.positions(model.tokenizer, p, bos=False)["operand"] for p in problems])
    clean = activations.collect_at_positions(model, [p.prompt for p in problems], positions, [HOOK])[HOOK].numpy()
    clean = clean.astype(np.float64)
    starts = np.array([p.start for p in problems])
    return problems, positions, clean, probes.fit_circle_probe(clean, starts, 7)


def test_circle_patch_makes_the_probe_read_the_target(setup):
    _, _, clean, probe = setup
    target = probes.circle_targets(np.arange(len(clean)) % 7, 7)
    np.testing.assert_allclose(probe.circle_point(interventions.circle_patch(probe, clean, target)), target, atol=1e-8)
    moved = interventions.circle_patch(probe, clean, target) - clean
    outside = moved - (moved @ probe.components.T) @ probe.components
    # Float64 round-off scales with the size of the move (the pseudo-inverse of the probe's map can make it large).
    np.testing.assert_allclose(outside, 0, atol=1e-10 * np.abs(moved).max())


def test_several_circles_are_set_together_each_to_its_own_target():
    """Two labellings of 11 values (the numbers and twice the numbers): after the joint patch each probe reads its own
    target, which patching them one after the other would not guarantee."""
    generator = np.random.default_rng(0)
    values = np.arange(110) % 11
    angles = 2 * np.pi * np.column_stack([values, 2 * values]) / 11
    clean = np.hstack([np.cos(angles), np.sin(angles), 0.1 * generator.standard_normal((110, 6))]) @ generator.normal(size=(10, 16))
    fitted = [probes.fit_circle_probe(clean, (f * values) % 11, 11, k=4) for f in (1, 2)]
    new = (values + 3) % 11
    points = np.hstack([probes.circle_targets((f * new) % 11, 11) for f in (1, 2)])
    patched = interventions.circles_patch(fitted, clean, points)
    for i, probe in enumerate(fitted):
        np.testing.assert_allclose(probe.circle_point(patched), points[:, 2 * i : 2 * i + 2], atol=1e-8)
    with pytest.raises(ValueError, match="share their PCA components"):
        interventions.circles_patch([fitted[0], probes.fit_circle_probe(clean, values, 11, k=3)], clean, points)


def test_patching_with_the_problems_own_value_changes_nothing(model, setup):
    problems, positions, clean, probe = setup
    prompts = [p.prompt for p in problems]
    unchanged = interventions.circle_patch(probe, clean, probe.circle_point(clean))
    np.testing.assert_allclose(unchanged, clean, atol=1e-8)
    patched = interventions.patched_logits(model, prompts, HOOK, positions, unchanged)
    torch.testing.assert_close(patched, tasks.final_logits(model, problems), atol=2e-3, rtol=1e-4)


def test_batched_and_one_at_a_time_agree(model, setup):
    problems, positions, clean, probe = setup
    index, target = interventions.target_pairs(problems[:4])
    new = interventions.circle_patch(probe, clean[index], probes.circle_targets(target, 7))
    prompts = [problems[i].prompt for i in index]
    batched = interventions.patched_logits(model, prompts, HOOK, positions[index], new, batch_size=64)
    single = interventions.patched_logits(model, prompts, HOOK, positions[index], new, batch_size=1)
    torch.testing.assert_close(batched, single, atol=2e-3, rtol=1e-4)
    allowed = tasks.candidates(model.tokenizer, problems)[index]
    kept = interventions.patched_logits(model, prompts, HOOK, positions[index], new, batch_size=3, columns=allowed)
    torch.testing.assert_close(kept, batched.gather(1, allowed), atol=2e-3, rtol=1e-4)


def test_target_pairs_cover_every_other_value_or_a_seeded_draw_of_them():
    index, target = interventions.target_pairs(tasks.weekdays()[:2])
    assert len(index) == 12 and all(t != tasks.weekdays()[i].start for i, t in zip(index, target))
    drawn = interventions.target_pairs(tasks.weekdays(), per_problem=2, seed=3)
    assert len(drawn[0]) == 98 and np.array_equal(drawn[1], interventions.target_pairs(tasks.weekdays(), per_problem=2, seed=3)[1])
    assert all(t != tasks.weekdays()[i].start for i, t in zip(*drawn))
    # At the final token the position carries the answer: a new value is never the old answer.
    index, target = interventions.target_pairs(tasks.weekdays(), "final")
    assert len(index) == 49 * 6 and all(t != tasks.weekdays()[i].answer for i, t in zip(index, target))


@pytest.mark.parametrize("name", ["weekdays", "months", "weekday-successor"])
def test_the_donor_is_the_matching_problem(name):
    problems = tasks.task(name)
    index, target = interventions.target_pairs(problems, "operand")
    for i, y, a in zip(index, target, interventions.matching_problems(problems, index, target, "operand")):
        p, donor = problems[i], problems[a]
        assert (donor.start, donor.shift, donor.listed) == (y, p.shift, p.listed)
    index, target = interventions.target_pairs(problems, "final")
    for i, y, c in zip(index, target, interventions.matching_problems(problems, index, target, "final")):
        p, donor = problems[i], problems[c]
        assert donor.answer == y != p.answer and donor.listed == p.listed
        assert donor.shift == (3 if name != "weekday-successor" else p.shift)  # the paper's β = 3 where it exists


def _judged(full: float, circle: float, null: float = -3.0, ablated: float = -0.5, noise: float = 0.3,
            wins_share: dict[str, float] | None = None):  # fmt: skip
    """The verdict on synthetic pairs (21 problems x 2): before at -3, the other methods' mean logit differences as
    given; a pair's new answer wins when its logit difference is positive, or in the share ``wins_share`` gives
    for a method."""
    generator = np.random.default_rng(0)
    groups = np.repeat(np.arange(21), 2)
    centres = {"before": -3.0, "full patch": full, "circle patch": circle, "mean ablation": ablated,
               interventions.NULLS[0]: null, interventions.NULLS[1]: -3.0}  # fmt: skip
    diffs = {name: centre + noise * generator.normal(size=len(groups)) for name, centre in centres.items()}
    wins = {name: diff > 0 for name, diff in diffs.items()}
    for name, share in (wins_share or {}).items():
        wins[name] = np.arange(len(groups)) < share * len(groups)
    table = interventions.summarize(diffs, wins, groups).assign(chance=1 / 7).set_index("method")
    return interventions.verdict(table), table


def test_the_shares_are_measured_from_before_and_from_mean_ablation_with_intervals():
    _, table = _judged(full=2.0, circle=1.0, ablated=0.0, noise=0.0)
    circle = table.loc["circle patch"]
    assert circle["share from before"] == pytest.approx(4 / 5) and circle["share from mean ablation"] == pytest.approx(1 / 2)
    assert circle["shift from before"] == pytest.approx(4.0) and circle["logit diff"] == pytest.approx(1.0)
    assert circle["share from before low"] == pytest.approx(0.8) == circle["share from before high"]  # no spread, no width
    _, noisy = _judged(full=2.0, circle=1.0, ablated=0.0)
    for label in ("logit diff", "share from before", "share from mean ablation"):
        row = noisy.loc["circle patch"]
        assert row[f"{label} low"] < row[label] < row[f"{label} high"], label


def test_the_logit_difference_is_new_minus_old():
    logits = torch.tensor([[0.0, 5.0, 1.0], [2.0, 0.0, 0.0]])
    diff, wins = interventions.pair_effects(logits, old=np.array([0, 0]), new=np.array([1, 2]))
    assert diff.tolist() == [5.0, -2.0] and wins.tolist() == [True, False]


def test_the_bootstrap_resamples_whole_problems():
    values = np.array([[0.0, 0.0, 0.0, 1.0, 1.0, 1.0]])
    drawn = interventions.bootstrap_means(values, groups=np.array([0, 0, 0, 1, 1, 1]), draws=200)
    assert set(np.round(drawn[:, 0], 6)) <= {0.0, 0.5, 1.0} and len(set(np.round(drawn[:, 0], 6))) == 3
    assert np.array_equal(drawn, interventions.bootstrap_means(values, np.array([0, 0, 0, 1, 1, 1]), draws=200))


def test_the_verdict_judges_the_circle_patchs_share_of_the_full_patchs_shift():
    matched, _ = _judged(full=2.0, circle=1.8)
    assert matched.category == "matches" and matched.sentence.startswith("matches: the circle patch does 95%")
    partly, _ = _judged(full=2.0, circle=0.0)  # 60 % from before
    assert partly.category == "partly matches" and "59% [57%, 62%] of the full patch" in partly.sentence
    # Most of the shift in logit difference, but the new answer rarely wins: the patch aims near, not at, the value.
    assert _judged(full=2.0, circle=1.8, wins_share={"circle patch": 0.3})[0].category == "partly matches"
    assert _judged(full=2.0, circle=-2.8)[0].category == "does not match"
    nothing = _judged(full=-3.0, circle=1.0)[0]
    assert nothing.category == "inconclusive" and "reaches 0" in nothing.sentence
    # The full patch shifts the logit difference, but too little against the noise to bound the circle's share.
    uncertain = _judged(full=-2.3, circle=-2.5, noise=2.0)[0]
    assert uncertain.category == "inconclusive" and "too uncertain" in uncertain.sentence
    # A circle patch that adds nothing to what the mean ablation does by erasing the old value.
    assert _judged(full=2.0, circle=-0.5)[0].category == "does not match"
    unread = interventions.verdict(_judged(full=2.0, circle=1.8)[1], probe_r2=0.05)
    assert unread.category == "inconclusive" and "does not read" in unread.sentence
    assert interventions.verdict(_judged(full=2.0, circle=1.8)[1], probe_r2=0.9).category == "matches"
    # A null that shifts the logit difference as far as the circle patch, pair by pair: the circle is not what does it,
    # even where that null's new answer rarely wins.
    for wins_share in (None, {interventions.NULLS[0]: 0.2}):
        judged = _judged(full=2.0, circle=1.8, null=1.8, wins_share=wins_share)[0]
        assert judged.category == "does not match" and "shuffled-order probe does as much" in judged.sentence
    # A null with less of the shift whose new answer wins more often than the circle's does as much too.
    wins_more = _judged(full=2.0, circle=1.8, null=0.5, wins_share={"circle patch": 0.5, interventions.NULLS[0]: 0.9})
    assert wins_more[0].category == "does not match"
    # The full patch shifts the logit difference but the new answer hardly ever wins: the answers do not move.
    weak = _judged(full=2.0, circle=1.8, wins_share={"full patch": 0.2, "circle patch": 0.2})[0]
    assert weak.category == "inconclusive" and "the answers do not move" in weak.sentence
    judged = {_judged(*args)[0].category for args in [(2.0, 1.8), (2.0, 0.0), (2.0, -2.8), (-3.0, 1.0)]}
    assert judged == set(interventions.VERDICTS)


def test_the_paired_comparison_reads_the_same_resampled_problems_for_the_patch_and_its_null():
    _, table = _judged(full=2.0, circle=1.8, null=1.8)
    null, circle = table.loc[interventions.NULLS[0]], table.loc["circle patch"]
    assert null["advantage in share"] == pytest.approx(circle["share from before"] - null["share from before"])
    assert null["advantage in wins"] == pytest.approx(circle["accuracy"] - null["accuracy"])
    assert null["advantage in share low"] < 0 < null["advantage in share high"]
    # Paired, the interval of the difference is narrower than the two shares' own intervals side by side.
    unpaired = (circle["share from before high"] - null["share from before low"]) - (
        circle["share from before low"] - null["share from before high"])
    assert null["advantage in share high"] - null["advantage in share low"] < unpaired
    assert 0 < null["null reaches share"] < 1
    assert table.loc[["before", "full patch", "circle patch"], "advantage in share"].isna().all()
    # A null identical to the patch reaches it in every resample, with no spread.
    groups = np.repeat(np.arange(10), 2)
    same = {"before": np.zeros(20), "mean ablation": np.ones(20), "full patch": np.full(20, 3.0),
            "circle patch": np.linspace(1, 3, 20), interventions.NULLS[1]: np.linspace(1, 3, 20)}  # fmt: skip
    identical = interventions.summarize(same, {name: d > 2 for name, d in same.items()}, groups).set_index("method")
    row = identical.loc[interventions.NULLS[1]]
    assert row["advantage in share low"] == row["advantage in share high"] == 0 and row["null reaches wins"] == 1


def test_a_table_without_the_paired_comparison_is_refused_with_the_command_that_remakes_it():
    old = _table(null={}).drop(columns=[c for c in _table(null={}) if c.startswith("advantage")])
    with pytest.raises(ValueError, match="sweep_interventions"):
        interventions.verdict(old)


def test_the_decision_table_lists_every_outcome_in_the_rules_order():
    assert set(interventions.DECISIONS["outcome"]) == set(interventions.VERDICTS)
    assert interventions.DECISIONS["outcome"].tolist()[3:5] == ["does not match", "inconclusive"]  # nulls, then wins


def test_the_shuffled_order_is_never_the_same_circle():
    for period, seed in [(7, s) for s in range(30)] + [(12, s) for s in range(30)]:
        order = interventions.shuffled_order(period, seed)
        assert sorted(order) == list(range(period))
        steps = (np.roll(order, -1) - order) % period
        assert not (steps == 1).all() and not (steps == period - 1).all()  # a rotation or a reflection
    with pytest.raises(ValueError, match="no relabelling"):
        interventions.shuffled_order(3)


def test_patching_the_last_residual_at_the_final_token_gives_the_donors_logits(model):
    """After the last block only the final norm and the unembedding follow: problem B's activation gives B's logits."""
    problems = tasks.task("weekday-successor")
    a, b = problems[0], problems[8]
    hook = f"blocks.{model.cfg.n_layers - 1}.hook_resid_post"
    finals = np.array([tasks.positions(model.tokenizer, p, bos=False)["final"] for p in (a, b)])
    donor = activations.collect_at_positions(model, [b.prompt], finals[1:], [hook])[hook].numpy()
    patched = interventions.patched_logits(model, [a.prompt], hook, finals[:1], donor)
    torch.testing.assert_close(patched, tasks.final_logits(model, [b]), atol=1e-4, rtol=1e-5)
    wrong_position = interventions.patched_logits(model, [a.prompt], hook, finals[:1] - 1, donor)
    assert not torch.allclose(wrong_position, tasks.final_logits(model, [b]), atol=1e-2)


def test_the_papers_circle_patch_starts_from_the_mean_and_the_baselines_do_what_they_say(setup):
    problems, _, clean, probe = setup
    index, target = interventions.target_pairs(problems, per_problem=2)
    donors = interventions.matching_problems(problems, index, target, "operand")
    made = {name: method(index, target) for name, method in interventions.methods(probe, clean, donors).items()}
    mean = clean.mean(axis=0)
    wanted = probes.circle_targets(target, 7)
    np.testing.assert_allclose(probe.circle_point(made["circle patch"]), wanted, atol=1e-8)
    plane = probes.circle_plane(probe)
    outside = (made["circle patch"] - mean) - (made["circle patch"] - mean) @ plane.T @ plane
    np.testing.assert_allclose(outside, 0, atol=1e-8)  # only the circle differs from the mean
    np.testing.assert_allclose(made["full patch"], clean[donors])
    np.testing.assert_allclose(made["before"], clean[index])
    np.testing.assert_allclose(made["mean ablation"], np.broadcast_to(mean, made["mean ablation"].shape))
    np.testing.assert_allclose(made["circle ablation"] @ plane.T, np.broadcast_to(mean @ plane.T, (len(index), 2)), atol=1e-8)
    np.testing.assert_allclose(made["circle only"] @ plane.T, clean[index] @ plane.T, atol=1e-8)
    # The random-plane null: the mean, with a plane inside the probe's PCA space taken from the donor.
    moved = made[interventions.NULLS[1]] - mean
    np.testing.assert_allclose(moved - moved @ probe.components.T @ probe.components, 0, atol=1e-8)
    assert np.linalg.matrix_rank(moved, tol=1e-6) == 2


def test_the_shuffled_order_null_aims_the_scrambled_probe_at_the_relabelled_value(setup):
    problems, _, clean, probe = setup
    order = interventions.shuffled_order(7, 0)
    null = probes.fit_circle_probe(clean, order[np.array([p.start for p in problems])], 7)
    index, target = interventions.target_pairs(problems, per_problem=2)
    donors = interventions.matching_problems(problems, index, target, "operand")
    made = interventions.methods(probe, clean, donors, null_probe=null, null_order=order)[interventions.NULLS[0]](index, target)
    np.testing.assert_allclose(null.circle_point(made), probes.circle_targets(order[target], 7), atol=1e-8)


def test_layer_out_of_range(model, setup):
    problems, positions, clean, _ = setup
    with pytest.raises(ValueError, match="out of range"):
        interventions.patched_logits(model, [problems[0].prompt], "blocks.31.hook_resid_post", positions[:1], clean[:1])


def test_the_random_plane_null_does_not_depend_on_how_pca_picked_its_basis():
    """Where eigenvalues tie (an exact circle's two coordinates), PCA's basis is any rotation of the tied directions;
    the null's plane, drawn by projection onto their span, is the same for every rotation."""
    components = np.linalg.qr(np.random.default_rng(0).normal(size=(12, 3)))[0].T
    turn = np.array([[np.cos(0.7), -np.sin(0.7), 0], [np.sin(0.7), np.cos(0.7), 0], [0, 0, 1]])
    planes = []
    for basis in (components, turn @ components):
        probe = probes.CircleProbe(np.zeros(12), basis, np.zeros((4, 2)), 7, determined=3)
        plane = interventions.random_plane_of(probe, seed=0)
        planes.append(plane.T @ plane)  # the projector onto the plane: the plane, whatever its basis
    assert np.allclose(planes[0], planes[1], atol=1e-12)
    assert np.allclose(planes[0] @ components.T @ components, planes[0], atol=1e-12)  # inside the probe's space


def test_no_random_plane_null_where_the_activations_span_only_the_circle():
    """An exact circle spans two dimensions: a random plane of them is the circle's own plane, not a null."""
    angles = 2 * np.pi * np.arange(7) / 7
    basis = np.linalg.qr(np.random.default_rng(0).normal(size=(12, 2)))[0].T
    exact = np.column_stack([np.cos(angles), np.sin(angles)]) @ basis
    noisy = exact + np.random.default_rng(1).normal(scale=0.1, size=exact.shape)
    for clean, null_there in ((exact, False), (noisy, True)):
        probe = probes.fit_circle_probe(clean, np.arange(7), 7, k=5)
        chosen = interventions.methods(probe, clean, np.arange(7))
        assert (interventions.NULLS[1] in chosen) is null_there


def _allowed_effects(model, problems, rows, old, new):
    """The logit difference new − old and whether new wins among the allowed answers, from unpatched runs of ``rows``."""
    allowed = tasks.final_logits(model, [problems[r] for r in rows]).gather(1, tasks.candidates(model.tokenizer, problems)[rows])
    return interventions.pair_effects(allowed, old, new)


def test_the_position_sweep_at_the_last_residual_measures_what_unpatched_runs_give(model, tmp_path):
    """At the final token of the last block a full patch is the donor's own run and "before" the problem's: their
    logit differences and accuracies must equal those of unpatched forward passes, computed here independently."""
    problems = tasks.task("weekday-successor")[:7]  # the lists of two names: every donor is among them
    last = f"blocks.{model.cfg.n_layers - 1}.hook_resid_post"
    hooks = ["blocks.0.hook_resid_post", last]
    quality, effects = interventions.position_sweep(model, problems, "final", hooks, [last], k=3, per_problem=1, seed=2,
                                                    cache_dir=tmp_path)  # fmt: skip
    assert list(quality["layer"]) == [0, 1] and set(quality["position"]) == {"final"}
    assert len(list(tmp_path.glob("prompts-*"))) == 1, "the clean activations go to the cache given"
    finals = [tasks.positions(model.tokenizer, p, bos=False)["final"] for p in problems]
    clean = activations.collect_at_positions(model, [p.prompt for p in problems], finals, hooks)
    wanted = probes.quality_by_layer({h: a.numpy().astype(np.float64) for h, a in clean.items()},
                                     np.array([p.answer for p in problems]), 7, k=3, seed=2)  # fmt: skip
    wanted = wanted.merge(irreducibility.by_layer({h: a.numpy().astype(np.float64) for h, a in clean.items()},
                                                  np.array([p.answer for p in problems]), 7, k=3, seed=2), on="layer")
    pd.testing.assert_frame_equal(quality.drop(columns="position"), wanted, atol=1e-12, rtol=1e-9)
    assert set(effects["hook"]) == {last} and set(effects["layer"]) == {model.cfg.n_layers - 1}
    assert set(effects["position"]) == {"final"} and np.allclose(effects["chance"], 1 / 7)
    assert set(interventions.NULLS) | {"PCA-3 patch"} <= set(effects["method"])  # the sweep's probes are of rank k
    table = effects.set_index("method")
    index, target = interventions.target_pairs(problems, "final", per_problem=1, seed=2)
    donors = interventions.matching_problems(problems, index, target, "final")
    old, new = np.array([problems[i].answer for i in index]), target
    for method, rows in (("before", index), ("full patch", donors)):
        diff, wins = _allowed_effects(model, problems, rows, old, new)
        assert table.loc[method, "logit diff"] == pytest.approx(diff.mean(), abs=2e-3), method
        assert table.loc[method, "accuracy"] == pytest.approx(wins.mean()), method
    assert table.loc["full patch", "share from before"] == pytest.approx(1.0)
    assert table.loc["before", "share from before"] == pytest.approx(0.0, abs=1e-9)


def test_off_circle_at_the_problems_own_point_is_the_unpatched_distribution(model, setup):
    """Moving the circle point of a problem's own activation to where it already is changes nothing; a grid of radii
    is the same calls stacked."""
    problems, positions, clean, probe = setup
    point = probe.circle_point(clean[3:4])[0]
    angle, radius = np.arctan2(point[1], point[0]), np.hypot(*point)
    probabilities = interventions.off_circle(model, problems[3], probe, HOOK, positions[3], clean[3], np.array([angle]), radius)
    allowed = tasks.final_logits(model, problems[3:4]).gather(1, tasks.candidates(model.tokenizer, problems[3:4]))
    np.testing.assert_allclose(probabilities, torch.softmax(allowed, dim=1).numpy(), atol=1e-3)
    angles = np.array([0.0, 2.0, 4.0])
    grid = interventions.off_circle_grid(model, problems[3], probe, HOOK, positions[3], clean[3], angles, np.array([0.5, 1.5]))
    assert grid.shape == (2, 3, 7)
    np.testing.assert_allclose(grid.sum(axis=2), 1, atol=1e-5)
    np.testing.assert_allclose(grid[1], interventions.off_circle(model, problems[3], probe, HOOK, positions[3], clean[3], angles, 1.5), atol=1e-6)
    assert not np.allclose(grid[0], grid[1], atol=1e-3)


def test_an_angle_implies_the_nearest_value_and_at_the_operand_the_shifted_answer():
    problem = tasks.weekdays()[2 * 7 + 5]  # three days from Saturday
    assert (problem.shift, problem.start) == (3, 5)
    step = 2 * np.pi / 7
    angles = np.array([0.0, step, 2.4 * step, 2.6 * step, 6.6 * step, -step])
    assert interventions.angle_answers(angles, problem, "final").tolist() == [0, 1, 2, 3, 0, 6]
    assert interventions.angle_answers(angles, problem, "operand").tolist() == [3, 4, 5, 6, 3, 2]


def test_on_a_shuffled_orders_circle_an_angle_implies_the_value_placed_there():
    problem = tasks.weekdays()[2 * 7 + 5]
    order = interventions.shuffled_order(7, seed=3)
    angles = 2 * np.pi * np.arange(7) / 7
    placed = interventions.angle_answers(angles, problem, "final", order)
    assert (order[placed] == np.arange(7)).all()  # the value whose label is the angle's
    assert (interventions.angle_answers(angles, problem, "operand", order) == (placed + 3) % 7).all()


def test_shuffled_orders_are_seeded_never_a_symmetry_and_begin_with_shuffled_order():
    orders = interventions.shuffled_orders(5, 40, seed=2)
    symmetries = {tuple((s * np.arange(5) + r) % 5) for r in range(5) for s in (1, -1)}
    assert orders.shape == (40, 5) and not symmetries & {tuple(order) for order in orders}
    assert (orders[0] == interventions.shuffled_order(5, seed=2)).all()
    assert (orders == interventions.shuffled_orders(5, 40, seed=2)).all()


def _tracking(circle: float, null: float, problems: int = 4, angles: int = 24) -> interventions.Verdict:
    """A planted tracking test: each problem's first ``circle`` (``null``) share of angles hit."""
    hits = np.tile(np.arange(angles) < round(circle * angles), (problems, 1))
    null_hits = np.tile(np.arange(angles) < round(null * angles), (problems, 1))
    return interventions.tracking_verdict(hits, {interventions.TRACKING_NULL.format(1): null_hits}, 1 / 7)


@pytest.mark.parametrize(
    "circle, null, category, rule",
    [(0.0, 0.0, "does not match", 0), (0.125, 0.0, "does not match", 0), (1.0, 1.0, "does not match", 1),
     (1.0, 0.9, "does not match", 1), (1.0, 0.0, "matches", 2), (0.5, 0.0, "partly matches", 3),
     (0.625, 0.25, "partly matches", 3), (0.75, 0.25, "matches", 2)],
)  # fmt: skip
def test_the_tracking_verdict_needs_chance_and_every_null_beaten(circle, null, category, rule):
    found = _tracking(circle, null)
    assert (found.category, found.rule) == (category, rule), found.sentence
    assert found.sentence.startswith(category) and "chance 0.14" in found.sentence


def test_the_tracking_verdicts_interval_counts_the_angles_of_one_problem():
    one = interventions.tracking_verdict(np.arange(24) < 6, {interventions.TRACKING_NULL.format(1): np.zeros(24, bool)}, 1 / 7)
    assert one.category == "does not match" and "0.25 [0.0" in one.sentence  # 6 of 24 angles: the interval reaches 0.14
    with pytest.raises(ValueError, match="no angles"):
        interventions.tracking_verdict(np.zeros((3, 0), bool), {}, 1 / 7)


def test_no_donor_for_a_value_the_task_lacks_is_refused_with_a_reason():
    problems = tasks.task("weekday-successor")[:7]
    with pytest.raises(ValueError, match="^no problem matches 'Monday, Tuesday,' with value 3 at the operand position.$"):
        interventions.matching_problems(problems[:2], np.array([0]), np.array([3]), "operand")


def test_seeds_choose_the_random_parts_and_default_to_zero(setup):
    problems, _, clean, probe = setup
    assert np.array_equal(interventions.random_basis(3, 10), interventions.random_basis(3, 10, seed=0))
    assert not np.allclose(interventions.random_basis(3, 10, seed=0), interventions.random_basis(3, 10, seed=1))
    assert np.array_equal(interventions.random_plane_of(probe), interventions.random_plane_of(probe, seed=0))
    assert not np.allclose(interventions.random_plane_of(probe, seed=0), interventions.random_plane_of(probe, seed=1))
    assert np.array_equal(interventions.shuffled_order(7), interventions.shuffled_order(7, seed=0))
    assert all(np.array_equal(interventions.shuffled_order(12, s), interventions.shuffled_order(12, s)) for s in range(5))
    assert len({tuple(interventions.shuffled_order(7, s)) for s in range(5)}) > 1
    index, target = interventions.target_pairs(problems, per_problem=1)
    donors = interventions.matching_problems(problems, index, target, "operand")
    k, d = probe.components.shape
    for seed in (0, 3):
        made = interventions.methods(probe, clean, donors, **({"seed": seed} if seed else {}))
        random_patch = made[f"random {k}-d patch (ours)"](index, target)
        np.testing.assert_allclose(random_patch, interventions.subspace_patch(interventions.random_basis(k, d, seed), clean[index], clean[donors]))
        plane = interventions.random_plane_of(probe, seed)
        np.testing.assert_allclose(made[interventions.NULLS[1]](index, target),
                                   interventions.subspace_patch(plane, np.broadcast_to(clean.mean(axis=0), (len(index), d)), clean[donors]))  # fmt: skip


def test_the_shuffled_order_of_few_values_is_never_a_rotation_or_reflection():
    """Of the 24 orders of 4 values, 8 are rotations or reflections: 30 seeds draw some of them."""
    for period in (4, 5):
        symmetric = {tuple((s * np.arange(period) + r) % period) for r in range(period) for s in (1, -1)}
        assert len(symmetric) == 2 * period
        assert all(tuple(interventions.shuffled_order(period, seed)) not in symmetric for seed in range(30))


def test_every_method_makes_what_its_name_says(setup):
    problems, _, clean, probe = setup
    index, target = interventions.target_pairs(problems, per_problem=2)
    donors = interventions.matching_problems(problems, index, target, "operand")
    k, d = probe.components.shape
    made = {name: method(index, target) for name, method in interventions.methods(probe, clean, donors).items()}
    assert list(made) == ["before", "circle patch", "full patch", f"PCA-{k} patch", "mean ablation", "circle ablation",
                          "circle only", "in-plane circle move (ours)", f"random {k}-d patch (ours)", interventions.NULLS[1]]  # fmt: skip
    assert all(value.shape == (len(index), d) for value in made.values())
    pca = made[f"PCA-{k} patch"]
    np.testing.assert_allclose(probe.reduced(pca), probe.reduced(clean[donors]), atol=1e-8)
    np.testing.assert_allclose(pca - pca @ probe.components.T @ probe.components,
                               clean[index] - clean[index] @ probe.components.T @ probe.components, atol=1e-8)  # fmt: skip
    moved = made["in-plane circle move (ours)"]
    np.testing.assert_allclose(probe.circle_point(moved), probes.circle_targets(target, 7), atol=1e-8)
    plane = probes.circle_plane(probe)
    np.testing.assert_allclose((moved - clean[index]) - (moved - clean[index]) @ plane.T @ plane, 0, atol=1e-8)


def test_the_random_plane_null_needs_more_than_two_determined_dimensions():
    basis = np.linalg.qr(np.random.default_rng(0).normal(size=(12, 3)))[0].T
    for determined, present in ((3, True), (2, False)):
        probe = probes.CircleProbe(np.zeros(12), basis, np.ones((4, 2)), 7, determined=determined)
        assert (interventions.NULLS[1] in interventions.methods(probe, np.eye(12)[:7], np.arange(7))) is present


def test_pair_effects_are_float64_and_the_winner_is_each_rows_own():
    logits = torch.tensor([[9.0, 0.0, 1.0], [0.0, 3.0, 5.0], [2.0, 4.0, 0.0]])
    diff, wins = interventions.pair_effects(logits, old=np.array([0, 0, 0]), new=np.array([0, 2, 1]))
    assert diff.dtype == np.float64 and diff.tolist() == [0.0, 5.0, 2.0] and wins.tolist() == [True, True, True]


def test_summarize_estimates_on_all_pairs_and_bounds_with_the_bootstrap_percentiles():
    rng = np.random.default_rng(0)
    groups = np.repeat(np.arange(10), 3)
    diffs = {name: rng.normal(loc, 1.0, size=30) for name, loc in (("before", -2.0), ("mean ablation", 0.0),
                                                                     ("full patch", 3.0), ("circle patch", 1.0))}  # fmt: skip
    wins = {name: value > 0 for name, value in diffs.items()}
    for seed in (0, 4):
        table = interventions.summarize(diffs, wins, groups, **({"seed": seed} if seed else {})).set_index("method")
        draws = interventions.bootstrap_means(np.stack(list(diffs.values())), groups, seed=seed)[:, 3]
        assert table.loc["circle patch", "logit diff"] == pytest.approx(diffs["circle patch"].mean())
        assert table.loc["circle patch", "logit diff low"] == pytest.approx(np.percentile(draws, 2.5))
        assert table.loc["circle patch", "logit diff high"] == pytest.approx(np.percentile(draws, 97.5))
    assert np.array_equal(interventions.bootstrap_means(np.ones((1, 30)), groups), interventions.bootstrap_means(np.ones((1, 30)), groups, seed=0))


def test_a_full_patch_that_shifts_nothing_gives_undefined_shares_without_a_floating_point_error():
    groups = np.repeat(np.arange(5), 2)
    still = {"before": np.zeros(10), "mean ablation": np.zeros(10), "full patch": np.zeros(10)}
    for diffs, error in ((still | {"circle patch": np.zeros(10)}, "invalid"), (still | {"circle patch": np.ones(10)}, "divide")):
        with np.errstate(**{error: "raise"}), warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)  # nanpercentile's all-NaN slices: NaN is the answer there
            table = interventions.summarize(diffs, {name: d > 0 for name, d in diffs.items()}, groups).set_index("method")
        shares = table.loc["circle patch", ["share from before", "share from mean ablation"]]
        assert (np.isnan(shares) if error == "invalid" else np.isinf(shares)).all()


def _table(circle: dict | None = None, full: dict | None = None, null: dict | None = None, chance: float = 0.25):
    """A ``summarize`` table of one layer, written by hand: each method's share from before, from mean ablation, the
    full patch's shift, with intervals, and accuracy, and the null's paired advantages; defaults give a clear "matches"."""
    def row(share, low, high, accuracy, shift=(1.0, 0.5, 1.5), ablated=(0.5, 0.3, 0.7), share_gain=(np.nan,) * 3,
            wins_gain=(np.nan,) * 3):  # fmt: skip
        return {"share from before": share, "share from before low": low, "share from before high": high,
                "share from mean ablation": ablated[0], "share from mean ablation low": ablated[1],
                "share from mean ablation high": ablated[2], "shift from before": shift[0],
                "shift from before low": shift[1], "shift from before high": shift[2], "accuracy": accuracy,
                "advantage in share": share_gain[0], "advantage in share low": share_gain[1],
                "advantage in share high": share_gain[2], "advantage in wins": wins_gain[0],
                "advantage in wins low": wins_gain[1], "advantage in wins high": wins_gain[2]}  # fmt: skip

    rows = {"before": row(0.0, 0.0, 0.0, 0.1), "mean ablation": row(0.4, 0.3, 0.5, 0.2),
            "full patch": row(1.0, 1.0, 1.0, 0.5) | (full or {}),
            "circle patch": row(0.9, 0.8, 1.0, 0.45) | (circle or {})}  # fmt: skip
    if null is not None:
        rows[interventions.NULLS[0]] = row(0.1, 0.0, 0.2, 0.1, share_gain=(0.8, 0.6, 1.0), wins_gain=(0.35, 0.2, 0.5)) | null
    return pd.DataFrame.from_dict(rows, orient="index").assign(chance=chance)


@pytest.mark.parametrize("circle, full, null, probe_r2, category", [
    ({}, {}, None, 0.5, "matches"),                                              # R² exactly at the bar reads the value
    ({}, {"shift from before low": 0.0}, None, None, "inconclusive"),            # a shift interval touching 0
    ({"share from before low": 0.25, "share from before high": 1.25}, {}, None, None, "partly matches"),  # width 1
    ({}, {"accuracy": 0.5}, None, None, "matches"),                              # exactly twice chance moves the answers
    ({}, {"accuracy": 0.49}, None, None, "inconclusive"),                        # under it they do not
    ({"share from before": 0.7}, {}, None, None, "matches"),                     # a share exactly at MATCH
    ({"share from before low": 0.5}, {}, None, None, "matches"),                 # a lower bound exactly at PART
    ({"accuracy": 0.4}, {}, None, None, "matches"),                              # exactly SAME_ANSWER of the full's wins
    ({"accuracy": 0.39}, {}, None, None, "partly matches"),
    ({"share from before": 0.3, "share from before low": 0.1, "share from before high": 0.5}, {}, None, None,
     "partly matches"),                                                          # a top exactly at PART
    ({"share from mean ablation high": 0.1, "share from before": 0.6}, {}, None, None, "partly matches"),  # at NOTHING
    ({"share from mean ablation high": 0.09, "share from before": 0.6}, {}, None, None, "does not match"),
    ({}, {}, {}, None, "matches"),                                               # every null beaten
    ({}, {}, {"advantage in share low": 0.0}, None, "does not match"),          # a lower bound at 0 is not beaten
    ({}, {}, {"advantage in share low": 0.01}, None, "matches"),
    ({}, {}, {"advantage in wins high": 0.0}, None, "matches"),                 # wins tied at the top: not below
    ({}, {}, {"advantage in wins high": -0.01}, None, "does not match"),        # wins below across the interval
    ({}, {"accuracy": 0.3}, {"advantage in share low": 0.0}, None, "does not match"),  # the nulls come first
])  # fmt: skip
def test_the_verdicts_thresholds_fall_on_the_documented_side(circle, full, null, probe_r2, category):
    assert interventions.verdict(_table(circle, full, null), probe_r2).category == category


def test_the_verdicts_sentences_say_what_was_measured():
    inconclusive = interventions.verdict(_table(full={"shift from before": 0.1, "shift from before low": -0.2}))
    assert inconclusive.sentence == ("inconclusive: the full patch shifts the logit difference by 0.10 [-0.20, 1.50], an "
                                     "interval that reaches 0, so there is no effect for the circle to reproduce")  # fmt: skip
    copied = interventions.verdict(_table(null={"advantage in share": 0.05, "advantage in share low": -0.05}))
    assert copied.sentence == (
        "does not match: the circle patch, shuffled-order probe does as much (the circle patch does 90% [80%, 100%] of "
        "the full patch's shift (wins 0.45, the full patch 0.50, chance 0.25); against the circle patch, shuffled-order "
        "probe: +0.05 [-0.05, +1.00] in share, +0.35 [+0.20, +0.50] in wins)")  # fmt: skip
    weak = interventions.verdict(_table(full={"accuracy": 0.3}, null={}))
    assert weak.sentence == ("inconclusive: the answers do not move (the full patch's new answer wins 0.30, under "
                             "twice chance, 0.25)")  # fmt: skip
    plain = interventions.verdict(_table(null={}))
    assert plain.sentence == (
        "matches: the circle patch does 90% [80%, 100%] of the full patch's shift (wins 0.45, the full patch 0.50, "
        "chance 0.25); it beats every null (against the circle patch, shuffled-order probe: +0.80 [+0.60, +1.00] in "
        "share, +0.35 [+0.20, +0.50] in wins)")  # fmt: skip


def test_a_sweep_measures_every_method_at_each_hook_with_its_seed(model, setup):
    """The sweep against its definition: at each hook, ``measure`` of ``methods`` (the null's probe fitted to the
    seeded relabelling, of the probe's rank) on the seeded pairs and their donors; rows of the hooks one after another."""
    problems, positions, clean, _ = setup
    problems, positions, clean = problems[:7], positions[:7], clean[:7]
    starts = np.array([p.start for p in problems])
    other = "blocks.2.hook_resid_post"
    clean_by_hook = {HOOK: clean, other: clean[::-1].copy()}
    fitted = {hook: probes.fit_circle_probe(acts, starts if hook == HOOK else starts[::-1], 7, k=3) for hook, acts in clean_by_hook.items()}
    table = interventions.sweep(model, problems, fitted, clean_by_hook, positions, "operand", per_problem=1, seed=5)
    assert table.index.equals(pd.RangeIndex(len(table))) and list(table.columns[:3]) == ["hook", "layer", "method"]
    index, target = interventions.target_pairs(problems, "operand", 1, 5)
    donors = interventions.matching_problems(problems, index, target, "operand")
    order = interventions.shuffled_order(7, 5)
    null = probes.fit_circle_probe(clean, order[starts], 7, k=3)
    frequencies = geometry.key_circles(clean, starts, 7)
    made = {name: method(index, target) for name, method in
            interventions.methods(fitted[HOOK], clean, donors, 5, null, order, frequencies, starts).items()}  # fmt: skip
    wanted = interventions.measure(model, problems, index, donors, HOOK, positions, made, seed=5)
    got = table[table["hook"] == HOOK].drop(columns=["hook", "layer", "frequencies"]).reset_index(drop=True)
    assert set(table.loc[table["hook"] == HOOK, "frequencies"]) == {" ".join(map(str, frequencies))}
    pd.testing.assert_frame_equal(got, wanted, atol=1e-5, rtol=1e-5)
    assert set(table.loc[table["hook"] == other, "layer"]) == {2}
    default = interventions.measure(model, problems, index, donors, HOOK, positions, made)
    pd.testing.assert_frame_equal(default, interventions.measure(model, problems, index, donors, HOOK, positions, made, seed=0))
    assert not default.equals(wanted)  # seed 5's bootstrap
    one = {HOOK: fitted[HOOK]}, {HOOK: clean}, positions, "operand"
    default = interventions.sweep(model, problems, *one, per_problem=1)
    pd.testing.assert_frame_equal(default, interventions.sweep(model, problems, *one, per_problem=1, seed=0))


def test_off_circle_defaults_to_the_unit_circle(model, setup):
    problems, positions, clean, probe = setup
    angles = np.array([0.5, 3.0])
    default = interventions.off_circle(model, problems[2], probe, HOOK, positions[2], clean.mean(axis=0), angles)
    unit = interventions.off_circle(model, problems[2], probe, HOOK, positions[2], clean.mean(axis=0), angles, 1.0)
    np.testing.assert_array_equal(default, unit)


def test_implied_answers_are_integers():
    assert interventions.angle_answers(np.array([0.1, 2.0]), tasks.weekdays()[0], "final").dtype.kind == "i"


def test_two_nulls_are_listed_and_both_named_when_both_do_as_much():
    both = _table(null={"advantage in share low": -0.1})
    both.loc[interventions.NULLS[1]] = both.loc[interventions.NULLS[0]]
    sentence = interventions.verdict(both).sentence
    assert sentence.startswith("does not match: the circle patch, shuffled-order probe and the random-plane patch do as much")
    assert sentence.count("in share") == 2


def test_the_verdict_without_nulls_says_it_beat_none():
    assert interventions.verdict(_table()).sentence == (
        "matches: the circle patch does 90% [80%, 100%] of the full patch's shift (wins 0.45, the full patch 0.50, "
        "chance 0.25); no null exists here (the activations span only its circles)")  # fmt: skip


def test_sweep_verdicts_judge_each_position_and_layer_with_its_own_probe():
    rows = {("operand", 0): _judged(full=2.0, circle=1.8)[1], ("operand", 1): _judged(full=2.0, circle=0.0)[1],
            ("final", 0): _judged(full=2.0, circle=1.8)[1]}  # fmt: skip
    effects = pd.concat([table.reset_index().assign(position=position, layer=layer)
                         for (position, layer), table in rows.items()])  # fmt: skip
    # The final token's probe reads nothing: its match becomes inconclusive, the operand's stays.
    quality = pd.DataFrame({"position": ["final", "operand", "operand"], "layer": [0, 1, 0], "circle R2": [0.05, 0.9, 0.9]})
    found = interventions.sweep_verdicts(effects, quality)
    assert found.to_dict() == {("operand", 0): "matches", ("operand", 1): "partly matches", ("final", 0): "inconclusive"}
    assert list(found.index.names) == ["position", "layer"]


def test_the_key_circles_patch_sets_every_circle_and_its_nulls_carry_none(setup):
    problems, _, clean, probe = setup
    starts = np.array([p.start for p in problems])
    index, target = interventions.target_pairs(problems, per_problem=2)
    donors = interventions.matching_problems(problems, index, target, "operand")
    order = interventions.shuffled_order(7, 0)
    chosen = interventions.methods(probe, clean, donors, 0, None, order, [1, 3], starts)
    assert {interventions.KEY_CIRCLES, *interventions.PAIRED[interventions.KEY_CIRCLES]} <= set(chosen)
    key = interventions.key_circle_probes(clean, starts, 7, [1, 3])
    assert all(p.components.shape[0] == 4 for p in key)
    made = chosen[interventions.KEY_CIRCLES](index, target)
    points = interventions.key_circle_points(target, 7, [1, 3])
    for i, fitted in enumerate(key):
        np.testing.assert_allclose(fitted.circle_point(made), points[:, 2 * i : 2 * i + 2], atol=1e-7)
    shuffled = interventions.key_circle_probes(clean, starts, 7, [1, 3], order)
    np.testing.assert_allclose(shuffled[0].circle_point(chosen[interventions.KEY_SHUFFLED](index, target)),
                               probes.circle_targets(order[target], 7), atol=1e-7)  # fmt: skip
    # The matched null: the mean with a random subspace of the same dimension (4) set to the donor's.
    moved = chosen[interventions.KEY_NULL](index, target) - clean.mean(axis=0)
    assert np.linalg.matrix_rank(moved, tol=1e-6) == 4
    space = interventions.spanned(clean)
    np.testing.assert_allclose(moved - moved @ space.T @ space, 0, atol=1e-8)  # inside the activations' span


def test_no_key_circles_null_where_the_activations_span_only_the_circles():
    angles = 2 * np.pi * np.arange(14) / 7
    clean = np.column_stack([np.cos(angles), np.sin(angles), np.zeros((14, 3))]) @ np.random.default_rng(0).normal(size=(5, 9))
    values = np.arange(14) % 7
    assert interventions.key_methods(clean, values, 7, [1], np.arange(14), None) == {}
    with pytest.raises(ValueError, match="span 2 directions"):
        interventions.random_subspace_of(clean, 2)


def test_each_verdict_names_the_rule_that_decided_it():
    cases = {0: (_table(null={}), 0.1), 1: (_table(full={"shift from before low": 0.0}), None),
             2: (_table({"share from before low": 0.0, "share from before high": 1.1}), None),
             3: (_table(null={"advantage in share low": 0.0}), None), 4: (_table(full={"accuracy": 0.3}, null={}), None),
             5: (_table(null={}), None), 6: (_table({"share from before": 0.3, "share from before low": 0.2, "share from before high": 0.4}, null={}), None),
             7: (_table({"share from before": 0.5}, null={}), None)}  # fmt: skip
    for rule, (table, r2) in cases.items():
        judged = interventions.verdict(table, r2)
        assert judged.rule == rule and judged.category == interventions.DECISIONS.loc[rule, "outcome"], rule


def test_the_power_is_the_share_of_known_cells_where_each_null_is_beaten():
    cells = []
    for cell, gain in enumerate((0.8, 0.0, 0.3)):  # the second cell's null is not beaten
        table = _table(null={"advantage in share low": gain, "null reaches share": 0.1 * cell, "null reaches wins": 0.5})
        cells.append(table.rename_axis("method").reset_index().assign(cell=cell))
    power = interventions.null_power(pd.concat(cells))
    assert power.index.tolist() == [interventions.NULLS[0]]
    assert power.iloc[0].to_dict() == pytest.approx({"cells": 3, "beaten": 2 / 3, "null reaches share": 0.1,
                                                     "null reaches wins": 0.5})  # fmt: skip


def test_every_circle_is_key_where_a_cell_lists_all_p_minus_1_halves_frequencies():
    effects = pd.DataFrame({"position": ["operand"] * 3 + ["final"] * 2, "layer": [0, 0, 1, 0, 1],
                            "frequencies": ["1 2 3", "1 2 3", "1 3", "3 1 2", "1"]})  # fmt: skip
    every = interventions.every_circle_key(effects, 7)
    assert every.to_dict() == {("operand", 0): True, ("operand", 1): False, ("final", 0): True, ("final", 1): False}
    assert not interventions.every_circle_key(effects, 12).any()  # 12 values have 5 circles (6 is a line)
    months = pd.DataFrame({"position": ["final"], "layer": [3], "frequencies": ["1 2 4 3 5"]})
    assert interventions.every_circle_key(months, 12).all()
