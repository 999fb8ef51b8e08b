"""benchmarks/lexical_libs.py: the three BM25 implementations score the same tokens alike."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("bm25s")
pytest.importorskip("tantivy")

ROOT = Path(__file__).resolve().parents[1]
FIXTURE = Path(__file__).resolve().parent / "fixtures" / "locomo-tiny.json"


def test_lexical_bench_runs_and_libraries_agree(tmp_path):
    out = tmp_path / "lex.json"
    subprocess.run(
        [sys.executable, str(ROOT / "benchmarks" / "lexical_libs.py"), "--data", str(FIXTURE),
         "--sizes", "400", "--queries", "20", "--out", str(out)],
        check=True, cwd=ROOT, timeout=300,
    )  # fmt: skip
    row = json.loads(out.read_text())["sizes"]["400"]
    assert set(row) == {"tokenize_s", "partition", "bm25s", "tantivy"}
    for lib in ("partition", "bm25s", "tantivy"):
        assert row[lib]["query_p50_ms"] > 0 and row[lib]["bytes"] > 0
    # Same BM25 on the same tokens: the top 10s overlap almost entirely (ties may order apart).
    assert row["bm25s"]["top10_agreement"] >= 0.9
    assert row["tantivy"]["top10_agreement"] >= 0.8
    assert row["partition"]["incremental"] and not row["bm25s"]["incremental"]
