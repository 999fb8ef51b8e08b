"""``mem-adapters demo``: record a short conversation in the store and recall from it, offline."""

from __future__ import annotations

import logging
import re

import typer

from .app import StoreOptions, app, store_command
from .output import score_text, short_id, when, who

logger = logging.getLogger(__name__)

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
DEMO_K = 3
DEMO_BUDGET = 300
_DATED = re.compile(r"^\[[^\]]*\] ")


def time_ordered(context: str) -> list[str]:
    """The entries of a context string in time order (each entry starts with its ``[date]``).

    Context lines are ``[YYYY-MM-DD HH:MM] speaker: text``, so their prefixes sort by time;
    a line without a prefix continues the entry above it. Ties keep the engine's order.
    """
    entries: list[list[str]] = []
    for line in context.splitlines():
        if _DATED.match(line) or not entries:
            entries.append([line])
        else:
            entries[-1].append(line)
    entries.sort(key=lambda e: e[0].split("]", 1)[0])
    return ["\n".join(e) for e in entries]


@app.command(rich_help_panel="Start here")
@store_command
def demo(store: StoreOptions) -> None:
    """Record a short conversation in the store, then answer three questions from it (offline).

    Each answer lists the hits best first, with their score and the memory that answered,
    then the context a prompt would get, in time order. Scores are rank-fusion values: they
    order the hits of one query and are not similarities (the cosine is shown beside them
    when the engine reports it). Running the demo again writes nothing: the turns are known.
    """
    user = store.user or "dana"
    session = store.session or "demo-session"
    with store.open() as engine:
        turns = [{"role": r, "text": t, "timestamp": ts} for r, t, ts in DEMO_TURNS]
        result = engine.remember(turns, session_id=session, user_id=user, tenant_id=store.tenant_id)
        where = engine.path if engine.path is not None else store.location
        typer.echo(f"stored {result.created} new turns ({result.duplicates} already known) in {where}")
        for question in DEMO_QUESTIONS:
            hits = engine.search(
                question,
                user_id=user,
                tenant_id=store.tenant_id,
                k=DEMO_K,
                mode="context",
                char_budget=DEMO_BUDGET,
            )
            typer.echo(f"\nQ: {question}")
            for rank, item in enumerate(hits.results, 1):
                typer.echo(
                    f"  {rank}. score {score_text(item)}  {item.kind} {short_id(item.id)}  "
                    f"[{when(item.timestamp)}] {who(item)}: {item.text}"
                )
            typer.echo(f"  context for a prompt (time order, at most {DEMO_BUDGET} characters):")
            for entry in time_ordered(hits.context or ""):
                typer.echo("    " + entry.replace("\n", "\n    "))
        transcript = engine.get_messages(session, tenant_id=store.tenant_id)
        typer.echo(f"\ntranscript has {len(transcript)} turns, first: {transcript[0].text!r}")
