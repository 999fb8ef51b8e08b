"""``MemAdaptersMemoryBlock``: long-term recall as a block of LlamaIndex's ``Memory``."""

from __future__ import annotations

import logging
from typing import Any

from llama_index.core.base.llms.types import ChatMessage
from llama_index.core.bridge.pydantic import Field
from llama_index.core.memory.memory import BaseMemoryBlock
from llama_index.core.utils import get_tokenizer

from mem_adapters import AsyncMemoryEngine, MemoryEngine

from ._checks import check_settings
from ._engine import EngineConfig
from ._transcript import Transcript, message_text, message_to_json
from .memory import _line

logger = logging.getLogger(__name__)


class MemAdaptersMemoryBlock(EngineConfig, BaseMemoryBlock[str]):
    """Recalls memories relevant to the current messages; records flushed messages.

    ``_aget`` searches with the text of the last ``retrieval_context_window`` messages: the
    user's memories across sessions when ``user_id`` is set, else only the current session's
    (archived turns and derived facts). Turns still in the short-term queue (active turns of
    the current session) are excluded: the chat history already shows them. The result is
    one memory per line, best first, so ``atruncate`` trims the least relevant ones.

    ``_aput`` records messages flushed out of the short-term queue as archived turns of the
    session, unless the ``Memory``'s chat store is this engine's and already archived them.

    Args:
        engine: An existing engine or service client (``MemoryClient``); otherwise one is created
            lazily from ``path``/``host``/``port``.
        name: Block name in the memory template.
        priority: 0 = never truncated; higher numbers are truncated later.
        user_id: Owner whose memories are searched and written.
        session_id: Session used when the ``Memory`` passes none.
        similarity_top_k: Memories returned.
        retrieval_context_window: Messages whose text forms the query.

    Raises:
        ValidationError: an empty id, or a count that is not an integer >= 1.

    Example:
        >>> block = MemAdaptersMemoryBlock(path="./memories", user_id="u1")  # doctest: +SKIP
        >>> memory = Memory.from_defaults(session_id="s1", memory_blocks=[block])  # doctest: +SKIP
    """

    name: str = Field(default="mem_adapters_memories", description="Block name.")
    description: str | None = Field(
        default="Relevant long-term memories recalled by mem-adapters.", description="Block description."
    )
    priority: int = Field(default=1, description="0 = never truncate; otherwise truncation order.")
    user_id: str | None = Field(default=None, description="Owner of the memories.")
    session_id: str | None = Field(default=None, description="Fallback session id.")
    similarity_top_k: int = Field(default=5, ge=1, description="Memories returned.")
    retrieval_context_window: int = Field(default=5, ge=1, description="Messages used as the query.")

    def __init__(self, engine: MemoryEngine | AsyncMemoryEngine | None = None, **data: Any) -> None:
        check_settings(data, counts=("similarity_top_k", "retrieval_context_window"))
        super().__init__(**data)
        self._attach(engine)

    @staticmethod
    def _tokens(text: str) -> int:
        return len(get_tokenizer()(text))

    async def _aget(self, messages: list[ChatMessage] | None = None, **block_kwargs: Any) -> str:
        """Memories relevant to the last messages, one per line, best first ("" when none)."""
        if not messages:
            return ""
        window = messages[-self.retrieval_context_window :]
        query = " ".join(t for t in (message_text(m).strip() for m in window) if t)
        if not query:
            return ""
        session_id = block_kwargs.get("session_id") or self.session_id
        if self.user_id is None and session_id is None:
            return ""  # no scope: searching the whole tenant would mix users
        clauses: list[dict[str, Any]] = [{"kind": {"$ne": "turn"}}, {"status": {"$ne": "active"}}]
        if session_id is not None:
            clauses.append({"session_id": {"$ne": session_id}})
        filters = {"$or": clauses}
        scope = {"user_id": self.user_id} if self.user_id is not None else {"session_id": session_id}
        found = await self._arun(
            lambda e: e.search(
                query, tenant_id=self.tenant_id, k=self.similarity_top_k, filters=filters, **scope
            )
        )
        return "\n".join(_line(i) for i in found.results)

    async def _aput(self, messages: list[ChatMessage]) -> None:
        """Record flushed messages as archived turns (skipped if already archived here)."""
        if not messages:
            return
        session_id = messages[0].additional_kwargs.get("session_id") or self.session_id
        if session_id is None:
            logger.warning(
                "MemAdaptersMemoryBlock: no session id, %d flushed messages not recorded", len(messages)
            )
            return
        clean = []
        for m in messages:
            # BaseMemoryBlock.aput tagged the messages with the session id; do not store the tag.
            kwargs = {
                k: v for k, v in m.additional_kwargs.items() if not (k == "session_id" and v == session_id)
            }
            clean.append(m.model_copy(update={"additional_kwargs": kwargs}))
        tx = Transcript(self.tenant_id, self.user_id)

        async def record(aengine: AsyncMemoryEngine) -> None:
            archived = await aengine.get_messages(
                session_id, tenant_id=self.tenant_id, status="archived", limit=len(clean), last=True
            )
            stored = [i.metadata.get("li_message") for i in archived]
            if stored == [message_to_json(m) for m in clean]:
                return  # the Memory's chat store is this engine: already archived there
            await tx.append(aengine, session_id, clean, "archived")

        await self._arun(record)

    async def atruncate(self, content: str, tokens_to_truncate: int) -> str | None:
        """Drop the least relevant memories (last lines) until ``tokens_to_truncate`` are saved."""
        lines = content.split("\n") if content else []
        while lines and tokens_to_truncate > 0:
            tokens_to_truncate -= self._tokens(lines.pop())
        return "\n".join(lines) if lines else None
