"""A new process's first user-scoped search, and reading the snapshot alone, for A/B runs (issue #10).

    .venv/bin/python benchmarks/snapshot_load.py --store <folder> [--tenant T --user U] [--runs 3] [--out F]
    # another commit's engine (and its snapshot format) on a copy of the same store:
    PYTHONPATH=<worktree>/src .venv/bin/python benchmarks/snapshot_load.py --store <copy>

Each run is a fresh process that loads and warms the model, then times ``MemoryEngine(store)``,
the first search of ``--user`` (its partition comes from the snapshot while Chroma opens the
collection), and in one more fresh process ``SnapshotStore.load`` of that snapshot by itself.
Reports the median of ``--runs`` of each. The store must hold a snapshot in the format of the
engine that runs: a first run of a store without one loads from Chroma (slow at 100k) and
leaves one when it closes; run once more to measure.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
from pathlib import Path
from typing import Any

_FIRST = """
import json, sys, time
import chromadb  # imported before the clock starts, as the scale bench's probes do
from mem_adapters.embeddings import OnnxMiniLMEmbedder
from mem_adapters.engine import MemoryEngine
store, tenant, user = sys.argv[1:4]
emb = OnnxMiniLMEmbedder()
for _ in range(3):
    emb.embed_query("warm up the model")
t0 = time.perf_counter()
eng = MemoryEngine(store, embedder=emb)
t1 = time.perf_counter()
res = eng.search("What did they talk about last week?", user_id=user, tenant_id=tenant, k=10)
t2 = time.perf_counter()
status = dict(l.split(":", 1) for l in open("/proc/self/status").read().splitlines() if ":" in l)
mb = {k: int(status[k].split()[0]) / 1024 for k in ("VmRSS", "RssAnon", "RssFile") if k in status}
eng.close()
print(json.dumps({"open_s": t1 - t0, "first_search_s": t2 - t1, "hits": len(res.results),
                  "rss_mb_after_first_search": mb}))
"""

_LOAD = """
import json, sys, time
import mem_adapters.data.snapshots as snaps
from mem_adapters.embeddings import OnnxMiniLMEmbedder
from pathlib import Path
store, tenant, user = sys.argv[1:4]
ident = OnnxMiniLMEmbedder().identity
s = snaps.SnapshotStore(Path(store) / ".mem_adapters-derived")
t0 = time.perf_counter()
got = s.load(tenant, user, embedder=ident)
t1 = time.perf_counter()
print(json.dumps({"load_s": t1 - t0, "found": got is not None, "format": snaps.FORMAT,
                  "records": len(got[0]) if got else 0}))
"""


def _run(code: str, args: list[str]) -> dict[str, Any]:
    out = subprocess.run([sys.executable, "-c", code, *args], capture_output=True, text=True, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def _engine_source() -> str:
    code = "import mem_adapters, pathlib; print(pathlib.Path(mem_adapters.__file__).parent)"
    out = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        check=True,
    )
    src = out.stdout.strip()
    rev = subprocess.run(["git", "-C", src, "rev-parse", "--short", "HEAD"], capture_output=True, text=True)
    return f"{src} ({rev.stdout.strip() or 'no git'})"


def main() -> None:
    ap = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    ap.add_argument("--store", required=True, help="an engine store folder holding the user's snapshot")
    ap.add_argument("--tenant", default="bench")
    ap.add_argument("--user", default="u0000")
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--out", type=Path, default=None)
    args = ap.parse_args()
    argv = [args.store, args.tenant, args.user]
    first = [_run(_FIRST, argv) for _ in range(args.runs)]
    loads = [_run(_LOAD, argv) for _ in range(args.runs)]
    report = {
        "engine": _engine_source(),
        "store": args.store,
        "snapshot_found": all(r["found"] for r in loads),
        "snapshot_format": loads[0]["format"],
        "records": loads[0]["records"],
        "open_s": round(statistics.median(r["open_s"] for r in first), 4),
        "first_search_s": round(statistics.median(r["first_search_s"] for r in first), 4),
        "snapshot_load_s": round(statistics.median(r["load_s"] for r in loads), 4),
        "runs": {"first": first, "load": loads},
    }
    print(json.dumps(report, indent=1))
    if args.out:
        args.out.write_text(json.dumps(report, indent=1) + "\n")


if __name__ == "__main__":
    main()
