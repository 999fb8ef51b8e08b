"""Argument checks run at the top of every public engine method, before anything is read or written.

Each raises :class:`~mem_adapters.errors.ValidationError` naming the argument (or
:class:`~mem_adapters.errors.LimitExceededError` for a size over a :class:`~mem_adapters.limits.Limits`
value). Strings must be encodable as UTF-8: a lone surrogate (U+D800 alone) would otherwise
reach Chroma and fail there as a ``UnicodeEncodeError``.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Iterable
from typing import Any

from ..errors import LimitExceededError, ValidationError
from ..limits import Limits

logger = logging.getLogger(__name__)

STATUSES = ("active", "archived")
KINDS = ("turn", "fact", "episode", "raw", "chunk")


def utf8_size(field: str, value: str) -> int:
    """UTF-8 length of ``value``.

    Raises:
        ValidationError: the string holds a lone surrogate (not encodable as UTF-8).
    """
    try:
        return len(value.encode("utf-8"))
    except UnicodeEncodeError as e:
        raise ValidationError(field, f"is not valid Unicode text (lone surrogate at {e.start})") from None


def text(field: str, value: Any, max_bytes: int, *, optional: bool = False) -> None:
    """A non-empty, UTF-8 encodable string of at most ``max_bytes`` bytes (``None`` if optional)."""
    if value is None and optional:
        return
    if not isinstance(value, str) or not value.strip():
        raise ValidationError(field, "must be a non-empty string")
    if len(value) > max_bytes:  # a character is at least one byte: no need to encode it all
        raise LimitExceededError(field, f"is longer than {max_bytes} bytes (see Limits)")
    size = utf8_size(field, value)
    if size > max_bytes:
        raise LimitExceededError(field, f"is {size} bytes, more than {max_bytes} (see Limits)")


def ids(limits: Limits, **values: Any) -> None:
    """Scope values and ids: each ``None`` or a non-empty string within ``limits.max_id_bytes``."""
    for field, value in values.items():
        text(field, value, limits.max_id_bytes, optional=True)


def id_list(field: str, value: Any, limits: Limits) -> list[str]:
    """A list (or tuple/iterable, not a bare string) of non-empty string ids; returned as a list."""
    if isinstance(value, str | bytes | dict) or not isinstance(value, Iterable):
        raise ValidationError(field, "must be a list of ids (a bare string is not a list)")
    out = list(value)
    for i, item in enumerate(out):
        text(f"{field}[{i}]", item, limits.max_id_bytes)
    return out


def integer(field: str, value: Any, *, minimum: int = 0, optional: bool = False) -> None:
    """An ``int`` (never a ``bool``, float or numeric string) of at least ``minimum``."""
    if value is None and optional:
        return
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise ValidationError(field, f"must be an integer >= {minimum}")


def seconds(field: str, value: Any, *, optional: bool = False, allow_zero: bool = False) -> None:
    """A finite positive number of seconds (never NaN, inf or a ``bool``)."""
    if value is None and optional:
        return
    if (
        isinstance(value, bool)
        or not isinstance(value, int | float)
        or not math.isfinite(value)
        or value < 0
        or (value == 0 and not allow_zero)
    ):
        raise ValidationError(field, "must be a finite positive number of seconds")


def flag(field: str, value: Any) -> None:
    """A ``bool``."""
    if not isinstance(value, bool):
        raise ValidationError(field, "must be True or False")


def status(value: Any, *, optional: bool = False) -> None:
    """``"active"`` or ``"archived"`` (or ``None`` if optional)."""
    if value is None and optional:
        return
    if not isinstance(value, str) or value not in STATUSES:
        raise ValidationError("status", "must be 'active' or 'archived'" + (" or None" if optional else ""))


def kinds(value: Any) -> None:
    """``None`` or a non-empty list of known kinds (a bare string is refused, not split)."""
    if value is None:
        return
    if isinstance(value, str | bytes | dict) or not isinstance(value, Iterable):
        raise ValidationError("kinds", f"must be a list of kinds from {list(KINDS)}")
    items = list(value)
    if not items or not all(isinstance(k, str) and k in KINDS for k in items):
        raise ValidationError("kinds", f"must be a non-empty list of kinds from {list(KINDS)}")


def mapping(field: str, value: Any, *, optional: bool = True) -> None:
    """``None`` (if optional) or a dict."""
    if value is None and optional:
        return
    if not isinstance(value, dict):
        raise ValidationError(field, f"must be a dict, got {type(value).__name__}")
