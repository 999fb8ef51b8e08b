"""``POST /v1/conversations/{conversation_id}/messages``: one user/assistant message."""

from __future__ import annotations

import logging
import uuid
from datetime import datetime, timezone
from typing import Annotated

from fastapi import APIRouter, Header, Path

from ... import records as rec
from ...errors import NotFoundError
from ..deps import Caller, Engine
from ..errors import ERROR_RESPONSES, ApiError
from ..shapes import ConversationMessageRequest, ConversationMessageResponse

logger = logging.getLogger(__name__)

router = APIRouter(prefix="/v1/conversations", tags=["conversations"], responses=ERROR_RESPONSES)

IdPath = Annotated[str, Path(min_length=1, max_length=500)]


@router.post("/{conversation_id}/messages", response_model=ConversationMessageResponse, status_code=201)
async def record_message(
    conversation_id: IdPath,
    body: ConversationMessageRequest,
    caller: Caller,
    engine: Engine,
    idempotency_key: Annotated[str | None, Header(max_length=200)] = None,
) -> ConversationMessageResponse:
    """Record a message (role ``user`` or ``assistant``) in a conversation of the caller's tenant.

    The conversation is the transcript; ``session_id`` is a sub-grouping of it, generated
    when absent. With an ``Idempotency-Key`` header a retried request returns the first
    answer and records nothing twice.
    """
    tenant = caller.tenant(body.customer_id, "customer_id")
    user = body.user_id or caller.user_id
    if not user:
        raise ApiError(422, "validation_error", "user_id is required (no user in the token)", field="user_id")
    if not conversation_id.strip():
        raise ApiError(422, "validation_error", "conversation_id must not be blank", field="conversation_id")
    if idempotency_key:
        message_id = rec.stable_id("msg_", tenant, conversation_id, idempotency_key)
        try:
            old = await engine.get(message_id, tenant_id=tenant, user_id=user, session_id=conversation_id)
        except NotFoundError:
            old = None
        if old is not None:
            if (old.role, old.text, old.session_id) != (body.role, body.content, conversation_id):
                raise ApiError(
                    422,
                    "idempotency_key_reused",
                    "Idempotency-Key was used for another message",
                    field="Idempotency-Key",
                )
            return ConversationMessageResponse(
                message_id=message_id,  # the id the first answer gave (old.id is the stored id)
                conversation_id=conversation_id,
                session_id=old.sub_session_id or "",
                recorded_at=old.timestamp or old.created_at,  # type: ignore[arg-type]
            )
    else:
        message_id = f"msg_{uuid.uuid4().hex}"
    session_id = body.session_id or f"sess_{uuid.uuid4().hex}"
    recorded_at = datetime.now(timezone.utc)
    await engine.remember(
        [
            {
                "id": message_id,
                "role": body.role,
                "text": body.content,
                "timestamp": recorded_at,
                "metadata": body.metadata,
            }
        ],
        session_id=conversation_id,
        user_id=user,
        tenant_id=tenant,
        sub_session_id=session_id,
    )
    return ConversationMessageResponse(
        message_id=message_id, conversation_id=conversation_id, session_id=session_id, recorded_at=recorded_at
    )
