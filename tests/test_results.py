"""mvf.results: records round-trip with their provenance, bad records are refused, the table has every claim."""

import json
import os

import pandas as pd
import pytest

from mvf import results


def test_record_round_trip_with_provenance(tmp_path):
    path = results.record("circles", "mistral-7b", {"days cyclic order": 1.0, "months cyclic order": 0.75}, tmp_path)
    assert path == tmp_path / "mistral-7b" / "circles.json"
    (entry,) = results.load_records(tmp_path)
    assert entry["numbers"] == {"days cyclic order": 1.0, "months cyclic order": 0.75}
    assert entry["hardware"] == results.hardware() and entry["versions"]["torch"] != "not installed"
    assert not [p for p in path.parent.iterdir() if p.name.startswith(".")]
    umask = os.umask(0)
    os.umask(umask)
    assert path.stat().st_mode & 0o777 == 0o666 & ~umask, "a record is an ordinary file, not a private temporary one"


def test_table_has_every_claim_and_marks_what_is_missing(tmp_path):
    results.record("circles", "smollm2-135m", {"days cyclic order": 1.0}, tmp_path)
    results.record("arithmetic", "smollm2-135m", {"weekdays accuracy": 0.143}, tmp_path)
    results.record("discovery", "smollm2-135m", {"weekday cluster rank": 157, "month cluster rank": None}, tmp_path)
    table = results.at_a_glance(results.load_records(tmp_path))
    assert len(table) == len(results.CLAIMS)
    column = f"smollm2-135m ({results.hardware()})"
    measured = table.set_index("chapter")[column]
    assert measured["circles"].iloc[0] == "1.00" and measured["arithmetic"].iloc[0] == "0.14"
    assert measured["discovery"].iloc[0] == "157", "a rank is shown as a whole number"
    assert measured["discovery"].iloc[1] == "none", "not found is shown as none, not as missing"
    assert (table[column] == "—").sum() == len(results.CLAIMS) - 4


def test_a_number_with_its_interval_is_shown_with_it(tmp_path):
    key = "circle patch share from before"
    results.record("interventions", "smollm2-135m", {key: 0.78, f"{key} low": 0.7, f"{key} high": 0.851}, tmp_path)
    table = results.at_a_glance(results.load_records(tmp_path)).set_index("measured here")
    shown = table.iloc[:, -1][next(c.measured for c in results.CLAIMS if c.key == key)]
    assert shown == "0.78 [0.70, 0.85]"
    with pytest.raises(ValueError, match="unknown result keys"):
        results.record("interventions", "smollm2-135m", {"made-up low": 0.1}, tmp_path)


def test_a_claim_the_model_cannot_test_is_shown_as_not_applicable_with_the_reason(tmp_path):
    results.record("decompose", "smollm2-135m", {}, tmp_path,
                   not_applicable={"circle of answer share": "0 by construction: the shift is constant"})
    table = results.at_a_glance(results.load_records(tmp_path))
    row = [claim.key for claim in results.CLAIMS].index("circle of answer share")
    assert table.iloc[row, -1] == "n/a (0 by construction: the shift is constant)"
    with pytest.raises(ValueError, match="unknown result keys"):
        results.record("decompose", "smollm2-135m", {}, tmp_path, not_applicable={"made-up": "why"})


def test_no_records_gives_an_empty_table_not_an_error(tmp_path):
    table = results.at_a_glance(results.load_records(tmp_path / "absent"))
    assert list(table.columns) == ["claim (paper)", "measured here", "chapter"]


@pytest.mark.parametrize(("numbers", "match"), [({"made-up claim": 1.0}, "unknown result keys"),
                                                 ({"weekdays accuracy": float("nan")}, "not finite")])  # fmt: skip
def test_bad_numbers_are_refused(tmp_path, numbers, match):
    with pytest.raises(ValueError, match=match):
        results.record("arithmetic", "llama-3-8b", numbers, tmp_path)


@pytest.mark.parametrize("text", ["{", json.dumps({"chapter": "circles"})])
def test_damaged_record_names_the_file_and_the_fix(tmp_path, text):
    (tmp_path / "gpt2-small").mkdir()
    (tmp_path / "gpt2-small" / "circles.json").write_text(text)
    with pytest.raises(ValueError, match="circles.json.*re-run its chapter"):
        results.load_records(tmp_path)


def test_records_go_where_the_reader_says_or_beside_the_book(monkeypatch, tmp_path):
    import mvf.book

    monkeypatch.setenv("MVF_RESULTS", str(tmp_path / "mine"))
    assert results.results_dir() == tmp_path / "mine"
    monkeypatch.delenv("MVF_RESULTS")
    assert results.results_dir() == mvf.book.ROOT / "results"
    checkout = tmp_path / "checkout"
    (checkout / "mvf" / "book").mkdir(parents=True)
    (checkout / "_toc.yml").write_text("root: book/intro\n")
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(mvf.book, "__file__", str(checkout / "mvf" / "book" / "__init__.py"))
    assert mvf.book._root() == checkout  # a checkout: its own folder, from wherever it runs
    monkeypatch.setattr(mvf.book, "__file__", str(tmp_path / "site-packages" / "mvf" / "book" / "__init__.py"))
    assert mvf.book._root() == tmp_path  # installed: the working folder


def test_settings_travel_with_the_numbers_to_the_table(tmp_path):
    settings = {"task": "weekday-successor", "position": "operand", "patch layer": 10, "chance": 1 / 7}
    results.record("interventions", "smollm2-135m", {"circle patch accuracy": 0.2}, tmp_path, settings=settings)
    (entry,) = results.load_records(tmp_path)
    assert entry["settings"] == settings
    shown = results.at_a_glance([entry]).set_index("measured here").iloc[:, -1]
    cell = shown[[claim.measured for claim in results.CLAIMS if claim.key == "circle patch accuracy"][0]]
    assert cell == "0.20", "the settings are stated once per column, not in every cell"
    (column, settings), = results.measured_with([entry], "interventions").items()
    assert column == shown.name and settings.startswith("task weekday-successor; position operand; patch layer 10; chance 0.14; ")
    with pytest.raises(ValueError, match="settings must be strings or numbers"):
        results.record("interventions", "smollm2-135m", {"circle patch accuracy": 0.2}, tmp_path, settings={"layers": [1]})


@pytest.mark.parametrize(("closed", "ordered", "found"), [
    ({"days": [2, 3], "months": [13]}, {"days": [2, 3, 4], "months": [13]}, "replicates"),
    ({"days": [], "months": [0]}, {"days": [0, 1], "months": [0, 1]}, "partly (days: an ordered open arc, never a closed ring)"),
    ({"days": [], "months": [4]}, {"days": [], "months": [4]}, "partly (days: not in order, never a closed ring)"),
    ({"days": [], "months": []}, {"days": [1], "months": []}, "partly (days, months: an ordered open arc, never a closed ring)"),
    ({"days": [], "months": []}, {"days": [], "months": []}, "does not (no layer in calendar order)"),
])  # fmt: skip
def test_the_circle_finding_needs_a_closed_ring_for_both_kinds(closed, ordered, found):
    assert results.circle_finding(closed, ordered) == found


def test_the_arithmetic_finding_needs_more_than_twice_chance_on_both_tasks():
    chance = {"weekdays": 1 / 7, "months": 1 / 12}
    assert results.arithmetic_finding({"weekdays": 0.6, "months": 0.9}, chance) == "replicates"
    assert results.arithmetic_finding({"weekdays": 2 / 7, "months": 0.9}, chance) == "partly (only months above twice chance)"
    assert results.arithmetic_finding({"weekdays": 0.16, "months": 0.1}, chance) == "does not (at chance on this model)"


def test_the_intervention_record_takes_each_number_from_its_own_row():
    import pandas as pd

    from mvf.interventions import NULLS

    columns = [f"share from {base}{end}" for base in ("before", "mean ablation") for end in ("", " low", " high")]
    at = pd.DataFrame([{column: index + position / 10 for position, column in enumerate(columns)} | {"accuracy": float(index)}
                       for index in range(4)], index=["circle patch", "full patch", *NULLS])  # fmt: skip
    probe = pd.Series({"circle R2": 0.9, "linear R2": 0.7, "shuffled R2 (max)": 0.4})
    found = results.intervention_numbers(at, probe)
    assert found["circle patch share from mean ablation high"] == 0.5 and found["circle patch accuracy"] == 0
    assert found["full patch accuracy"] == 1 and found["shuffled-order null share (ours)"] == 2
    assert found["random-plane null share (ours)"] == 3 and found["probe shuffled R2 (max)"] == 0.4
    results._check_numbers(found, "test")  # every key is a claim the results page knows


@pytest.mark.parametrize("words, combined", [({"day": "does not", "month": "does not"}, "does not"),
                                             ({"day": "does not", "month": "partly"}, "partly"),
                                             ({"day": "replicates", "month": "replicates"}, "replicates"),
                                             ({"day": "does not", "month": "inconclusive"}, "does not")])  # fmt: skip
def test_a_finding_judged_per_kind_gets_one_word(words, combined):
    assert results.combined_finding(words) == combined


def test_the_bottom_line_counts_the_words_and_names_what_holds_and_what_the_controls_show():
    papers = [finding.paper for finding in results.FINDINGS]
    table = pd.DataFrame({"in the paper": "Figure 1",
                          "smollm2-135m": ["partly (an arc)", "does not", "does not", "partly", "does not", "replicates"],
                          "gemma-3-270m": ["partly", "—", "replicates", "does not", "—", "—"],
                          "circle-control": ["—", "—", "—", "replicates", "replicates", "—"]}, index=papers)  # fmt: skip
    line = results.bottom_line(table, "smollm2-135m", "gemma-3-270m", ("circle-control", "circle-control-trained"))
    sentences = line.split(". ")
    assert len(sentences) == 5 and line.endswith(".")
    assert sentences[0] == "On smollm2-135m the paper's 6 findings come out as: replicates 1, partly 2, does not 3"
    assert sentences[1] == ("What holds, at least in part: the circles, the circle patch and the answer's circle in "
                            "the hidden state")  # fmt: skip
    assert sentences[2].startswith("What does not: finding them with an SAE, the arithmetic and")
    assert sentences[3] == "On gemma-3-270m, 1 of the 3 findings it ran come out as on smollm2-135m"
    assert sentences[4] == ("On the positive controls, where the answer is known: circle-control, the circle patch "
                            "replicates and the answer following the angle replicates.")  # fmt: skip


def test_findings_read_each_records_verdict_word_and_the_table_splits_by_chapter(tmp_path):
    results.record("circles", "gemma-3-270m", {"days cyclic order": 1.0}, tmp_path, settings={"finding": "replicates"})
    results.record("interventions", "gemma-3-270m", {"circle patch accuracy": 0.2}, tmp_path,
                   settings={"verdict": "partly matches", "layer": 11})  # fmt: skip
    results.record("arithmetic", "smollm2-135m", {"weekdays accuracy": 0.14}, tmp_path,
                   settings={"finding": "does not (at chance on this model)"})  # fmt: skip
    results.record("off_circle", "smollm2-135m", {"off-circle tracking": 0.5}, tmp_path)  # no verdict word
    results.record("decompose", "smollm2-135m", {"circle of answer share, circles first (ours)": 0.4}, tmp_path,
                   settings={"verdict": "does not match", "why": "a shuffled order does as much"})  # fmt: skip
    table = results.findings(results.load_records(tmp_path))
    assert list(table.index) == [finding.paper for finding in results.FINDINGS]
    assert table["in the paper"].tolist() == [finding.where for finding in results.FINDINGS]
    assert table["gemma-3-270m"].tolist() == ["replicates", "—", "—", "partly", "—", "—"]
    assert table["smollm2-135m"].tolist() == ["—", "—", "does not (at chance on this model)", "—", "—", "does not"]
    reasons = results.findings(results.load_records(tmp_path), reasons=True)
    assert reasons["smollm2-135m"].iloc[-1] == "does not (a shuffled order does as much)"
    per_chapter = results.at_a_glance(results.load_records(tmp_path), chapter="interventions")
    assert set(per_chapter["chapter"]) == {"interventions"}
    assert len(per_chapter) == sum(claim.chapter == "interventions" for claim in results.CLAIMS)


@pytest.mark.parametrize("layers, phrase", [
    ([], "at no layer"), ([3], "at layer 3"), ([4, 3], "at layers 3 and 4"), ([1, 2, 5], "at layers 1, 2 and 5"),
    ([*range(11), *range(16, 25), 29], "at layers 0–10, 16–24 and 29"),
])  # fmt: skip
def test_layers_read_as_ranges(layers, phrase):
    assert results.at_layers(layers) == phrase
