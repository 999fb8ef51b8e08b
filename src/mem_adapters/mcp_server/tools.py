"""The MCP tools: remember, search (flat | context), list_memories, get_memory, delete_memory, erase_user.

Each tool resolves its scope (:func:`.scope.resolve`), calls the backend with the engine's
method names, and answers with JSON-friendly dicts. Library errors become tool errors whose
text is the library's message (``isError`` results; the server keeps running).
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Awaitable, Callable
from typing import Annotated, Any, Literal

from mcp.server.mcpserver import Context, MCPServer
from mcp.server.mcpserver.exceptions import ToolError
from pydantic import BaseModel, Field

from .. import __version__
from ..errors import MemAdaptersError, NotFoundError, ValidationError
from ..models import MemoryItem
from ..server.settings import DEFAULT_SESSION
from .backend import Backend
from .scope import Scope, resolve

logger = logging.getLogger(__name__)

TOOL_NAMES = ("remember", "search", "list_memories", "get_memory", "delete_memory", "erase_user")

INSTRUCTIONS = (
    "Long-term conversational memory. Call `remember` with what the user said (and your answers) "
    "worth keeping, `search` before answering questions about the user's past, preferences or facts "
    "(mode 'context' returns a ready-to-use, dated context string), `list_memories` / `get_memory` "
    "to inspect, `delete_memory` to forget one memory and `erase_user` to erase everything of a user."
)


class Message(BaseModel):
    """One conversational turn to remember."""

    role: Literal["user", "assistant", "system", "tool"] = "user"
    text: str = Field(min_length=1)


def _item(m: MemoryItem) -> dict[str, Any]:
    """A memory as a tool answers it (no embeddings, no internals)."""
    out: dict[str, Any] = {
        "id": m.id,
        "text": m.text,
        "kind": m.kind,
        "role": m.role,
        "user_id": m.user_id,
        "session_id": m.session_id,
        "timestamp": m.timestamp.isoformat() if m.timestamp else None,
        "metadata": m.metadata,
    }
    if m.score is not None:
        out["score"] = round(float(m.score), 6)
    return out


def _tool_errors(fn: Callable[..., Awaitable[Any]]) -> Callable[..., Awaitable[Any]]:
    """Report library errors to the host with their own message."""

    @functools.wraps(fn)
    async def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return await fn(*args, **kwargs)
        except MemAdaptersError as e:
            raise ToolError(f"{type(e).__name__}: {e}") from e

    return wrapper


def build_server(backend: Backend, *, authenticator: Any = None, name: str = "mem-adapters") -> MCPServer:
    """The MCP server whose tools act on ``backend``.

    Args:
        backend: The engine or service the tools call.
        authenticator: A :class:`mem_adapters.server.Authenticator` that verifies each HTTP
            request's token (local store over HTTP); ``None``: the configured scope.
        name: Server name announced to hosts.
    """
    server: MCPServer = MCPServer(name, instructions=INSTRUCTIONS, version=__version__)
    config = backend.config

    def scope_of(ctx: Context) -> Scope:
        try:
            headers = ctx.headers
        except ValueError:  # no request (in-process call)
            headers = None
        return resolve(config, headers, authenticator)

    async def memory_in_scope(target: Any, scope: Scope, memory_id: str) -> MemoryItem:
        if not memory_id.strip():
            raise ValidationError("memory_id", "must be a non-empty string")
        item = await target.get(memory_id, **backend.tenant_kwargs(scope))
        if scope.user_fixed and item.user_id != scope.user_id:
            raise NotFoundError(f"no memory {memory_id!r}")  # never reveal another user's ids
        return item

    @server.tool(description="Store conversational turns (or one text) in long-term memory.")
    @_tool_errors
    async def remember(
        ctx: Context,
        text: Annotated[str | None, Field(description="One thing to remember, as the user said it.")] = None,
        messages: Annotated[
            list[Message] | None, Field(description="Turns in order: [{role, text}, ...].")
        ] = None,
        session_id: Annotated[str | None, Field(description="Conversation id (default: configured).")] = None,
        user_id: Annotated[str | None, Field(description="User (default: the configured one).")] = None,
        metadata: Annotated[dict[str, Any] | None, Field(description="Caller metadata.")] = None,
    ) -> dict[str, Any]:
        scope = scope_of(ctx)
        if (text is None) == (messages is None):
            raise ValidationError("text", "give text or messages (one of them)")
        turns = (
            [{"role": "user", "text": text}] if text is not None else [m.model_dump() for m in messages or []]
        )
        if not turns or not all(t["text"].strip() for t in turns):
            raise ValidationError("messages", "needs at least one non-empty turn")
        target = await backend.target(scope)
        got = await target.remember(
            turns,
            session_id=session_id or scope.session_id or DEFAULT_SESSION,
            user_id=scope.user(user_id),
            agent_id=scope.agent_id,
            metadata=metadata,
            **backend.tenant_kwargs(scope),
        )
        return {"memory_ids": list(got.active_ids), "created": got.created, "job_id": got.job_id}

    @server.tool(description="Search memories; mode 'context' also returns a dated context string.")
    @_tool_errors
    async def search(
        ctx: Context,
        query: Annotated[str, Field(min_length=1, description="What to look for.")],
        k: Annotated[int, Field(ge=1, le=100, description="How many memories.")] = 10,
        mode: Annotated[Literal["flat", "context"], Field(description="flat | context")] = "flat",
        session_id: Annotated[str | None, Field(description="Only this conversation.")] = None,
        user_id: Annotated[str | None, Field(description="User (default: the configured one).")] = None,
        char_budget: Annotated[
            int | None, Field(ge=1, le=200_000, description="Most characters of the context.")
        ] = None,
    ) -> dict[str, Any]:
        scope = scope_of(ctx)
        target = await backend.target(scope)
        got = await target.search(
            query,
            k=k,
            mode=mode,
            session_id=session_id,
            user_id=scope.user(user_id),
            char_budget=char_budget,
            **backend.tenant_kwargs(scope),
        )
        out: dict[str, Any] = {"mode": got.mode, "results": [_item(m) for m in got.results]}
        if mode == "context":
            out["context"] = got.context
        return out

    @server.tool(description="List memories in write order, one page at a time.")
    @_tool_errors
    async def list_memories(
        ctx: Context,
        page: Annotated[int, Field(ge=1, le=1_000_000)] = 1,
        page_size: Annotated[int, Field(ge=1, le=200)] = 20,
        session_id: Annotated[str | None, Field(description="Only this conversation.")] = None,
        user_id: Annotated[str | None, Field(description="User (default: the configured one).")] = None,
    ) -> dict[str, Any]:
        scope = scope_of(ctx)
        target = await backend.target(scope)
        got = await target.list(
            None,
            page,
            page_size,
            session_id=session_id,
            user_id=scope.user(user_id),
            **backend.tenant_kwargs(scope),
        )
        return {
            "count": got.count,
            "next": got.next,
            "previous": got.previous,
            "results": [_item(m) for m in got.results],
        }

    @server.tool(description="One memory by id.")
    @_tool_errors
    async def get_memory(ctx: Context, memory_id: str) -> dict[str, Any]:
        scope = scope_of(ctx)
        return _item(await memory_in_scope(await backend.target(scope), scope, memory_id))

    @server.tool(description="Delete one memory (and what was derived from it).")
    @_tool_errors
    async def delete_memory(ctx: Context, memory_id: str) -> dict[str, Any]:
        scope = scope_of(ctx)
        target = await backend.target(scope)
        await memory_in_scope(target, scope, memory_id)
        await target.delete(memory_id, **backend.tenant_kwargs(scope))
        return {"deleted": memory_id}

    @server.tool(description="Erase everything stored for a user; answers with the erase receipt.")
    @_tool_errors
    async def erase_user(
        ctx: Context,
        user_id: Annotated[str, Field(min_length=1, description="The user to erase (must be named).")],
    ) -> dict[str, Any]:
        scope = scope_of(ctx)
        target = await backend.target(scope)
        receipt = await target.erase(user_id=scope.user(user_id), **backend.tenant_kwargs(scope))
        return receipt.model_dump(mode="json")

    return server
