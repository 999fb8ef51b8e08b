"""Lifecycle: erasing users and tenants, re-embedding a store, closing the engine."""

from __future__ import annotations

import asyncio
import logging
import os
from typing import Any, TypeVar

from .. import records as rec
from ..data import STAGING_SUFFIX, collection_names
from ..data.erasure import ErasureReport
from ..embeddings import as_embedder
from ..enrichment import Enricher
from ..models import (
    DEFAULT_TENANT,
    EraseReceipt,
)
from .base import (
    EngineBase,
    _require_str,
)

logger = logging.getLogger(__name__)
_E = TypeVar("_E", bound="LifecycleMixin")


class LifecycleMixin(EngineBase):
    """Erase, migration and shutdown."""

    async def erase(self, *, tenant_id: str = DEFAULT_TENANT, user_id: str | None = None) -> EraseReceipt:
        """Erase a whole user (inside a tenant) or, with no ``user_id``, a whole tenant.

        Everything goes: turns, chunks, memories, derived facts/episodes, history rows, jobs.
        """
        _require_str("tenant_id", tenant_id)
        _require_str("user_id", user_id, optional=True)
        receipt = EraseReceipt(tenant_id=tenant_id, user_id=user_id)
        pair = await self.collections(tenant_id, create=False)
        if pair is None:
            if user_id is None:  # a tenant erase killed midway: what it left goes now
                self._copy_erasure(receipt, await (await self.data()).erase_tenant(tenant_id, [], []))
            return receipt
        mem, aux = pair
        user_where = {"user_id": user_id} if user_id is not None else None
        got = await mem.get_all(where=user_where, include=["metadatas"])
        for m in got["metadatas"]:
            kind = m.get("kind")
            if kind == "turn":
                receipt.turns += 1
            elif kind == "chunk":
                receipt.chunks += 1
            elif kind == "raw":
                receipt.memories += 1
            else:
                receipt.derived += 1
        aux_got = await aux.get_all(where=user_where, include=["metadatas"])
        aux_ids = [
            i
            for i, m in zip(aux_got["ids"], aux_got["metadatas"], strict=True)
            if m.get("type") != "tombstone"
        ]
        for m in aux_got["metadatas"]:
            if m.get("type") == "history":
                receipt.history += 1
            elif m.get("type") == "job":
                receipt.jobs += 1
        data = await self.data()
        if user_id is None:
            report = await data.erase_tenant(tenant_id, list(got["ids"]), aux_ids)
        else:
            needles = await data.erasure_needles(tenant_id, list(got["ids"]), aux_ids)
            await self.delete_records(tenant_id, list(got["ids"]))
            await aux.delete(aux_ids)
            await self._forget_erased_sources(tenant_id, got)
            data.drop_user(tenant_id, user_id)
            # Then the files: collections rebuilt, SQLite scrubbed, checked (see data.erasure).
            report = await data.scrub_after_user_erase(tenant_id, needles)
        self._copy_erasure(receipt, report)
        return receipt

    @staticmethod
    def _copy_erasure(receipt: EraseReceipt, report: ErasureReport) -> None:
        """What the data layer did to the files and verified, into the receipt."""
        receipt.verified_on_disk = report.verified_on_disk
        receipt.residue_checks = list(report.residue_checks)
        receipt.bytes_reclaimed = report.bytes_reclaimed
        receipt.note = report.note

    async def _forget_erased_sources(self, tenant_id: str, erased: dict[str, Any]) -> int:
        """Other users' derived records fed by the erased records: regenerated or deleted.

        Users never mix (episodes are per user), but a store enriched by an earlier release can
        hold episodes built from several users' turns; see :meth:`Enricher.forget_sources`.

        Args:
            tenant_id: The tenant erased from.
            erased: The erased records as read from Chroma (``ids`` and ``metadatas``).

        Returns:
            How many derived records were regenerated or deleted.
        """
        sessions = sorted({str(m.get("session_id") or "") for m in erased["metadatas"]})
        enricher = self.enricher if isinstance(self.enricher, Enricher) else Enricher.detached(self.data)
        return await enricher.forget_sources(tenant_id, list(erased["ids"]), sessions)

    async def reembed(self, embedder: Any = None, *, model_dir: str | os.PathLike[str] | None = None) -> int:
        """Re-embed every stored text of every tenant with a new embedder; returns the count.

        Each tenant is copied into a staging collection first, so its data is never only in
        memory; the engine then uses the new embedder.
        """
        new = as_embedder(embedder, model_dir=model_dir)
        store = await self.store()
        total = 0
        for tenant_id in await store.tenants():
            mem_name, _ = collection_names(tenant_id)
            store.forget(tenant_id)
            # Read whatever is stored, whichever embedder wrote it.
            old = await store.get_raw(mem_name)
            got = await old.get_all(include=["documents", "metadatas"])
            ids, docs, metas = list(got["ids"]), list(got["documents"]), list(got["metadatas"])
            loop = asyncio.get_running_loop()
            inputs = [rec.embedding_text(d or "", m) for d, m in zip(docs, metas, strict=True)]
            vectors = await loop.run_in_executor(self._cpu, new.embed_documents, inputs) if docs else []
            meta = {
                "ma_tenant": tenant_id,
                "ma_role": "mem",
                "ma_embedder": new.identity,
                "ma_dim": new.dimension,
                # The records are copied as they are: an older format is still migrated at open.
                "ma_schema": old.metadata.get("ma_schema", 1),
            }
            # Staging first: if the process dies after the drop below, open() restores from it.
            staging = await store.create_raw(f"{mem_name}{STAGING_SUFFIX}", meta)
            if ids:
                await staging.upsert(ids, vectors, docs, metas)
            await store.delete_raw(mem_name)
            target = await store.create_raw(mem_name, meta)
            if ids:
                await target.upsert(ids, vectors, docs, metas)
            await store.delete_raw(f"{mem_name}{STAGING_SUFFIX}")
            total += len(ids)
        self.embedder = new
        store.embedder_identity, store.dimension = new.identity, new.dimension
        for tenant_id in list(store._cache):
            store.forget(tenant_id)
        data = await self.data()
        data.dimension = new.dimension  # partitions hold vectors of the new size
        data.drop_all()
        return total

    async def aclose(self) -> None:
        """Stop background work and release executors; later calls raise ``ClosedError``.

        Background enrichment is cancelled, not drained: its unfinished work stays pending in
        Chroma and the next engine opened on the store finishes it (``await wait_all()``
        first to drain). Idempotent.
        """
        if self._closed:
            return
        self._closed = True
        try:
            if self.enricher is not None and hasattr(self.enricher, "aclose"):
                await self.enricher.aclose()
            if self._data is not None:
                await self._data.aclose()  # snapshots of changed large partitions
        finally:
            self._io.shutdown(wait=False)
            self._cpu.shutdown(wait=False)
            if self._lock is not None:
                self._lock.release()

    async def __aenter__(self: _E) -> _E:
        self._check_open()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()
