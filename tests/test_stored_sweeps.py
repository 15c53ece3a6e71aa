"""mvf.stored_sweeps: a stored sweep round-trips, damage is reported, and disagreement with a live run is measured."""

import pandas as pd
import pytest

from mvf import stored_sweeps

SETTINGS = {"site": "hook_resid_pre", "k": 5, "per_problem": 2, "seed": 0, "weights": "abc"}


def tables():
    effects = pd.DataFrame({"hook": ["blocks.0.hook_resid_pre"] * 2 + ["blocks.1.hook_resid_pre"] * 2,
                            "layer": [0, 0, 1, 1], "method": ["full patch", "circle patch"] * 2,
                            "logit diff": [1.0, 0.5, 2.0, -0.5], "accuracy": [0.9, 0.4, 1.0, 0.1],
                            "chance": 1 / 7, "position": "operand"})  # fmt: skip
    quality = pd.DataFrame({"layer": [0, 1], "circle R2": [0.5, 0.7], "position": "operand"})
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


@pytest.mark.parametrize("damage", ["{not json", '{"settings": {}}', '{"settings": {}, "provenance": {}, "quality": {}, "effects": {"hook": []}}'])
def test_a_damaged_file_says_how_to_regenerate(tmp_path, damage):
    (tmp_path / "m-t.json").write_text(damage)
    with pytest.raises(ValueError, match="sweep_interventions.py --model m --task t"):
        stored_sweeps.load("m", "t", folder=tmp_path)


def test_disagreement_measures_each_live_row_and_needs_every_one():
    _, effects = tables()
    live = effects.iloc[[1, 2]].copy()
    live.loc[1, "accuracy"] += 0.25
    table = stored_sweeps.disagreement(effects, live)
    assert table["|Δ accuracy|"].round(6).tolist() == [0.25, 0.0] and table["|Δ logit diff|"].max() == 0
    with pytest.raises(ValueError, match="lacks 1 live rows"):
        stored_sweeps.disagreement(effects.iloc[:2], live)
