"""What overwriting freed memory (glibc ``M_PERTURB``, see ``mem_adapters.data.heap``) costs.

    MEM_ADAPTERS_MODEL_DIR=... .venv/bin/python benchmarks/freed_memory.py --runs 4 \
        --out benchmarks/results/freed-memory.json

One workload, run as a fresh process each time: an embedded store, ``--turns`` LoCoMo turns
written in batches of 40 with the default ONNX embedder, then ``--searches`` user-scoped
searches. Runs alternate between ``MALLOC_PERTURB_=165`` (the guard: what the engine turns on
with ``mallopt``) and ``MALLOC_PERTURB_=0`` with ``MEM_ADAPTERS_SCRUB_FREED_MEMORY=0`` (no
guard), so both see the same machine drift. Reported: each run's CPU seconds (user + sys of the
child), wall seconds and peak RSS, the medians, and the guard/no-guard ratio of the medians.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

WORKLOAD = """
import json, sys, tempfile
from mem_adapters import MemoryEngine
data, n_turns, n_search = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
conv = json.load(open(data))[0]["conversation"]
turns = [t for k, v in conv.items() if k.startswith("session_") and isinstance(v, list) for t in v]
with tempfile.TemporaryDirectory() as d:
    eng = MemoryEngine(d)
    batch = [{"role": t["speaker"], "text": t["text"]} for t in turns[:n_turns]]
    for i in range(0, len(batch), 40):
        eng.remember(batch[i : i + 40], session_id=f"s{i}", user_id="u")
    for t in turns[:n_search]:
        eng.search(t["text"][:60], user_id="u")
    eng.close()
"""


def _run(env: dict[str, str], args: argparse.Namespace) -> dict[str, float]:
    t = time.monotonic()
    proc = subprocess.Popen(
        [sys.executable, "-c", WORKLOAD, args.data, str(args.turns), str(args.searches)], env=env
    )
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.monotonic() - t
    if status != 0:
        raise SystemExit(f"workload failed ({status})")
    return {"cpu_s": usage.ru_utime + usage.ru_stime, "wall_s": wall, "peak_rss_mb": usage.ru_maxrss / 1024}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", default=str(Path(__file__).parents[2] / "shared/data/locomo/locomo-dev.json"))
    ap.add_argument("--turns", type=int, default=200)
    ap.add_argument("--searches", type=int, default=80)
    ap.add_argument("--runs", type=int, default=4)
    ap.add_argument("--out", default=None)
    args = ap.parse_args()
    base = {
        k: v for k, v in os.environ.items() if k not in ("MALLOC_PERTURB_", "MEM_ADAPTERS_SCRUB_FREED_MEMORY")
    }
    arms = {
        "guard": {**base, "MALLOC_PERTURB_": "165"},
        "no_guard": {**base, "MALLOC_PERTURB_": "0", "MEM_ADAPTERS_SCRUB_FREED_MEMORY": "0"},
    }
    _run(arms["no_guard"], args)  # warm-up: file caches, the model's pages
    runs: dict[str, list[dict[str, float]]] = {k: [] for k in arms}
    for _ in range(args.runs):
        for name, env in arms.items():
            runs[name].append(_run(env, args))
    med = {k: {f: statistics.median(r[f] for r in v) for f in v[0]} for k, v in runs.items()}
    report = {
        "turns": args.turns,
        "searches": args.searches,
        "load_avg": os.getloadavg(),
        "runs": runs,
        "median": med,
        "ratio_guard_over_no_guard": {f: med["guard"][f] / med["no_guard"][f] for f in med["guard"]},
    }
    print(json.dumps(report["median"], indent=1))
    print("guard / no guard:", json.dumps(report["ratio_guard_over_no_guard"]))
    if args.out:
        Path(args.out).write_text(json.dumps(report, indent=1) + "\n")


if __name__ == "__main__":
    main()
