"""Time-aware retrieval helpers: temporal questions, time mentions, relative windows.

Questions such as "When did Ana move?" are answered by turns that *mention* a time
("yesterday", "last Friday", "in May"), so such turns are favoured for them. Queries that
carry a relative window ("last week", "yesterday", "3 days ago") are resolved against a
reference time — the latest timestamp in scope, since a memory store's "now" is the end of
the conversation, not the wall clock.
"""

from __future__ import annotations

import re

DAY = 86400.0

_MONTHS = (
    "january|february|march|april|may|june|july|august|september|october|november|december|"
    "jan|feb|mar|apr|jun|jul|aug|sep|sept|oct|nov|dec"
)
_WEEKDAYS = "monday|tuesday|wednesday|thursday|friday|saturday|sunday|mon|tue|wed|thu|fri|sat|sun"
_UNITS = "day|days|week|weeks|weekend|weekends|month|months|year|years|night|morning|evening"

TEMPORAL_QUESTION = re.compile(
    r"\b(when|what (?:year|month|date|day|time)|which (?:year|month|day)|how long ago|"
    r"since when|what period|how many (?:days|weeks|months|years))\b",
    re.IGNORECASE,
)
"""A question asking for a time."""

TIME_MENTION = re.compile(
    rf"\b(yesterday|today|tonight|tomorrow|recently|lately|ago|"
    rf"(?:last|this|next|past|previous|coming|few|couple of) (?:{_UNITS}|{_WEEKDAYS})|"
    rf"(?:{_MONTHS})\b|(?:{_WEEKDAYS})\b|(?:19|20)\d\d\b|"
    rf"\d+ (?:{_UNITS}) (?:ago|before|later)|the other day|since|"
    rf"\d{{1,2}}(?:st|nd|rd|th)\b|\d{{1,2}}[/.-]\d{{1,2}}(?:[/.-]\d{{2,4}})?)",
    re.IGNORECASE,
)
"""An explicit or relative time expression in a text."""

_NUMBER_WORDS = {"a": 1, "an": 1, "one": 1, "two": 2, "three": 3, "four": 4, "five": 5, "six": 6,
                 "seven": 7, "eight": 8, "nine": 9, "ten": 10, "couple of": 2, "few": 3}  # fmt: skip
_AGO = re.compile(
    r"\b(\d+|a|an|one|two|three|four|five|six|seven|eight|nine|ten|couple of|few)\s+"
    r"(day|week|month|year)s?\s+ago\b",
    re.IGNORECASE,
)
_RELATIVE = {
    "yesterday": (2 * DAY, 0.0),
    "today": (1 * DAY, 0.0),
    "tonight": (1 * DAY, 0.0),
    "last night": (1.5 * DAY, 0.0),
    "this week": (7 * DAY, 0.0),
    "last week": (14 * DAY, 5 * DAY),
    "last weekend": (10 * DAY, 1 * DAY),
    "this month": (31 * DAY, 0.0),
    "last month": (62 * DAY, 20 * DAY),
    "this year": (366 * DAY, 0.0),
    "last year": (2 * 366 * DAY, 300 * DAY),
    "recently": (30 * DAY, 0.0),
    "lately": (30 * DAY, 0.0),
}
_UNIT_SECONDS = {"day": DAY, "week": 7 * DAY, "month": 30.5 * DAY, "year": 365.25 * DAY}


def is_temporal_question(query: str) -> bool:
    """Whether the query asks for a time ("when...", "what year...", "how long ago...").

    Example:
        >>> is_temporal_question("When did Melanie paint a sunrise?")
        True
    """
    return TEMPORAL_QUESTION.search(query) is not None


def mentions_time(text: str) -> bool:
    """Whether the text carries a time expression.

    Example:
        >>> mentions_time("I went to a support group yesterday"), mentions_time("I love it")
        (True, False)
    """
    return TIME_MENTION.search(text) is not None


def relative_window(query: str, reference: float) -> tuple[float, float] | None:
    """The ``(start, end)`` epoch window a relative expression in ``query`` points at.

    Windows are generous (a "last week" event may be talked about a few days later).

    Args:
        query: The query text.
        reference: "Now" for the query (epoch seconds), usually the latest timestamp in scope.

    Returns:
        The window, or ``None`` when the query has no relative expression.

    Example:
        >>> relative_window("what did I do yesterday?", 10 * 86400)
        (691200.0, 864000.0)
    """
    text = query.lower()
    m = _AGO.search(text)
    if m:
        n = int(m.group(1)) if m.group(1).isdigit() else _NUMBER_WORDS[m.group(1)]
        span = n * _UNIT_SECONDS[m.group(2)]
        return reference - span * 1.5 - DAY, reference - span * 0.5 + DAY
    for phrase, (back, until) in _RELATIVE.items():
        if re.search(rf"\b{phrase}\b", text):
            return reference - back, reference - until + DAY
    return None
