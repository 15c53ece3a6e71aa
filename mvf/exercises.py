"""Checks for the chapters' exercises: the reader's function run beside mvf's own on fresh, seeded inputs.

Each chapter has the reader write a piece of the method in a stub that raises
``NotImplementedError``; ``check_<piece>(their_function)`` then

- prints what to do while the stub is unwritten, without failing, so a chapter
  still runs top to bottom unattended;
- raises :class:`ExerciseError` on the first input where the reader's answer
  differs from mvf's, naming the input, both answers and a likely cause;
- prints what it was checked on when every answer agrees.

The inputs are small synthetic ones made here (not the chapter's data), so a
function that only works on the chapter's own numbers does not pass.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import numpy as np
import torch

from mvf import decompose, discovery, interventions, metrics, probes, synthetic, tasks


class ExerciseError(AssertionError):
    """The reader's function disagrees with mvf's on a named input."""


@dataclass(frozen=True)
class Case:
    """One input to check on: what it is (for the messages), the arguments, mvf's answer and the tolerance."""

    name: str
    args: tuple
    expected: np.ndarray | float
    atol: float


def _check(function: Callable, cases: list[Case], causes: str) -> None:
    """Run ``function`` on every case; ``False`` (with advice) while unwritten, ``True`` when all agree."""
    name = getattr(function, "__name__", "your function")
    for case in cases:
        try:
            got = function(*case.args)
        except NotImplementedError:
            print(f"`{name}` is not written yet: fill in its body above and run this cell again "
                  f"(the hint is folded above it, the solution below).")  # fmt: skip
            return
        except Exception as error:
            raise ExerciseError(f"`{name}` raised {type(error).__name__} on {case.name}: {error}") from error
        got = np.asarray(got.detach().cpu() if isinstance(got, torch.Tensor) else got, dtype=np.float64)
        expected = np.asarray(case.expected, dtype=np.float64)
        if got.shape != expected.shape:
            raise ExerciseError(f"`{name}` on {case.name}: returned shape {got.shape}, expected {expected.shape}.")
        if not np.isfinite(got).all():
            raise ExerciseError(f"`{name}` on {case.name}: returned NaN or inf.")
        if not np.allclose(got, expected, atol=case.atol, rtol=0):
            worst = np.unravel_index(np.argmax(np.abs(got - expected)), got.shape) if got.ndim else ()
            raise ExerciseError(f"`{name}` on {case.name}: got {got[worst]:.4g}, mvf gives {expected[worst]:.4g}"
                                f"{f' (at index {tuple(map(int, worst))})' if worst else ''}. {causes}")  # fmt: skip
    print(f"Correct: `{name}` agrees with mvf on {'; '.join(case.name for case in cases)}.")


def _planted(n: int, d: int, period: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """``n`` activations ``(n, d)`` carrying their values ``(n,)`` on a circle in a random plane, plus noise."""
    values = rng.integers(0, period, n)
    plane = np.linalg.qr(rng.normal(size=(d, 2)))[0].T
    return probes.circle_targets(values, period) @ plane * 3 + rng.normal(size=(n, d)) + rng.normal(size=d), values


def check_separability(separability: Callable[[np.ndarray], float]) -> None:
    """``separability(points (n, 2)) -> float``: the separability index S in bits (10 bins, 100 angles on [0, 2π])."""
    rng = np.random.default_rng(11)
    cases = [Case(name, (points,), float(metrics.separability_index(points)), 0.02) for name, points in [
        ("a Gaussian blob of 2000 points", rng.normal(size=(2000, 2))),
        ("a noisy circle of 2000 points", synthetic.circle(2000, rng, noise=0.1)),
        ("a stretched, shifted blob", rng.normal(size=(2000, 2)) * [3.0, 0.5] + [4.0, -1.0]),
    ]]  # fmt: skip
    _check(separability, cases, "Is it the minimum over the rotations, in bits (log base 2), with 10 bins "
                                       "spanning each rotated coordinate's own range?")  # fmt: skip


def check_mixture_along(mixture_along: Callable[[np.ndarray, np.ndarray, float, float], float]) -> None:
    """``mixture_along(points (n, 2), direction (2,), offset, epsilon) -> float``: the share of |z| < ε along a line."""
    rng = np.random.default_rng(12)
    line = np.column_stack([np.zeros(300), rng.normal(size=300)]) + 0.02 * rng.normal(size=(300, 2))
    mixed = np.vstack([line, rng.normal(size=(700, 2)) + [2.0, 0.0]])
    circle = synthetic.circle(1000, rng)
    cases = []
    for name, points, direction, offset in [("a line beside a blob, across the line", mixed, np.array([1.0, 0.0]), 0.0),
                                            ("a noisy circle, off its centre", circle, np.array([0.6, 0.8]), -0.3)]:
        z = metrics.normalised_projection(points[None], direction[None], np.array([offset]))[0]
        cases.append(Case(name, (points, direction, offset, 0.1), float((np.abs(z) < 0.1).mean()), 1e-9))
    _check(mixture_along, cases, "Is z divided by the root mean square of v·f + c (not its standard "
                                        "deviation), and is the comparison |z| < ε?")  # fmt: skip


def check_probe_points(probe_points: Callable[[np.ndarray, np.ndarray, int, int], np.ndarray]) -> None:
    """``probe_points(activations (n, d), values (n,), period, k) -> (n, 2)``: a fitted circle probe's points."""
    rng = np.random.default_rng(13)
    cases = []
    for name, (n, d, period, k) in [("60 activations of 20 dimensions, period 12, k = 5", (60, 20, 12, 5)),
                                    ("40 activations of 8 dimensions, period 7, k = 3", (40, 8, 7, 3))]:
        activations, values = _planted(n, d, period, rng)
        expected = probes.fit_circle_probe(activations, values, period, k).circle_point(activations)
        cases.append(Case(name, (activations, values, period, k), expected, 1e-6))
    _check(probe_points, cases, "Are the activations centred before the SVD, the top k right singular "
                                       "vectors used, and an intercept column added to the least squares?")  # fmt: skip


def check_affinity(affinity: Callable[[np.ndarray], np.ndarray]) -> None:
    """``affinity(decoder (m, d)) -> (m, m)``: the paper's angular affinity between decoder rows, zero diagonal sims."""
    rng = np.random.default_rng(14)
    cases = [Case(f"{m} random decoder rows of {d} dimensions", (decoder,),
                  discovery.angular_affinity(discovery.similarities(decoder)), 1e-5)
             for m, d, decoder in [(m, d, rng.normal(size=(m, d)) * rng.uniform(0.5, 2, (m, 1))) for m, d in
                                   [(30, 16), (12, 64)]]]  # fmt: skip
    _check(affinity, cases, "Are the rows normalised to unit length, the cosine similarities' diagonal set "
                                   "to 0 before the arccos, and the result 1 − arccos(sims)/π?")  # fmt: skip


def check_circle_patch(circle_patch: Callable[[probes.CircleProbe, np.ndarray, np.ndarray], np.ndarray]) -> None:
    """``circle_patch(probe, clean (n, d), points (n, 2)) -> (n, d)``: the smallest move that makes the probe read
    ``points``."""
    rng = np.random.default_rng(15)
    activations, values = _planted(50, 16, 12, rng)
    probe = probes.fit_circle_probe(activations, values, 12, 5)
    targets = probes.circle_targets((values + 3) % 12, 12)
    mean = np.repeat(activations.mean(axis=0, keepdims=True), 6, axis=0)
    cases = [Case("8 activations moved 3 months on", (probe, activations[:8], targets[:8]),
                  interventions.circle_patch(probe, activations[:8], targets[:8]), 1e-6),
             Case("the mean activation, as the paper patches it", (probe, mean, targets[:6]),
                  interventions.circle_patch(probe, mean, targets[:6]), 1e-6)]  # fmt: skip
    _check(circle_patch, cases, "Does the move stay inside the probe's PCA components, use the pseudo-inverse "
                                       "of the probe's 2 × k weights (without the intercept row), and start from "
                                       "the probe's current reading of each activation?")  # fmt: skip


def check_explained_share(explained_share: Callable[[np.ndarray, np.ndarray], float]) -> None:
    """``explained_share(hidden (n, d), design (n, g)) -> float``: the share of variance a least-squares fit explains."""
    rng = np.random.default_rng(16)
    cases = []
    for name, (n, d, g) in [("80 states of 10 dimensions, 3 regressors", (80, 10, 3)),
                            ("49 states of 6 dimensions, one-hot of 7 values (6 columns)", (49, 6, 7))]:
        design = np.eye(g)[rng.integers(0, g, n), 1:] if g == 7 else rng.normal(size=(n, g))
        hidden = design @ rng.normal(size=(design.shape[1], d)) + rng.normal(size=(n, d)) + 5
        expected = float(decompose.explained_variance(hidden, {"design": design}, ridge=0.0)["design"])
        cases.append(Case(name, (hidden, design), expected, 1e-6))
    _check(explained_share, cases, "Are both the states and the design centred (an intercept), and is it one "
                                          "minus residual over total sum of squares, over every dimension?")  # fmt: skip


def check_allowed_accuracy(allowed_accuracy: Callable[[torch.Tensor, torch.Tensor, np.ndarray], float]) -> None:
    """``allowed_accuracy(logits (n, vocab), allowed (n, p), answers (n,)) -> float``: accuracy among the allowed."""
    generator = torch.Generator().manual_seed(17)
    cases = []
    for name, (n, vocab, period) in [("20 prompts, a vocabulary of 50, 7 answers", (20, 50, 7)),
                                     ("30 prompts, a vocabulary of 100, 12 answers", (30, 100, 12))]:
        logits = torch.randn(n, vocab, generator=generator)
        allowed = torch.stack([torch.randperm(vocab, generator=generator)[:period] for _ in range(n)])
        answers = torch.randint(0, period, (n,), generator=generator).numpy()
        logits[torch.arange(n // 2), allowed[torch.arange(n // 2), answers[: n // 2]]] += 3
        cases.append(Case(name, (logits, allowed, answers), tasks.allowed_accuracy(logits, allowed, answers), 1e-9))
    _check(allowed_accuracy, cases, "Is the argmax taken over the allowed answers' logits only (gathered "
                                           "per prompt), and compared with the answer's position in that list?")  # fmt: skip


def check_following(following: Callable[[np.ndarray, np.ndarray], np.ndarray]) -> None:
    """``following(grid (radii, angles, p), expected (angles,)) -> (radii,)``: share of angles answered as implied."""
    rng = np.random.default_rng(18)
    cases = []
    for name, (r, a, p) in [("a grid of 5 radii × 24 angles × 12 answers", (5, 24, 12)),
                            ("a grid of 3 radii × 10 angles × 7 answers", (3, 10, 7))]:
        grid = rng.dirichlet(np.ones(p), size=(r, a))
        expected = rng.integers(0, p, a)
        cases.append(Case(name, (grid, expected), interventions.following_share(grid, expected), 1e-9))
    _check(following, cases, "Is the most likely answer taken over the last axis, compared with the "
                                    "expected answer of each angle, and averaged over the angles?")  # fmt: skip


def check_circle_code(circle_code: Callable[[np.ndarray, int], np.ndarray]) -> None:
    """``circle_code(values (n,), period) -> (n, 2)``: the point (cos 2πv/p, sin 2πv/p) of each value."""
    cases = [Case(f"the values 0–{period - 1}, period {period}", (np.arange(period), period),
                  probes.circle_targets(np.arange(period), period), 1e-9) for period in (7, 12)]  # fmt: skip
    _check(circle_code, cases, "Is the angle 2π·v/p (radians, not degrees), cos first then sin?")
