"""LangGraph long-term memory store (``BaseStore``) over the mem-adapters engine.

Every item is one engine memory (``kind="raw"``) in a configurable tenant, with a stable id
derived from its namespace and key, so a re-put replaces it and the engine keeps the old
version in its history. The namespace is stored in caller metadata both whole and one label
per level (``lg_ns0``, ``lg_ns1``...), so namespace prefixes become engine filters; selected
namespace levels can also be mapped onto engine scopes (``agent_id``, ``session_id``...).

Every item belongs to a user, so :meth:`MemoryEngine.erase` (``erase(user_id=...)``) reaches it:
by default the namespace's first label is the user (``("u1", "memories")`` belongs to ``u1``);
``scopes={"user_id": 1}`` takes another level (``("memories", "u1")``), ``user_from_namespace``
any rule, and ``user_id=`` binds the whole store to one user (its reads see only that user's
items). A namespace without the user's level is refused (``ValidationError``): no item is
stored out of its user's reach.

Semantics follow LangGraph's ``InMemoryStore`` (reads in a batch see the state before the
batch's writes, the last write to a key in a batch wins, filters use the same operators and
comparisons, un-indexed items fill a semantic page after the scored ones, a hit's ``score`` is
the cosine similarity of the query and the item), with two deliberate differences:
``created_at`` survives a re-put (as in the Postgres store), and namespaces only exist while
they hold an item. Hits come in the engine's order (hybrid dense + lexical ranking), so their
cosine scores need not decrease down the list.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import math
import os
import threading
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from datetime import datetime, timezone
from typing import Any, Literal

from langgraph.store.base import (
    NOT_PROVIDED,
    BaseStore,
    GetOp,
    Item,
    ListNamespacesOp,
    MatchCondition,
    NotProvided,
    Op,
    PutOp,
    Result,
    SearchItem,
    SearchOp,
    TTLConfig,
    get_text_at_path,
    tokenize_path,
)
from langgraph.store.base import InvalidNamespaceError as LangGraphNamespaceError

import mem_adapters
from mem_adapters import AsyncMemoryEngine, MemoryItem, NotFoundError, ValidationError
from mem_adapters.models import DEFAULT_TENANT

from ._runner import ClosableAdapter, EngineLike, EngineRunner, build_engine, check_id

logger = logging.getLogger(__name__)

SCOPE_FIELDS = frozenset({"sub_tenant_id", "user_id", "agent_id", "session_id"})
_PAGE = 1000
_clock_lock = threading.Lock()
_last_ns = 0


def _now_ns() -> int:
    """Wall-clock nanoseconds, strictly increasing in this process (orders items by creation)."""
    global _last_ns
    with _clock_lock:
        _last_ns = max(time.time_ns(), _last_ns + 1)
        return _last_ns


class InvalidNamespaceError(mem_adapters.InvalidNamespaceError, LangGraphNamespaceError):
    """A namespace is not a tuple of valid labels: both mem-adapters' and LangGraph's error.

    Catch it as :class:`mem_adapters.InvalidNamespaceError` (a ``ValidationError``, field
    ``"namespace"``) or as ``langgraph.store.base.InvalidNamespaceError``.
    """


def check_namespace(namespace: Any, what: str = "namespace", *, put: bool = False) -> tuple[str, ...]:
    """The namespace as a tuple, checked like LangGraph's stores check their labels.

    A bare ``str`` is refused rather than read as one label per character.

    Args:
        namespace: The namespace (or prefix, or match path) given.
        what: Its name in the error message.
        put: Also refuse what ``BaseStore.put`` refuses: an empty namespace, a ``"langgraph"`` root.

    Raises:
        InvalidNamespaceError: ``namespace`` is not a tuple/list of strings, or a label is
            empty or holds a period or a NUL byte.
    """
    if not isinstance(namespace, tuple | list):
        hint = f" (did you mean ({namespace!r},)?)" if isinstance(namespace, str) and namespace else ""
        raise InvalidNamespaceError(
            f"{what} must be a tuple of strings, got {type(namespace).__name__} {namespace!r}{hint}"
        )
    for label in namespace:
        if not isinstance(label, str):
            raise InvalidNamespaceError(
                f"{what} labels must be strings, got {type(label).__name__} {label!r} in {namespace!r}"
            )
        if not label:
            raise InvalidNamespaceError(f"{what} labels cannot be empty strings: {namespace!r}")
        if "." in label or "\x00" in label:
            raise InvalidNamespaceError(
                f"{what} label {label!r} cannot contain a period or a NUL byte: {namespace!r}"
            )
    if put and not namespace:
        raise InvalidNamespaceError(f"{what} cannot be empty")
    if put and namespace[0] == "langgraph":
        raise InvalidNamespaceError(f'{what} root label cannot be "langgraph": {namespace!r}')
    return tuple(namespace)


def check_op(op: Op) -> None:
    """Check every namespace an op carries (``BaseStore`` methods and direct ``batch`` calls).

    Raises:
        InvalidNamespaceError: a namespace, prefix or match-condition path is invalid.
        ValueError: unknown operation type (as ``InMemoryStore``).
    """
    if isinstance(op, GetOp | PutOp):
        check_namespace(op.namespace)
    elif isinstance(op, SearchOp):
        check_namespace(op.namespace_prefix, "namespace_prefix")
    elif isinstance(op, ListNamespacesOp):
        for cond in op.match_conditions or ():
            check_namespace(cond.path, f"{cond.match_type} path")
    else:
        raise ValueError(f"Unknown operation type: {type(op)}")


def _cosine(a: Sequence[float], b: Sequence[float]) -> float:
    dot = sum(x * y for x, y in zip(a, b, strict=True))
    norm = math.sqrt(sum(x * x for x in a)) * math.sqrt(sum(y * y for y in b))
    return dot / norm if norm else 0.0


def _check_ttl(field: str, ttl: Any) -> None:
    if isinstance(ttl, bool) or not isinstance(ttl, int | float) or not 0 < ttl < float("inf"):
        raise ValidationError(field, "must be a positive number of minutes (or None)")


def _dt(ns: int) -> datetime:
    return datetime.fromtimestamp(ns / 1e9, tz=timezone.utc)


def memory_id(namespace: tuple[str, ...], key: str) -> str:
    """The engine memory id of a store item: stable in (namespace, key)."""
    raw = json.dumps([list(namespace), key], ensure_ascii=False, separators=(",", ":"))
    return "lgs_" + hashlib.sha256(raw.encode("utf-8")).hexdigest()[:40]


def _ns_filter(prefix: Iterable[str]) -> dict[str, Any]:
    """Engine filter for store items under a namespace prefix (``"*"`` labels match anything)."""
    where: dict[str, Any] = {"lg_store": True}
    for i, label in enumerate(prefix):
        if label != "*":
            where[f"lg_ns{i}"] = label
    return where


def _pushdown(filter_: dict[str, Any] | None) -> tuple[dict[str, Any], bool]:
    """Engine filter for the parts of a store filter Chroma evaluates exactly like Python.

    Only string equality is pushed down (numbers and booleans compare differently across
    types); the whole filter is always re-checked in Python. Returns ``(where, complete)``.
    """
    where: dict[str, Any] = {}
    complete = True
    for key, cond in (filter_ or {}).items():
        if isinstance(cond, dict) and set(cond) == {"$eq"}:
            cond = cond["$eq"]
        if isinstance(cond, str):
            where[f"lgv.{key}"] = cond
        else:
            complete = False
    return where, complete


def compare_values(item_value: Any, filter_value: Any) -> bool:
    """Whether a stored value matches a filter value (LangGraph ``InMemoryStore`` semantics)."""
    if isinstance(filter_value, dict):
        if any(k.startswith("$") for k in filter_value):
            return all(apply_operator(item_value, op, v) for op, v in filter_value.items())
        if not isinstance(item_value, dict):
            return False
        return all(compare_values(item_value.get(k), v) for k, v in filter_value.items())
    if isinstance(filter_value, list | tuple):
        return (
            isinstance(item_value, list | tuple)
            and len(item_value) == len(filter_value)
            and all(compare_values(iv, fv) for iv, fv in zip(item_value, filter_value, strict=False))
        )
    return bool(item_value == filter_value)


def apply_operator(value: Any, operator: str, op_value: Any) -> bool:
    """Apply one comparison operator (``$eq $ne $gt $gte $lt $lte``) like ``InMemoryStore``.

    Raises:
        ValueError: unknown operator.
    """
    if operator == "$eq":
        return bool(value == op_value)
    if operator == "$ne":
        return bool(value != op_value)
    if operator in ("$gt", "$gte", "$lt", "$lte"):
        a, b = float(value), float(op_value)
        return {"$gt": a > b, "$gte": a >= b, "$lt": a < b, "$lte": a <= b}[operator]
    raise ValueError(f"Unsupported operator: {operator}")


def _matches(value: dict[str, Any], filter_: dict[str, Any] | None) -> bool:
    return not filter_ or all(compare_values(value.get(k), fv) for k, fv in filter_.items())


def does_match(condition: MatchCondition, namespace: tuple[str, ...]) -> bool:
    """Whether a namespace matches a prefix/suffix condition (``"*"`` is a wildcard label).

    Raises:
        ValueError: unknown match type.
    """
    path = condition.path
    if len(namespace) < len(path):
        return False
    if condition.match_type == "prefix":
        pairs = zip(namespace, path, strict=False)
    elif condition.match_type == "suffix":
        pairs = zip(reversed(namespace), reversed(path), strict=False)
    else:
        raise ValueError(f"Unsupported match type: {condition.match_type}")
    return all(p == "*" or k == p for k, p in pairs)


def _mid_of(item: MemoryItem) -> str:
    """The (namespace, key) id of a stored item (``lg_id``; items of older releases lack it)."""
    md = item.metadata
    return md.get("lg_id") or memory_id(tuple(md["lg_ns"]), md["lg_key"])


def _is_store_item(item: MemoryItem) -> bool:
    md = item.metadata
    return item.kind == "raw" and md.get("lg_store") is True and isinstance(md.get("lg_value"), dict)


def _namespace(item: MemoryItem) -> tuple[str, ...]:
    return tuple(item.metadata["lg_ns"])


def _to_item(item: MemoryItem) -> Item:
    md = item.metadata
    return Item(
        value=md["lg_value"], key=md["lg_key"], namespace=_namespace(item),
        created_at=_dt(md["lg_created_ns"]), updated_at=_dt(md["lg_updated_ns"]),
    )  # fmt: skip


def _to_search_item(item: MemoryItem, score: float | None) -> SearchItem:
    md = item.metadata
    return SearchItem(
        namespace=_namespace(item), key=md["lg_key"], value=md["lg_value"],
        created_at=_dt(md["lg_created_ns"]), updated_at=_dt(md["lg_updated_ns"]), score=score,
    )  # fmt: skip


class MemAdaptersStore(ClosableAdapter, BaseStore):
    """LangGraph ``BaseStore`` whose items are mem-adapters memories, searched semantically.

    Use it as a LangGraph / LangChain 1.x agent's long-term memory:
    ``graph.compile(store=MemAdaptersStore(engine))`` or ``create_agent(..., store=store)``.

    Args:
        engine: A :class:`~mem_adapters.MemoryEngine` or service
            :class:`~mem_adapters.client.MemoryClient` (``batch`` and ``abatch``), or an
            :class:`~mem_adapters.AsyncMemoryEngine` / ``AsyncMemoryClient`` (``abatch``
            only). Built from ``path``/``client``/``engine_kwargs`` when absent.
        tenant_id: Engine tenant holding every item of this store (over a service client,
            leave it: the tenant is the credential's).
        scopes: Namespace levels mapped onto engine scope fields, e.g. ``{"user_id": 1}``
            makes ``("memories", "u1")`` items belong to user ``u1``. Without a user mapping
            the user is level 0 (``{"user_id": 0}``).
        user_id: Every item belongs to this user, and reads see only this user's items.
        user_from_namespace: ``namespace -> user id``, for layouts a level cannot express.
            At most one of ``user_id``, ``user_from_namespace`` and ``scopes["user_id"]``.
        index_fields: JSON paths embedded by default (``["$"]``: the whole value), like
            ``IndexConfig["fields"]``; a put's ``index`` overrides them, ``index=False``
            stores the item unsearchable by query (still returned by get/search/list).
        ttl_config: LangGraph ``TTLConfig``; its ``default_ttl`` (minutes) applies to puts
            that give no ``ttl``. A put's ``ttl`` (minutes) becomes the engine memory's
            expiry: the item vanishes from every read once it passes. A get or search with
            ``refresh_ttl`` (default: ``ttl_config["refresh_on_read"]``, else true) restarts
            the TTL of the items it returns (``engine.touch``; no new version is written).
        path: Folder of an embedded store (when ``engine`` is absent).
        client: A chromadb client (when ``engine`` is absent).
        engine_kwargs: Further :class:`~mem_adapters.MemoryEngine` arguments.

    A hit's ``score`` is the cosine similarity of the query and the item's embedded text
    (comparable with ``InMemoryStore``'s); hits come in the engine's hybrid ranking order.
    Usable as ``with``/``async with``; a closed store raises :class:`~mem_adapters.ClosedError`.

    Raises:
        ValidationError: unknown scope field or negative level, empty ``tenant_id``, more
            than one user mapping.

    Example:
        >>> store = MemAdaptersStore(engine, scopes={"user_id": 1})  # doctest: +SKIP
        >>> store.put(("memories", "u1"), "food", {"text": "allergic to shellfish"})  # doctest: +SKIP
        >>> store.search(("memories", "u1"), query="what can't I eat?")[0].key  # doctest: +SKIP
        'food'
    """

    supports_ttl: bool = True

    def __init__(
        self,
        engine: EngineLike | None = None,
        *,
        tenant_id: str = DEFAULT_TENANT,
        scopes: Mapping[str, int] | None = None,
        user_id: str | None = None,
        user_from_namespace: Callable[[tuple[str, ...]], str] | None = None,
        index_fields: list[str] | None = None,
        ttl_config: TTLConfig | None = None,
        path: str | os.PathLike[str] | None = None,
        client: Any = None,
        engine_kwargs: dict[str, Any] | None = None,
    ) -> None:
        check_id("tenant_id", tenant_id)
        for field, level in (scopes or {}).items():
            if field not in SCOPE_FIELDS:
                raise ValidationError(f"scopes.{field}", f"must be one of {sorted(SCOPE_FIELDS)}")
            if isinstance(level, bool) or not isinstance(level, int) or level < 0:
                raise ValidationError(f"scopes.{field}", "must be a namespace level >= 0")
        check_id("user_id", user_id, optional=True)
        mappings = [user_id is not None, user_from_namespace is not None, "user_id" in (scopes or {})]
        if sum(mappings) > 1:
            raise ValidationError(
                "user_id",
                "give one user mapping: user_id=, user_from_namespace= or scopes={'user_id': level}",
            )
        if user_from_namespace is not None and not callable(user_from_namespace):
            raise ValidationError("user_from_namespace", "must be a callable namespace -> user id")
        default_ttl = (ttl_config or {}).get("default_ttl")
        if default_ttl is not None:
            _check_ttl("ttl_config.default_ttl", default_ttl)
        self.ttl_config = ttl_config
        self.tenant_id = tenant_id
        self.scopes = dict(scopes or {})
        self.user_id = user_id
        self.user_from_namespace = user_from_namespace
        self._user_level = self.scopes.pop("user_id", 0)
        self.index_fields = list(index_fields or ["$"])
        self._index_tokens = [(p, tokenize_path(p) if p != "$" else p) for p in self.index_fields]
        built, owned = build_engine(engine, path=path, client=client, engine_kwargs=engine_kwargs)
        self._runner = EngineRunner(built, owned=owned, name=type(self).__name__)

    @property
    def engine(self) -> EngineLike:
        """The engine holding the items."""
        return self._runner.engine

    # ------------------------------------------------------------------ BaseStore

    def put(
        self,
        namespace: tuple[str, ...],
        key: str,
        value: Mapping[str, Any],
        index: Literal[False] | list[str] | None = None,
        *,
        ttl: float | NotProvided | None = NOT_PROVIDED,
    ) -> None:
        """Store or replace an item (``BaseStore.put``); a bad namespace is our typed error."""
        check_namespace(namespace, put=True)
        super().put(namespace, key, value, index, ttl=ttl)

    async def aput(
        self,
        namespace: tuple[str, ...],
        key: str,
        value: Mapping[str, Any],
        index: Literal[False] | list[str] | None = None,
        *,
        ttl: float | NotProvided | None = NOT_PROVIDED,
    ) -> None:
        """Async :meth:`put`."""
        check_namespace(namespace, put=True)
        await super().aput(namespace, key, value, index, ttl=ttl)

    def batch(self, ops: Iterable[Op]) -> list[Result]:
        """Execute get/search/put/list-namespaces ops; results follow the ops' order.

        Raises:
            InvalidNamespaceError: an op's namespace is not a tuple of valid labels.
            ClosedError: the store or its engine is closed.
        """
        op_list = list(ops)
        for op in op_list:
            check_op(op)
        return self._runner.run(lambda aengine: self._abatch(aengine, op_list))

    async def abatch(self, ops: Iterable[Op]) -> list[Result]:
        """Execute get/search/put/list-namespaces ops (async); results follow the ops' order.

        Raises:
            InvalidNamespaceError: an op's namespace is not a tuple of valid labels.
            ClosedError: the store or its engine is closed.
        """
        op_list = list(ops)
        for op in op_list:
            check_op(op)
        return await self._runner.arun(lambda aengine: self._abatch(aengine, op_list))

    # ------------------------------------------------------------------ implementation

    async def _abatch(self, aengine: AsyncMemoryEngine, ops: list[Op]) -> list[Result]:
        puts: dict[tuple[tuple[str, ...], str], PutOp] = {}
        for op in ops:
            if isinstance(op, PutOp):
                puts[(tuple(op.namespace), op.key)] = op  # the last write to a key wins
        results: list[Result] = [None] * len(ops)
        # Reads see the state before this batch's writes, as in InMemoryStore.
        gets = [(i, op) for i, op in enumerate(ops) if isinstance(op, GetOp)]
        if gets:
            found = await self._fetch(aengine, [memory_id(tuple(op.namespace), op.key) for _, op in gets])
            for i, op in gets:
                hit = found.get(memory_id(tuple(op.namespace), op.key))
                results[i] = _to_item(hit) if hit is not None else None
        for i, op in enumerate(ops):
            if isinstance(op, SearchOp):
                results[i] = await self._search(aengine, op)
            elif isinstance(op, ListNamespacesOp):
                results[i] = await self._list_namespaces(aengine, op)
        await self._refresh_ttls(aengine, ops, results)
        if puts:
            await self._apply_puts(aengine, list(puts.values()))
        return results

    async def _refresh_ttls(self, aengine: AsyncMemoryEngine, ops: list[Op], results: list[Result]) -> None:
        """Slide the expiry of items read with ``refresh_ttl`` (their TTL counts from now)."""
        ids: list[str] = []
        for op, result in zip(ops, results, strict=True):
            if isinstance(op, GetOp | SearchOp) and op.refresh_ttl and result:
                items = [result] if isinstance(op, GetOp) else result
                ids.extend(memory_id(tuple(item.namespace), item.key) for item in items)
        if not ids:
            return
        by_ttl: dict[float, list[str]] = {}
        for item in (await self._fetch(aengine, ids)).values():
            ttl = item.metadata.get("lg_ttl_min")
            if ttl is not None:
                by_ttl.setdefault(float(ttl), []).append(item.id)
        for ttl, group in by_ttl.items():
            await aengine.touch(group, ttl * 60, tenant_id=self.tenant_id)

    async def _fetch(self, aengine: AsyncMemoryEngine, ids: list[str]) -> dict[str, MemoryItem]:
        """Items by their (namespace, key) id (:func:`memory_id`), wherever the engine stored them.

        The engine scopes a caller's ``memory_id`` to its user, so an item is found by its
        ``lg_id`` metadata; items written by older releases (stored under the id itself, no
        ``lg_id``) by id.
        """
        wanted = list(dict.fromkeys(ids))
        out: dict[str, MemoryItem] = {}
        for start in range(0, len(wanted), _PAGE):
            part = wanted[start : start + _PAGE]
            for item in await self._list_all(aengine, {"lg_store": True, "lg_id": {"$in": part}}):
                out[_mid_of(item)] = item
            legacy = [i for i in part if i not in out]
            if legacy:
                for item in await aengine.get_many(legacy, tenant_id=self.tenant_id):
                    if _is_store_item(item) and self._readable(item) and _mid_of(item) not in out:
                        out[_mid_of(item)] = item
        return out

    def _engine_id(self, mid: str, user: str) -> str:
        """The ``memory_id`` an item is written with.

        ``mid``; with the user in it for a store bound to one user (two bound stores of one
        tenant may hold the same namespace and key).
        """
        if self.user_id is None:
            return mid
        raw = json.dumps([user, mid], ensure_ascii=False, separators=(",", ":"))
        return "lgs_" + hashlib.sha256(raw.encode("utf-8")).hexdigest()[:40]

    def _readable(self, item: MemoryItem) -> bool:
        """A store bound to a user (``user_id=``) reads only that user's items."""
        return self.user_id is None or item.user_id == self.user_id

    def _user_of(self, namespace: tuple[str, ...]) -> str:
        """The user an item of ``namespace`` belongs to.

        Raises:
            ValidationError: the namespace has no label at the user's level, or
                ``user_from_namespace`` gave no valid user id.
        """
        if self.user_id is not None:
            return self.user_id
        if self.user_from_namespace is not None:
            user = self.user_from_namespace(namespace)
            check_id("user_from_namespace(namespace)", user)
            return user
        if self._user_level >= len(namespace):
            raise ValidationError(
                "namespace",
                f"{namespace!r} has no level {self._user_level} naming its user; every item belongs to a "
                "user so erase(user_id=...) reaches it (see MemAdaptersStore's user_id / scopes)",
            )
        return namespace[self._user_level]

    async def _list_all(self, aengine: AsyncMemoryEngine, filters: dict[str, Any]) -> list[MemoryItem]:
        out: list[MemoryItem] = []
        page = 1
        while True:
            got = await aengine.list(
                filters, page, _PAGE, tenant_id=self.tenant_id, kinds=["raw"], user_id=self.user_id
            )
            out.extend(item for item in got.results if _is_store_item(item))
            if got.next is None:
                return out
            page = got.next

    def _index_texts(self, value: dict[str, Any], index: Any) -> list[str]:
        if index is False:
            return []
        paths = self._index_tokens if index is None else [(p, tokenize_path(p)) for p in index]
        texts: list[str] = []
        for _, tokens in paths:
            texts.extend(t for t in get_text_at_path(value, tokens) if t.strip())
        return texts

    def _check(self, puts: list[PutOp]) -> None:
        """Validate every put before writing any (a bad value must not half-apply a batch)."""
        for op in puts:
            if op.value is None:
                continue
            self._user_of(tuple(op.namespace))
            field = f"value[{tuple(op.namespace)!r}, {op.key!r}]"
            if op.ttl is not None:
                _check_ttl(f"ttl[{tuple(op.namespace)!r}, {op.key!r}]", op.ttl)
            try:
                value = dict(op.value)
                if json.loads(json.dumps(value, allow_nan=False)) != value:
                    raise ValueError("does not read back equal from JSON")
            except (TypeError, ValueError) as e:
                raise ValidationError(field, f"must be JSON-serialisable exactly: {e}") from e

    async def _apply_puts(self, aengine: AsyncMemoryEngine, puts: list[PutOp]) -> None:
        self._check(puts)
        existing = await self._fetch(aengine, [memory_id(tuple(op.namespace), op.key) for op in puts])
        for op in puts:
            namespace = tuple(op.namespace)
            mid = memory_id(namespace, op.key)
            if op.value is None:
                # Deleting a missing key is a no-op, as in every LangGraph store.
                gone = existing.get(mid)
                if gone is not None:
                    with contextlib.suppress(NotFoundError):
                        await aengine.delete(gone.id, tenant_id=self.tenant_id)
                continue
            value = dict(op.value)
            texts = self._index_texts(value, op.index)
            now = _now_ns()
            old = existing.get(mid)
            metadata: dict[str, Any] = {
                "lg_store": True, "lg_id": mid, "lg_ns": list(namespace), "lg_depth": len(namespace),
                **{f"lg_ns{i}": label for i, label in enumerate(namespace)},
                "lg_key": op.key, "lg_value": value,
                "lg_created_ns": old.metadata["lg_created_ns"] if old is not None else now,
                "lg_updated_ns": now,
                **{f"lgv.{k}": v for k, v in value.items() if isinstance(v, str)},
            }  # fmt: skip
            scope = {f: namespace[level] for f, level in self.scopes.items() if level < len(namespace)}
            scope["user_id"] = self._user_of(namespace)
            # An item with nothing to embed (index=False, or no text at its index paths) is
            # stored with index=False: the engine keeps it for get/list but never searches it.
            indexed = bool(texts)
            text = "\n".join(texts) if indexed else json.dumps(value, sort_keys=True, ensure_ascii=False)
            if indexed:
                # Lets a search restore items whose text equals a hit's (see _with_twins).
                metadata["lg_text_sha"] = hashlib.sha256(text.encode("utf-8")).hexdigest()[:24]
            if op.ttl is not None:
                metadata["lg_ttl_min"] = op.ttl  # kept so a reader can tell an expiring item
            # LangGraph TTLs are minutes; the engine hides the item (and its chunks) from every
            # read once expired and purges it in the background.
            await aengine.add(
                raw_text=text, memory_id=self._engine_id(mid, scope["user_id"]), tenant_id=self.tenant_id,
                metadata=metadata,
                index=indexed, expiry_seconds=op.ttl * 60 if op.ttl is not None else None, **scope,
            )  # fmt: skip

    async def _search(self, aengine: AsyncMemoryEngine, op: SearchOp) -> list[SearchItem]:
        if op.limit <= 0:
            return []
        base = _ns_filter(op.namespace_prefix)
        pushed, _ = _pushdown(op.filter)
        if not op.query:
            items = await self._list_all(aengine, {**base, **pushed})
            items = [i for i in items if _matches(i.metadata["lg_value"], op.filter)]
            items.sort(key=lambda i: i.metadata["lg_created_ns"])
            return [_to_search_item(i, None) for i in items[op.offset : op.offset + op.limit]]
        want = op.offset + op.limit
        scored: dict[str, tuple[float | None, MemoryItem]] = {}
        max_k = self._runner.max_search_k
        k = want if max_k is None else min(want, max_k)
        while True:
            result = await aengine.search(
                op.query, k=k, tenant_id=self.tenant_id, kinds=["raw", "chunk"],
                filters={**base, **pushed}, user_id=self.user_id,
            )  # fmt: skip
            scored = {}
            for hit in result.results:
                # A long value is searched through its chunks: a chunk's hit scores its parent.
                parent = hit.id if hit.kind == "raw" else (hit.parent_id or hit.id)
                if parent in scored or not _matches(hit.metadata.get("lg_value", {}), op.filter):
                    continue
                scored[parent] = (None, hit)
            # Post-filtering and chunk merging can leave fewer than wanted: fetch more.
            if len(scored) >= want or len(result.results) < k or (max_k is not None and k >= max_k):
                break
            k = k * 4 if max_k is None else min(k * 4, max_k)
        page = list(scored.values())[:want]
        cosines = await self._cosines(aengine, op.query, [hit for _, hit in page])
        page = [(cos, hit) for cos, (_, hit) in zip(cosines, page, strict=True)]
        ranked = await self._with_twins(aengine, page, {**base, **pushed}, op)
        out = [_to_search_item(hit, score) for score, hit in ranked[op.offset : want]]
        if len(out) < op.limit:
            # Like InMemoryStore: items without a vector fill the page after the scored ones.
            # The search ran out of candidates (else the page would be full), so the matching
            # items it did not rank are the un-indexed ones (plus any indexed item it left out:
            # a near-duplicate, or one beyond its candidate pool; better unscored than dropped).
            ranked_ids = {hit.id if hit.kind == "raw" else hit.parent_id for _, hit in ranked}
            rest = await self._list_all(aengine, {**base, **pushed})
            rest = [i for i in rest if i.id not in ranked_ids and _matches(i.metadata["lg_value"], op.filter)]
            rest.sort(key=lambda i: i.metadata["lg_created_ns"])
            out.extend(_to_search_item(i, None) for i in rest[: op.limit - len(out)])
        return out

    @staticmethod
    async def _cosines(aengine: AsyncMemoryEngine, query: str, hits: list[MemoryItem]) -> list[float]:
        """Cosine similarity of the query and each hit, as ``InMemoryStore`` scores its hits.

        The engine reports it per hit (``score_parts.cosine``); a hit that lacks it (found by
        the lexical side only) is scored here from the engine's embedder.
        """
        out: list[float | None] = [
            hit.score_parts.cosine if hit.score_parts is not None else None for hit in hits
        ]
        missing = [i for i, cos in enumerate(out) if cos is None]
        if missing:
            query_vector = await aengine.embed_query(query)
            vectors = await aengine.embed([hits[i].text for i in missing])
            for i, vector in zip(missing, vectors, strict=True):
                out[i] = _cosine(query_vector, vector)
        return [float(cos) for cos in out if cos is not None]

    async def _with_twins(
        self,
        aengine: AsyncMemoryEngine,
        ranked: list[tuple[float | None, MemoryItem]],
        filters: dict[str, Any],
        op: SearchOp,
    ) -> list[tuple[float | None, MemoryItem]]:
        """Put back the items whose text equals a hit's (the engine returns equal texts once).

        Each twin gets the score of the hit it equals and follows it, oldest first.
        """
        digests = sorted({hit.metadata.get("lg_text_sha") for _, hit in ranked} - {None})
        if not digests:
            return ranked
        # Only indexed items carry lg_text_sha, so an un-indexed item is never made a twin.
        found = await self._list_all(aengine, {**filters, "lg_text_sha": {"$in": digests}})
        seen = {hit.id if hit.kind == "raw" else hit.parent_id for _, hit in ranked}
        twins: dict[str, list[MemoryItem]] = {}
        for item in sorted(found, key=lambda i: i.metadata["lg_created_ns"]):
            if item.id not in seen and _matches(item.metadata["lg_value"], op.filter):
                twins.setdefault(item.metadata["lg_text_sha"], []).append(item)
        out: list[tuple[float | None, MemoryItem]] = []
        for score, hit in ranked:
            out.append((score, hit))
            out.extend((score, twin) for twin in twins.pop(hit.metadata.get("lg_text_sha"), []))
        return out

    async def _list_namespaces(
        self, aengine: AsyncMemoryEngine, op: ListNamespacesOp
    ) -> list[tuple[str, ...]]:
        conditions = op.match_conditions or ()
        filters: dict[str, Any] = {"lg_store": True}
        for cond in conditions:
            if cond.match_type == "prefix":
                filters.update(_ns_filter(cond.path))
        namespaces = {_namespace(i) for i in await self._list_all(aengine, filters)}
        matched = [ns for ns in namespaces if all(does_match(c, ns) for c in conditions)]
        if op.max_depth is not None:
            matched = list({ns[: op.max_depth] for ns in matched})
        return sorted(matched)[op.offset : op.offset + op.limit]


__all__ = [
    "InvalidNamespaceError",
    "MemAdaptersStore",
    "apply_operator",
    "check_namespace",
    "compare_values",
    "does_match",
    "memory_id",
]
