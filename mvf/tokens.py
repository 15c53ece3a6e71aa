"""Token ids and positions as each model expects them: with or without BOS, and answers read off the prompt.

Two things differ between the book's models. Mistral, Llama and Gemma were
trained with a BOS token at position 0 and run off-distribution without it; the
paper's code prepends it, and the profile's ``bos`` says so (it becomes the
bridge's ``cfg.default_prepend_bos``). And a SentencePiece tokenizer that
prepends "▁" to its input (Mistral 7B v0.1's, Llama 2's) encodes ``" Monday"``
on its own as ``▁`` + ``▁Monday``, so the answer token of a name is taken from
the tokenisation of the whole continuation: the first token that
``prompt + " " + name`` adds after the prompt's tokens.
"""

from __future__ import annotations

import re
from collections.abc import Sequence


def prepends_bos(model) -> bool:
    """Whether the model's inputs start with BOS (its bridge's ``cfg.default_prepend_bos``, set from the profile)."""
    return bool(getattr(model.cfg, "default_prepend_bos", False))


def encode(tokenizer, text: str, bos: bool) -> list[int]:
    """Token ids of ``text``, with the tokenizer's BOS id in front when ``bos``; no other special tokens."""
    return encode_all(tokenizer, [text], bos)[0]


def encode_all(tokenizer, texts: Sequence[str], bos: bool) -> list[list[int]]:
    """:func:`encode` of each text, in one tokenizer call."""
    ids = tokenizer(list(texts), add_special_tokens=False)["input_ids"]
    if not bos:
        return ids
    if tokenizer.bos_token_id is None:
        raise ValueError(f"{type(tokenizer).__name__} has no BOS token; load the model with a profile whose bos is False.")
    return [[tokenizer.bos_token_id, *row] for row in ids]


def word_position(tokenizer, prompt: str, word: str, bos: bool, occurrence: int = -1) -> int:
    """Index, in ``encode(tokenizer, prompt, bos)``, of the last token of ``word``'s chosen occurrence in ``prompt``."""
    starts = [m.start() for m in re.finditer(rf"(?<!\w){re.escape(word)}(?!\w)", prompt)]
    if not starts:
        raise ValueError(f"the word {word!r} does not occur in the prompt {prompt!r}.")
    end = starts[occurrence] + len(word)
    offsets = tokenizer(prompt, return_offsets_mapping=True, add_special_tokens=False)["offset_mapping"]
    return next(i for i, (_, stop) in enumerate(offsets) if stop >= end) + int(bos)  # the first token reaching its end


def _next_token(prompt: str, before: list[int], after: list[int], continuation: str) -> int:
    """The first token of ``after`` (the ids of ``prompt + continuation``) past ``before`` (the prompt's ids)."""
    if after[: len(before)] != before or len(after) == len(before):
        raise ValueError(f"appending {continuation!r} to {prompt!r} re-tokenises the prompt; no next token is the answer.")
    return after[len(before)]


def answer_token(tokenizer, prompt: str, name: str, separator: str = " ") -> int:
    """The first token that ``prompt + separator + name`` adds after the tokens of ``prompt``.

    ``ValueError`` when the continuation changes the prompt's own tokens (a
    merge across the boundary), since no single next token is then the answer.
    """
    before, after = tokenizer([prompt, prompt + separator + name], add_special_tokens=False)["input_ids"]
    return _next_token(prompt, before, after, separator + name)


def answer_tokens(tokenizer, prompt: str, names: Sequence[str], separator: str = " ") -> list[int]:
    """:func:`answer_token` of every name after ``prompt``; ``ValueError`` if two names share their first token."""
    # One call per prompt with all its continuations: one call per string cost most of a sweep over 3481 problems, and
    # one call for every prompt of a sweep at once twice as much again (transformers converts each encoding).
    before, *afters = tokenizer([prompt, *(prompt + separator + name for name in names)],
                                add_special_tokens=False)["input_ids"]  # fmt: skip
    ids = [_next_token(prompt, before, after, separator + name) for name, after in zip(names, afters)]
    if len(set(ids)) != len(ids):
        shared = sorted({tokenizer.convert_ids_to_tokens(i) for i in ids if ids.count(i) > 1})
        raise ValueError(f"after {prompt!r}, names of {list(names)} share first tokens {shared}: answers cannot be told "
                         "apart by one token.")
    return ids
