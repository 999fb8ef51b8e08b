"""A corpus of bad input: each case is a typed error or a documented result, nothing is written.

Every case runs against one seeded embedded store; the raw Chroma contents (every collection's
ids, documents and metadata) are compared before and after it, and the tenant must still work
afterwards. Documented results that do write (the far-future timestamp, the metadata bomb,
configurable limits) have their own tests below.
"""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import chromadb
import pytest

from mem_adapters import MemoryEngine
from mem_adapters.errors import (
    JobError,
    LimitExceededError,
    MemAdaptersError,
    NotFoundError,
    ValidationError,
)
from mem_adapters.limits import DEFAULT_LIMITS, Limits

S = "bad\ud800text"  # a lone surrogate: not encodable as UTF-8
NAN, INF = float("nan"), float("inf")
KB = 1024


def _deep(levels: int) -> dict[str, Any]:
    out: dict[str, Any] = {"leaf": 1}
    for _ in range(levels - 1):
        out = {"d": out}
    return out


BIG_META = {"blob": "x" * (DEFAULT_LIMITS.max_metadata_bytes + 1)}
DEEP_META = _deep(DEFAULT_LIMITS.max_metadata_depth + 1)
TURN_TOO_BIG = "y" * (DEFAULT_LIMITS.max_turn_bytes + 1)
TURN_TOO_BIG_UTF8 = "é" * (DEFAULT_LIMITS.max_turn_bytes // 2 + 1)  # fewer chars than bytes
RAW_TOO_BIG = "z" * (DEFAULT_LIMITS.max_raw_bytes + 1)


@dataclass
class Case:
    """One bad call: ``expect`` is an exception class, or a checker of the documented result."""

    name: str
    call: Callable[[MemoryEngine], Any]
    expect: type[BaseException] | Callable[[Any], bool]


CASES: list[Case] = []


def err(name: str, call: Callable[[MemoryEngine], Any], exc: type[BaseException] = ValidationError) -> None:
    CASES.append(Case(name, call, exc))


def doc(name: str, call: Callable[[MemoryEngine], Any], check: Callable[[Any], bool]) -> None:
    CASES.append(Case(name, call, check))


def turn(**kw: Any) -> list[dict[str, Any]]:
    return [{"role": "user", "text": "fine text", **kw}]


# --- remember: the batch and each turn ------------------------------------------------------
for label, turns in [
    ("None", None),
    ("str", "hello"),
    ("one dict", {"role": "user", "text": "x"}),
    ("empty", []),
    ("int item", [5]),
    ("str item", ["hello"]),
    ("missing text", [{"role": "user"}]),
    ("missing role", [{"text": "x"}]),
    ("empty text", turn(text="")),
    ("blank text", turn(text="   ")),
    ("int text", turn(text=5)),
    ("surrogate text", turn(text=S)),
    ("text over limit", turn(text=TURN_TOO_BIG)),
    ("empty role", turn(role="")),
    ("int role", turn(role=3)),
    ("surrogate role", turn(role=S)),
    ("extra key", turn(bogus=1)),
    ("bogus timestamp", turn(timestamp="yesterday")),
    ("int timestamp", turn(timestamp=5)),
    ("timestamp past year 9999 in UTC", turn(timestamp="9999-12-31T23:00:00-05:00")),
    ("metadata str", turn(metadata="x")),
    ("metadata NaN", turn(metadata={"a": NAN})),
    ("metadata inf nested", turn(metadata={"a": [1, INF]})),
    ("metadata set", turn(metadata={"a": {1, 2}})),
    ("metadata int key", turn(metadata={1: "a"})),
    ("metadata tuple", turn(metadata={"a": (1, 2)})),
    ("metadata surrogate value", turn(metadata={"a": S})),
    ("metadata surrogate key", turn(metadata={S: 1})),
    ("metadata too deep", turn(metadata=DEEP_META)),
    ("observation int", turn(observations=[5])),
    ("observation no text", turn(observations=[{"text": None}])),
    ("observation empty text", turn(observations=[""])),
    ("observation surrogate", turn(observations=[S])),
    ("observation metadata NaN", turn(observations=[{"text": "o", "metadata": {"a": NAN}}])),
    ("empty id", turn(id="")),
    ("int id", turn(id=5)),
    ("surrogate id", turn(id=S)),
]:
    err(f"remember turns {label}", lambda e, t=turns: e.remember(t, session_id="s1"))
err(
    "remember metadata too big",
    lambda e: e.remember(turn(metadata=BIG_META), session_id="s1"),
    LimitExceededError,
)
err(
    "remember text over limit",
    lambda e: e.remember(turn(text=TURN_TOO_BIG), session_id="s1"),
    LimitExceededError,
)
err(
    "remember utf-8 text over limit",
    lambda e: e.remember(turn(text=TURN_TOO_BIG_UTF8), session_id="s1"),
    LimitExceededError,
)
err(
    "remember observation over limit",
    lambda e: e.remember(turn(observations=[TURN_TOO_BIG]), session_id="s1"),
    LimitExceededError,
)
for arg in ("session_id", "user_id", "agent_id", "sub_tenant_id", "sub_session_id", "tenant_id"):
    for label, value in (("int", 5), ("empty", ""), ("surrogate", S), ("list", ["x"])):
        kw = {"session_id": "s1", arg: value}
        err(f"remember {arg} {label}", lambda e, kw=kw: e.remember(turn(), **kw))
err("remember session_id None", lambda e: e.remember(turn(), session_id=None))
err("remember id over limit", lambda e: e.remember(turn(), session_id="s" * 2000), LimitExceededError)
for label, value in (("bogus", "bogus"), ("None", None), ("int", 1)):
    err(f"remember status {label}", lambda e, v=value: e.remember(turn(), session_id="s1", status=v))
for label, value in (("str", "x"), ("list", [1]), ("NaN", {"a": NAN}), ("deep", DEEP_META)):
    err(f"remember metadata {label}", lambda e, v=value: e.remember(turn(), session_id="s1", metadata=v))

# --- record_message -------------------------------------------------------------------------
RM = {"user_id": "alice", "customer_id": "default"}
for label, args, kw in [
    ("role system", ("c1", "system", "hi"), RM),
    ("role int", ("c1", 5, "hi"), RM),
    ("content empty", ("c1", "user", ""), RM),
    ("content int", ("c1", "user", 5), RM),
    ("content surrogate", ("c1", "user", S), RM),
    ("conversation empty", ("", "user", "hi"), RM),
    ("conversation int", (7, "user", "hi"), RM),
    ("user None", ("c1", "user", "hi"), {**RM, "user_id": None}),
    ("customer int", ("c1", "user", "hi"), {**RM, "customer_id": 5}),
    ("session int", ("c1", "user", "hi"), {**RM, "session_id": 5}),
    ("metadata str", ("c1", "user", "hi"), {**RM, "metadata": "x"}),
    ("metadata NaN", ("c1", "user", "hi"), {**RM, "metadata": {"a": NAN}}),
]:
    err(f"record_message {label}", lambda e, a=args, k=kw: e.record_message(*a, **k))
err(
    "record_message content over limit",
    lambda e: e.record_message("c1", "user", TURN_TOO_BIG, **RM),
    LimitExceededError,
)

# --- add --------------------------------------------------------------------------------------
for label, kw in [
    ("neither", {}),
    ("both", {"raw_text": "a", "pairs": [("a", "b")]}),
    ("raw empty", {"raw_text": ""}),
    ("raw blank", {"raw_text": "  "}),
    ("raw int", {"raw_text": 5}),
    ("raw surrogate", {"raw_text": S}),
    ("pairs empty", {"pairs": []}),
    ("pairs str", {"pairs": "ab"}),
    ("pairs one-tuple", {"pairs": [("a",)]}),
    ("pairs int side", {"pairs": [(5, "x")]}),
    ("pairs both empty", {"pairs": [("", " ")]}),
    ("pairs surrogate", {"pairs": [{"user": S, "assistant": "ok"}]}),
    ("expiry 0", {"raw_text": "a", "expiry_seconds": 0}),
    ("expiry negative", {"raw_text": "a", "expiry_seconds": -1}),
    ("expiry NaN", {"raw_text": "a", "expiry_seconds": NAN}),
    ("expiry inf", {"raw_text": "a", "expiry_seconds": INF}),
    ("expiry -inf", {"raw_text": "a", "expiry_seconds": -INF}),
    ("expiry bool", {"raw_text": "a", "expiry_seconds": True}),
    ("expiry str", {"raw_text": "a", "expiry_seconds": "5"}),
    ("memory_id empty", {"raw_text": "a", "memory_id": ""}),
    ("memory_id int", {"raw_text": "a", "memory_id": 5}),
    ("memory_id surrogate", {"raw_text": "a", "memory_id": S}),
    ("tenant surrogate", {"raw_text": "a", "tenant_id": S}),
    ("tenant None", {"raw_text": "a", "tenant_id": None}),
    ("user int", {"raw_text": "a", "user_id": 5}),
    ("agent empty", {"raw_text": "a", "agent_id": ""}),
    ("session list", {"raw_text": "a", "session_id": ["s"]}),
    ("sub_tenant surrogate", {"raw_text": "a", "sub_tenant_id": S}),
    ("infer str", {"raw_text": "a", "infer": "yes"}),
    ("index str", {"raw_text": "a", "index": "no"}),
    ("metadata str", {"raw_text": "a", "metadata": "x"}),
    ("metadata NaN", {"raw_text": "a", "metadata": {"a": NAN}}),
    ("metadata deep", {"raw_text": "a", "metadata": DEEP_META}),
    ("custom_instructions int", {"raw_text": "a", "custom_instructions": 5}),
    ("user_name int", {"pairs": [("a", "b")], "user_name": 5}),
]:
    err(f"add {label}", lambda e, kw=kw: e.add(**kw))
err("add raw over limit", lambda e: e.add(raw_text=RAW_TOO_BIG), LimitExceededError)
err("add metadata too big", lambda e: e.add(raw_text="a", metadata=BIG_META), LimitExceededError)

# --- reads by id ------------------------------------------------------------------------------
for label, value in (("empty", ""), ("None", None), ("int", 5), ("surrogate", S)):
    err(f"get id {label}", lambda e, v=value: e.get(v))
    err(f"history id {label}", lambda e, v=value: e.history(v))
    err(f"delete id {label}", lambda e, v=value: e.delete(v))
for label, value in (("int", 5), ("empty", ""), ("surrogate", S)):
    err(f"get tenant {label}", lambda e, v=value: e.get("mem1", tenant_id=v))
    err(f"delete tenant {label}", lambda e, v=value: e.delete("mem1", tenant_id=v))
err("get unknown", lambda e: e.get("nope"), NotFoundError)
err("history unknown", lambda e: e.history("nope"), NotFoundError)
err("delete unknown", lambda e: e.delete("nope"), NotFoundError)
err("get in another tenant", lambda e: e.get("mem1", tenant_id="t2"), NotFoundError)
for label, value in (
    ("str", "abc"),
    ("None", None),
    ("int", 5),
    ("None item", [None]),
    ("int item", [5]),
    ("empty item", [""]),
    ("surrogate item", [S]),
    ("dict", {"mem1": 1}),
):
    err(f"get_many {label}", lambda e, v=value: e.get_many(v))
    err(f"delete_many {label}", lambda e, v=value: e.delete_many(v))
    err(f"set_status {label}", lambda e, v=value: e.set_status(v, "archived"))
    err(f"touch {label}", lambda e, v=value: e.touch(v, 60))
doc("get_many empty list", lambda e: e.get_many([]), lambda r: r == [])
doc("get_many unknown ids", lambda e: e.get_many(["nope", "nada"]), lambda r: r == [])
doc(
    "get_many tuple, repeated",
    lambda e: e.get_many((e.get("mem1").id,) * 2),  # stored ids; "mem1" is the caller's id
    lambda r: [m.caller_id for m in r] == ["mem1"] * 2,
)
doc("delete_many empty", lambda e: e.delete_many([]), lambda r: r == [])
doc("delete_many unknown", lambda e: e.delete_many(["nope"]), lambda r: r == [])
doc("touch unknown", lambda e: e.touch(["nope"], 60), lambda r: r == [])
doc("set_status unknown", lambda e: e.set_status(["nope"], "archived"), lambda r: r == [])
doc("set_status unchanged", lambda e: e.set_status(["mem1"], "active"), lambda r: r == [])

# --- list -------------------------------------------------------------------------------------
for label, kw in [
    ("page 0", {"page": 0}),
    ("page str", {"page": "1"}),
    ("page bool", {"page": True}),
    ("page float", {"page": 1.5}),
    ("page_size 0", {"page_size": 0}),
    ("page_size 1001", {"page_size": 1001}),
    ("page_size str", {"page_size": "5"}),
    ("filters str", {"filters": "x"}),
    ("filters bad operator", {"filters": {"role": {"$bogus": 1}}}),
    ("filters empty $and", {"filters": {"$and": []}}),
    ("kinds bogus", {"kinds": ["bogus"]}),
    ("kinds str", {"kinds": "turn"}),
    ("kinds empty", {"kinds": []}),
    ("kinds int item", {"kinds": [1]}),
    ("user int", {"user_id": 5}),
    ("user surrogate", {"user_id": S}),
    ("session empty", {"session_id": ""}),
    ("agent list", {"agent_id": ["a"]}),
    ("sub_tenant int", {"sub_tenant_id": 1}),
    ("tenant int", {"tenant_id": 5}),
]:
    err(f"list {label}", lambda e, kw=kw: e.list(**kw))
doc(
    "list page past the end",
    lambda e: e.list(page=99),
    lambda r: r.results == [] and r.count > 0 and r.next is None,
)
doc("list unknown tenant", lambda e: e.list(tenant_id="nobody-here"), lambda r: r.count == 0)

# --- transcripts ------------------------------------------------------------------------------
for label, kw in [
    ("limit str", {"limit": "3"}),
    ("limit -1", {"limit": -1}),
    ("limit float", {"limit": 1.5}),
    ("limit bool", {"limit": True}),
    ("status bogus", {"status": "bogus"}),
    ("status int", {"status": 1}),
    ("last str", {"last": "yes"}),
    ("user int", {"user_id": 5}),
    ("tenant surrogate", {"tenant_id": S}),
]:
    err(f"get_messages {label}", lambda e, kw=kw: e.get_messages("s1", **kw))
for label, value in (("empty", ""), ("int", 5), ("surrogate", S), ("None", None)):
    err(f"get_messages session {label}", lambda e, v=value: e.get_messages(v))
    err(f"count_turns session {label}", lambda e, v=value: e.count_turns(v))
    err(f"clear_session {label}", lambda e, v=value: e.clear_session(v))
    err(f"archive_oldest session {label}", lambda e, v=value: e.archive_oldest(v, 1))
err("count_turns status bogus", lambda e: e.count_turns("s1", status="bogus"))
err("clear_session tenant int", lambda e: e.clear_session("s1", tenant_id=5))
doc("get_messages limit 0", lambda e: e.get_messages("s1", limit=0), lambda r: r == [])
doc(
    "get_messages last 2",
    lambda e: e.get_messages("s1", limit=2, last=True),
    lambda r: [m.text for m in r] == ["turn two", "turn three"],
)
doc("get_messages unknown session", lambda e: e.get_messages("nope"), lambda r: r == [])
doc("count_turns unknown session", lambda e: e.count_turns("nope"), lambda r: r == 0)
doc("clear_session unknown session", lambda e: e.clear_session("nope"), lambda r: r == 0)
for name in ("archive_oldest", "delete_oldest"):
    for label, value in (("str", "2"), ("float", 1.5), ("negative", -1), ("bool", True), ("None", None)):
        err(f"{name} n {label}", lambda e, name=name, v=value: getattr(e, name)("s1", v))
    doc(f"{name} n 0", lambda e, name=name: getattr(e, name)("s1", 0), lambda r: r == [])
err("delete_oldest status bogus", lambda e: e.delete_oldest("s1", 1, status="bogus"))
err("set_status bogus", lambda e: e.set_status(["mem1"], "bogus"))
err("set_status status None", lambda e: e.set_status(["mem1"], None))
for label, value in (("0", 0), ("negative", -5), ("NaN", NAN), ("inf", INF), ("str", "5"), ("bool", True)):
    err(f"touch expiry {label}", lambda e, v=value: e.touch(["mem1"], v))

# --- update -----------------------------------------------------------------------------------
for label, kw in [
    ("nothing", {}),
    ("text empty", {"text": ""}),
    ("text int", {"text": 5}),
    ("text surrogate", {"text": S}),
    ("metadata str", {"metadata": "x"}),
    ("metadata NaN", {"metadata": {"a": NAN}}),
    ("metadata deep", {"metadata": DEEP_META}),
    ("metadata surrogate key", {"metadata": {S: 1}}),
]:
    err(f"update {label}", lambda e, kw=kw: e.update("mem1", **kw))
err("update metadata too big", lambda e: e.update("mem1", metadata=BIG_META), LimitExceededError)
err("update text over limit", lambda e: e.update("mem1", text=RAW_TOO_BIG), LimitExceededError)
err(
    "update turn text over the turn limit",
    lambda e: e.update(e.get_messages("s1")[0].id, text=TURN_TOO_BIG),
    LimitExceededError,
)
err("update unknown", lambda e: e.update("nope", text="x"), NotFoundError)
err("update id int", lambda e: e.update(5, text="x"))

# --- search -----------------------------------------------------------------------------------
for label, kw in [
    ("k 0", {"k": 0}),
    ("k str", {"k": "5"}),
    ("k bool", {"k": True}),
    ("k float", {"k": 1.5}),
    ("mode bogus", {"mode": "bogus"}),
    ("mode int", {"mode": 1}),
    ("char_budget bool", {"char_budget": True}),
    ("char_budget 0", {"char_budget": 0}),
    ("char_budget negative", {"char_budget": -1}),
    ("char_budget str", {"char_budget": "5"}),
    ("char_budget float", {"char_budget": 10.5}),
    ("kinds bogus", {"kinds": ["bogus"]}),
    ("kinds str", {"kinds": "turn"}),
    ("kinds empty", {"kinds": []}),
    ("filters str", {"filters": "x"}),
    ("filters list", {"filters": [{"role": "user"}]}),
    ("filters empty $or", {"filters": {"$or": []}}),
    ("filters bad operator", {"filters": {"role": {"$bogus": 1}}}),
    ("time_range str", {"time_range": "2025"}),
    ("time_range triple", {"time_range": (None, None, None)}),
    ("time_range bogus", {"time_range": ("bogus", None)}),
    ("time_range int", {"time_range": (5, None)}),
    ("time_range past year 9999", {"time_range": (None, "9999-12-31T23:00:00-05:00")}),
    ("as_of bogus", {"as_of": "bogus"}),
    ("as_of int", {"as_of": 5}),
    ("user int", {"user_id": 5}),
    ("user surrogate", {"user_id": S}),
    ("user empty", {"user_id": ""}),
    ("session int", {"session_id": 5}),
    ("agent list", {"agent_id": ["a"]}),
    ("sub_tenant empty", {"sub_tenant_id": ""}),
    ("tenant int", {"tenant_id": 5}),
    ("tenant surrogate", {"tenant_id": S}),
    ("tenant None", {"tenant_id": None}),
]:
    err(f"search {label}", lambda e, kw=kw: e.search("turn", **kw))
for label, value in (("empty", ""), ("blank", "  "), ("None", None), ("int", 5), ("surrogate", S)):
    err(f"search query {label}", lambda e, v=value: e.search(v))
err(
    "search query over limit",
    lambda e: e.search("q" * (DEFAULT_LIMITS.max_query_bytes + 1)),
    LimitExceededError,
)
doc("search unknown tenant", lambda e: e.search("turn", tenant_id="nobody-here"), lambda r: r.results == [])
doc("search unknown user", lambda e: e.search("turn", user_id="nobody"), lambda r: r.results == [])
doc(
    "search filter on an unindexed key",
    lambda e: e.search("turn", filters={"metadata.never": 1}),
    lambda r: r.results == [],
)

# --- sessions, erase, jobs, purge -------------------------------------------------------------
for label, kw in (
    ("user int", {"user_id": 5}),
    ("user surrogate", {"user_id": S}),
    ("tenant int", {"tenant_id": 5}),
):
    err(f"list_sessions {label}", lambda e, kw=kw: e.list_sessions(**kw))
for label, kw in [
    ("user int", {"user_id": 5}),
    ("user empty", {"user_id": ""}),
    ("user surrogate", {"user_id": S}),
    ("tenant empty", {"tenant_id": ""}),
    ("tenant int", {"tenant_id": 5}),
]:
    err(f"erase {label}", lambda e, kw=kw: e.erase(**kw))
doc("erase unknown tenant", lambda e: e.erase(tenant_id="nobody-here"), lambda r: r.total == 0)
doc("erase unknown user", lambda e: e.erase(user_id="nobody"), lambda r: r.total == 0)
err("job_status id int", lambda e: e.job_status(5))
err("job_status id surrogate", lambda e: e.job_status(S))
err("job_status enrichment off", lambda e: e.job_status("job-x"), JobError)
err("wait timeout NaN", lambda e: e.wait("job-x", timeout=NAN))
err("wait timeout negative", lambda e: e.wait("job-x", timeout=-1))
err("wait_all timeout str", lambda e: e.wait_all(timeout="1"))
err("wait_all enrichment off", lambda e: e.wait_all(), JobError)
err("end_session int", lambda e: e.end_session(5))
err("end_session user int", lambda e: e.end_session("s1", user_id=5))
err("purge_expired tenant int", lambda e: e.purge_expired(5))
err("purge_expired tenant surrogate", lambda e: e.purge_expired(S))


def _fingerprint(path) -> dict[str, str]:
    """Hash of every collection's full contents (ids, documents, metadata), by name."""
    client = chromadb.PersistentClient(path=str(path))
    out = {}
    for col in client.list_collections():
        got = col.get(include=["documents", "metadatas"])
        rows = sorted(
            zip(
                got["ids"],
                got["documents"],
                [json.dumps(m, sort_keys=True) for m in got["metadatas"]],
                strict=True,
            )
        )
        out[col.name] = hashlib.sha256(json.dumps(rows).encode()).hexdigest()
    return out


@pytest.fixture(scope="module")
def seeded(tmp_path_factory, embedder):
    path = tmp_path_factory.mktemp("bad-input") / "store"
    engine = MemoryEngine(path, embedder=embedder)
    texts = ["turn one", "turn two", "turn three"]
    engine.remember(
        [{"role": "user", "text": t, "timestamp": f"2025-01-01T10:0{i}:00Z"} for i, t in enumerate(texts)],
        session_id="s1",
        user_id="alice",
    )
    engine.add(raw_text="a raw memory about turns", memory_id="mem1", user_id="alice")
    engine.add(raw_text="other tenant", memory_id="mem-t2", tenant_id="t2")
    yield engine, path
    engine.close()


def test_corpus_is_big_enough():
    assert len(CASES) >= 150
    assert len({c.name for c in CASES}) == len(CASES), "case names are unique"


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_bad_input(seeded, case: Case):
    engine, path = seeded
    before = _fingerprint(path)
    if isinstance(case.expect, type):
        with pytest.raises(case.expect) as info:
            case.call(engine)
        assert isinstance(info.value, MemAdaptersError)
        if isinstance(info.value, ValidationError):
            assert info.value.field, "a validation error names its field"
    else:
        assert case.expect(case.call(engine)), "documented result"
    assert _fingerprint(path) == before, "nothing written"
    # The tenant stays usable.
    assert [m.text for m in engine.get_messages("s1")] == ["turn one", "turn two", "turn three"]


def test_tenant_usable_after_the_corpus_and_a_restart(seeded, embedder):
    engine, path = seeded
    engine.remember([{"role": "user", "text": "after the corpus"}], session_id="s2")
    assert engine.search("after the corpus", session_id="s2").results[0].text == "after the corpus"
    with MemoryEngine(path, embedder=embedder) as again:  # same process: shares the folder lock
        assert again.get("mem1").text == "a raw memory about turns"
        assert again.count_turns("s1") == 3


@pytest.mark.parametrize(
    "kwargs",
    [
        {"max_workers": 0},
        {"max_workers": -1},
        {"max_workers": "4"},
        {"max_workers": True},
        {"limits": "x"},
        {"enricher": "bogus"},
        {"partition_budget_mb": "big"},
    ],
)
def test_bad_constructor_arguments(tmp_path, embedder, kwargs):
    with pytest.raises(ValidationError):
        MemoryEngine(tmp_path / "s", embedder=embedder, **kwargs)
    with MemoryEngine(tmp_path / "s", embedder=embedder) as engine:  # nothing left locked
        assert engine.tenants() == []


def test_far_future_timestamp_round_trips(engine):
    engine.remember(
        [{"role": "user", "text": "far away", "timestamp": "9999-12-31T23:59:59Z"}], session_id="s"
    )
    (item,) = engine.get_messages("s")
    assert item.timestamp is not None and item.timestamp.isoformat() == "9999-12-31T23:59:59+00:00"
    assert item.expires_at is None  # "never" is still never
    old = "0001-01-01T00:00:00Z"
    engine.remember([{"role": "user", "text": "long ago", "timestamp": old}], session_id="s")
    assert engine.get_messages("s")[1].timestamp.year == 1


def test_huge_finite_expiry_means_never_and_nan_is_refused(engine):
    res = engine.add(raw_text="keep me", expiry_seconds=1e300)
    assert engine.get(res.memory_id).expires_at is None
    with pytest.raises(ValidationError):
        engine.touch([res.memory_id], NAN)
    assert engine.touch([res.memory_id], 1e300) == [res.memory_id]
    assert engine.get(res.memory_id).expires_at is None


def test_metadata_bomb_is_stored_unindexed_and_the_tenant_survives_a_restart(tmp_path, embedder):
    keys = 6000  # thousands of top-level keys bricked a tenant before the index cap
    bomb = {f"k{i:04d}": 0 for i in range(keys)}
    assert len(json.dumps(bomb, separators=(",", ":"))) < DEFAULT_LIMITS.max_metadata_bytes
    path = tmp_path / "store"
    with MemoryEngine(path, embedder=embedder) as engine:
        engine.remember([{"role": "user", "text": "bomb turn", "metadata": bomb}], session_id="s")
        res = engine.add(raw_text="bomb memory", metadata=bomb)
        engine.update(res.memory_id, metadata={"extra": 1, **bomb})
        engine.remember([{"role": "user", "text": "after the bomb"}], session_id="s")
        (turn_item, _) = engine.get_messages("s")
        assert turn_item.metadata == bomb  # every key is stored
        first, last = "k0000", f"k{keys - 1:04d}"
        hit = engine.list(filters={f"metadata.{first}": 0}, session_id="s")
        assert [m.text for m in hit.results] == ["bomb turn"]  # the first keys are indexed
        assert engine.list(filters={f"metadata.{last}": 0}).count == 0  # the rest are not
        assert engine.get(res.memory_id).metadata == {**bomb, "extra": 1}
    with MemoryEngine(path, embedder=embedder) as engine:  # after a restart reads and writes work
        assert engine.search("bomb", session_id="s").results
        engine.remember([{"role": "user", "text": "after the restart"}], session_id="s")
        assert engine.count_turns("s") == 3
        big = {f"k{i:05d}": i for i in range(20000)}  # > 64 KB serialized: refused
        with pytest.raises(LimitExceededError):
            engine.remember([{"role": "user", "text": "too big"}], session_id="s", metadata=big)
        assert engine.count_turns("s") == 3


def test_limits_are_configurable_per_engine(tmp_path, embedder):
    limits = Limits(max_turn_bytes=10, max_batch_turns=2, max_indexed_keys=1, max_metadata_depth=2)
    with MemoryEngine(tmp_path / "s", embedder=embedder, limits=limits) as engine:
        assert engine.aengine.limits is limits
        with pytest.raises(LimitExceededError) as info:
            engine.remember([{"role": "user", "text": "eleven char"}], session_id="s")
        assert info.value.field == "turns[0].text"
        with pytest.raises(LimitExceededError):
            engine.remember([{"role": "user", "text": f"t{i}"} for i in range(3)], session_id="s")
        with pytest.raises(LimitExceededError):
            engine.remember([{"role": "user", "text": "deep", "metadata": {"a": {"b": [1]}}}], session_id="s")
        engine.remember([{"role": "user", "text": "ok", "metadata": {"a": 1, "b": 2}}], session_id="s")
        assert engine.list(filters={"metadata.a": 1}).count == 1
        assert engine.list(filters={"metadata.b": 2}).count == 0  # only one key indexed
        assert engine.get_messages("s")[0].metadata == {"a": 1, "b": 2}
    with MemoryEngine(tmp_path / "t", embedder=embedder) as engine:  # the defaults elsewhere
        engine.remember([{"role": "user", "text": "eleven char"}], session_id="s")
    assert math.isclose(DEFAULT_LIMITS.read_timeout, 30.0)
