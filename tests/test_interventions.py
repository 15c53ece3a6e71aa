"""mvf.interventions: exactness of the patches, no-op patches, and batched vs one-at-a-time agreement."""

import numpy as np
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


def test_target_pairs_cover_every_other_value():
    index, target = interventions.target_pairs(tasks.weekdays()[:2])
    assert len(index) == 12 and all(t != tasks.weekdays()[i].start for i, t in zip(index, target))


def test_layer_out_of_range(model, setup):
    problems, positions, clean, _ = setup
    with pytest.raises(ValueError, match="out of range"):
        interventions.patched_logits(model, [problems[0].prompt], "blocks.31.hook_resid_post", positions[:1], clean[:1])
