"""Argument checks shared by the adapters: typed errors at construction, not at first use."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from llama_index.core.base.llms.types import ChatMessage

from mem_adapters import ValidationError

ID_FIELDS = ("tenant_id", "user_id", "session_id", "agent_id")
"""Constructor arguments that name a scope: non-empty strings (``tenant_id`` may not be None)."""


def check_id(field: str, value: Any, *, optional: bool = False) -> None:
    """Require a non-empty string id (``None`` too when ``optional``).

    Raises:
        ValidationError: ``value`` is empty, blank or not a string.
    """
    if value is None and optional:
        return
    if not isinstance(value, str) or not value.strip():
        raise ValidationError(field, f"must be a non-empty string, got {value!r}")


def check_count(field: str, value: Any) -> None:
    """Require a result count: an ``int`` >= 1 (not a ``bool``).

    Raises:
        ValidationError: anything else.
    """
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValidationError(field, f"must be an integer >= 1, got {value!r}")


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
