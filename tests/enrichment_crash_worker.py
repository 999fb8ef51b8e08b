"""Helper process for the crash test: writes turns with a slow extractor, then idles until killed.

Usage: python enrichment_crash_worker.py <store path> <model dir> <ready file>
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

from mem_adapters import MemoryEngine, OnnxMiniLMEmbedder
from mem_adapters.enrichment import Enricher, RuleExtractor

TURNS = [
    "I live in Paris.",
    "My favorite food is ramen.",
    "I work as a nurse at the city hospital.",
    "I moved to Berlin last month.",
    "I'm allergic to peanuts.",
    "My sister Lena lives in Vienna.",
]


class SlowExtractor(RuleExtractor):
    """The rule extractor, but each call takes a while, so a kill lands mid-job."""

    def extract(self, turns, **kwargs):  # type: ignore[no-untyped-def]
        Path(sys.argv[3]).touch()  # tells the test a job is running
        time.sleep(1.0)
        return super().extract(turns, **kwargs)


def main() -> None:
    engine = MemoryEngine(
        sys.argv[1], embedder=OnnxMiniLMEmbedder(sys.argv[2]), enricher=Enricher(SlowExtractor())
    )
    for i, text in enumerate(TURNS):
        engine.remember(
            [{"role": "user", "text": text, "timestamp": f"2024-01-0{i + 1}T10:00:00"}],
            session_id="s1",
            user_id="u1",
        )
    print("written", flush=True)
    time.sleep(600)  # killed by the test long before


if __name__ == "__main__":
    main()
