"""benchmarks/chroma_sqlite.py and benchmarks/warm_search.py run on a small real store and report it."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import chromadb

from mem_adapters import MemoryEngine
from mem_adapters.data import chroma_sqlite, hnsw_config

ROOT = Path(__file__).resolve().parents[1]
FIXTURE = Path(__file__).resolve().parent / "fixtures" / "locomo-tiny.json"


def _store(path: Path, embedder) -> None:
    eng = MemoryEngine(path, embedder=embedder)
    try:
        for t in range(3):
            turns = [
                {
                    "role": "user",
                    "text": f"tenant {t} note {i} about the lake",
                    "timestamp": f"2024-01-01T00:00:{i:02d}Z",
                }
                for i in range(12)
            ]
            eng.remember(turns, session_id="s", user_id="u0000", tenant_id=f"t{t}")
    finally:
        eng.close()


def test_chroma_sqlite_bench_compares_a_plain_and_a_tuned_copy(tmp_path, embedder):
    _store(tmp_path / "s", embedder)
    out = tmp_path / "r.json"
    script = str(ROOT / "benchmarks" / "chroma_sqlite.py")
    subprocess.run(
        [sys.executable, script, str(tmp_path / "s"), "--calls", "2", "--out", str(out)],
        check=True,
        cwd=ROOT,
        timeout=300,
    )
    r = json.loads(out.read_text())
    assert r["collections"] == 6 and r["records"] >= 36
    for side in ("as_chroma_left_it", "tuned"):
        assert r[side]["sampled_collections"] == 3 and r[side]["records"] == 12
        assert all(
            r[side][k] > 0
            for k in (
                "log_read_ms",
                "get_one_id_ms",
                "rev_filter_ms",
                "user_filter_ms",
                "session_filter_ms",
                "whole_read_ms",
            )
        )
    # The store itself is left as it was: the script works on copies.
    assert chroma_sqlite.missing_indexes(tmp_path / "s" / chroma_sqlite.DB_FILE) == []
    assert not [p for p in tmp_path.iterdir() if p.name not in ("s", "r.json")]


def test_warm_search_reports_the_engine_that_ran(tmp_path, embedder):
    _store(tmp_path / "s", embedder)
    eng = MemoryEngine(tmp_path / "s", embedder=embedder)
    try:
        for user in ("u0100", "u0101"):
            turn = {"role": "user", "text": f"{user} swam in the lake", "timestamp": "2024-01-02T00:00:00Z"}
            eng.remember([turn], session_id=user, user_id=user, tenant_id="t1")
    finally:
        eng.close()
    out = tmp_path / "w.json"
    script = str(ROOT / "benchmarks" / "warm_search.py")
    cmd = [sys.executable, script, "--store", str(tmp_path / "s"), "--tenant", "t1", "--data", str(FIXTURE),
           "--queries", "3", "--per-turn", "2", "--first-users", "2", "--ann", "2",
           "--ef-search", "150", "--overfetch", "3", "--out", str(out)]  # fmt: skip
    subprocess.run(cmd, check=True, cwd=ROOT, timeout=300)
    r = json.loads(out.read_text())
    assert r["engine"].startswith(str(ROOT / "src" / "mem_adapters"))
    assert (
        r["search"]["queries"] == 3
        and r["search"]["p50_ms"] > 0
        and "embed_ms" in r["search"]["stage_p50_ms"]
    )
    assert r["per_turn"]["turns"] == 2 and r["per_turn"]["mean_ms"] > 0
    assert r["first_of_other_users"]["users"] == 2 and r["first_of_other_users"]["p50_ms"] > 0
    # A small partition: both ways score every row, so they agree and Chroma's index is not asked.
    ann = r["ann_against_exact"]
    assert ann["queries"] == 2 and ann["ann_queries"] == 0 and ann["top10_kept_mean"] == 1.0
    assert (r["ef_search"], r["overfetch"]) == (150, 3.0)
    client = chromadb.PersistentClient(path=str(tmp_path / "s"))
    cols = [client.get_collection(c.name, embedding_function=None) for c in client.list_collections()]
    mems = [c for c in cols if (c.metadata or {}).get("ma_tenant") == "t1" and c.name.endswith("-mem")]
    assert len(mems) == 1 and hnsw_config.ef_search(mems[0]) == 150  # the engine set it at open
