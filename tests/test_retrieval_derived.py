"""Facts and episodes in the ranking: they lift their source turns and never displace them."""

from __future__ import annotations

import dataclasses
import json
import random

import numpy as np
import pytest

from mem_adapters.data.partition import Partition
from mem_adapters.engine import MemoryEngine
from mem_adapters.enrichment import Enricher
from mem_adapters.models import MemoryItem
from mem_adapters.retrieval import RetrievalConfig, Retriever, expand_to_turns


def _turn(session: str, seq: int, role: str = "Ana") -> dict:
    return {"kind": "turn", "session_id": session, "seq": seq, "role": role, "indexed": True}


def _fact(*sources: str) -> dict:
    return {"kind": "fact", "session_id": "s1", "source_ids": json.dumps(list(sources)), "indexed": True}


def _index() -> Partition:
    idx = Partition(("t", None), 0)
    # Four sessions of one turn each, so no turn is another's neighbour.
    idx.upsert("a", "We painted the old boat blue.", _turn("s1", 1))
    idx.upsert("b", "The harbour was busy on Sunday.", _turn("s2", 1))
    idx.upsert("c", "Lunch was grilled sardines.", _turn("s3", 1))
    idx.upsert("d", "Rain all week in Porto.", _turn("s4", 1))
    idx.upsert("f", "Ana painted her boat blue.", _fact("a"))
    return idx


def _retriever(**kw) -> Retriever:
    return Retriever(None, config=dataclasses.replace(RetrievalConfig(), **kw))


def _keep_all(row: int) -> bool:
    return True


def _named(idx: Partition, scores: dict[int, float]) -> dict[str, float]:
    return {idx.ids[r]: s for r, s in scores.items()}


def _rows(idx: Partition, scores: dict[str, float]) -> dict[int, float]:
    return {idx.row_of[i]: s for i, s in scores.items()}


def _select(
    r: Retriever, idx: Partition, scores: dict[str, float], k: int, keep=_keep_all
) -> list[MemoryItem]:
    picked = r._select(idx, _rows(idx, scores), k, keep, {})
    return [
        MemoryItem(id=idx.ids[row], text=idx.texts[row], kind=idx.kind_of(row),
                   source_ids=list(idx.sources.get(row, ())), score=s)
        for row, s in picked
    ]  # fmt: skip


def _score(r: Retriever, idx: Partition, ranking: list[str], keep=_keep_all) -> dict[str, float]:
    hits = [(idx.row_of[i], 0.0) for i in ranking]
    return _named(idx, r._score(idx, "boat colour", hits, hits, set(), keep, None, {}, {}))


def test_a_fact_hit_lifts_its_source_turn_above_a_better_ranked_turn():
    idx = _index()
    ranking = ["f", "b", "a", "c"]  # the fact first, its source turn behind turn b
    lifted = _score(_retriever(), idx, ranking)
    assert lifted["a"] > lifted["b"]
    plain = _score(_retriever(derived_share=0.0), idx, ranking)
    assert plain["a"] < plain["b"]


def test_a_fact_does_not_push_turns_down_the_fusion():
    idx = _index()
    r = _retriever(derived_share=0.0)
    with_fact = _score(r, idx, ["f", "b", "a", "c"])
    without = _score(r, idx, ["b", "a", "c"])
    assert {i: with_fact[i] for i in "abc"} == pytest.approx(without)


def test_source_turns_outside_the_filter_get_nothing():
    idx = _index()
    s1 = idx.strings.code["s1"]

    def not_s1_turns(row: int) -> bool:
        return not idx.is_turn(row) or idx.scope["session_id"].data[row] != s1

    only_b = _score(_retriever(), idx, ["f", "b", "a"], keep=not_s1_turns)
    plain = _score(_retriever(derived_share=0.0), idx, ["f", "b", "a"])
    assert only_b["a"] == pytest.approx(plain["a"])


def test_an_anchored_fact_waits_for_its_sources_and_leaves_the_turn_order_alone():
    idx = _index()
    r = _retriever(head_diversity=1.0, session_diversity=1.0)
    scores = {"f": 1.0, "b": 0.9, "c": 0.8, "a": 0.7, "d": 0.6}
    got = [i.id for i in _select(r, idx, scores, 5)]
    assert got == ["b", "c", "a", "f", "d"]  # the fact right after its source turn
    assert expand_to_turns(_select(r, idx, scores, 5)) == ["b", "c", "a", "d"]


def test_a_fact_whose_sources_are_out_of_scope_ranks_freely():
    idx = _index()
    r = _retriever(head_diversity=1.0, session_diversity=1.0)
    scores = {"f": 1.0, "b": 0.9}
    facts_only = [i.id for i in _select(r, idx, scores, 5, keep=lambda row: idx.kind_of(row) == "fact")]
    assert facts_only[0] == "f"


def test_reported_scores_stay_non_increasing_with_anchored_facts():
    idx = _index()
    r = _retriever()
    scores = {"f": 1.0, "b": 0.9, "c": 0.8, "a": 0.7, "d": 0.6}
    got = [i.score for i in _select(r, idx, scores, 5)]
    assert got == sorted(got, reverse=True)


def _reference_select(idx: Partition, scores: dict[str, float], k: int, cfg: RetrievalConfig) -> list[str]:
    """The greedy pick written plainly (max over the whole pool each time), for comparison."""
    pool = sorted(scores.items(), key=lambda x: (-x[1], x[0]))
    per_session: dict = {}
    out: list[str] = []

    def session(i: str) -> int:
        return int(idx.session.data[idx.row_of[i]])

    while pool and len(out) < k:
        div = cfg.head_diversity if len(out) < cfg.head_size else cfg.session_diversity
        at = max(range(len(pool)), key=lambda n: pool[n][1] * div ** per_session.get(session(pool[n][0]), 0))
        i, _ = pool.pop(at)
        per_session[session(i)] = per_session.get(session(i), 0) + 1
        out.append(i)
    return out


@pytest.mark.parametrize("seed", range(20))
def test_early_stopping_greedy_pick_matches_the_plain_greedy_pick(seed):
    rng = random.Random(seed)
    idx = Partition(("t", None), 0)
    words = ["boat", "harbour", "sardine", "rain", "porto", "blue", "paint", "sunday", "lunch", "week"]
    scores = {}
    for n in range(40):
        doc_id = f"t{n}"
        # distinct token sets keep near-duplicate removal out of the comparison
        idx.upsert(doc_id, f"{doc_id} " + " ".join(rng.sample(words, 3)), _turn(f"s{rng.randrange(6)}", n))
        scores[doc_id] = round(rng.random(), 3)
    cfg = dataclasses.replace(RetrievalConfig(), dedup_jaccard=1.1)
    r = Retriever(None, config=cfg)
    got = [i.id for i in _select(r, idx, scores, 15)]
    assert got == _reference_select(idx, scores, 15, cfg)


@pytest.fixture
def eng(tmp_path, embedder):
    e = MemoryEngine(tmp_path / "enr", embedder=embedder, enricher=Enricher(backoff=0.01))
    yield e
    e.close()


def test_enriched_search_keeps_facts_behind_their_turns_and_in_the_context(eng):
    turns = [
        {"role": "Ana", "text": "I moved to Berlin last year.", "timestamp": "2024-03-01T10:00:00Z"},
        {"role": "Ben", "text": "Nice, I still live in Lisbon.", "timestamp": "2024-03-01T10:01:00Z"},
        {
            "role": "Ana",
            "text": "I work as a nurse at the city hospital.",
            "timestamp": "2024-03-01T10:02:00Z",
        },
    ]
    r = eng.remember(turns, session_id="s1", user_id="u1")
    eng.wait(r.passive_job_id, timeout=60)
    facts = eng.list(kinds=["fact"], user_id="u1").results
    assert facts, "the default enricher should derive facts from these turns"
    flat = eng.search("where does Ana live", user_id="u1", k=10).results
    seen: set[str] = set()
    for item in flat:
        if item.kind == "turn":
            seen.add(item.id)
        elif item.kind == "fact":
            assert set(item.source_ids) <= seen, "a fact must come after its source turns"
    ctx = eng.search("where does Ana live", user_id="u1", k=10, mode="context", char_budget=2000)
    assert ctx.facts and all(f.kind == "fact" for f in ctx.facts)
    assert all(f.text in ctx.context for f in ctx.facts)
    # Facts alone are still searchable on their own terms.
    only = eng.search("where does Ana live", user_id="u1", kinds=["fact"], k=3).results
    assert only and all(i.kind == "fact" for i in only)


def test_exact_dense_equals_brute_force_with_ties_and_masks():
    # Vectors drawn from a few directions make many exact ties; the result must be the n best
    # rows in scope by similarity, ties by id, whatever the row order.
    rng = random.Random(3)
    dirs = [[1.0, 0.0, 0.0], [0.0, 1.0, 0.0], [0.6, 0.8, 0.0], [0.0, 0.6, 0.8]]
    ids = [f"r{i:03d}" for i in range(120)]
    rng.shuffle(ids)
    idx = Partition(("t", None), 3)
    for i in ids:
        idx.upsert(i, i, _turn("s1", int(i[1:])), rng.choice(dirs))
    idx.remove(ids[5])  # a dead row is never returned
    q = np.asarray([0.6, 0.8, 0.0], dtype=np.float32)
    for trial in range(30):
        # Narrow scopes (gathered rows) and wide ones (every row scored in place) alike.
        share = (0.05, 0.5, 0.95)[trial % 3]
        mask = np.asarray([rng.random() < share for _ in range(idx.n - 3)], dtype=np.bool_)  # short: rows
        n = rng.choice([1, 5, 10, 40, 200])  # appended after the mask are out of scope
        want = sorted(
            ((r, 1.0 - float(idx.vectors[r] @ q)) for r in range(len(mask)) if mask[r] and idx.alive.data[r]),
            key=lambda x: (round(x[1], 6), idx.ids[x[0]]),
        )[:n]
        got = Retriever._exact_dense(idx, q, mask, n)
        assert [idx.ids[r] for r, _ in got] == [idx.ids[r] for r, _ in want], trial
        # Candidates from Chroma's index (every row here, repeated, the dead one and rows past
        # the mask among them) are held to the same scope: the same answer.
        rows = np.asarray([*range(idx.n), *range(idx.n)], dtype=np.int64)
        got = Retriever._exact_dense(idx, q, mask, n, rows)
        assert [idx.ids[r] for r, _ in got] == [idx.ids[r] for r, _ in want], trial


def test_neighbours_after_interleaved_writes_equal_a_fresh_partition():
    # Writes re-sort only their own session; after any mix of writes, updates and deletes
    # (neighbours asked in between) every turn's neighbours are those of a partition built
    # from the live records at once.
    rng = random.Random(11)
    idx = Partition(("t", None), 0)
    live: dict[str, tuple[str, int]] = {}
    for step in range(400):
        doc = f"d{rng.randrange(120):03d}"
        if doc in live and rng.random() < 0.3:
            idx.remove(doc)
            del live[doc]
        else:
            live[doc] = (f"s{rng.randrange(6)}", rng.randrange(1000))
            idx.upsert(doc, doc, _turn(*live[doc]))
        if step % 7 == 0 and live:
            idx.neighbours(idx.row_of[rng.choice(sorted(live))])
    fresh = Partition(("t", None), 0)
    for doc in sorted(live):
        fresh.upsert(doc, doc, _turn(*live[doc]))

    def around(p: Partition, doc: str) -> list[str]:
        return sorted(p.ids[r] for r in p.neighbours(p.row_of[doc]))

    assert live and all(around(idx, d) == around(fresh, d) for d in live)
