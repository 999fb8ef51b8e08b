"""LangChain chat message history over the mem-adapters engine.

Each message is one engine turn: its text is searchable and enriched like any other turn,
and the exact message (``message_to_dict``) rides along in the turn's caller metadata, so
reading gives back ``==``-equal messages in exact write order.

Note:
    ``BaseChatMessageHistory`` is deprecated since langchain-core 1.6.4 (removal in 2.0) but
    still widely used; subclassing it does not warn. New LangChain 1.x / LangGraph apps should
    keep short-term memory in the graph state (a checkpointer) and long-term memory in
    :class:`langchain_mem_adapters.MemAdaptersStore`.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import uuid
import weakref
from collections.abc import Sequence
from datetime import datetime, timezone
from typing import Any

from langchain_core.chat_history import BaseChatMessageHistory
from langchain_core.messages import (
    AIMessage,
    BaseMessage,
    BaseMessageChunk,
    ChatMessage,
    HumanMessage,
    SystemMessage,
    message_chunk_to_message,
    message_to_dict,
    messages_from_dict,
)

from mem_adapters import AsyncMemoryEngine, MemoryItem, Turn, ValidationError
from mem_adapters.models import DEFAULT_TENANT

from ._runner import ClosableAdapter, EngineLike, EngineRunner, build_engine, check_id

logger = logging.getLogger(__name__)

MESSAGE_KEY = "lc_message"
"""Caller-metadata key holding ``message_to_dict(message)`` of each stored turn."""
TYPE_KEY = "lc_type"
"""Caller-metadata key holding the LangChain message type (filterable)."""

# Message type -> engine role. The engine and the other adapters speak "user"/"assistant";
# the exact LangChain type is kept under TYPE_KEY and in the stored message itself.
_ROLES = {"human": "user", "ai": "assistant"}
_FALLBACK = {"user": HumanMessage, "human": HumanMessage, "assistant": AIMessage, "ai": AIMessage,
             "system": SystemMessage}  # fmt: skip

# One lock per (engine, tenant, session): a clear and a write of the same session, possibly from
# two history objects (RunnableWithMessageHistory makes one per call), must not interleave.
# The engine's loop runs all of them, so an asyncio.Lock is enough.
_LOCKS: weakref.WeakKeyDictionary[AsyncMemoryEngine, dict[tuple[str, str], asyncio.Lock]] = (
    weakref.WeakKeyDictionary()
)


def _session_lock(aengine: AsyncMemoryEngine, tenant_id: str, session_id: str) -> asyncio.Lock:
    locks = _LOCKS.setdefault(aengine, {})
    key = (tenant_id, session_id)
    if key not in locks:
        locks[key] = asyncio.Lock()
    return locks[key]


def role_of(message: BaseMessage) -> str:
    """The engine role of a message.

    ``user``/``assistant`` for human/AI messages, a ChatMessage's own role, else the message
    type (``system``, ``tool``, ``function``...).
    """
    if isinstance(message, ChatMessage):
        return message.role
    return _ROLES.get(message.type, message.type)


def searchable_text(message: BaseMessage) -> str:
    """The text that is embedded and searched for a message.

    Its text content, else a short description of what it carries (tool calls, images...).
    """
    text = message.text
    if text.strip():
        return text
    parts: list[str] = []
    for call in getattr(message, "tool_calls", None) or []:
        parts.append(f"tool call {call.get('name')}({json.dumps(call.get('args'), default=str)})")
    if isinstance(message.content, list):
        for block in message.content:
            kind = block.get("type") if isinstance(block, dict) else "text"
            if kind in ("reasoning", "thinking"):
                reasoning = block.get("reasoning") or block.get("thinking") or ""
                parts.append(f"reasoning: {reasoning}" if reasoning.strip() else "reasoning")
            elif kind != "text":
                parts.append(str(kind))
    return f"[{role_of(message)}: {', '.join(parts) or 'empty message'}]"


def _as_message(message: Any, index: int) -> BaseMessage:
    if isinstance(message, BaseMessageChunk):
        return message_chunk_to_message(message)
    if not isinstance(message, BaseMessage):
        raise ValidationError(f"messages[{index}]", f"must be a BaseMessage, got {type(message).__name__}")
    return message


def encode_message(message: BaseMessage, index: int = 0) -> dict[str, Any]:
    """``message_to_dict`` of a message, checked to rebuild an equal message from JSON.

    Raises:
        ValidationError: the message holds something JSON cannot carry exactly (e.g. a
            non-JSON ``artifact``); nothing would be stored losslessly, so nothing is stored.
    """
    data = message_to_dict(message)
    try:
        back = messages_from_dict([json.loads(json.dumps(data, allow_nan=False))])[0]
    except (TypeError, ValueError) as e:
        raise ValidationError(f"messages[{index}]", f"is not JSON-serialisable: {e}") from e
    if back != message:
        raise ValidationError(f"messages[{index}]", "does not survive a JSON round-trip unchanged")
    return data


def decode_item(item: MemoryItem) -> BaseMessage:
    """Rebuild the message of a stored turn (turns written without LangChain get a best guess)."""
    data = item.metadata.get(MESSAGE_KEY)
    if isinstance(data, dict):
        return messages_from_dict([data])[0]
    role = item.role or "user"
    cls = _FALLBACK.get(role)
    message_id = item.caller_id or item.id  # the caller's id when the turn was given one
    if cls is None:
        return ChatMessage(role=role, content=item.text, id=message_id)
    return cls(content=item.text, id=message_id)


class MemAdaptersChatMessageHistory(ClosableAdapter, BaseChatMessageHistory):
    """Chat message history of one session, stored as engine turns.

    Lossless (every message type round-trips ``==``), ordered exactly, atomic per batch,
    idempotent for messages that carry ids (see :meth:`add_messages`), searchable and
    enriched by the engine. Usable as ``with``/``async with``; a closed history raises
    :class:`~mem_adapters.ClosedError`.

    Args:
        session_id: The transcript (engine ``session_id``).
        engine: A :class:`~mem_adapters.MemoryEngine` or service
            :class:`~mem_adapters.client.MemoryClient` (sync and async methods work), or an
            :class:`~mem_adapters.AsyncMemoryEngine` / ``AsyncMemoryClient`` (async methods
            only). Built from ``path``/``client``/``engine_kwargs`` when absent (``client``
            is a chromadb client there).
        user_id: Owner of the turns; reads and :meth:`clear` are then restricted to this
            user's turns.
        agent_id: Agent the conversation is with.
        tenant_id: Engine tenant (hard isolation boundary).
        metadata: Caller metadata added to every stored turn (JSON-serialisable).
        path: Folder of an embedded store (when ``engine`` is absent).
        client: A chromadb client (when ``engine`` is absent).
        engine_kwargs: Further :class:`~mem_adapters.MemoryEngine` arguments.

    Example:
        >>> from mem_adapters import MemoryEngine
        >>> engine = MemoryEngine("/tmp/mem")  # doctest: +SKIP
        >>> history = MemAdaptersChatMessageHistory("s1", engine=engine)  # doctest: +SKIP
        >>> history.add_messages([HumanMessage("I love hiking")])  # doctest: +SKIP
        >>> history.messages  # doctest: +SKIP
        [HumanMessage(content='I love hiking', ...)]
    """

    def __init__(
        self,
        session_id: str,
        *,
        engine: EngineLike | None = None,
        user_id: str | None = None,
        agent_id: str | None = None,
        tenant_id: str = DEFAULT_TENANT,
        metadata: dict[str, Any] | None = None,
        path: str | os.PathLike[str] | None = None,
        client: Any = None,
        engine_kwargs: dict[str, Any] | None = None,
    ) -> None:
        super().__init__()
        check_id("session_id", session_id)
        check_id("tenant_id", tenant_id)
        check_id("user_id", user_id, optional=True)
        check_id("agent_id", agent_id, optional=True)
        self.session_id = session_id
        self.user_id = user_id
        self.agent_id = agent_id
        self.tenant_id = tenant_id
        self.metadata = dict(metadata or {})
        built, owned = build_engine(engine, path=path, client=client, engine_kwargs=engine_kwargs)
        self.engine: EngineLike = built
        self._runner = EngineRunner(built, owned=owned, name=type(self).__name__)

    # ------------------------------------------------------------------ coroutines

    async def _read(self, aengine: AsyncMemoryEngine) -> list[BaseMessage]:
        items = await aengine.get_messages(self.session_id, tenant_id=self.tenant_id, user_id=self.user_id)
        return [decode_item(item) for item in items]

    def _turns(self, messages: Sequence[BaseMessage]) -> list[Turn]:
        now = datetime.now(timezone.utc)
        turns = []
        first: dict[str, Turn] = {}
        for i, message in enumerate(messages):
            data = encode_message(message, i)
            # The message id is the caller id: the engine scopes it per tenant, user and session.
            # Without one a write is a new message by definition (LangChain appends), so a fresh
            # id keeps identical messages at any positions, in any process, apart.
            turn_id = message.id or uuid.uuid4().hex
            turn = Turn(
                id=turn_id,
                role=role_of(message),
                text=searchable_text(message),
                timestamp=now,
                metadata={MESSAGE_KEY: data, TYPE_KEY: message.type},
            )
            if message.id and first.setdefault(message.id, turn) is not turn and first[message.id] == turn:
                continue  # the same message twice in one batch is stored once (a reused id is refused)
            turns.append(turn)
        return turns

    async def _write(self, aengine: AsyncMemoryEngine, messages: list[BaseMessage]) -> None:
        async with _session_lock(aengine, self.tenant_id, self.session_id):
            turns = self._turns(messages)
            # One remember call: one validated batch, one Chroma upsert, one enrichment job.
            result = await aengine.remember(
                turns, session_id=self.session_id, user_id=self.user_id, agent_id=self.agent_id,
                tenant_id=self.tenant_id, metadata=self.metadata or None,
            )  # fmt: skip
        logger.debug("session %s: %d messages, %d new", self.session_id, len(turns), result.created)

    async def _clear(self, aengine: AsyncMemoryEngine) -> None:
        async with _session_lock(aengine, self.tenant_id, self.session_id):
            # Bound to a user: only that user's turns go, never another user's in the same session.
            await aengine.clear_session(self.session_id, tenant_id=self.tenant_id, user_id=self.user_id)

    @staticmethod
    def _prepare(messages: Sequence[BaseMessage]) -> list[BaseMessage]:
        if isinstance(messages, BaseMessage):
            raise ValidationError("messages", "must be a sequence of messages, not one message")
        return [_as_message(m, i) for i, m in enumerate(messages)]

    # ------------------------------------------------------------------ interface

    @property
    def messages(self) -> list[BaseMessage]:  # type: ignore[override]
        """The session's messages in exact write order."""
        return self._runner.run(self._read)

    async def aget_messages(self) -> list[BaseMessage]:
        """The session's messages in exact write order (async)."""
        return await self._runner.arun(self._read)

    def add_messages(self, messages: Sequence[BaseMessage]) -> None:
        """Append messages atomically (chunks are converted to messages first).

        Messages with an ``id`` already stored in this session are skipped, so retrying a
        batch of messages with ids does not duplicate it. Messages without an id are always
        appended (as ``InMemoryChatMessageHistory`` does): re-sending them stores them again.

        Raises:
            ValidationError: a message cannot be stored losslessly; nothing is written.
        """
        prepared = self._prepare(messages)
        if prepared:
            self._runner.run(lambda aengine: self._write(aengine, prepared))

    async def aadd_messages(self, messages: Sequence[BaseMessage]) -> None:
        """Append messages atomically (async). See :meth:`add_messages`."""
        prepared = self._prepare(messages)
        if prepared:
            await self._runner.arun(lambda aengine: self._write(aengine, prepared))

    def clear(self) -> None:
        """Delete the session's turns and everything derived from them."""
        self._runner.run(self._clear)

    async def aclear(self) -> None:
        """Delete the session's turns and everything derived from them (async)."""
        await self._runner.arun(self._clear)


__all__ = ["MESSAGE_KEY", "TYPE_KEY", "MemAdaptersChatMessageHistory", "decode_item", "encode_message"]
