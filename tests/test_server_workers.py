"""``mem-adapters serve --workers 2`` on a real ``chroma run``: each worker sees the other's writes.

Each request goes on a fresh connection so the kernel spreads them over both worker processes;
``/healthz`` names the answering worker's pid, and every write is read back until a worker other
than the writer has answered the read.
"""

from __future__ import annotations

import time
import uuid

import httpx
import jwt
import pytest

pytest.importorskip("fastapi")

from mem_adapters.server.process import ServerProcess

pytestmark = [pytest.mark.server, pytest.mark.slow]

SECRET = "workers-test-secret-" + "w" * 32


def _headers(org: str) -> dict[str, str]:
    now = int(time.time())
    claims = {"org_id": org, "sub": "dana", "iat": now, "exp": now + 900}
    return {"Authorization": f"Bearer {jwt.encode(claims, SECRET, 'HS256')}"}


@pytest.fixture(scope="module")
def two_workers(chroma_server):
    host, port = chroma_server
    args = [
        "--workers",
        "2",
        "--chroma-host",
        host,
        "--chroma-port",
        str(port),
        "--jwt-secret",
        SECRET,
        "--no-enrich",
    ]
    with ServerProcess(args, ready_timeout=180) as srv:
        yield srv


def _fresh(method: str, url: str, **kw) -> httpx.Response:
    """One request on its own connection (so it may land on either worker)."""
    with httpx.Client(timeout=60) as c:
        r = c.request(method, url, **kw)
    return r


def _worker(url: str) -> int:
    return _fresh("GET", url + "/healthz").json()["worker"]


def _on_other_worker(url: str, not_pid: int, call, tries: int = 200):
    """``call()`` answered by a worker other than ``not_pid`` (pid read on the same connection)."""
    for _ in range(tries):
        with httpx.Client(base_url=url, timeout=60) as c:
            pid = c.get("/healthz").json()["worker"]
            if pid != not_pid:
                return pid, call(c)
    pytest.fail(f"no request landed on a worker other than {not_pid} in {tries} connections")


def test_two_workers_answer(two_workers):
    pids = {_worker(two_workers.url) for _ in range(100)}
    assert len(pids) == 2, pids


def test_each_worker_sees_the_others_writes(two_workers):
    org = f"wk-{uuid.uuid4().hex[:8]}"
    h = _headers(org)
    for n in range(2):  # a write on each side in turn, read on the other side
        with httpx.Client(base_url=two_workers.url, timeout=60) as c:
            writer = c.get("/healthz").json()["worker"]
            text = f"note {n}: the parcel code is {uuid.uuid4().hex[:6]}"
            w = c.post(
                "/v1/engine/remember",
                json={"turns": [{"role": "user", "text": text}], "session_id": f"s{n}"},
                headers=h,
            )
            assert w.status_code == 200, w.text
            mid = w.json()["active_ids"][0]

        def read(c: httpx.Client, mid: str = mid, text: str = text, n: int = n) -> tuple:
            got = c.get(f"/v1/engine/memories/{mid}", headers=h)
            page = c.post("/v1/engine/list", json={"session_id": f"s{n}"}, headers=h)
            hits = c.post("/v1/engine/search", json={"query": "parcel code", "k": 5}, headers=h)
            return got, page, hits

        reader, (got, page, hits) = _on_other_worker(two_workers.url, writer, read)
        assert reader != writer
        assert got.status_code == 200 and got.json()["text"] == text
        assert [r["id"] for r in page.json()["results"]] == [mid]
        assert mid in [r["id"] for r in hits.json()["results"]]


def test_erase_on_one_worker_is_seen_by_the_other(two_workers):
    org = f"wk-{uuid.uuid4().hex[:8]}"
    h = _headers(org)
    with httpx.Client(base_url=two_workers.url, timeout=60) as c:
        first = c.get("/healthz").json()["worker"]
        w = c.post(
            "/v1/engine/remember",
            json={
                "turns": [{"role": "user", "text": "I live in Porto"}],
                "session_id": "s",
                "user_id": "eve",
            },
            headers=h,
        )
        assert w.status_code == 200, w.text
        mid = w.json()["active_ids"][0]
    eraser, receipt = _on_other_worker(two_workers.url, first, lambda c: c.delete("/v1/users/eve", headers=h))
    assert receipt.status_code == 200 and receipt.json()["turns"] == 1
    _, gone = _on_other_worker(
        two_workers.url, eraser, lambda c: c.get(f"/v1/engine/memories/{mid}", headers=h)
    )
    assert gone.status_code == 404
