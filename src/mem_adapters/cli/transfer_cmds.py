"""``import`` and ``export``: conversation files in, verbatim JSONL of a store out (and back in)."""

from __future__ import annotations

import logging
import sys
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any

import typer

from .. import transfer
from .app import StoreOptions, app, store_command
from .formats import FORMATS, Parsed, Source, detect, parse, read_source
from .output import err, plural, print_json, progress_bar

logger = logging.getLogger(__name__)

DEFAULT_BATCH = 100


@app.command("import", rich_help_panel="Data in and out")
@store_command
def import_(
    store: StoreOptions,
    file: Annotated[str, typer.Argument(metavar="FILE", help="JSON or JSONL file to import (- for stdin).")],
    fmt: Annotated[
        str,
        typer.Option(
            "--format",
            help="Layout of the file: auto, turns, openai, sharegpt, locomo or export.",
            show_default=True,
        ),
    ] = "auto",
    batch: Annotated[
        int, typer.Option("--batch", min=1, help="Turns (or records) per write.")
    ] = DEFAULT_BATCH,
    enrich: Annotated[
        bool,
        typer.Option("--enrich", help="Derive facts and episodes from the new turns, and wait for it."),
    ] = False,
    json_out: Annotated[bool, typer.Option("--json", help="Print the counts as JSON.")] = False,
) -> None:
    """Import a conversation file, or a file written by export, into the store.

    Conversation layouts: turns (objects with role, text, timestamp; a line may carry its own
    session_id and user_id), OpenAI-style messages, ShareGPT conversations and LoCoMo; the
    layout is detected from the file. --session and --user are the defaults for turns that
    name none (the session defaults to the file's name).

    Importing is idempotent and resumable: turn ids are content hashes (or hashes of the
    turn's place in its session when it has no timestamp), and export records keep their
    ids, so importing a file again, or rerunning a killed import, writes each record once.

    Conversations are written as a backfill (the engine's mode="import"): facts supersede by
    the turns' own timestamps whatever the order of the file, and enrichment (--enrich now,
    or a later enriching engine on the store) closes no episode by itself (end_session does).
    """
    if fmt not in FORMATS:
        raise typer.BadParameter(f"must be one of {', '.join(FORMATS)}", param_hint="--format")
    source = read_source(file)
    kind = detect(source) if fmt == "auto" else fmt
    if kind == "export":
        if store.user or store.session or store.tenant:
            raise typer.BadParameter(
                "an export file carries its own tenants, users and sessions; drop --tenant/--user/--session",
                param_hint="--tenant/--user/--session",
            )
        _import_export(store, file, source, batch, json_out)
        return
    parsed = parse(source, kind, session=store.session, user=store.user, tenant=store.tenant_id)
    with store.open(enricher="default" if enrich else None) as engine:
        created, known = _write_conversations(engine, store, parsed, batch)
        if enrich and created:
            with progress_bar("enriching", None):
                engine.wait_all()
    summary = {
        "file": file,
        "format": parsed.format,
        "turns": parsed.turns,
        "sessions": len(parsed.conversations),
        "written": created,
        "already_stored": known,
        "skipped_empty": parsed.skipped_empty,
    }
    if json_out:
        print_json(summary)
        return
    sessions = ", ".join(c.session_id for c in parsed.conversations[:3])
    more = f" and {len(parsed.conversations) - 3} more" if len(parsed.conversations) > 3 else ""
    typer.echo(
        f"imported {file} ({parsed.format}): {plural(parsed.turns, 'turn')} in "
        f"{plural(len(parsed.conversations), 'session')} ({sessions}{more}): "
        f"{created} new, {known} already stored"
        + (f", {parsed.skipped_empty} empty skipped" if parsed.skipped_empty else "")
    )


def _write_conversations(engine: Any, store: StoreOptions, parsed: Parsed, batch: int) -> tuple[int, int]:
    """Write every conversation through ``remember``, ``batch`` turns per call, in file order.

    Always ``mode="import"`` (a backfill): the turns carry it, so whoever enriches them (this
    import's ``--enrich`` or a later worker finding them pending) orders facts by event time.
    """
    created = known = 0
    with progress_bar("importing turns", parsed.turns) as advance:
        for conv in parsed.conversations:
            for start in range(0, len(conv.turns), batch):
                chunk = conv.turns[start : start + batch]
                result = engine.remember(
                    chunk,
                    session_id=conv.session_id,
                    user_id=conv.user_id,
                    agent_id=conv.agent_id,
                    tenant_id=conv.tenant_id or store.tenant_id,
                    mode="import",
                )
                created += result.created
                known += result.duplicates
                logger.info("import: %s: %d turns written, %d known", conv.session_id, result.created,
                            result.duplicates)  # fmt: skip
                advance(len(chunk))
    return created, known


def _import_export(store: StoreOptions, file: str, source: Source, batch: int, json_out: bool) -> None:
    assert source.lines is not None
    records = [r for n, obj in source.lines if (r := transfer.validate_record(obj, f"line {n}")) is not None]
    with store.open() as engine, progress_bar("importing records", len(records)) as advance:
        counts = engine.run(
            transfer.import_records(engine.aengine, records, batch_size=batch, progress=advance)
        )
    summary = {
        "file": file,
        "format": "export",
        "records": len(records),
        "written": counts.written,
        "memories": counts.memories,
        "history": counts.history,
        "already_stored": counts.skipped,
        "by_kind": counts.by_kind,
    }
    if json_out:
        print_json(summary)
        return
    typer.echo(
        f"imported {file} (export): {len(records)} records: {counts.memories} memories and "
        f"{counts.history} history rows written, {counts.skipped} already stored"
    )


@app.command(rich_help_panel="Data in and out")
@store_command
def export(
    store: StoreOptions,
    output: Annotated[
        Path | None,
        typer.Option("--out", "-o", help="Write here instead of stdout.", show_default=False),
    ] = None,
) -> None:
    """Export the store as JSONL, exactly: ids, metadata, versions, history.

    Every turn, raw memory (with its expiry), chunk, fact (with its versions), episode and
    history row is written with its ids, caller metadata and engine fields.
    Without --tenant every tenant is exported; --user keeps one user's records. The output is
    sorted, so exporting the same records twice gives the same bytes, and import of the file
    writes them back exactly (see the README's Command line section for the format).
    """
    with store.open() as engine:
        tenants = [store.tenant] if store.tenant else engine.tenants()
        if output is None:
            counts = _export(engine, tenants, store.user, sys.stdout.write)
        else:
            with open(output, "w", encoding="utf-8", newline="\n") as fh:
                counts = _export(engine, tenants, store.user, fh.write)
    where = output if output is not None else "stdout"
    err().print(
        f"exported {plural(counts['memory'], 'memory', 'memories')} and "
        f"{plural(counts['history'], 'history row')} of {plural(len(tenants), 'tenant')} to {where}",
        highlight=False,
    )


def _export(engine: Any, tenants: list[str], user: str | None, write: Callable[[str], Any]) -> Counter[str]:
    counts: Counter[str] = Counter()

    async def run(advance: Callable[[int], None]) -> None:
        write(transfer.dumps(transfer.header()) + "\n")
        for tenant_id in tenants:
            async for record in transfer.export_records(engine.aengine, tenant_id=tenant_id, user_id=user):
                write(transfer.dumps(record) + "\n")
                counts[record["record"]] += 1
                advance(1)

    with progress_bar("exporting records", None) as advance:
        engine.run(run(advance))
    return counts
