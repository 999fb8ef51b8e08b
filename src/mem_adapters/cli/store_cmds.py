"""Commands that read or erase a store: search, users, sessions, show, facts, erase, stats."""

from __future__ import annotations

import logging
from typing import Annotated, Any

import typer
from rich import box
from rich.table import Table

from .. import transfer
from ..models import MemoryItem
from .app import StoreOptions, app, store_command
from .output import out, plain, plural, print_json, short_id, when, who

logger = logging.getLogger(__name__)

JsonOpt = Annotated[bool, typer.Option("--json", help="Print JSON instead of a table.")]
_PAGE = 1000


def _item_json(item: MemoryItem) -> dict[str, Any]:
    return item.model_dump(mode="json", exclude_none=True)


def _all_pages(engine: Any, **kwargs: Any) -> list[MemoryItem]:
    """Every item of ``engine.list(**kwargs)``, page after page."""
    items: list[MemoryItem] = []
    page: int | None = 1
    while page is not None:
        got = engine.list(page=page, page_size=_PAGE, **kwargs)
        items.extend(got.results)
        page = got.next
    return items


@app.command(rich_help_panel="Inspect")
@store_command
def search(
    store: StoreOptions,
    query: Annotated[str, typer.Argument(help="What to look for, in plain words.")],
    k: Annotated[int, typer.Option("--k", "-k", min=1, help="Number of hits.")] = 10,
    context: Annotated[
        bool, typer.Option("--context", help="Also pack a prompt-ready context string.")
    ] = False,
    char_budget: Annotated[
        int | None, typer.Option("--char-budget", min=1, help="Longest context string (with --context).")
    ] = None,
    kind: Annotated[
        list[str] | None,
        typer.Option("--kind", help="Only these kinds: turn, fact, episode, raw, chunk (repeatable)."),
    ] = None,
    json_out: JsonOpt = False,
) -> None:
    """Search memories of a user (or of the whole tenant), best hits first.

    The score orders the hits of one query (rank fusion of dense and lexical retrieval, then
    boosts); the cosine similarity is shown beside it when the engine reports it.
    """
    with store.open() as engine:
        result = engine.search(
            query,
            tenant_id=store.tenant_id,
            user_id=store.user,
            session_id=store.session,
            k=k,
            kinds=kind or None,
            mode="context" if context else "flat",
            char_budget=char_budget,
        )
    if json_out:
        print_json(result.model_dump(mode="json", exclude_none=True))
        return
    console = out()
    if not result.results:
        console.print("no hits")
        return
    table = Table(
        title=f"{plural(len(result.results), 'hit')} for: {plain(query)}",
        title_justify="left",
        box=box.SIMPLE_HEAD,
    )
    table.add_column("#", justify="right", no_wrap=True)
    table.add_column("score", no_wrap=True)
    table.add_column("cos", no_wrap=True)
    table.add_column("memory", no_wrap=True)
    table.add_column("when", no_wrap=True)
    table.add_column("text", overflow="fold", ratio=1)
    for rank, item in enumerate(result.results, 1):
        parts = item.score_parts
        table.add_row(
            str(rank),
            f"{item.score:.3f}" if item.score is not None else "-",
            f"{parts.cosine:.2f}" if parts is not None and parts.cosine is not None else "-",
            f"{item.kind}\n[dim]{plain(short_id(item.id, 10))}[/dim]",
            when(item.timestamp),
            f"[bold]{plain(who(item))}:[/bold] {plain(item.text)}"
            if item.kind == "turn"
            else plain(item.text),
        )
    console.print(table)
    if context:
        console.print(f"\ncontext ({len(result.context or '')} characters):")
        console.print(plain(result.context or ""), soft_wrap=True)


@app.command(rich_help_panel="Inspect")
@store_command
def users(store: StoreOptions, json_out: JsonOpt = False) -> None:
    """List the users of a tenant with their turns, sessions and memories."""
    with store.open() as engine:
        stats = engine.run(transfer.tenant_stats(engine.aengine, store.tenant_id))
    rows = [] if stats is None else sorted(stats.users.items())
    if json_out:
        print_json(
            [
                {
                    "user_id": user or None,
                    "turns": u["turns"],
                    "sessions": u["sessions"],
                    "memories": u["memories"],
                    "first_turn": when(u["first"]) if u["first"] is not None else None,
                    "last_turn": when(u["last"]) if u["last"] is not None else None,
                }
                for user, u in rows
            ]
        )
        return
    if not rows:
        out().print(f"no users in tenant {plain(store.tenant_id)!r}")
        return
    table = Table(title=f"users of tenant {plain(store.tenant_id)}", title_justify="left")
    for col in ("user", "turns", "sessions", "memories", "first turn", "last turn"):
        table.add_column(col, no_wrap=True)
    for user, u in rows:
        table.add_row(
            plain(user or "(none)"),
            str(u["turns"]),
            str(u["sessions"]),
            str(u["memories"]),
            when(u["first"]),
            when(u["last"]),
        )
    out().print(table)


@app.command(rich_help_panel="Inspect")
@store_command
def sessions(store: StoreOptions, json_out: JsonOpt = False) -> None:
    """List the sessions of a tenant (or of one user), oldest first, with their turn counts."""
    with store.open() as engine:
        ids = engine.list_sessions(tenant_id=store.tenant_id, user_id=store.user)
        counts = {s: engine.count_turns(s, tenant_id=store.tenant_id) for s in ids}
    if json_out:
        print_json([{"session_id": s, "turns": counts[s]} for s in ids])
        return
    if not ids:
        out().print("no sessions")
        return
    table = Table(title=plural(len(ids), "session"), title_justify="left")
    table.add_column("session", overflow="fold")
    table.add_column("turns", justify="right")
    for s in ids:
        table.add_row(plain(s), str(counts[s]))
    out().print(table)


@app.command(rich_help_panel="Inspect")
@store_command
def show(
    store: StoreOptions,
    session_id: Annotated[str, typer.Argument(metavar="SESSION", help="The session to print.")],
    json_out: JsonOpt = False,
) -> None:
    """Print a session's transcript in write order."""
    with store.open() as engine:
        turns = engine.get_messages(session_id, tenant_id=store.tenant_id, user_id=store.user)
    if json_out:
        print_json([_item_json(t) for t in turns])
        return
    if not turns:
        out().print(f"no turns in session {plain(session_id)!r}")
        return
    console = out()
    for t in turns:
        status = "" if t.status == "active" else f" ({t.status})"
        console.print(f"[dim]{when(t.timestamp)}[/dim] [bold]{plain(who(t))}[/bold]{status}: {plain(t.text)}")


@app.command(rich_help_panel="Inspect")
@store_command
def facts(
    store: StoreOptions,
    user_id: Annotated[str, typer.Argument(metavar="USER", help="Whose facts.")],
    all_versions: Annotated[
        bool, typer.Option("--all", help="Also list superseded facts on their own.")
    ] = False,
    json_out: JsonOpt = False,
) -> None:
    """List what the store knows about a user: current facts, each with the facts it superseded.

    Facts come from enrichment (run with an enricher, or import with --enrich). Each current
    fact shows its supersession chain, oldest first.
    """
    with store.open() as engine:
        items = _all_pages(engine, tenant_id=store.tenant_id, user_id=user_id, kinds=["fact"])
        shown = [f for f in items if all_versions or f.is_latest]
        chains = {f.id: engine.history(f.id, tenant_id=store.tenant_id) for f in shown}
    if json_out:
        print_json(
            [
                {"fact": _item_json(f), "history": [h.model_dump(mode="json") for h in chains[f.id]]}
                for f in shown
            ]
        )
        return
    console = out()
    current = sum(1 for f in items if f.is_latest)
    console.print(f"{current} current facts of {plain(user_id)} ({len(items) - current} superseded)")
    for f in shown:
        attrs = f.attributes
        label = " · ".join(str(attrs[k]) for k in ("fact_type", "predicate") if attrs.get(k))
        state = "" if f.is_latest else f" [{f.status}]"
        console.print(
            f"\n[bold]{plain(f.text)}[/bold]{plain(state)}\n"
            f"  [dim]{short_id(f.id, 20)} v{f.version} {plain(label)} · stated {when(f.created_at)}[/dim]"
        )
        for h in chains[f.id][:-1]:
            console.print(f"  [dim]↳ v{h.version} {h.event} {when(h.at)}[/dim] {plain(h.text)}")


@app.command(rich_help_panel="Data in and out")
@store_command
def erase(
    store: StoreOptions,
    yes: Annotated[bool, typer.Option("--yes", "-y", help="Do not ask for confirmation.")] = False,
    json_out: JsonOpt = False,
) -> None:
    """Erase a user or a whole tenant, after confirmation, and print the receipt.

    With --user, that user inside --tenant (default: the default tenant); with --tenant
    alone, the whole tenant. Everything goes: turns, raw memories and chunks, facts,
    episodes, history and jobs.
    """
    if not store.user and not store.tenant:
        raise typer.BadParameter("give --user U (in --tenant T) or --tenant T", param_hint="--user/--tenant")
    what = (
        f"user {store.user!r} in tenant {store.tenant_id!r}"
        if store.user
        else f"the whole tenant {store.tenant_id!r}"
    )
    with store.open() as engine:
        stats = engine.run(transfer.tenant_stats(engine.aengine, store.tenant_id))
        if stats is None:
            if json_out:
                print_json(
                    engine.erase(tenant_id=store.tenant_id, user_id=store.user).model_dump(mode="json")
                )
            else:
                out().print(f"nothing to erase: no tenant {plain(store.tenant_id)!r}")
            return
        n = stats.users.get(store.user, {}).get("memories", 0) if store.user else stats.memories
        if not yes:
            typer.confirm(f"Erase {what} ({n} memories, with their history)?", abort=True, err=True)
        receipt = engine.erase(tenant_id=store.tenant_id, user_id=store.user)
    if json_out:
        print_json({**receipt.model_dump(mode="json"), "total": receipt.total})
        return
    out().print(f"erased {plain(what)}:")
    table = Table()
    table.add_column("records")
    table.add_column("count", justify="right")
    for name in ("turns", "chunks", "memories", "derived", "history", "jobs"):
        table.add_row(name, str(getattr(receipt, name)))
    table.add_row("total", str(receipt.total), style="bold")
    out().print(table)


@app.command(rich_help_panel="Inspect")
@store_command
def stats(store: StoreOptions, json_out: JsonOpt = False) -> None:
    """Count what the store holds, per tenant: memories by kind, users, sessions, history, jobs.

    Without --tenant every tenant of the store is counted.
    """
    with store.open() as engine:
        tenants = [store.tenant] if store.tenant else engine.tenants()
        found = [engine.run(transfer.tenant_stats(engine.aengine, t)) for t in tenants]
        where = str(engine.path) if engine.path is not None else store.location
    rows = [s for s in found if s is not None]
    if json_out:
        print_json(
            {
                "store": where,
                "tenants": [
                    {
                        "tenant_id": s.tenant_id,
                        "memories": s.memories,
                        "kinds": s.kinds,
                        "users": len(s.users),
                        "sessions": s.sessions,
                        "history": s.history,
                        "jobs": s.jobs,
                        "pending_enrichment": s.pending_enrichment,
                        "expired_not_purged": s.expired,
                    }
                    for s in rows
                ],
            }
        )
        return
    console = out()
    console.print(f"store: {plain(where)} ({plural(len(rows), 'tenant')})")
    for s in rows:
        kinds = ", ".join(plural(n, k) for k, n in sorted(s.kinds.items(), key=_kind_order))
        jobs = ", ".join(f"{n} {status}" for status, n in sorted(s.jobs.items())) or "none"
        console.print(
            f"\n[bold]{plain(s.tenant_id)}[/bold]: {plural(s.memories, 'memory', 'memories')}"
            f" ({plain(kinds) or 'none'})\n"
            f"  {plural(len(s.users), 'user')}, {plural(s.sessions, 'session')}, "
            f"{plural(s.history, 'history row')}\n"
            f"  enrichment: {plural(s.pending_enrichment, 'turn')} pending; jobs: {jobs}"
            + (f"\n  {plural(s.expired, 'expired record')} not purged yet" if s.expired else "")
        )


def _kind_order(item: tuple[str, int]) -> tuple[int, str]:
    order = ("turn", "raw", "chunk", "fact", "episode")
    return (order.index(item[0]) if item[0] in order else len(order), item[0])


__all__ = ["erase", "facts", "search", "sessions", "show", "stats", "users"]
