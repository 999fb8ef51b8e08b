"""How search reads the query: calendar dates it names, speaker names left out of the dense query."""

from __future__ import annotations

import dataclasses
from datetime import datetime, timezone

import pytest

from mem_adapters import AsyncMemoryEngine
from mem_adapters.retrieval import _without_speakers
from mem_adapters.temporal import absolute_window


def _days(window: tuple[float, float] | None) -> tuple[str, str] | None:
    if window is None:
        return None
    start, end = (datetime.fromtimestamp(x, timezone.utc).date().isoformat() for x in window)
    return start, end


def _epoch(text: str) -> float:
    return datetime.fromisoformat(text).replace(tzinfo=timezone.utc).timestamp()


@pytest.mark.parametrize(
    ("query", "days"),
    [
        ("What did Ana say on 3 June, 2023?", ("2023-06-02", "2023-06-06")),
        ("What did Ana paint on October 13, 2023?", ("2023-10-12", "2023-10-16")),
        ("Where was Ben on the 5th of May 2022?", ("2022-05-04", "2022-05-08")),
        ("What happened on Dec. 31st, 2021?", ("2021-12-30", "2022-01-03")),
        # a month runs to the first week of the next one: its events are told a little later
        ("What did Ana do in July 2023?", ("2023-07-01", "2023-08-08")),
        ("Any news in December, 2023?", ("2023-12-01", "2024-01-08")),
    ],
)
def test_absolute_window_reads_days_and_months(query, days):
    assert _days(absolute_window(query)) == days


def test_a_date_without_year_is_the_latest_one_not_after_the_reference():
    reference = _epoch("2024-03-10T12:00:00")
    assert _days(absolute_window("on March 8?", reference)) == ("2024-03-07", "2024-03-11")
    assert _days(absolute_window("on 20 March?", reference)) == ("2023-03-19", "2023-03-23")
    assert absolute_window("on March 8?") is None  # no year and nothing to anchor it to


@pytest.mark.parametrize(
    "query",
    ["What is May doing?", "I may go on Friday", "What did Ana say last week?", "in 2023"],
)
def test_absolute_window_ignores_what_is_not_a_calendar_date(query):
    assert absolute_window(query) is None


def test_an_impossible_day_falls_back_to_its_month():
    assert _days(absolute_window("on 31 June 2023")) == ("2023-06-01", "2023-07-08")


@pytest.mark.parametrize(
    ("query", "speakers", "expected"),
    [
        ("What did Melanie paint?", {"melanie"}, "What did paint?"),
        ("What is Caroline's job?", {"caroline"}, "What is job?"),
        ("What is CAROLINE\u2019s job?", {"caroline"}, "What is job?"),
        ("How do Jon and Gina relax?", {"jon", "gina"}, "How do and relax?"),
        ("Did Jonathan call Jon?", {"jon"}, "Did Jonathan call?"),  # whole words only
        ("Melanie?", {"melanie"}, "Melanie?"),  # nothing left: the query itself
        ("What did Ana paint?", set(), "What did Ana paint?"),
    ],
)
def test_without_speakers(query, speakers, expected):
    assert _without_speakers(query, speakers) == expected


class _Recording:
    """The real embedder, remembering every query it embeds."""

    def __init__(self, inner) -> None:
        self.inner = inner
        self.queries: list[str] = []

    @property
    def identity(self) -> str:
        return self.inner.identity

    @property
    def dimension(self) -> int:
        return self.inner.dimension

    def embed_documents(self, texts):
        return self.inner.embed_documents(texts)

    def embed_query(self, text):
        self.queries.append(text)
        return self.inner.embed_query(text)


TALK = [
    ("Ana", "I painted a lighthouse at dawn with watercolours.", "2023-06-03T10:00:00Z"),
    ("Ben", "Ana, that is lovely. I spent the day fixing my bike.", "2023-06-03T10:01:00Z"),
]


async def test_the_dense_query_leaves_out_the_speakers_it_names(tmp_path, embedder):
    rec = _Recording(embedder)
    eng = AsyncMemoryEngine(tmp_path / "s", embedder=rec)
    try:
        await eng.remember([{"role": r, "text": t, "timestamp": ts} for r, t, ts in TALK], session_id="s1")
        await eng.search("What did Ana paint?", k=2)  # first search: the index is built meanwhile
        assert rec.queries[-1] == "What did paint?"
        rec.queries.clear()
        await eng.search("What did Ana paint?", k=2)  # cached index: embedded once, already stripped
        assert rec.queries == ["What did paint?"]
        rec.queries.clear()
        await eng.search("What did Zoe paint?", k=2)  # not a speaker here: kept
        assert rec.queries == ["What did Zoe paint?"]
        rec.queries.clear()
        eng.retriever.config = dataclasses.replace(eng.retriever.config, dense_without_speakers=False)
        await eng.search("What did Ana paint?", k=2)
        assert rec.queries == ["What did Ana paint?"]
    finally:
        await eng.aclose()


async def test_a_user_not_held_yet_guesses_the_speakers_from_the_tenant_s_held_users(tmp_path, embedder):
    rec = _Recording(embedder)
    eng = AsyncMemoryEngine(tmp_path / "s", embedder=rec)
    try:
        for user in ("alice", "bob"):
            await eng.remember(
                [{"role": r, "text": f"{t} ({user})", "timestamp": ts} for r, t, ts in TALK],
                session_id=f"{user}-1",
                user_id=user,
            )
        carol = [{"role": "Cleo", "text": "Ana's lighthouse painting was in the paper.",
                  "timestamp": "2023-06-04T10:00:00Z"}]  # fmt: skip
        await eng.remember(carol, session_id="carol-1", user_id="carol")
        await eng.search("What did Ana paint?", k=2, user_id="alice")
        rec.queries.clear()
        # Bob's partition is loaded by this search; Ana speaks in alice's too: embedded once.
        found = await eng.search("What did Ana paint?", k=2, user_id="bob")
        assert rec.queries == ["What did paint?"]
        assert found.results[0].text == "I painted a lighthouse at dawn with watercolours. (bob)"
        rec.queries.clear()
        # Ana is no speaker of carol's: the guess is checked once the partition is in.
        found = await eng.search("What did Ana paint?", k=2, user_id="carol")
        assert rec.queries == ["What did paint?", "What did Ana paint?"]
        assert [r.text for r in found.results] == [carol[0]["text"]]
    finally:
        await eng.aclose()


async def test_the_stored_vector_is_the_exact_text_without_its_speaker(tmp_path, embedder):
    import numpy as np

    eng = AsyncMemoryEngine(tmp_path / "s", embedder=embedder)
    try:
        turn = {"role": "Ana", "text": TALK[0][1], "timestamp": TALK[0][2]}
        res = await eng.remember([turn], session_id="s1")
        (mem, *_) = await eng.collections("default")
        got = await mem.get(ids=res.active_ids, include=["embeddings"])
        assert float(np.dot(got["embeddings"][0], embedder.embed_query(TALK[0][1]))) > 0.9999
    finally:
        await eng.aclose()


SESSIONS = {
    # The better textual match is on another day: only the date in the question can move it.
    "spring": ("2023-04-14T18:00:00Z", "We cooked a big pot of lentil soup with carrots and cumin tonight."),
    "summer": ("2023-06-03T18:00:00Z", "Dinner was soup again, nothing special."),
    "autumn": ("2023-10-01T18:00:00Z", "The garden finally gave us pumpkins."),
}


async def _sessions(aengine) -> dict[str, str]:
    ids = {}
    for name, (ts, text) in SESSIONS.items():
        res = await aengine.remember([{"role": "Ana", "text": text, "timestamp": ts}], session_id=name)
        ids[name] = res.active_ids[0]
    return ids


async def test_a_date_in_the_question_lifts_what_was_said_that_day(aengine):
    ids = await _sessions(aengine)
    plain = await aengine.search("What lentil soup did Ana cook?", k=3)
    assert plain.results[0].id == ids["spring"]
    dated = await aengine.search("What lentil soup did Ana cook on 3 June, 2023?", k=3)
    assert dated.results[0].id == ids["summer"]
    aengine.retriever.config = dataclasses.replace(aengine.retriever.config, date_boost=0.0)
    off = await aengine.search("What lentil soup did Ana cook on 3 June, 2023?", k=3)
    assert off.results[0].id == ids["spring"]


async def test_a_month_without_a_year_is_read_against_the_latest_memory(aengine):
    ids = await _sessions(aengine)
    got = await aengine.search("What lentil soup did Ana cook in June?", k=3)
    # "in June" alone is no calendar date (the month needs a day or a year): no lift
    assert got.results[0].id == ids["spring"]
    got = await aengine.search("What lentil soup did Ana cook on June 3?", k=3)
    assert got.results[0].id == ids["summer"]  # June 3 of the latest memory's year (2023)


async def test_a_first_person_question_is_about_the_user(aengine):
    chat = [
        ("user", "Great, but I'm allergic to shellfish, so seafood places are tricky."),
        ("assistant", "Good to know - I'll keep shellfish out of any suggestions."),
        ("user", "I work as a nurse and start night shifts next Monday."),
    ]
    turns = [{"role": r, "text": t, "timestamp": f"2025-03-01T09:0{n}:00Z"} for n, (r, t) in enumerate(chat)]
    res = await aengine.remember(turns, session_id="s")
    got = await aengine.search("What food should I avoid?", k=2)
    assert got.results[0].id == res.active_ids[0]
