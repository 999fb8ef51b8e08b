"""Argument checks shared by the adapters: typed errors at construction, not at first use."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from llama_index.core.base.llms.types import ChatMessage

from mem_adapters import ValidationError
from mem_adapters.validation import check_count, check_id

ID_FIELDS = ("tenant_id", "user_id", "session_id", "agent_id")
"""Constructor arguments that name a scope: non-empty strings (``tenant_id`` may not be None)."""


def check_settings(data: Mapping[str, Any], counts: Sequence[str] = ()) -> None:
    """Check the ids and counts among an adapter's constructor arguments (absent ones pass).

    Raises:
        ValidationError: an id is empty or not a string, a count is not an integer >= 1.
    """
    for field in ID_FIELDS:
        if field in data:
            check_id(field, data[field], optional=field != "tenant_id")
    for field in counts:
        if field in data:
            check_count(field, data[field])


def check_message(message: Any, field: str = "message") -> ChatMessage:
    """Require a ``ChatMessage``.

    Raises:
        ValidationError: anything else (a ``str`` included).
    """
    if not isinstance(message, ChatMessage):
        raise ValidationError(field, f"must be a ChatMessage, got {type(message).__name__}")
    return message


def check_messages(messages: Any, field: str = "messages") -> list[ChatMessage]:
    """Require a list (or other sequence) of ``ChatMessage``.

    Raises:
        ValidationError: one message instead of a list, a ``str``, or a non-message item.
    """
    if isinstance(messages, ChatMessage | str | bytes) or not isinstance(messages, Sequence):
        raise ValidationError(field, f"must be a list of ChatMessage, got {type(messages).__name__}")
    return [check_message(m, f"{field}[{i}]") for i, m in enumerate(messages)]
