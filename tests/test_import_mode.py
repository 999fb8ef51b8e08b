"""``remember(mode="import")``: backfills keep event time for supersession and never auto-close episodes.

Also the fact fields the service names (``change_reason``, ``consolidated_at``, ``episode_id``,
``source_role``) stored by the worker, and the consolidation mapping of a job.
"""

from __future__ import annotations

from typing import Any

import pytest

from mem_adapters import MemoryEngine
from mem_adapters.enrichment import Enricher
from mem_adapters.errors import ValidationError

PARIS = ("I live in Paris.", "2024-01-01T10:00:00Z")
BERLIN = ("I live in Berlin.", "2024-03-01T10:00:00Z")
ROME = ("I live in Rome.", "2024-05-01T10:00:00Z")


@pytest.fixture
def eng(tmp_path, embedder):
    e = MemoryEngine(tmp_path / "imp", embedder=embedder, enricher=Enricher(backoff=0.01))
    yield e
    e.close()


def _say(eng: MemoryEngine, said: tuple[str, str], mode: str, session: str = "s1") -> Any:
    res = eng.remember(
        [{"role": "user", "text": said[0], "timestamp": said[1]}], session_id=session, user_id="u1", mode=mode
    )
    job = eng.wait(res.passive_job_id, timeout=120)
    assert job.status == "done", job
    return res


def _cities(eng: MemoryEngine) -> dict[str, Any]:
    facts = eng.list(kinds=["fact"], page_size=1000).results
    return {f.attributes["value"]: f for f in facts if f.attributes.get("predicate") == "lives_in"}


@pytest.mark.parametrize("order", ["older_first", "newer_first"])
def test_import_supersession_follows_event_time_in_both_write_orders(eng, order):
    first, second = (PARIS, BERLIN) if order == "older_first" else (BERLIN, PARIS)
    _say(eng, first, "import")
    _say(eng, second, "import")
    c = _cities(eng)
    paris, berlin = c["Paris"], c["Berlin"]
    # Berlin was said later (event time): it is the latest, whatever was written last.
    assert berlin.is_latest and berlin.status == "active"
    assert not paris.is_latest and paris.status == "superseded"
    assert berlin.supersedes == paris.id
    assert [h.memory_id for h in eng.history(berlin.id)] == [paris.id, berlin.id]
    assert [h.memory_id for h in eng.history(paris.id)] == [paris.id, berlin.id]
    assert eng.search("where does the user live", kinds=["fact"], k=3).results[0].id == berlin.id
    then = eng.search("where does the user live", kinds=["fact"], k=3, as_of="2024-02-01T00:00:00Z")
    assert [h.id for h in then.results] == [paris.id]
    assert berlin.attributes["change_reason"] == "update"


def test_import_links_an_older_fact_into_the_middle_of_the_chain(eng):
    _say(eng, PARIS, "import")
    _say(eng, ROME, "import")
    _say(eng, BERLIN, "import")  # written last, stated between the two
    c = _cities(eng)
    paris, berlin, rome = c["Paris"], c["Berlin"], c["Rome"]
    assert rome.is_latest and not berlin.is_latest and not paris.is_latest
    assert rome.supersedes == berlin.id and berlin.supersedes == paris.id
    assert [h.memory_id for h in eng.history(rome.id)] == [paris.id, berlin.id, rome.id]
    for when, expected in [("2024-02-01", paris), ("2024-04-01", berlin), ("2024-06-01", rome)]:
        hits = eng.search("where does the user live", kinds=["fact"], k=3, as_of=f"{when}T00:00:00Z")
        assert [h.id for h in hits.results] == [expected.id], when


def test_chat_mode_keeps_its_behaviour_for_a_late_older_turn(eng):
    _say(eng, BERLIN, "chat")
    _say(eng, PARIS, "chat")
    c = _cities(eng)
    paris, berlin = c["Paris"], c["Berlin"]
    # As before import mode existed: the older statement is history only, not linked into the chain.
    assert berlin.is_latest and not paris.is_latest
    assert berlin.supersedes is None
    assert [h.memory_id for h in eng.history(berlin.id)] == [berlin.id]


def test_chat_mode_newer_turn_supersedes(eng):
    _say(eng, PARIS, "chat")
    _say(eng, BERLIN, "chat")
    c = _cities(eng)
    assert c["Berlin"].supersedes == c["Paris"].id and c["Berlin"].is_latest and not c["Paris"].is_latest


DAYS = [
    ("I adopted a puppy named Max.", "2024-01-01T10:00:00Z"),
    ("We walk every morning.", "2024-01-01T10:01:00Z"),
    ("I started a pottery class.", "2024-01-05T18:00:00Z"),  # four days later: a gap
    ("I finished my first bowl.", "2024-02-05T18:05:00Z"),  # a month later: another gap
]


@pytest.mark.parametrize(("mode", "episodes"), [("chat", 3), ("import", 1)])
def test_import_never_closes_an_episode_by_itself(eng, mode, episodes):
    for text, ts in DAYS:
        res = eng.remember(
            [{"role": "user", "text": text, "timestamp": ts}], session_id="s1", user_id="u1", mode=mode
        )
        assert eng.wait(res.passive_job_id, timeout=120).mode == mode
    eps = eng.list(kinds=["episode"]).results
    assert len(eps) == episodes
    assert sum(1 for e in eps if e.attributes["open"]) == 1
    if mode == "import":
        assert len(eps[0].attributes["turn_ids"]) == len(DAYS)
        closed = eng.end_session("s1")
        assert closed is not None and closed.id == eps[0].id and closed.attributes["open"] is False
        assert eng.end_session("s1") is None


def test_import_job_of_one_batch_with_gaps_keeps_one_episode(eng):
    res = eng.remember(
        [{"role": "user", "text": t, "timestamp": ts} for t, ts in DAYS], session_id="s1", mode="import"
    )
    eng.wait(res.passive_job_id, timeout=120)
    eps = eng.list(kinds=["episode"]).results
    assert len(eps) == 1 and eps[0].attributes["open"]


def test_mode_is_validated(eng):
    with pytest.raises(ValidationError) as e:
        eng.remember([{"role": "user", "text": "hi"}], session_id="s1", mode="backfill")
    assert e.value.field == "mode"
    assert eng.list().count == 0


def test_facts_store_the_service_fields(eng):
    r1 = _say(eng, PARIS, "chat")
    r2 = _say(eng, BERLIN, "chat")
    c = _cities(eng)
    paris, berlin = c["Paris"], c["Berlin"]
    eps = {e.id for e in eng.list(kinds=["episode"]).results}
    for f, turn in [(paris, r1.active_ids[0]), (berlin, r2.active_ids[0])]:
        a = f.attributes
        assert a["source_role"] == "user"
        assert a["episode_id"] in eps
        assert a["root_artifact_id"] is None
        assert f.parent_id == turn
    assert berlin.attributes["change_reason"] == "update" and berlin.attributes["consolidated_at"]
    assert paris.attributes["change_reason"] is None and paris.attributes["consolidated_at"]


def test_a_repeated_statement_is_consolidated_and_mapped(eng):
    first = _say(eng, ("My favorite color is green.", "2024-01-01T10:00:00Z"), "chat")
    res = eng.remember(
        [{"role": "user", "text": "My favorite color is green.", "timestamp": "2024-01-02T10:00:00Z"}],
        session_id="s1",
        user_id="u1",
    )
    job = eng.wait(res.passive_job_id, timeout=120)
    facts = eng.list(kinds=["fact"]).results
    assert len(facts) == 1
    kept = facts[0]
    assert kept.parent_id == first.active_ids[0]
    assert kept.source_ids == [first.active_ids[0], res.active_ids[0]]
    assert job.consolidation_id_mapping and set(job.consolidation_id_mapping.values()) == {kept.id}
    (would_be,) = job.consolidation_id_mapping
    assert would_be != kept.id and would_be.startswith("f_")
    assert kept.attributes["consolidated_at"]
    # The first job merged nothing.
    assert eng.job_status(first.passive_job_id).consolidation_id_mapping == {}


def test_one_import_batch_out_of_date_order(eng):
    res = eng.remember(
        [{"role": "user", "text": t, "timestamp": ts} for t, ts in (ROME, PARIS, BERLIN)],
        session_id="s1",
        user_id="u1",
        mode="import",
    )
    eng.wait(res.passive_job_id, timeout=120)
    c = _cities(eng)
    assert c["Rome"].is_latest and not c["Berlin"].is_latest and not c["Paris"].is_latest
    assert c["Rome"].supersedes == c["Berlin"].id and c["Berlin"].supersedes == c["Paris"].id
    assert c["Paris"].supersedes is None


@pytest.mark.parametrize(("mode", "episodes"), [("chat", 3), ("import", 1)])
def test_pending_turns_found_without_a_job_keep_their_mode(tmp_path, embedder, mode, episodes):
    path = tmp_path / "orphans"
    plain = MemoryEngine(path, embedder=embedder)  # no enricher: turns stay pending, no job
    try:
        turns = [{"role": "user", "text": t, "timestamp": ts} for t, ts in DAYS]
        assert plain.remember(turns, session_id="s1", mode=mode).passive_job_id is None
    finally:
        plain.close()
    e = MemoryEngine(path, embedder=embedder, enricher=Enricher(backoff=0.01))
    try:
        e.wait_all(timeout=120)
        assert len(e.list(kinds=["episode"]).results) == episodes
    finally:
        e.close()
