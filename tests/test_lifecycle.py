"""Engine lifecycle: close/aclose stop background work quietly, later calls raise ClosedError,
a forgotten close loses nothing and prints nothing, and job ids resolve without their tenant."""

from __future__ import annotations

import asyncio
import gc
import json
import logging
import os
import subprocess
import sys
import textwrap
import threading
import warnings
from pathlib import Path

import pytest

from mem_adapters import AsyncMemoryEngine, ClosedError, JobError, MemoryEngine
from mem_adapters.enrichment import Enricher, RuleExtractor

TURNS = [
    "I live in Paris.",
    "My favorite food is ramen.",
    "I work as a nurse at the city hospital.",
    "I moved to Berlin last month.",
    "I'm allergic to peanuts.",
    "My sister Lena lives in Vienna.",
]


def _turns(texts: list[str] = TURNS) -> list[dict[str, str]]:
    return [
        {"role": "user", "text": t, "timestamp": f"2024-01-0{i + 1}T10:00:00"} for i, t in enumerate(texts)
    ]


class HangingExtractor(RuleExtractor):
    """Starts a job and never finishes it (until cancelled), so work is pending at close."""

    def __init__(self) -> None:
        super().__init__()
        self.started = threading.Event()

    async def aextract(self, turns, **kwargs):  # type: ignore[no-untyped-def]
        self.started.set()
        await asyncio.Event().wait()


def _problems(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [f"{r.name}: {r.getMessage()}" for r in caplog.records if r.levelno >= logging.WARNING]


# ---------------------------------------------------------------- sync engine


def test_every_call_after_close_raises_closed_error_and_close_is_idempotent(tmp_path, embedder):
    engine = MemoryEngine(tmp_path / "s", embedder=embedder, enricher=Enricher())
    engine.remember(_turns()[:1], session_id="s1", user_id="u1")
    engine.close()
    engine.close()  # idempotent
    assert engine.closed
    calls = {
        "remember": lambda: engine.remember(_turns()[:1], session_id="s1"),
        "search": lambda: engine.search("food"),
        "get": lambda: engine.get("x"),
        "list": lambda: engine.list(),
        "get_messages": lambda: engine.get_messages("s1"),
        "tenants": lambda: engine.tenants(),
        "add": lambda: engine.add(raw_text="hi"),
        "erase": lambda: engine.erase(user_id="u1"),
        "job_status": lambda: engine.job_status("job_x"),
        "wait_all": lambda: engine.wait_all(1),
    }
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        for call in calls.values():
            with pytest.raises(ClosedError, match="closed"):
                call()
        gc.collect()
    # Refused calls never leave a coroutine un-awaited behind them.
    assert not [w for w in caught if "never awaited" in str(w.message)]


def test_with_block_closes_the_engine(tmp_path, embedder):
    with MemoryEngine(tmp_path / "s", embedder=embedder) as engine:
        engine.remember(_turns()[:1], session_id="s1")
    assert engine.closed
    with pytest.raises(ClosedError):
        engine.search("Paris")


async def test_arun_from_another_loop_after_close_raises_closed_error(tmp_path, embedder):
    engine = MemoryEngine(tmp_path / "s", embedder=embedder)
    engine.close()
    with pytest.raises(ClosedError):
        await engine.arun(engine.aengine.tenants())


def test_close_cancels_running_enrichment_quietly_and_the_next_open_finishes_it(tmp_path, embedder, caplog):
    caplog.set_level(logging.DEBUG, logger="mem_adapters")
    extractor = HangingExtractor()
    engine = MemoryEngine(tmp_path / "s", embedder=embedder, enricher=Enricher(extractor))
    res = engine.remember(_turns(), session_id="s1", user_id="u1", tenant_id="acme")
    assert extractor.started.wait(60)
    engine.close()
    assert _problems(caplog) == []

    again = MemoryEngine(tmp_path / "s", embedder=embedder, enricher=Enricher())
    try:
        # A job of an earlier engine, found without naming its tenant.
        status = again.wait(res.passive_job_id, timeout=120)
        assert status.status == "done" and status.attempts == 1  # the cancelled run did not count
        facts = again.list(kinds=["fact"], tenant_id="acme", page_size=100).results
        texts = [f.text for f in facts]
        assert texts and len(texts) == len(set(texts))
    finally:
        again.close()
    assert _problems(caplog) == []


def test_a_call_still_running_when_the_engine_closes_ends_with_closed_error(tmp_path, embedder):
    extractor = HangingExtractor()
    engine = MemoryEngine(tmp_path / "s", embedder=embedder, enricher=Enricher(extractor))
    res = engine.remember(_turns()[:1], session_id="s1")
    assert extractor.started.wait(60)
    outcome: list[BaseException] = []

    def waiter() -> None:
        try:
            engine.wait(res.passive_job_id)  # never finishes on its own: the job hangs
        except BaseException as e:
            outcome.append(e)

    thread = threading.Thread(target=waiter, daemon=True)
    thread.start()
    engine.close()
    thread.join(60)
    assert not thread.is_alive()
    assert len(outcome) == 1 and isinstance(outcome[0], ClosedError)


# ---------------------------------------------------------------- async engine


async def test_async_with_block_closes_and_later_calls_raise_closed_error(tmp_path, embedder):
    async with AsyncMemoryEngine(tmp_path / "s", embedder=embedder, enricher=Enricher()) as engine:
        await engine.remember(_turns()[:1], session_id="s1")
    with pytest.raises(ClosedError):
        await engine.search("Paris")
    with pytest.raises(ClosedError):
        await engine.remember(_turns()[:1], session_id="s1")
    with pytest.raises(ClosedError):
        await engine.job_status("job_x")
    with pytest.raises(ClosedError):
        await engine.tenants()
    await engine.aclose()  # idempotent


async def test_aclose_leaves_no_pending_task_and_logs_nothing(tmp_path, embedder, caplog):
    caplog.set_level(logging.DEBUG, logger="mem_adapters")
    extractor = HangingExtractor()
    engine = AsyncMemoryEngine(tmp_path / "s", embedder=embedder, enricher=Enricher(extractor))
    await engine.remember(_turns()[:2], session_id="s1")
    while not extractor.started.is_set():
        await asyncio.sleep(0.01)
    await engine.aclose()
    pending = [t for t in asyncio.all_tasks() if t.get_name() == "mem-adapters-enrichment" and not t.done()]
    assert pending == []
    assert _problems(caplog) == []


# ---------------------------------------------------------------- job ids without their tenant


def test_wait_and_job_status_find_the_tenant_of_a_job_the_engine_issued(tmp_path, embedder):
    with MemoryEngine(tmp_path / "s", embedder=embedder, enricher=Enricher()) as engine:
        res = engine.remember(_turns()[:2], session_id="s1", user_id="u1", tenant_id="acme")
        assert engine.wait(res.passive_job_id, timeout=60).status == "done"
        assert engine.job_status(res.passive_job_id).status == "done"
        assert engine.wait(res.passive_job_id, 60, tenant_id="acme").status == "done"  # still accepted
        with pytest.raises(JobError, match="in tenant 'default'"):
            engine.job_status(res.passive_job_id, tenant_id="default")  # an explicit tenant is obeyed
        with pytest.raises(JobError, match="unknown enrichment job 'job_nope'"):
            engine.job_status("job_nope")


async def test_async_wait_finds_the_tenant_too(tmp_path, embedder):
    async with AsyncMemoryEngine(tmp_path / "s", embedder=embedder, enricher=Enricher()) as engine:
        res = await engine.remember(_turns()[:1], session_id="s1", tenant_id="acme")
        assert (await engine.wait(res.passive_job_id, timeout=60)).status == "done"


# ---------------------------------------------------------------- a forgotten close, in a real process

CHILD = textwrap.dedent(
    """
    import asyncio, json, sys, threading
    from mem_adapters import AsyncMemoryEngine, MemoryEngine, OnnxMiniLMEmbedder
    from mem_adapters.enrichment import Enricher, RuleExtractor

    store, model_dir, mode, turns = sys.argv[1], sys.argv[2], sys.argv[3], json.loads(sys.argv[4])
    started = threading.Event()

    class Hanging(RuleExtractor):
        async def aextract(self, turns, **kwargs):
            started.set()
            await asyncio.Event().wait()

    def make(cls):
        return cls(store, embedder=OnnxMiniLMEmbedder(model_dir), enricher=Enricher(Hanging()))

    jobs = []
    if mode == "sync":
        engine = make(MemoryEngine)
        for t in turns:
            jobs.append(engine.remember([t], session_id="s1", user_id="u1", tenant_id="acme").passive_job_id)
        started.wait(60)
    else:
        async def main():
            engine = make(AsyncMemoryEngine)
            for t in turns:
                res = await engine.remember([t], session_id="s1", user_id="u1", tenant_id="acme")
                jobs.append(res.passive_job_id)
            while not started.is_set():
                await asyncio.sleep(0.01)

        if mode == "asyncio.run":
            asyncio.run(main())
        else:  # a loop never closed
            asyncio.new_event_loop().run_until_complete(main())
    print(json.dumps(jobs), flush=True)
    # No close(): the process exits with an enrichment job running and five more queued.
    """
)


def _child(tmp_path: Path, store: Path, mode: str) -> list[str | None]:
    script = tmp_path / "child.py"
    script.write_text(CHILD)
    proc = subprocess.run(
        [sys.executable, str(script), str(store), os.environ["MEM_ADAPTERS_MODEL_DIR"], mode,
         json.dumps(_turns())],
        capture_output=True, timeout=300, env={**os.environ, "ANONYMIZED_TELEMETRY": "False"},
    )  # fmt: skip
    assert (proc.returncode, proc.stderr.decode()) == (0, "")  # nothing printed at exit
    out = proc.stdout.decode().splitlines()
    assert len(out) == 1
    return json.loads(out[0])


def _finish_and_check(store: Path, embedder, jobs: list[str]) -> None:  # type: ignore[no-untyped-def]
    with MemoryEngine(store, embedder=embedder) as plain:  # no enricher: nothing resumes yet
        turns = plain.get_messages("s1", tenant_id="acme")
        assert [t.text for t in turns] == TURNS
        assert plain.list(kinds=["fact"], tenant_id="acme").results == []  # all the work was pending
    engine = MemoryEngine(store, embedder=embedder, enricher=Enricher())
    try:
        engine.wait_all(timeout=120)
        statuses = [engine.job_status(j) for j in jobs]  # an earlier process's jobs, tenant not named
        assert [s.status for s in statuses] == ["done"] * 6
        assert max(s.attempts for s in statuses) == 1  # interrupted runs are not attempts
        assert [s.turn_ids for s in statuses] == [[t.id] for t in turns]
        facts = engine.list(kinds=["fact"], tenant_id="acme", page_size=100).results
        keys = [(f.attributes["subject"], f.attributes["predicate"], f.attributes["value"]) for f in facts]
        assert keys and len(keys) == len(set(keys))  # each fact once
        assert {"lives_in", "works_as"} <= {f.attributes["predicate"] for f in facts}
    finally:
        engine.close()


@pytest.mark.slow
def test_forgotten_close_prints_nothing_and_the_next_open_finishes_the_work_once(tmp_path, embedder):
    store = tmp_path / "store"
    jobs = _child(tmp_path, store, "sync")
    for _ in range(2):  # more interruptions than Enricher's max_attempts; no new turns, no new jobs
        assert _child(tmp_path, store, "sync") == [None] * 6
    _finish_and_check(store, embedder, jobs)


@pytest.mark.slow
@pytest.mark.parametrize("mode", ["asyncio.run", "unclosed-loop"])
def test_forgotten_aclose_prints_nothing_and_the_next_open_finishes_the_work(tmp_path, embedder, mode):
    store = tmp_path / "store"
    _finish_and_check(store, embedder, _child(tmp_path, store, mode))
