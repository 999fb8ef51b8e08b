"""What the freed-memory guard of an erase costs (``mem_adapters.data.heap``), next to an alternative.

    MEM_ADAPTERS_MODEL_DIR=... .venv/bin/python benchmarks/freed_memory.py --runs 3 \
        --out benchmarks/results/freed-memory.json

Three allocator settings, each run as fresh processes, alternating so all see the same drift:

- ``guard``: the engine's default (``mallopt(M_PERTURB, 0xA5)``: every freed block
  overwritten, every new block filled);
- ``no_guard``: ``MEM_ADAPTERS_SCRUB_FREED_MEMORY=0`` (glibc as it comes);
- ``mmap_threshold``: no guard but ``MALLOC_MMAP_THRESHOLD_=131072`` (large blocks as fresh
  pages), the cheaper switch that was tried and does not hold (see ``mem_adapters.data.heap``).

Two workloads: ``work``, ``--turns`` LoCoMo turns written in batches of 40 with the ONNX
embedder and ``--searches`` user-scoped searches (CPU seconds and wall seconds of the child);
``rss``, a store of ``--records`` records (a fast hash embedder, built once) opened and
searched five times, user-scoped (the process's RSS then). Medians of ``--runs``.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent

WORK = """
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

RSS = """
import json, sys
sys.path.insert(0, sys.argv[3])
from erase import FastEmbedder
from mem_adapters import MemoryEngine
path, records = sys.argv[1], int(sys.argv[2])
if not __import__("os").path.exists(path):
    e = MemoryEngine(path, embedder=FastEmbedder())
    for b in range(records // 500):
        e.remember([{"role": "user", "text": f"turn {b}-{i} about topic {(b * 7919 + i) % 997} and more"}
                    for i in range(500)], session_id=f"s{b}", user_id="u")
    for q in range(5):
        e.search(f"topic {q} words", user_id="u")  # writes the derived snapshot once
    e.close()
    raise SystemExit
e = MemoryEngine(path, embedder=FastEmbedder())
for q in range(5):
    e.search(f"topic {q} words", user_id="u")
print(json.dumps({"rss_mb": int(open("/proc/self/statm").read().split()[1]) * 4096 / 2**20}))
e.close()
"""


def _child(code: str, argv: list[str], env: dict[str, str]) -> tuple[dict[str, float], str]:
    t = time.monotonic()
    proc = subprocess.Popen([sys.executable, "-c", code, *argv], env=env, stdout=subprocess.PIPE, text=True)
    out, _ = proc.communicate()
    if proc.returncode:
        raise SystemExit(f"child failed ({proc.returncode})")
    return {"wall_s": time.monotonic() - t}, out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", default=str(HERE.parents[1] / "shared/data/locomo/locomo-dev.json"))
    ap.add_argument("--turns", type=int, default=200)
    ap.add_argument("--searches", type=int, default=80)
    ap.add_argument("--records", type=int, default=10_000)
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--out", default=None)
    args = ap.parse_args()
    drop = ("MALLOC_PERTURB_", "MEM_ADAPTERS_SCRUB_FREED_MEMORY", "MALLOC_MMAP_THRESHOLD_")
    base = {k: v for k, v in os.environ.items() if k not in drop} | {"ANONYMIZED_TELEMETRY": "False"}
    arms = {
        "guard": base,
        "no_guard": {**base, "MEM_ADAPTERS_SCRUB_FREED_MEMORY": "0"},
        "mmap_threshold": {
            **base,
            "MEM_ADAPTERS_SCRUB_FREED_MEMORY": "0",
            "MALLOC_MMAP_THRESHOLD_": "131072",
        },
    }
    runs: dict[str, dict[str, list[float]]] = {k: {"cpu_s": [], "wall_s": [], "rss_mb": []} for k in arms}
    with tempfile.TemporaryDirectory() as tmp:
        store = str(Path(tmp) / "store")
        _child(RSS, [store, str(args.records), str(HERE)], arms["no_guard"])  # build
        work = [args.data, str(args.turns), str(args.searches)]
        _child(WORK, work, arms["no_guard"])  # warm-up: file caches, the model's pages
        for _ in range(args.runs):
            for name, env in arms.items():
                before = os.times()
                timing, _ = _child(WORK, work, env)
                after = os.times()
                cpu = (after.children_user - before.children_user) + (
                    after.children_system - before.children_system
                )
                runs[name]["cpu_s"].append(cpu)
                runs[name]["wall_s"].append(timing["wall_s"])
                _, out = _child(RSS, [store, str(args.records), str(HERE)], env)
                runs[name]["rss_mb"].append(json.loads(out.strip().splitlines()[-1])["rss_mb"])
    med = {k: {f: statistics.median(v) for f, v in r.items()} for k, r in runs.items()}
    report = {
        "turns": args.turns,
        "searches": args.searches,
        "records": args.records,
        "load_avg": os.getloadavg(),
        "runs": runs,
        "median": med,
        "vs_no_guard": {
            k: {f: med[k][f] / med["no_guard"][f] for f in med[k]} for k in med if k != "no_guard"
        },
    }
    print(json.dumps(report["median"], indent=1))
    print(json.dumps(report["vs_no_guard"], indent=1))
    if args.out:
        Path(args.out).write_text(json.dumps(report, indent=1) + "\n")


if __name__ == "__main__":
    main()
