"""``mem-adapters bench server``: its statistics, its targets, and a tiny real run (no timing assertions)."""

from __future__ import annotations

import pytest

pytest.importorskip("fastapi")

from mem_adapters.bench_server import checks, corpus, run_server_bench, summary


def test_summary_percentiles_and_rate():
    s = summary([float(x) for x in range(1, 101)], errors=2, seconds=2.0)
    assert s["requests"] == 102 and s["errors"] == 2 and s["rps"] == 51.0
    assert s["p50_ms"] == 50.5 and s["p95_ms"] == 95.05 and s["max_ms"] == 100.0
    assert summary([], errors=3, seconds=1.0)["p50_ms"] is None


def _row(backend, op, clients, p50, errors=0):
    return {"backend": backend, "op": op, "clients": clients, "p50_ms": p50, "errors": errors}


def test_checks_pass_and_fail_on_the_issue_targets():
    ok = checks(
        [_row("engine", "search", 1, 10.0), _row("http", "search", 1, 15.0), _row("http", "search", 32, 9)]
    )
    assert [c["status"] for c in ok] == ["PASS", "PASS"]
    bad = checks(
        [
            _row("engine", "search", 1, 10.0),
            _row("http", "search", 1, 15.1),
            _row("http", "ingest", 32, 9, errors=1),
        ]
    )
    assert [c["status"] for c in bad] == ["FAIL", "FAIL"]


def test_corpus_is_deterministic_and_distinct():
    a, b = corpus(50), corpus(50)
    assert a == b and len({t["text"] for t in a}) == 50


@pytest.mark.slow
async def test_a_tiny_real_run_over_loopback():
    report = await run_server_bench(seed=20, ingest=4, searches=6, levels=(1, 2))
    cells = {(r["backend"], r["op"], r["clients"]) for r in report["rows"]}
    assert cells == {(b, o, c) for b in ("engine", "http") for o in ("ingest", "search") for c in (1, 2)}
    for r in report["rows"]:
        assert r["errors"] == 0, r.get("first_errors")
        assert r["requests"] == (4 if r["op"] == "ingest" else 6) and r["p50_ms"] > 0
    assert {c["target"].split(":")[0] for c in report["checks"]} == {"1 client", "2 clients"}
