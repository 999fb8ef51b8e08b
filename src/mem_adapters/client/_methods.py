"""The client's methods, written once: each builds a :class:`Call` and says how to read the answer.

:class:`~mem_adapters.client.MemoryClient` runs them and returns the value;
:class:`~mem_adapters.client.AsyncMemoryClient` returns an awaitable of the same value.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Any, Literal

from ..enrichment.job_list import JobPage
from ..errors import ValidationError
from ..models import (
    AddResult,
    EraseReceipt,
    HistoryEntry,
    JobStatus,
    MemoryItem,
    Page,
    RecordResult,
    SearchResult,
    Turn,
    WriteResult,
)
from ._adapter_methods import AdapterMethods
from ._core import Call, drop_none, fixed_turns, new_idempotency_key, new_memory_id, quote_id

Parse = Callable[[Any], Any]


_q = quote_id


class ClientMethods(AdapterMethods):
    """Engine-named methods over the service.

    A call that names a ``tenant_id`` (or a client made with one) sends it as ``?tenant_id=``
    as well, so every part of the call acts in that tenant (an admin credential or
    ``--insecure-no-auth`` may name any; another caller only its own, else 403). A call that
    names none acts in the credential's tenant.
    """

    def _do(self, call: Call, parse: Parse) -> Any:  # pragma: no cover - provided by the clients
        raise NotImplementedError

    # ------------------------------------------------------------------------------- writes

    def remember(
        self,
        turns: Sequence[Turn | dict[str, Any]],
        *,
        session_id: str | None = None,
        user_id: str | None = None,
        agent_id: str | None = None,
        tenant_id: str | None = None,
        sub_tenant_id: str | None = None,
        sub_session_id: str | None = None,
        metadata: dict[str, Any] | None = None,
        status: Literal["active", "archived"] = "active",
        mode: Literal["chat", "import"] = "chat",
        write_active: bool = True,
        write_passive: bool = True,
    ) -> WriteResult:
        """Write turns (see :meth:`mem_adapters.MemoryEngine.remember`); safe to retry.

        Turns without a timestamp get one now, before the first attempt, so a retry sends the
        very same turns and the server writes them once. ``mode``, ``write_active`` and
        ``write_passive`` are sent only when they differ from their defaults.

        Raises:
            ValidationError: ``turns`` is not a list, or both write options are false.
        """
        if not write_active and not write_passive:
            raise ValidationError("write_active", "write_active and write_passive are both false")
        if isinstance(turns, Turn | dict | str) or turns is None:
            raise ValidationError("turns", "must be a list of Turn or dict")
        body = drop_none(
            {
                "turns": fixed_turns(turns),
                "session_id": session_id,
                "user_id": user_id,
                "agent_id": agent_id,
                "tenant_id": tenant_id,
                "sub_tenant_id": sub_tenant_id,
                "sub_session_id": sub_session_id,
                "metadata": metadata,
                "status": status,
                "mode": None if mode == "chat" else mode,
                "write_active": None if write_active is True else write_active,
                "write_passive": None if write_passive is True else write_passive,
            }
        )
        call = Call("POST", "/v1/engine/remember", json=body, tenant_id=tenant_id)
        return self._do(call, WriteResult.model_validate)

    def add(
        self,
        *,
        raw_text: str | None = None,
        pairs: Sequence[Any] | None = None,
        tenant_id: str | None = None,
        sub_tenant_id: str | None = None,
        user_id: str | None = None,
        memory_id: str | None = None,
        expiry_seconds: float | None = None,
        infer: bool = False,
        custom_instructions: str | None = None,
        user_name: str | None = None,
        metadata: dict[str, Any] | None = None,
        agent_id: str | None = None,
        session_id: str | None = None,
        index: bool = True,
    ) -> AddResult:
        """Store raw text or user/assistant pairs (see :meth:`mem_adapters.MemoryEngine.add`).

        The memory id is fixed before the first attempt, so a retry rewrites nothing. With
        ``agent_id``, ``session_id`` or ``index=False`` (arguments the hosted API's route has
        not) the call goes to ``/v1/engine/add``, which takes every engine argument.

        Raises:
            ValidationError: both or neither of ``raw_text``/``pairs``.
        """
        if (raw_text is None) == (pairs is None):
            raise ValidationError("raw_text", "give raw_text or pairs (one of them)")
        norm_pairs = None
        if pairs is not None:
            norm_pairs = []
            for i, p in enumerate(pairs):
                if isinstance(p, dict):
                    norm_pairs.append({"user": p.get("user", ""), "assistant": p.get("assistant", "")})
                elif isinstance(p, list | tuple) and len(p) == 2:
                    norm_pairs.append({"user": p[0], "assistant": p[1]})
                else:
                    raise ValidationError(f"pairs[{i}]", "must be {'user':..., 'assistant':...} or a 2-tuple")
        body = drop_none(
            {
                "tenant_id": tenant_id,
                "sub_tenant_id": sub_tenant_id,
                "raw_text": raw_text,
                "user_assistant_pairs": norm_pairs,
                "expiry_time": expiry_seconds,
                "infer": infer,
                "custom_instructions": custom_instructions,
                "user_name": user_name,
                "memory_id": memory_id or new_memory_id(),
                "user_id": user_id,
                "metadata": metadata,
            }
        )

        def parse(data: Any) -> AddResult:
            return AddResult.model_validate({k: data[k] for k in AddResult.model_fields if k in data})

        if agent_id is not None or session_id is not None or not index:
            engine_body = {
                **{k: v for k, v in body.items() if k not in ("user_assistant_pairs", "expiry_time")},
                **drop_none({"pairs": norm_pairs, "expiry_seconds": expiry_seconds}),
                **drop_none({"agent_id": agent_id, "session_id": session_id}),
                "index": index,
            }
            call = Call("POST", "/v1/engine/add", json=engine_body, tenant_id=tenant_id)
            return self._do(call, AddResult.model_validate)
        return self._do(Call("POST", "/memories/add-memories", json=body, tenant_id=tenant_id), parse)

    def record_message(
        self,
        conversation_id: str,
        role: str,
        content: str,
        *,
        user_id: str | None = None,
        customer_id: str | None = None,
        session_id: str | None = None,
        metadata: dict[str, Any] | None = None,
        tenant_id: str | None = None,
    ) -> RecordResult:
        """Record one user/assistant message; an ``Idempotency-Key`` makes retries safe."""
        body = drop_none(
            {
                "role": role,
                "content": content,
                "user_id": user_id,
                "customer_id": customer_id,
                "session_id": session_id,
                "metadata": metadata,
            }
        )
        call = Call(
            "POST",
            f"/v1/conversations/{_q(conversation_id)}/messages",
            json=body,
            headers={"Idempotency-Key": new_idempotency_key()},
            tenant_id=tenant_id,
        )
        return self._do(call, RecordResult.model_validate)

    def update(
        self,
        memory_id: str,
        text: str | None = None,
        metadata: dict[str, Any] | None = None,
        *,
        tenant_id: str | None = None,
        **_: Any,
    ) -> MemoryItem:
        """Patch text and/or metadata (not retried once sent: a repeat would add a version)."""
        body = drop_none({"text": text, "metadata": metadata})
        path = f"/v1/engine/memories/{_q(memory_id)}"
        call = Call("PATCH", path, json=body, idempotent=False, tenant_id=tenant_id)
        return self._do(call, MemoryItem.model_validate)

    def delete(self, memory_id: str, *, tenant_id: str | None = None, **_: Any) -> None:
        """Delete a memory and what was derived from it (a retry that finds it gone succeeds)."""
        call = Call("DELETE", f"/v1/memories/{_q(memory_id)}/", missing_ok=True, tenant_id=tenant_id)
        return self._do(call, lambda _data: None)

    def erase(self, *, user_id: str | None = None, tenant_id: str | None = None) -> EraseReceipt:
        """Erase a user of the tenant (``tenant_id``, else the credential's); answers with the receipt.

        Raises:
            ValidationError: no ``user_id`` (a whole tenant is not erased over HTTP).
        """
        if not user_id:
            raise ValidationError("user_id", "the service erases one user at a time")
        call = Call("DELETE", f"/v1/users/{_q(user_id)}", tenant_id=tenant_id)
        return self._do(call, EraseReceipt.model_validate)

    # -------------------------------------------------------------------------------- reads

    def search(
        self,
        query: str,
        *,
        tenant_id: str | None = None,
        sub_tenant_id: str | None = None,
        user_id: str | None = None,
        agent_id: str | None = None,
        session_id: str | None = None,
        k: int = 10,
        filters: dict[str, Any] | None = None,
        kinds: Sequence[str] | None = None,
        time_range: tuple[datetime | str | None, datetime | str | None] | None = None,
        mode: Literal["flat", "context"] = "flat",
        char_budget: int | None = None,
        as_of: datetime | str | None = None,
    ) -> SearchResult:
        """Rank memories (see :meth:`mem_adapters.MemoryEngine.search`), with score parts."""
        body = drop_none(
            {
                "query": query,
                "tenant_id": tenant_id,
                "sub_tenant_id": sub_tenant_id,
                "user_id": user_id,
                "agent_id": agent_id,
                "session_id": session_id,
                "k": k,
                "filters": filters,
                "kinds": list(kinds) if kinds is not None else None,
                "time_range": list(time_range) if time_range is not None else None,
                "mode": mode,
                "char_budget": char_budget,
                "as_of": as_of,
            }
        )
        call = Call("POST", "/v1/engine/search", json=body, tenant_id=tenant_id)
        return self._do(call, SearchResult.model_validate)

    def list(
        self,
        filters: dict[str, Any] | None = None,
        page: int = 1,
        page_size: int = 50,
        *,
        tenant_id: str | None = None,
        sub_tenant_id: str | None = None,
        user_id: str | None = None,
        agent_id: str | None = None,
        session_id: str | None = None,
        kinds: Sequence[str] | None = None,
    ) -> Page:
        """One page of memories in write order."""
        body = drop_none(
            {
                "filters": filters,
                "page": page,
                "page_size": page_size,
                "tenant_id": tenant_id,
                "sub_tenant_id": sub_tenant_id,
                "user_id": user_id,
                "agent_id": agent_id,
                "session_id": session_id,
                "kinds": list(kinds) if kinds is not None else None,
            }
        )
        return self._do(Call("POST", "/v1/engine/list", json=body, tenant_id=tenant_id), Page.model_validate)

    def get(self, memory_id: str, *, tenant_id: str | None = None, **_: Any) -> MemoryItem:
        """One memory (raises :class:`~mem_adapters.client.NotFoundError`)."""
        call = Call("GET", f"/v1/engine/memories/{_q(memory_id)}", tenant_id=tenant_id)
        return self._do(call, MemoryItem.model_validate)

    def history(self, memory_id: str, *, tenant_id: str | None = None, **_: Any) -> list[HistoryEntry]:
        """Every version of a memory."""
        return self._do(
            Call("GET", f"/v1/memories/{_q(memory_id)}/history/", tenant_id=tenant_id),
            lambda data: [HistoryEntry.model_validate(h) for h in data],
        )

    def get_messages(
        self,
        session_id: str,
        *,
        user_id: str | None = None,
        status: Literal["active", "archived"] | None = None,
        limit: int | None = None,
        last: bool = False,
        tenant_id: str | None = None,
        **_: Any,
    ) -> list[MemoryItem]:
        """A session's turns in exact write order."""
        params = drop_none({"user_id": user_id, "status": status, "limit": limit, "last": last or None})
        return self._do(
            Call("GET", f"/v1/engine/sessions/{_q(session_id)}/messages", params=params, tenant_id=tenant_id),
            lambda data: [MemoryItem.model_validate(m) for m in data],
        )

    def list_sessions(
        self, *, user_id: str | None = None, tenant_id: str | None = None, **_: Any
    ) -> list[str]:
        """Session ids by their first turn."""
        params = drop_none({"user_id": user_id})
        return self._do(Call("GET", "/v1/engine/sessions", params=params, tenant_id=tenant_id), list)

    def tenants(self) -> list[str]:
        """Every tenant of the store (needs an admin credential)."""
        return self._do(Call("GET", "/v1/tenants"), lambda data: list(data["tenants"]))

    def job_status(self, job_id: str, *, tenant_id: str | None = None, **_: Any) -> JobStatus:
        """State of an enrichment job."""
        call = Call("GET", f"/v1/jobs/{_q(job_id)}", tenant_id=tenant_id)
        return self._do(call, JobStatus.model_validate)

    def list_jobs(
        self,
        page: int = 1,
        page_size: int = 50,
        *,
        tenant_id: str | None = None,
        status: str | None = None,
        user_id: str | None = None,
    ) -> JobPage:
        """The tenant's enrichment jobs, newest first (``tenant_id``: another tenant, admin only)."""
        params = drop_none({"page": page, "page_size": page_size, "status": status, "user_id": user_id})
        return self._do(Call("GET", "/v1/jobs", params=params, tenant_id=tenant_id), JobPage.model_validate)
