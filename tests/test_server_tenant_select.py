"""Admin tenant selection (``?tenant_id=``) and ``GET /v1/jobs`` over a real `mem-adapters serve`.

Two tenants (acme, globex) with users, sessions, facts and one finished and one failed job
each; a JWT of acme, a JWT of acme with ``role: admin``, an API key of globex and an admin API
key. An admin reads (and acts on) the tenant it names; anyone else may name only its own
tenant (403 ``tenant_mismatch``), and without the parameter every caller reads its own tenant.
"""

from __future__ import annotations

import time
from typing import Any

import httpx
import jwt
import pytest

from mem_adapters import MemoryEngine
from mem_adapters.enrichment import Enricher, ExtractionError, RuleExtractor
from mem_adapters.server.keys import create_key
from mem_adapters.server.process import ServerProcess

pytest.importorskip("fastapi")

SECRET = "tenant-select-secret-" + "z" * 32


class FailOn(RuleExtractor):
    """The rule extractor, except that a batch mentioning FAILME raises (its job fails)."""

    def extract(self, turns: Any, **kw: Any) -> Any:
        if any("FAILME" in t.text for t in turns):
            raise ExtractionError("FAILME: this batch fails on purpose")
        return super().extract(turns, **kw)


def _token(**claims: Any) -> str:
    now = int(time.time())
    return jwt.encode({"sub": "x", "iat": now, "exp": now + 3600, **claims}, SECRET, algorithm="HS256")


@pytest.fixture(scope="module")
def srv(tmp_path_factory) -> Any:
    d = tmp_path_factory.mktemp("tsel")
    e = MemoryEngine(d / "store", enricher=Enricher(FailOn(), max_attempts=1, backoff=0.01))
    jobs: dict[str, list[str]] = {}
    try:
        for tenant in ("acme", "globex"):
            for i in range(3):
                r = e.remember(
                    [{"role": "user", "text": f"I live in {tenant} town {i}."}],
                    session_id=f"{tenant}-s{i}",
                    user_id=f"{tenant}-user{i}",
                    tenant_id=tenant,
                )
                e.wait(r.passive_job_id, timeout=120)
                jobs.setdefault(tenant, []).append(r.passive_job_id)
            bad = e.remember(
                [{"role": "user", "text": "FAILME"}],
                session_id="bad",
                user_id=f"{tenant}-user0",
                tenant_id=tenant,
            )
            e.wait(bad.passive_job_id, timeout=120)
            jobs[tenant].append(bad.passive_job_id)
    finally:
        e.close()
    key = create_key(d / "keys.json", tenant_id="globex", user_id="k")
    admin_key = create_key(d / "keys.json", tenant_id="ops", role="admin")
    with ServerProcess(
        ["--path", str(d / "store"), "--jwt-secret", SECRET, "--api-keys", str(d / "keys.json")]
    ) as s:
        s.jobs = jobs
        # The service's worker starts on the first job call and re-runs the failed job's turns
        # (still pending) as a new job: let that happen now, so the job lists stay still.
        admin = {"Authorization": f"Bearer {_token(org_id='acme', role='admin')}"}
        httpx.get(f"{s.url}/v1/jobs/{jobs['acme'][0]}", headers=admin, timeout=60).raise_for_status()
        deadline = time.monotonic() + 180
        for tenant in ("acme", "globex"):
            while any(
                httpx.get(
                    f"{s.url}/v1/jobs", headers=admin, params={"tenant_id": tenant, "status": st}, timeout=60
                ).json()["count"]
                for st in ("pending", "running")
            ):
                assert time.monotonic() < deadline, "enrichment did not settle"
                time.sleep(0.5)
        s.listed = {
            t: httpx.get(
                f"{s.url}/v1/jobs", headers=admin, params={"tenant_id": t, "page_size": 1000}, timeout=60
            ).json()["results"]
            for t in ("acme", "globex")
        }
        s.creds = {
            "acme": {"Authorization": f"Bearer {_token(org_id='acme')}"},
            "admin": {"Authorization": f"Bearer {_token(org_id='acme', role='admin')}"},
            "globex_key": {"X-API-Key": key},
            "admin_key": {"X-API-Key": admin_key},
        }
        yield s


def get(srv: Any, who: str, path: str, **params: Any) -> httpx.Response:
    return httpx.get(srv.url + path, headers=srv.creds[who], params=params, timeout=60)


def users(r: httpx.Response) -> list[str | None]:
    assert r.status_code == 200, r.text
    return [u["user_id"] for u in r.json()["results"]]


READS = [
    "/v1/users",
    "/v1/sessions",
    "/v1/users/{tenant}-user0/sessions",
    "/v1/users/{tenant}-user0/facts",
    "/v1/users/{tenant}-user0/episodes",
    "/v1/sessions/{tenant}-s0/messages",
    "/v1/engine/sessions",
    "/v1/engine/sessions/{tenant}-s0/messages",
    "/v1/jobs",
]


def test_an_admin_reads_the_tenant_it_names(srv):
    assert users(get(srv, "admin", "/v1/users")) == ["acme-user0", "acme-user1", "acme-user2"]
    assert users(get(srv, "admin", "/v1/users", tenant_id="globex")) == [
        "globex-user0",
        "globex-user1",
        "globex-user2",
    ]
    for path in READS:
        mine = get(srv, "admin", path.format(tenant="globex"), tenant_id="globex")
        assert mine.status_code == 200, (path, mine.text)
        # What the admin sees is what the tenant's own credential sees for the same request.
        own = get(srv, "globex_key", path.format(tenant="globex"))
        assert own.status_code == 200, (path, own.text)
        assert mine.json() == own.json(), path
        assert "acme" not in mine.text, path
    facts = get(srv, "admin", "/v1/users/globex-user1/facts", tenant_id="globex").json()
    assert facts["count"] >= 1 and all("globex" in f["text"] for f in facts["results"])
    a_fact = facts["results"][0]["fact_id"]
    assert get(srv, "admin", f"/v1/engine/memories/{a_fact}", tenant_id="globex").status_code == 200
    assert get(srv, "admin", f"/v1/engine/memories/{a_fact}").status_code == 404  # not in acme
    # An admin API key of a third tenant may name either.
    assert users(get(srv, "admin_key", "/v1/users", tenant_id="acme"))[0] == "acme-user0"
    assert users(get(srv, "admin_key", "/v1/users")) == []  # its own tenant (ops) is empty


def test_an_admin_acts_on_the_named_tenant(srv):
    body = {"query": "town", "k": 10}
    r = httpx.post(
        srv.url + "/v1/engine/search", headers=srv.creds["admin"], params={"tenant_id": "globex"}, json=body
    )
    assert r.status_code == 200 and r.json()["results"]
    texts = [h["text"] for h in r.json()["results"]]
    assert any("globex" in t for t in texts) and not any("acme" in t for t in texts)
    r = httpx.post(
        srv.url + "/v1/engine/list",
        headers=srv.creds["admin"],
        params={"tenant_id": "globex"},
        json={"tenant_id": "acme"},
    )
    assert r.status_code == 403 and r.json()["error"]["code"] == "tenant_mismatch"  # body vs chosen tenant


@pytest.mark.parametrize("path", READS)
def test_others_may_name_only_their_own_tenant(srv, path):
    for who, own, other in (("acme", "acme", "globex"), ("globex_key", "globex", "acme")):
        r = get(srv, who, path.format(tenant=own), tenant_id=other)
        assert r.status_code == 403, (who, path, r.text)
        err = r.json()["error"]
        assert err["code"] == "tenant_mismatch" and err["field"] == "tenant_id"
        assert get(srv, who, path.format(tenant=own), tenant_id=own).status_code == 200


def test_writes_refuse_another_tenant_for_non_admins(srv):
    r = httpx.delete(
        srv.url + "/v1/users/globex-user2", headers=srv.creds["acme"], params={"tenant_id": "globex"}
    )
    assert r.status_code == 403 and r.json()["error"]["code"] == "tenant_mismatch"
    assert users(get(srv, "globex_key", "/v1/users"))[-1] == "globex-user2"  # nothing erased


def test_tenant_parameter_is_in_the_openapi_schema(srv):
    spec = httpx.get(srv.url + "/openapi.json").json()
    for path in ("/v1/users", "/v1/users/{user_id}/facts", "/v1/jobs", "/v1/engine/memories/{memory_id}"):
        params = {p["name"]: p for p in spec["paths"][path]["get"]["parameters"]}
        assert params["tenant_id"]["in"] == "query" and "admin" in params["tenant_id"]["description"]
    jobs = spec["paths"]["/v1/jobs"]["get"]
    names = {p["name"] for p in jobs["parameters"]}
    assert {"status", "user_id", "page", "page_size", "tenant_id"} <= names
    assert "JobPage" in str(jobs["responses"]["200"])


def test_job_list_pages_newest_first_and_filters(srv):
    listed = srv.listed["acme"]
    ids = [j["job_id"] for j in listed]
    # Every seeded job once, newest first; the only others are re-runs of the failed job's turns.
    assert [i for i in ids if i in srv.jobs["acme"]] == srv.jobs["acme"][::-1]
    assert all(j["session_id"] == "bad" for j in listed if j["job_id"] not in srv.jobs["acme"])
    stamps = [j["created_at"] for j in listed]
    assert stamps == sorted(stamps, reverse=True)
    n = len(listed)
    got = get(srv, "acme", "/v1/jobs", page=1, page_size=3).json()
    assert (got["count"], got["next"], got["previous"]) == (n, 2, None)
    pages = got["results"]
    while got["next"] is not None:
        nxt = got["next"]
        got = get(srv, "acme", "/v1/jobs", page=nxt, page_size=3).json()
        assert got["previous"] == nxt - 1 and got["count"] == n
        pages += got["results"]
    assert pages == listed
    failed = get(srv, "acme", "/v1/jobs", status="failed").json()
    assert [j["job_id"] for j in failed["results"]] == [srv.jobs["acme"][-1]]
    j = failed["results"][0]
    assert j["status"] == "failed" and j["error"].endswith("FAILME: this batch fails on purpose")
    assert j["turn_count"] == 1 and j["user_id"] == "acme-user0" and j["created_at"] and j["finished_at"]
    assert get(srv, "acme", "/v1/jobs", status="done").json()["count"] == n - 1
    assert get(srv, "acme", "/v1/jobs", user_id="acme-user1").json()["count"] == 1
    # Each listed job is the job the by-id route answers.
    one = get(srv, "acme", f"/v1/jobs/{j['job_id']}").json()
    assert {k: j[k] for k in one} == one
    # Tenant isolation: globex's jobs are not acme's, and an admin reads them by naming globex.
    theirs = get(srv, "globex_key", "/v1/jobs", page_size=1000).json()
    assert theirs["results"] == srv.listed["globex"]
    assert not {x["job_id"] for x in theirs["results"]} & set(ids)
    assert set(srv.jobs["globex"]) <= {x["job_id"] for x in theirs["results"]}
    assert get(srv, "admin", "/v1/jobs", tenant_id="globex", page_size=1000).json() == theirs


@pytest.mark.parametrize(
    "params", [{"status": "finished"}, {"page": 0}, {"page_size": 0}, {"page_size": 1001}, {"tenant_id": ""}]
)
def test_job_list_bad_parameters_are_422(srv, params):
    r = get(srv, "acme", "/v1/jobs", **params)
    assert r.status_code == 422, r.text
    assert r.json()["error"]["code"]


def test_client_list_jobs_mirrors_the_route(srv):
    from mem_adapters.client import MemoryClient
    from mem_adapters.client.errors import PermissionDeniedError
    from mem_adapters.enrichment.job_list import JobPage

    key = srv.creds["globex_key"]["X-API-Key"]
    with MemoryClient(srv.url, api_key=key) as c:
        got = c.list_jobs(1, 2)
        assert isinstance(got, JobPage) and got.count == len(srv.listed["globex"])
        assert [j.job_id for j in got.results] == [j["job_id"] for j in srv.listed["globex"][:2]]
        assert c.list_jobs(status="failed").results[0].job_id == srv.jobs["globex"][-1]
        assert c.list_jobs(tenant_id="globex").count == got.count
        with pytest.raises(PermissionDeniedError, match="tenant"):
            c.list_jobs(tenant_id="acme")
