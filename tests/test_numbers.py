"""mvf.book.numbers: glued headlines are read back, compared with their tolerances, and calibrated by perturbed runs;
mvf.book.perturbation: the noise is seeded and the model keeps its fingerprint."""

import json

import nbformat
import numpy as np
import pandas as pd
import pytest
import torch
from myst_nb.core.variables import format_plain_text

from mvf.activations import weights_fingerprint
from mvf.book import numbers, perturbation


@pytest.fixture(scope="module")
def glued_page():
    """A page that glues as a chapter does, executed in a kernel."""
    from nbclient import NotebookClient

    source = """import numpy as np, pandas as pd
from mvf.book import numbers
numbers.glue("share", np.float64(0.6912), tolerance=0.05)
numbers.glue("accuracy", 0.81, n=42)
numbers.glue("rank", np.int64(6))
numbers.glue("verdict", "partly matches")
numbers.glue("cyclic order", float("nan"))
numbers.glue_frame("table", pd.DataFrame({"R2": [0.5, 0.25], "accuracy": [1.0, 0.5]}, index=["a", "b"]),
                   n=lambda row, column: 7 if column == "accuracy" else None)"""
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(source)])
    NotebookClient(nb, timeout=120, kernel_name="python3").execute()
    return nb


def test_glued_values_are_read_back_with_what_their_tolerance_needs(glued_page):
    found = numbers.read(glued_page)
    assert found["share"] == numbers.Named(0.6912, None, 0.05)
    assert found["accuracy"] == numbers.Named(0.81, 42, None)
    assert found["rank"].value == 6 and isinstance(found["rank"].value, int)
    assert found["verdict"].value == "partly matches" and found["cyclic order"].value is None
    assert found["table: b, accuracy"] == numbers.Named(0.5, 7, None)
    assert found["table: a, R2"] == numbers.Named(0.5, None, None)
    assert glued_page.cells[0].outputs and all(o.output_type == "display_data" for o in glued_page.cells[0].outputs)


def test_the_prose_can_paste_a_glued_number(glued_page):
    """myst-nb's {glue:text} role formats the stored text/plain with a format spec."""
    output = next(o for o in glued_page.cells[0].outputs if o.metadata["scrapbook"]["name"] == "share")
    assert format_plain_text(output.data[numbers.GLUE_PREFIX + "text/plain"], ".0%") == "69%"


def test_a_name_glued_twice_is_refused(glued_page):
    copy = nbformat.v4.new_code_cell(glued_page.cells[0].source)
    copy.outputs = glued_page.cells[0].outputs
    twice = nbformat.v4.new_notebook(cells=[glued_page.cells[0], copy])
    with pytest.raises(ValueError, match="'share' is glued twice"):
        numbers.read(twice)


def test_only_numbers_texts_and_none_can_be_glued():
    with pytest.raises(TypeError, match="layers: glue a number, a text or None, not list"):
        numbers.plain("layers", [1, 2])
    assert numbers.plain("flag", np.bool_(True)) == "True"


@pytest.mark.parametrize("entry, allowed", [
    ({"value": 0.81, "n": 42, "moved": 0.0}, 2 / 42),          # an accuracy: a few 1/n
    ({"value": 0.81, "n": 42, "moved": 0.02}, 0.08),           # ... unless it moved further under the perturbations
    ({"value": 0.69, "moved": 0.0}, numbers.FLOOR),            # a continuous number that did not move
    ({"value": 0.69, "moved": 0.01}, 0.04),                    # SAFETY times its movement
    ({"value": 0.69, "moved": 0.0, "tolerance": 0.05}, 0.05),  # a tolerance the chapter computed
    ({"value": 6, "moved": 0.0}, 0.0),                         # a count or a rank: exact ...
    ({"value": 6, "moved": 1.0}, 4.0),                         # ... unless it moved
    ({"value": "partly matches", "moved": 0.0}, 0.0),          # a text: exact
])
def test_tolerance_follows_the_kind_of_quantity(entry, allowed):
    assert numbers.tolerance(entry) == pytest.approx(allowed)


def test_compare_names_the_quantity_both_values_and_the_tolerance():
    stored = {"share": {"value": 0.69, "moved": 0.001}, "accuracy": {"value": 0.81, "n": 42, "moved": 0.0},
              "verdict": {"value": "partly matches", "moved": 0.0}, "gone": {"value": 1.0, "moved": 0.0}}
    now = {"share": numbers.Named(0.70), "accuracy": numbers.Named(0.81 + 1 / 42, 42),
           "verdict": numbers.Named("matches"), "new": numbers.Named(2.0)}
    problems = numbers.compare(stored, now)
    assert problems == sorted([
        "gone: stored 1, now missing",
        "new: now 2, not stored (run `make outputs`)",
        "share: stored 0.69, now 0.7, tolerance 0.004 (moved 0.001 under the perturbations)",
        "verdict: stored 'partly matches', now 'matches', tolerance 0 (moved 0 under the perturbations)",
    ])
    assert numbers.compare(stored | {"share": {"value": 0.69, "moved": 0.01}}, now | {"verdict": numbers.Named(
        "partly matches"), "gone": numbers.Named(1.0)} | {}) == ["new: now 2, not stored (run `make outputs`)"]


def test_store_keeps_the_movement_and_calibrate_measures_it(tmp_path):
    numbers.store("chapter", {"share": numbers.Named(0.69), "verdict": numbers.Named("partly matches")}, tmp_path)
    unstable = numbers.calibrate("chapter", [{"share": numbers.Named(0.692), "verdict": numbers.Named("partly matches")},
                                             {"share": numbers.Named(0.685), "verdict": numbers.Named("matches")}],
                                 tmp_path)  # fmt: skip
    assert unstable == ["verdict: 'partly matches' became 'partly matches', 'matches'"]
    assert numbers.load("chapter", tmp_path)["share"]["moved"] == pytest.approx(0.005)
    numbers.store("chapter", {"share": numbers.Named(0.70)}, tmp_path)  # a new reference execution
    assert numbers.load("chapter", tmp_path) == {"share": {"value": 0.70, "n": None, "tolerance": None,
                                                           "moved": pytest.approx(0.005)}}


def test_a_damaged_store_says_how_to_regenerate_it(tmp_path):
    numbers.path_for("chapter", tmp_path).write_text(json.dumps({"numbers": {"share": {"moved": 0}}}))
    with pytest.raises(ValueError, match="chapter.json is damaged .* `make outputs`"):
        numbers.load("chapter", tmp_path)


def test_perturbation_is_seeded_relative_and_keeps_the_fingerprint():
    def model():
        torch.manual_seed(0)
        return torch.nn.Sequential(torch.nn.Linear(64, 64), torch.nn.Linear(64, 8))

    plain, once, again, other = model(), model(), model(), model()
    perturbation.perturb(once, 1e-6, 3)
    perturbation.perturb(again, 1e-6, 3)
    perturbation.perturb(other, 1e-6, 4)
    relative = (once[0].weight - plain[0].weight).abs() / plain[0].weight.abs()
    assert 1e-7 < relative.median() < 1e-5 and relative.max() < 1e-4
    assert torch.equal(once[0].weight, again[0].weight) and not torch.equal(once[0].weight, other[0].weight)
    assert weights_fingerprint(once) == weights_fingerprint(plain)


@pytest.mark.parametrize("text", ["1e-6", "small:3", "1e-6:x"])
def test_a_malformed_perturbation_setting_says_what_is_expected(text):
    with pytest.raises(ValueError, match="expected '<relative size>:<seed>'"):
        perturbation.setting(text)
    assert perturbation.setting("1e-6:3") == (1e-6, 3)


def test_a_rank_may_move_among_scores_closer_than_their_tolerance():
    scores = pd.Series([0.50, 0.36, 0.355, 0.349, 0.20])
    assert numbers.rank_tolerance(scores, 2, within=0.01) == 2
    assert numbers.rank_tolerance(scores, 0, within=0.01) == 0


def test_the_command_takes_some_chapters_and_refuses_an_unknown_one(tmp_path):
    with pytest.raises(SystemExit, match="unknown chapters among"):
        numbers.main(["calibrate", str(tmp_path), "--pages", "nonesuch"])
    with pytest.raises(SystemExit, match="is missing"):  # a known chapter is read from the folder given
        numbers.main(["calibrate", str(tmp_path), "--pages", "control"])


def test_say_pastes_glued_values_into_markdown_and_names_a_missing_one(monkeypatch):
    monkeypatch.setattr(numbers, "GLUED", {})
    numbers.glue("tracking: mean activation (the paper's)", 0.2857)
    numbers.glue("verdict", "partly")
    said = numbers.say("follows for [[tracking: mean activation (the paper's):.2f]]: **[[verdict:s]]** ($1/p$)")
    assert said.data == "follows for 0.29: **partly** ($1/p$)"
    assert numbers.say("chance [[chance:.2f]]").data == f"chance {numbers.NOT_COMPUTED}", "another model's run goes on"
