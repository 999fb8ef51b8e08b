"""The synchronous :class:`MemoryEngine`: the async engine run on a private event loop.

One implementation serves both APIs, so they cannot drift apart. Calls from any number of
threads are funnelled into the engine's loop, which is what keeps per-session ordering exact
under concurrent writers.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import os
import threading
from collections.abc import Coroutine, Sequence
from typing import Any, Literal, TypeVar

from .async_engine import AsyncMemoryEngine
from .errors import MemAdaptersError
from .models import (
    DEFAULT_TENANT,
    AddResult,
    EraseReceipt,
    HistoryEntry,
    JobStatus,
    MemoryItem,
    Page,
    RecordResult,
    SearchResult,
    Turn,
    WriteResult,
)

T = TypeVar("T")


class _LoopThread:
    """A daemon thread running an event loop that coroutines are submitted to."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, name="mem-adapters-loop", daemon=True)
        self.thread.start()

    def run(self, coro: Coroutine[Any, Any, T]) -> T:
        if threading.current_thread() is self.thread:
            coro.close()
            raise MemAdaptersError("MemoryEngine called from its own event loop; use AsyncMemoryEngine")
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result()

    def stop(self) -> None:
        if self.loop.is_running():
            self.loop.call_soon_threadsafe(self.loop.stop)
            self.thread.join(timeout=5)
        if not self.loop.is_running():
            self.loop.close()


class MemoryEngine:
    """Conversational memory over Chroma, sync API. Same arguments as :class:`AsyncMemoryEngine`.

    Example:
        >>> import tempfile
        >>> engine = MemoryEngine(tempfile.mkdtemp())  # doctest: +SKIP
        >>> turns = [{"role": "user", "text": "I love hiking"}]
        >>> engine.remember(turns, session_id="s1")  # doctest: +SKIP
        >>> engine.search("outdoor hobbies", session_id="s1").results[0].text  # doctest: +SKIP
        'I love hiking'
    """

    def __init__(self, path: str | os.PathLike[str] | None = None, **kwargs: Any) -> None:
        self._loop = _LoopThread()
        try:
            self._async = self._loop.run(self._build(path, kwargs))
        except BaseException:
            self._loop.stop()
            raise

    @staticmethod
    async def _build(path: Any, kwargs: dict[str, Any]) -> AsyncMemoryEngine:
        return AsyncMemoryEngine(path, **kwargs)

    @property
    def aengine(self) -> AsyncMemoryEngine:
        """The async engine this one drives (share it with async code in other loops with care)."""
        return self._async

    @property
    def embedder(self) -> Any:
        """The embedder in use."""
        return self._async.embedder

    @property
    def path(self) -> Any:
        """Folder of the embedded store, or ``None`` for a server/injected client."""
        return self._async.path

    @property
    def loop(self) -> asyncio.AbstractEventLoop:
        """The private event loop that runs :attr:`aengine` (on its own daemon thread)."""
        return self._loop.loop

    @property
    def closed(self) -> bool:
        """Whether :meth:`close` has stopped the engine."""
        return self._loop.loop.is_closed() or not self._loop.thread.is_alive()

    def run(self, coro: Coroutine[Any, Any, T]) -> T:
        """Run a coroutine of :attr:`aengine` on the engine's loop and wait for its result.

        Safe from any thread except the engine's own loop thread, where waiting would deadlock
        (that raises :class:`~mem_adapters.errors.MemAdaptersError`; await the coroutine there).
        """
        return self._loop.run(coro)

    _run = run

    def submit(self, coro: Coroutine[Any, Any, T]) -> concurrent.futures.Future[T]:
        """Schedule a coroutine of :attr:`aengine` on the engine's loop; returns its future.

        Async callers in another event loop await it with ``asyncio.wrap_future(...)``, so they
        never block their own loop.
        """
        return asyncio.run_coroutine_threadsafe(coro, self._loop.loop)

    async def arun(self, coro: Coroutine[Any, Any, T]) -> T:
        """Await a coroutine of :attr:`aengine` from any event loop without blocking it."""
        if asyncio.get_running_loop() is self._loop.loop:
            return await coro  # already on the engine's loop
        return await asyncio.wrap_future(self.submit(coro))

    def remember(self, turns: Sequence[Turn | dict[str, Any]], *, session_id: str, **kw: Any) -> WriteResult:
        """Write a batch of turns. See :meth:`AsyncMemoryEngine.remember`."""
        return self._run(self._async.remember(turns, session_id=session_id, **kw))

    def record_message(self, conversation_id: str, role: str, content: str, **kw: Any) -> RecordResult:
        """Record one message. See :meth:`AsyncMemoryEngine.record_message`."""
        return self._run(self._async.record_message(conversation_id, role, content, **kw))

    def add(self, **kw: Any) -> AddResult:
        """Store raw text or pairs. See :meth:`AsyncMemoryEngine.add`."""
        return self._run(self._async.add(**kw))

    def get(self, memory_id: str, *, tenant_id: str = DEFAULT_TENANT) -> MemoryItem:
        """One memory. See :meth:`AsyncMemoryEngine.get`."""
        return self._run(self._async.get(memory_id, tenant_id=tenant_id))

    def get_many(self, ids: Sequence[str], *, tenant_id: str = DEFAULT_TENANT) -> list[MemoryItem]:
        """Memories by id. See :meth:`AsyncMemoryEngine.get_many`."""
        return self._run(self._async.get_many(ids, tenant_id=tenant_id))

    def list(
        self, filters: dict[str, Any] | None = None, page: int = 1, page_size: int = 50, **kw: Any
    ) -> Page:
        """A page of memories. See :meth:`AsyncMemoryEngine.list`."""
        return self._run(self._async.list(filters, page, page_size, **kw))

    def update(
        self,
        memory_id: str,
        text: str | None = None,
        metadata: dict[str, Any] | None = None,
        *,
        tenant_id: str = DEFAULT_TENANT,
    ) -> MemoryItem:
        """Patch a memory. See :meth:`AsyncMemoryEngine.update`."""
        return self._run(self._async.update(memory_id, text, metadata, tenant_id=tenant_id))

    def delete(self, memory_id: str, *, tenant_id: str = DEFAULT_TENANT) -> None:
        """Delete a memory. See :meth:`AsyncMemoryEngine.delete`."""
        return self._run(self._async.delete(memory_id, tenant_id=tenant_id))

    def history(self, memory_id: str, *, tenant_id: str = DEFAULT_TENANT) -> list[HistoryEntry]:
        """Versions of a memory. See :meth:`AsyncMemoryEngine.history`."""
        return self._run(self._async.history(memory_id, tenant_id=tenant_id))

    def get_messages(self, session_id: str, **kw: Any) -> list[MemoryItem]:
        """A session transcript. See :meth:`AsyncMemoryEngine.get_messages`."""
        return self._run(self._async.get_messages(session_id, **kw))

    def count_turns(self, session_id: str, **kw: Any) -> int:
        """Turns in a session. See :meth:`AsyncMemoryEngine.count_turns`."""
        return self._run(self._async.count_turns(session_id, **kw))

    def archive_oldest(self, session_id: str, n: int, **kw: Any) -> list[str]:
        """Archive the oldest turns. See :meth:`AsyncMemoryEngine.archive_oldest`."""
        return self._run(self._async.archive_oldest(session_id, n, **kw))

    def delete_oldest(self, session_id: str, n: int, **kw: Any) -> list[str]:
        """Delete the oldest turns. See :meth:`AsyncMemoryEngine.delete_oldest`."""
        return self._run(self._async.delete_oldest(session_id, n, **kw))

    def set_status(self, ids: Sequence[str], status: Literal["active", "archived"], **kw: Any) -> list[str]:
        """Set turn status. See :meth:`AsyncMemoryEngine.set_status`."""
        return self._run(self._async.set_status(ids, status, **kw))

    def touch(
        self, ids: Sequence[str], expiry_seconds: float, *, tenant_id: str = DEFAULT_TENANT
    ) -> list[str]:
        """Slide the expiry of memories. See :meth:`AsyncMemoryEngine.touch`."""
        return self._run(self._async.touch(ids, expiry_seconds, tenant_id=tenant_id))

    def delete_many(self, ids: Sequence[str], *, tenant_id: str = DEFAULT_TENANT) -> list[str]:
        """Delete several memories. See :meth:`AsyncMemoryEngine.delete_many`."""
        return self._run(self._async.delete_many(ids, tenant_id=tenant_id))

    def tenants(self) -> list[str]:
        """Tenants in the store. See :meth:`AsyncMemoryEngine.tenants`."""
        return self._run(self._async.tenants())

    def list_sessions(self, **kw: Any) -> list[str]:
        """Sessions holding turns. See :meth:`AsyncMemoryEngine.list_sessions`."""
        return self._run(self._async.list_sessions(**kw))

    def clear_session(self, session_id: str, *, tenant_id: str = DEFAULT_TENANT) -> int:
        """Delete a session. See :meth:`AsyncMemoryEngine.clear_session`."""
        return self._run(self._async.clear_session(session_id, tenant_id=tenant_id))

    def erase(self, *, tenant_id: str = DEFAULT_TENANT, user_id: str | None = None) -> EraseReceipt:
        """Erase a user or tenant. See :meth:`AsyncMemoryEngine.erase`."""
        return self._run(self._async.erase(tenant_id=tenant_id, user_id=user_id))

    def search(self, query: str, **kw: Any) -> SearchResult:
        """Search memories. See :meth:`AsyncMemoryEngine.search`."""
        return self._run(self._async.search(query, **kw))

    def reembed(self, embedder: Any = None, **kw: Any) -> int:
        """Migrate to a new embedder. See :meth:`AsyncMemoryEngine.reembed`."""
        return self._run(self._async.reembed(embedder, **kw))

    def purge_expired(self, tenant_id: str = DEFAULT_TENANT) -> int:
        """Delete expired records now. See :meth:`AsyncMemoryEngine.purge_expired`."""
        return self._run(self._async.purge_expired(tenant_id, force=True))

    def job_status(self, job_id: str, *, tenant_id: str = DEFAULT_TENANT) -> JobStatus:
        """State of an enrichment job. See :meth:`AsyncMemoryEngine.job_status`."""
        return self._run(self._async.job_status(job_id, tenant_id=tenant_id))

    def wait(
        self, job_id: str, timeout: float | None = None, *, tenant_id: str = DEFAULT_TENANT
    ) -> JobStatus:
        """Wait for an enrichment job. See :meth:`AsyncMemoryEngine.wait`."""
        return self._run(self._async.wait(job_id, timeout, tenant_id=tenant_id))

    def wait_all(self, timeout: float | None = None) -> None:
        """Wait for all enrichment. See :meth:`AsyncMemoryEngine.wait_all`."""
        return self._run(self._async.wait_all(timeout))

    def end_session(self, session_id: str, **kw: Any) -> MemoryItem | None:
        """Close a session's open episode. See :meth:`AsyncMemoryEngine.end_session`."""
        return self._run(self._async.end_session(session_id, **kw))

    def close(self) -> None:
        """Stop background work and the private event loop."""
        if self._loop.loop.is_closed():
            return
        self._run(self._async.aclose())
        self._loop.stop()

    def __enter__(self) -> MemoryEngine:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


__all__ = ["MemoryEngine"]
