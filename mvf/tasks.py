"""The paper's Weekdays and Months problems, a successor task for small models, and their evaluation.

Token positions come from the tokenisation of each prompt: ``operand`` is the
last token of the start name (the paper's "a"), ``final`` the last prompt
token, whose output predicts the answer ("c").
"""

from __future__ import annotations

import functools
from dataclasses import dataclass, replace

import numpy as np
import pandas as pd
import torch

from mvf import tokens
from mvf.activations import logits_at_positions, pad_prompts
from mvf.dates import DAYS, MONTHS

NUMBER_WORDS = ("One", "Two", "Three", "Four", "Five", "Six", "Seven", "Eight", "Nine", "Ten", "Eleven", "Twelve")


@dataclass(frozen=True)
class Problem:
    """One prompt: the start value, the shift applied to it and the answer, all as indices into ``names``.

    ``listed`` is how many names the prompt lists (the successor task's list
    length; 1 otherwise); ``separator`` is what comes between the prompt and
    the answer (a space; nothing after a chat template's assistant header).
    """

    prompt: str
    start: int
    shift: int
    answer: int
    names: tuple[str, ...]
    listed: int = 1
    separator: str = " "

    @property
    def period(self) -> int:
        return len(self.names)


def weekdays() -> list[Problem]:
    """The paper's 49 Weekdays problems: "{Duration} from {Start} is", durations one to seven days."""
    return [
        Problem(
            f"Let's do some days of the week math. {NUMBER_WORDS[d - 1]} {'day' if d == 1 else 'days'} from {day} is",
            start, d, (start + d) % 7, DAYS,
        )  # fmt: skip
        for d in range(1, 8)
        for start, day in enumerate(DAYS)
    ]


def months() -> list[Problem]:
    """The paper's 144 Months problems (it keeps "One months"): "{N} months from {Start} is"."""
    return [
        Problem(f"Let's do some calendar math. {NUMBER_WORDS[n - 1]} months from {month} is", start, n, (start + n) % 12, MONTHS)
        for n in range(1, 13)
        for start, month in enumerate(MONTHS)
    ]


def _successor(names: tuple[str, ...]) -> list[Problem]:
    problems = []
    for length in (2, 3, 4):
        for first in range(len(names)):
            shown = [names[(first + i) % len(names)] for i in range(length)]
            last = (first + length - 1) % len(names)
            problems.append(Problem(", ".join(shown) + ",", last, 1, (last + 1) % len(names), names, length))
    return problems


TASKS = {
    "weekdays": weekdays,
    "months": months,
    "weekday-successor": lambda: _successor(DAYS),
    "month-successor": lambda: _successor(MONTHS),
}


def task(name: str) -> list[Problem]:
    """The problems of a named task; ``ValueError`` listing the known tasks otherwise."""
    if name not in TASKS:
        raise ValueError(f"unknown task {name!r}; choose one of {sorted(TASKS)}.")
    return TASKS[name]()


def positions(tokenizer, problem: Problem, bos: bool) -> dict[str, int]:
    """Token positions in the prompt as the model sees it (after BOS when ``bos``):

    ``operand`` (last token of the start name) and ``final`` (last token).
    """
    last = len(tokens.encode(tokenizer, problem.prompt, bos)) - 1
    return {"operand": tokens.word_position(tokenizer, problem.prompt, problem.names[problem.start], bos), "final": last}


def candidates(tokenizer, problems: list[Problem]) -> torch.Tensor:
    """Answer token ids of every allowed name after each problem's prompt: ``(n_problems, period)``."""
    return torch.tensor(_answers(tokenizer, tuple((p.prompt, p.names, p.separator) for p in problems)))


# A sweep measures the same problems at every layer and for every family of methods: the trained control's 3481
# problems × 59 names took 2 s to tokenise each time, 14 s a chapter.
@functools.lru_cache(maxsize=8)
def _answers(tokenizer, queries: tuple[tuple[str, tuple[str, ...], str], ...]) -> list[list[int]]:
    return [tokens.answer_tokens(tokenizer, *query) for query in queries]


def in_chat_template(tokenizer, problems: list[Problem]) -> list[Problem]:
    """The problems as an instruct model is meant to see them: each prompt the user's turn of the tokenizer's
    chat template, followed by the assistant header, the answer straight after it.

    ``ValueError`` for a tokenizer without a chat template (a base model).
    Positions and answer tokens follow from the new prompts' tokenisation.
    """
    if not getattr(tokenizer, "chat_template", None):
        raise ValueError(f"{type(tokenizer).__name__} has no chat template: the model is a base model, use the plain prompts.")
    return [replace(p, prompt=tokenizer.apply_chat_template([{"role": "user", "content": p.prompt}],
                                                            tokenize=False,  # pragma: no mutate (None is False)
                                                            add_generation_prompt=True), separator="")
            for p in problems]  # fmt: skip


def final_logits(
    model, problems: list[Problem],
    batch_size: int = 32,  # pragma: no mutate (the batch size changes the speed, not the logits)
) -> torch.Tensor:
    """Next-token logits at each prompt's last token: ``(n_problems, d_vocab)``; right-padded batches."""
    tokens, lengths = pad_prompts(model, [p.prompt for p in problems])
    last = torch.tensor(lengths) - 1
    return torch.cat([logits_at_positions(model, tokens[start : start + batch_size], last[start : start + batch_size])
                      for start in range(0, len(problems), batch_size)])  # fmt: skip


def allowed_accuracy(logits: torch.Tensor, allowed: torch.Tensor, answers: np.ndarray) -> float:
    """Share of prompts whose most likely allowed answer is the right one.

    ``logits``: ``(n, vocab)`` after each prompt; ``allowed``: ``(n, period)`` token ids of the allowed answers in
    calendar order; ``answers``: ``(n,)`` the right answer's place in that order.
    """
    return float((top_allowed(logits, allowed) == np.asarray(answers)).mean())


def top_allowed(logits: torch.Tensor, allowed: torch.Tensor) -> np.ndarray:
    """Each prompt's most likely allowed answer, as its place in calendar order: ``(n, vocab)``, ``(n, period)`` →
    ``(n,)``."""
    return logits.gather(1, allowed).argmax(dim=1).numpy()


def evaluate(model, problems: list[Problem], batch_size: int = 32) -> tuple[dict[str, float], pd.DataFrame]:
    """Accuracy over the full vocabulary and among the allowed answers, and a per-problem table."""
    if not problems:
        raise ValueError("no problems to evaluate.")
    names = problems[0].names
    allowed = candidates(model.tokenizer, problems)
    logits = final_logits(model, problems, batch_size)
    answers = np.array([p.answer for p in problems])
    top = logits.argmax(dim=1).numpy()
    restricted = top_allowed(logits, allowed)
    table = pd.DataFrame({
        "prompt": [p.prompt for p in problems],
        "answer": [names[a] for a in answers],
        "top token": [model.tokenizer.decode([t]) for t in top],
        "top allowed": [names[r] for r in restricted],
        "correct (vocab)": top == allowed[np.arange(len(problems)), answers].numpy(),
        "correct (allowed)": restricted == answers,
    })  # fmt: skip
    accuracy = {
        "vocab": float(table["correct (vocab)"].mean()),
        "allowed": float(table["correct (allowed)"].mean()),
        "chance (allowed)": 1 / len(names),
    }
    return accuracy, table
