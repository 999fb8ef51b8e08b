# ruff: noqa: E501  (regex tables read better unwrapped)
"""Resolve date expressions in a sentence against the time it was said (LLM-free)."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date, datetime, timedelta

_MONTHS = {
    m: i + 1
    for i, m in enumerate(
        [
            "january",
            "february",
            "march",
            "april",
            "may",
            "june",
            "july",
            "august",
            "september",
            "october",
            "november",
            "december",
        ]
    )
}
_MONTHS.update({m[:3]: i for m, i in list(_MONTHS.items())})
_WEEKDAYS = ["monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday"]
_NUM = {
    "a": 1,
    "an": 1,
    "one": 1,
    "two": 2,
    "three": 3,
    "four": 4,
    "five": 5,
    "six": 6,
    "few": 3,
    "couple of": 2,
}

_MONTH_RE = r"(january|february|march|april|may|june|july|august|september|october|november|december|jan|feb|mar|apr|jun|jul|aug|sep|sept|oct|nov|dec)"
_EXPLICIT_DMY = re.compile(rf"\b(\d{{1,2}})(?:st|nd|rd|th)? {_MONTH_RE}\.?,? (\d{{4}})\b", re.I)
_EXPLICIT_MDY = re.compile(rf"\b{_MONTH_RE}\.? (\d{{1,2}})(?:st|nd|rd|th)?,? (\d{{4}})\b", re.I)
_IN_MONTH_YEAR = re.compile(rf"\b(?:in|since|during) {_MONTH_RE} (\d{{4}})\b", re.I)
_IN_YEAR = re.compile(r"\b(?:in|since|back in|during) ((?:19|20)\d{2})\b", re.I)
_AGO = re.compile(
    r"\b(a|an|one|two|three|four|five|six|few|couple of|\d+) (day|week|month|year)s? ago\b", re.I
)
_REL = re.compile(
    r"\b(yesterday|today|tonight|tomorrow|this morning|this afternoon|this evening|last night|"
    r"(?:last|next|this|the past|the other) (?:week|weekend|month|year|day)|"
    r"(?:last|next|this|on) (?:monday|tuesday|wednesday|thursday|friday|saturday|sunday)|"
    r"(?:last|next) (?:mon|tue|tues|wed|thu|thurs|fri|sat|sun)\b)",
    re.I,
)


@dataclass(frozen=True)
class ResolvedDate:
    """A date stated in a sentence.

    Attributes:
        iso: ISO date (``YYYY-MM-DD``), month (``YYYY-MM``) or year (``YYYY``).
        phrase: Human wording, e.g. ``"7 May 2023"`` or ``"the week before 9 June 2023"``.
        day: The (start) day, used as the fact's timestamp.
    """

    iso: str
    phrase: str
    day: date


def _fmt(d: date) -> str:
    return f"{d.day} {d.strftime('%B')} {d.year}"


def _month_back(d: date, n: int) -> date:
    m = d.month - 1 - n
    return date(d.year + m // 12, m % 12 + 1, 1)


def resolve_date(text: str, when: datetime | None) -> ResolvedDate | None:
    """The first date expression of ``text``, resolved against ``when`` (the turn's time).

    Explicit dates need no reference time; relative ones ("yesterday", "last week", "two
    months ago", "next Friday") are resolved only when ``when`` is known.

    Example:
        >>> from datetime import datetime
        >>> resolve_date("I went there yesterday", datetime(2023, 5, 8)).phrase
        '7 May 2023'
    """
    m = _EXPLICIT_DMY.search(text)
    if m:
        try:
            d = date(int(m.group(3)), _MONTHS[m.group(2).lower()[:3]], int(m.group(1)))
            return ResolvedDate(d.isoformat(), _fmt(d), d)
        except ValueError:
            pass
    m = _EXPLICIT_MDY.search(text)
    if m:
        try:
            d = date(int(m.group(3)), _MONTHS[m.group(1).lower()[:3]], int(m.group(2)))
            return ResolvedDate(d.isoformat(), _fmt(d), d)
        except ValueError:
            pass
    m = _IN_MONTH_YEAR.search(text)
    if m:
        d = date(int(m.group(2)), _MONTHS[m.group(1).lower()[:3]], 1)
        return ResolvedDate(d.strftime("%Y-%m"), d.strftime("%B %Y"), d)
    m = _IN_YEAR.search(text)
    if m:
        d = date(int(m.group(1)), 1, 1)
        return ResolvedDate(m.group(1), m.group(1), d)
    if when is None:
        return None
    today = when.date()
    m = _AGO.search(text)
    if m:
        n = int(m.group(1)) if m.group(1).isdigit() else _NUM[m.group(1).lower()]
        unit = m.group(2).lower()
        if unit == "day":
            d = today - timedelta(days=n)
            return ResolvedDate(d.isoformat(), _fmt(d), d)
        if unit == "week":
            d = today - timedelta(weeks=n)
            return ResolvedDate(d.isoformat(), f"{n} week{'s' if n > 1 else ''} before {_fmt(today)}", d)
        if unit == "month":
            d = _month_back(today, n)
            return ResolvedDate(d.strftime("%Y-%m"), d.strftime("%B %Y"), d)
        d = date(today.year - n, 1, 1)
        return ResolvedDate(str(d.year), str(d.year), d)
    m = _REL.search(text)
    if not m:
        return None
    rel = m.group(1).lower()
    if rel in ("today", "tonight", "this morning", "this afternoon", "this evening"):
        return ResolvedDate(today.isoformat(), _fmt(today), today)
    if rel in ("yesterday", "last night", "the other day"):
        d = today - timedelta(days=1)
        return ResolvedDate(d.isoformat(), _fmt(d), d)
    if rel == "tomorrow":
        d = today + timedelta(days=1)
        return ResolvedDate(d.isoformat(), _fmt(d), d)
    if rel in ("last week", "the past week"):
        d = today - timedelta(weeks=1)
        return ResolvedDate(d.isoformat(), f"the week before {_fmt(today)}", d)
    if rel == "last weekend":
        d = today - timedelta(days=(today.weekday() - 5) % 7 or 7)
        return ResolvedDate(d.isoformat(), f"the weekend before {_fmt(today)}", d)
    if rel in ("next week",):
        d = today + timedelta(weeks=1)
        return ResolvedDate(d.isoformat(), f"the week after {_fmt(today)}", d)
    if rel == "next weekend":
        d = today + timedelta(days=(5 - today.weekday()) % 7 or 7)
        return ResolvedDate(d.isoformat(), f"the weekend after {_fmt(today)}", d)
    if rel in ("this week", "this weekend"):
        return ResolvedDate(today.isoformat(), f"the {rel[5:]} of {_fmt(today)}", today)
    if rel in ("last month", "the past month"):
        d = _month_back(today, 1)
        return ResolvedDate(d.strftime("%Y-%m"), d.strftime("%B %Y"), d)
    if rel == "this month":
        d = today.replace(day=1)
        return ResolvedDate(d.strftime("%Y-%m"), d.strftime("%B %Y"), d)
    if rel == "next month":
        d = _month_back(today, -1)
        return ResolvedDate(d.strftime("%Y-%m"), d.strftime("%B %Y"), d)
    if rel in ("last year", "the past year"):
        return ResolvedDate(str(today.year - 1), str(today.year - 1), date(today.year - 1, 1, 1))
    if rel == "this year":
        return ResolvedDate(str(today.year), str(today.year), date(today.year, 1, 1))
    if rel == "next year":
        return ResolvedDate(str(today.year + 1), str(today.year + 1), date(today.year + 1, 1, 1))
    if rel in ("last day", "the past day"):
        d = today - timedelta(days=1)
        return ResolvedDate(d.isoformat(), _fmt(d), d)
    word, day_name = rel.split(" ", 1)
    idx = next((i for i, w in enumerate(_WEEKDAYS) if w.startswith(day_name[:3])), None)
    if idx is None:
        return None
    if word == "next":
        d = today + timedelta(days=(idx - today.weekday()) % 7 or 7)
    elif word == "last":
        d = today - timedelta(days=(today.weekday() - idx) % 7 or 7)
    else:  # "on friday"/"this friday": the nearest past one for past-tense talk is ambiguous; use past
        d = today - timedelta(days=(today.weekday() - idx) % 7)
    return ResolvedDate(d.isoformat(), _fmt(d), d)
