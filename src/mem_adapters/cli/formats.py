"""Conversation files the ``import`` command reads, turned into batches for ``remember``.

Layouts (JSON, or JSONL with one object per line), detected from their shape:

- ``turns``: turn objects ``{role, text, timestamp, id?, metadata?, observations?}``
  (``content`` is accepted for ``text``); a line may carry its own ``session_id``,
  ``user_id``, ``agent_id`` and ``tenant_id``; other keys go into the turn's metadata. A JSON
  object ``{"turns": [...], "session_id": ...}`` is read the same way.
- ``openai``: ``{"messages": [{"role", "content"}, ...]}`` (one conversation, a list of them,
  or one per JSONL line); ``content`` may be a list of text parts.
- ``sharegpt``: ``{"conversations": [{"from", "value"}, ...]}`` (``human``/``gpt`` become
  ``user``/``assistant``).
- ``locomo``: LoCoMo's samples (``conversation`` with ``speaker_a``, ``session_<n>`` and
  ``session_<n>_date_time``): one session per LoCoMo session, the speaker as role, the
  session's date as timestamp, ``dia_id`` and image captions in the metadata, ids
  ``<sample_id>:<dia_id>`` (as ``mem-adapters bench locomo`` writes them).
- ``export``: the JSONL written by ``mem-adapters export`` (see :mod:`mem_adapters.transfer`).

Turn ids: a turn with a timestamp gets the engine's content hash (as if an app had written
it); a turn without one gets a hash of its scope, position in its session, role and text, so
re-importing a file (or rerunning a killed import) writes nothing twice.
"""

from __future__ import annotations

import json
import logging
import re
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..errors import ValidationError
from ..records import stable_id

logger = logging.getLogger(__name__)

FORMATS = ("auto", "turns", "openai", "sharegpt", "locomo", "export")
SCOPE_KEYS = ("session_id", "user_id", "agent_id", "tenant_id")
TURN_KEYS = ("role", "text", "timestamp", "id", "metadata", "observations")
SHAREGPT_ROLES = {"human": "user", "user": "user", "gpt": "assistant", "chatgpt": "assistant",
                  "assistant": "assistant", "bard": "assistant", "bing": "assistant",
                  "system": "system"}  # fmt: skip
_SESSION_KEY = re.compile(r"session_(\d+)")


@dataclass
class Source:
    """A parsed input file: one JSON document, or the objects of a JSONL file with line numbers."""

    name: str
    document: Any = None
    lines: list[tuple[int, Any]] | None = None

    def objects(self) -> list[tuple[str, Any]]:
        """``(where, object)`` pairs: the JSONL lines, or the document's items."""
        if self.lines is not None:
            return [(f"line {n}", obj) for n, obj in self.lines]
        if isinstance(self.document, list):
            return [(f"item {i}", obj) for i, obj in enumerate(self.document)]
        return [("document", self.document)]


@dataclass
class Conversation:
    """Turns of one session (in file order) with their scope."""

    session_id: str
    user_id: str | None = None
    agent_id: str | None = None
    tenant_id: str | None = None
    turns: list[dict[str, Any]] = field(default_factory=list)


@dataclass
class Parsed:
    """What a conversation file holds."""

    format: str
    conversations: list[Conversation]
    skipped_empty: int = 0

    @property
    def turns(self) -> int:
        """Turns to write."""
        return sum(len(c.turns) for c in self.conversations)


def read_source(path: str) -> Source:
    """Read a JSON or JSONL file (``-`` is stdin).

    Raises:
        ValidationError: neither JSON nor JSONL (the message names the first bad line).
        OSError: the file cannot be read.
    """
    name = "stdin" if path == "-" else Path(path).stem
    text = sys.stdin.read() if path == "-" else Path(path).read_text(encoding="utf-8")
    try:
        return Source(name, document=json.loads(text))
    except json.JSONDecodeError:
        pass
    lines: list[tuple[int, Any]] = []
    for n, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        try:
            lines.append((n, json.loads(line)))
        except json.JSONDecodeError as e:
            raise ValidationError(
                f"line {n}", f"is not JSON ({e.msg}); the file must be JSON or JSONL"
            ) from e
    if not lines:
        raise ValidationError("file", "is empty")
    return Source(name, lines=lines)


def detect(source: Source) -> str:
    """The layout of a source, from its first object."""
    first = source.objects()[0][1] if source.objects() else None
    if isinstance(first, list):  # a JSON document that is a list of lists
        raise ValidationError("file", "holds a list of lists; expected objects")
    if not isinstance(first, dict):
        raise ValidationError("file", f"must hold JSON objects, got {type(first).__name__}")
    if source.lines is not None and first.get("record") in ("header", "memory", "history"):
        return "export"
    if "messages" in first:
        return "openai"
    if "conversations" in first:
        return "sharegpt"
    if isinstance(first.get("conversation"), dict) and "speaker_a" in first["conversation"]:
        return "locomo"
    return "turns"


def _text_of(content: Any, where: str) -> str:
    if content is None:
        return ""
    if isinstance(content, str):
        return content
    if isinstance(content, list):  # OpenAI content parts
        parts = [p.get("text", "") if isinstance(p, dict) else str(p) for p in content]
        return "\n".join(p for p in parts if p)
    raise ValidationError(where, f"must be a string or a list of text parts, got {type(content).__name__}")


def _str(value: Any, where: str) -> str | None:
    if value is None or value == "":
        return None
    if not isinstance(value, str | int):
        raise ValidationError(where, f"must be a string, got {type(value).__name__}")
    return str(value)


class _Builder:
    """Collects turns into conversations keyed by scope, in first-appearance order."""

    def __init__(self, fmt: str, *, session: str, user: str | None, tenant: str) -> None:
        self.fmt = fmt
        self.session, self.user, self.tenant = session, user, tenant
        self.groups: dict[tuple[Any, ...], Conversation] = {}
        self.skipped = 0

    def add(self, where: str, turn: dict[str, Any], scope: dict[str, str | None]) -> None:
        if not str(turn.get("text") or "").strip():
            self.skipped += 1
            return
        if not isinstance(turn.get("role"), str) or not turn["role"].strip():
            raise ValidationError(f"{where}.role", "must be a non-empty string")
        key = (scope.get("tenant_id"), scope.get("user_id"), scope.get("agent_id"), scope["session_id"])
        conv = self.groups.get(key)
        if conv is None:
            conv = self.groups[key] = Conversation(
                session_id=str(scope["session_id"]),
                user_id=scope.get("user_id"),
                agent_id=scope.get("agent_id"),
                tenant_id=scope.get("tenant_id"),
            )
        if turn.get("id") is None and turn.get("timestamp") in (None, ""):
            turn["id"] = stable_id(
                "imp_", conv.tenant_id or self.tenant, conv.user_id, conv.agent_id, conv.session_id,
                len(conv.turns), turn["role"], turn["text"],
            )  # fmt: skip
        conv.turns.append(turn)

    def result(self) -> Parsed:
        return Parsed(self.fmt, list(self.groups.values()), self.skipped)


def parse(source: Source, fmt: str = "auto", *, session: str | None, user: str | None, tenant: str) -> Parsed:
    """Turn a conversation file into conversations to write.

    Args:
        source: The file, read by :func:`read_source`.
        fmt: One of :data:`FORMATS` but ``export`` (``auto`` detects it).
        session: Default session id (else the file's name, or ids the file carries).
        user: Default user id.
        tenant: The tenant written to (for turn ids).

    Raises:
        ValidationError: the file does not match the layout (the message names the line).
    """
    if fmt == "auto":
        fmt = detect(source)
    builder = _Builder(fmt, session=session or source.name, user=user, tenant=tenant)
    objects = source.objects()
    if fmt == "turns":
        _turns(builder, objects, session, user)
    elif fmt == "openai":
        _chats(builder, objects, "messages", session, user)
    elif fmt == "sharegpt":
        _chats(builder, objects, "conversations", session, user)
    elif fmt == "locomo":
        _locomo(builder, objects, session, user)
    else:
        raise ValidationError("format", f"must be one of {', '.join(FORMATS)}, got {fmt!r}")
    return builder.result()


def _turns(builder: _Builder, objects: list[tuple[str, Any]], session: str | None, user: str | None) -> None:
    if len(objects) == 1 and isinstance(objects[0][1], dict) and isinstance(objects[0][1].get("turns"), list):
        wrapper = objects[0][1]
        defaults = {k: _str(wrapper.get(k), f"document.{k}") for k in SCOPE_KEYS}
        objects = [(f"turns[{i}]", t) for i, t in enumerate(wrapper["turns"])]
    else:
        defaults = {}
    for where, obj in objects:
        if not isinstance(obj, dict):
            raise ValidationError(where, f"must be a turn object, got {type(obj).__name__}")
        scope = {k: _str(obj.get(k), f"{where}.{k}") or defaults.get(k) for k in SCOPE_KEYS}
        scope["session_id"] = scope["session_id"] or session or builder.session
        scope["user_id"] = scope["user_id"] or user
        text = obj["text"] if "text" in obj else _text_of(obj.get("content"), f"{where}.content")
        extra = {k: v for k, v in obj.items() if k not in (*TURN_KEYS, *SCOPE_KEYS, "content")}
        meta = obj.get("metadata") or {}
        if not isinstance(meta, dict):
            raise ValidationError(f"{where}.metadata", "must be an object")
        turn: dict[str, Any] = {"role": obj.get("role") or obj.get("speaker"), "text": text,
                                "metadata": {**extra, **meta}}  # fmt: skip
        for k in ("timestamp", "id", "observations"):
            if obj.get(k) not in (None, ""):
                turn[k] = obj[k]
        builder.add(where, turn, scope)


def _chats(
    builder: _Builder, objects: list[tuple[str, Any]], key: str, session: str | None, user: str | None
) -> None:
    many = len(objects) > 1
    for n, (where, obj) in enumerate(objects, 1):
        if not isinstance(obj, dict) or not isinstance(obj.get(key), list):
            raise ValidationError(f"{where}.{key}", "must be a list")
        own = _str(obj.get("session_id") or obj.get("id"), f"{where}.id")
        base = session or builder.session
        scope = {
            "session_id": own or (f"{base}-{n}" if many else base),
            "user_id": _str(obj.get("user_id"), f"{where}.user_id") or user,
            "agent_id": _str(obj.get("agent_id"), f"{where}.agent_id"),
            "tenant_id": _str(obj.get("tenant_id"), f"{where}.tenant_id"),
        }
        for i, msg in enumerate(obj[key]):
            at = f"{where}.{key}[{i}]"
            if not isinstance(msg, dict):
                raise ValidationError(at, "must be an object")
            if key == "messages":
                role, text = msg.get("role"), _text_of(msg.get("content"), f"{at}.content")
                extra = {k: v for k, v in msg.items() if k not in ("role", "content")}
            else:
                raw = msg.get("from")
                role = SHAREGPT_ROLES.get(str(raw).lower(), raw) if raw is not None else None
                text = _text_of(msg.get("value"), f"{at}.value")
                extra = {k: v for k, v in msg.items() if k not in ("from", "value")}
            turn: dict[str, Any] = {"role": role, "text": text, "metadata": extra}
            if msg.get("timestamp") not in (None, ""):
                turn["timestamp"] = extra.pop("timestamp")
            builder.add(at, turn, scope)


def _locomo(builder: _Builder, objects: list[tuple[str, Any]], session: str | None, user: str | None) -> None:
    from ..bench import parse_locomo_date, turn_text

    for where, sample in objects:
        conv = sample.get("conversation") if isinstance(sample, dict) else None
        if not isinstance(conv, dict):
            raise ValidationError(f"{where}.conversation", "must be an object (LoCoMo layout)")
        sample_id = _str(sample.get("sample_id"), f"{where}.sample_id") or where.replace(" ", "-")
        numbers = sorted(
            int(m.group(1))
            for k, v in conv.items()
            if (m := _SESSION_KEY.fullmatch(k)) and isinstance(v, list) and v
        )
        for number in numbers:
            at = f"{where}.conversation.session_{number}"
            try:
                date = parse_locomo_date(conv[f"session_{number}_date_time"])
            except (KeyError, ValueError) as e:
                raise ValidationError(f"{at}_date_time", f"missing or not a LoCoMo date ({e})") from e
            scope = {
                "session_id": f"{session or sample_id}-s{number}",
                "user_id": user or sample_id,
                "agent_id": None,
                "tenant_id": None,
            }
            for i, t in enumerate(conv[f"session_{number}"]):
                if not isinstance(t, dict) or "dia_id" not in t:
                    raise ValidationError(f"{at}[{i}]", "must be a LoCoMo turn with a dia_id")
                meta: dict[str, Any] = {"dia_id": t["dia_id"], "locomo_session": number}
                if t.get("blip_caption"):
                    meta["image_caption"] = t["blip_caption"]
                meta.update(
                    {k: v for k, v in t.items() if k not in ("speaker", "text", "dia_id", "blip_caption")}
                )
                turn = {"id": f"{sample_id}:{t['dia_id']}", "role": t.get("speaker"), "text": turn_text(t),
                        "timestamp": date.isoformat(), "metadata": meta}  # fmt: skip
                builder.add(f"{at}[{i}]", turn, scope)
