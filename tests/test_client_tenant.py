"""The service client acts in ONE tenant on every call that names one (``?tenant_id=``).

Real ``mem-adapters serve`` processes on loopback, no mocks: one ``--insecure-no-auth`` (its
caller is an admin, so any tenant may be named), one with JWTs (a caller may name only its own
tenant).
"""

from __future__ import annotations

import time
import uuid

import jwt
import pytest

pytest.importorskip("fastapi")

from mem_adapters.client import (
    AsyncMemoryClient,
    InvalidInputError,
    MemoryClient,
    NotFoundError,
    PermissionDeniedError,
)
from mem_adapters.errors import ValidationError
from mem_adapters.server.process import ServerProcess

SECRET = "client-tenant-secret-" + "q" * 32


def _uid() -> str:
    return uuid.uuid4().hex[:8]


def _token(org: str, **claims) -> str:
    now = int(time.time())
    return jwt.encode({"org_id": org, "sub": "dana", "iat": now, "exp": now + 900, **claims}, SECRET, "HS256")


@pytest.fixture(scope="module")
def open_server(tmp_path_factory):
    d = tmp_path_factory.mktemp("client-tenant-open")
    with ServerProcess(["--path", str(d / "store"), "--insecure-no-auth"], ready_timeout=180) as srv:
        yield srv


@pytest.fixture(scope="module")
def jwt_server(tmp_path_factory):
    d = tmp_path_factory.mktemp("client-tenant-jwt")
    args = ["--path", str(d / "store"), "--jwt-secret", SECRET, "--no-enrich"]
    with ServerProcess(args, ready_timeout=180) as srv:
        yield srv


@pytest.fixture
def client(open_server):
    with MemoryClient(open_server.url, backoff=0.05, timeout=120) as c:
        yield c


def _assert_default_is_empty(client: MemoryClient) -> None:
    """Nothing of these tests landed in the credential's (``default``) tenant."""
    assert client.list(page_size=10).count == 0
    assert client.list_sessions() == []
    assert "default" not in client.tenants()


def test_every_call_naming_a_tenant_acts_in_it(client):
    acme, session = f"acme-{_uid()}", f"s-{_uid()}"
    res = client.remember(
        [{"role": "user", "text": "I keep bees on the roof"}, {"role": "assistant", "text": "Sweet!"}],
        session_id=session,
        user_id="dana",
        tenant_id=acme,
    )
    turn_id = res.active_ids[0]
    assert client.wait(res.passive_job_id, timeout=180, tenant_id=acme).status == "done"
    assert client.job_status(res.passive_job_id, tenant_id=acme).status == "done"
    with pytest.raises(NotFoundError):  # the job is acme's, not the credential's tenant's
        client.job_status(res.passive_job_id)
    added = client.add(raw_text="The office wifi password changes monthly", user_id="dana", tenant_id=acme)

    # Reads by id and by session act in acme ...
    assert client.get(turn_id, tenant_id=acme).text == "I keep bees on the roof"
    assert client.get(added.memory_id, tenant_id=acme).tenant_id == acme
    assert [h.event for h in client.history(added.memory_id, tenant_id=acme)] == ["ADD"]
    assert [m.text for m in client.get_messages(session, tenant_id=acme)] == [
        "I keep bees on the roof",
        "Sweet!",
    ]
    assert client.list_sessions(tenant_id=acme) == [session]
    assert client.count_turns(session, tenant_id=acme) == 2
    assert acme in client.tenants()
    # ... and the same calls without the tenant act in "default", where nothing is.
    for call in (client.get, client.history):
        with pytest.raises(NotFoundError):
            call(added.memory_id)
    assert client.get_messages(session) == []

    updated = client.update(added.memory_id, text="The wifi password changes weekly", tenant_id=acme)
    assert updated.text == "The wifi password changes weekly"
    assert [h.event for h in client.history(added.memory_id, tenant_id=acme)] == ["ADD", "UPDATE"]
    client.delete(added.memory_id, tenant_id=acme)
    with pytest.raises(NotFoundError):
        client.get(added.memory_id, tenant_id=acme)
    assert client.clear_session(session, tenant_id=acme) >= 2  # the turns and what enrichment made
    assert client.count_turns(session, tenant_id=acme) == 0
    assert client.list_sessions(tenant_id=acme) == []
    _assert_default_is_empty(client)


def test_a_client_level_tenant_is_used_when_a_call_names_none(open_server, client):
    acme, other, session = f"acme-{_uid()}", f"beta-{_uid()}", f"s-{_uid()}"
    with pytest.raises(ValidationError):
        MemoryClient(open_server.url, tenant_id="  ")
    with MemoryClient(open_server.url, tenant_id=acme, timeout=120) as mine:
        res = mine.remember(
            [{"role": "user", "text": "tea, no sugar"}], session_id=session, write_passive=False
        )
        assert mine.get(res.active_ids[0]).tenant_id == acme
        assert [m.text for m in mine.get_messages(session)] == ["tea, no sugar"]
        assert mine.list_sessions() == [session]
        # A call's own tenant wins over the client's.
        mine.remember(
            [{"role": "user", "text": "coffee"}], session_id=session, tenant_id=other, write_passive=False
        )
        assert [m.text for m in mine.get_messages(session, tenant_id=other)] == ["coffee"]
        assert [m.text for m in mine.get_messages(session)] == ["tea, no sugar"]
    assert [m.text for m in client.get_messages(session, tenant_id=acme)] == ["tea, no sugar"]
    _assert_default_is_empty(client)


async def test_the_async_client_names_the_tenant_too(open_server, client):
    acme, session = f"acme-{_uid()}", f"s-{_uid()}"
    async with AsyncMemoryClient(open_server.url, timeout=120) as ac:
        res = await ac.remember(
            [{"role": "user", "text": "async bees"}], session_id=session, tenant_id=acme, write_passive=False
        )
        assert (await ac.get(res.active_ids[0], tenant_id=acme)).text == "async bees"
        assert [h.event for h in await ac.history(res.active_ids[0], tenant_id=acme)] == ["ADD"]
        assert await ac.list_sessions(tenant_id=acme) == [session]
        with pytest.raises(NotFoundError):
            await ac.get(res.active_ids[0])
    _assert_default_is_empty(client)


def test_adapters_over_the_client_round_trip_in_a_named_tenant(client):
    pytest.importorskip("langchain_mem_adapters")
    pytest.importorskip("llama_index.memory.mem_adapters")
    from langchain_core.messages import AIMessage, HumanMessage
    from langchain_mem_adapters import MemAdaptersChatMessageHistory
    from llama_index.core.base.llms.types import ChatMessage
    from llama_index.memory.mem_adapters import MemAdaptersChatStore

    acme = f"acme-{_uid()}"
    history = MemAdaptersChatMessageHistory("lc-chat", engine=client, tenant_id=acme, user_id="dana")
    history.add_messages([HumanMessage("I'm allergic to shellfish."), AIMessage("Noted.")])
    again = MemAdaptersChatMessageHistory("lc-chat", engine=client, tenant_id=acme, user_id="dana")
    assert [m.content for m in again.messages] == ["I'm allergic to shellfish.", "Noted."]
    assert client.count_turns("lc-chat", tenant_id=acme) == 2

    store = MemAdaptersChatStore(engine=client, tenant_id=acme)
    store.set_messages(
        "li-chat", [ChatMessage(role="user", content="hello"), ChatMessage(role="assistant", content="hi")]
    )
    store.add_message("li-chat", ChatMessage(role="user", content="bye"))
    fresh = MemAdaptersChatStore(engine=client, tenant_id=acme)
    assert [m.content for m in fresh.get_messages("li-chat")] == ["hello", "hi", "bye"]
    assert "li-chat" in fresh.get_keys()
    assert MemAdaptersChatStore(engine=client).get_messages("li-chat") == []  # not in "default"
    history.clear()
    assert again.messages == []
    _assert_default_is_empty(client)


def test_a_non_admin_may_name_only_its_own_tenant(jwt_server):
    a, b = f"a-{_uid()}", f"b-{_uid()}"
    with MemoryClient(jwt_server.url, token=_token(a), timeout=120) as ca:
        res = ca.remember([{"role": "user", "text": "mine"}], session_id="s", tenant_id=a)
        mid = res.active_ids[0]
        # Naming its own tenant works for every call ...
        assert ca.get(mid, tenant_id=a).text == "mine"
        assert [h.event for h in ca.history(mid, tenant_id=a)] == ["ADD"]
        assert [m.text for m in ca.get_messages("s", tenant_id=a)] == ["mine"]
        assert ca.list_sessions(tenant_id=a) == ["s"]
        # ... naming another is refused, body or no body.
        refused = [
            lambda: ca.get(mid, tenant_id=b),
            lambda: ca.history(mid, tenant_id=b),
            lambda: ca.get_messages("s", tenant_id=b),
            lambda: ca.list_sessions(tenant_id=b),
            lambda: ca.delete(mid, tenant_id=b),
            lambda: ca.search("mine", tenant_id=b),
            lambda: ca.remember([{"role": "user", "text": "x"}], session_id="s", tenant_id=b),
        ]
        for call in refused:
            with pytest.raises(PermissionDeniedError) as err:
                call()
            assert err.value.status == 403
        with MemoryClient(jwt_server.url, token=_token(a), tenant_id=b) as wrong:
            with pytest.raises(PermissionDeniedError):  # a client-level tenant is checked alike
                wrong.get(mid)
            assert wrong.get(mid, tenant_id=a).text == "mine"
        assert ca.get(mid).text == "mine"  # still there
    with MemoryClient(jwt_server.url, token=_token("ops", role="admin"), timeout=120) as admin:
        assert admin.get(mid, tenant_id=a).text == "mine"  # an admin names any tenant
        with pytest.raises(NotFoundError):
            admin.get(mid)
        with pytest.raises(InvalidInputError):
            admin.get(mid, tenant_id="")
