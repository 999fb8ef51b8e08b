"""MemAdaptersStore's user mapping: every item belongs to a user, so erase(user_id=...) reaches it.

Runs on an engine and on the service (see tests/adapter_backends.py).
"""

from __future__ import annotations

import pytest
from langchain_mem_adapters import MemAdaptersStore
from langgraph.store.base import PutOp

from mem_adapters import ValidationError

ITEMS = [
    (("alice", "memories"), "food", {"text": "allergic to shellfish"}),
    (("alice", "memories"), "pet", {"text": "has a cat called Miso"}),
    (("alice", "prefs", "travel"), "seat", {"text": "window seat"}),
    (("bob", "memories"), "food", {"text": "loves shellfish"}),
    (("bob",), "note", {"text": "plays the cello"}, False),  # un-indexed: still reached by erase
    (("carol", "memories"), "food", {"text": "vegetarian"}),
]


def _put_all(store: MemAdaptersStore) -> None:
    for ns, key, value, *index in ITEMS:
        store.put(ns, key, value, index=index[0] if index else None)


def _keys(store: MemAdaptersStore) -> set[tuple[tuple[str, ...], str]]:
    return {(tuple(i.namespace), i.key) for i in store.search((), limit=100)}


def test_default_store_puts_every_item_under_the_first_namespace_label(engine):
    store = MemAdaptersStore(engine)
    _put_all(store)
    for user in ("alice", "bob", "carol"):
        items = engine.list(user_id=user, kinds=["raw"]).results
        owned = {(tuple(i.metadata["lg_ns"]), i.metadata["lg_key"]) for i in items}
        assert owned == {(ns, key) for ns, key, *_ in ITEMS if ns[0] == user}


def test_erase_reaches_every_item_of_a_default_store_and_only_that_users(engine):
    store = MemAdaptersStore(engine)
    _put_all(store)
    receipt = engine.erase(user_id="alice")
    assert receipt.memories >= 3
    assert store.get(("alice", "memories"), "food") is None
    assert store.search(("alice",), query="shellfish") == []
    assert store.list_namespaces(prefix=("alice",)) == []
    # Bob's and Carol's items are untouched, the un-indexed one included.
    assert _keys(store) == {(ns, key) for ns, key, *_ in ITEMS if ns[0] != "alice"}
    assert [h.key for h in store.search(("bob",), query="shellfish")][:1] == ["food"]
    engine.erase(user_id="bob")
    engine.erase(user_id="carol")
    # Nothing put through the store is left out of every user's reach.
    assert _keys(store) == set()
    assert engine.list(kinds=["raw", "chunk"]).count == 0


def test_scopes_choose_the_user_level_and_a_namespace_without_it_is_refused(engine):
    store = MemAdaptersStore(engine, scopes={"user_id": 1})
    store.put(("memories", "u1"), "food", {"text": "allergic to shellfish"})
    with pytest.raises(ValidationError) as err:
        store.batch([PutOp(("memories", "u2"), "ok", {"text": "ok"}), PutOp(("memories",), "bad", {"t": 1})])
    assert err.value.field == "namespace"
    # The bad put refused the whole batch: the good put of the same batch wrote nothing.
    assert store.get(("memories", "u2"), "ok") is None
    assert [i.user_id for i in engine.list(kinds=["raw"]).results] == ["u1"]


def test_user_from_namespace_maps_any_layout(engine):
    store = MemAdaptersStore(engine, user_from_namespace=lambda ns: ns[-1].removeprefix("user-"))
    store.put(("org", "team", "user-dana"), "k", {"text": "prefers tea"})
    store.put(("org", "team", "user-eli"), "k", {"text": "prefers coffee"})
    assert [i.user_id for i in engine.list(kinds=["raw"]).results] == ["dana", "eli"]
    engine.erase(user_id="dana")
    assert store.get(("org", "team", "user-dana"), "k") is None
    assert store.get(("org", "team", "user-eli"), "k").value == {"text": "prefers coffee"}
    bad = MemAdaptersStore(engine, user_from_namespace=lambda ns: "")
    with pytest.raises(ValidationError):
        bad.put(("x",), "k", {"text": "no user"})


def test_a_store_bound_to_a_user_owns_and_sees_only_that_users_items(engine):
    alice = MemAdaptersStore(engine, user_id="alice")
    bob = MemAdaptersStore(engine, user_id="bob")
    alice.put(("notes",), "k", {"text": "alice's note about shellfish"})
    bob.put(("notes",), "k", {"text": "bob's note about shellfish"})
    assert alice.get(("notes",), "k").value == {"text": "alice's note about shellfish"}
    assert bob.get(("notes",), "k").value == {"text": "bob's note about shellfish"}
    assert [h.value["text"] for h in alice.search(("notes",), query="shellfish")] == [
        "alice's note about shellfish"
    ]
    assert [h.value["text"] for h in bob.search(("notes",))] == ["bob's note about shellfish"]
    assert alice.list_namespaces() == [("notes",)]
    engine.erase(user_id="alice")
    assert alice.get(("notes",), "k") is None
    assert bob.get(("notes",), "k").value == {"text": "bob's note about shellfish"}
    alice.delete(("notes",), "k")  # deleting what is gone is a no-op
    assert bob.get(("notes",), "k") is not None


def test_one_user_mapping_at_most(engine):
    with pytest.raises(ValidationError):
        MemAdaptersStore(engine, user_id="a", scopes={"user_id": 1})
    with pytest.raises(ValidationError):
        MemAdaptersStore(engine, user_id="a", user_from_namespace=lambda ns: ns[0])
    with pytest.raises(ValidationError):
        MemAdaptersStore(engine, user_from_namespace="not callable")  # type: ignore[arg-type]
    with pytest.raises(ValidationError):
        MemAdaptersStore(engine, user_id="")
