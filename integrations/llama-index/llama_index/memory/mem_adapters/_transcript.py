"""ChatMessage <-> engine turn translation and the transcript operations the adapters share.

A message is stored as one turn: searchable text = the message's text content, role = the
message role, and the exact ``ChatMessage`` JSON in the turn's caller metadata, so every block
type and ``additional_kwargs`` round-trip. Turn ids come from the transcript position
(``li:{session}:{n}``), so two identical messages are two turns, and an append always adds
messages, as with LlamaIndex's own chat stores (sending the same messages again stores them
again: ``ChatMessage`` has no id that could tell a retry from a repeat).
"""

from __future__ import annotations

import json
import logging
from collections.abc import Sequence
from typing import Any, Literal

from llama_index.core.base.llms.types import (
    ChatMessage,
    MessageRole,
    TextBlock,
    ThinkingBlock,
    ToolCallBlock,
)

from mem_adapters import AsyncMemoryEngine, MemoryItem, ValidationError
from mem_adapters.records import turn_id

from ._checks import check_messages
from ._engine import session_lock

logger = logging.getLogger(__name__)

MESSAGE_KEY = "li_message"
"""Caller-metadata key holding the exact ``ChatMessage`` JSON."""
SOURCE_KEY = "li_source"
"""Filterable caller-metadata scalar marking turns written by this package."""
SOURCE = "llama_index"
ID_PREFIX = "li:"

Status = Literal["active", "archived"]
_ROLES = {r.value for r in MessageRole}


def message_to_json(message: ChatMessage) -> dict[str, Any]:
    """The message as plain JSON (image/document bytes base64-encoded by LlamaIndex)."""
    try:
        data = message.model_dump(mode="json")
    except Exception:
        # Same fallback as SimpleChatStore: serialise arbitrary additional_kwargs values.
        data = message.model_dump()
        data["additional_kwargs"] = {
            k: message._recursive_serialization(v) for k, v in message.additional_kwargs.items()
        }
        data = json.loads(json.dumps(data, default=str))
    try:
        return json.loads(json.dumps(data, allow_nan=False))
    except (TypeError, ValueError) as e:
        raise ValidationError("message", f"ChatMessage is not JSON-serialisable: {e}") from e


def message_text(message: ChatMessage) -> str:
    """The message's text content (its text blocks, newline-joined)."""
    return "\n".join(b.text for b in message.blocks if isinstance(b, TextBlock))


def searchable_text(message: ChatMessage) -> str:
    """Text to embed: the text content, else a description (the engine needs non-empty text)."""
    text = message_text(message)
    if text.strip():
        return text
    parts: list[str] = []
    for block in message.blocks:
        if isinstance(block, ToolCallBlock):
            parts.append(f"[tool call] {block.tool_name}({json.dumps(block.tool_kwargs, default=str)})")
        elif isinstance(block, ThinkingBlock) and block.content:
            parts.append(block.content)
    for call in message.additional_kwargs.get("tool_calls") or []:
        fn = call.get("function") if isinstance(call, dict) else getattr(call, "function", None)
        name = fn.get("name") if isinstance(fn, dict) else getattr(fn, "name", None)
        if name:
            parts.append(f"[tool call] {name}")
    if not parts:
        kinds = ", ".join(b.block_type for b in message.blocks) or "empty"
        parts.append(f"[{message.role.value} message: {kinds}]")
    return "\n".join(parts)


def item_to_message(item: MemoryItem) -> ChatMessage:
    """Rebuild the ``ChatMessage`` of a turn (turns written by others become text messages)."""
    data = item.metadata.get(MESSAGE_KEY)
    if isinstance(data, dict):
        return ChatMessage.model_validate(data)
    role = item.role or "user"
    if role in _ROLES:
        return ChatMessage(role=role, content=item.text)
    # Free-form speaker names are not LlamaIndex roles: keep the name, speak as user.
    return ChatMessage(role=MessageRole.USER, content=item.text, additional_kwargs={"speaker": role})


def _index_of(turn_id: str, session_id: str) -> int | None:
    prefix = f"{ID_PREFIX}{session_id}:"
    if not turn_id.startswith(prefix):
        return None
    tail = turn_id[len(prefix) :]
    return int(tail) if tail.isdigit() else None


_COUNTERS: dict[tuple[int, str, str], int] = {}


class Transcript:
    """The operations on one tenant's session transcripts that every adapter shares.

    All methods are coroutines to be run on the engine's loop (see ``EngineHandle``).

    Args:
        tenant_id: Tenant of every read and write.
        user_id: Owner recorded on written turns; when set, reads, clears and deletes see
            only this user's turns (other users' turns of a shared session stay untouched).
    """

    def __init__(self, tenant_id: str, user_id: str | None = None) -> None:
        self.tenant_id = tenant_id
        self.user_id = user_id

    async def items(
        self,
        aengine: AsyncMemoryEngine,
        session_id: str,
        status: Status | None = None,
    ) -> list[MemoryItem]:
        """The session's turns in write order (``status=None``: both statuses)."""
        return await aengine.get_messages(
            session_id, tenant_id=self.tenant_id, status=status, user_id=self.user_id
        )

    async def messages(
        self,
        aengine: AsyncMemoryEngine,
        session_id: str,
        status: Status | None = None,
    ) -> list[ChatMessage]:
        """The session's messages in write order."""
        return [item_to_message(i) for i in await self.items(aengine, session_id, status)]

    async def _next_index(self, aengine: AsyncMemoryEngine, session_id: str, n: int) -> int:
        """First free transcript position; ``n`` positions are reserved (caller holds the lock)."""
        key = (id(aengine), self.tenant_id, session_id)
        start = _COUNTERS.get(key)
        if start is not None:
            # Another process may have written since: verify the ids are still free.
            callers = [f"{ID_PREFIX}{session_id}:{start + i}" for i in range(n)]
            # Stored ids of those caller ids (scoped per user and session), and of format 2.
            ids = [turn_id(self.tenant_id, None, self.user_id, session_id, c) for c in callers]
            if await aengine.get_many([*ids, *callers], tenant_id=self.tenant_id):
                start = None
        if start is None:
            existing = [
                _index_of(i.caller_id or i.id, session_id)
                for i in await aengine.get_messages(session_id, tenant_id=self.tenant_id)
            ]
            start = max((i for i in existing if i is not None), default=-1) + 1
        _COUNTERS[key] = start + n
        return start

    async def _append_locked(
        self,
        aengine: AsyncMemoryEngine,
        session_id: str,
        messages: Sequence[ChatMessage],
        status: Status,
    ) -> list[str]:
        if not messages:
            return []
        data = [message_to_json(m) for m in messages]  # before the first write: all or nothing
        start = await self._next_index(aengine, session_id, len(messages))
        turns = [
            {
                "id": f"{ID_PREFIX}{session_id}:{start + i}",
                "role": m.role.value,
                "text": searchable_text(m),
                "metadata": {MESSAGE_KEY: d, SOURCE_KEY: SOURCE},
            }
            for i, (m, d) in enumerate(zip(messages, data, strict=True))
        ]
        # One remember() call is one atomic upsert: a batch is all-or-nothing.
        result = await aengine.remember(
            turns, session_id=session_id, user_id=self.user_id, tenant_id=self.tenant_id
        )
        if status == "archived":
            await aengine.set_status(result.active_ids, "archived", tenant_id=self.tenant_id)
        return result.active_ids

    async def append(
        self,
        aengine: AsyncMemoryEngine,
        session_id: str,
        messages: Sequence[ChatMessage],
        status: Status = "active",
    ) -> list[str]:
        """Append messages (one atomic batch) at the end of the transcript; returns turn ids.

        Raises:
            ValidationError: ``messages`` is not a list of ``ChatMessage``.
        """
        messages = check_messages(messages)
        async with session_lock(aengine, self.tenant_id, session_id):
            return await self._append_locked(aengine, session_id, messages, status)

    async def replace(
        self,
        aengine: AsyncMemoryEngine,
        session_id: str,
        messages: Sequence[ChatMessage],
        status: Status = "active",
    ) -> None:
        """Replace the whole transcript (every status) with ``messages``.

        Raises:
            ValidationError: ``messages`` is not a list of ``ChatMessage``.
        """
        messages = check_messages(messages)
        async with session_lock(aengine, self.tenant_id, session_id):
            await aengine.clear_session(session_id, tenant_id=self.tenant_id, user_id=self.user_id)
            await self._append_locked(aengine, session_id, messages, status)

    async def clear(
        self, aengine: AsyncMemoryEngine, session_id: str, status: Status | None = None
    ) -> list[ChatMessage]:
        """Delete the transcript's turns (of one status, or all); returns their messages."""
        async with session_lock(aengine, self.tenant_id, session_id):
            items = await self.items(aengine, session_id, status)
            if status is None:
                await aengine.clear_session(session_id, tenant_id=self.tenant_id, user_id=self.user_id)
            else:
                for item in items:
                    await aengine.delete(item.id, tenant_id=self.tenant_id)
            return [item_to_message(i) for i in items]

    async def delete_at(self, aengine: AsyncMemoryEngine, session_id: str, idx: int) -> ChatMessage | None:
        """Delete the message at position ``idx`` (negative counts from the end); ``None`` if absent."""
        async with session_lock(aengine, self.tenant_id, session_id):
            items = await self.items(aengine, session_id)
            if not -len(items) <= idx < len(items):
                return None
            item = items[idx]
            await aengine.delete(item.id, tenant_id=self.tenant_id)
            return item_to_message(item)

    async def oldest(
        self, aengine: AsyncMemoryEngine, session_id: str, n: int, action: Literal["delete", "archive"]
    ) -> list[ChatMessage]:
        """Delete or archive the ``n`` oldest active messages; returns them."""
        if n < 0:
            raise ValidationError("n", "must be >= 0")
        async with session_lock(aengine, self.tenant_id, session_id):
            items = (await self.items(aengine, session_id, "active"))[:n]
            if action == "archive":
                await aengine.set_status([i.id for i in items], "archived", tenant_id=self.tenant_id)
            else:
                for item in items:
                    await aengine.delete(item.id, tenant_id=self.tenant_id)
            return [item_to_message(i) for i in items]

    async def sessions(self, aengine: AsyncMemoryEngine) -> list[str]:
        """Sessions of the tenant holding at least one turn, in first-write order."""
        seen: dict[str, None] = {}
        page: int | None = 1
        while page is not None:
            got = await aengine.list(
                None, page, 1000, tenant_id=self.tenant_id, user_id=self.user_id, kinds=["turn"]
            )
            for item in got.results:
                if item.session_id is not None:
                    seen.setdefault(item.session_id, None)
            page = got.next
        return list(seen)
