"""Dense candidates of a large partition from Chroma's vector index (``RetrievalConfig.ann_min_rows``).

Real embedder, real embedded Chroma: the partition is made "large" by lowering the threshold.
"""

from __future__ import annotations

import dataclasses
import random
from typing import Any

import pytest

import mem_adapters.data.layer as layer_mod
from mem_adapters import AsyncMemoryEngine

PEOPLE = ["Ana", "Ben", "Cleo", "Dev", "Eli"]
THINGS = ["a lighthouse painting", "a road bike", "sourdough bread", "a chess opening", "a garden shed",
          "a marathon plan", "a cello piece", "a camping trip", "a pottery class", "a job interview",
          "an adopted cat", "a novel about sailors", "a vegetable patch", "a broken laptop"]  # fmt: skip
PLACES = ["Lisbon", "the office", "the lake", "grandma's house", "the gym", "a cafe", "the library"]
QUERIES = ["Who fixed a bike?", "pottery and ceramics", "What did Ana cook?", "trip to the lake",
           "job interview nerves", "a pet cat", "music practice", "books about the sea"]  # fmt: skip


def _turns(rng: random.Random, n: int, day: int) -> list[dict[str, Any]]:
    return [
        {
            "role": rng.choice(PEOPLE),
            "text": f"{rng.choice(['I', 'We'])} spent time on {rng.choice(THINGS)} at {rng.choice(PLACES)}, "
            f"then talked about {rng.choice(THINGS)} ({i}).",
            "timestamp": f"2024-03-{day:02d}T{10 + i // 60:02d}:{i % 60:02d}:00Z",
        }
        for i in range(n)
    ]


class _RecordingQueries:
    """The real collection, remembering the keyword arguments of every ``query``."""

    def __init__(self, inner: Any) -> None:
        self.inner, self.queries = inner, []

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)

    def query(self, *args: Any, **kwargs: Any) -> Any:
        self.queries.append(kwargs)
        return self.inner.query(*args, **kwargs)


@pytest.fixture
async def big(tmp_path, embedder):
    """u1 holds 240 records, u2 holds 100, in one tenant."""
    rng = random.Random(7)
    eng = AsyncMemoryEngine(tmp_path / "s", embedder=embedder)
    for s in range(4):
        await eng.remember(_turns(rng, 60, s + 1), session_id=f"u1-s{s}", user_id="u1")
    for s in range(2):
        await eng.remember(_turns(rng, 50, s + 10), session_id=f"u2-s{s}", user_id="u2")
    yield eng
    await eng.aclose()


def _ids(res) -> list[str]:
    return [r.id for r in res.results]


async def test_a_large_partition_takes_its_dense_candidates_from_chroma_unfiltered_and_ranks_the_same(big):
    exact = [await big.search(q, k=10, user_id="u1") for q in QUERIES]
    data = await big.data()
    assert data.ann_queries == 0
    mem, _ = await big.collections("default")
    spy = _RecordingQueries(mem.inner)
    mem.inner = spy
    big.retriever.config = dataclasses.replace(big.retriever.config, ann_min_rows=0)
    approx = [await big.search(q, k=10, user_id="u1") for q in QUERIES]
    assert data.ann_queries == len(QUERIES) == len(spy.queries)
    for kw in spy.queries:
        assert "where" not in kw and kw["include"] == []
        # 2 x 60 candidates, by tenant / scope: 2 * 60 * 340 / 240
        assert kw["n_results"] == 170
    # 340 records: Chroma's HNSW finds the true nearest, so the candidates and the ranking agree.
    assert [_ids(r) for r in approx] == [_ids(r) for r in exact]
    assert all(set(r.user_id for r in res.results) == {"u1"} for res in approx)
    # The scores are the exact pass's over the same candidates.
    assert [[x.score for x in r.results] for r in approx] == [[x.score for x in r.results] for r in exact]


async def test_a_scope_that_is_a_small_share_or_narrow_is_scored_exactly(big, monkeypatch):
    data = await big.data()
    exact_u2 = await big.search("a pet cat", k=10, user_id="u2")  # 100 rows: below the default
    assert data.ann_queries == 0
    big.retriever.config = dataclasses.replace(big.retriever.config, ann_min_rows=0)
    # u2 holds 100 of 340: 2 x 60 x 3.4 = 408 candidates, more than the tenant holds.
    res = await big.search("a pet cat", k=10, user_id="u2")
    assert data.ann_queries == 0 and _ids(res) == _ids(exact_u2)
    # One session of u1 (60 rows) is no more than the 60 candidates wanted: nothing to gain.
    await big.search("a pet cat", k=10, user_id="u1", filters={"session_id": "u1-s0"})
    assert data.ann_queries == 0
    # Over-fetched once only, u2 needs 1 x 60 x 3.4 = 204 candidates: Chroma is asked, unless
    # that is past the cap.
    monkeypatch.setattr(layer_mod, "ANN_OVERFETCH", 1.0)
    monkeypatch.setattr(layer_mod, "ANN_MAX_FETCH", 203)
    await big.search("a pet cat", k=10, user_id="u2")
    assert data.ann_queries == 0
    monkeypatch.setattr(layer_mod, "ANN_MAX_FETCH", 204)
    res = await big.search("a pet cat", k=10, user_id="u2")
    assert data.ann_queries == 1 and {r.user_id for r in res.results} == {"u2"}


@pytest.mark.server
async def test_on_a_chroma_server_the_index_s_candidates_rank_as_the_exact_pass(chroma_server, embedder):
    host, port = chroma_server
    tenant = f"ann{random.getrandbits(40)}"
    eng = AsyncMemoryEngine(host=host, port=port, embedder=embedder)
    rng = random.Random(11)
    try:
        for s in range(3):
            await eng.remember(_turns(rng, 60, s + 1), session_id=f"s{s}", user_id="u1", tenant_id=tenant)
        await eng.remember(_turns(rng, 40, 9), session_id="o", user_id="u2", tenant_id=tenant)
        exact = [await eng.search(q, k=10, user_id="u1", tenant_id=tenant) for q in QUERIES[:4]]
        data = await eng.data()
        assert data.ann_queries == 0
        eng.retriever.config = dataclasses.replace(eng.retriever.config, ann_min_rows=0)
        approx = [await eng.search(q, k=10, user_id="u1", tenant_id=tenant) for q in QUERIES[:4]]
        assert data.ann_queries == 4
        assert [_ids(r) for r in approx] == [_ids(r) for r in exact]
    finally:
        await eng.erase(tenant_id=tenant)
        await eng.aclose()
