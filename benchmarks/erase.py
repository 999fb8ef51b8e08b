"""Cost of an erase that leaves nothing on disk, at 1k and 10k records in one tenant.

    MEM_ADAPTERS_MODEL_DIR=... .venv/bin/python benchmarks/erase.py --sizes 1000,10000 \
        --out benchmarks/results/erase.json

For each size: a fresh embedded store holding ``size`` turns of ``--users`` users in one tenant
(plus a second tenant of the same size, so the SQLite file is not the tenant alone), written
with a fast deterministic 384-d embedder (the vectors' values do not change the cost). Then:

- ``delete_many`` of one user's turns: what a delete through Chroma's API costs (the baseline,
  which leaves residue on disk);
- ``erase(user_id=...)`` of another user: deletes, rebuilds the tenant's collections, removes
  dropped folders, merges FTS5, VACUUMs, greps the files (receipt ``verified_on_disk``);
- ``erase()`` of the whole tenant.

Every figure is wall-clock seconds on this machine; the load average is recorded with them.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import shutil
import tempfile
import time
from pathlib import Path

import numpy as np

from mem_adapters import MemoryEngine


class FastEmbedder:
    """384-d unit vectors seeded by a hash of the text (no model: the fill is not what is measured)."""

    identity = "bench:hash-random:384"
    dimension = 384

    def _vec(self, text: str) -> list[float]:
        seed = int(hashlib.sha256(text.encode("utf-8")).hexdigest()[:16], 16)
        v = np.random.default_rng(seed).standard_normal(self.dimension).astype(np.float32)
        return (v / np.linalg.norm(v)).tolist()

    def embed_documents(self, texts: list[str]) -> list[list[float]]:
        return [self._vec(t) for t in texts]

    def embed_query(self, text: str) -> list[float]:
        return self._vec(text)


def _fill(eng: MemoryEngine, tenant: str, size: int, users: int) -> None:
    per_user = size // users
    for u in range(users):
        for start in range(0, per_user, 500):
            n = min(500, per_user - start)
            turns = [
                {
                    "role": "user",
                    "text": f"{tenant} user {u} says thing number {start + i} about topic {i % 37}",
                }
                for i in range(n)
            ]
            eng.remember(turns, session_id=f"s{u}-{start}", user_id=f"u{u}", tenant_id=tenant)


async def _ids(eng: MemoryEngine, tenant: str, user: str) -> list[str]:
    pair = await eng.aengine.collections(tenant, create=False)
    assert pair is not None
    return list((await pair[0].get_all(where={"user_id": user}, include=[]))["ids"])


def _bytes(root: Path) -> int:
    return sum(p.stat().st_size for p in root.rglob("*") if p.is_file())


def run(size: int, users: int, root: Path) -> dict:
    """One size: fill, then time a delete, a user erase and a tenant erase."""
    path = root / f"store-{size}"
    shutil.rmtree(path, ignore_errors=True)
    eng = MemoryEngine(path, embedder=FastEmbedder())
    try:
        t = time.perf_counter()
        _fill(eng, "bench", size, users)
        _fill(eng, "other", size, users)
        fill_s = time.perf_counter() - t
        store_bytes = _bytes(path)
        ids = eng.run(_ids(eng, "bench", "u1"))
        t = time.perf_counter()
        eng.delete_many(ids, tenant_id="bench")
        delete_s = time.perf_counter() - t
        t = time.perf_counter()
        user = eng.erase(user_id="u0", tenant_id="bench")
        user_s = time.perf_counter() - t
        t = time.perf_counter()
        tenant = eng.erase(tenant_id="bench")
        tenant_s = time.perf_counter() - t
    finally:
        eng.close()
    return {
        "records_in_tenant": size,
        "users": users,
        "store_bytes_before": store_bytes,
        "fill_s": round(fill_s, 2),
        "delete_many_one_user_s": round(delete_s, 3),
        "deleted_records": len(ids),
        "erase_user_s": round(user_s, 3),
        "erase_user_records": user.total,
        "erase_user_verified_on_disk": user.verified_on_disk,
        "erase_user_checks": user.residue_checks,
        "erase_tenant_s": round(tenant_s, 3),
        "erase_tenant_verified_on_disk": tenant.verified_on_disk,
        "erase_tenant_checks": tenant.residue_checks,
        "load_average": os.getloadavg(),
    }


def main() -> None:
    """Run every size and write the JSON report."""
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sizes", default="1000,10000")
    ap.add_argument("--users", type=int, default=10)
    ap.add_argument("--out", default=None)
    args = ap.parse_args()
    results = []
    with tempfile.TemporaryDirectory(prefix="erase-bench-") as tmp:
        for size in [int(s) for s in args.sizes.split(",")]:
            r = run(size, args.users, Path(tmp))
            print(json.dumps({k: v for k, v in r.items() if not k.endswith("checks")}))
            results.append(r)
    report = {"command": "benchmarks/erase.py --sizes " + args.sizes, "results": results}
    if args.out:
        Path(args.out).write_text(json.dumps(report, indent=2) + "\n")


if __name__ == "__main__":
    main()
