"""Several processes enriching one store (a real ``chroma run``): each turn is enriched once.

The workers are real subprocesses. A counting extractor appends one line per turn it has
extracted to a shared log (appends of short lines are atomic), so the log shows who
enriched what, and how often.
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from mem_adapters import AsyncMemoryEngine
from mem_adapters.enrichment import RuleExtractor

pytestmark = pytest.mark.server


class CountingExtractor(RuleExtractor):
    """The rule extractor, logging each turn it extracted (and blocking first if asked to)."""

    def __init__(self, log: str, block: bool = False) -> None:
        super().__init__()
        self.log = log
        self.block = block

    def extract(self, turns, **kwargs):
        with open(self.log + ".started", "a") as f:
            f.write("".join(f"{os.getpid()} {t.id}\n" for t in turns))
        if self.block:
            time.sleep(3600)  # killed meanwhile
        out = super().extract(turns, **kwargs)
        with open(self.log, "a") as f:
            f.write("".join(f"{os.getpid()} {t.id}\n" for t in turns))
        return out


_WORKER = textwrap.dedent(
    """
    import asyncio, sys
    sys.path.insert(0, {tests!r})
    from test_enrichment_leases import CountingExtractor
    from mem_adapters import AsyncMemoryEngine
    from mem_adapters.enrichment import Enricher

    async def main():
        enricher = Enricher(CountingExtractor({log!r}, block={block}), lease_seconds={ttl}, backoff=0.05)
        eng = AsyncMemoryEngine(host={host!r}, port={port}, embedder={embedder}, enricher=enricher)
        await eng.tenants()  # open the store: the worker resumes every pending turn
        await asyncio.sleep(0.5)
        await eng.wait_all(timeout=120)
        await eng.aclose()

    asyncio.run(main())
    """
)


def _worker(
    tmp: Path, server: tuple[str, int], *, block: bool = False, ttl: float = 30.0
) -> subprocess.Popen:
    code = _WORKER.format(
        tests=os.path.dirname(__file__), log=str(tmp / "extracted.log"), block=block, ttl=ttl,
        host=server[0], port=server[1], embedder="__import__('test_data_layer').HashEmbedder()",
    )  # fmt: skip
    return subprocess.Popen(
        [sys.executable, "-c", code], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )


async def _pending_store(server: tuple[str, int], tenant: str) -> list[str]:
    """Turns written with no enricher: every one is ``enrich: pending``."""
    from test_data_layer import HashEmbedder

    eng = AsyncMemoryEngine(host=server[0], port=server[1], embedder=HashEmbedder())
    ids: list[str] = []
    for s in range(3):
        w = await eng.remember(
            [{"role": "user", "text": f"I moved to city{s}, I work as nurse number {i}."} for i in range(4)],
            session_id=f"s{s}", user_id="u", tenant_id=tenant,
        )  # fmt: skip
        ids += w.active_ids
    await eng.aclose()
    return ids


async def _enrich_states(server: tuple[str, int], tenant: str, ids: list[str]) -> set[str]:
    from test_data_layer import HashEmbedder

    eng = AsyncMemoryEngine(host=server[0], port=server[1], embedder=HashEmbedder())
    try:
        mem, _ = await eng.collections(tenant)
        got = await mem.get(ids=ids, include=["metadatas"])
        return {m["enrich"] for m in got["metadatas"]}
    finally:
        await eng.erase(tenant_id=tenant)
        await eng.aclose()


def _lines(path: Path) -> list[tuple[str, str]]:
    if not path.exists():
        return []
    return [tuple(line.split()) for line in path.read_text().splitlines() if line.strip()]  # type: ignore[misc]


async def test_two_workers_enrich_each_turn_exactly_once(chroma_server, tmp_path):
    tenant = f"lease{time.time_ns()}"
    ids = await _pending_store(chroma_server, tenant)
    procs = [_worker(tmp_path, chroma_server), _worker(tmp_path, chroma_server)]
    for p in procs:
        _out, err = p.communicate(timeout=240)
        assert p.returncode == 0, err[-3000:]
    done = _lines(tmp_path / "extracted.log")
    mine = [t for _, t in done if t in ids]
    assert sorted(mine) == sorted(ids), "every pending turn was extracted exactly once"
    assert await _enrich_states(chroma_server, tenant, ids) == {"done"}


async def test_a_dead_workers_lease_expires_and_another_finishes_its_turns(chroma_server, tmp_path):
    tenant = f"lease{time.time_ns()}"
    ids = await _pending_store(chroma_server, tenant)
    holder = _worker(tmp_path, chroma_server, block=True, ttl=3.0)
    started = tmp_path / "extracted.log.started"
    deadline = time.time() + 120
    while not any(t in ids for _, t in _lines(started)):
        assert holder.poll() is None and time.time() < deadline, holder.stderr.read() if holder.stderr else ""
        await asyncio.sleep(0.1)
    holder.send_signal(signal.SIGKILL)  # dies holding a session lease
    holder.wait(timeout=30)
    taker = _worker(tmp_path, chroma_server, ttl=3.0)
    _out, err = taker.communicate(timeout=240)
    assert taker.returncode == 0, err[-3000:]
    done = [(pid, t) for pid, t in _lines(tmp_path / "extracted.log") if t in ids]
    assert sorted(t for _, t in done) == sorted(ids), "each turn enriched once, all by the survivor"
    assert {pid for pid, _ in done} == {str(taker.pid)}
    assert await _enrich_states(chroma_server, tenant, ids) == {"done"}
