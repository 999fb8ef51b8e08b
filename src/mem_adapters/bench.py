"""The LoCoMo retrieval benchmark behind ``mem-adapters bench locomo --data FILE``.

Ingests each LoCoMo conversation through the public ``remember`` API (one session per LoCoMo
session, the session's date as the turns' timestamps, the speaker as role, ``dia_id`` and the
image caption in each turn's metadata), then asks every question of categories 1-4 through
the public ``search`` API and reports evidence recall@k, any-hit@k and session recall@k per
category and overall, ingest throughput and query latency. Plain reference retrievers
(``--baseline dense|bm25|hybrid``) run over the same stored data in the same run.

The JSON report's schema is documented in ``benchmarks/README.md`` (``schema`` field
``mem-adapters/bench-locomo/v1``). The command's options live in
:mod:`mem_adapters.cli.bench_cmds`; ``run_locomo(progress=...)`` reports its progress.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import platform
import re
import statistics
import tempfile
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

logger = logging.getLogger(__name__)

SCHEMA = "mem-adapters/bench-locomo/v1"
CATEGORIES = {1: "multi-hop", 2: "temporal", 3: "open-domain", 4: "single-hop"}
BASELINES = ("dense", "bm25", "hybrid")
SYSTEM = "mem-adapters"
Progress = Callable[[str, int, int], None]
"""``progress(stage, done, total)``: ``stage`` is ``"ingest"`` (turns) or ``"search"`` (questions)."""
_DIA = re.compile(r"D:?(\d+):(\d+)")


# ---------------------------------------------------------------------- data


@dataclass
class Question:
    """One scored LoCoMo question with its normalised evidence."""

    text: str
    category: int
    evidence: list[str]


@dataclass
class Conversation:
    """One LoCoMo conversation, ready to ingest."""

    sample_id: str
    speakers: list[str]
    sessions: list[tuple[int, datetime, list[dict[str, Any]]]]
    questions: list[Question]


@dataclass
class EvidenceStats:
    """What evidence normalisation did over the whole file."""

    raw: int = 0
    kept: int = 0
    repaired: int = 0
    dropped: int = 0
    dropped_examples: list[str] = field(default_factory=list)
    questions_without_evidence: int = 0


def parse_locomo_date(text: str) -> datetime:
    """Parse LoCoMo's ``"1:56 pm on 8 May, 2023"`` into an aware UTC datetime.

    Raises:
        ValueError: the text is not in that format.

    Example:
        >>> parse_locomo_date("1:56 pm on 8 May, 2023").isoformat()
        '2023-05-08T13:56:00+00:00'
    """
    return datetime.strptime(text.strip(), "%I:%M %p on %d %B, %Y").replace(tzinfo=timezone.utc)


def normalise_evidence(raw: list[Any], known: set[str]) -> tuple[list[str], list[str], int]:
    """Normalise LoCoMo evidence strings into ``D<session>:<turn>`` ids.

    Handles ``"D8:6; D9:17"`` and ``"D9:1 D4:4"`` (several ids in one string), ``"D:11:26"``
    (stray colon) and ``"D30:05"`` (leading zero). Ids absent from the conversation, and
    strings with no id at all (``"D"``), are dropped.

    Args:
        raw: The question's ``evidence`` list.
        known: Every ``dia_id`` of the conversation.

    Returns:
        ``(ids, dropped, repaired)``: the distinct valid ids in order, the raw pieces dropped,
        and how many ids needed repair.

    Example:
        >>> normalise_evidence(["D8:6; D9:17", "D:1:2", "D30:05", "D"], {"D8:6", "D9:17", "D1:2", "D30:5"})
        (['D8:6', 'D9:17', 'D1:2', 'D30:5'], ['D'], 2)
    """
    out: dict[str, None] = {}
    dropped: list[str] = []
    repaired = 0
    for item in raw:
        text = str(item)
        found = list(_DIA.finditer(text))
        if not found:
            dropped.append(text)
            continue
        for m in found:
            dia = f"D{int(m.group(1))}:{int(m.group(2))}"
            if dia != m.group(0) or len(found) > 1:
                repaired += 1
            if dia in known:
                out.setdefault(dia, None)
            else:
                dropped.append(m.group(0))
    return list(out), dropped, repaired


def turn_text(turn: dict[str, Any]) -> str:
    """A LoCoMo turn's text, with its shared image's caption kept (it often holds the answer)."""
    text = str(turn.get("text") or "").strip()
    caption = turn.get("blip_caption")
    if caption:
        text = f"{text} [shares {caption}]" if text else f"[shares {caption}]"
    return text


def load_locomo(path: str | os.PathLike[str]) -> tuple[list[Conversation], EvidenceStats]:
    """Read a LoCoMo JSON file into conversations and scored questions (categories 1-4)."""
    data = json.loads(Path(path).read_text(encoding="utf-8"))
    stats = EvidenceStats()
    convs: list[Conversation] = []
    for sample in data:
        c = sample["conversation"]
        sessions = []
        known: set[str] = set()
        for key in c:
            m = re.fullmatch(r"session_(\d+)", key)
            if m and isinstance(c[key], list) and c[key]:
                n = int(m.group(1))
                sessions.append((n, parse_locomo_date(c[f"session_{n}_date_time"]), c[key]))
                known.update(t["dia_id"] for t in c[key])
        sessions.sort(key=lambda s: s[0])
        questions = []
        for qa in sample["qa"]:
            if qa.get("category") not in CATEGORIES:
                continue
            evidence, dropped, repaired = normalise_evidence(qa.get("evidence") or [], known)
            stats.raw += len(qa.get("evidence") or [])
            stats.kept += len(evidence)
            stats.repaired += repaired
            stats.dropped += len(dropped)
            stats.dropped_examples.extend(f"{sample['sample_id']}: {d!r}" for d in dropped)
            if not evidence:
                stats.questions_without_evidence += 1
                continue
            questions.append(Question(qa["question"], int(qa["category"]), evidence))
        convs.append(Conversation(sample["sample_id"], [c["speaker_a"], c["speaker_b"]], sessions, questions))
    return convs, stats


# ---------------------------------------------------------------------- metrics


def score_ranking(turn_dias: list[str], evidence: list[str], ks: list[int]) -> dict[str, dict[int, float]]:
    """Evidence recall@k, any-hit@k and session recall@k of one ranked list of turn dia_ids."""
    ev = set(evidence)
    ev_sessions = {e.split(":")[0] for e in evidence}
    out: dict[str, dict[int, float]] = {"recall": {}, "any_hit": {}, "session_recall": {}}
    for k in ks:
        top = turn_dias[:k]
        hits = ev.intersection(top)
        out["recall"][k] = len(hits) / len(ev)
        out["any_hit"][k] = 1.0 if hits else 0.0
        out["session_recall"][k] = len(ev_sessions.intersection(d.split(":")[0] for d in top)) / len(
            ev_sessions
        )
    return out


def _percentile(values: list[float], q: float) -> float:
    if not values:
        return 0.0
    ordered = sorted(values)
    pos = (len(ordered) - 1) * q
    lo = int(pos)
    hi = min(lo + 1, len(ordered) - 1)
    return ordered[lo] + (ordered[hi] - ordered[lo]) * (pos - lo)


class _Tally:
    """Sums of per-question metrics, by category."""

    def __init__(self, ks: list[int]) -> None:
        self.ks = ks
        self.sums: dict[str, dict[str, dict[int, float]]] = {}
        self.counts: dict[str, int] = {}
        self.latencies: list[float] = []
        self.stages: dict[str, list[float]] = {}

    def add(self, category: int, metrics: dict[str, dict[int, float]]) -> None:
        for key in ("overall", str(category)):
            self.counts[key] = self.counts.get(key, 0) + 1
            bucket = self.sums.setdefault(key, {m: dict.fromkeys(self.ks, 0.0) for m in metrics})
            for m, per_k in metrics.items():
                for k, v in per_k.items():
                    bucket[m][k] += v

    def _block(self, key: str) -> dict[str, Any]:
        n = self.counts.get(key, 0)
        sums = self.sums.get(key, {})
        return {
            "n": n,
            **{
                f"{m}@k": {str(k): round(v / n, 4) if n else None for k, v in per_k.items()}
                for m, per_k in sums.items()
            },
        }

    def report(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "overall": self._block("overall"),
            "by_category": {str(c): {"name": name, **self._block(str(c))} for c, name in CATEGORIES.items()},
        }
        if self.latencies:
            out["latency_ms"] = {
                "p50": round(_percentile(self.latencies, 0.5), 2),
                "p95": round(_percentile(self.latencies, 0.95), 2),
                "mean": round(statistics.fmean(self.latencies), 2),
            }
        if self.stages:
            out["stage_ms_mean"] = {k: round(statistics.fmean(v), 2) for k, v in self.stages.items()}
        return out


# ---------------------------------------------------------------------- run


def _rrf(lists: list[list[str]], k: float = 60.0) -> list[str]:
    scores: dict[str, float] = {}
    for ranking in lists:
        for rank, i in enumerate(ranking):
            scores[i] = scores.get(i, 0.0) + 1.0 / (k + rank + 1)
    return [i for i, _ in sorted(scores.items(), key=lambda x: (-x[1], x[0]))]


async def _ingest(
    engine: Any, conv: Conversation, enrich: bool, on_session: Callable[[int], None] | None = None
) -> tuple[dict[str, str], int]:
    """Write a conversation through ``remember``; returns ``{turn id: dia_id}`` and turn count.

    ``on_session(n)`` is called after each session with its number of turns.
    """
    tenant = f"locomo-{conv.sample_id}"
    id_to_dia: dict[str, str] = {}
    n = 0
    for number, date, turns in conv.sessions:
        batch = []
        for t in turns:
            meta: dict[str, Any] = {"dia_id": t["dia_id"], "locomo_session": number}
            if t.get("blip_caption"):
                meta["image_caption"] = t["blip_caption"]
            batch.append({"id": f"{conv.sample_id}:{t['dia_id']}", "role": t["speaker"],
                          "text": turn_text(t), "timestamp": date, "metadata": meta})  # fmt: skip
        result = await engine.remember(batch, session_id=f"{conv.sample_id}-s{number}",
                                       user_id=conv.sample_id, tenant_id=tenant)  # fmt: skip
        for tid, t in zip(result.active_ids, turns, strict=True):
            id_to_dia[tid] = t["dia_id"]
        n += len(batch)
        if on_session is not None:
            on_session(len(batch))
    return id_to_dia, n


async def run_locomo(
    data: str | os.PathLike[str],
    *,
    ks: list[int],
    baselines: list[str] | None = None,
    enrich: bool = False,
    store: str | os.PathLike[str] | None = None,
    limit: int | None = None,
    engine_factory: Any = None,
    progress: Progress | None = None,
) -> dict[str, Any]:
    """Run the LoCoMo retrieval benchmark and return the report (see the module docstring).

    Args:
        data: LoCoMo JSON file.
        ks: Cut-offs (turns) to report.
        baselines: Reference retrievers to run alongside (``dense``, ``bm25``, ``hybrid``).
        enrich: Build the engine with the default enricher and wait for it after ingest.
        store: Folder for the Chroma store (default: a temporary folder, deleted after).
        limit: Only the first ``limit`` conversations.
        engine_factory: ``path -> AsyncMemoryEngine`` (tests inject a shared embedder).
        progress: Told of each ingested session and each asked question (see :data:`Progress`).
    """
    from .async_engine import AsyncMemoryEngine
    from .lexical import BM25Index, plain_tokenize
    from .retrieval import expand_to_turns

    ks = sorted(set(ks))
    kmax = max(ks)
    baselines = list(dict.fromkeys(baselines or []))
    convs, ev_stats = load_locomo(data)
    if limit is not None:
        convs = convs[:limit]
    tmp = None
    if store is None:
        tmp = tempfile.TemporaryDirectory(prefix="mem-adapters-bench-")
        store = tmp.name
    if engine_factory is not None:
        engine = engine_factory(store)
    else:
        engine = AsyncMemoryEngine(store, enricher="default" if enrich else None)
    tallies = {SYSTEM: _Tally(ks), **{b: _Tally(ks) for b in baselines}}
    ingest_turns, ingest_s, enrich_s = 0, 0.0, 0.0
    total_turns = sum(len(turns) for c in convs for _, _, turns in c.sessions)
    total_questions = sum(len(c.questions) for c in convs)
    done = {"ingest": 0, "search": 0}

    def tick(stage: str, n: int) -> None:
        done[stage] += n
        if progress is not None:
            progress(stage, done[stage], total_turns if stage == "ingest" else total_questions)

    try:
        ingested = []
        for conv in convs:
            t0 = time.perf_counter()
            id_to_dia, n = await _ingest(engine, conv, enrich, lambda k: tick("ingest", k))
            ingest_s += time.perf_counter() - t0
            ingest_turns += n
            ingested.append((conv, id_to_dia))
            logger.info("ingested %s: %d turns", conv.sample_id, n)
        if enrich:
            t0 = time.perf_counter()
            await engine.wait_all()
            enrich_s = time.perf_counter() - t0
        for conv, id_to_dia in ingested:
            tenant = f"locomo-{conv.sample_id}"
            scope = {"tenant_id": tenant, "user_id": conv.sample_id}
            bm25 = None
            if {"bm25", "hybrid"} & set(baselines):
                bm25 = BM25Index(tokenizer=plain_tokenize)
                # Keyed by the stored ids, as the engine's and Chroma's results are (a caller's
                # turn id is stored under an id scoped to its user and session).
                stored = {dia: tid for tid, dia in id_to_dia.items()}
                for _, _, turns in conv.sessions:
                    for t in turns:
                        bm25.add(stored[t["dia_id"]], turn_text(t))
            mem = (await engine.collections(tenant))[0]
            for q in conv.questions:
                t0 = time.perf_counter()
                result = await engine.search(q.text, k=kmax, **scope)
                tallies[SYSTEM].latencies.append((time.perf_counter() - t0) * 1000)
                for stage, ms in result.stage_timings.items():
                    tallies[SYSTEM].stages.setdefault(stage, []).append(ms)
                ranked = [id_to_dia[i] for i in expand_to_turns(result.results) if i in id_to_dia]
                tallies[SYSTEM].add(q.category, score_ranking(ranked[:kmax], q.evidence, ks))
                tick("search", 1)
                if not baselines:
                    continue
                dense_ids: list[str] = []
                if {"dense", "hybrid"} & set(baselines):
                    t0 = time.perf_counter()
                    vector = await engine.embed_query(q.text)
                    got = await mem.query(query_embeddings=[vector], n_results=max(kmax, 100),
                                          where={"kind": "turn"}, include=[])  # fmt: skip
                    dense_ids = list(got["ids"][0])
                    dense_ms = (time.perf_counter() - t0) * 1000
                lex_ids: list[str] = []
                if bm25 is not None:
                    t0 = time.perf_counter()
                    lex_ids = [i for i, _ in bm25.search(plain_tokenize(q.text), max(kmax, 100))]
                    lex_ms = (time.perf_counter() - t0) * 1000
                for name in baselines:
                    if name == "dense":
                        ids, ms = dense_ids, dense_ms
                    elif name == "bm25":
                        ids, ms = lex_ids, lex_ms
                    else:
                        t0 = time.perf_counter()
                        ids = _rrf([dense_ids, lex_ids])
                        ms = dense_ms + lex_ms + (time.perf_counter() - t0) * 1000
                    ranked = [id_to_dia[i] for i in ids if i in id_to_dia][:kmax]
                    tallies[name].latencies.append(ms)
                    tallies[name].add(q.category, score_ranking(ranked, q.evidence, ks))
    finally:
        await engine.aclose()
        if tmp is not None:
            tmp.cleanup()
    return _report(data, ks, baselines, enrich, engine, convs, ev_stats, ingest_turns, ingest_s,
                   enrich_s, tallies)  # fmt: skip


def _report(
    data: Any, ks: list[int], baselines: list[str], enrich: bool, engine: Any,
    convs: list[Conversation], ev: EvidenceStats, turns: int, ingest_s: float, enrich_s: float,
    tallies: dict[str, _Tally],
) -> dict[str, Any]:  # fmt: skip
    import chromadb

    from . import __version__

    raw = Path(data).read_bytes()
    return {
        "schema": SCHEMA,
        "created_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "dataset": {
            "path": str(data),
            "sha256": hashlib.sha256(raw).hexdigest(),
            "conversations": [c.sample_id for c in convs],
            "turns": turns,
            "questions": sum(len(c.questions) for c in convs),
            "evidence": {
                "raw_strings": ev.raw,
                "kept_ids": ev.kept,
                "repaired_ids": ev.repaired,
                "dropped": ev.dropped,
                "dropped_examples": ev.dropped_examples[:20],
                "questions_without_evidence": ev.questions_without_evidence,
            },
        },
        "config": {
            "ks": ks,
            "baselines": baselines,
            "enrich": enrich,
            "embedder": engine.embedder.identity,
            "retriever": asdict(engine.retriever.config) if hasattr(engine.retriever, "config") else {},
        },
        "environment": {
            "python": platform.python_version(),
            "platform": platform.platform(),
            "cpus": os.cpu_count(),
            "chromadb": chromadb.__version__,
            "mem_adapters": __version__,
        },
        "ingest": {
            "turns": turns,
            "seconds": round(ingest_s, 2),
            "turns_per_s": round(turns / ingest_s, 1) if ingest_s else None,
            "enrich_seconds": round(enrich_s, 2),
        },
        "systems": {name: tally.report() for name, tally in tallies.items()},
    }


# ---------------------------------------------------------------------- output


def format_table(report: dict[str, Any]) -> str:
    """A plain-text summary: one row per system and category, recall@k columns."""
    ks = [str(k) for k in report["config"]["ks"]]
    head = ["system", "category", "n"] + [f"R@{k}" for k in ks] + [f"S@{k}" for k in ks] + ["p50ms", "p95ms"]
    rows = [head]
    for name, sysrep in report["systems"].items():
        blocks = [("overall", sysrep["overall"])] + [
            (f"{c} {b['name']}", b) for c, b in sysrep["by_category"].items()
        ]
        lat = sysrep.get("latency_ms", {})
        for label, b in blocks:
            rows.append(
                [name, label, str(b["n"])]
                + [f"{b['recall@k'][k]:.3f}" if b.get("recall@k", {}).get(k) is not None else "-" for k in ks]
                + [
                    f"{b['session_recall@k'][k]:.3f}"
                    if b.get("session_recall@k", {}).get(k) is not None
                    else "-"
                    for k in ks
                ]
                + (
                    [f"{lat.get('p50', 0):.1f}", f"{lat.get('p95', 0):.1f}"]
                    if label == "overall"
                    else ["", ""]
                )
            )
    widths = [max(len(r[i]) for r in rows) for i in range(len(head))]
    return "\n".join("  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)) for r in rows)


def plot_recall(report: dict[str, Any], path: str | os.PathLike[str]) -> None:
    """Save a recall@k plot (one line per system) as PNG; needs matplotlib (``bench`` extra)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(10, 4))
    for name, sysrep in report["systems"].items():
        ks = [int(k) for k in sysrep["overall"]["recall@k"]]
        ax1.plot(ks, list(sysrep["overall"]["recall@k"].values()), marker="o", label=name)
        ax2.plot(ks, list(sysrep["overall"]["session_recall@k"].values()), marker="o", label=name)
    for ax, title in ((ax1, "evidence recall@k (turns)"), (ax2, "session recall@k")):
        ax.set_xlabel("k")
        ax.set_ylim(0, 1)
        ax.grid(alpha=0.3)
        ax.set_title(title)
        ax.legend()
    n = report["dataset"]["questions"]
    fig.suptitle(f"LoCoMo ({len(report['dataset']['conversations'])} conversations, {n} questions)")
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
