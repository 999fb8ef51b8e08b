"""Users never mix in shared sessions (issue 11): episodes, extraction context, reads, erase.

Each user speaks a vocabulary no other user uses (cities, foods, jobs, pets, names), so any
derived text, id list or context that crosses users is caught by a word match.
"""

from __future__ import annotations

import json
import os
import re
import tempfile
from collections.abc import Sequence
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mem_adapters import MemoryEngine
from mem_adapters.data import AUX_VECTOR
from mem_adapters.enrichment import Enricher, ExtractedFact, RuleExtractor, TurnInput
from mem_adapters.records import stable_id

T0 = datetime(2024, 3, 1, 9, 0, tzinfo=timezone.utc)
USERS = ("alice", "bob", "carol")
VOCAB: dict[str, dict[str, tuple[str, ...]]] = {
    "alice": {
        "city": ("Paris", "Lisbon"),
        "food": ("sushi", "ramen"),
        "job": ("nurse", "baker"),
        "pet": ("Rex", "Biscuit"),
        "name": ("Alicia",),
    },
    "bob": {
        "city": ("Oslo", "Cairo"),
        "food": ("tacos", "paella"),
        "job": ("pilot", "plumber"),
        "pet": ("Bruno", "Odie"),
        "name": ("Boris",),
    },
    "carol": {
        "city": ("Denver", "Kyoto"),
        "food": ("falafel", "risotto"),
        "job": ("lawyer", "dentist"),
        "pet": ("Luna", "Pickle"),
        "name": ("Camila",),
    },
}
TEMPLATES = {
    "city": "I live in {v}.",
    "food": "I really love {v}.",
    "job": "I work as a {v} at the clinic.",
    "pet": "My dog is named {v}.",
    "name": "My name is {v}.",
}
QUERIES = ("Where do I live?", "What food do I love?", "What is my job?", "What is my dog called?")


def _words(user: str) -> set[str]:
    return {w.lower() for values in VOCAB[user].values() for w in values}


def _foreign(text: str, user: str) -> set[str]:
    """Vocabulary words of users other than ``user`` found in ``text``."""
    found = set(re.findall(r"[a-z]+", text.lower()))
    return {w for other in USERS if other != user for w in _words(other)} & found


Call = tuple[str, str, str, str, int]  # (user, session, aspect, value, minutes after T0)


def _remember(engine: MemoryEngine, calls: Sequence[Call]) -> None:
    for user, session, aspect, value, minutes in calls:
        when = T0 + timedelta(minutes=minutes)
        engine.remember(
            [
                {"role": "user", "text": TEMPLATES[aspect].format(v=value), "timestamp": when.isoformat()},
                {
                    "role": "assistant",
                    "text": f"Noted: {value}.",
                    "timestamp": (when + timedelta(seconds=5)).isoformat(),
                },
            ],
            session_id=session,
            user_id=user,
        )
    engine.wait_all(timeout=600)


def _derived(engine: MemoryEngine, user: str) -> list[Any]:
    return engine.list(kinds=["fact", "episode"], user_id=user, page_size=1000).results


def _raw_records(engine: MemoryEngine) -> list[tuple[str, str, dict[str, Any]]]:
    """Every record of the default tenant as stored in Chroma (memories and aux rows)."""
    pair = engine._run(engine.aengine.collections("default", create=False))
    if pair is None:
        return []
    out = []
    for coll in pair:
        got = engine._run(coll.get_all(include=["documents", "metadatas"]))
        out += list(zip(got["ids"], [d or "" for d in got["documents"]], got["metadatas"], strict=True))
    return out


def _assert_unmixed(engine: MemoryEngine, calls: Sequence[Call]) -> None:
    """Everything a user-scoped read returns traces only to that user's turns."""
    users = sorted({c[0] for c in calls})
    turns_of: dict[str, set[str]] = {}
    for u in users:
        ids: set[str] = set()
        for s in sorted({c[1] for c in calls}):
            msgs = engine.get_messages(s, user_id=u)
            assert all(m.user_id == u for m in msgs)
            assert not any(_foreign(m.text, u) for m in msgs)
            ids |= {m.id for m in msgs}
        turns_of[u] = ids
    for u in users:
        derived = _derived(engine, u)
        facts = {d.id for d in derived if d.kind == "fact"}
        for d in derived:
            assert d.user_id == u
            assert not _foreign(d.text, u), (u, d.kind, d.text)
            assert set(d.source_ids) <= turns_of[u], (u, d.kind, d.text)
            if d.kind == "episode":
                assert set(d.attributes["turn_ids"]) <= turns_of[u]
                assert set(d.attributes["fact_ids"]) <= facts, (u, d.attributes["fact_ids"])
                assert not _foreign(json.dumps(d.attributes), u)
        for q in QUERIES:
            for mode in ("flat", "context"):
                res = engine.search(q, user_id=u, k=8, mode=mode)
                for hit in [*res.results, *res.facts, *res.episodes]:
                    assert hit.user_id == u and not _foreign(hit.text, u), (u, q, hit.text)
                    assert set(hit.source_ids) <= turns_of[u] | {hit.id}
                assert not _foreign(res.context or "", u), (u, q, res.context)


def _snapshot(engine: MemoryEngine, user: str) -> list[tuple[str, str, int, bool]]:
    """A user's derived records by content: (kind, text, turns in the episode, is latest)."""
    return sorted(
        (d.kind, d.text, len(d.attributes.get("turn_ids", [])), bool(d.is_latest))
        for d in _derived(engine, user)
    )


def _assert_erase_leaves_only_others(
    engine: MemoryEngine, calls: Sequence[Call], erased: str, root: Path
) -> None:
    erased_ids = {r[0] for r in _raw_records(engine) if r[2].get("user_id") == erased and r[2].get("kind")}
    assert erased_ids
    engine.erase(user_id=erased)
    for rid, doc, md in _raw_records(engine):
        if md.get("type") == "tombstone":
            continue  # ids only, by design (other processes' caches learn of the delete)
        blob = f"{doc} {json.dumps(md)}"
        assert md.get("user_id") != erased, (rid, md)
        assert rid not in erased_ids
        assert not [i for i in erased_ids if i in blob], (rid, doc)
        assert not (set(re.findall(r"[a-z]+", blob.lower())) & _words(erased)), (rid, doc)
    survivors = [c for c in calls if c[0] != erased]
    fresh = MemoryEngine(root / "fresh", embedder=engine.aengine.embedder, enricher=Enricher(backoff=0.01))
    try:
        _remember(fresh, survivors)
        for u in sorted({c[0] for c in survivors}):
            assert _snapshot(engine, u) == _snapshot(fresh, u), u
    finally:
        fresh.close()


def _engine(path: Path, embedder: Any, extractor: Any = None) -> MemoryEngine:
    return MemoryEngine(path, embedder=embedder, enricher=Enricher(extractor, backoff=0.01))


# ---------------------------------------------------------------- examples


CONVERSATION: list[Call] = [
    ("alice", "s1", "name", "Alicia", 0),
    ("bob", "s1", "city", "Oslo", 1),
    ("alice", "s1", "city", "Paris", 2),
    ("bob", "s1", "name", "Boris", 3),
    ("bob", "s1", "food", "tacos", 4),
    ("alice", "s1", "pet", "Rex", 5),
    ("alice", "s1", "job", "nurse", 6),
    ("bob", "s1", "pet", "Bruno", 7),
]


def test_shared_session_episodes_are_per_user(tmp_path, embedder):
    e = _engine(tmp_path / "s", embedder)
    try:
        _remember(e, CONVERSATION)
        eps = e.list(kinds=["episode"], page_size=100).results
        assert sorted(x.user_id for x in eps) == ["alice", "bob"]
        alice = next(x for x in eps if x.user_id == "alice")
        assert alice.text.startswith("Alicia: ")
        assert all(w in alice.text for w in ("Paris", "Rex", "nurse"))
        assert len(alice.attributes["turn_ids"]) == 8  # her 4 turns and the 4 replies to her
        _assert_unmixed(e, CONVERSATION)
        # end_session(user_id=...) closes only that user's episode.
        closed = e.end_session("s1", user_id="bob")
        assert closed is not None and closed.user_id == "bob" and not closed.attributes["open"]
        assert e.get(alice.id).attributes["open"] is True
    finally:
        e.close()


class _ContextRecorder(RuleExtractor):
    """The rule extractor asking for context (as LLM extractors do), recording what it is given."""

    wants_context = True

    def __init__(self) -> None:
        super().__init__()
        self.seen: list[tuple[list[str], list[str]]] = []  # (turn texts, context texts) per call

    def extract(
        self,
        turns: Sequence[TurnInput],
        *,
        context: Sequence[TurnInput] = (),
        custom_instructions: str | None = None,
    ) -> list[ExtractedFact]:
        self.seen.append(([t.text for t in turns], [c.text for c in context]))
        return super().extract(turns, context=context, custom_instructions=custom_instructions)


def test_extraction_context_holds_only_the_users_own_turns(tmp_path, embedder):
    recorder = _ContextRecorder()
    e = _engine(tmp_path / "s", embedder, recorder)
    try:
        _remember(e, CONVERSATION)
        assert len(recorder.seen) == len(CONVERSATION)
        with_context = 0
        for (texts, context), (user, *_rest) in zip(recorder.seen, CONVERSATION, strict=True):
            assert not any(_foreign(t, user) for t in texts)
            assert not any(_foreign(c, user) for c in context), (user, context)
            with_context += bool(context)
        assert with_context >= 4  # each user's later turns did get their own earlier ones
        last_alice = recorder.seen[6][1]
        assert "I live in Paris." in last_alice and "My dog is named Rex." in last_alice
    finally:
        e.close()


def test_one_job_with_two_users_turns_is_split_per_user(tmp_path, embedder):
    """A job covering several users' turns (e.g. recorded by another writer) still keeps them apart."""
    path = tmp_path / "s"
    plain = MemoryEngine(path, embedder=embedder)  # no enricher: the turns stay pending
    try:
        a = plain.remember([{"role": "user", "text": "I live in Lisbon.", "timestamp": T0.isoformat()}],
                           session_id="s", user_id="alice")  # fmt: skip
        b = plain.remember([{"role": "user", "text": "I live in Cairo.", "timestamp": T0.isoformat()}],
                           session_id="s", user_id="bob")  # fmt: skip
        _, aux = plain._run(plain.aengine.collections("default"))
        job = {"type": "job", "tenant_id": "default", "user_id": "alice", "session_id": "s",
               "status": "pending", "retrying": False, "attempts": 0, "error": "", "created_at": 1.0,
               "finished_at": 0.0, "turn_count": 2}  # fmt: skip
        doc = json.dumps({"turn_ids": [*a.active_ids, *b.active_ids]})
        plain._run(aux.upsert(["job_both"], [AUX_VECTOR], [doc], [job]))
    finally:
        plain.close()
    recorder = _ContextRecorder()
    e = _engine(path, embedder, recorder)
    try:
        e.wait_all(timeout=300)
        assert e.wait("job_both", timeout=300).status == "done"
        assert sorted(t for t, _ in recorder.seen) == [["I live in Cairo."], ["I live in Lisbon."]]
        _assert_unmixed(e, [("alice", "s", "city", "Lisbon", 0), ("bob", "s", "city", "Cairo", 0)])
        assert sorted(x.user_id for x in e.list(kinds=["episode"]).results) == ["alice", "bob"]
    finally:
        e.close()


def test_erase_regenerates_an_episode_mixed_by_an_older_release(tmp_path, embedder):
    """A store whose episode holds Alice's and Bob's turns (as before issue 11): erase(bob) rebuilds it."""
    e = _engine(tmp_path / "s", embedder)
    try:
        _remember(e, CONVERSATION)
        alice_id, clean, hid = _mix_alices_episode(e, flag=False)

        e.erase(user_id="bob")
        assert _episode_state(e.get(alice_id)) == clean
        _, aux = e._run(e.aengine.collections("default"))  # erase may rebuild the collections
        assert not e._run(aux.get(ids=[hid]))["ids"]
        assert not [r for r in _raw_records(e) if _words("bob") & set(re.findall(r"[a-z]+", r[1].lower()))]
    finally:
        e.close()


def test_erase_without_enrichment_still_cleans_mixed_episodes(tmp_path, embedder):
    path = tmp_path / "s"
    e = _engine(path, embedder)
    try:
        _remember(e, CONVERSATION[:3])
        alice = next(x for x in e.list(kinds=["episode"], page_size=100).results if x.user_id == "alice")
        bob_turns = [t.id for t in e.get_messages("s1", user_id="bob")]
        mem, _ = e._run(e.aengine.collections("default"))
        md = dict(e._run(mem.get(ids=[alice.id], include=["metadatas"]))["metadatas"][0])
        attrs = json.loads(md["attrs"])
        attrs["turn_ids"] = [*attrs["turn_ids"], *bob_turns]
        md.update(attrs=json.dumps(attrs))
        e._run(e._run(e.aengine.data()).write_records("default", [alice.id], ["Oslo " + alice.text], [md]))
    finally:
        e.close()
    plain = MemoryEngine(path, embedder=embedder)
    try:
        plain.erase(user_id="bob")
        again = plain.get(alice.id)
        assert not _foreign(again.text, "alice") and not set(bob_turns) & set(again.attributes["turn_ids"])
        assert "Paris" in again.text
    finally:
        plain.close()


def test_single_user_episode_ids_unchanged(tmp_path, embedder):
    """A session with one user keeps its episode ids: the first turn's id names the episode."""
    e = _engine(tmp_path / "s", embedder)
    try:
        calls = [c for c in CONVERSATION if c[0] == "alice"]
        _remember(e, calls)
        (ep,) = e.list(kinds=["episode"]).results
        first = e.get_messages("s1")[0].id
        assert ep.id == stable_id("e_", "default", "s1", first)
    finally:
        e.close()


# ---------------------------------------------------------------- property


@st.composite
def _conversations(draw: Any) -> tuple[list[Call], str]:
    users = draw(st.sampled_from([USERS[:2], USERS]))
    sessions = draw(st.sampled_from([("s1",), ("s1", "s2")]))
    n = draw(st.integers(min_value=len(users), max_value=7))
    calls: list[Call] = []
    minutes = 0
    for i in range(n):
        user = users[i] if i < len(users) else draw(st.sampled_from(users))
        aspect = draw(st.sampled_from(sorted(TEMPLATES)))
        value = draw(st.sampled_from(VOCAB[user][aspect]))
        minutes += draw(st.sampled_from([1, 2, 90]))  # 90: a gap that closes episodes
        calls.append((user, draw(st.sampled_from(sessions)), aspect, value, minutes))
    return calls, draw(st.sampled_from(users))


@settings(
    max_examples=int(os.environ.get("SHARED_SESSION_EXAMPLES", "5")),
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(_conversations())
def test_property_users_never_mix_and_erase_leaves_what_the_others_produce(embedder, case):
    calls, erased = case
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        e = _engine(root / "mixed", embedder)
        try:
            _remember(e, calls)
            _assert_unmixed(e, calls)
            _assert_erase_leaves_only_others(e, calls, erased, root)
            _assert_unmixed(e, [c for c in calls if c[0] != erased])
        finally:
            e.close()


@pytest.mark.parametrize("erased", ["alice", "bob"])
def test_erase_in_a_fixed_conversation(tmp_path, embedder, erased):
    e = _engine(tmp_path / "mixed", embedder)
    try:
        _remember(e, CONVERSATION)
        _assert_erase_leaves_only_others(e, CONVERSATION, erased, tmp_path)
    finally:
        e.close()


def _episode_state(item: Any) -> tuple[Any, ...]:
    """What a rewrite of an episode decides: its text and the turns and facts it lists."""
    return item.text, item.attributes["turn_ids"], item.attributes["fact_ids"]


def _mix_alices_episode(e: MemoryEngine, *, flag: bool = True) -> tuple[str, tuple[Any, ...], str]:
    """Rewrite Alice's episode as the pre-format-4 worker built it (every user's turns and
    facts, both users' words in its text, a history row quoting them); flag the tenant as
    written before format 4. Returns (episode id, its clean (text, turn ids, fact ids), history id)."""
    eps = {x.user_id: x for x in e.list(kinds=["episode"], page_size=100).results}
    alice, bob = eps["alice"], eps["bob"]
    clean = _episode_state(alice)
    turns = [t.id for t in e.get_messages("s1")]
    facts = [f.id for f in e.list(kinds=["fact"], page_size=100).results]
    mixed_text = f"{alice.text} {bob.text}"
    data = e.run(e.aengine.data())
    mem, aux = e.run(e.aengine.collections("default"))
    md = dict(e.run(mem.get(ids=[alice.id], include=["metadatas"]))["metadatas"][0])
    md.update(attrs=json.dumps({**json.loads(md["attrs"]), "turn_ids": turns, "fact_ids": facts}),
              source_ids=json.dumps(turns))  # fmt: skip
    e.run(data.write_records("default", [alice.id], [mixed_text], [md]))
    e.delete(bob.id)  # the old worker wrote Bob no episode of his own
    hid = f"h:{alice.id}:1:UPDATE"
    e.run(aux.upsert([hid], [AUX_VECTOR], [mixed_text], [{"type": "history", "memory_id": alice.id,
                                                         "version": 1, "user_id": "alice"}]))  # fmt: skip
    assert _foreign(e.get(alice.id).text, "alice")
    if flag:  # as a format-3 release left it (the next open of the tenant, in any process, repairs it)
        e.run(mem.modify_metadata({**mem.metadata, "ma_schema": 3}))
    return alice.id, clean, hid


@pytest.mark.parametrize("enrich", [True, False], ids=["enriching", "plain"])
def test_an_upgraded_store_rewrites_mixed_episodes_per_user_at_first_open(tmp_path, embedder, enrich):
    """Issue #11 on upgrade: no user-scoped read of an old store returns another user's words,
    without waiting for an erase; the repair runs once."""
    path = tmp_path / "s"
    e = _engine(path, embedder)
    try:
        _remember(e, CONVERSATION)
        episode_id, clean, hid = _mix_alices_episode(e)
    finally:
        e.close()

    again = MemoryEngine(path, embedder=embedder, enricher="default" if enrich else None)
    try:
        context = again.search("Where do I live? What do I eat?", user_id="alice", mode="context").context
        assert not _foreign(context, "alice"), context
        rebuilt = again.get(episode_id)
        assert _episode_state(rebuilt) == clean
        mem, aux = again.run(again.aengine.collections("default"))
        assert not again.run(aux.get(ids=[hid]))["ids"]
        assert mem.metadata["ma_schema"] == 4 and mem.metadata["ma_repair_episodes"] is False
        stamp = rebuilt.updated_at
    finally:
        again.close()
    third = MemoryEngine(path, embedder=embedder)
    try:
        assert third.get(episode_id).updated_at == stamp  # not rewritten a second time
    finally:
        third.close()


def test_a_repair_that_fails_leaves_the_tenant_readable_and_flagged(tmp_path, embedder, caplog):
    class Failing(Enricher):
        async def repair_mixed_episodes(self, tenant_id: str) -> int:
            raise RuntimeError("the summarizer's LLM is down")

    path = tmp_path / "s"
    e = _engine(path, embedder)
    try:
        _remember(e, CONVERSATION[:3])
        mem, _ = e.run(e.aengine.collections("default"))
        e.run(mem.modify_metadata({**mem.metadata, "ma_schema": 3}))
    finally:
        e.close()
    again = MemoryEngine(path, embedder=embedder, enricher=Failing())
    try:
        assert [m.text for m in again.get_messages("s1", user_id="alice")][:1] == ["My name is Alicia."]
        mem, _ = again.run(again.aengine.collections("default"))
        assert mem.metadata["ma_schema"] == 4 and mem.metadata["ma_repair_episodes"] is True
        assert "LLM is down" in caplog.text
    finally:
        again.close()


def test_importing_an_export_with_mixed_episodes_rewrites_them_per_user(tmp_path, embedder):
    """A file exported by an older release may hold mixed episodes: the import repairs them."""
    from mem_adapters import transfer

    e = _engine(tmp_path / "old", embedder)
    try:
        _remember(e, CONVERSATION)
        episode_id, clean, _ = _mix_alices_episode(e, flag=False)

        async def dump():
            return [r async for r in transfer.export_records(e.aengine, tenant_id="default")]

        exported = e.run(dump())
    finally:
        e.close()
    assert [r for r in exported if r.get("id") == episode_id and _foreign(r["text"], "alice")]
    fresh = MemoryEngine(tmp_path / "new", embedder=embedder)
    try:
        fresh.run(transfer.import_records(fresh.aengine, [transfer.header(), *exported]))
        assert _episode_state(fresh.get(episode_id)) == clean
    finally:
        fresh.close()
