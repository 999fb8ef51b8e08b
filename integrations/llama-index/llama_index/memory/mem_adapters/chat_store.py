"""Chat stores backed by mem-adapters: ``BaseChatStore`` and ``AsyncDBChatStore``.

A chat store key is an engine ``session_id``; a message is a turn (see ``_transcript``).
"""

from __future__ import annotations

import logging
from typing import Any

from llama_index.core.base.llms.types import ChatMessage
from llama_index.core.bridge.pydantic import Field
from llama_index.core.storage.chat_store.base import BaseChatStore
from llama_index.core.storage.chat_store.base_db import AsyncDBChatStore, MessageStatus

from mem_adapters import AsyncMemoryEngine, MemoryEngine

from ._checks import check_settings
from ._engine import EngineConfig
from ._transcript import Transcript

logger = logging.getLogger(__name__)


def _status(status: MessageStatus | str | None) -> Any:
    return None if status is None else MessageStatus(status).value


class _StoreBase(EngineConfig):
    user_id: str | None = Field(default=None, description="Owner recorded on written messages.")

    def __init__(self, engine: MemoryEngine | AsyncMemoryEngine | None = None, **data: Any) -> None:
        check_settings(data)
        super().__init__(**data)
        self._attach(engine)

    @property
    def _tx(self) -> Transcript:
        return Transcript(self.tenant_id, self.user_id)


class MemAdaptersChatStore(_StoreBase, BaseChatStore):
    """LlamaIndex ``BaseChatStore`` (e.g. for ``ChatMemoryBuffer``) persisting in mem-adapters.

    Sync methods may be called from any thread: each is one operation on the engine's loop,
    and read-then-write operations hold a per-key lock there. Async methods never block the
    caller's loop. A key's messages are its whole transcript (active and archived turns).

    Differences from ``SimpleChatStore``: a key exists while it holds messages (so
    ``set_messages(key, [])`` removes it from ``get_keys``), and ``add_message`` has no
    ``idx`` (a transcript is append-only; use ``set_messages`` to rewrite it).

    Args:
        engine: An existing engine or service client (``MemoryClient``) to use; otherwise one
            is created lazily from ``path`` / ``host`` / ``port``.
        path: Folder of an embedded Chroma store.
        host: Chroma server host.
        port: Chroma server port.
        tenant_id: mem-adapters tenant.
        user_id: Owner recorded on written messages.

    Example:
        >>> store = MemAdaptersChatStore(path="./memories")  # doctest: +SKIP
        >>> memory = ChatMemoryBuffer.from_defaults(chat_store=store, chat_store_key="s1")  # doctest: +SKIP
    """

    @classmethod
    def class_name(cls) -> str:
        """Name used by LlamaIndex serialisation."""
        return "MemAdaptersChatStore"

    def set_messages(self, key: str, messages: list[ChatMessage]) -> None:
        """Replace the messages of a key."""
        self._run(lambda e: self._tx.replace(e, key, messages))

    def get_messages(self, key: str) -> list[ChatMessage]:
        """Messages of a key in order (empty if none)."""
        return self._run(lambda e: self._tx.messages(e, key))

    def add_message(self, key: str, message: ChatMessage) -> None:
        """Append a message to a key."""
        self._run(lambda e: self._tx.append(e, key, [message]))

    def delete_messages(self, key: str) -> list[ChatMessage] | None:
        """Delete a key's messages; returns them, or ``None`` if the key holds none."""
        return self._run(lambda e: self._tx.clear(e, key)) or None

    def delete_message(self, key: str, idx: int) -> ChatMessage | None:
        """Delete the message at position ``idx``; ``None`` if there is none."""
        return self._run(lambda e: self._tx.delete_at(e, key, idx))

    def delete_last_message(self, key: str) -> ChatMessage | None:
        """Delete the last message of a key; ``None`` if the key holds none."""
        return self._run(lambda e: self._tx.delete_at(e, key, -1))

    def get_keys(self) -> list[str]:
        """Keys holding messages."""
        return self._run(self._tx.sessions)

    async def aset_messages(self, key: str, messages: list[ChatMessage]) -> None:
        """Async :meth:`set_messages`."""
        await self._arun(lambda e: self._tx.replace(e, key, messages))

    async def aget_messages(self, key: str) -> list[ChatMessage]:
        """Async :meth:`get_messages`."""
        return await self._arun(lambda e: self._tx.messages(e, key))

    async def async_add_message(self, key: str, message: ChatMessage) -> None:
        """Async :meth:`add_message`."""
        await self._arun(lambda e: self._tx.append(e, key, [message]))

    async def adelete_messages(self, key: str) -> list[ChatMessage] | None:
        """Async :meth:`delete_messages`."""
        return await self._arun(lambda e: self._tx.clear(e, key)) or None

    async def adelete_message(self, key: str, idx: int) -> ChatMessage | None:
        """Async :meth:`delete_message`."""
        return await self._arun(lambda e: self._tx.delete_at(e, key, idx))

    async def adelete_last_message(self, key: str) -> ChatMessage | None:
        """Async :meth:`delete_last_message`."""
        return await self._arun(lambda e: self._tx.delete_at(e, key, -1))

    async def aget_keys(self) -> list[str]:
        """Async :meth:`get_keys`."""
        return await self._arun(self._tx.sessions)


class MemAdaptersAsyncChatStore(_StoreBase, AsyncDBChatStore):
    """LlamaIndex ``AsyncDBChatStore`` for ``Memory.from_defaults(chat_store=...)``.

    Message status (active FIFO queue vs archived) is the engine's turn status; order is the
    engine's write order. ``delete_message(key, idx)`` takes the message's position in the
    key's transcript (``SQLAlchemyChatStore`` takes its database row id, which this store
    does not have).

    Args:
        engine: An existing engine or service client (``MemoryClient``) to use; otherwise one
            is created lazily from ``path`` / ``host`` / ``port``.
        path: Folder of an embedded Chroma store.
        host: Chroma server host.
        port: Chroma server port.
        tenant_id: mem-adapters tenant.
        user_id: Owner recorded on written messages.

    Example:
        >>> store = MemAdaptersAsyncChatStore(path="./memories")  # doctest: +SKIP
        >>> memory = Memory.from_defaults(session_id="s1", chat_store=store)  # doctest: +SKIP
    """

    @classmethod
    def class_name(cls) -> str:
        """Name used by LlamaIndex serialisation."""
        return "MemAdaptersAsyncChatStore"

    async def get_messages(
        self,
        key: str,
        status: MessageStatus | None = MessageStatus.ACTIVE,
        limit: int | None = None,
        offset: int | None = None,
    ) -> list[ChatMessage]:
        """Messages of a key with a status (``None``: any), in order, paged by offset/limit."""
        messages = await self._arun(lambda e: self._tx.messages(e, key, _status(status)))
        start = offset or 0
        return messages[start:] if limit is None else messages[start : start + limit]

    async def count_messages(self, key: str, status: MessageStatus | None = MessageStatus.ACTIVE) -> int:
        """Number of messages of a key with a status (``None``: any)."""
        return await self._arun(
            lambda e: e.count_turns(key, tenant_id=self.tenant_id, status=_status(status))
        )

    async def add_message(
        self, key: str, message: ChatMessage, status: MessageStatus = MessageStatus.ACTIVE
    ) -> None:
        """Append a message with a status."""
        await self._arun(lambda e: self._tx.append(e, key, [message], _status(status)))

    async def add_messages(
        self, key: str, messages: list[ChatMessage], status: MessageStatus = MessageStatus.ACTIVE
    ) -> None:
        """Append messages in one atomic batch."""
        await self._arun(lambda e: self._tx.append(e, key, messages, _status(status)))

    async def set_messages(
        self, key: str, messages: list[ChatMessage], status: MessageStatus = MessageStatus.ACTIVE
    ) -> None:
        """Replace every message of a key (any status) with ``messages``."""
        await self._arun(lambda e: self._tx.replace(e, key, messages, _status(status)))

    async def delete_message(self, key: str, idx: int) -> ChatMessage | None:
        """Delete the message at transcript position ``idx``; ``None`` if there is none."""
        return await self._arun(lambda e: self._tx.delete_at(e, key, idx))

    async def delete_messages(self, key: str, status: MessageStatus | None = None) -> None:
        """Delete a key's messages of a status (``None``: all)."""
        await self._arun(lambda e: self._tx.clear(e, key, _status(status)))

    async def delete_oldest_messages(self, key: str, n: int) -> list[ChatMessage]:
        """Delete the ``n`` oldest active messages; returns them."""
        return await self._arun(lambda e: self._tx.oldest(e, key, n, "delete"))

    async def archive_oldest_messages(self, key: str, n: int) -> list[ChatMessage]:
        """Archive the ``n`` oldest active messages; returns them."""
        return await self._arun(lambda e: self._tx.oldest(e, key, n, "archive"))

    async def get_keys(self) -> list[str]:
        """Keys holding messages."""
        return await self._arun(self._tx.sessions)
