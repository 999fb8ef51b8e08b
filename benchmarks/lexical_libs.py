"""The partition's hand-rolled BM25 against bm25s and tantivy, on the same tokens.

Issue #10 asks to use a well-kept library for lexical postings "where it measures faster than
hand-rolled code". This script measures, per corpus size, on LoCoMo-derived texts
(:class:`mem_adapters.benchscale.data.MemoryGenerator`, the scale bench's corpus) and LoCoMo
questions as queries:

- ``build_s``: index every text from scratch (the partition's figure includes tokenizing, which
  ``tokenize_s`` reports alone; the libraries get the tokens ready-made);
- ``add_one_ms``: make one new text searchable in a built index (what every write needs: the
  partition upserts a row; bm25s has no incremental add and re-indexes; tantivy adds a document,
  commits and reloads its searcher);
- ``query_p50_ms`` / ``query_p95_ms``: score the whole partition for one query, top 10;
- ``bytes``: memory of the postings (the partition's own estimate of postings + tokens; bm25s's
  sparse score matrix; tantivy's index directory on disk);
- ``top10_agreement``: mean overlap of each library's top 10 with the partition's.

All three get the tokens of :func:`mem_adapters.lexical.tokenize` (stemmed, stop words out), so
the scores are the same BM25 (k1 1.2, b 0.75, Lucene idf) and only the machinery differs.
Run (needs ``pip install bm25s tantivy``, both in the ``bench`` extra)::

    python benchmarks/lexical_libs.py --data ../shared/data/locomo/locomo-dev.json \
        --sizes 10000,100000 --out benchmarks/results/lexical-libs.json
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

from mem_adapters.benchscale.data import MemoryGenerator, load_questions, load_turns
from mem_adapters.data.partition import Partition
from mem_adapters.lexical import tokenize

K = 10
META = {"kind": "turn", "status": "active", "user_id": "u", "session_id": "s", "expires_at": 1e18}


def _pct(xs: list[float], q: float) -> float:
    return float(np.percentile(np.asarray(xs), q)) if xs else float("nan")


def _row(
    build_s: float,
    add_s: float,
    lat: list[float],
    nbytes: int,
    *,
    filters_and_weights: bool,
    incremental: bool,
) -> dict[str, Any]:
    """One implementation's figures (the same fields for all three)."""
    return {
        "build_s": build_s,
        "add_one_ms": add_s * 1000,
        "query_p50_ms": _pct(lat, 50),
        "query_p95_ms": _pct(lat, 95),
        "bytes": int(nbytes),
        "filters_and_weights": filters_and_weights,
        "incremental": incremental,
    }


def _timed(fn: Any, *args: Any) -> tuple[float, Any]:
    t0 = time.perf_counter()
    out = fn(*args)
    return time.perf_counter() - t0, out


def bench_partition(
    texts: list[str], queries: list[list[str]], extra: str
) -> tuple[dict[str, Any], list[list[int]]]:
    part = Partition(("t", "u"), 4)

    def build() -> None:
        for i, t in enumerate(texts):
            part.upsert(f"d{i}", t, {**META, "rev": i})

    build_s, _ = _timed(build)
    lat, tops = [], []
    for q in queries:
        t0 = time.perf_counter()
        scores = part.bm25(q)
        top = np.argpartition(-scores, K)[:K] if len(scores) > K else np.arange(len(scores))
        top = top[np.argsort(-scores[top], kind="stable")]
        lat.append((time.perf_counter() - t0) * 1000)
        tops.append([int(r) for r in top if scores[r] > 0])
    add_s, _ = _timed(part.upsert, "new", extra, {**META, "rev": len(texts)})
    posts = (
        8 * part._postings_len + 120 * len(part.postings) + 4 * len(part.tok_flat) + 8 * len(part.tok_start)
    )
    return _row(build_s, add_s, lat, posts, filters_and_weights=True, incremental=True), tops


def bench_bm25s(
    tokens: list[list[str]], queries: list[list[str]], extra: list[str]
) -> tuple[dict[str, Any], list[list[int]]]:
    import bm25s

    def build(toks: list[list[str]]) -> Any:
        r = bm25s.BM25(k1=1.2, b=0.75, method="lucene")
        r.index(bm25s.tokenization.Tokenized(*_vocab_ids(toks)), show_progress=False)
        return r

    build_s, retr = _timed(build, tokens)
    vocab = retr.vocab_dict
    lat, tops = [], []
    for q in queries:
        ids = [vocab[t] for t in q if t in vocab]
        t0 = time.perf_counter()
        if ids:
            scores = retr.get_scores(ids)
            top = np.argpartition(-scores, K)[:K] if len(scores) > K else np.arange(len(scores))
            top = top[np.argsort(-scores[top], kind="stable")]
            got = [int(r) for r in top if scores[r] > 0]
        else:
            got = []
        lat.append((time.perf_counter() - t0) * 1000)
        tops.append(got)
    add_s, _ = _timed(build, [*tokens, extra])  # no incremental add: a write re-indexes
    sc = retr.scores
    nbytes = sum(np.asarray(sc[k]).nbytes for k in ("data", "indices", "indptr"))
    return _row(build_s, add_s, lat, nbytes, filters_and_weights=False, incremental=False), tops


def _vocab_ids(toks: list[list[str]]) -> tuple[list[list[int]], dict[str, int]]:
    vocab: dict[str, int] = {}
    ids = [[vocab.setdefault(t, len(vocab)) for t in doc] for doc in toks]
    return ids, vocab


def bench_tantivy(
    tokens: list[list[str]], queries: list[list[str]], extra: list[str]
) -> tuple[dict[str, Any], list[list[int]]]:
    import tantivy

    folder = tempfile.mkdtemp(prefix="lexbench-tantivy-")
    try:
        sb = tantivy.SchemaBuilder()
        sb.add_integer_field("row", stored=True, fast=True)
        sb.add_text_field("body", stored=False, tokenizer_name="whitespace")
        schema = sb.build()
        index = tantivy.Index(schema, path=folder)
        # Pre-tokenised input: the whitespace tokenizer keeps our stemmed tokens as they are.

        def build() -> Any:
            w = index.writer(heap_size=200_000_000, num_threads=1)
            for i, toks in enumerate(tokens):
                w.add_document(tantivy.Document(row=i, body=" ".join(toks)))
            w.commit()
            w.wait_merging_threads()
            index.reload()
            return index.searcher()

        build_s, searcher = _timed(build)
        lat, tops = [], []
        for q in queries:
            t0 = time.perf_counter()
            if q:
                query = tantivy.Query.boolean_query(
                    [
                        (tantivy.Occur.Should, tantivy.Query.term_query(schema, "body", t))
                        for t in dict.fromkeys(q)
                    ]
                )
                hits = searcher.search(query, K).hits
                got = [int(searcher.doc(addr)["row"][0]) for _, addr in hits]
            else:
                got = []
            lat.append((time.perf_counter() - t0) * 1000)
            tops.append(got)

        def add_one() -> None:
            w = index.writer(heap_size=50_000_000, num_threads=1)
            w.add_document(tantivy.Document(row=len(tokens), body=" ".join(extra)))
            w.commit()
            w.wait_merging_threads()
            index.reload()
            index.searcher()

        add_s, _ = _timed(add_one)
        nbytes = sum(p.stat().st_size for p in Path(folder).rglob("*") if p.is_file())
        return _row(build_s, add_s, lat, nbytes, filters_and_weights=False, incremental=True), tops
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def _agreement(ref: list[list[int]], got: list[list[int]]) -> float:
    vals = [len(set(a) & set(b)) / max(1, len(a)) for a, b in zip(ref, got, strict=True) if a]
    return statistics.fmean(vals) if vals else float("nan")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--data", required=True)
    ap.add_argument("--sizes", default="10000,100000")
    ap.add_argument("--queries", type=int, default=200)
    ap.add_argument("--out", default="benchmarks/results/lexical-libs.json")
    args = ap.parse_args()
    turns = load_turns(args.data)
    questions = [tokenize(q) for q in load_questions(args.data, args.queries)]
    gen = MemoryGenerator(turns, seed=7)
    extra_text = "a new memory about sushi in Lisbon with a hiking friend"
    report: dict[str, Any] = {
        "command": "python benchmarks/lexical_libs.py "
        + " ".join(f"--{k} {v}" for k, v in vars(args).items()),
        "machine": {
            "cpus": os.cpu_count(),
            "python": platform.python_version(),
            "load_before": os.getloadavg(),
        },
        "sizes": {},
    }
    for n in [int(s) for s in args.sizes.split(",")]:
        texts = gen.texts(n)
        tok_s, tokens = _timed(lambda xs: [tokenize(t) for t in xs], texts)
        row: dict[str, Any] = {"tokenize_s": tok_s}
        row["partition"], ref = bench_partition(texts, questions, extra_text)
        row["bm25s"], got = bench_bm25s(tokens, questions, tokenize(extra_text))
        row["bm25s"]["top10_agreement"] = _agreement(ref, got)
        row["tantivy"], got = bench_tantivy(tokens, questions, tokenize(extra_text))
        row["tantivy"]["top10_agreement"] = _agreement(ref, got)
        report["sizes"][str(n)] = row
        print(f"{n:>7} tokenize {tok_s:7.2f} s (inside the partition's build; outside the libraries')")
        for lib, r in row.items():
            if lib == "tokenize_s":
                continue
            print(
                f"{n:>7} {lib:<9} build {r['build_s']:7.2f} s  add-one {r['add_one_ms']:9.2f} ms  "
                f"query p50 {r['query_p50_ms']:7.3f} ms p95 {r['query_p95_ms']:7.3f} ms  "
                f"{r['bytes'] / 1e6:7.1f} MB  agree {r.get('top10_agreement', 1.0):.3f}",
                flush=True,
            )
    report["machine"]["load_after"] = os.getloadavg()
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(report, indent=2) + "\n")


if __name__ == "__main__":
    main()
