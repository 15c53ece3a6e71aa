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
    assert weekdays[9].prompt == "Let's do some days of the week math. Two days from Wednesday is"
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


def test_the_successor_lists_have_two_three_and_four_names():
    for name, period in (("weekday-successor", 7), ("month-successor", 12)):
        problems = tasks.task(name)
        assert sorted({p.listed for p in problems}) == [2, 3, 4] and len(problems) == 3 * period
        assert all(len(p.prompt.rstrip(",").split(", ")) == p.listed for p in problems)


def test_the_user_turn_holds_the_prompt(model):
    plain = tasks.task("months")[5]
    chat = tasks.in_chat_template(model.tokenizer, [plain])[0]
    assert isinstance(chat.prompt, str)
    assert chat.prompt.endswith(f"<|im_start|>user\n{plain.prompt}<|im_end|>\n<|im_start|>assistant\n")


def test_a_tokenizer_without_the_attribute_has_no_chat_template():
    class Bare:
        pass

    with pytest.raises(ValueError, match="^Bare has no chat template: the model is a base model, use the plain prompts.$"):
        tasks.in_chat_template(Bare(), tasks.weekdays())


def test_evaluate_names_its_columns_and_judges_each_problem(model):
    problems = tasks.task("weekday-successor")[:1]
    accuracy, table = tasks.evaluate(model, problems)
    assert list(table.columns) == ["prompt", "answer", "top token", "top allowed", "correct (vocab)", "correct (allowed)"]
    logits = tasks.final_logits(model, problems)[0]
    answer_token = tasks.candidates(model.tokenizer, problems)[0, problems[0].answer]
    row = table.iloc[0]
    assert row["prompt"] == "Monday, Tuesday," and row["answer"] == "Wednesday"
    assert row["correct (vocab)"] == (logits.argmax().item() == answer_token.item())
    assert row["top token"] == model.tokenizer.decode([logits.argmax().item()])
    assert accuracy == {"vocab": float(row["correct (vocab)"]), "allowed": float(row["correct (allowed)"]),
                        "chance (allowed)": 1 / 7}  # fmt: skip
    with pytest.raises(ValueError, match="^no problems to evaluate.$"):
        tasks.evaluate(model, [])


def test_evaluate_runs_the_prompts_in_batches_of_its_batch_size(model, monkeypatch):
    calls = []
    real = tasks.logits_at_positions
    monkeypatch.setattr(tasks, "logits_at_positions", lambda *a, **k: calls.append(1) or real(*a, **k))
    problems = tasks.months()[:33]
    tasks.evaluate(model, problems)
    assert len(calls) == 2  # 32 by default
    tasks.evaluate(model, problems[:5], batch_size=2)
    assert len(calls) == 2 + 3
