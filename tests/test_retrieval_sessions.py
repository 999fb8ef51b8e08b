"""Session-level ranking: grouped BM25, the session prior and the session-diverse head."""

from __future__ import annotations

import dataclasses

from mem_adapters.lexical import BM25Index, tokenize
from mem_adapters.retrieval import RetrievalConfig


def _index() -> BM25Index:
    ix = BM25Index()
    for doc_id, text in [
        ("a1", "We flew to Paris in June."),
        ("a2", "I bought croissants every morning."),
        ("b1", "Paris is a big city, Paris is crowded."),
        ("c1", "My dog chased the mailman."),
    ]:
        ix.add(doc_id, text)
    return ix


def test_group_scores_sum_evidence_across_a_groups_documents():
    ix = _index()
    lengths = {"a": ix.doc_len("a1") + ix.doc_len("a2"), "b": ix.doc_len("b1"), "c": ix.doc_len("c1")}
    got = ix.group_scores(tokenize("Paris croissants"), lambda d: d[0], lengths)
    # Group a holds both words, in two different documents; b only repeats one of them.
    assert got["a"] > got["b"] > 0
    assert "c" not in got


def test_group_scores_leave_out_documents_mapped_to_none():
    ix = _index()
    lengths = {"a": 10, "b": 10}
    got = ix.group_scores(tokenize("croissants"), lambda d: None if d == "a2" else d[0], lengths)
    assert got == {}
    assert ix.group_scores(tokenize("Paris"), lambda d: d[0], {}) == {}


async def _two_sessions(aengine):
    # s1: three turns about the marathon; s2: one weaker match.
    await aengine.remember(
        [
            {
                "role": "Ana",
                "text": "The marathon training plan starts Monday.",
                "timestamp": "2024-03-01T10:00:00Z",
            },
            {
                "role": "Ben",
                "text": "Marathon shoes and marathon gels are ready.",
                "timestamp": "2024-03-01T10:01:00Z",
            },
            {
                "role": "Ana",
                "text": "The marathon route passes the river.",
                "timestamp": "2024-03-01T10:02:00Z",
            },
        ],
        session_id="s1",
        user_id="u1",
    )
    await aengine.remember(
        [
            {"role": "Ana", "text": "After the marathon I will rest.", "timestamp": "2024-04-01T10:00:00Z"},
            {"role": "Ben", "text": "I repainted the kitchen in blue.", "timestamp": "2024-04-01T10:01:00Z"},
        ],
        session_id="s2",
        user_id="u1",
    )


async def test_head_of_results_spreads_over_sessions(aengine):
    await _two_sessions(aengine)
    res = await aengine.search("marathon", k=2)
    assert {r.session_id for r in res.results} == {"s1", "s2"}


async def test_without_head_diversity_the_best_session_fills_the_head(aengine):
    await _two_sessions(aengine)
    aengine.retriever.config = dataclasses.replace(RetrievalConfig(), head_size=0, session_diversity=1.0)
    res = await aengine.search("marathon", k=2)
    assert [r.session_id for r in res.results] == ["s1", "s1"]


async def test_session_prior_lifts_turns_of_the_session_matching_as_a_whole(aengine):
    # Each question word appears in one turn only; s1 holds both words (in different turns),
    # s2 holds one of them in a turn that, alone, matches as well as any s1 turn.
    await aengine.remember(
        [
            {"role": "Ana", "text": "We visited Lisbon.", "timestamp": "2024-03-01T10:00:00Z"},
            {"role": "Ben", "text": "The pastries were great.", "timestamp": "2024-03-01T10:01:00Z"},
        ],
        session_id="s1",
        user_id="u1",
    )
    await aengine.remember(
        [{"role": "Ana", "text": "Lisbon trams are yellow.", "timestamp": "2024-04-01T10:00:00Z"}],
        session_id="s2",
        user_id="u1",
    )
    base = dataclasses.replace(RetrievalConfig(), head_size=0, session_diversity=1.0, neighbour_share=0.0)
    aengine.retriever.config = dataclasses.replace(base, session_boost=0.0)
    flat = {r.text: r.score for r in (await aengine.search("Lisbon pastries", k=3)).results}
    aengine.retriever.config = dataclasses.replace(base, session_boost=1.0)
    lifted = {r.text: r.score for r in (await aengine.search("Lisbon pastries", k=3)).results}
    ratio_s1 = lifted["We visited Lisbon."] / flat["We visited Lisbon."]
    ratio_s2 = lifted["Lisbon trams are yellow."] / flat["Lisbon trams are yellow."]
    assert ratio_s1 > ratio_s2


async def test_session_prior_ignores_filtered_out_turns(aengine):
    # With role=Ana, Ben's turn must not make s1 look like the better session.
    await aengine.remember(
        [
            {"role": "Ana", "text": "We visited Lisbon.", "timestamp": "2024-03-01T10:00:00Z"},
            {"role": "Ben", "text": "The pastries were great.", "timestamp": "2024-03-01T10:01:00Z"},
        ],
        session_id="s1",
        user_id="u1",
    )
    await aengine.remember(
        [{"role": "Ana", "text": "We visited Lisbon by train.", "timestamp": "2024-04-01T10:00:00Z"}],
        session_id="s2",
        user_id="u1",
    )
    base = dataclasses.replace(RetrievalConfig(), head_size=0, session_diversity=1.0, neighbour_share=0.0)
    aengine.retriever.config = dataclasses.replace(base, session_boost=1.0)
    res = await aengine.search("Lisbon pastries", k=3, filters={"role": "Ana"})
    scores = {r.session_id: r.score for r in res.results}
    assert set(scores) == {"s1", "s2"}
    unfiltered = {r.session_id: r.score for r in (await aengine.search("Lisbon pastries", k=3)).results
                  if r.role == "Ana"}  # fmt: skip
    # Unfiltered, s1 is the better session and its Ana turn is lifted above s2's.
    assert unfiltered["s1"] > unfiltered["s2"]
    assert abs(scores["s1"] - scores["s2"]) < abs(unfiltered["s1"] - unfiltered["s2"])


async def test_grouped_bm25_from_the_cached_session_arrays_equals_a_fresh_count(aengine):
    await _two_sessions(aengine)
    part = await (await aengine.data()).partition("default", "u1")
    member = part.alive.data[: part.n] & (part.kind.data[: part.n] == 0)
    terms = tokenize("marathon kitchen river")
    cached = part.group_bm25(terms, member, part.session_lengths())
    fresh = part.group_bm25(terms, member, dict(part.session_lengths()))  # not the cached dict
    assert cached == fresh and len(cached) == 2
    # A partition read from a snapshot written before the arrays were cached holds two fields.
    part._lengths = part._lengths[:2]
    assert part.group_bm25(terms, member, part.session_lengths()) == fresh
    assert len(part._lengths) == 3
