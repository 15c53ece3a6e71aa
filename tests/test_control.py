"""The positive control: built deterministically, solves the tasks, and the patching pipeline finds its circles."""

import hashlib
import re

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


@pytest.mark.parametrize("name", ["weekdays", "months"])
def test_it_solves_the_papers_problems(model, name):
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


def test_patching_the_last_residual_stream_gives_the_donors_logits_exactly(model):
    problems = tasks.task("months")[:24]
    donors = problems[12:] + problems[:12]
    last = np.array([tasks.positions(model.tokenizer, p, tokens.prepends_bos(model))["final"] for p in problems])
    hook = f"blocks.{model.cfg.n_layers - 1}.hook_resid_post"
    donor_acts = activations.collect_at_positions(model, [p.prompt for p in donors], last, [hook])[hook].numpy()
    patched = interventions.patched_logits(model, [p.prompt for p in problems], hook, last, donor_acts)
    torch.testing.assert_close(patched, tasks.final_logits(model, donors), rtol=0, atol=1e-5)
    assert not torch.allclose(patched, tasks.final_logits(model, problems))


def _printed(notebook) -> str:
    return "".join(output.get("text", "") for cell in notebook.cells for output in cell.get("outputs", []))


def test_the_model_chapters_find_the_controls_circle(tmp_path):
    """The interventions, off-circle and decomposition chapters, unchanged, with MODEL = "circle-control"."""
    from mvf import execute

    pages = {page.stem: page for page in execute.model_chapters()}
    runs = [(pages["interventions"], {"MODEL": "circle-control", "TASK": "weekdays", "POSITION": "final",
                                      "LAYER_STEP": 1, "PER_PROBLEM": None}),
            (pages["off_circle"], {"MODEL": "circle-control", "TASK": "weekdays"}),
            (pages["decompose"], {"MODEL": "circle-control", "TASK": "weekdays", "LAYER_STEP": 1})]  # fmt: skip
    outcomes = execute.execute_variants(runs, {"MVF_RESULTS": str(tmp_path)})
    for outcome in outcomes:
        assert outcome["error"] is None, (outcome["page"].stem, outcome["error"])
    printed = _printed(outcomes[0]["notebook"])
    assert "layer 2: the circle patch gains 100% of the full patch's gain" in printed
    assert "final token, hook_resid_pre of layer 2: the circle patch gains 100%" in printed
    # Moving the start around its circle (at layer 0, the only layer whose operand is read) moves the answer with it.
    assert "from the mean activation (the paper's): at radius 1.0 the most likely answer is the one the angle implies " \
           "for 1.00 of the angles" in _printed(outcomes[1]["notebook"])  # fmt: skip
    shares = re.search(r"final token, paper's order: the circle of the answer adds at most ([\d.]+) "
                       r"\(blocks.2.hook_resid_pre\); circles of shuffled orders ([\d.]+)", _printed(outcomes[2]["notebook"]))
    assert shares and float(shares[1]) > float(shares[2]) + 0.2
