"""`bench scale` end to end on a tiny run: real engine, real Chroma (embedded and `chroma run`).

One run (sizes 200 and 600, 20 users, 20 tenants, a 3 s two-process probe on a loopback
`chroma run`, the other systems at 200) goes through the typer command; the tests read its
JSON. No timing is asserted: only the report's shape, that its ratios are computed from
figures measured in the same run, and the exit code of `--check`.
"""

from __future__ import annotations

import json
import math
import os
from pathlib import Path

import pytest
import typer
from typer.testing import CliRunner

from mem_adapters.bench_scale import TARGETS, check, register
from mem_adapters.benchscale.data import LookupEmbedder, MemoryGenerator, load_turns, perturbed
from mem_adapters.benchscale.report import default_stem
from mem_adapters.benchscale.runner import SEARCH_USERS

DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "locomo" / "locomo-dev.json"
DATA = Path(os.environ.get("MEM_ADAPTERS_LOCOMO", DATA))
pytestmark = [
    pytest.mark.skipif(not DATA.is_file(), reason=f"LoCoMo dev file not found at {DATA}"),
    pytest.mark.slow,
    pytest.mark.server,
]

SIZES = ["200", "600"]


def _app() -> typer.Typer:
    app = typer.Typer()
    bench = typer.Typer()
    register(bench)
    app.add_typer(bench, name="bench")
    return app


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory) -> dict:
    tmp = tmp_path_factory.mktemp("scale")
    out, png = tmp / "scale.json", tmp / "scale.png"
    args = [
        "bench",
        "scale",
        "--data",
        str(DATA),
        "--sizes",
        ",".join(SIZES),
        "--users",
        "20",
        "--tenants",
        "20",
        "--tenant-turns",
        "10",
        "--tenant-touch",
        "5",
        "--server-seconds",
        "3",
        "--queries",
        "4",
        "--ingest-turns",
        "20",
        "--per-turn-turns",
        "5",
        "--compare",
        "--compare-max",
        "200",
        "--workdir",
        str(tmp / "work"),
        "--out",
        str(out),
        "--plot",
        str(png),
        "--no-progress",
        "--check",
        "--target",
        "user_p50_ms_one_user=0.000001",
    ]
    result = CliRunner().invoke(_app(), args)
    return {
        "result": result,
        "report": json.loads(out.read_text()) if out.is_file() else None,
        "out": out,
        "png": png,
        "tmp": tmp,
    }


def test_impossible_target_fails_the_check(run: dict) -> None:
    result = run["result"]
    assert result.exception is None or isinstance(result.exception, SystemExit), result.output
    assert result.exit_code == 1, result.output
    row = next(r for r in run["report"]["checks"] if r["key"] == "user_p50_ms_one_user")
    assert row["status"] == "FAIL" and row["threshold"] == 0.000001 and row["measured_at"] == 600
    assert "FAIL" in result.output


def test_lenient_targets_pass_the_check_of_the_saved_report(run: dict) -> None:
    lenient = [f"{t.key}={1e12 if t.op == '<=' else -1e12}" for t in TARGETS]
    args = ["bench", "scale", "--from-report", str(run["out"]), "--check"]
    for item in lenient:
        args += ["--target", item]
    result = CliRunner().invoke(_app(), args)
    assert result.exit_code == 0, result.output
    assert "PASS" in result.output


def test_report_shape(run: dict) -> None:
    report = run["report"]
    assert report["schema"] == "mem-adapters/bench-scale/v1"
    assert report["sizes"] == [200, 600]
    assert run["png"].stat().st_size > 10_000
    for shape in ("one_user", "many_users"):
        assert set(report["shapes"][shape]) == set(SIZES)
        for n in SIZES:
            block = report["shapes"][shape][n]
            for scope in ("user", "tenant"):
                b = block[scope]
                assert b["flat"]["n"] == 4 and b["context"]["n"] == 4
                assert 0 < b["flat"]["p50_ms"] <= b["flat"]["p95_ms"] <= b["flat"]["max_ms"]
                assert b["first_search_s"] > 0 and b["rss_mb"] > b["rss_model_only_mb"] > 0
                assert 0.0 < b["probe_hit@10"] <= 1.0  # stored memories are found by their text
            # The measured probes reopen a searched store; the cold first search is kept beside.
            assert block["user"]["first_search_cold_s"] > 0 and block["user"]["cold_open_s"] > 0
            assert block["user"]["first_search_s"] != block["user"]["first_search_cold_s"]
            assert block["chroma"]["where_user"]["n"] == 4 and block["chroma"]["no_where"]["n"] == 4
            # With many users, the other users' first searches (their loads) are timed apart.
            others = block["user"].get("first_search_other_users")
            if shape == "many_users":
                assert others is not None and others["n"] == SEARCH_USERS - 1 and others["p50_ms"] > 0
            else:
                assert others is None
        assert report["shapes"][shape]["200"]["user"]["rss_per_record_kb"] is None  # the baseline
    assert report["build"]["embed_s"] > 0 and report["build"]["one_user"]["engine_s"] > 0
    tenants = report["tenants"]
    assert tenants["tenants"] == 20 and tenants["touched"] == 5 and tenants["cold_first_search"]["n"] == 5
    server = report["server"]
    assert server["size"] == 600 and server["writes"] > 0
    assert server["idle"]["n"] > 0 and server["busy"]["n"] > 0
    fresh = server["freshness"]
    assert fresh["probed_writes"] >= fresh["seen"] >= 1
    assert {r["key"] for r in report["checks"]} == {t.key for t in TARGETS}
    assert next(r for r in report["checks"] if r["key"] == "user_p50_ms_1m")["status"] == "SKIP"


def test_ratios_use_references_of_the_same_run(run: dict) -> None:
    report = run["report"]
    for mode in ("batched", "per_turn"):
        b = report["ingest"][mode]
        raw = sum(b["embedder_runs_turns_per_s"]) / 2
        assert b["embedder_turns_per_s"] == pytest.approx(raw, abs=0.01)
        assert b["ratio"] == pytest.approx(b["engine_turns_per_s"] / raw, rel=0.01)
    server = report["server"]
    assert server["busy_idle_p50_ratio"] == pytest.approx(
        server["busy"]["p50_ms"] / server["idle"]["p50_ms"], rel=0.01
    )
    for shape in ("one_user", "many_users"):
        block = report["shapes"][shape]["600"]
        assert block["ratios"]["user_p50_vs_chroma_where"] == pytest.approx(
            block["user"]["flat"]["p50_ms"] / block["chroma"]["where_user"]["p50_ms"], rel=0.01
        )
        for scope in ("user", "tenant"):
            base, top = report["shapes"][shape]["200"][scope], block[scope]
            # rss_mb is rounded to 0.1 MB: (600 - 200) records put the tolerance at 0.25 KB per record.
            expected = (top["rss_mb"] - base["rss_mb"]) * 1024 / 400
            assert top["rss_per_record_kb"] == pytest.approx(expected, abs=0.3)
    rows = {r["key"]: r for r in report["checks"]}
    assert rows["ingest_batched_ratio"]["value"] == report["ingest"]["batched"]["ratio"]
    assert rows["server_busy_idle_p50_ratio"]["value"] == server["busy_idle_p50_ratio"]


def test_compare_ran_or_says_why(run: dict) -> None:
    compare = run["report"]["compare"]
    for name in ("langchain_chroma", "llamaindex_memory", "mem0"):
        assert name in compare["systems"]
        ingest = compare["ingest"][name]
        assert "error" in ingest or ingest["batched"]["turns_per_s"] > 0
        at_200 = run["report"]["shapes"]["one_user"]["200"]["compare"][name]
        assert "error" in at_200 or at_200["user"]["flat"]["n"] == 4
    assert "skipped" in run["report"]["shapes"]["one_user"]["600"]["compare"]


def test_check_picks_the_largest_measured_size_and_rejects_unknown_keys(run: dict) -> None:
    rows = {r["key"]: r for r in check(run["report"], {"tenant_p50_ms_many_users": 1e9})}
    assert rows["tenant_p50_ms_many_users"]["status"] == "PASS"
    assert rows["tenant_p50_ms_many_users"]["measured_at"] == 600
    with pytest.raises(KeyError):
        check(run["report"], {"no_such_target": 1.0})


def test_generated_memories_are_distinct_and_deterministic() -> None:
    turns = load_turns(DATA)
    a, b = MemoryGenerator(turns, seed=3).texts(len(turns) + 500), MemoryGenerator(turns, seed=3).texts(50)
    assert len(set(a)) == len(a) and a[:50] == b
    seen: set[str] = set()
    for i, t in enumerate(turns):  # the first pass keeps each real turn, varying only repeats
        assert (a[i] == t.text) == (t.text not in seen)
        seen.add(t.text)
    assert MemoryGenerator(turns, seed=4).texts(len(turns) + 5)[-5:] != a[len(turns) : len(turns) + 5]
    assert default_stem([1000, 10_000, 1_000_000]) == "scale-1k-10k-1m"


def test_lookup_embedder_and_perturbation() -> None:
    import numpy as np

    class Real:
        identity, dimension = "fake:3", 3

        def embed_documents(self, texts: list[str]) -> list[list[float]]:
            return [[1.0, 0.0, 0.0] for _ in texts]

        def embed_query(self, text: str) -> list[float]:
            return [0.0, 1.0, 0.0]

    lookup = LookupEmbedder(Real())
    lookup.add(["known"], np.array([[0.0, 0.0, 1.0]], dtype=np.float32))
    assert lookup.embed_documents(["known", "new"]) == [[0.0, 0.0, 1.0], [1.0, 0.0, 0.0]]
    assert lookup.identity == "fake:3" and lookup.embed_query("q") == [0.0, 1.0, 0.0]
    assert lookup.embed_query("known") == [0.0, 0.0, 1.0]
    base = np.eye(3, dtype=np.float32)
    v = perturbed(base, 4, seed=0)
    assert math.isclose(float(np.linalg.norm(v)), 1.0, rel_tol=1e-5)
    assert float(v @ base[1]) > 0.9 and np.array_equal(v, perturbed(base, 4, seed=0))
