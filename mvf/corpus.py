"""The offline text corpus: natural English from Debian packages plus date-rich text sampled from SmolLM2.

The shipped file ``mvf/data/corpus.jsonl.xz`` holds one JSON object per
document (``{"source": ..., "text": ...}``); ``mvf/data/corpus.json`` holds its
provenance, licences, seed and statistics. ``mvf.commands.build_corpus``
regenerates both.
"""

from __future__ import annotations

import gzip
import itertools
import json
import lzma
import re
from collections import Counter
from collections.abc import Iterator, Sequence
from pathlib import Path

import numpy as np

from mvf.dates import DAYS, MONTHS

DATA = Path(__file__).parent / "data"
CORPUS_FILE = DATA / "corpus.jsonl.xz"
PROVENANCE_FILE = DATA / "corpus.json"

# Debian packages and the files in them that hold running English text.
DEBIAN_SOURCES = {
    "fortunes": ("/usr/share/games/fortunes", "fortune cookies: quotations, jokes, literature (Debian 'fortunes')"),
    "devil": ("/usr/share/dictd/devil.dict.dz", "The Devil's Dictionary, A. Bierce, public domain (Debian 'dict-devil')"),
    "jargon": ("/usr/share/dictd/jargon.dict.dz", "The Jargon File, public domain (Debian 'dict-jargon')"),
    "gcide": ("/usr/share/dictd/gcide.dict.dz", "GNU Collaborative International Dictionary of English, GPL (Debian 'dict-gcide')"),
}

GENRES = (
    "a diary entry", "a letter to a friend", "a short news report", "a weekly schedule",
    "a travel log", "a school newsletter", "an email to a colleague", "a page of a family history",
    "a community notice", "a short story",
)  # fmt: skip
TOPICS = (
    "a garden", "a football club", "a new job", "a wedding", "a storm", "a school trip", "a bakery",
    "a hospital shift", "a library", "moving house", "a birthday", "a concert", "a farm", "a train journey",
)  # fmt: skip


def sampling_prompts() -> list[str]:
    """Instructions for the model, crossing genres, topics, months and weekdays; deterministic order."""
    prompts = []
    for index, (genre, topic) in enumerate(itertools.product(GENRES, TOPICS)):
        for offset in range(4):
            month = MONTHS[(index + 5 * offset) % 12]
            day = DAYS[(index + 3 * offset) % 7]
            prompts.append(
                f"Write {genre} about {topic}. It is set in {month}; mention {day} and the days that follow by name."
            )
    return prompts


# Instructions whose answers name one day (month) per short line: the generated text is dense in calendar names, and
# the start of each list rotates over the names (every name starts equally often over the whole list of prompts).
CALENDAR_FORMATS = (
    "Make a to-do list for one week about {topic}, one line per day, from {day} to {last_day}. "
    "Start each line with the name of the day.",
    "Write a diary of one week about {topic}: one short sentence for each day, starting on {day}. "
    "Begin each sentence with the name of the day.",
    "Write a year-long plan about {topic}, one line per month, from {month} to {last_month}. "
    "Start each line with the name of the month.",
    "Write a list of dates for {topic} over the coming months, starting in {month}, one per line, "
    "each with its weekday and month written in full, like '{day}, 14 {month}'.",
)


def calendar_prompts() -> list[str]:
    """Instructions for calendar-dense lists, crossing formats, topics, start days and start months.

    Deterministic order, shuffled with a fixed seed so that every batch mixes formats and starts.
    """
    prompts = []
    for form, topic, start in itertools.product(CALENDAR_FORMATS, TOPICS, range(84)):
        day, month = DAYS[start % 7], MONTHS[start % 12]
        prompts.append(
            form.format(topic=topic, day=day, last_day=DAYS[(start + 6) % 7], month=month, last_month=MONTHS[(start + 11) % 12])
        )
    return [prompts[i] for i in np.random.default_rng(0).permutation(len(prompts))]


def _fortune_documents(folder: Path) -> Iterator[str]:
    for path in sorted(folder.iterdir()):
        if path.suffix or not path.is_file() or path.is_symlink():
            continue
        text = path.read_text(encoding="utf-8", errors="replace")
        yield from (entry.strip() for entry in text.split("\n%\n") if len(entry.strip()) > 40)


def _dictionary_documents(path: Path) -> Iterator[str]:
    """Entries of a dictd database, with markup and pronunciation keys stripped; one document each.

    Cross-references ``{word}`` keep their word; GCIDE's ``\\pro*nun`ci*a\\tion\\``
    keys and the phonetic ``(...)`` groups after them are dropped.
    """
    text = gzip.decompress(path.read_bytes()).decode("utf-8", errors="replace")
    text = re.sub(r"\{([^}]*)\}", r"\1", text)
    text = re.sub(r"\\[^\\\n]*\\(\s*\([^)]*\))?|<[^>]+>", " ", text)
    for entry in re.split(r"\n(?=\S)", text):
        entry = re.sub(r"[ \t]+", " ", entry).strip()
        if len(entry) > 80:
            yield entry


def debian_documents(name: str) -> Iterator[str]:
    """Documents of one Debian source in ``DEBIAN_SOURCES``; ``FileNotFoundError`` names the package to install."""
    location, _ = DEBIAN_SOURCES[name]
    path = Path(location)
    if not path.exists():
        package = "fortunes" if name == "fortunes" else f"dict-{name}"
        raise FileNotFoundError(f"{path} is missing: install it with `apt-get install {package}`.")
    return _fortune_documents(path) if name == "fortunes" else _dictionary_documents(path)


def load_corpus(path: Path = CORPUS_FILE) -> list[dict]:
    """The shipped corpus: a list of ``{"source", "text"}`` documents; a clear error if missing or corrupt."""
    if not path.exists():
        raise FileNotFoundError(f"{path} is missing; rebuild it with `python -m mvf.commands.build_corpus`.")
    try:
        with lzma.open(path, "rt", encoding="utf-8") as stream:
            return [json.loads(line) for line in stream]
    except (lzma.LZMAError, EOFError, json.JSONDecodeError) as error:
        raise ValueError(f"{path} is corrupted ({error}); rebuild it with `python -m mvf.commands.build_corpus`.") from error


def corpus_texts(path: Path = CORPUS_FILE, exclude: Sequence[str] = ()) -> list[str]:
    """The corpus as a list of document texts, without the documents of the sources in ``exclude``."""
    return [document["text"] for document in load_corpus(path) if document["source"] not in exclude]


def name_counts(texts: list[str]) -> dict[str, int]:
    """How often each day and month name occurs as a whole word (case-sensitive) in the texts."""
    counts = Counter()
    pattern = re.compile(r"\b(" + "|".join(DAYS + MONTHS) + r")\b")
    for text in texts:
        counts.update(pattern.findall(text))
    return {name: counts[name] for name in DAYS + MONTHS}


def provenance() -> dict:
    """The corpus's recorded provenance: sources, licences, seed, token count and name counts."""
    return json.loads(PROVENANCE_FILE.read_text())


def name_contexts(
    texts: list[str], names: tuple[str, ...], per_name: int = 40, seed: int = 0
) -> tuple[list[str], list[str], list[int]]:
    """Sentences from the texts that contain a name: up to ``per_name`` each, chosen with a seeded shuffle.

    Returns the sentences, the name in each and its index in ``names``; ``ValueError`` if a name never occurs.
    """
    pattern = re.compile(r"\b(" + "|".join(names) + r")\b")
    found: dict[str, list[str]] = {name: [] for name in names}
    for text in texts:
        for sentence in re.split(r"(?<=[.!?])\s+|\n\s*\n", text):
            sentence = " ".join(sentence.split())
            hits = set(pattern.findall(sentence))
            if len(hits) == 1 and 20 <= len(sentence) <= 300:
                found[hits.pop()].append(sentence)
    missing = [name for name, sentences in found.items() if not sentences]
    if missing:
        raise ValueError(f"no sentence in the corpus mentions {missing}; use a larger corpus.")
    rng = np.random.default_rng(seed)
    rows = []
    for index, name in enumerate(names):
        unique = sorted(set(found[name]))
        chosen = rng.permutation(len(unique))[:per_name]
        rows.extend((unique[i], name, index) for i in sorted(chosen))
    sentences, words, labels = (list(column) for column in zip(*rows))
    return sentences, words, labels


def calendar_rich_sample(texts: list[str], n_chars: int, seed: int = 0) -> list[str]:
    """Documents that mention a weekday or month first (seeded order), then others, up to ``n_chars`` characters.

    Calendar names are rare in general text; a small discovery run needs them
    to be frequent enough for their SAE features to fire on many tokens.
    """
    pattern = re.compile(r"\b(" + "|".join(DAYS + MONTHS) + r")\b")
    rng = np.random.default_rng(seed)
    mentioning = [t for t in texts if pattern.search(t)]
    others = [t for t in texts if not pattern.search(t)]
    chosen, total = [], 0
    for group in (mentioning, others):
        for index in rng.permutation(len(group)):
            if total >= n_chars:
                return chosen
            chosen.append(group[index])
            total += len(group[index])
    return chosen
