"""Order: monotonic seq per session, exact replay, concurrent writers lose nothing."""

from __future__ import annotations

import asyncio
import itertools
import threading
from datetime import datetime, timedelta, timezone

from mem_adapters import MemoryEngine

T0 = datetime(2025, 5, 1, tzinfo=timezone.utc)


def test_transcript_replays_exactly(engine):
    turns = [
        {"role": role, "text": text, "timestamp": (T0 + timedelta(seconds=i)).isoformat(),
         "metadata": {"i": i}}
        for i, (role, text) in enumerate([
            ("user", "Hi!"), ("assistant", "Hello, how can I help?"), ("user", "Hi!"),
            ("tool", '{"temp": 18}'), ("assistant", "It is 18°C."), ("Caroline", "  spaced  text  "),
        ])
    ]  # fmt: skip
    # Same text twice ("Hi!") at different timestamps: both are kept.
    engine.remember(turns[:2], session_id="s")
    engine.remember(turns[2:5], session_id="s")
    engine.remember(turns[5:], session_id="s")
    msgs = engine.get_messages("s")
    assert [(m.role, m.text, m.timestamp.isoformat(), m.metadata) for m in msgs] == [
        (t["role"], t["text"], t["timestamp"], t["metadata"]) for t in turns
    ]
    seqs = [m.seq for m in msgs]
    assert all(a < b for a, b in itertools.pairwise(seqs))


def test_order_survives_reopen(tmp_path, embedder):
    with MemoryEngine(tmp_path / "db", embedder=embedder) as eng:
        ids = []
        for i in range(5):
            ids += eng.remember([{"role": "user", "text": f"m{i}", "timestamp": T0.isoformat()}],
                                session_id="s").active_ids  # fmt: skip
    with MemoryEngine(tmp_path / "db", embedder=embedder) as eng:
        assert [m.id for m in eng.get_messages("s")] == ids
        more = eng.remember([{"role": "user", "text": "after reopen", "timestamp": T0.isoformat()}],
                            session_id="s")  # fmt: skip
        assert [m.id for m in eng.get_messages("s")] == [*ids, *more.active_ids]


def test_resent_turns_keep_their_position(engine):
    a = engine.remember([{"role": "user", "text": f"a{i}", "timestamp": T0.isoformat()} for i in range(3)],
                        session_id="s").active_ids  # fmt: skip
    b = engine.remember(
        [{"role": "user", "text": "b", "timestamp": T0.isoformat()}], session_id="s"
    ).active_ids
    # Re-send the first batch (plus one new turn): old turns stay put, the new one goes last.
    again = engine.remember(
        [{"role": "user", "text": f"a{i}", "timestamp": T0.isoformat()} for i in range(3)]
        + [{"role": "user", "text": "c", "timestamp": T0.isoformat()}],
        session_id="s",
    ).active_ids
    assert again[:3] == a
    assert [m.id for m in engine.get_messages("s")] == [*a, *b, again[3]]


def _check_concurrent_result(msgs, writers: int, per_writer: int) -> None:
    texts = [m.text for m in msgs]
    assert len(texts) == writers * per_writer
    assert len(set(texts)) == len(texts)
    # Each writer's own writes appear in the order it made them.
    for w in range(writers):
        mine = [t for t in texts if t.startswith(f"w{w}-")]
        assert mine == [f"w{w}-{i}" for i in range(per_writer)]
    seqs = [m.seq for m in msgs]
    assert all(a < b for a, b in itertools.pairwise(seqs))


def test_concurrent_threads_same_session(engine):
    writers, per_writer = 6, 8
    errors: list[BaseException] = []
    barrier = threading.Barrier(writers)

    def work(w: int) -> None:
        try:
            barrier.wait()
            for i in range(per_writer):
                engine.remember([{"role": "user", "text": f"w{w}-{i}", "timestamp": T0.isoformat()}],
                                session_id="shared")  # fmt: skip
        except BaseException as e:  # pragma: no cover - surfaced below
            errors.append(e)

    threads = [threading.Thread(target=work, args=(w,)) for w in range(writers)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    _check_concurrent_result(engine.get_messages("shared"), writers, per_writer)
    assert engine.count_turns("shared") == writers * per_writer


def test_concurrent_threads_many_sessions_and_tenants(engine):
    errors: list[BaseException] = []

    def work(w: int) -> None:
        try:
            for i in range(5):
                engine.remember([{"role": "user", "text": f"w{w}-{i}", "timestamp": T0.isoformat()}],
                                session_id=f"s{w % 2}", tenant_id=f"t{w % 3}")  # fmt: skip
        except BaseException as e:  # pragma: no cover
            errors.append(e)

    threads = [threading.Thread(target=work, args=(w,)) for w in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    total = 0
    for t in range(3):
        for s in range(2):
            msgs = engine.get_messages(f"s{s}", tenant_id=f"t{t}")
            writers = [w for w in range(6) if w % 2 == s and w % 3 == t]
            assert sorted({m.text.split("-")[0] for m in msgs}) == sorted(f"w{w}" for w in writers)
            total += len(msgs)
    assert total == 30


async def test_concurrent_async_tasks_same_session(aengine):
    writers, per_writer = 6, 8

    async def work(w: int) -> None:
        for i in range(per_writer):
            await aengine.remember([{"role": "user", "text": f"w{w}-{i}", "timestamp": T0.isoformat()}],
                                   session_id="shared")  # fmt: skip

    await asyncio.gather(*(work(w) for w in range(writers)))
    _check_concurrent_result(await aengine.get_messages("shared"), writers, per_writer)


async def test_concurrent_async_batches_are_contiguous(aengine):
    """A batch is written as a unit: concurrent batches never interleave inside the transcript."""

    async def write(b: int) -> list[str]:
        turns = [{"role": "user", "text": f"b{b}-{i}", "timestamp": T0.isoformat()} for i in range(4)]
        return (await aengine.remember(turns, session_id="s")).active_ids

    batches = await asyncio.gather(*(write(b) for b in range(5)))
    ids = [m.id for m in await aengine.get_messages("s")]
    assert len(ids) == 20
    for batch in batches:
        start = ids.index(batch[0])
        assert ids[start : start + 4] == batch


async def test_concurrent_identical_resends_do_not_duplicate(aengine):
    turns = [{"role": "user", "text": f"same {i}", "timestamp": T0.isoformat()} for i in range(3)]
    results = await asyncio.gather(*(aengine.remember(turns, session_id="s") for _ in range(6)))
    assert all(r.active_ids == results[0].active_ids for r in results)
    assert sum(r.created for r in results) == 3
    assert [m.id for m in await aengine.get_messages("s")] == results[0].active_ids
