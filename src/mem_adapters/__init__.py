"""mem-adapters: local, offline, exact conversational memory over Chroma.

Example:
    >>> from mem_adapters import MemoryEngine
    >>> engine = MemoryEngine()  # doctest: +SKIP
    >>> turns = [{"role": "user", "text": "I'm allergic to shellfish"}]
    >>> engine.remember(turns, session_id="s1")  # doctest: +SKIP
    >>> engine.search("what to avoid eating?", session_id="s1").results[0].text  # doctest: +SKIP
    "I'm allergic to shellfish"
"""

from .async_engine import AsyncMemoryEngine
from .embeddings import Embedder, OnnxMiniLMEmbedder, as_embedder
from .engine import MemoryEngine
from .errors import (
    ClosedError,
    EmbedderMismatchError,
    InvalidNamespaceError,
    JobError,
    MemAdaptersError,
    ModelNotFoundError,
    NotFoundError,
    StoreError,
    TransportError,
    ValidationError,
)
from .models import (
    AddResult,
    EraseReceipt,
    HistoryEntry,
    JobStatus,
    MemoryItem,
    Observation,
    Page,
    RecordResult,
    Scope,
    ScoreParts,
    SearchResult,
    Turn,
    Usage,
    WriteResult,
)

__version__ = "0.1.0"

__all__ = [
    "AddResult",
    "AsyncMemoryEngine",
    "ClosedError",
    "Embedder",
    "EmbedderMismatchError",
    "EraseReceipt",
    "HistoryEntry",
    "InvalidNamespaceError",
    "JobError",
    "JobStatus",
    "MemAdaptersError",
    "MemoryEngine",
    "MemoryItem",
    "ModelNotFoundError",
    "NotFoundError",
    "Observation",
    "OnnxMiniLMEmbedder",
    "Page",
    "RecordResult",
    "Scope",
    "ScoreParts",
    "SearchResult",
    "StoreError",
    "TransportError",
    "Turn",
    "Usage",
    "ValidationError",
    "WriteResult",
    "as_embedder",
]
