"""Snapshot files: the arrays out of band, mapped copy-on-write on load, checksummed whole."""

from __future__ import annotations

import json

import numpy as np
from atomic_batch_worker import HashEmbedder

from mem_adapters import AsyncMemoryEngine
from mem_adapters.data import layer as layer_mod
from mem_adapters.data import snapshots as snap_mod
from mem_adapters.data.layer import DataLayer


def _turns(n: int) -> list[dict]:
    return [
        {
            "role": "user",
            "text": f"snap note {i} about topic{i % 5}",
            "timestamp": f"2024-01-01T00:{i // 60:02d}:{i % 60:02d}Z",
        }
        for i in range(n)
    ]


async def _snapshotted(tmp_path, monkeypatch):
    monkeypatch.setattr(layer_mod, "MIN_RECORDS", 10)
    eng = AsyncMemoryEngine(tmp_path / "s", embedder=HashEmbedder())
    await eng.remember(_turns(120), session_id="s", user_id="u")
    await eng.search("snap note", user_id="u")
    data = await eng.data()
    held = await data.partition("default", "u")
    return eng, data, held, data.snapshots.path("default", "u")


async def test_a_loaded_snapshot_s_columns_are_aligned_writable_views_of_the_file(tmp_path, monkeypatch):
    eng, data, held, path = await _snapshotted(tmp_path, monkeypatch)
    try:
        header = json.loads(path.read_bytes().split(b"\n", 1)[0])
        assert header["format"] == snap_mod.FORMAT and header["buffers"]
        found = data.snapshots.load("default", "u", embedder=data.store.embedder_identity)
        assert found is not None
        part = found[0]
        col = part.num["expires_at"].data
        assert not col.flags.owndata and col.flags.writeable  # a view of the mapping, not a copy
        assert col.ctypes.data % snap_mod.ALIGN == 0
        # The vectors too: a copy would hold them twice (the checksum has read every page of
        # the mapping), 1.5 KB a record (benchmarks/snapshot_load.py, rss_mb_after_first_search).
        assert not part.vectors.flags.owndata
        assert sorted(part.row_of) == sorted(held.row_of)
        for i, r in held.row_of.items():
            assert np.array_equal(part.vectors[part.row_of[i]], held.vectors[r])
            assert part.texts[part.row_of[i]] == held.texts[r]
        before = path.read_bytes()
        col[0] += 1.0  # copy-on-write: the file stays as it was
        assert path.read_bytes() == before
        # The partition from the file keeps growing like any other (its arrays are replaced).
        fresh = DataLayer(data.store, HashEmbedder.dimension, snapshots=data.snapshots)
        loaded = await fresh.partition("default", "u")
        n = len(loaded)
        loaded.upsert("extra", "an extra note", {"user_id": "u", "kind": "raw", "rev": 1}, [1.0] * 16)
        assert len(loaded) == n + 1
    finally:
        await eng.aclose()


async def test_a_flipped_byte_in_the_pickle_or_in_an_array_is_caught(tmp_path, monkeypatch):
    eng, data, _, path = await _snapshotted(tmp_path, monkeypatch)
    await eng.aclose()
    blob = path.read_bytes()
    line, _ = blob.split(b"\n", 1)
    header = json.loads(line)
    start = len(line) + 1
    array_at = start + header["buffers"][0][0] + 8
    for where in (start + header["pickle"] // 2, array_at):
        damaged = bytearray(blob)
        damaged[where] ^= 0x01
        path.write_bytes(bytes(damaged))
        assert data.snapshots.load("default", "u", embedder=data.store.embedder_identity) is None
    path.write_bytes(blob)
    assert data.snapshots.load("default", "u", embedder=data.store.embedder_identity) is not None
