"""Helper process for tests/test_atomic_batches.py: writes one large batch of turns, then exits.

Usage: python atomic_batch_worker.py (--path <store> | --host <h> --port <p>) --n <turns>
       [--tenant T] [--session S] [--user U] [--max-batch K]

``--max-batch`` makes the store split writes into calls of ``K`` records instead of Chroma's
own limit (5,461), so a small batch takes the multi-call path quickly.

The test hooks of ``mem_adapters.data.txn`` (``$MEM_ADAPTERS_TEST_FAIL_AFTER_CHUNK``,
``$MEM_ADAPTERS_TEST_TXN_STEP_DIR``) come from the environment the test gives it. Prints the
write's ``created`` count as JSON when it survives.
"""

from __future__ import annotations

import argparse
import hashlib
import json
from datetime import datetime, timedelta, timezone
from typing import Any

import numpy as np

from mem_adapters import MemoryEngine
from mem_adapters.data.chroma import ChromaStore

START = datetime(2024, 2, 1, tzinfo=timezone.utc)


class HashEmbedder:
    """A small deterministic embedder (bag of hashed words): large batches embed in milliseconds."""

    identity = "test:hash-bow:16"
    dimension = 16

    def _vec(self, text: str) -> list[float]:
        v = np.zeros(self.dimension, dtype=np.float32)
        for w in text.lower().split():
            v[int(hashlib.md5(w.encode()).hexdigest(), 16) % self.dimension] += 1.0
        v[0] += 0.01
        return (v / np.linalg.norm(v)).tolist()

    def embed_documents(self, texts: list[str]) -> list[list[float]]:
        return [self._vec(t) for t in texts]

    def embed_query(self, text: str) -> list[float]:
        return self._vec(text)


def turns(n: int, prefix: str = "bulk") -> list[dict[str, Any]]:
    """``n`` distinct turns (distinct texts and timestamps, so distinct content-hash ids)."""
    return [
        {
            "role": "user" if i % 2 == 0 else "assistant",
            "text": f"{prefix} line {i} about topic{i % 11}",
            "timestamp": (START + timedelta(seconds=i)).isoformat(),
        }
        for i in range(n)
    ]


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--path")
    ap.add_argument("--host")
    ap.add_argument("--port", type=int)
    ap.add_argument("--n", type=int, required=True)
    ap.add_argument("--tenant", default="default")
    ap.add_argument("--session", default="bulk")
    ap.add_argument("--user", default="u1")
    ap.add_argument("--max-batch", type=int)
    args = ap.parse_args()
    if args.max_batch:

        async def small_batches(self: ChromaStore) -> int:
            return args.max_batch

        ChromaStore._batch_limit = small_batches  # type: ignore[method-assign]
    if args.host:
        import chromadb

        client = chromadb.HttpClient(host=args.host, port=args.port)
        engine = MemoryEngine(client=client, embedder=HashEmbedder())
    else:
        engine = MemoryEngine(args.path, embedder=HashEmbedder())
    with engine:
        res = engine.remember(
            turns(args.n), session_id=args.session, user_id=args.user, tenant_id=args.tenant
        )
    print(json.dumps({"created": res.created, "duplicates": res.duplicates}), flush=True)


if __name__ == "__main__":
    main()
