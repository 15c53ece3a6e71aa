"""Intervention sweeps computed once and shipped: every layer, both positions, for a model and task.

On 2 CPU cores a sweep of every layer at both positions takes minutes, more
than a book build can spend on one chapter; ``mvf.commands.sweep_interventions``
computes it with ``interventions.position_sweep`` and stores it here with its
settings and provenance. The interventions chapter recomputes some of its
layers live and checks that they agree with the stored rows
(``disagreement``), so a stored sweep that the code no longer reproduces
fails the build instead of being shown.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import NamedTuple

import numpy as np
import pandas as pd

from mvf.activations import corpus_hash, weights_fingerprint
from mvf.cache import write_atomically

SWEEPS = Path(__file__).resolve().parents[1] / "data" / "sweeps"
EFFECT_KEYS = ("hook", "layer", "method", "position")  # what identifies a row of ``interventions.sweep``'s table
QUALITY_KEYS = ("layer", "position")  # and of ``probes.quality_by_layer``'s
QUALITY_COLUMNS = ("circle R2", "margin", "S (probe plane)", "M (probe plane)")  # what the chapters read of its quality
# What the chapters read of a stored sweep's effects: a file without them was made by an older sweep.
EFFECT_COLUMNS = ("accuracy", "chance", "logit diff", "logit diff low", "logit diff high", "shift from before",
                  "shift from before low", "shift from before high", "share from before", "share from before low",
                  "share from before high", "share from mean ablation", "share from mean ablation low",
                  "share from mean ablation high", "advantage in share", "advantage in share low",
                  "advantage in share high", "advantage in wins", "advantage in wins low", "advantage in wins high",
                  "null reaches share", "null reaches wins")


class StoredSweep(NamedTuple):
    """A stored sweep: the ``settings`` it was computed with, its provenance, and the two tables."""

    settings: dict
    provenance: dict
    quality: pd.DataFrame
    effects: pd.DataFrame


def path_for(model_name: str, task: str, folder: Path = SWEEPS) -> Path:
    return Path(folder) / f"{model_name}-{task}.json"


def save(
    model_name: str, task: str, settings: dict, provenance: dict, quality: pd.DataFrame, effects: pd.DataFrame,
    folder: Path = SWEEPS,
) -> Path:  # fmt: skip
    """Write the sweep atomically as one JSON file; returns its path."""
    path = path_for(model_name, task, folder)
    path.parent.mkdir(parents=True, exist_ok=True)
    payload = {"settings": settings, "provenance": provenance,
               "quality": quality.to_dict(orient="list"), "effects": effects.to_dict(orient="list")}  # fmt: skip
    write_atomically(path, lambda stream: stream.write(json.dumps(payload, indent=1).encode()))
    return path


def load(model_name: str, task: str, folder: Path = SWEEPS) -> StoredSweep | None:
    """The stored sweep of ``model_name`` on ``task``, None if there is none; ``ValueError`` if the file is damaged."""
    path = path_for(model_name, task, folder)
    if not path.exists():
        return None
    regenerate = f"regenerate it with `python -m mvf.commands.sweep_interventions --model {model_name} --task {task}`"
    try:
        payload = json.loads(path.read_text())
        stored = StoredSweep(payload["settings"], payload["provenance"], pd.DataFrame(payload["quality"]),
                             pd.DataFrame(payload["effects"]))  # fmt: skip
    except (json.JSONDecodeError, KeyError, TypeError, ValueError) as error:
        raise ValueError(f"{path} is damaged ({error.__class__.__name__}: {error}); {regenerate}.") from error
    missing = [column for column in (*EFFECT_KEYS, *EFFECT_COLUMNS) if column not in stored.effects]
    missing += [column for column in (*QUALITY_KEYS, *QUALITY_COLUMNS) if column not in stored.quality]
    if missing or stored.effects.empty or stored.quality.empty:
        raise ValueError(f"{path} lacks the columns {missing} or rows; {regenerate}.")
    return stored


def matching(model_name: str, task: str, settings: dict, folder: Path = SWEEPS) -> tuple[StoredSweep | None, str]:
    """The stored sweep of ``model_name`` on ``task`` if it was computed with ``settings`` (``sweep_settings``),
    else None and the reason, naming the command that makes one."""
    regenerate = f"`python -m mvf.commands.sweep_interventions --model {model_name} --task {task}` computes it"
    stored = load(model_name, task, folder)
    if stored is None:
        return None, f"no sweep of {model_name} on {task} is stored; {regenerate}."
    if differs := differing_settings(stored, settings):
        return None, (f"its stored sweep on {task} was computed with other settings {differs} (stored, wanted); "
                      f"{regenerate} with these.")  # fmt: skip
    return stored, ""


def sweep_settings(model, problems: Sequence, site: str, k: int, per_problem: int | None, seed: int) -> dict:
    """What a stored sweep must have been computed with to stand for a live one: the chapter's parameters, the
    model's weights and the problems (prompts and answers)."""
    return {"site": site, "k": k, "per_problem": per_problem, "seed": seed, "weights": weights_fingerprint(model),
            "problems": corpus_hash([f"{p.prompt}\t{p.answer}" for p in problems])}  # fmt: skip


def differing_settings(stored: StoredSweep, settings: dict) -> dict[str, tuple]:
    """The settings whose stored value differs from the wanted one: ``{key: (stored, wanted)}``."""
    return {key: (stored.settings.get(key), value) for key, value in settings.items() if stored.settings.get(key) != value}


def disagreement(stored: pd.DataFrame, live: pd.DataFrame, keys: Sequence[str], columns: Sequence[str]) -> pd.DataFrame:
    """For each live row, how far the stored row with the same ``keys`` is in each of ``columns``: ``|Δ column|``.

    For ``interventions.sweep``'s table the keys are ``EFFECT_KEYS``; for
    ``probes.quality_by_layer``'s, ``QUALITY_KEYS``. ``ValueError`` if a live
    row has no stored counterpart (a layer, method or position the stored sweep lacks).
    """
    merged = live.merge(stored, on=list(keys), how="left", suffixes=("", " stored"), indicator=True, validate="one_to_one")
    absent = merged[merged["_merge"] != "both"]
    if len(absent):
        raise ValueError(f"the stored sweep lacks {len(absent)} live rows, e.g. {absent[list(keys)].iloc[0].to_dict()}.")
    return merged[list(keys)].assign(**{f"|Δ {c}|": np.abs(merged[c] - merged[f"{c} stored"]) for c in columns},
                                     **{f"|{c}| stored": np.abs(merged[f"{c} stored"]) for c in columns})


# How far a live row may be from the stored one, from floating-point order on other hardware: the mean logit
# difference within 0.01 plus 0.5 % of its size, accuracy within one pair's answer, R² within 1e-3. The relative part:
# Gemma's key-circles patch (a pseudo-inverse of several probes) moved 0.012 at a logit difference of -6.1 on an AMD
# EPYC against the machine that stored it.
LOGIT_DIFF_TOLERANCE = 1e-2
LOGIT_DIFF_RELATIVE = 5e-3
R2_TOLERANCE = 1e-3


def verify(stored: StoredSweep, effects: pd.DataFrame, quality: pd.DataFrame, n_pairs: int) -> str:
    """Check the rows computed live against the stored sweep; returns a sentence saying so.

    ``effects`` and ``quality``: ``interventions.position_sweep``'s tables for
    some layers of one position; ``n_pairs``: the pairs each accuracy is over.
    ``ValueError`` with the rows that differ when the code no longer
    reproduces the stored numbers (the sweep is stale: regenerate it).
    """
    gap = disagreement(stored.effects, effects, EFFECT_KEYS, ["accuracy", "logit diff"])
    probe_gap = disagreement(stored.quality, quality, QUALITY_KEYS, ["circle R2", "margin"])
    allowed = LOGIT_DIFF_TOLERANCE + LOGIT_DIFF_RELATIVE * gap["|logit diff| stored"]
    off = gap[(gap["|Δ accuracy|"] > 1 / n_pairs + 1e-9) | (gap["|Δ logit diff|"] >= allowed)]
    probe_off = probe_gap[(probe_gap.filter(like="|Δ") >= R2_TOLERANCE).any(axis=1)]
    if len(off) or len(probe_off):
        raise ValueError(f"the live rows differ from the stored sweep ({stored.provenance.get('command')}), which is "
                         f"stale; regenerate it with that command. Differing rows:\n{off}\n{probe_off}")  # fmt: skip
    return (f"stored by `{stored.provenance['command']}` on {stored.provenance['date']} "
            f"({stored.provenance['hardware']}, {stored.provenance['minutes']} min); the {len(gap)} patch rows and "
            f"{len(probe_gap)} probe rows computed live agree with it within {LOGIT_DIFF_TOLERANCE} plus "
            f"{LOGIT_DIFF_RELATIVE:.1%} of its size in logit difference, 1/{n_pairs} in accuracy and {R2_TOLERANCE} "
            f"in R²")


def side_by_side(sweeps: dict[str, StoredSweep]) -> pd.DataFrame:
    """Two or more stored sweeps of one model and task (other seeds, say), cell by cell.

    Indexed by ``(position, layer)``; for each named sweep its verdict
    (``interventions.sweep_verdicts``), the circle patch's share from before
    and the probe's margin, columns ``(quantity, name)``. ``ValueError`` if
    the sweeps do not cover the same cells.
    """
    from mvf.interventions import sweep_verdicts

    columns = {}
    for name, sweep in sweeps.items():
        circle = sweep.effects[sweep.effects["method"] == "circle patch"].set_index(["position", "layer"])
        columns[("verdict", name)] = sweep_verdicts(sweep.effects, sweep.quality)
        columns[("circle share", name)] = circle["share from before"]
        columns[("margin", name)] = sweep.quality.set_index(["position", "layer"])["margin"]
    cells = [set(columns[(quantity, name)].index) for quantity in ("verdict", "margin") for name in sweeps]
    if any(other != cells[0] for other in cells[1:]):
        raise ValueError(f"the sweeps {list(sweeps)} cover different (position, layer) cells; compare sweeps of one "
                         "model and task, made by the same command with another --seed.")  # fmt: skip
    return pd.DataFrame(columns).sort_index()

