"""Issue #11: no erased vector survives in the unused slots of Chroma's HNSW files.

Chroma writes a new index's ``malloc``'d buffer to disk whole, unused slots included, so those
slots can hold freed memory of the process. Two guards, both tested on real Chroma files and
the real allocator: an erase zeroes the slots past each index's element count
(:mod:`mem_adapters.data.hnsw_files`), and freed memory is overwritten from the first store on
(:mod:`mem_adapters.data.heap`, glibc ``M_PERTURB``), so a later index cannot carry it.
"""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import chromadb
import numpy as np
import pytest
from chromadb.api.client import SharedSystemClient

from mem_adapters import MemoryEngine
from mem_adapters.data.erasure import zero_index_slack
from mem_adapters.data.hnsw_files import read_header, zero_unused_slots

PATTERN = b"ERASED-VECTOR-BYTES!"


def _store(path: Path, n: int = 7, dim: int = 8) -> tuple[list[str], np.ndarray]:
    client = chromadb.PersistentClient(path=str(path))
    col = client.create_collection("slack-test", embedding_function=None)
    rng = np.random.default_rng(3)
    vecs = rng.random((n, dim)).astype(np.float32)
    ids = [f"r{i}" for i in range(n)]
    col.add(ids=ids, embeddings=vecs.tolist(), documents=[f"doc {i}" for i in ids])
    col.query(query_embeddings=[vecs[0].tolist()], n_results=1)  # the index is built and written
    SharedSystemClient.clear_system_cache()  # Chroma stopped: its files are final
    return ids, vecs


def _index_folder(path: Path) -> Path:
    folders = [p for p in path.iterdir() if p.is_dir() and (p / "header.bin").exists()]
    assert len(folders) == 1, folders
    return folders[0]


def _plant(folder: Path) -> int:
    """Write the pattern into every unused slot, as freed memory would be; returns the slot start."""
    head = read_header(folder)
    assert head is not None and head.count < head.max_elements
    level0 = folder / "data_level0.bin"
    size = level0.stat().st_size
    start = head.count * head.element_bytes
    assert size >= head.max_elements * head.element_bytes  # Chroma wrote every slot, used or not
    with level0.open("r+b") as f:
        f.seek(start)
        f.write((PATTERN * (size // len(PATTERN) + 1))[: size - start])
    return start


def test_unused_slots_are_zeroed_and_the_index_still_answers(tmp_path):
    ids, vecs = _store(tmp_path)
    folder = _index_folder(tmp_path)
    start = _plant(folder)
    assert PATTERN in (folder / "data_level0.bin").read_bytes()
    used = (folder / "data_level0.bin").read_bytes()[:start]

    changed = zero_unused_slots(folder)

    data = (folder / "data_level0.bin").read_bytes()
    assert PATTERN not in data and changed >= len(data) - start - 1
    assert data[:start] == used  # the elements are untouched
    assert data[start:] == bytes(len(data) - start)
    assert zero_unused_slots(folder) == 0  # nothing left to change
    client = chromadb.PersistentClient(path=str(tmp_path))
    col = client.get_collection("slack-test")
    got = col.query(query_embeddings=[vecs[3].tolist()], n_results=3, include=["distances"])
    assert got["ids"][0][0] == "r3"
    assert sorted(col.get(include=[])["ids"]) == ids
    SharedSystemClient.clear_system_cache()


def test_zeroing_every_folder_skips_what_is_not_an_index(tmp_path):
    _store(tmp_path)
    folder = _index_folder(tmp_path)
    _plant(folder)
    stranger = tmp_path / "0f0e0d0c-0000-4000-8000-000000000000"
    stranger.mkdir()
    (stranger / "header.bin").write_bytes(b"\x07" * 100)  # an unknown version: left alone
    (stranger / "data_level0.bin").write_bytes(PATTERN * 10)

    folders, zeroed = zero_index_slack(tmp_path)

    assert folders == 1 and zeroed > 0
    assert PATTERN not in (folder / "data_level0.bin").read_bytes()
    assert (stranger / "data_level0.bin").read_bytes() == PATTERN * 10


_HEAP_PROBE = textwrap.dedent(
    """
    import ctypes, sys
    from mem_adapters import MemoryEngine

    eng = MemoryEngine(sys.argv[1])  # the default embedder (MEM_ADAPTERS_MODEL_DIR)
    eng.remember([{"role": "user", "text": "The embedder has run."}], session_id="s")  # ORT's frees
    libc = ctypes.CDLL(None)
    libc.malloc.restype = ctypes.c_void_p
    libc.malloc.argtypes = [ctypes.c_size_t]
    libc.free.argtypes = [ctypes.c_void_p]
    size = 4000
    p = libc.malloc(size)
    ctypes.memset(p, 0x11, size)  # "an erased vector"
    libc.free(p)
    q = libc.malloc(size)  # glibc hands the same block back
    body = ctypes.string_at(q + 64, size - 128)
    print(q == p, body.count(0x11), body.count(0x5A), len(body))
    eng.close()
    """
)


def _probe(path: Path, env: dict[str, str]) -> tuple[bool, int, int, int]:
    out = subprocess.run(
        [sys.executable, "-c", _HEAP_PROBE, str(path)], env=env, capture_output=True, text=True, timeout=120
    )
    assert out.returncode == 0, out.stderr[-2000:]
    same, old, fill, n = out.stdout.split()
    return same == "True", int(old), int(fill), int(n)


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc's allocator only")
def test_an_embedded_store_makes_freed_memory_unreadable(tmp_path):
    import os

    drop = ("MALLOC_PERTURB_", "MALLOC_MMAP_THRESHOLD_", "MEM_ADAPTERS_SCRUB_FREED_MEMORY")
    env = {k: v for k, v in os.environ.items() if k not in drop}
    same, old, fill, n = _probe(tmp_path / "on", env)
    assert same and old == 0 and fill == n  # the freed block came back as 0x5A, not as it was

    same, old, _fill, n = _probe(tmp_path / "off", {**env, "MEM_ADAPTERS_SCRUB_FREED_MEMORY": "0"})
    assert same and old == n  # without the guard the old bytes come back: what the guard prevents


def test_the_receipt_says_whether_freed_memory_is_overwritten(tmp_path, embedder):
    eng = MemoryEngine(tmp_path / "s", embedder=embedder)
    try:
        eng.remember(
            [{"role": "user", "text": "Some words to erase again later."}], session_id="s", user_id="u"
        )
        receipt = eng.erase(user_id="u")
        assert any(c.startswith("heap: freed memory is overwritten") for c in receipt.residue_checks), (
            receipt.residue_checks
        )
        assert any(
            c.startswith("hnsw: ") and "unused index slots zeroed" in c for c in receipt.residue_checks
        )
    finally:
        eng.close()
