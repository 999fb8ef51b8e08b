"""``MemAdaptersMemory``: a LlamaIndex ``BaseMemory`` over a mem-adapters session.

``get`` returns the session transcript (newest messages within ``token_limit``), preceded by a
system message of relevant long-term memories (the user's other sessions and derived facts)
within ``memory_token_limit``. That injected message is recognised by its tag and never
written back by ``put``/``set``.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable, Sequence
from typing import Any, Literal

from llama_index.core.base.llms.types import ChatMessage, MessageRole, TextBlock
from llama_index.core.bridge.pydantic import Field
from llama_index.core.memory.types import BaseMemory
from llama_index.core.utils import get_tokenizer

from mem_adapters import AsyncMemoryEngine, MemoryEngine, MemoryItem
from mem_adapters.retrieval import format_item

from ._checks import check_message, check_messages, check_settings
from ._engine import EngineConfig
from ._transcript import Transcript, message_text

logger = logging.getLogger(__name__)

MEMORY_TAG = "<relevant_memories>"
MEMORY_END_TAG = "</relevant_memories>"
DEFAULT_CONTEXT_PREFIX = "Relevant memories from earlier conversations with this user (may be outdated):"


def _is_memory_block(block: Any) -> bool:
    return isinstance(block, TextBlock) and block.text.startswith(MEMORY_TAG)


def is_memory_message(message: ChatMessage) -> bool:
    """Whether ``message`` is (or, with ``insert_method="user"``, carries) injected memories."""
    return any(_is_memory_block(b) for b in message.blocks)


def strip_memories(messages: Sequence[ChatMessage]) -> list[ChatMessage]:
    """``messages`` without the injected memories (a message left empty is dropped)."""
    out: list[ChatMessage] = []
    for message in messages:
        if not is_memory_message(message):
            out.append(message)
            continue
        blocks = [b for b in message.blocks if not _is_memory_block(b)]
        if blocks:
            out.append(message.model_copy(update={"blocks": blocks}))
    return out


def _line(item: MemoryItem) -> str:
    # One memory per line, so a context is trimmed by whole memories.
    return format_item(item.model_copy(update={"text": " ".join(item.text.split())}))


def trim_history(
    history: list[ChatMessage],
    token_limit: int,
    count: Callable[[list[ChatMessage]], int],
    initial_token_count: int = 0,
) -> list[ChatMessage]:
    """The newest messages within ``token_limit``, never starting with an assistant/tool reply.

    Same rule as ``ChatMemoryBuffer.get``: ``initial_token_count`` (tokens the caller already
    spent, e.g. on a prompt) counts against the limit, and when even the last message alone
    is over the limit it is returned anyway so the LLM reports the problem.

    Raises:
        ValueError: ``initial_token_count`` alone exceeds ``token_limit`` (as ``ChatMemoryBuffer``).
    """
    if initial_token_count > token_limit:
        raise ValueError("Initial token count exceeds token limit")
    n = len(history)
    if n == 0:
        return []
    tokens = count(history) + initial_token_count
    while tokens > token_limit and n > 1:
        n -= 1
        while n > 1 and history[-n].role in (MessageRole.TOOL, MessageRole.ASSISTANT):
            n -= 1
        tokens = count(history[-n:]) + initial_token_count
    if tokens > token_limit or n <= 0:
        return history[-1:]
    return history[-n:]


class MemAdaptersMemory(EngineConfig, BaseMemory):
    """LlamaIndex memory whose history and long-term recall live in mem-adapters.

    Works as ``memory=`` for ``FunctionAgent``, ``ReActAgent`` and ``AgentWorkflow`` and
    survives ``Context.to_dict``/``from_dict``: the connection settings and ids are plain
    fields; the engine is created (or shared) lazily.

    Args:
        engine: An existing engine or service client (``MemoryClient``) to use; otherwise one
            is created lazily from ``path`` / ``host`` / ``port``.
        session_id: The transcript this memory reads and writes.
        user_id: Owner; long-term recall searches this user's memories (none when unset,
            so one user's memories never leak into another's prompt).
        token_limit: Token budget of the returned history.
        memory_token_limit: Token budget of the injected memories message.
        similarity_top_k: Memories searched for the injected message (>= 1; to recall nothing,
            set ``memory_token_limit=0`` or leave ``user_id`` unset).
        insert_method: ``"system"`` (default) injects a leading system message; ``"user"``
            prepends the memories to the latest user message, as LlamaIndex's ``Memory`` does
            with ``InsertMethod.USER``. Use ``"user"`` with ``ReActAgent``, which drops a
            leading system message from the history (it supplies its own system prompt).

    Raises:
        ValidationError: an empty id (``session_id=""`` is an error, not a fresh session),
            or ``similarity_top_k`` that is not an integer >= 1.

    Example:
        >>> memory = MemAdaptersMemory.from_defaults(path="./memories", user_id="u1")  # doctest: +SKIP
        >>> agent = FunctionAgent(tools=[...], llm=llm)  # doctest: +SKIP
        >>> await agent.run("hi", memory=memory)  # doctest: +SKIP
    """

    session_id: str = Field(default_factory=lambda: uuid.uuid4().hex, description="Transcript id.")
    user_id: str | None = Field(default=None, description="Owner of the memories.")
    token_limit: int = Field(default=3000, gt=0, description="Token budget of the history.")
    memory_token_limit: int = Field(default=600, ge=0, description="Token budget of recalled memories.")
    similarity_top_k: int = Field(default=5, ge=1, description="Memories searched per get().")
    context_prefix: str = Field(
        default=DEFAULT_CONTEXT_PREFIX, description="Heading of the memories message."
    )
    insert_method: Literal["system", "user"] = Field(
        default="system",
        description='"system": leading system message; "user": prepended to the latest user message.',
    )
    tokenizer_fn: Callable[[str], list[Any]] = Field(
        default_factory=get_tokenizer, exclude=True, description="Tokenizer used for budgets."
    )

    def __init__(self, engine: MemoryEngine | AsyncMemoryEngine | None = None, **data: Any) -> None:
        check_settings(data, counts=("similarity_top_k",))
        super().__init__(**data)
        self._attach(engine)

    def __bool__(self) -> bool:
        # Agents test ``memory or default``: an empty memory must never be replaced.
        return True

    @classmethod
    def class_name(cls) -> str:
        """Name used by LlamaIndex serialisation."""
        return "MemAdaptersMemory"

    @classmethod
    def from_defaults(  # type: ignore[override]
        cls,
        *,
        engine: MemoryEngine | AsyncMemoryEngine | None = None,
        session_id: str | None = None,
        chat_history: list[ChatMessage] | None = None,
        **kwargs: Any,
    ) -> MemAdaptersMemory:
        """Create a memory; ``chat_history`` (if given) replaces the session's transcript.

        Args:
            engine: An existing engine or service client (else created lazily from
                ``path``/``host``/``port``).
            session_id: Transcript id (a fresh one when absent; an empty one is an error).
            chat_history: Initial messages.
            **kwargs: Any other field (``user_id``, ``path``, ``token_limit``...).
        """
        if session_id is None:
            session_id = uuid.uuid4().hex
        memory = cls(engine=engine, session_id=session_id, **kwargs)
        if chat_history is not None:
            memory.set(chat_history)
        return memory

    @property
    def _tx(self) -> Transcript:
        return Transcript(self.tenant_id, self.user_id)

    def _count(self, messages: Sequence[ChatMessage]) -> int:
        return len(self.tokenizer_fn(" ".join(str(m.content) for m in messages)))

    def _query(self, input: Any, history: list[ChatMessage]) -> str:
        if isinstance(input, ChatMessage):
            input = message_text(input)
        if isinstance(input, str) and input.strip():
            return input
        for message in reversed(history):
            if message.role == MessageRole.USER and message_text(message).strip():
                return message_text(message)
        return ""

    def _recall_filter(self) -> dict[str, Any]:
        # This session's turns are already in the history; its derived facts are not.
        return {"$or": [{"session_id": {"$ne": self.session_id}}, {"kind": {"$ne": "turn"}}]}

    def _pack(self, items: list[MemoryItem]) -> str | None:
        budget = self.memory_token_limit - len(
            self.tokenizer_fn(f"{MEMORY_TAG}\n{self.context_prefix}\n{MEMORY_END_TAG}")
        )
        lines: list[str] = []
        for item in items:  # best first: stop adding once the budget is spent
            line = _line(item)
            cost = len(self.tokenizer_fn(line))
            if cost > budget:
                continue
            lines.append(line)
            budget -= cost
        if not lines:
            return None
        body = "\n".join(lines)
        return f"{MEMORY_TAG}\n{self.context_prefix}\n{body}\n{MEMORY_END_TAG}"

    def _inject(self, history: list[ChatMessage], text: str) -> list[ChatMessage]:
        if self.insert_method == "system":
            return [ChatMessage(role=MessageRole.SYSTEM, content=text), *history]
        for i in range(len(history) - 1, -1, -1):
            if history[i].role == MessageRole.USER:
                target = history[i]
                blocks = [TextBlock(text=text + "\n\n"), *target.blocks]
                return [*history[:i], target.model_copy(update={"blocks": blocks}), *history[i + 1 :]]
        return [*history, ChatMessage(role=MessageRole.USER, content=text)]

    async def _aget(
        self, aengine: AsyncMemoryEngine, input: Any, initial_token_count: int
    ) -> list[ChatMessage]:
        history = trim_history(
            await self._tx.messages(aengine, self.session_id, "active"), self.token_limit, self._count,
            initial_token_count,
        )  # fmt: skip
        query = self._query(input, history)
        if not query or self.user_id is None or self.memory_token_limit == 0:
            return history
        found = await aengine.search(
            query, tenant_id=self.tenant_id, user_id=self.user_id, k=self.similarity_top_k,
            filters=self._recall_filter(),
        )  # fmt: skip
        injected = self._pack(found.results)
        return history if injected is None else self._inject(history, injected)

    @staticmethod
    def _own(messages: Sequence[ChatMessage]) -> list[ChatMessage]:
        # Recalled memories are derived: storing them would feed them back forever.
        return strip_memories(messages)

    # ---------------------------------------------------------------- sync

    def get(self, input: str | None = None, initial_token_count: int = 0, **kwargs: Any) -> list[ChatMessage]:
        """History within ``token_limit``, preceded by recalled memories for ``input``.

        Args:
            input: Query for recall (default: the last user message).
            initial_token_count: Tokens already spent by the caller; they count against
                ``token_limit`` as in ``ChatMemoryBuffer.get``.
            **kwargs: Ignored (interface compatibility).

        Raises:
            ValueError: ``initial_token_count`` exceeds ``token_limit``.
        """
        if initial_token_count > self.token_limit:  # fail before touching the engine
            raise ValueError("Initial token count exceeds token limit")
        return self._run(lambda e: self._aget(e, input, initial_token_count))

    def get_all(self) -> list[ChatMessage]:
        """The whole session transcript (no recalled memories)."""
        return self._run(lambda e: self._tx.messages(e, self.session_id))

    def put(self, message: ChatMessage) -> None:
        """Append a message (the recalled-memories message is skipped).

        Raises:
            ValidationError: ``message`` is not a ``ChatMessage``.
        """
        self.put_messages([check_message(message)])

    def put_messages(self, messages: list[ChatMessage]) -> None:
        """Append messages as one atomic batch (sending them again appends them again).

        Raises:
            ValidationError: ``messages`` is not a list of ``ChatMessage``.
        """
        own = self._own(check_messages(messages))
        if own:
            self._run(lambda e: self._tx.append(e, self.session_id, own))

    def set(self, messages: list[ChatMessage]) -> None:
        """Replace the session transcript.

        Raises:
            ValidationError: ``messages`` is not a list of ``ChatMessage``.
        """
        own = self._own(check_messages(messages))
        self._run(lambda e: self._tx.replace(e, self.session_id, own))

    def reset(self) -> None:
        """Delete the session transcript (the user's other sessions are kept)."""
        self._run(lambda e: self._tx.clear(e, self.session_id))

    # ---------------------------------------------------------------- async

    async def aget(
        self, input: str | None = None, initial_token_count: int = 0, **kwargs: Any
    ) -> list[ChatMessage]:
        """Async :meth:`get`."""
        if initial_token_count > self.token_limit:
            raise ValueError("Initial token count exceeds token limit")
        return await self._arun(lambda e: self._aget(e, input, initial_token_count))

    async def aget_all(self) -> list[ChatMessage]:
        """Async :meth:`get_all`."""
        return await self._arun(lambda e: self._tx.messages(e, self.session_id))

    async def aput(self, message: ChatMessage) -> None:
        """Async :meth:`put`."""
        await self.aput_messages([check_message(message)])

    async def aput_messages(self, messages: list[ChatMessage]) -> None:
        """Async :meth:`put_messages`."""
        own = self._own(check_messages(messages))
        if own:
            await self._arun(lambda e: self._tx.append(e, self.session_id, own))

    async def aset(self, messages: list[ChatMessage]) -> None:
        """Async :meth:`set`."""
        own = self._own(check_messages(messages))
        await self._arun(lambda e: self._tx.replace(e, self.session_id, own))

    async def areset(self) -> None:
        """Async :meth:`reset`."""
        await self._arun(lambda e: self._tx.clear(e, self.session_id))
