"""``mem-adapters doctor``: is everything the engine needs where it should be?"""

from __future__ import annotations

import logging
import os
import platform
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.table import Table

from .. import transfer
from ..errors import MemAdaptersError
from .app import MODEL_DIR_ENV, StoreOptions, app, store_command
from .errors import describe, one_line
from .output import out, plain, print_json

logger = logging.getLogger(__name__)


@dataclass
class Check:
    """One line of the doctor's report."""

    name: str
    ok: bool
    detail: str


def _size(path: Path) -> str:
    total = sum(f.stat().st_size for f in path.rglob("*") if f.is_file())
    return f"{total / 1e6:.1f} MB"


def _model(store: StoreOptions) -> Check:
    from ..embeddings import CHROMA_CACHE_DIR, resolve_model_dir

    try:
        found = resolve_model_dir(store.model_dir, download=False)
    except MemAdaptersError as e:
        return Check("model", False, one_line(str(e)))
    env = os.environ.get(MODEL_DIR_ENV)
    if store.model_dir is None:
        source = "Chroma's cache" if found == CHROMA_CACHE_DIR else "default"
    elif env and Path(env).expanduser() == Path(store.model_dir).expanduser():
        source = f"${MODEL_DIR_ENV}"
    else:
        source = "--model-dir"
    return Check("model", True, f"{found} (from {source})")


def _chroma(store: StoreOptions) -> Check:
    import chromadb

    if store.chroma_host:
        try:
            client = chromadb.HttpClient(host=store.chroma_host, port=store.chroma_port)
            client.heartbeat()
            version = client.get_version()
        except Exception as e:
            return Check("chroma", False, f"{store.location} unreachable: {one_line(str(e))}")
        return Check("chroma", True, f"{store.location} reachable (Chroma {version})")
    path = Path(store.location)
    if not path.exists():
        return Check("chroma", True, f"embedded Chroma {chromadb.__version__}; no store yet at {path} "
                     "(created on first write)")  # fmt: skip
    return Check("chroma", True, f"embedded Chroma {chromadb.__version__}, store at {path} ({_size(path)})")


def _store(store: StoreOptions) -> list[Check]:
    checks: list[Check] = []
    try:
        engine = store.open()
    except MemAdaptersError as e:
        return [Check("store", False, describe(e))]
    with engine:
        identity, dim = engine.embedder.identity, engine.embedder.dimension
        checks.append(Check("embedder", True, f"{identity} (dimension {dim})"))
        try:
            tenants = engine.tenants()
        except MemAdaptersError as e:
            return [*checks, Check("store", False, describe(e))]
        schemas: dict[Any, int] = {}
        for tenant_id in tenants:
            try:
                meta = engine.run(transfer.tenant_format(engine.aengine, tenant_id)) or {}
            except MemAdaptersError as e:
                checks.append(Check(f"tenant {tenant_id}", False, one_line(str(e))))
                continue
            schemas[meta.get("ma_schema")] = schemas.get(meta.get("ma_schema"), 0) + 1
        if not tenants:
            checks.append(Check("store format", True, "empty store (no tenants yet)"))
        else:
            versions = ", ".join(f"version {v}: {n} tenants" for v, n in sorted(schemas.items(), key=str))
            checks.append(Check("store format", len(schemas) <= 1, f"{len(tenants)} tenants; {versions}"))
    return checks


@app.command(rich_help_panel="Tools")
@store_command
def doctor(
    store: StoreOptions,
    json_out: Annotated[bool, typer.Option("--json", help="Print the checks as JSON.")] = False,
) -> None:
    """Check the installation: model, Chroma, store format, embedder.

    Reports where the embedding model was found, whether Chroma is reachable, the store's
    format version and the embedder it was written with. Exits with 1 if a check fails.
    """
    from .. import __version__

    checks = [
        Check("versions", True, f"mem-adapters {__version__}, Python {platform.python_version()}"),
        _model(store),
        _chroma(store),
    ]
    if checks[1].ok and checks[2].ok:
        checks += _store(store)
    else:
        checks.append(Check("store", False, "not opened: fix the checks above first"))
    failed = [c for c in checks if not c.ok]
    if json_out:
        print_json({"ok": not failed, "checks": [asdict(c) for c in checks]})
    else:
        table = Table(show_header=False, box=None, pad_edge=False)
        table.add_column("status", no_wrap=True)
        table.add_column("check", no_wrap=True)
        table.add_column("detail", overflow="fold")
        for c in checks:
            table.add_row("[green]ok[/green]" if c.ok else "[red]FAIL[/red]", c.name, plain(c.detail))
        out().print(table)
    if failed:
        raise typer.Exit(1)
