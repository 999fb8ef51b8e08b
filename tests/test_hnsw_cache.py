"""Issue #10 (RSS per idle tenant): the engine's embedded client holds a bounded number of HNSW indexes.

Real Chroma: the size reaches Chroma's core, and tenants whose indexes were evicted still
answer a tenant-wide search exactly as before (Chroma reloads them from disk).
"""

from __future__ import annotations

import pytest

from mem_adapters import MemoryEngine
from mem_adapters.data.embedded import DEFAULT_HNSW_CACHE, HNSW_CACHE_ENV, hnsw_cache_size


def _held(engine: MemoryEngine) -> int:
    return engine.aengine._client._server.hnsw_cache_size


def test_the_engine_holds_the_default_number_of_indexes(tmp_path, embedder, monkeypatch):
    monkeypatch.delenv(HNSW_CACHE_ENV, raising=False)
    eng = MemoryEngine(tmp_path / "s", embedder=embedder)
    try:
        assert _held(eng) == DEFAULT_HNSW_CACHE
    finally:
        eng.close()


@pytest.mark.parametrize(("raw", "size"), [("0", None), ("-3", None), ("1", 2), ("64", 64), ("lots", 32)])
def test_the_setting_is_read_as_documented(monkeypatch, raw, size):
    monkeypatch.setenv(HNSW_CACHE_ENV, raw)
    assert hnsw_cache_size() == size


def test_zero_keeps_chromas_own_size(tmp_path, embedder, monkeypatch):
    monkeypatch.setenv(HNSW_CACHE_ENV, "0")
    eng = MemoryEngine(tmp_path / "s", embedder=embedder)
    try:
        assert _held(eng) > DEFAULT_HNSW_CACHE  # RLIMIT_NOFILE // 5
    finally:
        eng.close()


def test_evicted_tenants_answer_as_before(tmp_path, embedder, monkeypatch):
    monkeypatch.setenv(HNSW_CACHE_ENV, "2")  # one tenant's two collections
    eng = MemoryEngine(tmp_path / "s", embedder=embedder)
    tenants = [f"t{i}" for i in range(5)]
    try:
        assert _held(eng) == 2
        for t in tenants:
            eng.remember(
                [{"role": "user", "text": f"Tenant {t} keeps bees in the orchard."},
                 {"role": "user", "text": f"Tenant {t} sails on Sundays."}],
                session_id="s", user_id="u", tenant_id=t,
            )  # fmt: skip
        first = {t: [h.id for h in eng.search("who keeps bees?", tenant_id=t).results] for t in tenants}
        for t in reversed(tenants):  # every other tenant's indexes are evicted meanwhile
            assert [h.id for h in eng.search("who keeps bees?", tenant_id=t).results] == first[t]
            assert f"Tenant {t} keeps bees" in eng.search("who keeps bees?", tenant_id=t).results[0].text
    finally:
        eng.close()
