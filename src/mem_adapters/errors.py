"""Typed errors raised by mem-adapters.

Every error the package raises on purpose derives from :class:`MemAdaptersError`, so an
application can catch one class. Validation errors name the offending field.
"""

from __future__ import annotations


class MemAdaptersError(Exception):
    """Base class of every error raised by mem-adapters."""


class ValidationError(MemAdaptersError, ValueError):
    """Bad input: the message and :attr:`field` name what is wrong.

    Args:
        field: Dotted path of the offending input, e.g. ``"turns[2].timestamp"``.
        message: Human-readable explanation.
    """

    def __init__(self, field: str, message: str) -> None:
        self.field = field
        super().__init__(f"{field}: {message}")


class NotFoundError(MemAdaptersError, KeyError):
    """No memory with the given id exists in the given tenant (or it has expired)."""

    def __str__(self) -> str:  # KeyError quotes its argument; keep the message readable.
        return str(self.args[0]) if self.args else "not found"


class EmbedderMismatchError(MemAdaptersError):
    """The store was written with a different embedder than the one now configured."""


class ModelNotFoundError(MemAdaptersError):
    """The default embedding model files could not be found or downloaded."""


class StoreError(MemAdaptersError):
    """The underlying Chroma store failed or is unusable."""


class JobError(MemAdaptersError):
    """A background enrichment job failed or is unknown."""


class ClosedError(MemAdaptersError, RuntimeError):
    """The engine (or an adapter over it) was used after ``close()``/``aclose()``."""


class InvalidNamespaceError(ValidationError):
    """A LangGraph namespace is not a tuple of non-empty strings (e.g. a bare ``str``)."""

    def __init__(self, message: str) -> None:
        super().__init__("namespace", message)


class TransportError(StoreError):
    """A Chroma server (or the memory service) could not be reached or answered badly."""


class StoreLockedError(StoreError):
    """Another process holds the embedded store's folder; use a Chroma server to share it.

    Args:
        path: The store folder.
        pid: Process id of the holder (``None`` if it could not be read).
    """

    def __init__(self, path: str, pid: int | None) -> None:
        self.path = path
        self.pid = pid
        holder = f"process {pid}" if pid is not None else "another process"
        super().__init__(
            f"the embedded store {path!r} is in use by {holder}; an embedded store has one "
            "writer process: close it there, or run a Chroma server (`chroma run`) and connect "
            "every process to it with host=..."
        )


class LimitExceededError(ValidationError):
    """An input is larger than a configured limit (see :mod:`mem_adapters.limits`)."""
