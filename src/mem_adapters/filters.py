"""Validate caller filters and translate them into Chroma ``where`` clauses.

A filter is a dict of ``field: value`` (equality) or ``field: {"$op": value}``, combined with
``$and`` / ``$or``. Engine fields (``kind``, ``role``, ``session_id``, ``timestamp``...) are
addressed by name; any other key, or ``metadata.<key>``, addresses caller metadata. Unknown
operators are errors, never ignored.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from .errors import ValidationError
from .models import to_utc
from .records import CALLER_PREFIX, epoch

COMPARISONS = frozenset({"$eq", "$ne", "$gt", "$gte", "$lt", "$lte", "$in", "$nin"})
LOGICAL = frozenset({"$and", "$or"})
# Engine fields a caller may filter on, and the Chroma field each maps to.
FILTERABLE = {
    "kind": "kind",
    "role": "role",
    "session_id": "session_id",
    "user_id": "user_id",
    "agent_id": "agent_id",
    "sub_tenant_id": "sub_tenant_id",
    "sub_session_id": "sub_session_id",
    "status": "status",
    "timestamp": "ts",
    "created_at": "created_at",
    "updated_at": "updated_at",
    "seq": "seq",
    "version": "version",
    "is_latest": "is_latest",
    "supersedes": "supersedes",
    "parent_id": "parent_id",
}
_TIME_FIELDS = frozenset({"ts", "created_at", "updated_at"})
_SCALARS = (str, int, float, bool)
_RANGES = frozenset({"$gt", "$gte", "$lt", "$lte"})


def _kind(value: Any) -> str:
    """Chroma's operand families: bools are not numbers."""
    if isinstance(value, bool):
        return "bool"
    return "number" if isinstance(value, int | float) else "str"


def _value(field: str, target: str, value: Any, path: str) -> Any:
    if target in _TIME_FIELDS and isinstance(value, str | datetime):
        try:
            return epoch(to_utc(value))
        except ValueError as e:
            raise ValidationError(path, str(e)) from e
    if not isinstance(value, _SCALARS):
        raise ValidationError(path, f"filter value for {field!r} must be a scalar, got {value!r}")
    return value


def _field(field: str, cond: Any, path: str) -> dict[str, Any]:
    if field.startswith("metadata."):
        target = CALLER_PREFIX + field[len("metadata.") :]
    elif field in FILTERABLE:
        target = FILTERABLE[field]
    elif field.startswith("$"):
        raise ValidationError(path, f"unknown operator {field!r}")
    else:
        target = CALLER_PREFIX + field
    if not isinstance(cond, dict):
        return {target: _value(field, target, cond, path)}
    if not cond:
        raise ValidationError(path, "empty condition")
    parts = []
    for op, val in cond.items():
        if op not in COMPARISONS:
            raise ValidationError(f"{path}.{op}", f"unknown operator {op!r}")
        if op in ("$in", "$nin"):
            if not isinstance(val, list | tuple) or not val:
                raise ValidationError(f"{path}.{op}", "needs a non-empty list")
            values = [_value(field, target, v, path) for v in val]
            kinds = {_kind(v) for v in values}
            if len(kinds) > 1:  # Chroma evaluates one operand type per list
                raise ValidationError(
                    f"{path}.{op}", "values must be all strings, all numbers or all booleans"
                )
            if kinds == {"number"} and any(isinstance(v, float) for v in values):
                values = [float(v) for v in values]  # ints and floats compare equal as floats
            parts.append({target: {op: values}})
        elif op in _RANGES:
            value = _value(field, target, val, path)
            if _kind(value) != "number":
                raise ValidationError(
                    f"{path}.{op}", f"needs a number (or a date on time fields), got {val!r}"
                )
            parts.append({target: {op: value}})
        else:
            parts.append({target: {op: _value(field, target, val, path)}})
    return parts[0] if len(parts) == 1 else {"$and": parts}


def translate(filters: dict[str, Any] | None, path: str = "filters") -> dict[str, Any] | None:
    """Translate a caller filter into a Chroma ``where`` clause (``None`` when empty).

    Raises:
        ValidationError: unknown operator, bad value or malformed structure; names the path.
    """
    if filters is None:
        return None
    if not isinstance(filters, dict):
        raise ValidationError(path, "must be a dict")
    clauses: list[dict[str, Any]] = []
    for key, cond in filters.items():
        if key in LOGICAL:
            if not isinstance(cond, list | tuple) or not cond:
                raise ValidationError(f"{path}.{key}", "needs a non-empty list of filters")
            subs = [translate(c, f"{path}.{key}[{i}]") for i, c in enumerate(cond)]
            subs = [s for s in subs if s]
            if len(subs) == 1:
                clauses.append(subs[0])
            elif subs:
                clauses.append({key: subs})
        else:
            clauses.append(_field(key, cond, f"{path}.{key}"))
    return all_of(*clauses)


def all_of(*clauses: dict[str, Any] | None) -> dict[str, Any] | None:
    """AND the non-empty clauses together (Chroma's ``$and`` needs two or more)."""
    parts = [c for c in clauses if c]
    if not parts:
        return None
    return parts[0] if len(parts) == 1 else {"$and": parts}
