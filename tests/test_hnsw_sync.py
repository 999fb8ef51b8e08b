"""The engine's collections save their HNSW index every ``sync_threshold`` records (data/hnsw_config.py).

Chroma re-reads, on every write, each record written since the index was last saved, so the
threshold bounds what a one-turn write costs (``benchmarks/hnsw_sync.py``). These tests read the
real store: the collections' configuration through a chromadb client, and the mark Chroma
stores when it saves an index from its own SQLite file.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import chromadb
import pytest

from mem_adapters import MemoryEngine, ValidationError
from mem_adapters.data import hnsw_config

T0 = datetime(2024, 6, 1, tzinfo=timezone.utc)


def _settings(path: Path, read: Callable[[Any], int | None]) -> dict[str, int | None]:
    """``read`` of each collection of the store, by role (``mem``, ``aux``)."""
    client = chromadb.PersistentClient(path=str(path))
    out = {}
    for c in client.list_collections():
        col = client.get_collection(c.name, embedding_function=None)
        out[(col.metadata or {}).get("ma_role", c.name)] = read(col)
    return out


def _thresholds(path: Path) -> dict[str, int | None]:
    return _settings(path, hnsw_config.current)


def _saved_seq(path: Path) -> int:
    """The log position up to which Chroma saved the memory collection's HNSW index (0: never)."""
    with sqlite3.connect(path / "chroma.sqlite3") as db:
        row = db.execute(
            "SELECT m.seq_id FROM max_seq_id m JOIN segments s ON s.id = m.segment_id "
            "JOIN collections c ON c.id = s.collection "
            "WHERE s.scope = 'VECTOR' AND c.name LIKE '%-mem'"
        ).fetchone()
    return int(row[0]) if row else 0


def _one_turn_writes(path: Path, embedder, n: int) -> None:
    eng = MemoryEngine(path, embedder=embedder)
    try:
        for i in range(n):
            turn = {"role": "user", "text": f"one turn number {i}", "timestamp": T0 + timedelta(seconds=i)}
            eng.remember([turn], session_id="s", user_id="u")
    finally:
        eng.close()


def test_new_collections_use_the_default_threshold(tmp_path, embedder):
    _one_turn_writes(tmp_path / "s", embedder, 1)
    assert _thresholds(tmp_path / "s") == {
        "mem": hnsw_config.DEFAULT_SYNC_THRESHOLD,
        "aux": hnsw_config.DEFAULT_SYNC_THRESHOLD,
    }
    assert hnsw_config.DEFAULT_SYNC_THRESHOLD < 1000  # below Chroma's own default, or this is moot


def test_existing_collections_take_the_setting_when_opened(tmp_path, embedder, monkeypatch):
    monkeypatch.setenv(hnsw_config.ENV, "1000")  # a store made as older releases made it
    _one_turn_writes(tmp_path / "s", embedder, 1)
    assert _thresholds(tmp_path / "s") == {"mem": 1000, "aux": 1000}
    monkeypatch.delenv(hnsw_config.ENV)
    eng = MemoryEngine(tmp_path / "s", embedder=embedder)
    try:
        assert eng.search("one turn", user_id="u").results  # opens the tenant
    finally:
        eng.close()
    assert _thresholds(tmp_path / "s") == {"mem": 100, "aux": 100}


def _ef_search(path: Path) -> dict[str, int | None]:
    return _settings(path, hnsw_config.ef_search)


def test_memory_collections_search_wider_than_chroma_s_default_new_or_opened(tmp_path, embedder):
    _one_turn_writes(tmp_path / "s", embedder, 1)
    ef = _ef_search(tmp_path / "s")
    assert ef["mem"] == hnsw_config.MEMORY_EF_SEARCH > ef["aux"]  # aux keeps Chroma's default
    client = chromadb.PersistentClient(path=str(tmp_path / "s"))
    name = next(c.name for c in client.list_collections() if c.name.endswith("-mem"))
    client.get_collection(name, embedding_function=None).modify(configuration={"hnsw": {"ef_search": 100}})
    del client
    assert _ef_search(tmp_path / "s")["mem"] == 100  # a store made before the setting
    eng = MemoryEngine(tmp_path / "s", embedder=embedder)
    try:
        assert eng.search("one turn", user_id="u").results  # opens the tenant
    finally:
        eng.close()
    assert _ef_search(tmp_path / "s")["mem"] == hnsw_config.MEMORY_EF_SEARCH


@pytest.mark.parametrize(("threshold", "saved"), [(10, True), (1000, False)])
def test_chroma_saves_the_index_after_threshold_writes(tmp_path, embedder, monkeypatch, threshold, saved):
    # 15 one-turn writes: a threshold of 10 has Chroma save the index (and store its mark) once;
    # Chroma's default of 1,000 has it re-read every one of them on each later write.
    monkeypatch.setenv(hnsw_config.ENV, str(threshold))
    _one_turn_writes(tmp_path / "s", embedder, 15)
    assert (_saved_seq(tmp_path / "s") > 0) is saved


def test_a_rebuilt_collection_keeps_the_threshold(tmp_path, embedder, monkeypatch):
    monkeypatch.setenv(hnsw_config.ENV, "37")
    eng = MemoryEngine(tmp_path / "s", embedder=embedder)
    try:
        for user in ("a", "b"):
            eng.remember(
                [{"role": "user", "text": f"hello from {user}", "timestamp": T0}],
                session_id=user,
                user_id=user,
            )
        eng.erase(user_id="a")  # rebuilds both collections without a's records
        assert [h.text for h in eng.search("hello", user_id="b").results] == ["hello from b"]
    finally:
        eng.close()
    assert _thresholds(tmp_path / "s") == {"mem": 37, "aux": 37}


@pytest.mark.parametrize("raw", ["0", "-5", "many", "1.5"])
def test_a_bad_threshold_is_a_validation_error(monkeypatch, raw):
    monkeypatch.setenv(hnsw_config.ENV, raw)
    with pytest.raises(ValidationError, match=hnsw_config.ENV):
        hnsw_config.sync_threshold_from_env()
