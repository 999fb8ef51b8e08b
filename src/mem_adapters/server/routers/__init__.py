"""One router per resource of the service."""

from __future__ import annotations

from . import (
    conversations,
    health,
    ingestion,
    inspector,
    jobs,
    memories,
    native,
    native_ops,
    user_memory,
    users,
)

ROUTERS = [
    health.router,
    ingestion.router,
    user_memory.router,
    memories.router,
    conversations.router,
    jobs.router,
    users.router,
    native.router,
    native_ops.router,
    inspector.router,
]

__all__ = ["ROUTERS"]
