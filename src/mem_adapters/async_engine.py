"""The engine's one implementation: :class:`AsyncMemoryEngine`.

:class:`mem_adapters.MemoryEngine` runs this same code on a private event loop, so sync and
async behave identically. The class only composes the engine's parts (:mod:`mem_adapters.ops`:
writes, reads, history, changes, search, lifecycle); Chroma and every derived index are behind
:mod:`mem_adapters.data`; the embedder runs in a small bounded executor so the event loop never
blocks.

Ordering: every write gets ``seq`` from a hybrid logical clock (wall-clock nanoseconds, forced
strictly increasing inside the process). Within a process ``seq`` is write order; across
processes it is write-time order, ties broken by id. Re-sent turns keep their first ``seq``.
"""

from .errors import MemAdaptersError
from .ops.base import DEFAULT_PATH, PATH_ENV
from .ops.changes import ChangesMixin
from .ops.history import HistoryMixin
from .ops.lifecycle import LifecycleMixin
from .ops.reads import ReadsMixin
from .ops.search import SearchMixin
from .ops.writes import WritesMixin


class AsyncMemoryEngine(WritesMixin, ReadsMixin, HistoryMixin, ChangesMixin, SearchMixin, LifecycleMixin):
    """Conversational memory over Chroma, async API.

    Args:
        path: Folder of an embedded persistent Chroma (default ``$MEM_ADAPTERS_PATH`` or
            ``.mem_adapters/`` in the working directory). Ignored when ``client`` or ``host``
            is given.
        client: Any chromadb client: ``PersistentClient``, ``HttpClient``, or an
            ``AsyncClientAPI`` from ``await chromadb.AsyncHttpClient(...)``.
        host: Chroma server host; the engine then opens an ``AsyncHttpClient`` itself.
        port: Chroma server port (with ``host``).
        embedder: An :class:`~mem_adapters.embeddings.Embedder`, a LangChain ``Embeddings``,
            a LlamaIndex ``BaseEmbedding`` or a Chroma ``EmbeddingFunction``; default
            all-MiniLM-L6-v2 ONNX.
        model_dir: Folder of the default model's ONNX files (else ``$MEM_ADAPTERS_MODEL_DIR``,
            Chroma's cache, Chroma's downloader).
        max_workers: Size of the executor that runs a sync Chroma client's calls.
        enricher: Background enrichment (see :mod:`mem_adapters.enrichment`); ``None`` disables it.
        partition_budget_mb: Memory budget of the derived search partitions held by this
            process (default ``$MEM_ADAPTERS_PARTITION_BUDGET_MB`` or 1024); least recently
            used partitions are evicted past it and reloaded on their next search.
        snapshot_dir: Folder of derived partition snapshots, which let a new process search a
            large store at once (default: ``.mem_adapters-derived`` inside an embedded store's
            folder; none for a server unless given).
        limits: Input sizes, Chroma timeouts and write retries
            (:class:`mem_adapters.limits.Limits`; see the README's "Limits").

    Example:
        >>> import asyncio, tempfile
        >>> async def demo():
        ...     engine = AsyncMemoryEngine(tempfile.mkdtemp())
        ...     await engine.remember([{"role": "user", "text": "I love hiking"}], session_id="s1")
        ...     hits = await engine.search("outdoor hobbies", session_id="s1")
        ...     await engine.aclose()
        ...     return hits.results[0].text
        >>> asyncio.run(demo())  # doctest: +SKIP
        'I love hiking'
    """


__all__ = ["DEFAULT_PATH", "PATH_ENV", "AsyncMemoryEngine", "MemAdaptersError"]
