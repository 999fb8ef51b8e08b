"""Hybrid retrieval through the public search API, on a real embedded Chroma."""

from __future__ import annotations

import asyncio
import json
import time

import pytest

from mem_adapters import records as rec
from mem_adapters.errors import ValidationError
from mem_adapters.retrieval import expand_to_turns, pack_context

TURNS = [
    ("Ana", "I adopted a grey cat called Pixel last month.", "2024-03-02T10:00:00Z"),
    ("Ben", "Cute! My sister works as a veterinarian in Porto.", "2024-03-02T10:01:00Z"),
    ("Ana", "My serial number for the router is QX-7731B, write it down.", "2024-03-02T10:02:00Z"),
    ("Ben", "I started training for the Lisbon marathon yesterday.", "2024-03-09T09:00:00Z"),
    ("Ana", "Good luck! I prefer swimming in the ocean.", "2024-03-09T09:01:00Z"),
]


async def _remember(aengine, session="s1", user="u1", turns=TURNS, **kw):
    return await aengine.remember(
        [{"role": r, "text": t, "timestamp": ts} for r, t, ts in turns],
        session_id=session,
        user_id=user,
        **kw,
    )


async def test_exact_rare_token_is_found_first(aengine):
    await _remember(aengine)
    res = await aengine.search("QX-7731B", k=3)
    assert res.results[0].text.startswith("My serial number")
    assert {"lexical_ms", "dense_ms", "total_ms"} <= set(res.stage_timings)


async def test_results_carry_metadata_and_fields(aengine):
    await aengine.remember(
        [
            {
                "role": "Ana",
                "text": "I love hiking in the Alps",
                "timestamp": "2024-01-01T00:00:00Z",
                "metadata": {"topic": "travel", "nested": {"x": [1, 2]}},
            }
        ],
        session_id="s9",
        user_id="u9",
        agent_id="a9",
    )
    item = (await aengine.search("hiking mountains", k=1)).results[0]
    assert item.metadata == {"topic": "travel", "nested": {"x": [1, 2]}}
    assert (item.kind, item.session_id, item.user_id, item.agent_id, item.role) == (
        "turn",
        "s9",
        "u9",
        "a9",
        "Ana",
    )
    assert item.timestamp.year == 2024 and item.score is not None


async def test_scope_and_filters_are_anded(aengine):
    await _remember(aengine, session="s1", user="u1")
    await _remember(
        aengine,
        session="s2",
        user="u2",
        turns=[("Cy", "My router serial is QX-7731B too, funny.", "2024-04-01T00:00:00Z")],
    )
    res = await aengine.search("router serial QX-7731B", k=10, user_id="u2")
    assert res.results and {r.user_id for r in res.results} == {"u2"}
    res = await aengine.search("router serial", k=10, filters={"role": {"$in": ["Ben"]}})
    assert res.results and {r.role for r in res.results} == {"Ben"}
    res = await aengine.search(
        "anything", k=10, filters={"$or": [{"role": "Cy"}, {"session_id": "s1"}]}, user_id="u2"
    )
    assert [r.role for r in res.results] == ["Cy"]
    later = await aengine.search("marathon", k=10, time_range=("2024-03-05T00:00:00Z", None))
    assert later.results and all(r.timestamp.isoformat() >= "2024-03-05" for r in later.results)
    assert any("marathon" in r.text for r in later.results)
    with pytest.raises(ValidationError):
        await aengine.search("x", filters={"role": {"$like": "A%"}})


async def test_index_follows_update_delete_and_expiry(aengine):
    w = await _remember(aengine)
    await aengine.update(w.active_ids[1], text="My brother is a zookeeper in Faro.")
    hits = await aengine.search("zookeeper", k=1)
    assert hits.results[0].id == w.active_ids[1]
    data = await aengine.data()
    part = await data.partition("default", None)
    assert "zookeeper" in part.postings
    assert "veterinarian" not in part.postings
    await aengine.delete(w.active_ids[2])
    assert w.active_ids[2] not in await data.partition("default", None)
    assert all(r.id != w.active_ids[2] for r in (await aengine.search("QX-7731B", k=5)).results)
    await aengine.add(raw_text="Temporary note: the wifi code is ZEBRA42", expiry_seconds=0.5)
    assert "ZEBRA42" in (await aengine.search("ZEBRA42", k=1)).results[0].text
    await asyncio.sleep(0.8)
    assert all("ZEBRA42" not in r.text for r in (await aengine.search("ZEBRA42", k=5)).results)


async def test_catch_up_after_another_writer(tmp_path, embedder):
    from mem_adapters import AsyncMemoryEngine

    a = AsyncMemoryEngine(tmp_path / "shared", embedder=embedder)
    b = AsyncMemoryEngine(tmp_path / "shared", embedder=embedder)  # no hooks reach a's index
    try:
        await _remember(a)
        data = await a.data()
        before = await data.partition("default", None)
        assert len(before) == len(TURNS)
        w = await b.remember(
            [{"role": "Cy", "text": "Platypus facts are wild", "timestamp": "2024-05-01T00:00:00Z"}],
            session_id="s3",
        )
        after = await data.partition("default", None)
        # Caught up in place by revision, not rebuilt.
        assert w.active_ids[0] in after and after is before
        assert (await a.search("platypus", k=1)).results[0].id == w.active_ids[0]
        await b.delete(w.active_ids[0])
        assert w.active_ids[0] not in await data.partition("default", None)
    finally:
        await a.aclose()
        await b.aclose()


async def test_index_rebuilds_when_missing(aengine):
    await _remember(aengine)
    (await aengine.data()).drop_all()
    assert (await aengine.search("QX-7731B", k=1)).results[0].text.startswith("My serial")


async def test_near_duplicates_are_returned_once(aengine):
    await _remember(
        aengine, session="s1", turns=[("Ana", "I adopted a grey cat called Pixel.", "2024-01-01T00:00:00Z")]
    )
    await _remember(
        aengine, session="s2", turns=[("Ana", "I adopted a grey cat called Pixel!", "2024-02-01T00:00:00Z")]
    )
    res = await aengine.search("grey cat Pixel", k=5)
    assert sum("grey cat" in r.text for r in res.results) == 1


async def test_context_mode_budget_and_labels(aengine):
    await _remember(aengine)
    res = await aengine.search("pets and sports", k=5, mode="context", char_budget=160)
    assert res.context is not None and 0 < len(res.context) <= 160
    for line in res.context.splitlines():
        assert line.startswith("[2024-03-0") and ("] Ana: " in line or "] Ben: " in line)
        # whole items only: every line is one stored text
        assert any(line.endswith(t) for _, t, _ in TURNS)
    tiny = await aengine.search("cat", k=5, mode="context", char_budget=20)
    assert len(tiny.context) == 20  # a single item larger than the budget is cut


def _fact(fid, text, created, superseded_at=rec.NEVER, successor=None, latest=True):
    return (
        fid,
        text,
        {
            "kind": "fact",
            "tenant_id": "default",
            "sub_tenant_id": "",
            "user_id": "u1",
            "agent_id": "",
            "session_id": "s1",
            "sub_session_id": "",
            "role": "Ana",
            "ts": created,
            "seq": int(created),
            "status": "active" if latest else "superseded",
            "created_at": created,
            "updated_at": created,
            "expires_at": rec.NEVER,
            "version": 1,
            "is_latest": latest,
            "indexed": True,
            "superseded_at": superseded_at,
            "superseded_by": successor or "",
            "source_ids": json.dumps(["t1"]),
            "meta": "{}",
        },
    )


async def test_superseded_facts_and_as_of(aengine):
    old = _fact("f_old", "Ana lives in Lisbon", 1000.0, superseded_at=2000.0, successor="f_new", latest=False)
    new = _fact("f_new", "Ana lives in Berlin", 2000.0)
    await aengine.write_records("default", [old[0], new[0]], [old[1], new[1]], [old[2], new[2]])
    now = await aengine.search("Where does Ana live?", k=5, kinds=["fact"])
    assert [r.id for r in now.results] == ["f_new"]
    then = await aengine.search("Where does Ana live?", k=5, kinds=["fact"], as_of="1970-01-01T00:25:00Z")
    assert [r.id for r in then.results] == ["f_old"]
    assert expand_to_turns(then.results) == ["t1"]


def test_pack_context_never_cuts_when_something_fits():
    from mem_adapters.models import MemoryItem

    items = [MemoryItem(id=str(i), text="x" * n, kind="turn", role="u") for i, n in enumerate([10, 500, 5])]
    text, used = pack_context(items, 60)
    assert [u.id for u in used] == ["0", "2"] and len(text) <= 60


@pytest.mark.server
async def test_server_mode_same_behaviour(chroma_server, embedder):
    from mem_adapters import AsyncMemoryEngine

    host, port = chroma_server
    tenant = f"t{time.time_ns()}"
    eng = AsyncMemoryEngine(host=host, port=port, embedder=embedder)
    try:
        await _remember(eng, tenant_id=tenant)
        res = await eng.search("QX-7731B", k=2, tenant_id=tenant, filters={"role": "Ana"})
        assert res.results[0].text.startswith("My serial") and all(r.role == "Ana" for r in res.results)
        (await eng.data()).drop_all()
        assert (await eng.search("marathon", k=1, tenant_id=tenant)).results[0].role == "Ben"
    finally:
        await eng.erase(tenant_id=tenant)
        await eng.aclose()


@pytest.mark.parametrize("exact_max", [0, 20000])
async def test_chroma_and_exact_dense_paths_agree_on_filters(aengine, exact_max):
    import dataclasses

    aengine.retriever.config = dataclasses.replace(aengine.retriever.config, exact_dense_max=exact_max)
    await _remember(aengine)
    await _remember(
        aengine, session="s2", user="u2", turns=[("Cy", "I keep a pet tortoise.", "2024-04-01T00:00:00Z")]
    )
    res = await aengine.search("animals and pets", k=10, user_id="u1", filters={"role": "Ana"})
    assert res.results and {(r.user_id, r.role) for r in res.results} == {("u1", "Ana")}
    assert res.results[0].text.startswith("I adopted a grey cat")
    # Tenant-wide: exact_max=0 sends an unfiltered, over-fetched ANN query and filters here.
    wide = await aengine.search("animals and pets", k=10, filters={"user_id": "u1", "role": "Ana"})
    assert wide.results and {(r.user_id, r.role) for r in wide.results} == {("u1", "Ana")}
    assert wide.results[0].text.startswith("I adopted a grey cat")
    assert ((await aengine.data()).cached_partition("default", None) is None) == (exact_max == 0)


def test_bm25_remove_equals_fresh_index():
    from mem_adapters.lexical import BM25Index, tokenize

    texts = {"a": "hiking in the alps with my dog", "b": "my dogs love hikes", "c": "cello practice daily"}
    inc = BM25Index()
    for i, t in texts.items():
        inc.add(i, t)
    inc.add("a", "swimming in the ocean")  # replace
    inc.remove("c")
    fresh = BM25Index()
    fresh.add("b", texts["b"])
    fresh.add("a", "swimming in the ocean")
    q = tokenize("dog hiking ocean")
    assert inc.scores(q) == pytest.approx(fresh.scores(q))
    assert tokenize("Hiking") == tokenize("hikes") == ["hik"]
