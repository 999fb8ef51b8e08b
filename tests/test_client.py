"""mem_adapters.client against a real `mem-adapters serve` on loopback (no mocks).

A small TCP proxy between client and server drops the connection after the server has
answered (so after it committed): the client retries and nothing is written twice.
"""

from __future__ import annotations

import socket
import time
import uuid
from collections.abc import Callable

import jwt
import pytest

pytest.importorskip("fastapi")

from dropping_proxy import DroppingProxy

from mem_adapters import errors as engine_errors
from mem_adapters.client import (
    AsyncMemoryClient,
    AuthenticationError,
    InvalidInputError,
    MemoryClient,
    NetworkError,
    NotFoundError,
    PermissionDeniedError,
)
from mem_adapters.server.process import ServerProcess

SECRET = "client-test-secret-" + "z" * 32


def token(org: str = "acme", **claims) -> str:
    now = int(time.time())
    return jwt.encode({"org_id": org, "sub": "dana", "iat": now, "exp": now + 900, **claims}, SECRET, "HS256")


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    d = tmp_path_factory.mktemp("client-svc")
    with ServerProcess(["--path", str(d / "store"), "--jwt-secret", SECRET]) as srv:
        yield srv


@pytest.fixture
def client(server):
    with MemoryClient(server.url, token=token(), backoff=0.05) as c:
        yield c


def _uid() -> str:
    return uuid.uuid4().hex[:8]


def _once_per_route() -> Callable[[bytes], bool]:
    """A drop rule: the first request to each route (the proxy caps how many)."""
    seen: set[bytes] = set()

    def first(route: bytes) -> bool:
        if route in seen:
            return False
        seen.add(route)
        return True

    return first


def test_round_trip_with_engine_names_and_models(client):
    session, user = f"s_{_uid()}", f"u_{_uid()}"
    client.initialize()
    res = client.remember(
        [{"role": "user", "text": "I love hiking in the Alps"}, {"role": "assistant", "text": "Nice!"}],
        session_id=session,
        user_id=user,
    )
    assert len(res.active_ids) == 2 and res.created == 2 and res.passive_job_id
    assert client.wait(res.passive_job_id, timeout=60).status == "done"
    hits = client.search("outdoor hobbies", session_id=session, k=3)
    assert hits.results[0].text == "I love hiking in the Alps"
    assert hits.results[0].score_parts is not None and hits.results[0].kind == "turn"
    ctx = client.search("hobbies", session_id=session, mode="context", char_budget=200)
    assert ctx.context and len(ctx.context) <= 200
    turns = client.get_messages(session)
    assert [t.role for t in turns] == ["user", "assistant"]
    assert session in client.list_sessions(user_id=user)
    page = client.list(session_id=session, kinds=["turn"], page_size=1)
    assert page.count == 2 and page.next == 2
    item = client.update(res.active_ids[1], text="Nice, enjoy!", metadata={"edited": True})
    assert item.text == "Nice, enjoy!" and item.metadata == {"edited": True}
    assert [h.event for h in client.history(item.id)] == ["ADD", "UPDATE"]
    added = client.add(raw_text="Prefers window seats", user_id=user, expiry_seconds=3600)
    assert client.get(added.memory_id).text == "Prefers window seats"
    rec = client.record_message(session, "user", "one more thing", user_id=user)
    assert rec.conversation_id == session
    client.delete(added.memory_id)
    with pytest.raises(NotFoundError):
        client.get(added.memory_id)
    receipt = client.erase(user_id=user)
    assert receipt.turns == 3
    assert client.list_sessions(user_id=user) == []


async def test_async_client(server):
    session = f"as_{_uid()}"
    async with AsyncMemoryClient(server.url, token=token()) as ac:
        await ac.initialize()
        res = await ac.remember([{"role": "user", "text": "My cat is called Miso"}], session_id=session)
        assert (await ac.get(res.active_ids[0])).text == "My cat is called Miso"
        hits = await ac.search("pet name", session_id=session)
        assert hits.results[0].id == res.active_ids[0]
        with pytest.raises(NotFoundError):
            await ac.get("t_nope")


def test_typed_errors(server, client):
    with pytest.raises(AuthenticationError) as e:
        MemoryClient(server.url, token=token(exp=int(time.time()) - 5)).search("x")
    assert e.value.status == 401
    with pytest.raises(AuthenticationError):
        MemoryClient(server.url, api_key="mak_00_nope").get("x")
    with pytest.raises(PermissionDeniedError) as pe:
        client.remember([{"role": "user", "text": "x"}], tenant_id="globex")
    assert pe.value.code == "tenant_mismatch"
    with pytest.raises(PermissionDeniedError):
        client.tenants()
    assert "acme" in MemoryClient(server.url, token=token(role="admin")).tenants()
    with pytest.raises(NotFoundError) as nf:
        client.get("t_unknown")
    assert isinstance(nf.value, engine_errors.NotFoundError)
    with pytest.raises(InvalidInputError) as ie:
        client.search("x", k=0)
    assert isinstance(ie.value, engine_errors.ValidationError) and ie.value.field == "k"
    with pytest.raises(InvalidInputError) as ie:
        client.search("x", filters={"a": {"$regex": "b"}})
    assert "filters" in ie.value.field
    with pytest.raises(engine_errors.ValidationError):
        client.add(raw_text="a", pairs=[("u", "a")])  # refused before any request


def test_network_errors_within_the_timeout(tmp_path):
    with ServerProcess(["--path", str(tmp_path / "s"), "--jwt-secret", SECRET, "--no-enrich"]) as srv:
        c = MemoryClient(srv.url, token=token(), timeout=2.0, max_retries=2, backoff=0.05)
        c.remember([{"role": "user", "text": "before the crash"}], session_id="s")
        srv.kill()
        t0 = time.monotonic()
        with pytest.raises(NetworkError) as e:
            c.search("crash", session_id="s")
        assert isinstance(e.value, engine_errors.TransportError)
        assert time.monotonic() - t0 < 10  # refused at once, retried twice with short backoff
    # A server that accepts connections and never answers: the read timeout fires.
    hung = socket.create_server(("127.0.0.1", 0))
    try:
        c = MemoryClient(
            f"http://127.0.0.1:{hung.getsockname()[1]}", timeout=0.5, max_retries=1, backoff=0.05
        )
        t0 = time.monotonic()
        with pytest.raises(NetworkError, match="Timeout"):
            c.get("x")
        assert time.monotonic() - t0 < 10
    finally:
        hung.close()


def test_dropped_answer_after_commit_writes_nothing_twice(server, client):
    proxy = DroppingProxy((server.host, server.port), 3, _once_per_route())
    try:
        via = MemoryClient(proxy.url, token=token(), backoff=0.05)
        session, user = f"drop_{_uid()}", f"u_{_uid()}"
        res = via.remember(
            [{"role": "user", "text": "written exactly once"}], session_id=session, user_id=user
        )
        assert proxy.dropped == 1  # the first answer was lost after the server wrote the turn
        assert (res.created, res.duplicates) == (0, 1)  # the retry found it written
        added = via.add(raw_text="also written once", user_id=user)
        assert proxy.dropped == 2
        msg = via.record_message(session, "assistant", "a message once", user_id=user)
        assert proxy.dropped == 3
    finally:
        proxy.close()
    turns = client.get_messages(session)
    assert [t.text for t in turns] == ["written exactly once", "a message once"]
    assert turns[1].caller_id == msg.message_id
    assert [h.event for h in client.history(added.memory_id)] == ["ADD"]  # no second version
    page = client.list(user_id=user, kinds=["raw"])
    assert page.count == 1


def test_non_idempotent_update_is_not_retried_after_sending(server, client):
    res = client.remember([{"role": "user", "text": "edit me"}], session_id=f"u_{_uid()}")
    proxy = DroppingProxy((server.host, server.port), 1, _once_per_route())
    try:
        via = MemoryClient(proxy.url, token=token(), backoff=0.05)
        with pytest.raises(NetworkError):
            via.update(res.active_ids[0], text="edited once")
    finally:
        proxy.close()
    assert [h.event for h in client.history(res.active_ids[0])] == ["ADD", "UPDATE"]


# ---------------------------------------------------------------------- remember's write options

BERLIN = {"role": "user", "text": "I live in Berlin.", "timestamp": "2024-03-01T10:00:00Z"}
PARIS = {"role": "user", "text": "I live in Paris.", "timestamp": "2024-01-01T10:00:00Z"}


def _cities(page) -> dict:
    return {f.attributes["value"]: f for f in page.results if f.attributes.get("predicate") == "lives_in"}


def test_remember_mode_and_write_options_reach_the_engine(client):
    user = f"u_{_uid()}"
    # A backfill written newest first: the later statement stays latest, the older one is
    # linked into its chain (chat mode leaves it as history only, unlinked).
    res = client.remember([BERLIN, PARIS], session_id=f"imp_{_uid()}", user_id=user, mode="import")
    assert res.mode == "import" and len(res.active_ids) == 2
    job = client.wait(res.passive_job_id, timeout=120)
    assert job.status == "done" and job.mode == "import"
    c = _cities(client.list(user_id=user, kinds=["fact"], page_size=1000))
    assert c["Berlin"].is_latest and not c["Paris"].is_latest
    assert c["Berlin"].supersedes == c["Paris"].id

    # write_passive=False: stored and searchable, no enrichment job.
    session = f"np_{_uid()}"
    res = client.remember([{"role": "user", "text": "I collect vintage stamps"}], session_id=session,
                          user_id=user, write_passive=False)  # fmt: skip
    assert res.passive_job_id is None and len(res.active_ids) == 1 and res.passive_ids == []
    assert client.get(res.active_ids[0]).status == "active"
    assert [t.id for t in client.get_messages(session)] == res.active_ids
    assert client.search("stamp collecting", session_id=session, k=1).results[0].id == res.active_ids[0]

    # write_active=False: enrichment input only, out of every transcript and list; by id it is found.
    session = f"na_{_uid()}"
    res = client.remember([{"role": "user", "text": "I work as a nurse."}], session_id=session,
                          user_id=user, write_active=False)  # fmt: skip
    assert res.active_ids == [] and len(res.passive_ids) == 1 and res.passive_job_id
    (pid,) = res.passive_ids
    assert client.wait(res.passive_job_id, timeout=120).status == "done"
    assert client.get(pid).status == "passive"
    assert client.get_messages(session) == [] and client.count_turns(session) == 0
    assert pid not in {i.id for i in client.list(user_id=user, page_size=1000).results}
    facts = client.list(user_id=user, session_id=session, kinds=["fact"]).results
    assert facts and all(f.source_ids == [pid] for f in facts)


def test_bad_write_options_are_invalid_input_and_write_nothing(client):
    session = f"bad_{_uid()}"
    turns = [{"role": "user", "text": "never written"}]
    for kw, field in [({"write_active": "yes"}, "write_active"), ({"write_passive": 0}, "write_passive"),
                      ({"mode": "backfill"}, "mode")]:  # fmt: skip
        with pytest.raises(InvalidInputError) as ie:
            client.remember(turns, session_id=session, **kw)
        assert field in (ie.value.field or ""), (kw, ie.value.field)
    with pytest.raises(engine_errors.ValidationError):
        client.remember(turns, session_id=session, write_active=False, write_passive=False)
    assert client.count_turns(session) == 0


async def test_async_client_remember_mode_and_write_options(server):
    user = f"u_{_uid()}"
    async with AsyncMemoryClient(server.url, token=token()) as ac:
        res = await ac.remember([BERLIN, PARIS], session_id=f"aimp_{_uid()}", user_id=user, mode="import")
        assert res.mode == "import"
        assert (await ac.wait(res.passive_job_id, timeout=120)).mode == "import"
        c = _cities(await ac.list(user_id=user, kinds=["fact"], page_size=1000))
        assert c["Berlin"].is_latest and c["Berlin"].supersedes == c["Paris"].id
        session = f"anp_{_uid()}"
        res = await ac.remember([{"role": "user", "text": "I play the oboe"}], session_id=session,
                                user_id=user, write_passive=False)  # fmt: skip
        assert res.passive_job_id is None and (await ac.get(res.active_ids[0])).status == "active"
        res = await ac.remember([{"role": "user", "text": "I drive a red van."}], session_id=session,
                                user_id=user, write_active=False)  # fmt: skip
        assert res.active_ids == [] and res.passive_job_id
        await ac.wait(res.passive_job_id, timeout=120)
        assert [t.text for t in await ac.get_messages(session)] == ["I play the oboe"]


def test_write_active_false_is_refused_by_a_server_that_does_not_enrich(tmp_path):
    with (
        ServerProcess(["--path", str(tmp_path / "s"), "--jwt-secret", SECRET, "--no-enrich"]) as srv,
        MemoryClient(srv.url, token=token()) as c,
    ):
        with pytest.raises(InvalidInputError) as ie:
            c.remember([{"role": "user", "text": "for nothing"}], session_id="s", write_active=False)
        assert (ie.value.code, ie.value.field) == ("unsupported_option", "write_active")
        res = c.remember([{"role": "user", "text": "kept"}], session_id="s", write_passive=False)
        assert res.passive_job_id is None and [t.text for t in c.get_messages("s")] == ["kept"]
