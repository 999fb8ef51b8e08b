"""LlamaIndex integration of mem-adapters: memory, memory block, chat stores and retriever.

Example:
    >>> from llama_index.memory.mem_adapters import MemAdaptersMemory
    >>> memory = MemAdaptersMemory.from_defaults(path="./memories", user_id="u1")  # doctest: +SKIP
"""

from ._engine import EngineHandle, close_shared_engines, shared_engine
from .chat_store import MemAdaptersAsyncChatStore, MemAdaptersChatStore
from .memory import MemAdaptersMemory, is_memory_message, strip_memories
from .memory_block import MemAdaptersMemoryBlock
from .retriever import MemAdaptersRetriever

__all__ = [
    "EngineHandle",
    "MemAdaptersAsyncChatStore",
    "MemAdaptersChatStore",
    "MemAdaptersMemory",
    "MemAdaptersMemoryBlock",
    "MemAdaptersRetriever",
    "close_shared_engines",
    "is_memory_message",
    "shared_engine",
    "strip_memories",
]
