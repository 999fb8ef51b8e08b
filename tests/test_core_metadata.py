"""Caller metadata: exact round-trips, no collisions with engine fields, filterable."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from typing import Any

import pytest

T0 = datetime(2025, 1, 1, tzinfo=timezone.utc)


def strict_equal(a: Any, b: Any) -> bool:
    """Equality that also tells bool from int and int from float, recursively."""
    if type(a) is not type(b):
        return False
    if isinstance(a, dict):
        return a.keys() == b.keys() and all(strict_equal(a[k], b[k]) for k in a)
    if isinstance(a, list):
        return len(a) == len(b) and all(strict_equal(x, y) for x, y in zip(a, b, strict=True))
    return a == b


RICH = {
    "nested": {"a": {"b": [1, 2, {"c": None}]}, "empty": {}},
    "list": [1, "two", 3.5, True, None, [], {}],
    "unicode": "naïve café ☕ — 日本語 🙂",
    "flag": True,
    "zero_flag": False,
    "one": 1,
    "one_float": 1.0,
    "neg_zero": -0.0,
    "big": 2**70,
    "small": -(2**63),
    "tiny": 1e-300,
    "none": None,
    "empty_str": "",
    "dotted.key": "x",
    "$dollar": "y",
}


def test_rich_metadata_roundtrips_exactly_on_turns_and_memories(engine):
    w = engine.remember([{"role": "user", "text": "t", "timestamp": T0.isoformat(), "metadata": RICH}],
                        session_id="s")  # fmt: skip
    got = engine.get(w.active_ids[0]).metadata
    assert strict_equal(got, RICH), got
    a = engine.add(raw_text="memo", metadata=RICH)
    assert strict_equal(engine.get(a.memory_id).metadata, RICH)
    # Reads of every kind return the same metadata.
    assert strict_equal(engine.get_messages("s")[0].metadata, RICH)
    assert strict_equal(engine.search("memo", k=5).results[0].metadata, RICH)
    assert all(strict_equal(i.metadata, RICH) for i in engine.list().results)


COLLIDING = {
    "kind": "fact",
    "seq": -1,
    "user_id": "mallory",
    "session_id": "other-session",
    "tenant_id": "other-tenant",
    "meta": "not the engine's json",
    "status": "archived",
    "expires_at": 0,
    "indexed": False,
    "is_latest": False,
    "role": "system",
    "version": 99,
    "parent_id": "p",
    "ts": 0,
    "m.kind": "double prefix",
}


def test_caller_keys_named_like_engine_fields_survive_and_change_nothing(engine):
    turns = [
        {"role": "user", "text": f"message {i}", "timestamp": (T0 + timedelta(minutes=i)).isoformat(),
         "metadata": COLLIDING}
        for i in range(3)
    ]  # fmt: skip
    w = engine.remember(turns, session_id="s", user_id="alice")
    items = engine.get_many(w.active_ids)
    for item in items:
        assert item.metadata == COLLIDING
        assert item.kind == "turn"
        assert item.user_id == "alice"
        assert item.session_id == "s"
        assert item.tenant_id == "default"
        assert item.role == "user"
        assert item.status == "active"
        assert item.version == 1
        assert item.expires_at is None
        assert item.parent_id is None
        assert item.timestamp >= T0
    # Behaviour is unaffected: order, status counts, visibility, search, scope filters.
    assert [m.id for m in engine.get_messages("s")] == w.active_ids
    assert engine.count_turns("s", status="active") == 3
    assert engine.get_messages("other-session") == []
    assert engine.list(user_id="mallory").count == 0
    assert engine.list({"kind": "fact"}).count == 0
    assert engine.list({"kind": "turn"}).count == 3
    assert {h.id for h in engine.search("message", user_id="alice").results} == set(w.active_ids)
    assert engine.list(tenant_id="other-tenant").count == 0
    # And the caller's copies are filterable under the metadata namespace.
    assert engine.list({"metadata.kind": "fact"}).count == 3
    assert engine.list({"metadata.user_id": "mallory"}).count == 3
    # Updating caller metadata does not touch engine fields either.
    engine.update(w.active_ids[0], metadata={"status": "deleted", "seq": 10**9})
    item = engine.get(w.active_ids[0])
    assert item.status == "active" and item.metadata["status"] == "deleted"
    assert [m.id for m in engine.get_messages("s")] == w.active_ids


def test_colliding_keys_on_add(engine):
    a = engine.add(raw_text="memo about cats", metadata=COLLIDING, user_id="alice")
    item = engine.get(a.memory_id)
    assert item.metadata == COLLIDING
    assert item.kind == "raw" and item.user_id == "alice" and item.expires_at is None
    assert [h.id for h in engine.search("cats", user_id="alice").results] == [a.memory_id]


def test_top_level_scalar_metadata_is_filterable(engine):
    engine.remember(
        [{"role": "user", "text": "a", "timestamp": T0.isoformat(), "metadata": {"topic": "food", "n": 3}},
         {"role": "user", "text": "b", "timestamp": T0.isoformat(), "metadata": {"topic": "work", "n": 7}}],
        session_id="s",
    )  # fmt: skip
    assert [i.text for i in engine.list({"topic": "food"}).results] == ["a"]
    assert [i.text for i in engine.list({"metadata.n": {"$gt": 5}}).results] == ["b"]
    assert [i.text for i in engine.search("x", filters={"topic": {"$in": ["work"]}}).results] == ["b"]


@pytest.mark.parametrize(
    "bad",
    [
        {"dt": datetime(2025, 1, 1)},
        {"obj": object()},
        {"nan": float("nan")},
        {"inf": float("-inf")},
        {"nested": {"set": {1}}},
        {"bytes": b"x"},
        {1: "non-string key"},
        {"tuple": (1, 2)},
    ],
)
def test_non_json_metadata_is_a_validation_error(engine, bad):
    from mem_adapters import ValidationError

    with pytest.raises(ValidationError) as e:
        engine.remember([{"role": "user", "text": "x", "timestamp": T0.isoformat(), "metadata": bad}],
                        session_id="s")  # fmt: skip
    assert "metadata" in e.value.field
    with pytest.raises(ValidationError):
        engine.add(raw_text="x", metadata=bad)
    assert engine.list().count == 0
