"""Argument checks the framework adapters share: typed errors at construction, not at first use.

Both integration packages import these, so an id or a count is refused the same way (and with
the same message) whichever framework the adapter serves.
"""

from __future__ import annotations

from typing import Any

from .errors import ValidationError


def check_id(field: str, value: Any, *, optional: bool = False) -> None:
    """Require a non-empty string id (``None`` too when ``optional``).

    Raises:
        ValidationError: ``value`` is empty, blank or not a string.

    Example:
        >>> check_id("session_id", "chat-1")
        >>> check_id("user_id", None, optional=True)
    """
    if value is None and optional:
        return
    if not isinstance(value, str) or not value.strip():
        raise ValidationError(field, f"must be a non-empty string, got {value!r}")


def check_count(field: str, value: Any) -> None:
    """Require a result count: an ``int`` >= 1 (not a ``bool``).

    Raises:
        ValidationError: anything else.

    Example:
        >>> check_count("k", 4)
    """
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValidationError(field, f"must be an integer >= 1, got {value!r}")
