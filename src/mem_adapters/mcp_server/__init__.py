"""The MCP server of ``mem-adapters mcp`` (official ``mcp`` SDK; stdio and streamable HTTP).

Modules: :mod:`.scope` (who a tool call acts for: configuration or token), :mod:`.backend`
(the in-process engine or the REST service through :class:`~mem_adapters.client.AsyncMemoryClient`),
:mod:`.tools` (the tools: remember, search, list_memories, get_memory, delete_memory, erase_user),
:mod:`.run` (stdio / HTTP runners). Needs the ``[server]`` extra.

Example:
    >>> from mem_adapters.mcp_server import McpConfig, build_server  # doctest: +SKIP
    >>> server = build_server(Backend(McpConfig(path="./store", tenant="acme", user="dana")))
"""

from __future__ import annotations

from .backend import Backend
from .scope import McpConfig, Scope
from .tools import TOOL_NAMES, build_server

__all__ = ["TOOL_NAMES", "Backend", "McpConfig", "Scope", "build_server"]
