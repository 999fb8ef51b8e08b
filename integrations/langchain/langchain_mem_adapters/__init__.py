"""LangChain and LangGraph integration of mem-adapters.

* :class:`MemAdaptersChatMessageHistory`: lossless ``BaseChatMessageHistory`` (deprecated
  interface in langchain-core >= 1.6.4, still supported).
* :class:`MemAdaptersRetriever`: ``BaseRetriever`` over the engine's search.
* :class:`MemAdaptersStore`: LangGraph ``BaseStore``, the recommended long-term memory for
  new LangChain 1.x / LangGraph apps.
"""

from .chat_history import MemAdaptersChatMessageHistory
from .retrievers import MemAdaptersRetriever, documents_text
from .store import MemAdaptersStore

__version__ = "0.1.0"

__all__ = [
    "MemAdaptersChatMessageHistory",
    "MemAdaptersRetriever",
    "MemAdaptersStore",
    "documents_text",
]
