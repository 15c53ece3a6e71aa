"""The chapters' exercises: each has a hint, a stub, a check and a folded solution; the solutions pass their checks,
the stubs are told they are unwritten, and a planted wrong answer is named as wrong."""

import re
from pathlib import Path

import numpy as np
import pytest
import torch

from mvf import exercises, probes

MYST = Path(__file__).resolve().parent.parent / "book" / "myst"
CHAPTERS = sorted(path for path in MYST.glob("*.md") if path.stem != "results")  # results: a summary, no method
CELL = re.compile(r"```\{code-cell\} ipython3\n(?::tags: \[(?P<tags>[^\]]*)\]\n\n)?(?P<source>.*?)\n```", re.S)


def exercises_of(path: Path) -> list[str]:
    """The text of each "## Exercise:" section of a chapter's MyST source."""
    return re.findall(r"^## Exercise:.*?(?=^## |\Z)", path.read_text(), re.S | re.M)


def cells(section: str) -> list[tuple[list[str], str]]:
    return [([tag.strip() for tag in (m["tags"] or "").split(",") if tag.strip()], m["source"]) for m in CELL.finditer(section)]


def run(source: str) -> dict:
    namespace = {"np": np, "torch": torch, "probes": probes, "exercises": exercises}
    exec(source, namespace)  # noqa: S102 (the chapters' own exercise cells)
    return namespace


@pytest.mark.parametrize("path", CHAPTERS, ids=lambda path: path.stem)
def test_chapter_has_objectives_and_an_exercise_with_hint_stub_check_and_folded_solution(path):
    text = path.read_text()
    assert re.search(r"^## Objectives\n\nIn this chapter you will:\n\n- ", text, re.M), f"{path.stem}: no objectives"
    found = exercises_of(path)
    assert found, f"{path.stem}: no exercise"
    for section in found:
        title = section.splitlines()[0]
        assert "<details><summary>Hint</summary>" in section, f"{title}: no folded hint"
        kinds = cells(section)
        assert len(kinds) >= 3, f"{title}: a stub, a check and a solution"
        (stub_tags, stub), (check_tags, check), (solution_tags, solution) = kinds[:3]
        assert not stub_tags and 'raise NotImplementedError("your code here")' in stub, f"{title}: the stub"
        assert not check_tags and re.fullmatch(r"(exercises\.check_\w+\(\w+\)\n?)+", check), f"{title}: the check"
        assert solution_tags == ["hide-input"] and solution.startswith('# @title Solution {display-mode: "form"}'), \
            f"{title}: the solution is folded (hide-input in the book, a form in Colab)"
        assert check.strip() in solution, f"{title}: the solution runs the check"


@pytest.mark.parametrize("path", CHAPTERS, ids=lambda path: path.stem)
def test_solutions_pass_and_stubs_are_told_they_are_unwritten(path, capsys):
    for section in exercises_of(path):
        (_, stub), (_, check), (_, solution) = cells(section)[:3]
        run(stub + "\n" + check)
        assert "is not written yet" in capsys.readouterr().out
        run(solution.split("\n\nexercises.")[0] + "\n" + check)  # the solution's functions, checked
        assert "Correct:" in capsys.readouterr().out


# A wrong answer for each check, as a reader might write it.
PLANTED = {
    "check_separability": lambda points, bins=10, angles=100: float(np.log(2) * 0.8),
    "check_mixture_along": lambda points, direction, offset, epsilon: float(
        (np.abs((points @ direction + offset) / (points @ direction + offset).std()) < epsilon).mean()),
    "check_probe_points": lambda activations, values, period, k: np.column_stack(
        [np.cos(2 * np.pi * values / period), np.sin(2 * np.pi * values / period)]),
    "check_affinity": lambda decoder: 1 - np.arccos(np.clip(np.corrcoef(decoder), -1, 1)) / np.pi,
    "check_circle_patch": lambda probe, clean, points: clean + (points - probe.circle_point(clean)) @ np.linalg.pinv(
        probe.weights[:-1]) @ probe.components * 0.5,
    "check_explained_share": lambda hidden, design: 1 - float(
        ((hidden - design @ np.linalg.lstsq(design, hidden, rcond=None)[0]) ** 2).sum() / (hidden**2).sum()),
    "check_allowed_accuracy": lambda logits, allowed, answers: float(
        (logits.argmax(dim=1).numpy() == allowed[np.arange(len(answers)), answers].numpy()).mean() + 0.5),
    "check_following": lambda grid, expected: (grid.argmax(axis=2) == expected).mean(axis=0),
    "check_circle_code": lambda values, period: np.column_stack(
        [np.sin(2 * np.pi * values / period), np.cos(2 * np.pi * values / period)]),
}


@pytest.mark.parametrize("check", sorted(PLANTED))
def test_a_planted_wrong_answer_is_named_with_mvf_s(check):
    with pytest.raises(exercises.ExerciseError, match=r"on .*: (got .*, mvf gives .*\?|returned shape .*, expected)"):
        getattr(exercises, check)(PLANTED[check])


def test_an_error_in_the_reader_s_function_names_the_input():
    with pytest.raises(exercises.ExerciseError, match=r"raised ZeroDivisionError on the values 0–6, period 7"):
        exercises.check_circle_code(lambda values, period: 1 / 0)


def test_every_check_is_planted_and_used_by_a_chapter():
    checks = {name for name in dir(exercises) if name.startswith("check_")}
    assert checks == set(PLANTED)
    used = {name for path in CHAPTERS for name in re.findall(r"exercises\.(check_\w+)", path.read_text())}
    assert used == checks
