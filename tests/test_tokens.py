"""mvf.tokens with the paper's real tokenizers, offline: answer ids, operand/final positions and BOS, for every task."""

import functools
import shutil
import tempfile
from pathlib import Path

import pytest

from mvf import tasks, tokens
from mvf.book import paper_tokenizers

TOKENIZERS = ["mistral (tokenizer.model)", "mistral (hub Metaspace normaliser)", "llama 3"]


@functools.cache
def _paper_tokenizer(name: str):
    """A paper tokenizer built once per process (seconds each; mutmut's forked workers inherit it). Tests only read
    it: one that changes a tokenizer builds its own."""
    if name == "llama 3":
        return paper_tokenizers.llama3()
    folder = Path(tempfile.mkdtemp(prefix="mistral-"))
    try:
        return paper_tokenizers.mistral(folder, metaspace_normaliser="Metaspace" in name)
    finally:
        shutil.rmtree(folder)  # the tokenizer holds its model in memory


@pytest.fixture(scope="module", params=TOKENIZERS)
def tokenizer(request):
    return _paper_tokenizer(request.param)


def _piece(tokenizer, token_id: int) -> str:
    return tokenizer.decode([token_id]).strip()


@pytest.mark.parametrize("name", list(tasks.TASKS))
def test_answers_are_the_names_first_tokens_after_the_prompt(tokenizer, name):
    for problem in tasks.task(name):
        ids = tokens.answer_tokens(tokenizer, problem.prompt, problem.names)
        assert len(set(ids)) == problem.period
        for token_id, day in zip(ids, problem.names):
            assert _piece(tokenizer, token_id) and day.startswith(_piece(tokenizer, token_id))


@pytest.mark.parametrize("name", list(tasks.TASKS))
@pytest.mark.parametrize("bos", [True, False])
def test_positions_index_the_model_input_with_and_without_bos(tokenizer, name, bos):
    for problem in tasks.task(name):
        ids = tokens.encode(tokenizer, problem.prompt, bos)
        assert (ids[0] == tokenizer.bos_token_id) == bos
        found = tasks.positions(tokenizer, problem, bos)
        assert found["final"] == len(ids) - 1
        piece = _piece(tokenizer, ids[found["operand"]])
        assert piece and problem.names[problem.start].endswith(piece), (problem.prompt, found)


def test_the_metaspace_normaliser_breaks_the_old_first_token_of_a_spaced_name():
    """Why answers come from the whole continuation: alone, " Monday" starts with a bare "▁▁" under the hub's normaliser."""
    hub = _paper_tokenizer("mistral (hub Metaspace normaliser)")
    alone = {hub(" " + day, add_special_tokens=False)["input_ids"][0] for day in tasks.task("weekdays")[0].names}
    assert len(alone) == 1
    assert tokens.answer_token(hub, "Two days from Monday is", "Wednesday") == hub.convert_tokens_to_ids("▁Wednesday")


def test_bos_is_refused_for_a_tokenizer_without_one():
    tokenizer = paper_tokenizers.llama3()
    tokenizer.bos_token = None
    with pytest.raises(ValueError, match="no BOS token"):
        tokens.encode(tokenizer, "Monday", True)


def test_bos_follows_the_models_setting():
    from types import SimpleNamespace

    assert tokens.prepends_bos(SimpleNamespace(cfg=SimpleNamespace(default_prepend_bos=True))) is True
    assert tokens.prepends_bos(SimpleNamespace(cfg=SimpleNamespace(default_prepend_bos=False))) is False
    assert tokens.prepends_bos(SimpleNamespace(cfg=SimpleNamespace())) is False  # a config without the setting


def test_a_words_position_is_its_chosen_occurrence_as_a_whole_word():
    tokenizer = _paper_tokenizer("llama 3")
    prompt = "Mondays are slow. Monday, then Monday again."
    ids = tokenizer(prompt, add_special_tokens=False)["input_ids"]
    first, last = (tokens.word_position(tokenizer, prompt, "Monday", False, occurrence=o) for o in (0, -1))
    assert tokenizer.decode(ids[first]).strip() == tokenizer.decode(ids[last]).strip() == "Monday"
    assert tokenizer.decode(ids[: first + 1]) == "Mondays are slow. Monday"  # not inside "Mondays"
    assert tokenizer.decode(ids[: last + 1]) == "Mondays are slow. Monday, then Monday"
    assert tokens.word_position(tokenizer, prompt, "Monday", True, occurrence=0) == first + 1
    with pytest.raises(ValueError, match="'Sunday' does not occur"):
        tokens.word_position(tokenizer, prompt, "Sunday", False)


def test_names_that_share_a_first_token_are_refused():
    tokenizer = _paper_tokenizer("llama 3")
    with pytest.raises(ValueError, match=r"share first tokens \['ĠMonday'\]"):
        tokens.answer_tokens(tokenizer, "The day is", ["Monday", "Mondayish", "Monkey", "Friday"])


def test_a_continuation_that_retokenises_the_prompt_is_refused():
    tokenizer = _paper_tokenizer("llama 3")
    with pytest.raises(ValueError, match="re-tokenises the prompt"):
        tokens.answer_token(tokenizer, "The day is Mon", "day", separator="")
    with pytest.raises(ValueError, match="re-tokenises the prompt"):
        tokens.answer_token(tokenizer, "The day is", "", separator="")
    assert tokens.answer_token(tokenizer, "The day is", "Monday", separator=" ") == tokenizer.convert_tokens_to_ids("ĠMonday")


def test_a_tokenizer_that_adds_bos_by_default_gets_it_once(bos_adding_tokenizer):
    """The hub's Llama 3 tokenizer puts BOS in front of every call unless told not to: answers, positions and
    encodings must come out as with a tokenizer that does not."""
    tokenizer, plain = bos_adding_tokenizer, _paper_tokenizer("llama 3")
    problem = tasks.weekdays()[9]
    assert tokens.answer_token(tokenizer, problem.prompt, "Friday") == tokens.answer_token(plain, problem.prompt, "Friday")
    assert tokens.answer_tokens(tokenizer, problem.prompt, problem.names) == tokens.answer_tokens(plain, problem.prompt, problem.names)
    for bos_first in (False, True):
        assert tokens.encode(tokenizer, problem.prompt, bos_first) == tokens.encode(plain, problem.prompt, bos_first)
        assert tasks.positions(tokenizer, problem, bos_first) == tasks.positions(plain, problem, bos_first)
