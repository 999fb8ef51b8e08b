"""Time-aware retrieval helpers: temporal questions, time mentions, relative windows.

Questions such as "When did Ana move?" are answered by turns that *mention* a time
("yesterday", "last Friday", "in May"), so such turns are favoured for them. Queries that
carry a relative window ("last week", "yesterday", "3 days ago") are resolved against a
reference time — the latest timestamp in scope, since a memory store's "now" is the end of
the conversation, not the wall clock.
"""

from __future__ import annotations

import re
from datetime import datetime, timedelta, timezone

DAY = 86400.0

# Each month's full name, then its abbreviations; the one list behind every month pattern.
_MONTH_NAMES = (("january", "jan"), ("february", "feb"), ("march", "mar"), ("april", "apr"), ("may",),
                ("june", "jun"), ("july", "jul"), ("august", "aug"), ("september", "sep", "sept"),
                ("october", "oct"), ("november", "nov"), ("december", "dec"))  # fmt: skip
_MONTHS = "|".join([names[0] for names in _MONTH_NAMES] + [a for names in _MONTH_NAMES for a in names[1:]])
_MONTH_NUMBER = {name: n for n, names in enumerate(_MONTH_NAMES, start=1) for name in names}
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
# The same pattern without IGNORECASE, run on lowercased text: 2.6x faster in CPython's re
# (every partition row is checked when loaded), and equal on every LoCoMo-derived text.
_TIME_MENTION_LOWER = re.compile(TIME_MENTION.pattern)

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
    return _TIME_MENTION_LOWER.search(text.lower()) is not None


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
        (691200.0, 950400.0)
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


_M = rf"(?P<m>{_MONTHS})\.?"
_D = r"(?P<d>[0-3]?\d)(?:st|nd|rd|th)?"
_Y = r"(?P<y>(?:19|20)\d\d)"
_ABSOLUTE = (
    # "16 June, 2023", "16th of June 2023", "16 June"
    re.compile(rf"\b{_D}(?: of)? {_M}(?:,? {_Y})?\b", re.IGNORECASE),
    # "June 16, 2023", "June 16th", "June 16"
    re.compile(rf"\b{_M} {_D}\b(?:,? {_Y}\b)?", re.IGNORECASE),
    # "June 2023", "June, 2023"
    re.compile(rf"\b{_M},? {_Y}\b", re.IGNORECASE),
)


def absolute_window(query: str, reference: float | None = None) -> tuple[float, float] | None:
    """The ``(start, end)`` epoch window an explicit calendar date in ``query`` names.

    A day ("on 16 June, 2023", "June 16th") gives that day, widened by a day before and two
    after (things are talked about shortly after they happen, and the question's date may be
    in another time zone); a month ("in July 2023") gives the month and the first week of the
    next one. A date without a year takes the latest such date not after ``reference``.

    Args:
        query: The query text.
        reference: "Now" for the query (epoch seconds), used only when the year is missing.

    Returns:
        The window, or ``None`` when the query names no date.

    Example:
        >>> from datetime import datetime, timezone
        >>> start, end = absolute_window("What did Ana say on 3 June, 2023?")
        >>> datetime.fromtimestamp(start, timezone.utc).date().isoformat()
        '2023-06-02'
    """
    for n, pattern in enumerate(_ABSOLUTE):
        m = pattern.search(query)
        if m is None:
            continue
        month = _MONTH_NUMBER[m.group("m").lower()]
        groups = m.groupdict()
        year = int(groups["y"]) if groups.get("y") else None
        day = int(groups["d"]) if groups.get("d") else None
        if day is not None and not 1 <= day <= 31:
            continue
        if year is None:
            if reference is None:
                continue
            ref = datetime.fromtimestamp(reference, timezone.utc)
            year = ref.year if (month, day or 1) <= (ref.month, ref.day) else ref.year - 1
        try:
            if n < 2 and day is not None:
                start = datetime(year, month, day, tzinfo=timezone.utc)
                return (start - timedelta(days=1)).timestamp(), (start + timedelta(days=3)).timestamp()
            start = datetime(year, month, 1, tzinfo=timezone.utc)
        except ValueError:  # "31 June": not a date
            continue
        end = datetime(year + (month == 12), month % 12 + 1, 1, tzinfo=timezone.utc) + timedelta(days=7)
        return start.timestamp(), end.timestamp()
    return None
