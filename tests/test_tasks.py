"""mvf.tasks: the paper's problem sets, positions from two different tokenizers, and evaluation."""

import pytest
from tokenizers import Tokenizer, models, pre_tokenizers, trainers
from transformers import PreTrainedTokenizerFast

from mvf import tasks, tokens
from mvf.dates import DAYS, MONTHS


def test_problem_sets_match_the_paper():
    weekdays, months = tasks.weekdays(), tasks.months()
    assert len(weekdays) == 49 and len(months) == 144
    assert weekdays[0].prompt == "Let's do some days of the week math. One day from Monday is"
    assert months[0].prompt == "Let's do some calendar math. One months from January is"
    assert all(DAYS[(p.start + p.shift) % 7] == DAYS[p.answer] for p in weekdays)
    assert {(p.start, p.shift) for p in months} == {(s, n) for s in range(12) for n in range(1, 13)}
    successor = tasks.task("weekday-successor")
    assert successor[0].prompt == "Monday, Tuesday," and DAYS[successor[0].answer] == "Wednesday"


def _word_level_tokenizer() -> PreTrainedTokenizerFast:
    """A second, very different tokenizer: whole words and punctuation, trained on the prompts."""
    tokenizer = Tokenizer(models.WordLevel(unk_token="[UNK]"))
    tokenizer.pre_tokenizer = pre_tokenizers.Whitespace()
    corpus = [p.prompt for name in tasks.TASKS for p in tasks.task(name)]
    tokenizer.train_from_iterator(corpus, trainers.WordLevelTrainer(special_tokens=["[UNK]"]))
    return PreTrainedTokenizerFast(tokenizer_object=tokenizer)


@pytest.mark.parametrize("which", ["smollm2", "word-level"])
def test_positions_come_from_the_tokenisation(model, which):
    tokenizer = model.tokenizer if which == "smollm2" else _word_level_tokenizer()
    for problem in tasks.weekdays()[::7] + tasks.months()[::13] + tasks.task("month-successor")[::5]:
        ids = tokenizer(problem.prompt, add_special_tokens=False)["input_ids"]
        found = tasks.positions(tokenizer, problem, bos=False)
        piece = tokenizer.decode([ids[found["operand"]]]).strip()
        assert piece and problem.names[problem.start].endswith(piece)
        assert found["final"] == len(ids) - 1


def test_evaluate_reports_both_accuracies_and_a_table(model):
    accuracy, table = tasks.evaluate(model, tasks.task("month-successor"))
    assert len(table) == 36
    assert accuracy["allowed"] == table["correct (allowed)"].mean()
    assert accuracy["allowed"] > 3 * accuracy["chance (allowed)"]  # the embedded model continues month lists


def test_unknown_task():
    with pytest.raises(ValueError, match="weekdays"):
        tasks.task("years")
    assert len(MONTHS) == 12


def test_the_chat_template_wraps_the_prompt_and_the_answer_follows_the_assistant_header(model):
    plain = tasks.task("weekdays")[9]
    chat = tasks.in_chat_template(model.tokenizer, [plain])[0]
    assert plain.prompt in chat.prompt and chat.prompt.endswith("assistant\n") and chat.separator == ""
    ids = tasks.candidates(model.tokenizer, [chat])[0]
    assert [model.tokenizer.decode([i]) for i in ids] == list(plain.names)
    found = tasks.positions(model.tokenizer, chat, bos=False)
    assert model.tokenizer.decode([tokens.encode(model.tokenizer, chat.prompt, False)[found["operand"]]]).strip() == "Wednesday"


def test_a_base_model_has_no_chat_template():
    from mvf.book import paper_tokenizers

    with pytest.raises(ValueError, match="no chat template"):
        tasks.in_chat_template(paper_tokenizers.gpt2(), tasks.weekdays())
