"""The Typer app, its global options, and the store options every store command shares.

A store command is declared with :func:`store_command`: it receives one :class:`StoreOptions`
argument named ``store`` and gets the same ``--path``, ``--chroma-host``, ``--chroma-port``,
``--model-dir``, ``--tenant``, ``--user`` and ``--session`` options as every other one.
Later subcommands (``serve``, ``mcp``, ``bench scale``) extend :data:`app` the same way.
"""

from __future__ import annotations

import functools
import inspect
import logging
import os
import platform
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, TypeVar

import typer

from ..models import DEFAULT_TENANT
from .errors import DEBUG_KEY, ErrorReportingGroup

logger = logging.getLogger(__name__)

F = TypeVar("F", bound=Callable[..., Any])

PATH_ENV = "MEM_ADAPTERS_PATH"
HOST_ENV = "MEM_ADAPTERS_CHROMA_HOST"
PORT_ENV = "MEM_ADAPTERS_CHROMA_PORT"
MODEL_DIR_ENV = "MEM_ADAPTERS_MODEL_DIR"
DEBUG_ENV = "MEM_ADAPTERS_DEBUG"
STORE_PANEL = "Store and scope"

app = typer.Typer(
    name="mem-adapters",
    cls=ErrorReportingGroup,
    help="Local, offline conversational memory over Chroma: record, import, search, inspect, export.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode="markdown",
)


def _version(value: bool) -> None:
    if value:
        import chromadb

        from .. import __version__

        typer.echo(
            f"mem-adapters {__version__} (chromadb {chromadb.__version__}, "
            f"Python {platform.python_version()})"
        )
        raise typer.Exit()


@app.callback()
def _root(
    ctx: typer.Context,
    version: Annotated[
        bool,
        typer.Option("--version", callback=_version, is_eager=True, help="Print the version and exit."),
    ] = False,
    verbose: Annotated[bool, typer.Option("--verbose", "-v", help="Log at INFO level on stderr.")] = False,
    debug: Annotated[
        bool,
        typer.Option("--debug", envvar=DEBUG_ENV, help="Show the full traceback of an error."),
    ] = False,
) -> None:
    """Local, offline conversational memory over Chroma: record, import, search, inspect, export."""
    ctx.meta[DEBUG_KEY] = debug
    logging.basicConfig(
        level=logging.DEBUG if debug else logging.INFO if verbose else logging.WARNING,
        format="%(levelname)s %(name)s: %(message)s",
    )


@dataclass(frozen=True)
class StoreOptions:
    """Where the store is and which scope a command acts on."""

    path: Path | None = None
    chroma_host: str | None = None
    chroma_port: int = 8000
    model_dir: Path | None = None
    tenant: str | None = None
    user: str | None = None
    session: str | None = None

    @property
    def tenant_id(self) -> str:
        """The tenant named by ``--tenant``, else the default one."""
        return self.tenant or DEFAULT_TENANT

    @property
    def location(self) -> str:
        """The store, as a person would name it."""
        if self.chroma_host:
            return f"Chroma server {self.chroma_host}:{self.chroma_port}"
        from ..async_engine import DEFAULT_PATH

        return str(self.path or os.environ.get(PATH_ENV) or DEFAULT_PATH)

    def open(self, **kwargs: Any) -> Any:
        """A :class:`~mem_adapters.MemoryEngine` on this store (the caller closes it).

        Raises:
            ModelNotFoundError: the embedding model is not found (the message names remedies).
            StoreError: the Chroma server cannot be reached.
        """
        from ..engine import MemoryEngine
        from ..errors import TransportError

        if self.model_dir is not None:
            kwargs.setdefault("model_dir", self.model_dir)
        if self.chroma_host:
            import chromadb

            try:
                client = chromadb.HttpClient(host=self.chroma_host, port=self.chroma_port)
            except Exception as e:  # chromadb checks the server when the client is made
                raise TransportError(
                    f"cannot reach the Chroma server at {self.chroma_host}:{self.chroma_port}: {e}"
                ) from e
            return MemoryEngine(client=client, **kwargs)
        return MemoryEngine(self.path, **kwargs)


_OPTION_HELP = {
    "path": f"Folder of the embedded store (default ${PATH_ENV}, else ./.mem_adapters).",
    "chroma_host": "Use the Chroma server at this host instead of an embedded store.",
    "chroma_port": "Port of the Chroma server.",
    "model_dir": "Folder of the all-MiniLM-L6-v2 ONNX files (model.onnx, tokenizer.json).",
    "tenant": "Tenant (isolation boundary); default: the default tenant.",
    "user": "User id.",
    "session": "Session id.",
}

_STORE_PARAMS = [
    inspect.Parameter(
        "path",
        inspect.Parameter.KEYWORD_ONLY,
        default=None,
        annotation=Annotated[
            Path | None,
            typer.Option(
                "--path",
                envvar=PATH_ENV,
                help=_OPTION_HELP["path"],
                rich_help_panel=STORE_PANEL,
                show_default=False,
            ),
        ],
    ),
    inspect.Parameter(
        "chroma_host",
        inspect.Parameter.KEYWORD_ONLY,
        default=None,
        annotation=Annotated[
            str | None,
            typer.Option(
                "--chroma-host",
                envvar=HOST_ENV,
                help=_OPTION_HELP["chroma_host"],
                rich_help_panel=STORE_PANEL,
            ),
        ],
    ),
    inspect.Parameter(
        "chroma_port",
        inspect.Parameter.KEYWORD_ONLY,
        default=8000,
        annotation=Annotated[
            int,
            typer.Option(
                "--chroma-port",
                envvar=PORT_ENV,
                help=_OPTION_HELP["chroma_port"],
                rich_help_panel=STORE_PANEL,
            ),
        ],
    ),
    inspect.Parameter(
        "model_dir",
        inspect.Parameter.KEYWORD_ONLY,
        default=None,
        annotation=Annotated[
            Path | None,
            typer.Option(
                "--model-dir",
                envvar=MODEL_DIR_ENV,
                help=_OPTION_HELP["model_dir"],
                rich_help_panel=STORE_PANEL,
                show_default=False,
            ),
        ],
    ),
    *(
        inspect.Parameter(
            name,
            inspect.Parameter.KEYWORD_ONLY,
            default=None,
            annotation=Annotated[
                str | None,
                typer.Option(f"--{name}", help=_OPTION_HELP[name], rich_help_panel=STORE_PANEL),
            ],
        )
        for name in ("tenant", "user", "session")
    ),
]
_STORE_NAMES = [p.name for p in _STORE_PARAMS]


def store_command(fn: F) -> F:
    """Give a command the shared store options; it receives them as ``store: StoreOptions``.

    Use under ``@app.command()`` (or another Typer's)::

        @app.command()
        @store_command
        def users(store: StoreOptions, json_out: bool = False) -> None: ...
    """
    sig = inspect.signature(fn, eval_str=True)
    if "store" not in sig.parameters:
        raise TypeError(f"{fn.__name__} needs a 'store' parameter")
    own = [p for p in sig.parameters.values() if p.name != "store"]
    clash = {p.name for p in own} & set(_STORE_NAMES)
    if clash:
        raise TypeError(f"{fn.__name__} redefines store options {sorted(clash)}")

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        opts = StoreOptions(**{name: kwargs.pop(name) for name in _STORE_NAMES})
        return fn(*args, store=opts, **kwargs)

    wrapper.__signature__ = sig.replace(parameters=[*own, *_STORE_PARAMS])  # type: ignore[attr-defined]
    wrapper.__annotations__ = {}
    return wrapper  # type: ignore[return-value]


def require(value: str | None, option: str, what: str) -> str:
    """The value of a scope option a command needs.

    Raises:
        typer.BadParameter: the option was not given.
    """
    if not value:
        raise typer.BadParameter(f"{what} needs {option}", param_hint=option)
    return value
