"""The data layer: the only code that talks to Chroma, and owner of every derived index.

- :mod:`.chroma` — per-tenant collections on any chromadb client, every read paged.
- :mod:`.chroma_sqlite` — indexes and planner statistics the engine adds to an embedded
  store's SQLite file (Chroma's own statements only get faster).
- :mod:`.clock` — revisions (a hybrid logical clock) and the clock-skew window.
- :mod:`.partition` — one scope's records in compact columns (vectors, BM25, filter fields).
- :mod:`.layer` — :class:`DataLayer`: writes that stamp revisions and tombstones, lazy
  partitions caught up by revision, LRU eviction under a memory budget.
"""

from .chroma import AUX_VECTOR, PAGE, STAGING_SUFFIX, ChromaStore, Collection, collection_names
from .clock import RevisionClock
from .layer import DataLayer
from .partition import Partition

__all__ = [
    "AUX_VECTOR",
    "PAGE",
    "STAGING_SUFFIX",
    "ChromaStore",
    "Collection",
    "DataLayer",
    "Partition",
    "RevisionClock",
    "collection_names",
]
