"""Measure the default (LLM-free) extractor against LoCoMo's reference observations.

For every session of the dev file, the extractor reads the turns (with the session's date as
their timestamp) and produces facts. Two ratios are reported:

- observation coverage (recall): reference observations whose source turn (``dia_id``) has at
  least one produced fact;
- fact precision: produced facts whose source turn has at least one reference observation.

Usage::

    .venv/bin/python benchmarks/extraction.py [--data PATH] [--samples N] [--show N] [--json OUT]
"""

from __future__ import annotations

import argparse
import json
import random
import re
import sys
import time
from datetime import datetime, timezone
from pathlib import Path

from mem_adapters.enrichment import RuleExtractor, TurnInput

DEFAULT_DATA = Path(__file__).resolve().parents[2] / "shared/data/locomo/locomo-dev.json"


def parse_session_date(raw: str) -> datetime | None:
    """LoCoMo dates look like "1:56 pm on 8 May, 2023"."""
    try:
        return datetime.strptime(raw.strip(), "%I:%M %p on %d %B, %Y").replace(tzinfo=timezone.utc)
    except ValueError:
        return None


def norm_dia(dia: object) -> list[str]:
    """Reference dia_ids are sometimes lists or malformed strings; return clean ``D<s>:<t>`` ids."""
    items = dia if isinstance(dia, list) else [dia]
    out = []
    for item in items:
        for m in re.finditer(r"D(\d+):(\d+)", str(item)):
            out.append(f"D{int(m.group(1))}:{int(m.group(2))}")
    return out


def run(data: Path, samples: int | None, show: int, seed: int) -> dict[str, object]:
    convs = json.loads(data.read_text())
    if samples:
        convs = convs[:samples]
    extractor = RuleExtractor()
    n_obs = n_obs_covered = n_facts = n_facts_on_ref = n_turns = 0
    per_type: dict[str, list[int]] = {}
    examples: list[tuple[str, str, str]] = []
    t0 = time.perf_counter()
    for conv in convs:
        c = conv["conversation"]
        sid = conv["sample_id"]
        ref_turns: set[str] = set()
        obs_turns: list[str] = []
        for sess in conv["observation"].values():
            for items in sess.values():
                for item in items:
                    ids = norm_dia(item[1])
                    obs_turns.append(ids[0] if ids else "")
                    ref_turns.update(ids)
        fact_turns: set[str] = set()
        for key, turns in c.items():
            if not (key.startswith("session_") and isinstance(turns, list)):
                continue
            when = parse_session_date(c.get(f"{key}_date_time", ""))
            inputs = [
                TurnInput(id=t["dia_id"], role=t["speaker"], text=t["text"], timestamp=when) for t in turns
            ]
            n_turns += len(inputs)
            for fact in extractor.extract(inputs):
                n_facts += 1
                src = norm_dia(fact.source_turn_ids[0])
                on_ref = bool(src and src[0] in ref_turns)
                n_facts_on_ref += on_ref
                per_type.setdefault(fact.predicate.split(":")[0], [0, 0])
                per_type[fact.predicate.split(":")[0]][0] += 1
                per_type[fact.predicate.split(":")[0]][1] += on_ref
                fact_turns.update(src)
                examples.append((f"{sid}/{fact.source_turn_ids[0]}", fact.predicate, fact.text))
        n_obs += len(obs_turns)
        n_obs_covered += sum(1 for t in obs_turns if t in fact_turns)
    elapsed = time.perf_counter() - t0
    random.Random(seed).shuffle(examples)
    for ex in examples[:show]:
        print("  ", *ex, sep=" | ")
    result = {
        "conversations": len(convs),
        "turns": n_turns,
        "reference_observations": n_obs,
        "observations_with_fact_from_same_turn": n_obs_covered,
        "observation_coverage": round(n_obs_covered / max(n_obs, 1), 4),
        "facts": n_facts,
        "facts_from_turn_with_observation": n_facts_on_ref,
        "fact_precision": round(n_facts_on_ref / max(n_facts, 1), 4),
        "facts_per_turn": round(n_facts / max(n_turns, 1), 3),
        "seconds": round(elapsed, 2),
        "by_predicate": {k: {"facts": v[0], "on_reference_turn": v[1]} for k, v in sorted(per_type.items())},
    }
    return result


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", type=Path, default=DEFAULT_DATA)
    ap.add_argument("--samples", type=int, default=None, help="only the first N conversations")
    ap.add_argument("--show", type=int, default=0, help="print N random produced facts")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--json", type=Path, default=None, help="write the result here")
    args = ap.parse_args(argv)
    result = run(args.data, args.samples, args.show, args.seed)
    print(json.dumps(result, indent=2))
    if args.json:
        args.json.write_text(json.dumps(result, indent=2))
    ok = result["observation_coverage"] >= 0.6 and result["fact_precision"] >= 0.5
    print("goals (coverage >= 0.6, precision >= 0.5):", "met" if ok else "NOT met", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
