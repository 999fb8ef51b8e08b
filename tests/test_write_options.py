"""Per-call ``write_active`` / ``write_passive`` (engine and routes), and the service's import mode.

``write_passive=False``: the turns are stored (searchable) and never enriched, not even by a
later worker resuming pending work. ``write_active=False``: the turns are stored for enrichment
only (status ``"passive"``): never searched nor listed by the service, their facts are, and an
erase removes them.
"""

from __future__ import annotations

import time
import uuid

import httpx
import pytest

from mem_adapters import MemoryEngine, NotFoundError
from mem_adapters.enrichment import Enricher
from mem_adapters.errors import ValidationError

PARIS = {"role": "user", "text": "I live in Paris.", "timestamp": "2024-01-01T10:00:00Z"}


@pytest.fixture
def eng(tmp_path, embedder):
    e = MemoryEngine(tmp_path / "w", embedder=embedder, enricher=Enricher(backoff=0.01))
    yield e
    e.close()


def _facts(eng: MemoryEngine, **kw) -> list:
    return eng.list(kinds=["fact"], page_size=1000, **kw).results


def test_default_write_enriches(eng):
    res = eng.remember([PARIS], session_id="s1", user_id="u1")
    eng.wait(res.passive_job_id, timeout=120)
    assert [f.attributes["value"] for f in _facts(eng)] == ["Paris"]
    assert res.passive_ids == [] and len(res.active_ids) == 1


def test_write_passive_false_stores_and_never_enriches(tmp_path, embedder):
    path = tmp_path / "np"
    eng = MemoryEngine(path, embedder=embedder, enricher=Enricher(backoff=0.01))
    try:
        res = eng.remember([PARIS], session_id="s1", user_id="u1", write_passive=False)
        assert res.passive_job_id is None and len(res.active_ids) == 1 and res.created == 1
        hits = eng.search("where does the user live", k=5).results
        assert [h.id for h in hits] == res.active_ids
        assert eng.get(res.active_ids[0]).status == "active"
        eng.wait_all(timeout=120)
        assert _facts(eng) == []
    finally:
        eng.close()
    # A new worker on the store resumes pending turns; these are not pending.
    again = MemoryEngine(path, embedder=embedder, enricher=Enricher(backoff=0.01))
    try:
        again.wait_all(timeout=120)
        assert _facts(again) == []
    finally:
        again.close()


def test_write_active_false_enriches_without_searchable_turns(eng):
    res = eng.remember([PARIS], session_id="s1", user_id="u1", write_active=False)
    assert res.active_ids == [] and len(res.passive_ids) == 1 and res.passive_job_id
    (tid,) = res.passive_ids
    assert eng.wait(res.passive_job_id, timeout=120).status == "done"
    facts = _facts(eng)
    assert [f.attributes["value"] for f in facts] == ["Paris"]
    assert facts[0].source_ids == [tid] and facts[0].attributes["source_role"] == "user"
    hits = eng.search("I live in Paris", k=10).results
    assert hits and tid not in {h.id for h in hits}
    assert {h.kind for h in hits} <= {"fact", "episode"}
    turn = eng.get(tid)
    assert turn.status == "passive" and turn.text == PARIS["text"]
    assert [t.id for t in eng.get_messages("s1", status="active")] == []
    receipt = eng.erase(user_id="u1")
    assert receipt is not None
    with pytest.raises(NotFoundError):
        eng.get(tid)
    assert _facts(eng) == []


@pytest.mark.parametrize(
    ("kw", "field"),
    [
        ({"write_active": False, "write_passive": False}, "write_active"),
        ({"write_active": "no"}, "write_active"),
        ({"write_passive": 0}, "write_passive"),
    ],
)
def test_bad_write_options_are_validation_errors_and_write_nothing(eng, kw, field):
    with pytest.raises(ValidationError) as e:
        eng.remember([PARIS], session_id="s1", **kw)
    assert e.value.field == field
    assert eng.list().count == 0


# ------------------------------------------------------------------ the routes


@pytest.fixture(scope="module")
def api(tmp_path_factory):
    pytest.importorskip("fastapi")
    from mem_adapters.server.process import ServerProcess

    d = tmp_path_factory.mktemp("wopt")
    with (
        ServerProcess(["--path", str(d / "store"), "--insecure-no-auth"]) as srv,
        httpx.Client(base_url=srv.url, timeout=180) as client,
    ):
        yield client


def _uid() -> str:
    return uuid.uuid4().hex[:8]


def _ok(r: httpx.Response, status: int = 200) -> dict:
    assert r.status_code == status, r.text
    return r.json()


def _wait_job(api: httpx.Client, job_id: str) -> dict:
    deadline = time.monotonic() + 180
    while True:
        job = _ok(api.get(f"/v1/jobs/{job_id}"))
        if job["status"] == "done" or time.monotonic() > deadline:
            return job
        time.sleep(0.5)


def _conv_items(api: httpx.Client, conv: str, kind: str) -> list[dict]:
    body = {"filters": {"conv_id": conv, "type": kind}, "page_size": 100}
    return _ok(api.post("/v1/memories/", json=body))["results"]


def test_ingestion_write_active_false(api):
    conv, user = f"c_{_uid()}", f"u_{_uid()}"
    body = {
        "scope": {"user_id": user, "session_id": conv},
        "turns": [{"role": "user", "text": "I live in Lisbon.", "timestamp": "2024-01-01T10:00:00Z"}],
        "options": {"write_active": False, "write_passive": True},
    }
    got = _ok(api.post("/ingestion/memory", json=body), 202)
    assert got["active_fragment_ids"] == [] and got["passive_job_id"]
    assert _wait_job(api, got["passive_job_id"])["status"] == "done"
    assert _conv_items(api, conv, "turn") == []  # not listed
    facts = _conv_items(api, conv, "fact")
    assert [f["memory"] for f in facts] == ["The user lives in Lisbon."]
    hits = _ok(api.post("/v1/memories/search/", json={"query": "I live in Lisbon.", "top_k": 20}))["results"]
    assert facts[0]["id"] in {h["id"] for h in hits}
    assert all(h["memory"] != "I live in Lisbon." for h in hits)  # the turn itself is never a hit


def test_ingestion_write_passive_false(api):
    conv, user = f"c_{_uid()}", f"u_{_uid()}"
    body = {
        "scope": {"user_id": user, "session_id": conv},
        "turns": [{"role": "user", "text": "I live in Porto."}],
        "options": {"write_passive": False},
    }
    got = _ok(api.post("/ingestion/memory", json=body), 202)
    assert len(got["active_fragment_ids"]) == 1 and got["passive_job_id"] is None
    assert [t["id"] for t in _conv_items(api, conv, "turn")] == got["active_fragment_ids"]
    assert _conv_items(api, conv, "fact") == []


def test_add_config_overrides(api):
    conv, user = f"c_{_uid()}", f"u_{_uid()}"
    msg = {"role": "user", "content": "My favorite color is teal.", "date": "2024-01-01T10:00:00Z"}
    body = {"messages": [msg], "conv_id": conv, "user_id": user}
    plain = _ok(api.post("/v1/memories/add/", json={**body, "config_overrides": {"write_passive": False}}))
    assert plain["stored_facts"] == [] and len(plain["results"]) == 1
    assert "write_passive=false" in plain["message"]
    conv2 = f"c_{_uid()}"
    only = _ok(
        api.post(
            "/v1/memories/add/", json={**body, "conv_id": conv2, "config_overrides": {"write_active": False}}
        )
    )
    assert only["status"] == "completed"
    assert [f["text"] for f in only["stored_facts"]] == ["The user's favorite color is teal."]
    assert {r["id"] for r in only["results"]} == {f["fact_id"] for f in only["stored_facts"]}
    assert _conv_items(api, conv2, "turn") == []
    for bad in ({"write_active": False, "write_passive": False}, {"write_active": "yes"}):
        r = api.post("/v1/memories/add/", json={**body, "config_overrides": bad})
        assert r.status_code == 422, r.text
        assert r.json()["error"]["field"].startswith("config_overrides")


def test_add_import_mode_supersedes_by_event_time(api):
    conv, user = f"c_{_uid()}", f"u_{_uid()}"
    newer = {"role": "user", "content": "I live in Berlin.", "date": "2024-03-01T10:00:00Z"}
    older = {"role": "user", "content": "I live in Paris.", "date": "2024-01-01T10:00:00Z"}
    base = {"conv_id": conv, "user_id": user, "mode": "import"}
    first = _ok(api.post("/v1/memories/add/", json={**base, "messages": [newer]}))
    assert first["mode"] == "import" and first["status"] == "completed"
    (berlin,) = first["stored_facts"]
    second = _ok(api.post("/v1/memories/add/", json={**base, "messages": [older]}))
    (paris,) = second["stored_facts"]
    assert paris["is_latest"] is False and paris["status"] == "superseded"
    assert second["superseded_fact_ids"] == [[paris["fact_id"], berlin["fact_id"]]]
    assert second["flush_result"] is None
    now = _ok(api.get(f"/v1/memories/{berlin['fact_id']}/"))
    assert now["memory"] == berlin["text"]
    facts = {f["id"]: f for f in _conv_items(api, conv, "fact")}
    assert set(facts) == {paris["fact_id"], berlin["fact_id"]}


def test_add_repeated_statement_maps_the_consolidation(api):
    conv, user = f"c_{_uid()}", f"u_{_uid()}"
    body = {"conv_id": conv, "user_id": user}
    say = {"role": "user", "content": "I'm allergic to peanuts."}
    first = _ok(
        api.post("/v1/memories/add/", json={**body, "messages": [{**say, "date": "2024-01-01T10:00:00Z"}]})
    )
    assert first["consolidation_id_mapping"] == {}
    (fact,) = first["stored_facts"]
    assert fact["source_role"] == "user" and fact["episode_id"] and fact["change_reason"] is None
    again = _ok(
        api.post("/v1/memories/add/", json={**body, "messages": [{**say, "date": "2024-01-02T10:00:00Z"}]})
    )
    mapping = again["consolidation_id_mapping"]
    assert mapping and set(mapping.values()) == {fact["fact_id"]}
    assert again["stored_facts"] == []
