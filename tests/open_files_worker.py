"""Run by tests/test_open_files.py with a low soft open-file limit: many tenants, each read back."""

from __future__ import annotations

import hashlib
import sys
import tempfile

import numpy as np

from mem_adapters.engine import MemoryEngine


class _HashEmbedder:
    """Deterministic vectors: the test is about Chroma's index pool, not about ranking."""

    identity = "hash-16"
    dimension = 16

    def _v(self, text: str) -> list[float]:
        seed = int(hashlib.sha256(text.encode()).hexdigest()[:8], 16)
        v = np.random.default_rng(seed).standard_normal(16)
        return (v / np.linalg.norm(v)).tolist()

    def embed_documents(self, texts: list[str]) -> list[list[float]]:
        return [self._v(t) for t in texts]

    def embed_query(self, text: str) -> list[float]:
        return self._v(text)


def main(tenants: int) -> int:
    engine = MemoryEngine(tempfile.mkdtemp(), embedder=_HashEmbedder())
    for t in range(tenants):
        turns = [{"role": "user", "text": f"tenant {t} turn {i} about boats"} for i in range(3)]
        engine.remember(turns, session_id="s", user_id="u", tenant_id=f"t{t}")
    failed = 0
    for t in range(tenants):
        try:
            found = engine.search("boats", tenant_id=f"t{t}", k=10).results
            failed += len(found) != 3
        except Exception as e:
            print(f"tenant t{t}: {type(e).__name__}: {e}", file=sys.stderr)
            failed += 1
    engine.close()
    print(failed)
    return 0


if __name__ == "__main__":
    sys.exit(main(int(sys.argv[1])))
