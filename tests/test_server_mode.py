"""The same core behaviours against a real ``chroma run`` server, sync and async clients.

The server is shared by the whole session, so every test uses its own tenant ids.
"""

from __future__ import annotations

import asyncio
import inspect
import uuid
from collections.abc import AsyncIterator
from datetime import datetime, timedelta, timezone
from typing import Any

import pytest

from mem_adapters import AsyncMemoryEngine, MemoryEngine, NotFoundError

pytestmark = pytest.mark.server

T0 = datetime(2025, 4, 1, tzinfo=timezone.utc)
MODES = ["sync-http", "async-host-port", "async-client"]


class Driver:
    """Calls an engine the same way whether it is sync or async."""

    def __init__(self, engine: Any) -> None:
        self.engine = engine

    def __getattr__(self, name: str):
        fn = getattr(self.engine, name)

        async def call(*args: Any, **kwargs: Any) -> Any:
            if isinstance(self.engine, MemoryEngine):
                # The sync engine blocks; run it off this test's event loop like a real sync caller.
                return await asyncio.to_thread(fn, *args, **kwargs)
            out = fn(*args, **kwargs)
            return await out if inspect.isawaitable(out) else out

        return call


@pytest.fixture(params=MODES)
async def srv(request, chroma_server, embedder) -> AsyncIterator[Driver]:
    import chromadb

    host, port = chroma_server
    if request.param == "sync-http":
        eng = MemoryEngine(client=chromadb.HttpClient(host=host, port=port), embedder=embedder)
        yield Driver(eng)
        eng.close()
        return
    if request.param == "async-host-port":
        aeng = AsyncMemoryEngine(host=host, port=port, embedder=embedder)
    else:
        aeng = AsyncMemoryEngine(
            client=await chromadb.AsyncHttpClient(host=host, port=port), embedder=embedder
        )
    yield Driver(aeng)
    await aeng.aclose()


def tenant() -> str:
    return f"srv-{uuid.uuid4().hex[:10]}"


def turns(n: int, prefix: str = "msg") -> list[dict]:
    return [
        {
            "role": ("user", "assistant")[i % 2],
            "text": f"{prefix} {i}",
            "timestamp": (T0 + timedelta(minutes=i)).isoformat(),
        }
        for i in range(n)
    ]


async def test_write_read_and_idempotency(srv):
    t = tenant()
    batch = turns(4)
    first = await srv.remember(batch, session_id="s", user_id="u", tenant_id=t, metadata={"src": "srv"})
    assert len(first.active_ids) == 4 and first.created == 4
    again = await srv.remember(
        list(reversed(batch)), session_id="s", user_id="u", tenant_id=t, metadata={"src": "srv"}
    )
    assert again.active_ids == list(reversed(first.active_ids))
    assert again.created == 0
    assert await srv.count_turns("s", tenant_id=t) == 4
    item = await srv.get(first.active_ids[2], tenant_id=t)
    assert item.text == "msg 2" and item.user_id == "u" and item.metadata == {"src": "srv"}
    page = await srv.list(page_size=2, tenant_id=t)
    assert page.count == 4 and page.next == 2


async def test_transcript_order(srv):
    t = tenant()
    ids: list[str] = []
    for i in range(4):
        res = await srv.remember(turns(3, f"batch{i}"), session_id="s", tenant_id=t)
        ids += res.active_ids
    msgs = await srv.get_messages("s", tenant_id=t)
    assert [m.id for m in msgs] == ids
    assert [m.text for m in msgs] == [f"batch{i} {j}" for i in range(4) for j in range(3)]


async def test_concurrent_writers_lose_nothing(srv):
    t = tenant()

    async def writer(w: int) -> None:
        for i in range(4):
            await srv.remember(
                [{"role": "user", "text": f"w{w}-{i}", "timestamp": T0.isoformat()}],
                session_id="s",
                tenant_id=t,
            )

    await asyncio.gather(*(writer(w) for w in range(4)))
    texts = [m.text for m in await srv.get_messages("s", tenant_id=t)]
    assert sorted(texts) == sorted(f"w{w}-{i}" for w in range(4) for i in range(4))
    for w in range(4):
        assert [x for x in texts if x.startswith(f"w{w}-")] == [f"w{w}-{i}" for i in range(4)]


async def test_search(srv):
    t = tenant()
    await srv.remember(
        [{"role": "user", "text": "I'm allergic to shellfish.", "timestamp": T0.isoformat()},
         {"role": "user", "text": "My favourite football team is Benfica.", "timestamp": T0.isoformat()},
         {"role": "user", "text": "We adopted a golden retriever puppy.", "timestamp": T0.isoformat()}],
        session_id="s", user_id="u", tenant_id=t,
    )  # fmt: skip
    res = await srv.search("what food should I avoid", user_id="u", tenant_id=t)
    assert res.results[0].text == "I'm allergic to shellfish."


async def test_tenancy(srv):
    a, b = tenant(), tenant()
    w = await srv.remember(turns(2), session_id="s", tenant_id=a)
    mem = await srv.add(raw_text="tenant A secret", memory_id="shared-key", tenant_id=a)
    await srv.add(raw_text="tenant B note", memory_id="shared-key", tenant_id=b)
    for mid in (*w.active_ids,):
        with pytest.raises(NotFoundError):
            await srv.get(mid, tenant_id=b)
        with pytest.raises(NotFoundError):
            await srv.update(mid, text="hijack", tenant_id=b)
    assert (await srv.get(mem.memory_id, tenant_id=a)).text == "tenant A secret"
    assert (await srv.get("shared-key", tenant_id=b)).text == "tenant B note"
    hits = await srv.search("secret", tenant_id=b, k=10)
    assert [h.text for h in hits.results] == ["tenant B note"]
    page = await srv.list({"$or": [{"session_id": "s"}, {"kind": "raw"}]}, tenant_id=b)
    assert [i.text for i in page.results] == ["tenant B note"]
    assert await srv.get_messages("s", tenant_id=b) == []


async def test_erase(srv):
    t = tenant()
    await srv.remember(turns(3), session_id="s", user_id="u1", tenant_id=t)
    await srv.remember(
        [{"role": "user", "text": "I have a cat", "timestamp": T0.isoformat(),
          "observations": ["owns a cat"]}],
        session_id="s2", user_id="u2", tenant_id=t,
    )  # fmt: skip
    r = await srv.add(raw_text="u1 memo", user_id="u1", tenant_id=t)
    await srv.update(r.memory_id, text="u1 memo v2", tenant_id=t)
    receipt = await srv.erase(user_id="u1", tenant_id=t)
    assert (receipt.turns, receipt.memories, receipt.history) == (3, 1, 1)
    left = await srv.list(tenant_id=t)
    assert {i.user_id for i in left.results} == {"u2"} and left.count == 2
    with pytest.raises(NotFoundError):
        await srv.history(r.memory_id, tenant_id=t)
    receipt = await srv.erase(tenant_id=t)
    assert (receipt.turns, receipt.derived) == (1, 1)
    assert (await srv.list(tenant_id=t)).count == 0
    assert (await srv.search("cat", tenant_id=t)).results == []
