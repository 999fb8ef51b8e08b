"""Caller ids are scoped per user and session; duplicate ids in a batch are refused.

Every test runs a real embedded Chroma (the ``engine`` fixture) and checks what was stored.
"""

from __future__ import annotations

import pytest

from mem_adapters import NotFoundError, ValidationError
from mem_adapters import records as rec


def _turn(text: str, caller_id: str | None = None, minute: int = 0) -> dict:
    turn = {"role": "user", "text": text, "timestamp": f"2025-03-01T09:{minute:02d}:00Z"}
    if caller_id is not None:
        turn["id"] = caller_id
    return turn


def _raw_count(engine, tenant_id: str = "default") -> int:
    pair = engine.run(engine.aengine.collections(tenant_id, create=False))
    return 0 if pair is None else engine.run(pair[0].count())


# ---------------------------------------------------------------- the id scheme


def test_turn_id_has_no_delimiter_ambiguity():
    # Session "a:b" + id "c" and session "a" + id "b:c" (the LangChain prefix collision).
    assert rec.turn_id("t", None, "u", "a:b", "c") != rec.turn_id("t", None, "u", "a", "b:c")
    # Absent scope levels: None and "" are the same; they differ from a real value.
    assert rec.turn_id("t", None, None, "s", "x") == rec.turn_id("t", "", "", "s", "x")
    assert rec.turn_id("t", None, "u", "s", "x") != rec.turn_id("t", "u", None, "s", "x")
    assert rec.raw_id("t", None, "u", "a:b") != rec.raw_id("t", "u", "a", "b")


def test_same_caller_id_from_two_users_and_two_sessions_are_four_turns(engine):
    res = [
        engine.remember([_turn(f"{user} in {session}", "m1")], session_id=session, user_id=user)
        for user in ("alice", "bob")
        for session in ("s1", "s2")
    ]
    assert [r.created for r in res] == [1, 1, 1, 1]
    ids = [r.active_ids[0] for r in res]
    assert len(set(ids)) == 4 and "m1" not in ids
    for user in ("alice", "bob"):
        for session in ("s1", "s2"):
            (item,) = engine.get_messages(session, user_id=user)
            assert (item.text, item.caller_id) == (f"{user} in {session}", "m1")


def test_delimiters_in_session_and_id_do_not_collide(engine):
    a = engine.remember([_turn("first", "c")], session_id="a:b")
    b = engine.remember([_turn("second", "b:c")], session_id="a")
    assert (a.created, b.created) == (1, 1)
    assert [m.text for m in engine.get_messages("a:b")] == ["first"]
    assert [m.text for m in engine.get_messages("a")] == ["second"]


def test_resending_a_turn_with_a_caller_id_is_a_no_op(engine):
    first = engine.remember([_turn("hello", "m1"), _turn("again", "m2", 1)], session_id="s", user_id="u")
    # A retrying client may stamp the turn anew: still the same turn.
    again = engine.remember(
        [{**_turn("hello", "m1"), "timestamp": "2025-03-02T00:00:00Z"}], session_id="s", user_id="u"
    )
    assert (again.created, again.duplicates) == (0, 1)
    assert again.active_ids == first.active_ids[:1]
    assert [m.text for m in engine.get_messages("s")] == ["hello", "again"]


def test_reusing_an_id_for_another_turn_in_the_same_scope_is_an_error(engine):
    engine.remember([_turn("hello", "m1")], session_id="s", user_id="u")
    with pytest.raises(ValidationError) as err:
        engine.remember([_turn("ok", "m0"), _turn("something else", "m1", 1)], session_id="s", user_id="u")
    assert err.value.field == "turns[1].id"
    assert [m.text for m in engine.get_messages("s")] == ["hello"]  # nothing of the batch written


def test_duplicate_caller_ids_in_one_batch_name_both_positions_and_write_nothing(engine):
    turns = [_turn("one", "x"), _turn("two", "y", 1), _turn("three", "x", 2)]
    with pytest.raises(ValidationError) as err:
        engine.remember(turns, session_id="s", user_id="u")
    assert err.value.field == "turns[2].id"
    assert "turns[0]" in str(err.value) and "turns[2]" in str(err.value)
    assert _raw_count(engine) == 0
    # Identical duplicates are refused too (the second would otherwise vanish silently).
    with pytest.raises(ValidationError):
        engine.remember([_turn("one", "x"), _turn("one", "x")], session_id="s", user_id="u")
    assert _raw_count(engine) == 0


def test_identical_turns_without_ids_are_one_turn(engine):
    # Documented: without ids a turn is its content (and timestamp); give ids to keep both.
    res = engine.remember([_turn("ok"), _turn("ok")], session_id="s")
    assert (res.created, res.duplicates) == (1, 1)
    assert res.active_ids[0] == res.active_ids[1]


def test_get_update_delete_by_caller_id(engine):
    engine.remember([_turn("alice says hi", "m1")], session_id="s", user_id="alice")
    engine.remember([_turn("bob says hi", "m1")], session_id="s", user_id="bob")
    with pytest.raises(ValidationError):  # two users' "m1": which one?
        engine.get("m1")
    bob = engine.get("m1", user_id="bob")
    assert (bob.text, bob.caller_id, bob.user_id) == ("bob says hi", "m1", "bob")
    assert engine.get(bob.id).text == "bob says hi"  # the stored id always works
    engine.delete(bob.id)
    assert engine.get("m1").text == "alice says hi"  # now unambiguous
    engine.update("m1", metadata={"seen": True})
    assert engine.get("m1", user_id="alice").metadata == {"seen": True}
    engine.delete("m1")
    with pytest.raises(NotFoundError):
        engine.get("m1")
    with pytest.raises(NotFoundError):
        engine.get("m1", user_id="carol")


# ---------------------------------------------------------------- raw memories


def test_memory_id_is_echoed_and_scoped_per_user(engine):
    a = engine.add(raw_text="Alice's partner is Sam.", user_id="alice", memory_id="partner")
    b = engine.add(raw_text="Bob's partner is Kim.", user_id="bob", memory_id="partner")
    assert (a.memory_id, b.memory_id) == ("partner", "partner")
    assert a.record_id != b.record_id and None not in (a.record_id, b.record_id)
    assert engine.get("partner", user_id="alice").text == "Alice's partner is Sam."
    assert engine.get("partner", user_id="bob").text == "Bob's partner is Kim."
    item = engine.get(a.record_id)
    assert (item.id, item.caller_id) == (a.record_id, "partner")
    # Same memory_id, same user: a keyed replacement of that user's memory only.
    again = engine.add(raw_text="Alice's partner is Sam; married 2024.", user_id="alice", memory_id="partner")
    assert (again.memory_id, again.record_id) == ("partner", a.record_id)
    assert [h.event for h in engine.history("partner", user_id="alice")] == ["ADD", "UPDATE"]
    assert [h.event for h in engine.history("partner", user_id="bob")] == ["ADD"]
    assert engine.get("partner", user_id="bob").version == 1
    # A sub-tenant is its own scope too.
    c = engine.add(raw_text="Team note.", user_id="alice", sub_tenant_id="team", memory_id="partner")
    assert c.record_id not in (a.record_id, b.record_id)


def test_generated_memory_id_is_the_stored_id(engine):
    res = engine.add(raw_text="No id given.", user_id="u")
    assert res.memory_id == res.record_id and res.memory_id.startswith("mem_")
    assert engine.get(res.memory_id).caller_id is None


def test_update_and_history_by_caller_memory_id(engine):
    res = engine.add(raw_text="Dana's partner is Sam.", user_id="dana", memory_id="partner")
    updated = engine.update("partner", text="Dana's partner is Sam; they married in 2024.")
    assert (updated.id, updated.caller_id) == (res.record_id, "partner")
    assert [h.event for h in engine.history("partner")] == ["ADD", "UPDATE"]
    engine.delete("partner")
    # A deleted memory's history is still found by the caller's id.
    assert [h.event for h in engine.history("partner")] == ["ADD", "UPDATE", "DELETE"]
    assert {h.memory_id for h in engine.history("partner")} == {res.record_id}


def test_long_memory_with_a_caller_id_keeps_its_chunks_under_the_stored_id(engine):
    text = " ".join(f"Sentence {i} about the garden and its roses." for i in range(120))
    res = engine.add(raw_text=text, user_id="u", memory_id="garden")
    assert res.original_chunks > 1
    chunks = engine.list(kinds=["chunk"], page_size=1000).results
    assert len(chunks) == res.original_chunks
    assert {c.parent_id for c in chunks} == {res.record_id}
    engine.delete("garden")
    assert engine.list(page_size=1000).count == 0
