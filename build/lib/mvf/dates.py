"""Day and month names, and varied everyday sentences that use them.

The sentences are written by hand to vary the syntax, the position of the
name and the topic; each frame has one ``{name}`` slot.
"""

from __future__ import annotations

DAYS = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")
MONTHS = (
    "January", "February", "March", "April", "May", "June",
    "July", "August", "September", "October", "November", "December",
)  # fmt: skip

DAY_FRAMES = (
    "The meeting has been moved to {name} afternoon.",
    "We always go swimming on {name}.",
    "{name} is the busiest day at the bakery.",
    "I will call you back on {name} morning.",
    "The library closes early every {name}.",
    "Her flight lands late on {name} night.",
    "Rain is expected from {name} onwards.",
    "My brother visits us each {name} after work.",
    "The report is due by {name} at noon.",
    "On {name} the market sells fresh fish.",
    "Let's have dinner together next {name}.",
    "The shop was closed last {name} because of the storm.",
    "They got married on a sunny {name} in spring.",
    "Piano lessons start again this {name}.",
    "Nobody answered the phone on {name}.",
    "The match was postponed until {name}.",
    "I hate waking up early on {name}.",
    "By {name} the parcel should have arrived.",
    "The museum is free to visit every {name}.",
    "We planted the tomatoes on {name}, just before the frost.",
)

MONTH_FRAMES = (
    "The festival takes place every year in {name}.",
    "We moved into the new house in {name}.",
    "{name} was unusually cold this year.",
    "Her birthday falls in early {name}.",
    "The garden looks its best in {name}.",
    "Prices went up sharply in {name}.",
    "The school term ends in late {name}.",
    "I started my new job last {name}.",
    "Tickets go on sale in {name}.",
    "In {name} the river often floods the lower fields.",
    "The baby is due in {name}.",
    "We are planning a trip to the coast next {name}.",
    "The bridge was finally opened in {name} 1932.",
    "By {name} the harvest was over.",
    "Sales in {name} were the best in a decade.",
    "They first met one rainy evening in {name}.",
    "The elections were held on the third of {name}.",
    "Snow rarely falls here before {name}.",
    "The contract runs until the end of {name}.",
    "Birds begin to nest around {name}.",
)


def calendar_sentences(kind: str) -> tuple[list[str], list[str], list[int]]:
    """Sentences, the name used in each, and its index (0 = Monday / January) for ``kind`` 'days' or 'months'."""
    if kind not in ("days", "months"):
        raise ValueError(f"unknown kind {kind!r}; choose 'days' or 'months'.")
    names, frames = (DAYS, DAY_FRAMES) if kind == "days" else (MONTHS, MONTH_FRAMES)
    rows = [(frame.format(name=name), name, index) for frame in frames for index, name in enumerate(names)]
    sentences, words, labels = (list(column) for column in zip(*rows))
    return sentences, words, labels
