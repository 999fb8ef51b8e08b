"""The indexes and planner statistics the engine adds to an embedded store's file (data/chroma_sqlite.py).

They only speed Chroma's own queries up (``benchmarks/chroma_sqlite.py`` measures by how much);
these tests read the real ``chroma.sqlite3`` of a real store: what SQLite plans for the queries
Chroma sends, that Chroma still returns the same records, and when statistics are taken again.
"""

from __future__ import annotations

import logging
import sqlite3
import subprocess
import sys
from pathlib import Path

import chromadb
from atomic_batch_worker import HashEmbedder

from mem_adapters import MemoryEngine
from mem_adapters.data import chroma_sqlite

# Chroma's own statements (rust/log/src/sqlite_log.rs, rust/sysdb/src/sqlite.rs)
LOG_READ = "SELECT seq_id FROM embeddings_queue WHERE topic = ? AND seq_id > ? ORDER BY seq_id ASC"
SEGMENTS_OF = "SELECT id, type, scope FROM segments WHERE collection = ?"


def _plan(db: Path, sql: str, params: tuple) -> str:
    with sqlite3.connect(db) as con:
        return " | ".join(str(r[-1]) for r in con.execute(f"EXPLAIN QUERY PLAN {sql}", params))


def _stat_rows(db: Path) -> int | None:
    with sqlite3.connect(db) as con:
        return chroma_sqlite._stat_records(con)


def _fill(path: Path, users: dict[str, int]) -> None:
    eng = MemoryEngine(path, embedder=HashEmbedder())
    try:
        for user, n in users.items():
            for start in range(0, n, 100):
                turns = [
                    {
                        "role": "user",
                        "text": f"{user} note {i} about topic{i % 7}",
                        "timestamp": f"2024-01-01T00:{i // 60 % 60:02d}:{i % 60:02d}Z",
                    }
                    for i in range(start, min(n, start + 100))
                ]
                eng.remember(turns, session_id=f"{user}-{start}", user_id=user)
    finally:
        eng.close()


def test_an_opened_store_has_both_indexes_and_chroma_s_lookups_use_them(tmp_path):
    path = tmp_path / "s"
    _fill(path, {"alice": 5})
    db = path / chroma_sqlite.DB_FILE
    assert chroma_sqlite.missing_indexes(db) == []
    assert chroma_sqlite.LOG_INDEX in _plan(db, LOG_READ, ("persistent://x", 0))
    assert chroma_sqlite.SEGMENT_INDEX in _plan(db, SEGMENTS_OF, ("x",))


def test_a_store_made_before_the_indexes_gets_them_when_opened_and_reads_the_same(tmp_path):
    path = tmp_path / "s"
    _fill(path, {"alice": 30, "bob": 20})
    db = path / chroma_sqlite.DB_FILE
    with sqlite3.connect(db) as con:
        for name in chroma_sqlite.INDEXES:
            con.execute(f"DROP INDEX {name}")
    assert sorted(chroma_sqlite.missing_indexes(db)) == sorted(chroma_sqlite.INDEXES)
    assert "USING INTEGER PRIMARY KEY" in _plan(db, LOG_READ, ("persistent://x", 0))  # a walk of the log

    def read() -> dict[str, list[str]]:
        client = chromadb.PersistentClient(path=str(path))
        col = next(c for c in client.list_collections() if c.name.endswith("-mem"))
        col = client.get_collection(col.name, embedding_function=None)
        return {u: sorted(col.get(where={"user_id": u}, limit=1000)["ids"]) for u in ("alice", "bob")}

    before = read()
    eng = MemoryEngine(path, embedder=HashEmbedder())
    try:
        assert chroma_sqlite.missing_indexes(db) == []
        top = eng.search("alice note 3 about topic3", user_id="alice", k=5).results
        assert top[0].text == "alice note 3 about topic3"
    finally:
        eng.close()
    assert read() == before
    assert len(before["alice"]) == 30 and len(before["bob"]) == 20


def test_statistics_are_taken_for_a_large_enough_store_and_again_when_it_grew(tmp_path, monkeypatch):
    monkeypatch.setattr(chroma_sqlite, "ANALYZE_MIN_RECORDS", 40)
    path = tmp_path / "s"
    db = path / chroma_sqlite.DB_FILE
    _fill(path, {"alice": 30})  # 30 records: below the minimum
    MemoryEngine(path, embedder=HashEmbedder()).close()
    assert _stat_rows(db) is None
    _fill(path, {"bob": 30})  # 60 now; the open that wrote them found 30, the next one takes them
    MemoryEngine(path, embedder=HashEmbedder()).close()
    first = _stat_rows(db)
    assert first is not None and first >= 60
    _fill(path, {"carol": 10})  # within RESTAT_FACTOR: kept
    MemoryEngine(path, embedder=HashEmbedder()).close()
    assert _stat_rows(db) == first
    _fill(path, {"dave": 100})  # well past it: taken again
    MemoryEngine(path, embedder=HashEmbedder()).close()
    again = _stat_rows(db)
    assert again is not None and again > first * chroma_sqlite.RESTAT_FACTOR


def test_an_engine_opened_on_a_path_looks_at_the_file_once_and_a_new_file_still_gets_tuned(
    tmp_path, monkeypatch
):
    counts: list[Path] = []
    real = chroma_sqlite.stats_stale

    def counted(db_path: Path) -> bool:
        counts.append(db_path)
        return real(db_path)

    monkeypatch.setattr(chroma_sqlite, "stats_stale", counted)
    path = tmp_path / "s"
    eng = MemoryEngine(path, embedder=HashEmbedder())  # no file yet: tuned once Chroma made it
    try:
        eng.remember([{"role": "user", "text": "a first turn"}], session_id="s1", user_id="alice")
        assert len(counts) == 1
        assert chroma_sqlite.missing_indexes(path / chroma_sqlite.DB_FILE) == []
    finally:
        eng.close()
    counts.clear()
    eng = MemoryEngine(path, embedder=HashEmbedder())  # a file: tuned before Chroma opens it, only
    try:
        assert eng.search("a first turn", user_id="alice", k=1).results[0].text == "a first turn"
        assert len(counts) == 1
    finally:
        eng.close()
    assert chroma_sqlite.tune(tmp_path / "absent") is False
    assert chroma_sqlite.tune(path) is True


def test_a_file_that_is_not_chroma_s_is_left_alone_with_a_warning(tmp_path, caplog):
    (tmp_path / chroma_sqlite.DB_FILE).write_bytes(b"not a database at all" * 100)
    with caplog.at_level(logging.WARNING, logger=chroma_sqlite.__name__):
        chroma_sqlite.tune(tmp_path)
    assert "could not tune" in caplog.text
    assert (tmp_path / chroma_sqlite.DB_FILE).read_bytes() == b"not a database at all" * 100
    chroma_sqlite.tune(tmp_path / "absent")  # no file: nothing to do, nothing raised


def test_the_operator_command_tunes_a_server_s_folder(tmp_path):
    client = chromadb.PersistentClient(path=str(tmp_path / "srv"))
    col = client.create_collection("plain-one", embedding_function=None)
    col.add(ids=["a", "b"], embeddings=[[1.0, 0.0], [0.0, 1.0]])
    del client, col
    cmd = [sys.executable, "-m", "mem_adapters.data.chroma_sqlite", "--path"]
    done = subprocess.run([*cmd, str(tmp_path / "srv")], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert chroma_sqlite.missing_indexes(tmp_path / "srv" / chroma_sqlite.DB_FILE) == []
    assert _stat_rows(tmp_path / "srv" / chroma_sqlite.DB_FILE) == 2
    missing = subprocess.run([*cmd, str(tmp_path / "none")], capture_output=True, text=True, timeout=120)
    assert missing.returncode == 2 and "no chroma.sqlite3" in missing.stderr
