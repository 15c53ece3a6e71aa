"""mvf.book.stored_sweeps: a stored sweep round-trips, damage is reported, and disagreement with a live run is measured."""

import pandas as pd
import pytest

from mvf.book import stored_sweeps

SETTINGS = {"site": "hook_resid_pre", "k": 5, "per_problem": 2, "seed": 0, "weights": "abc"}


def tables():
    # The same hook and method at both positions, with different numbers: the position must be part of the key.
    effects = pd.DataFrame({"hook": ["blocks.0.hook_resid_pre"] * 2 + ["blocks.1.hook_resid_pre"] * 2 + ["blocks.1.hook_resid_pre"],
                            "layer": [0, 0, 1, 1, 1], "method": ["full patch", "circle patch"] * 2 + ["circle patch"],
                            "logit diff": [1.0, 0.5, 2.0, -0.5, 3.0], "accuracy": [0.9, 0.4, 1.0, 0.1, 0.7],
                            "chance": 1 / 7, "position": ["operand"] * 4 + ["final"]})  # fmt: skip
    effects = effects.assign(**{column: 0.5 for column in stored_sweeps.EFFECT_COLUMNS if column not in effects})
    quality = pd.DataFrame({"layer": [0, 1, 0], "circle R2": [0.5, 0.7, 0.2], "margin": [0.1, 0.3, 0.0],
                            "position": ["operand", "operand", "final"]})  # fmt: skip
    quality = quality.assign(**{column: 0.4 for column in stored_sweeps.QUALITY_COLUMNS if column not in quality})
    return quality, effects


def test_round_trip_and_settings(tmp_path):
    quality, effects = tables()
    path = stored_sweeps.save("m", "t", SETTINGS, {"minutes": 1.0}, quality, effects, folder=tmp_path)
    assert path == tmp_path / "m-t.json" and not list(tmp_path.glob(".*"))
    stored = stored_sweeps.load("m", "t", folder=tmp_path)
    pd.testing.assert_frame_equal(stored.effects, effects)
    pd.testing.assert_frame_equal(stored.quality, quality)
    assert stored_sweeps.differing_settings(stored, SETTINGS) == {}
    assert stored_sweeps.differing_settings(stored, SETTINGS | {"k": 4}) == {"k": (5, 4)}
    assert stored_sweeps.load("m", "other", folder=tmp_path) is None


DAMAGED = ["{not json", '{"settings": {}}', '{"settings": {}, "provenance": {}, "quality": {}, "effects": {"hook": []}}']


def test_a_sweep_stored_before_the_shares_were_measured_is_refused(tmp_path):
    quality, effects = tables()
    stored_sweeps.save("m", "t", SETTINGS, {}, quality, effects.drop(columns="share from before"), folder=tmp_path)
    with pytest.raises(ValueError, match=r"lacks the columns \['share from before'\].*mvf.commands.sweep_interventions"):
        stored_sweeps.load("m", "t", folder=tmp_path)


@pytest.mark.parametrize("damage", DAMAGED)
def test_a_damaged_file_says_how_to_regenerate(tmp_path, damage):
    (tmp_path / "m-t.json").write_text(damage)
    with pytest.raises(ValueError, match="mvf.commands.sweep_interventions --model m --task t"):
        stored_sweeps.load("m", "t", folder=tmp_path)


def test_disagreement_measures_each_live_row_and_needs_every_one():
    quality, effects = tables()
    live = effects.iloc[[1, 4]].copy()
    live.loc[1, "accuracy"] += 0.25
    table = stored_sweeps.disagreement(effects, live, stored_sweeps.EFFECT_KEYS, ["accuracy", "logit diff"])
    assert table["|Δ accuracy|"].round(6).tolist() == [0.25, 0.0] and table["|Δ logit diff|"].max() == 0
    with pytest.raises(ValueError, match="lacks 1 live rows"):
        stored_sweeps.disagreement(effects.iloc[:4], live, stored_sweeps.EFFECT_KEYS, ["accuracy"])
    probes = stored_sweeps.disagreement(quality, quality.iloc[[2]].assign(margin=0.5), stored_sweeps.QUALITY_KEYS, ["margin"])
    assert probes["|Δ margin|"].tolist() == [0.5]


def test_settings_name_the_weights_and_the_problems():
    from types import SimpleNamespace

    import torch

    torch.manual_seed(0)
    model, other = torch.nn.Linear(3, 3), torch.nn.Linear(3, 3)
    problems = [SimpleNamespace(prompt="Monday, Tuesday,", answer=2), SimpleNamespace(prompt="Tuesday, Wednesday,", answer=3)]
    settings = stored_sweeps.sweep_settings(model, problems, "hook_resid_pre", 5, 2, 0)
    assert settings == stored_sweeps.sweep_settings(model, problems, "hook_resid_pre", 5, 2, 0)
    assert settings["weights"] != stored_sweeps.sweep_settings(other, problems, "hook_resid_pre", 5, 2, 0)["weights"]
    changed = [problems[0], SimpleNamespace(prompt="Tuesday, Wednesday,", answer=4)]
    assert settings["problems"] != stored_sweeps.sweep_settings(model, changed, "hook_resid_pre", 5, 2, 0)["problems"]


PROVENANCE = {"command": "python -m mvf.commands.sweep_interventions", "date": "2026-12-04", "hardware": "CPU",
              "minutes": 1.0}


@pytest.mark.parametrize(("table", "column", "change", "agrees"), [
    ("effects", "accuracy", 0.1, True),  # within one pair's answer of 10 pairs
    ("effects", "accuracy", 0.11, False),
    ("effects", "logit diff", 0.012, True),  # within 0.01 plus 0.5 % of 0.5
    ("effects", "logit diff", -0.013, False),
    ("quality", "circle R2", 0.0009, True),
    ("quality", "margin", 0.001, False),
])  # fmt: skip
def test_verify_accepts_live_rows_within_the_tolerances_and_names_the_ones_beyond(table, column, change, agrees):
    quality, effects = tables()
    stored = stored_sweeps.StoredSweep(SETTINGS, PROVENANCE, quality, effects)
    live = {"effects": effects.iloc[[0, 1]].copy(), "quality": quality.iloc[[0, 1]].copy()}
    live[table].loc[1, column] += change
    if agrees:
        sentence = stored_sweeps.verify(stored, live["effects"], live["quality"], n_pairs=10)
        assert sentence.startswith("stored by `python -m mvf.commands.sweep_interventions` on 2026-12-04")
        assert "the 2 patch rows and 2 probe rows computed live agree" in sentence
    else:
        with pytest.raises(ValueError, match=r"stale; regenerate it with that command(.|\n)*\n\s*1 "):
            stored_sweeps.verify(stored, live["effects"], live["quality"], n_pairs=10)


def test_matching_gives_the_stored_sweep_only_with_the_wanted_settings_and_says_why_not(tmp_path):
    quality, effects = tables()
    stored, why = stored_sweeps.matching("m", "t", SETTINGS, folder=tmp_path)
    assert stored is None and why.startswith("no sweep of m on t is stored; `python -m mvf.commands.sweep_interventions")
    stored_sweeps.save("m", "t", SETTINGS, PROVENANCE, quality, effects, folder=tmp_path)
    stored, why = stored_sweeps.matching("m", "t", SETTINGS, folder=tmp_path)
    assert stored.settings == SETTINGS and why == ""
    stored, why = stored_sweeps.matching("m", "t", SETTINGS | {"per_problem": 1}, folder=tmp_path)
    assert stored is None and "other settings {'per_problem': (2, 1)} (stored, wanted)" in why


def test_side_by_side_sets_each_sweeps_verdict_share_and_margin_cell_by_cell(monkeypatch):
    def judged(effects, quality):  # a stand-in verdict that reads the circle patch's share, per cell
        circle = effects[effects["method"] == "circle patch"].set_index(["position", "layer"])["share from before"]
        return circle.map(lambda share: "matches" if share > 0.6 else "partly matches")

    monkeypatch.setattr("mvf.interventions.sweep_verdicts", judged)
    quality, effects = tables()
    quality = quality.assign(layer=[0, 1, 1])  # the cells the effects cover
    other = effects.copy()
    other.loc[(other["method"] == "circle patch") & (other["layer"] == 1), "share from before"] = 0.9
    sweeps = {"seed 0": stored_sweeps.StoredSweep(SETTINGS, {}, quality, effects),
              "seed 1": stored_sweeps.StoredSweep(SETTINGS | {"seed": 1}, {}, quality.assign(margin=0.2), other)}
    cells = stored_sweeps.side_by_side(sweeps)
    assert list(cells.index) == [("final", 1), ("operand", 0), ("operand", 1)]
    assert cells["verdict"].to_dict("list") == {"seed 0": ["partly matches"] * 3,
                                                "seed 1": ["matches", "partly matches", "matches"]}
    assert cells[("circle share", "seed 1")].tolist() == [0.9, 0.5, 0.9]
    assert cells[("margin", "seed 0")].tolist() == [0.0, 0.1, 0.3] and cells[("margin", "seed 1")].tolist() == [0.2] * 3
    fewer = stored_sweeps.StoredSweep(SETTINGS, {}, quality, effects[effects["position"] == "operand"])
    with pytest.raises(ValueError, match="cover different"):
        stored_sweeps.side_by_side({"a": sweeps["seed 0"], "b": fewer})
