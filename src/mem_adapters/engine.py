"""The synchronous :class:`MemoryEngine`: the async engine run on a private event loop.

One implementation serves both APIs, so they cannot drift apart. Calls from any number of
threads are funnelled into the engine's loop, which is what keeps per-session ordering exact
under concurrent writers.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import concurrent.futures.thread  # registers its exit hook before ours (they run last-first)
import logging
import os
import threading
from collections.abc import Coroutine, Sequence
from typing import Any, Literal, TypeVar

from .async_engine import AsyncMemoryEngine
from .enrichment.job_list import JobPage
from .errors import ClosedError, MemAdaptersError
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

logger = logging.getLogger(__name__)

T = TypeVar("T")

_EXIT_TIMEOUT = 10.0  # seconds an engine left open may take to stop at interpreter exit


class _LoopThread:
    """A daemon thread running an event loop that coroutines are submitted to.

    Args:
        name: What the loop serves, for error messages.
    """

    def __init__(self, name: str = "MemoryEngine") -> None:
        self.name = name
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, name="mem-adapters-loop", daemon=True)
        self.aengine: AsyncMemoryEngine | None = None
        self.closed = False
        self._close_lock = threading.Lock()
        self.thread.start()

    def _refuse(self, coro: Coroutine[Any, Any, Any]) -> ClosedError:
        coro.close()  # never scheduled: no "coroutine was never awaited" warning
        return ClosedError(f"{self.name} is closed")

    def submit(self, coro: Coroutine[Any, Any, T]) -> concurrent.futures.Future[T]:
        if self.closed or self.loop.is_closed():
            raise self._refuse(coro)
        try:
            return asyncio.run_coroutine_threadsafe(coro, self.loop)
        except RuntimeError:  # the loop closed between the check and the call
            raise self._refuse(coro) from None

    def run(self, coro: Coroutine[Any, Any, T]) -> T:
        if threading.current_thread() is self.thread:
            coro.close()
            raise MemAdaptersError("MemoryEngine called from its own event loop; use AsyncMemoryEngine")
        future = self.submit(coro)
        try:
            return future.result()
        except concurrent.futures.CancelledError:
            if self.closed:  # close() cancelled it: report why, not a bare CancelledError
                raise ClosedError(f"{self.name} was closed during the call") from None
            raise

    async def _shutdown(self) -> None:
        """Stop background work, then cancel whatever else still runs on the loop."""
        try:
            if self.aengine is not None:
                await self.aengine.aclose()
        finally:
            me = asyncio.current_task()
            rest = [t for t in asyncio.all_tasks() if t is not me]
            for task in rest:
                task.cancel()
            # Awaited, so no "Task was destroyed but it is pending!" when the loop closes.
            await asyncio.gather(*rest, return_exceptions=True)

    def close(self, timeout: float | None = None) -> None:
        """Refuse new calls, stop the engine's background work and the loop; idempotent."""
        with self._close_lock:
            if self.closed:
                return
            self.closed = True
        _OPEN.discard(self)
        try:
            if self.loop.is_running() and threading.current_thread() is not self.thread:
                asyncio.run_coroutine_threadsafe(self._shutdown(), self.loop).result(timeout)
        finally:
            self.stop()

    def stop(self) -> None:
        self.closed = True
        _OPEN.discard(self)
        if self.loop.is_running():
            self.loop.call_soon_threadsafe(self.loop.stop)
            self.thread.join(timeout=5)
        if not self.loop.is_running() and not self.loop.is_closed():
            self.loop.close()


# Loops of engines not closed yet. An engine the application forgot to close is closed at
# interpreter exit, before the executors it uses shut down: its background enrichment then
# stops quietly and its unfinished work stays pending in Chroma for the next open. (Strong
# references: a running loop keeps its engine alive anyway.)
_OPEN: set[_LoopThread] = set()


def _close_open_engines() -> None:
    for loop in list(_OPEN):
        try:
            loop.close(timeout=_EXIT_TIMEOUT)
        except Exception:  # exiting: nothing useful to do about it, and nothing to print
            logger.debug("closing an engine at exit failed", exc_info=True)


# threading's exit hooks run before the atexit module's and last-registered first, so this
# runs before concurrent.futures shuts its executors down (imported above for that reason).
threading._register_atexit(_close_open_engines)  # type: ignore[attr-defined]


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
        self._loop.aengine = self._async
        _OPEN.add(self._loop)

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
        return self._loop.closed or self._loop.loop.is_closed() or not self._loop.thread.is_alive()

    def run(self, coro: Coroutine[Any, Any, T]) -> T:
        """Run a coroutine of :attr:`aengine` on the engine's loop and wait for its result.

        Safe from any thread except the engine's own loop thread, where waiting would deadlock
        (that raises :class:`~mem_adapters.errors.MemAdaptersError`; await the coroutine there).

        Raises:
            ClosedError: the engine is closed (or was closed while the call ran).
        """
        return self._loop.run(coro)

    _run = run

    def submit(self, coro: Coroutine[Any, Any, T]) -> concurrent.futures.Future[T]:
        """Schedule a coroutine of :attr:`aengine` on the engine's loop; returns its future.

        Async callers in another event loop await it with ``asyncio.wrap_future(...)``, so they
        never block their own loop.

        Raises:
            ClosedError: the engine is closed.
        """
        return self._loop.submit(coro)

    async def arun(self, coro: Coroutine[Any, Any, T]) -> T:
        """Await a coroutine of :attr:`aengine` from any event loop without blocking it.

        Raises:
            ClosedError: the engine is closed (or was closed while the call ran).
        """
        if self._loop.closed:
            raise self._loop._refuse(coro)
        if asyncio.get_running_loop() is self._loop.loop:
            return await coro  # already on the engine's loop
        try:
            return await asyncio.wrap_future(self.submit(coro))
        except asyncio.CancelledError:
            cancelling = getattr(asyncio.current_task(), "cancelling", None)  # Python >= 3.11
            if self._loop.closed and not (cancelling is not None and cancelling()):
                raise ClosedError("MemoryEngine was closed during the call") from None
            raise

    def remember(self, turns: Sequence[Turn | dict[str, Any]], *, session_id: str, **kw: Any) -> WriteResult:
        """Write a batch of turns. See :meth:`AsyncMemoryEngine.remember`."""
        return self._run(self._async.remember(turns, session_id=session_id, **kw))

    def record_message(self, conversation_id: str, role: str, content: str, **kw: Any) -> RecordResult:
        """Record one message. See :meth:`AsyncMemoryEngine.record_message`."""
        return self._run(self._async.record_message(conversation_id, role, content, **kw))

    def add(self, **kw: Any) -> AddResult:
        """Store raw text or pairs. See :meth:`AsyncMemoryEngine.add`."""
        return self._run(self._async.add(**kw))

    def get(self, memory_id: str, *, tenant_id: str = DEFAULT_TENANT, **scope: str | None) -> MemoryItem:
        """One memory, by stored or caller id. See :meth:`AsyncMemoryEngine.get`."""
        return self._run(self._async.get(memory_id, tenant_id=tenant_id, **scope))

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

    def history(
        self, memory_id: str, *, tenant_id: str = DEFAULT_TENANT, **scope: str | None
    ) -> list[HistoryEntry]:
        """Versions of a memory, by stored or caller id. See :meth:`AsyncMemoryEngine.history`."""
        return self._run(self._async.history(memory_id, tenant_id=tenant_id, **scope))

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

    def clear_session(
        self, session_id: str, *, tenant_id: str = DEFAULT_TENANT, user_id: str | None = None
    ) -> int:
        """Delete a session (or one user's part of it). See :meth:`AsyncMemoryEngine.clear_session`."""
        return self._run(self._async.clear_session(session_id, tenant_id=tenant_id, user_id=user_id))

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

    def job_status(self, job_id: str, *, tenant_id: str | None = None) -> JobStatus:
        """State of an enrichment job. See :meth:`AsyncMemoryEngine.job_status`."""
        return self._run(self._async.job_status(job_id, tenant_id=tenant_id))

    def list_jobs(
        self,
        page: int = 1,
        page_size: int = 50,
        *,
        tenant_id: str = DEFAULT_TENANT,
        status: str | None = None,
        user_id: str | None = None,
    ) -> JobPage:
        """A tenant's enrichment jobs, newest first. See :meth:`AsyncMemoryEngine.list_jobs`."""
        return self._run(
            self._async.list_jobs(page, page_size, tenant_id=tenant_id, status=status, user_id=user_id)
        )

    def wait(self, job_id: str, timeout: float | None = None, *, tenant_id: str | None = None) -> JobStatus:
        """Wait for an enrichment job. See :meth:`AsyncMemoryEngine.wait`."""
        return self._run(self._async.wait(job_id, timeout, tenant_id=tenant_id))

    def wait_all(self, timeout: float | None = None) -> None:
        """Wait for all enrichment. See :meth:`AsyncMemoryEngine.wait_all`."""
        return self._run(self._async.wait_all(timeout))

    def end_session(self, session_id: str, **kw: Any) -> MemoryItem | None:
        """Close a session's open episode. See :meth:`AsyncMemoryEngine.end_session`."""
        return self._run(self._async.end_session(session_id, **kw))

    def close(self) -> None:
        """Stop background work and the private event loop; later calls raise ``ClosedError``.

        Background enrichment is cancelled, not drained: its unfinished work stays pending in
        Chroma and the next engine opened on the store finishes it (call :meth:`wait_all`
        first to drain). Calls still running in other threads end with ``ClosedError``.
        Idempotent; an engine never closed is closed this way at interpreter exit.
        """
        if threading.current_thread() is self._loop.thread:
            raise MemAdaptersError("MemoryEngine.close() called from its own event loop")
        self._loop.close()

    def __enter__(self) -> MemoryEngine:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


__all__ = ["MemoryEngine"]
