"""The paper's claims beside the numbers this book measures, and the records chapters save when they run.

Every chapter ends by saving its headline numbers with :func:`record`, as
``results/{profile}/{chapter}.json`` (in :func:`results_dir`) with the date, the hardware and the
package versions; the results page reads them with :func:`load_records`.
Nothing is typed in by hand. The embedded model's records are written while
the book builds (and are not committed); a chapter run on a GPU with a
paper's model leaves a record to commit, and the page shows it from then on.
"""

from __future__ import annotations

import datetime
import json
import math
import os
import platform
from collections.abc import Sequence
from dataclasses import dataclass
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

import pandas as pd
import torch

from mvf.book import ROOT
from mvf.cache import write_atomically
from mvf.interventions import NULLS


def results_dir() -> Path:
    """Where records go: ``$MVF_RESULTS`` if set; the book's ``results/`` in a checkout; else ``./results``.

    An installed mvf (pip, Colab) has no book around it, and a folder beside
    ``site-packages`` would be lost with the runtime, so it writes to the
    working directory unless told otherwise.
    """
    if "MVF_RESULTS" in os.environ:
        return Path(os.environ["MVF_RESULTS"])
    return ROOT / "results"


RESULTS_DIR = results_dir()
PACKAGES = ("mvf", "torch", "transformers", "transformer-lens", "sae-lens")


@dataclass(frozen=True)
class Claim:
    """One claim of the paper, the number that tests it, and the chapter (docname under ``book/``) that computes it."""

    key: str
    chapter: str
    paper: str
    measured: str
    decimals: int = 2


CLAIMS = (
    Claim("days cyclic order", "circles", "Days of the week lie on a circle in the residual stream (GPT-2, Mistral 7B).",
          "best cyclic-order score of the 7 day centroids over layers (1 = a closed ring in calendar order; 6/7 = "
          "an ordered open arc, one step between calendar neighbours over 1.7 times their median)"),
    Claim("months cyclic order", "circles", "Months of the year lie on a circle.",
          "best cyclic-order score of the 12 month centroids over layers (11/12: an ordered open arc)"),
    Claim("weekday cluster rank", "discovery", "Unsupervised SAE clustering finds day and month circles among the most "
          "irreducible clusters (GPT-2 layer 7, Mistral 7B layer 8).",
          "rank, by the paper's mean plane score, of the best-ranked cluster whose tokens are mostly day names "
          "and which fires on at least half of them (1 = top; none: no such cluster)", decimals=0),
    Claim("month cluster rank", "discovery", "(the same, for months)",
          "the same for month names", decimals=0),
    Claim("weekday cluster cyclic order", "discovery", "… and on its top principal components the days go round in "
          "calendar order (GPT-2's Figure 1).",
          "best cyclic-order score of the day names' centroids over the PCA planes of that cluster where the "
          "centroids are not a line (roundness ≥ 0.3; chance: the best of as many random arrangements, 0.26 for "
          "one plane, 0.41 for four); none: no such cluster or plane, or a day the cluster never fires on"),
    Claim("month cluster cyclic order", "discovery", "(the same, for months)",
          "the same for month names (chance 0.14 for one plane, 0.23 for four)"),
    Claim("weekday features pooled cyclic order (ours)", "discovery", "(ours: is the day circle in the SAE even "
          "where clustering does not group it?)",
          "the same score for the reconstructions of every feature that puts more than half its activation on day "
          "names, pooled whatever their cluster (the same chance)"),
    Claim("month features pooled cyclic order (ours)", "discovery", "(the same, for months)",
          "the same for month names"),
    Claim("weekdays accuracy", "arithmetic", "Mistral 7B and Llama 3 8B solve many Weekdays problems.",
          "Weekdays accuracy among the 7 allowed answers (chance 0.14)"),
    Claim("months accuracy", "arithmetic", "… and many Months problems.",
          "Months accuracy among the 12 allowed answers (chance 0.08)"),
    Claim("probe circle R2", "interventions", "A rank-5 circle probe reads the value off the hidden state.",
          "held-out R² of the circle probe at the layer of its largest margin over shuffled calendar orders"),
    Claim("probe linear R2", "interventions", "(comparison) a linear probe of the same rank does worse.",
          "held-out R² of the linear probe at the same layer"),
    Claim("probe shuffled R2 (max)", "interventions", "(baseline, ours) the same probe fitted to shuffled calendar "
          "orders.", "highest held-out R² of the circle probe over 20 shuffled orders, at the same layer"),
    Claim("circle patch share from before", "interventions", "Patching the circle moves the answer about as much as "
          "patching the whole layer (Mistral 7B, the logit difference between the new and the old answer).",
          "share of the full patch's shift in logit difference (new − old answer) from before that the circle patch "
          "makes, with its 95 % interval over problems, at the layer and position of the probe above"),
    Claim("circle patch share from mean ablation", "interventions", "(the same, measured from mean ablation)",
          "the same share, with both shifts measured from the mean ablation, which already erases the old value"),
    Claim("shuffled-order null share (ours)", "interventions", "(null, ours) the same patch through a probe fitted "
          "to a shuffled calendar order.", "its share of the full patch's shift from before (same layer)"),
    Claim("random-plane null share (ours)", "interventions", "(null, ours) the mean with a random plane of the "
          "probe's PCA space taken from the matching problem.", "its share of the full patch's shift from before"),
    Claim("circle patch accuracy", "interventions", "(secondary) the circle patch makes the new answer the top one.",
          "share of circle patches whose top allowed answer is the intended new one (same layer)"),
    Claim("full patch accuracy", "interventions", "(baseline) patching the whole activation.",
          "share of full patches that give the intended new answer (same layer)"),
    Claim("off-circle tracking", "off_circle", "Moving the point around the circle moves the answer smoothly.",
          "share of angles at radius 1, from the mean activation (the paper's), whose most likely answer is the "
          "one the angle implies, over the first problems of the task (one per start value; ours: the paper shows "
          "one)"),
    Claim("circle of answer share", "decompose", "The circle of the answer explains much of the hidden state at the "
          "token before the answer.", "largest share the circle of the answer adds after the one-hot codes of the "
          "operand and shift, on the top-20 PCs (the paper's order; final token)"),
    Claim("circle of answer share, circles first (ours)", "decompose", "(ours) the same with the circles entered "
          "first.", "largest share the circle of the answer explains when entered first (final token)"),
)  # fmt: skip
KEYS = tuple(claim.key for claim in CLAIMS)
INTERVAL_ENDS = (" low", " high")  # a number may come with its interval: "{key} low" and "{key} high"


def intervention_numbers(at: pd.DataFrame, probe: pd.Series) -> dict[str, float]:
    """The interventions chapter's record at one layer and position, from the sweep's and the probe's tables.

    ``at``: ``interventions.summarize``'s rows of that layer, indexed by
    method; ``probe``: ``probes.quality_by_layer``'s row of the same layer.
    """
    circle = at.loc["circle patch"]
    return {
        "probe circle R2": probe["circle R2"], "probe linear R2": probe["linear R2"],
        "probe shuffled R2 (max)": probe["shuffled R2 (max)"],
        **{f"circle patch share from {base}{end}": circle[f"share from {base}{end}"]
           for base in ("before", "mean ablation") for end in ("", " low", " high")},
        "shuffled-order null share (ours)": at.loc[NULLS[0], "share from before"],
        "random-plane null share (ours)": at.loc[NULLS[1], "share from before"],
        "circle patch accuracy": circle["accuracy"], "full patch accuracy": at.loc["full patch", "accuracy"],
    }  # fmt: skip


def at_layers(layers: Sequence[int]) -> str:
    """Layers as a reader takes them in: "at layers 0–10, 16–24 and 29", "at layer 3", "at no layer"."""
    runs: list[list[int]] = []
    for layer in sorted(set(int(layer) for layer in layers)):
        if runs and layer == runs[-1][-1] + 1:
            runs[-1].append(layer)
        else:
            runs.append([layer])
    if not runs:
        return "at no layer"
    if len(runs) == 1 and len(runs[0]) == 1:
        return f"at layer {runs[0][0]}"
    parts = [part for run in runs for part in ([f"{run[0]}–{run[-1]}"] if len(run) > 2 else map(str, run))]
    return "at layers " + (parts[0] if len(parts) == 1 else ", ".join(parts[:-1]) + " and " + parts[-1])


def circle_finding(closed: dict[str, Sequence[int]], ordered: dict[str, Sequence[int]]) -> str:
    """The verdict word on "days and months lie on circles", from the layers where each kind's centroids are a
    closed calendar ring (``closed``) or in calendar order by angle (``ordered``), keyed by kind."""
    rings = [kind for kind in closed if closed[kind]]
    arcs = [kind for kind in ordered if ordered[kind] and not closed[kind]]
    if len(rings) == len(closed):
        return "replicates"
    if rings or arcs:
        missing = ", ".join(kind for kind in closed if kind not in rings)
        return f"partly ({missing}: {'an ordered open arc' if arcs else 'not in order'}, never a closed ring)"
    return "does not (no layer in calendar order)"


def arithmetic_finding(accuracy: dict[str, float], chance: dict[str, float]) -> str:
    """The verdict word on "models solve the Weekdays and Months problems": above twice chance (keyed by task)."""
    solved = [task for task in accuracy if accuracy[task] > 2 * chance[task]]
    if len(solved) == len(accuracy):
        return "replicates"
    if solved:
        return f"partly (only {', '.join(solved)} above twice chance)"
    return "does not (at chance on this model)"


INTERVENTION_FINDINGS = {"matches": "replicates", "partly matches": "partly", "does not match": "does not",
                         "inconclusive": "inconclusive"}  # fmt: skip
WORDS = ("replicates", "partly", "does not", "inconclusive", "not testable")  # the findings table's vocabulary


@dataclass(frozen=True)
class Finding:
    """One of the paper's findings that a chapter ends with a verdict word on."""

    chapter: str
    paper: str  # the paper's finding
    where: str  # where the paper shows it (the authors' README names the figures each script makes)
    short: str  # its name in the bottom line


FINDINGS = (
    Finding("circles", "Days and months lie on circles in the residual stream", "Figures 1 and 3", "the circles"),
    Finding("discovery", "SAE clusters of day and month features rank among the most irreducible", "Figure 1",
            "finding them with an SAE"),
    Finding("arithmetic", "Models do modular arithmetic on weekdays and months", "Table 1", "the arithmetic"),
    Finding("interventions", "Patching the circle moves the answer about as much as patching the whole layer",
            "Figure 5", "the circle patch"),
    Finding("off_circle", "Moving the point round the circle moves the answer with the angle", "Figure 6",
            "the answer following the angle"),
    Finding("decompose", "The circle of the answer explains much of the hidden state before the answer", "Figure 8",
            "the answer's circle in the hidden state"),
)  # fmt: skip


def finding_word(settings: dict) -> str | None:
    """A record's verdict word: its setting ``finding`` (a word of ``WORDS``, perhaps with its reason in
    parentheses), or its ``verdict`` (a category of ``interventions.VERDICTS``, named by ``INTERVENTION_FINDINGS``)."""
    return settings.get("finding") or INTERVENTION_FINDINGS.get(settings.get("verdict"))


def findings(records: list[dict], reasons: bool = False) -> pd.DataFrame:
    """The verdict per finding of ``FINDINGS`` (rows) and profile (columns), after the paper's figure; "—" where none ran.

    ``reasons``: each word followed by its reason (the record's setting
    ``why``), where the record gives one.
    """
    table = pd.DataFrame({"in the paper": [f.where for f in FINDINGS]}, index=[f.paper for f in FINDINGS])
    chapters = {f.chapter: f.paper for f in FINDINGS}
    for entry in records:
        settings = entry.get("settings", {})
        word = finding_word(settings)
        if word and entry["chapter"] in chapters:
            why = settings.get("why") if reasons else None
            table.loc[chapters[entry["chapter"]], entry["profile"]] = f"{word} ({why})" if why else word
    return table.fillna("—")


def combined_finding(words: dict[str, str]) -> str:
    """One word for a finding judged per kind (days, months: ``words``): the same word when every kind has it,
    else *partly* when one replicates at least in part, else *does not*."""
    found = set(words.values())
    if len(found) == 1:
        return found.pop()
    return "partly" if found & {"replicates", "partly"} else "does not"


def bottom_line(table: pd.DataFrame, main: str, second: str | None = None, controls: tuple[str, ...] = ()) -> str:
    """Five sentences on ``findings``' table: the count per word on ``main``, what holds, what does not, how
    ``second`` agrees, and what the positive ``controls`` show (that the tests can say yes)."""
    short = {f.paper: f.short for f in FINDINGS}

    def word_of(profile: str) -> pd.Series:
        return table[profile].str.split(" \\(").str[0] if profile in table else pd.Series(dtype=object)

    def listed(names: list[str]) -> str:
        return ", ".join(names[:-1]) + f" and {names[-1]}" if len(names) > 1 else "".join(names)

    on_main = word_of(main)
    counts = on_main.value_counts()
    tally = ", ".join(f"{word} {counts[word]}" for word in (*WORDS, "—") if word in counts).replace("—", "not run")
    held = [short[paper] for paper, word in on_main.items() if word in ("replicates", "partly")]
    failed = [short[paper] for paper, word in on_main.items() if word == "does not"]
    sentences = [
        f"On {main} the paper's {len(on_main)} findings come out as: {tally}",
        f"What holds, at least in part: {listed(held)}" if held else "Nothing holds, even in part",
        f"What does not: {listed(failed)}" if failed else "No finding is contradicted",
    ]  # fmt: skip
    if second in table:
        on_second = word_of(second)
        ran = on_second != "—"
        same = int((on_second[ran] == on_main[ran]).sum())
        sentences.append(f"On {second}, {same} of the {int(ran.sum())} findings it ran come out as on {main}")
    else:
        sentences.append("No second model has run")
    ran_on = {control: [f"{short[paper]} {word}" for paper, word in word_of(control).items() if word != "—"]
              for control in controls if control in table}  # fmt: skip
    sentences.append("On the positive controls, where the answer is known: " + "; ".join(
        f"{control}, {listed(found)}" for control, found in ran_on.items()) if ran_on else "No positive control has run")
    return ". ".join(sentences) + "."


def hardware() -> str:
    """The accelerator (or CPU) the numbers were measured on."""
    if torch.cuda.is_available():
        return torch.cuda.get_device_name(0)
    return f"CPU ({platform.processor() or platform.machine()})"


def versions() -> dict[str, str]:
    found = {}
    for package in PACKAGES:
        try:
            found[package] = version(package)
        except PackageNotFoundError:
            found[package] = "not installed"
    return found


def _check_numbers(numbers: dict, source: str) -> None:
    allowed = set(KEYS) | {key + end for key in KEYS for end in INTERVAL_ENDS}
    unknown = sorted(set(numbers) - allowed)
    if unknown:
        raise ValueError(f"{source}: unknown result keys {unknown}; the claims are {list(KEYS)}.")
    bad = [key for key, value in numbers.items()
           if value is not None and (not isinstance(value, (int, float)) or not math.isfinite(value))]  # fmt: skip
    if bad:
        raise ValueError(f"{source}: results {bad} are not finite numbers (or None: not found).")


def record(
    chapter: str, profile: str, numbers: dict[str, float], folder: Path = RESULTS_DIR,
    settings: dict[str, str | int | float] | None = None, not_applicable: dict[str, str] | None = None,
) -> Path:  # fmt: skip
    """Save a chapter's headline numbers for ``profile`` with date, hardware and versions; returns the file.

    A number may be None: the thing measured was not found (shown as "none").

    ``settings`` say what the numbers were measured on (task, position, layer,
    chance, …); the results page shows them beside each number.
    ``not_applicable``: claims that this model or task cannot test, each with
    the reason (a share that is 0 by construction, say); shown as "n/a".
    """
    _check_numbers(numbers, f"chapter {chapter!r}")
    not_applicable = not_applicable or {}
    _check_numbers(dict.fromkeys(not_applicable), f"chapter {chapter!r} (not applicable)")
    settings = settings or {}
    if any(not isinstance(value, (str, int, float)) for value in settings.values()):
        raise ValueError(f"chapter {chapter!r}: settings must be strings or numbers, got {settings}.")
    path = Path(folder) / profile / f"{chapter}.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    entry = {
        "chapter": chapter,
        "profile": profile,
        "date": datetime.date.today().isoformat(),
        "hardware": hardware(),
        "versions": versions(),
        "numbers": {key: None if value is None else float(value) for key, value in numbers.items()},
        "settings": settings,
        "not applicable": not_applicable,
    }
    write_atomically(path, lambda stream: stream.write((json.dumps(entry, indent=2) + "\n").encode()))
    return path


def load_records(folder: Path = RESULTS_DIR) -> list[dict]:
    """Every saved record under ``folder`` (``{profile}/{chapter}.json``), each validated; none if absent."""
    records = []
    for path in sorted(Path(folder).glob("*/*.json")):
        try:
            entry = json.loads(path.read_text())
            missing = {"chapter", "profile", "date", "hardware", "versions", "numbers"} - set(entry)
        except (ValueError, TypeError) as error:
            raise ValueError(f"{path} is not valid JSON ({error}); delete it and re-run its chapter on a GPU.") from None
        if missing:
            raise ValueError(f"{path} lacks {sorted(missing)}; delete it and re-run its chapter on a GPU.")
        _check_numbers(entry["numbers"], str(path))
        records.append(entry)
    return records


def _settings(entry: dict) -> str:
    """A record's settings and date, as one line: "task month-successor; position operand; …; 2026-12-07"."""
    settings = "; ".join(f"{key} {value:.2f}" if isinstance(value, float) else f"{key} {value}"
                         for key, value in entry.get("settings", {}).items())
    return "; ".join(filter(None, [settings, entry["date"]]))


def _column(entry: dict) -> str:
    return f"{entry['profile']} ({entry['hardware']})"


def at_a_glance(records: list[dict], chapter: str | None = None) -> pd.DataFrame:
    """One row per claim: the paper's claim, what is measured, the chapter, then one column per profile and hardware.

    A number recorded with its interval (``"{key} low"``, ``"{key} high"``) is shown as "value [low, high]"; a
    claim recorded as not applicable, as "n/a (the reason)". A column is named ``"{profile} ({hardware})"``;
    the settings its numbers were measured with are stated once, by :func:`measured_with`. Claims nobody measured
    for a profile show "—". ``chapter``: only that chapter's claims.
    """
    columns: dict[str, dict[str, float | str | None]] = {}
    for entry in records:
        column = columns.setdefault(_column(entry), {})
        column |= entry["numbers"]
        column |= {key: f"n/a ({reason})" for key, reason in entry.get("not applicable", {}).items()}
    rows = []
    for claim in CLAIMS:
        if chapter is not None and claim.chapter != chapter:
            continue
        row = {"claim (paper)": claim.paper, "measured here": claim.measured, "chapter": claim.chapter}
        for name, numbers in columns.items():
            if claim.key not in numbers:
                row[name] = "—"
                continue
            value = numbers[claim.key]
            ends = [numbers.get(claim.key + end) for end in INTERVAL_ENDS]
            shown = "none" if value is None else value if isinstance(value, str) else f"{value:.{claim.decimals}f}"
            if isinstance(value, float) and None not in ends:
                shown += f" [{ends[0]:.{claim.decimals}f}, {ends[1]:.{claim.decimals}f}]"
            row[name] = shown
        rows.append(row)
    return pd.DataFrame(rows)


def measured_with(records: list[dict], chapter: str) -> dict[str, str]:
    """Per column of :func:`at_a_glance` (profile and hardware), the settings and date of ``chapter``'s record."""
    return {_column(entry): _settings(entry) for entry in records if entry["chapter"] == chapter}
