"""Tenancy: a hard, structural boundary. No id lookup, filter or search crosses it."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime, timezone

import chromadb
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mem_adapters import MemoryEngine, NotFoundError, ValidationError

TS = datetime(2025, 1, 1, tzinfo=timezone.utc).isoformat()
TENANTS = ("acme", "globex")


def seed(eng: MemoryEngine, tenant: str) -> set[str]:
    """The same users, sessions, texts and metadata in each tenant; returns the tenant's ids."""
    ids: set[str] = set()
    for s in ("s1", "s2"):
        w = eng.remember(
            [{"role": "user", "text": f"I'm allergic to shellfish ({s})", "timestamp": TS,
              "metadata": {"owner": "u1", "n": 1, "tenant_id": "acme"},
              "observations": ["allergy: shellfish"]},
             {"role": "assistant", "text": f"Noted, no shellfish ({s})", "timestamp": TS,
              "metadata": {"owner": "u2", "n": 2, "tenant_id": "globex"}},
             {"role": "user", "text": "caller id turn", "timestamp": TS, "id": f"shared-{s}"}],
            session_id=s, user_id="u1", tenant_id=tenant,
        )  # fmt: skip
        ids |= set(w.active_ids)
    a = eng.add(raw_text="Office wifi password is hunter2", memory_id="keyed", user_id="u1", tenant_id=tenant)
    ids.add(a.record_id)  # the stored id ("keyed" is its caller id)
    long_ = eng.add(raw_text=" ".join(f"Diary line {i} about the trip." for i in range(60)), tenant_id=tenant)
    ids.add(long_.memory_id)
    page = eng.list(page_size=1000, tenant_id=tenant)
    return {i.id for i in page.results}


@pytest.fixture(scope="module")
def two_tenants(tmp_path_factory, embedder) -> Iterator[tuple[MemoryEngine, chromadb.ClientAPI, dict]]:
    path = tmp_path_factory.mktemp("tenancy")
    client = chromadb.PersistentClient(path=str(path))
    eng = MemoryEngine(client=client, embedder=embedder)
    ids = {t: seed(eng, t) for t in TENANTS}
    yield eng, client, ids
    eng.close()


def test_tenants_get_separate_collections(two_tenants):
    _, client, ids = two_tenants
    mem_cols = [c.name for c in client.list_collections() if c.name.endswith("-mem")]
    assert len(mem_cols) == 2
    per_col = [set(client.get_collection(n).get(include=[])["ids"]) for n in mem_cols]
    # Same caller ids exist in both tenants, in different collections.
    callers = [{m.get("caller_id") for m in client.get_collection(n).get()["metadatas"]} for n in mem_cols]
    assert all({"keyed", "shared-s1"} <= c for c in callers)
    assert {frozenset(s) for s in per_col} == {frozenset(ids[t]) for t in TENANTS}


def test_same_ids_in_both_tenants_are_independent(two_tenants):
    eng, _, ids = two_tenants
    for t in TENANTS:
        item = eng.get("keyed", tenant_id=t)  # the caller's id, resolved inside the tenant
        assert item.tenant_id == t and item.id in ids[t] and item.caller_id == "keyed"
    assert len(eng.history("keyed", tenant_id="acme")) == 1


def test_id_lookups_never_cross_tenants(tmp_path, embedder):
    with MemoryEngine(tmp_path / "db", embedder=embedder) as eng:
        a = eng.add(raw_text="acme secret", tenant_id="acme")
        w = eng.remember(
            [{"role": "user", "text": "acme turn", "timestamp": TS}], session_id="s", tenant_id="acme"
        )
        eng.update(a.memory_id, text="acme secret v2", tenant_id="acme")
        for mid in (a.memory_id, w.active_ids[0]):
            with pytest.raises(NotFoundError):
                eng.get(mid, tenant_id="globex")
            with pytest.raises(NotFoundError):
                eng.update(mid, text="hijack", tenant_id="globex")
            with pytest.raises(NotFoundError):
                eng.delete(mid, tenant_id="globex")
            with pytest.raises(NotFoundError):
                eng.history(mid, tenant_id="globex")
            with pytest.raises(NotFoundError):
                eng.get(mid)  # the default tenant is a tenant too
            assert eng.get_many([mid], tenant_id="globex") == []
        # Nothing happened to acme's data.
        assert eng.get(a.memory_id, tenant_id="acme").text == "acme secret v2"
        assert eng.get(w.active_ids[0], tenant_id="acme").text == "acme turn"
        assert eng.get_messages("s", tenant_id="globex") == []
        assert eng.count_turns("s", tenant_id="globex") == 0
        assert eng.clear_session("s", tenant_id="globex") == 0
        assert eng.archive_oldest("s", 5, tenant_id="globex") == []
        assert eng.get_messages("s", tenant_id="acme")[0].status == "active"
        assert eng.erase(tenant_id="globex").total == 0
        assert eng.erase(user_id=None, tenant_id="globex").total == 0
        assert eng.list(tenant_id="acme").count == 2


def test_erase_one_tenant_leaves_the_other(tmp_path, embedder):
    with MemoryEngine(tmp_path / "db", embedder=embedder) as eng:
        seed(eng, "acme")
        b = seed(eng, "globex")
        eng.erase(tenant_id="acme")
        assert eng.list(tenant_id="acme").count == 0
        assert {i.id for i in eng.list(page_size=1000, tenant_id="globex").results} == b
        eng.erase(user_id="u1", tenant_id="globex")
        assert all(i.user_id != "u1" for i in eng.list(page_size=1000, tenant_id="globex").results)


@pytest.mark.parametrize("tenant", ["Ünïcødé tenant", "a/b\\c", "x" * 300, "with space", "..", "default "])
def test_unusual_tenant_ids_work_and_stay_apart(tmp_path, embedder, tenant):
    with MemoryEngine(tmp_path / "db", embedder=embedder) as eng:
        w = eng.remember(
            [{"role": "user", "text": "hello", "timestamp": TS}], session_id="s", tenant_id=tenant
        )
        assert eng.get(w.active_ids[0], tenant_id=tenant).tenant_id == tenant
        with pytest.raises(NotFoundError):
            eng.get(w.active_ids[0])
        assert eng.search("hello", tenant_id=tenant).results[0].id == w.active_ids[0]


# ---------------------------------------------------------------- property: filters never cross

FIELDS_STR = ["role", "session_id", "user_id", "kind", "status", "owner", "metadata.owner", "tenant_id",
              "metadata.tenant_id", "sub_tenant_id", "parent_id"]  # fmt: skip
FIELDS_NUM = ["seq", "version", "n", "metadata.n"]
STR_VALUES = ["user", "assistant", "s1", "s2", "u1", "u2", "turn", "fact", "raw", "chunk", "active",
              "acme", "globex", "default", "keyed", ""]  # fmt: skip


def leaf() -> st.SearchStrategy[dict]:
    str_eq = st.builds(lambda f, v: {f: v}, st.sampled_from(FIELDS_STR), st.sampled_from(STR_VALUES))
    str_op = st.builds(
        lambda f, op, v: {f: {op: v}},
        st.sampled_from(FIELDS_STR), st.sampled_from(["$eq", "$ne"]), st.sampled_from(STR_VALUES),
    )  # fmt: skip
    str_in = st.builds(
        lambda f, op, vs: {f: {op: vs}},
        st.sampled_from(FIELDS_STR), st.sampled_from(["$in", "$nin"]),
        st.lists(st.sampled_from(STR_VALUES), min_size=1, max_size=3),
    )  # fmt: skip
    num_op = st.builds(
        lambda f, op, v: {f: {op: v}},
        st.sampled_from(FIELDS_NUM), st.sampled_from(["$eq", "$ne", "$gt", "$gte", "$lt", "$lte"]),
        st.integers(-2, 2**62),
    )  # fmt: skip
    return st.one_of(str_eq, str_op, str_in, num_op)


filters_strategy = st.recursive(
    leaf(),
    lambda inner: st.builds(
        lambda op, subs: {op: subs}, st.sampled_from(["$and", "$or"]), st.lists(inner, min_size=1, max_size=3)
    ),
    max_leaves=6,
)


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(filters=st.one_of(st.none(), filters_strategy), tenant=st.sampled_from(TENANTS))
def test_no_filter_ever_crosses_tenants(two_tenants, filters, tenant):
    eng, _, ids = two_tenants
    other = ids[TENANTS[1 - TENANTS.index(tenant)]] - ids[tenant]
    try:
        page = eng.list(filters, page_size=1000, tenant_id=tenant)
        hits = eng.search("shellfish allergy wifi password diary", filters=filters, k=50, tenant_id=tenant)
    except ValidationError:
        return  # a rejected filter is fine; a leak is not
    for item in [*page.results, *hits.results]:
        assert item.tenant_id == tenant
        assert item.id in ids[tenant]
        assert item.id not in other
    assert page.count == len(page.results)


def test_reads_on_unknown_tenant_create_nothing(tmp_path, embedder):
    """Lookups are reads: a typo'd or erased tenant must not be (re)created by them."""
    client = chromadb.PersistentClient(path=str(tmp_path / "db"))
    with MemoryEngine(client=client, embedder=embedder) as eng:
        eng.remember([{"role": "user", "text": "hi", "timestamp": TS}], session_id="s", tenant_id="gone")
        eng.erase(tenant_id="gone")
        before = sorted(c.name for c in client.list_collections())
        for tenant in ("gone", "typo"):
            for call in (
                lambda t=tenant: eng.get("x", tenant_id=t),
                lambda t=tenant: eng.history("x", tenant_id=t),
                lambda t=tenant: eng.update("x", text="y", tenant_id=t),
                lambda t=tenant: eng.delete("x", tenant_id=t),
            ):
                with pytest.raises(NotFoundError):
                    call()
            assert eng.get_many(["x"], tenant_id=tenant) == []
            assert eng.list(tenant_id=tenant).count == 0
            assert eng.search("hi", tenant_id=tenant).results == []
            assert eng.get_messages("s", tenant_id=tenant) == []
        assert sorted(c.name for c in client.list_collections()) == before


def test_a_new_tenant_costs_lookups_by_name_never_a_listing(tmp_path, embedder):
    # Listing every collection per new tenant made building 2,000 tenants quadratic (chromadb's
    # list_collections builds a Collection object per collection). The real client is wrapped
    # only to count its calls.
    client = chromadb.PersistentClient(path=str(tmp_path / "db"))
    listed = []
    real = client.list_collections

    def counting(*a, **kw):
        listed.append(1)
        return real(*a, **kw)

    client.list_collections = counting
    eng = MemoryEngine(client=client, embedder=embedder)
    try:
        for t in range(6):
            eng.remember([{"role": "user", "text": f"hello from tenant {t}", "timestamp": TS}],
                         session_id="s", user_id="u", tenant_id=f"t{t}")  # fmt: skip
            assert len(eng.search("hello", tenant_id=f"t{t}").results) == 1
        eng.erase(tenant_id="t0")
        assert listed == []
        assert "t0" not in eng.tenants() and len(listed) == 1  # listing is for listing tenants
    finally:
        eng.close()
