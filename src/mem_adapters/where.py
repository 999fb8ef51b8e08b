"""Evaluate Chroma ``where`` clauses on metadata dicts in Python.

Derived indexes (the lexical index of :mod:`mem_adapters.retrieval`) must return exactly the
records Chroma would return for the same clause, so this mirrors Chroma's semantics:

- ``{"f": v}`` is ``{"f": {"$eq": v}}``; ``$and`` / ``$or`` take lists of clauses.
- A record without the field fails ``$eq``/``$gt``/``$gte``/``$lt``/``$lte``/``$in`` and
  passes ``$ne``/``$nin`` (as Chroma does).
- Booleans are their own type: ``True`` never equals ``1``; ints and floats compare as
  numbers; values of different types are never equal and never ordered.
- A float operand compared with a stored *int* is truncated toward zero first (chromadb
  1.5's behaviour: ``{"b": 1.5}`` matches ``b = 1``, ``{"b": {"$gt": -1.5}}`` matches
  ``b = 0`` but not ``b = -1``); a stored float is compared with the operand as is.

Unknown operators raise :class:`~mem_adapters.errors.ValidationError`: a filter is never
silently ignored.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from typing import Any

from .errors import ValidationError

Predicate = Callable[[Mapping[str, Any]], bool]

_MISSING = object()


def _kind(value: Any) -> str:
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, int | float):
        return "num"
    if isinstance(value, str):
        return "str"
    return "other"


def _as_stored(a: Any, b: Any) -> Any:
    """The operand ``b`` as Chroma compares it with the stored value ``a``."""
    if type(a) is int and type(b) is float and math.isfinite(b):
        return int(b)
    return b


def _eq(a: Any, b: Any) -> bool:
    return a is not _MISSING and _kind(a) == _kind(b) and a == _as_stored(a, b)


def _ordered(a: Any, b: Any) -> bool:
    # Chroma only orders numbers; a string or bool range never matches.
    return a is not _MISSING and _kind(a) == "num" and _kind(b) == "num"


def _compile_op(field: str, op: str, value: Any, path: str) -> Predicate:
    if op == "$eq":
        return lambda md: _eq(md.get(field, _MISSING), value)
    if op == "$ne":
        return lambda md: not _eq(md.get(field, _MISSING), value)
    if op in ("$in", "$nin"):
        if not isinstance(value, list | tuple):
            raise ValidationError(path, f"{op} needs a list")
        values = list(value)
        if op == "$in":
            return lambda md: any(_eq(md.get(field, _MISSING), v) for v in values)
        return lambda md: not any(_eq(md.get(field, _MISSING), v) for v in values)
    if op == "$gt":
        return lambda md: _ordered(a := md.get(field, _MISSING), value) and a > _as_stored(a, value)
    if op == "$gte":
        return lambda md: _ordered(a := md.get(field, _MISSING), value) and a >= _as_stored(a, value)
    if op == "$lt":
        return lambda md: _ordered(a := md.get(field, _MISSING), value) and a < _as_stored(a, value)
    if op == "$lte":
        return lambda md: _ordered(a := md.get(field, _MISSING), value) and a <= _as_stored(a, value)
    raise ValidationError(path, f"unknown operator {op!r}")


def _all(preds: list[Predicate]) -> Predicate:
    if len(preds) == 1:
        return preds[0]
    return lambda md: all(p(md) for p in preds)


def compile_where(where: Mapping[str, Any] | None, path: str = "where") -> Predicate:
    """Compile a Chroma ``where`` clause into a predicate over a metadata dict.

    Args:
        where: The clause (``None`` or ``{}`` matches everything).
        path: Name used in error messages.

    Returns:
        A function ``metadata -> bool``.

    Raises:
        ValidationError: unknown operator or malformed clause.

    Example:
        >>> compile_where({"$and": [{"kind": "turn"}, {"ts": {"$gte": 10}}]})({"kind": "turn", "ts": 12})
        True
    """
    if not where:
        return lambda md: True
    if not isinstance(where, Mapping):
        raise ValidationError(path, "must be a dict")
    preds: list[Predicate] = []
    for key, cond in where.items():
        if key in ("$and", "$or"):
            if not isinstance(cond, list | tuple) or not cond:
                raise ValidationError(f"{path}.{key}", "needs a non-empty list of clauses")
            subs = [compile_where(c, f"{path}.{key}[{i}]") for i, c in enumerate(cond)]
            if key == "$and":
                preds.append(_all(subs))
            else:
                preds.append(lambda md, subs=subs: any(p(md) for p in subs))
        elif key.startswith("$"):
            raise ValidationError(f"{path}.{key}", f"unknown operator {key!r}")
        elif isinstance(cond, Mapping):
            if not cond:
                raise ValidationError(f"{path}.{key}", "empty condition")
            preds.append(_all([_compile_op(key, op, v, f"{path}.{key}.{op}") for op, v in cond.items()]))
        else:
            preds.append(_compile_op(key, "$eq", cond, f"{path}.{key}"))
    return _all(preds)


def matches(where: Mapping[str, Any] | None, metadata: Mapping[str, Any]) -> bool:
    """Whether ``metadata`` satisfies ``where`` (see :func:`compile_where`)."""
    return compile_where(where)(metadata)
