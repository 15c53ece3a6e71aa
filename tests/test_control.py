"""The positive control: built deterministically, solves the tasks, and the patching pipeline finds its circles."""

import hashlib

import numpy as np
import pytest
import torch

from mvf import activations, control, interventions, models, probes, tasks, tokens


@pytest.fixture(scope="module")
def model():
    return models.load_model("circle-control", device="cpu")


def _weights_digest(folder) -> str:
    return hashlib.sha256(next(folder.glob("*.safetensors")).read_bytes()).hexdigest()


def test_the_build_is_deterministic_and_reused(tmp_path):
    first, second = control.build(tmp_path / "a"), control.build(tmp_path / "b")
    assert _weights_digest(first) == _weights_digest(second)
    stamp = next(first.glob("*.safetensors")).stat().st_mtime_ns
    assert next(control.build(first).glob("*.safetensors")).stat().st_mtime_ns == stamp


@pytest.mark.parametrize("name", ["weekdays", "months", "weekday-successor", "month-successor"])
def test_it_solves_the_papers_problems_and_the_successor_lists(model, name):
    accuracy, _ = tasks.evaluate(model, tasks.task(name))
    assert accuracy["allowed"] == 1.0 and accuracy["vocab"] == 1.0


def _sweep_at(model, problems, position, layer, positions=None):
    hook = activations.resid_hooks(model, "hook_resid_pre")[layer]
    right = np.array([tasks.positions(model.tokenizer, p, tokens.prepends_bos(model))[position] for p in problems])
    where = right if positions is None else positions
    clean = activations.collect_at_positions(model, [p.prompt for p in problems], where, [hook])[hook].numpy()
    values = interventions.read_values(problems, position)
    probe = probes.fit_circle_probe(clean.astype(np.float64), values, problems[0].period, k=5)
    table = interventions.sweep(model, problems, {hook: probe}, {hook: clean.astype(np.float64)}, where, position)
    return table.set_index("method")["accuracy"]


def test_circle_and_full_patch_move_the_answer_where_the_circle_is_used(model):
    problems = tasks.task("weekdays")
    for position, layer in (("operand", 0), ("final", 2)):
        accuracy = _sweep_at(model, problems, position, layer)
        assert accuracy["full patch"] == 1.0 and accuracy["circle patch"] == 1.0, (position, layer)
        assert accuracy["before"] == 0.0 and accuracy["random 5-d patch (ours)"] <= 2 / 7


def test_a_patch_at_the_wrong_position_moves_nothing(model):
    """The check above can fail: the same sweep one token before the operand leaves every answer as it was."""
    problems = tasks.task("weekdays")
    operand = np.array([tasks.positions(model.tokenizer, p, tokens.prepends_bos(model))["operand"] for p in problems])
    accuracy = _sweep_at(model, problems, "operand", 0, positions=operand - 1)
    assert accuracy["full patch"] == 0.0 and accuracy["circle patch"] == 0.0


def _identity(function):
    return function


def _shuffled_probe(fit):
    order = interventions.shuffled_order(12, seed=1)
    return lambda acts, values, period, k=5: fit(acts, order[values], period, k)


def _wrong_plane(fit):
    def fitted(acts, values, period, k=5):
        probe = fit(acts, values, period, k)
        return probes.CircleProbe(probe.mean, interventions.random_basis(k, acts.shape[1], seed=3), probe.weights, period,
                                  probe.determined)

    return fitted


# Plausible bugs in the circle patch, each planted end to end through position_sweep: the control's check must fail.
MUTANTS = {
    "none": ("circle_targets", _identity),
    "wrong sign of the target angle": ("circle_targets", lambda targets: lambda y, p: targets(-np.asarray(y), p)),
    "target off by one": ("circle_targets", lambda targets: lambda y, p: targets(np.asarray(y) + 1, p)),
    "probe fitted on a shuffled order": ("fit_circle_probe", _shuffled_probe),
    "wrong plane": ("fit_circle_probe", _wrong_plane),
}


@pytest.mark.parametrize("mutant", MUTANTS)
def test_the_controls_check_fails_on_each_planted_bug(model, monkeypatch, mutant):
    name, mutate = MUTANTS[mutant]
    monkeypatch.setattr(interventions, name, mutate(getattr(interventions, name)))
    problems = tasks.task("months")
    hooks = activations.resid_hooks(model, "hook_resid_pre")
    # At the operand, where the paired test has power with a few new values per problem (the last token needs all
    # p - 1: see the control chapter's power table).
    quality, effects = interventions.position_sweep(model, problems, "operand", hooks, hooks[:1], k=5, per_problem=3)
    judged = interventions.verdict(effects.set_index("method"), quality.loc[0, "circle R2"])
    # The logit difference alone passes a patch aimed one month off (a neighbour's logit is nearly as high): the
    # verdict's condition that the new answer wins as often as after the full patch is what catches it.
    assert (judged.category == "matches") == (mutant == "none"), judged.sentence


def test_patching_the_last_residual_stream_gives_the_donors_logits_exactly(model):
    problems = tasks.task("months")[:24]
    donors = problems[12:] + problems[:12]
    last = np.array([tasks.positions(model.tokenizer, p, tokens.prepends_bos(model))["final"] for p in problems])
    hook = f"blocks.{model.cfg.n_layers - 1}.hook_resid_post"
    donor_acts = activations.collect_at_positions(model, [p.prompt for p in donors], last, [hook])[hook].numpy()
    patched = interventions.patched_logits(model, [p.prompt for p in problems], hook, last, donor_acts)
    torch.testing.assert_close(patched, tasks.final_logits(model, donors), rtol=0, atol=1e-5)
    assert not torch.allclose(patched, tasks.final_logits(model, problems))



def test_position_sweep_probes_every_hook_and_patches_the_chosen_ones(model):
    problems = tasks.task("months")
    hooks = activations.resid_hooks(model, "hook_resid_pre")
    quality, effects = interventions.position_sweep(model, problems, "final", hooks, hooks[2:], k=5, per_problem=1)
    assert quality["layer"].tolist() == list(range(len(hooks))) and set(quality["position"]) == {"final"}
    assert quality.loc[2, "margin"] > 0.3 > quality.loc[0, "circle R2"]  # the answer's circle exists only at layer 2
    accuracy = effects.set_index("method")["accuracy"]
    assert set(effects["layer"]) == {2} and accuracy["full patch"] == accuracy["circle patch"] == 1.0
    assert accuracy["before"] == 0.0


@pytest.mark.parametrize(("profile", "expected"), [("circle-control", "matches"),
                                                   (control.REDUNDANT_PROFILE, "partly matches")])  # fmt: skip
def test_a_second_copy_off_the_circle_makes_the_circle_patch_partial(profile, expected):
    """The successor lists through the same sweep: the circle alone carries the last day, or shares it with a copy."""
    model = models.load_model(profile, device="cpu")
    assert tasks.evaluate(model, tasks.task("weekday-successor"))[0]["allowed"] == 1.0
    hooks = activations.resid_hooks(model, "hook_resid_pre")
    quality, effects = interventions.position_sweep(model, tasks.task("weekday-successor"), "operand", hooks, hooks[:1])
    assert interventions.verdict(effects.set_index("method"), quality.loc[0, "circle R2"]).category == expected


def test_the_known_cells_are_the_operand_at_layer_0_and_the_answers_circle_at_the_last_token():
    assert control.known_cells("months") == [("operand", 0), ("final", 2)]
    assert control.known_cells("weekday-successor") == [("operand", 0), ("final", 1), ("final", 2)]


ANGLES = np.linspace(0, 2 * np.pi, 24, endpoint=False)


@pytest.mark.parametrize("name, position, layer", [("month-successor", "operand", 0), ("weekday-successor", "final", 2)])
def test_the_off_circle_test_finds_the_controls_circle_against_a_shuffled_order(model, name, position, layer):
    hits, null_hits, found = interventions.tracking_test(
        model, tasks.task(name), position, f"blocks.{layer}.hook_resid_pre", [0, 1, 2], ANGLES)
    assert found.category == "matches", found.sentence
    assert len(null_hits) == 3 and hits.shape == null_hits[interventions.TRACKING_NULL.format(3)].shape == (3, len(ANGLES))


def test_the_off_circle_test_fails_where_the_value_is_not_used_and_with_the_answers_one_off(model, monkeypatch):
    problems, hook = tasks.task("month-successor"), "blocks.1.hook_resid_pre"  # the operand: read by no later block
    assert interventions.tracking_test(model, problems, "operand", hook, [0, 1], ANGLES)[2].category == "does not match"
    one_off = interventions.angle_answers
    monkeypatch.setattr(interventions, "angle_answers", lambda *args: (one_off(*args) + 1) % 12)
    found = interventions.tracking_test(model, problems, "operand", "blocks.0.hook_resid_pre", [0, 1], ANGLES)[2]
    assert found.category == "does not match", found.sentence
