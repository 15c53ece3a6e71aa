"""mvf.interventions: exactness of the patches, no-op patches, and batched vs one-at-a-time agreement."""

import numpy as np
import pandas as pd
import pytest
import torch

from mvf import activations, interventions, probes, tasks

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


def test_the_verdict_is_relative_to_chance():
    chance = 1 / 7
    judge = lambda full, circle: interventions.verdict(pd.Series({"full patch": full, "circle patch": circle}), chance)  # noqa: E731
    assert judge(0.15, 0.16).category == "inconclusive" and judge(0.15, 0.16).sentence.startswith("inconclusive")
    assert judge(0.9, 0.8).category == "matches" and judge(0.9, 0.8).sentence.endswith("this matches the paper")
    assert judge(0.9, 0.2).category == "does not match" and "gains 8%" in judge(0.9, 0.2).sentence
    assert judge(0.9, 0.6).category == "partly matches"
    assert {judge(f, c).category for f, c in [(0.15, 0.16), (0.9, 0.8), (0.9, 0.2), (0.9, 0.6)]} == set(interventions.VERDICTS)


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
    plane = interventions.circle_plane(probe)
    outside = (made["circle patch"] - mean) - (made["circle patch"] - mean) @ plane.T @ plane
    np.testing.assert_allclose(outside, 0, atol=1e-8)  # only the circle differs from the mean
    np.testing.assert_allclose(made["full patch"], clean[donors])
    np.testing.assert_allclose(made["before"], clean[index])
    np.testing.assert_allclose(made["mean ablation"], np.broadcast_to(mean, made["mean ablation"].shape))
    np.testing.assert_allclose(made["circle ablation"] @ plane.T, np.broadcast_to(mean @ plane.T, (len(index), 2)), atol=1e-8)
    np.testing.assert_allclose(made["circle only"] @ plane.T, clean[index] @ plane.T, atol=1e-8)


def test_layer_out_of_range(model, setup):
    problems, positions, clean, _ = setup
    with pytest.raises(ValueError, match="out of range"):
        interventions.patched_logits(model, [problems[0].prompt], "blocks.31.hook_resid_post", positions[:1], clean[:1])
