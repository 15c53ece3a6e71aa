"""mvf.corpus: the shipped corpus is as large as its provenance says, and damage is reported."""

import lzma
import re
from collections import Counter

import pytest

from mvf import corpus, dates


@pytest.fixture(scope="module")
def texts():
    return corpus.corpus_texts()


def test_corpus_holds_a_million_tokens_as_recorded(model, texts):
    counted = sum(len(ids) + 1 for ids in model.tokenizer(texts, add_special_tokens=False)["input_ids"])
    record = corpus.provenance()
    assert counted == record["tokens"]
    assert counted >= 1_000_000
    assert set(record["tokens_by_source"]) == set(corpus.DEBIAN_SOURCES) | {"smollm2-samples", "smollm2-calendar-lists"}


def test_name_counts_match_provenance_and_every_name_occurs(texts):
    counts = corpus.name_counts(texts)
    assert counts == corpus.provenance()["name_counts"]
    assert min(counts.values()) > 0
    by_source = corpus.provenance()["name_counts_by_source"]
    assert {name: sum(table[name] for table in by_source.values()) for name in counts} == counts


def test_calendar_prompts_rotate_every_start_evenly():
    prompts = corpus.calendar_prompts()
    assert prompts == corpus.calendar_prompts()
    starts = Counter(re.search(r"(?:from|starting on|starting in) (\w+)", p).group(1) for p in prompts)
    days, months = [starts[n] for n in dates.DAYS], [starts[n] for n in dates.MONTHS]
    assert len(set(days)) == 1 and len(set(months)) == 1 and sum(days) + sum(months) == len(prompts)


def test_name_contexts_are_balanced_and_labelled(texts):
    sentences, words, labels = corpus.name_contexts(texts, dates.DAYS, per_name=5)
    assert len(sentences) == 35
    assert all(word in sentence and dates.DAYS[label] == word for sentence, word, label in zip(sentences, words, labels))
    assert corpus.name_contexts(texts, dates.DAYS, per_name=5) == (sentences, words, labels)


def test_name_contexts_need_every_name():
    with pytest.raises(ValueError, match="Sunday"):
        corpus.name_contexts(["It rained on Monday."], ("Monday", "Sunday"))


def test_damaged_or_missing_corpus_is_reported(tmp_path):
    with pytest.raises(FileNotFoundError, match="build_corpus"):
        corpus.load_corpus(tmp_path / "absent.jsonl.xz")
    damaged = tmp_path / "corpus.jsonl.xz"
    damaged.write_bytes(corpus.CORPUS_FILE.read_bytes()[:5000])
    with pytest.raises(ValueError, match="corrupted"):
        corpus.load_corpus(damaged)
    with lzma.open(damaged, "wt") as stream:
        stream.write('{"source": "x", "text": "fine"}\n{not json\n')
    with pytest.raises(ValueError, match="corrupted"):
        corpus.load_corpus(damaged)


def test_a_source_can_be_left_out(texts):
    kept = corpus.corpus_texts(exclude=("smollm2-calendar-lists",))
    lists = [d["text"] for d in corpus.load_corpus() if d["source"] == "smollm2-calendar-lists"]
    assert len(kept) == len(texts) - len(lists) > 0 and lists and not set(lists) & set(kept)
