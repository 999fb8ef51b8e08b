"""``mem-adapters import`` writes conversations as a backfill (the engine's ``mode="import"``).

A file holding a newer and an older contradicting statement, newest first: the newer fact stays
latest and the older one is linked into its chain by event time (chat mode would leave it as
unlinked history). Real embedded Chroma, real model, the command through Typer's runner.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from typer.testing import CliRunner

from mem_adapters import MemoryEngine
from mem_adapters.cli import app
from mem_adapters.enrichment import Enricher

ROWS = [  # newest first
    {"role": "user", "text": "I live in Berlin.", "timestamp": "2024-03-01T10:00:00Z"},
    {"role": "assistant", "text": "Berlin, noted.", "timestamp": "2024-03-01T10:00:05Z"},
    {"role": "user", "text": "I live in Paris.", "timestamp": "2024-01-01T10:00:00Z"},
]


def _import(tmp_path: Path, store: Path, *extra: str) -> dict[str, Any]:
    conv = tmp_path / "moves.jsonl"
    conv.write_text("".join(json.dumps(r) + "\n" for r in ROWS), encoding="utf-8")
    args = ["import", str(conv), "--session", "moves", "--user", "ana", "--path", str(store), *extra]
    args.append("--json")
    result = CliRunner().invoke(app, args, catch_exceptions=True)
    assert result.exit_code == 0, (result.stdout, result.stderr, result.exception)
    return json.loads(result.stdout)


def _check_chain(eng: MemoryEngine) -> None:
    facts = eng.list(kinds=["fact"], user_id="ana", page_size=1000).results
    cities = {f.attributes["value"]: f for f in facts if f.attributes.get("predicate") == "lives_in"}
    berlin, paris = cities["Berlin"], cities["Paris"]
    assert berlin.is_latest and berlin.status == "active"
    assert not paris.is_latest
    assert berlin.supersedes == paris.id  # linked by event time: import mode
    assert [h.memory_id for h in eng.history(berlin.id)] == [paris.id, berlin.id]
    top = eng.search("where does the user live", kinds=["fact"], user_id="ana", k=1).results
    assert [h.id for h in top] == [berlin.id]


def test_import_enrich_keeps_the_newer_fact_latest(tmp_path, embedder):
    store = tmp_path / "s"
    got = _import(tmp_path, store, "--enrich")
    assert (got["written"], got["sessions"]) == (3, 1)
    with MemoryEngine(store, embedder=embedder) as eng:
        turns = eng.get_messages("moves")
        assert [t.text for t in turns] == [r["text"] for r in ROWS]  # file order kept
        assert all(t.attributes.get("mode") == "import" for t in turns)
        _check_chain(eng)


def test_import_without_enrich_is_enriched_later_as_an_import(tmp_path, embedder):
    store = tmp_path / "s"
    _import(tmp_path, store)
    with MemoryEngine(store, embedder=embedder) as eng:
        assert eng.list(kinds=["fact"]).count == 0
    # A later enriching engine finds the pending turns: they are still a backfill.
    with MemoryEngine(store, embedder=embedder, enricher=Enricher(backoff=0.01)) as eng:
        eng.wait_all(timeout=120)
        _check_chain(eng)
