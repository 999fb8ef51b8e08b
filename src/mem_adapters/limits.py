"""Documented, configurable limits: input sizes checked before any write, and transport settings.

Every write is checked against these before anything reaches Chroma, so an oversized input
is a :class:`~mem_adapters.errors.LimitExceededError` (a ``ValidationError``) and nothing is
written. Give an engine its own with ``AsyncMemoryEngine(..., limits=Limits(...))`` (or
``MemoryEngine``); the defaults are :data:`DEFAULT_LIMITS`.

Metadata keys past :attr:`Limits.max_indexed_keys` are stored (the exact JSON copy keeps
them, reads return them) but not indexed for filters: Chroma indexes every metadata key of
a record, and a record with thousands of keys made every later write (and, after a restart,
every read) of its tenant fail.
"""

from __future__ import annotations

import logging

from pydantic import BaseModel, ConfigDict, Field

logger = logging.getLogger(__name__)

KB = 1024
MB = 1024 * KB


class Limits(BaseModel):
    """Limits of one engine (sizes are UTF-8 bytes).

    Attributes:
        max_turn_bytes: Text of one turn or observation (also ``record_message`` content).
        max_raw_bytes: Text of one ``add()`` (raw text or the joined pairs) and ``update()`` text.
        max_metadata_bytes: Caller metadata of one record, serialized as compact JSON.
        max_metadata_depth: Nesting depth of caller metadata (a flat dict is depth 1).
        max_indexed_keys: Top-level caller metadata keys indexed for filters; the rest are
            stored, not indexed (the first ones in the dict's order are indexed).
        max_id_bytes: Any id or scope value (tenant, user, session, memory id...).
        max_query_bytes: A search query.
        max_batch_turns: Turns in one ``remember()`` batch.
        connect_timeout: Seconds to connect to a Chroma server (clients the engine builds).
        read_timeout: Seconds to wait for a Chroma server's answer (clients the engine builds).
        write_retries: Extra attempts of an idempotent write after a transport failure.
        retry_backoff: Seconds before the first retry; doubled before each next one.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    max_turn_bytes: int = Field(default=256 * KB, ge=1)
    max_raw_bytes: int = Field(default=4 * MB, ge=1)
    max_metadata_bytes: int = Field(default=64 * KB, ge=2)
    max_metadata_depth: int = Field(default=16, ge=1)
    max_indexed_keys: int = Field(default=256, ge=0)
    max_id_bytes: int = Field(default=1 * KB, ge=1)
    max_query_bytes: int = Field(default=32 * KB, ge=1)
    max_batch_turns: int = Field(default=50_000, ge=1)
    connect_timeout: float = Field(default=5.0, gt=0, allow_inf_nan=False)
    read_timeout: float = Field(default=30.0, gt=0, allow_inf_nan=False)
    write_retries: int = Field(default=3, ge=0)
    retry_backoff: float = Field(default=0.25, ge=0, allow_inf_nan=False)


DEFAULT_LIMITS = Limits()
