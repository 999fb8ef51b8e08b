"""The ``mem-adapters`` command line: a demo of the engine and the benchmarks."""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Sequence

DEMO_TURNS = [
    ("user", "Hi! I'm Dana. I just moved to Lisbon with my partner Sam.", "2025-03-01T09:00:00Z"),
    ("assistant", "Welcome to Lisbon, Dana! How is the move going?", "2025-03-01T09:00:05Z"),
    (
        "user",
        "Great, but I'm allergic to shellfish, so the seafood places are tricky.",
        "2025-03-01T09:01:00Z",
    ),
    (
        "assistant",
        "Good to know - I'll keep shellfish out of any suggestions.",
        "2025-03-01T09:01:04Z",
    ),
    ("user", "I work as a nurse and start night shifts next Monday.", "2025-03-01T09:02:00Z"),
    ("user", "On weekends I like hiking along the coast near Sintra.", "2025-03-01T09:03:00Z"),
]
DEMO_QUESTIONS = [
    "What food should I avoid?",
    "What do I do for work?",
    "Where do I like to go hiking?",
]


def demo(path: str | None) -> int:
    """Record a short conversation in the embedded store and recall from it, offline."""
    from .engine import MemoryEngine

    with MemoryEngine(path) as engine:
        turns = [{"role": r, "text": t, "timestamp": ts} for r, t, ts in DEMO_TURNS]
        result = engine.remember(turns, session_id="demo-session", user_id="dana")
        print(f"stored {result.created} new turns ({result.duplicates} already known) in {engine.path}")
        for question in DEMO_QUESTIONS:
            hits = engine.search(question, user_id="dana", k=2, mode="context", char_budget=300)
            print(f"\nQ: {question}\n{hits.context}")
        transcript = engine.get_messages("demo-session")
        print(f"\ntranscript has {len(transcript)} turns, first: {transcript[0].text!r}")
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``mem-adapters`` command."""
    parser = argparse.ArgumentParser(prog="mem-adapters", description=__doc__)
    parser.add_argument("-v", "--verbose", action="store_true", help="log at INFO level")
    sub = parser.add_subparsers(dest="command", required=True)
    p_demo = sub.add_parser("demo", help="record a conversation and recall it (offline)")
    p_demo.add_argument(
        "--path", default=None, help="store folder (default $MEM_ADAPTERS_PATH or .mem_adapters)"
    )
    try:
        from . import bench
    except ImportError:  # pragma: no cover - bench is part of the distribution
        bench = None  # type: ignore[assignment]
    if bench is not None:
        bench.register(sub)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING)
    if args.command == "demo":
        return demo(args.path)
    return int(args.func(args))


if __name__ == "__main__":
    sys.exit(main())
