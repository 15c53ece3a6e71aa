"""mvf.dates: every name in every frame, with the right label."""

import pytest

from mvf import dates


@pytest.mark.parametrize("kind, names, frames", [("days", dates.DAYS, dates.DAY_FRAMES), ("months", dates.MONTHS, dates.MONTH_FRAMES)])
def test_every_name_appears_in_every_frame(kind, names, frames):
    sentences, words, labels = dates.calendar_sentences(kind)
    assert len(sentences) == len(names) * len(frames)
    assert all(word in sentence for sentence, word in zip(sentences, words))
    assert all(names[label] == word for label, word in zip(labels, words))


def test_unknown_kind():
    with pytest.raises(ValueError, match="days"):
        dates.calendar_sentences("weeks")
