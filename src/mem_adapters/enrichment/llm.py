"""An extractor backed by any LangChain chat model or LlamaIndex LLM.

The model is detected by duck typing and neither framework is imported unless used:

- LangChain chat models: ``with_structured_output(FactList)`` when the model supports tool
  calling; otherwise (``NotImplementedError``) the model is prompted for JSON, which is parsed.
- LlamaIndex LLMs: ``acomplete`` with a JSON prompt, parsed the same way.

Whatever comes back is validated against :class:`ExtractedFact`; anything malformed raises
:class:`ExtractionError`, so the job fails, is retried, and writes nothing.
"""

from __future__ import annotations

import asyncio
import json
import logging
import re
from collections.abc import Coroutine, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

import pydantic
from pydantic import BaseModel, Field

from .types import EpisodeSummary, ExtractedFact, ExtractionError, TurnInput

logger = logging.getLogger(__name__)
T = TypeVar("T")


class FactList(BaseModel):
    """Facts stated in a conversation excerpt (the structured-output schema)."""

    facts: list[ExtractedFact] = Field(default_factory=list)


PROMPT = """You extract durable facts from a conversation for a memory system.
Return facts that the speakers state about themselves (preferences, profile, location, work,
relationships, events, plans). Each fact is a short standalone third-person statement.

For each fact give:
- text: the standalone statement, e.g. "Ana moved to Berlin in May 2023."
- fact_type: one of preference, profile, event, plan, relationship, location, work, other
- subject: who it is about (the speaker's name, or "user")
- predicate: a short attribute name; use a stable name for attributes that change
  (lives_in, works_at, job_title, relationship_status, favorite_<thing>, preference:<object>)
  and "did" / "plans" for events and plans
- value: the attribute's value
- event_date: ISO date if a date is stated or implied (resolve "yesterday" with the turn's date), else null
- confidence: 0..1
- source_turn_ids: ids of the turns that state it (only ids listed under NEW TURNS)
{instructions}
Reply with JSON only: {{"facts": [ ... ]}} (an empty list if nothing is worth remembering).

EARLIER CONTEXT (do not extract from it):
{context}

NEW TURNS:
{turns}
"""

SUMMARY_PROMPT = """Give a short title (at most 8 words) and a 1-3 sentence summary of this conversation
episode. Reply with JSON only: {{"title": "...", "summary": "..."}}

{turns}
"""


def _fmt(turns: Sequence[TurnInput]) -> str:
    lines = []
    for t in turns:
        when = t.timestamp.strftime("%Y-%m-%d %H:%M") if t.timestamp else "undated"
        lines.append(f"[{t.id}] ({when}) {t.role}: {t.text}")
    return "\n".join(lines) or "(none)"


def parse_json(text: str) -> Any:
    """The JSON value in a model reply (tolerates code fences and prose around it).

    Raises:
        ExtractionError: no parseable JSON in the reply.
    """
    cleaned = re.sub(r"^```(?:json)?\s*|\s*```$", "", text.strip(), flags=re.I)
    try:
        return json.loads(cleaned)
    except (json.JSONDecodeError, TypeError):
        pass
    starts = [i for i in (cleaned.find("{"), cleaned.find("[")) if i >= 0]
    if starts:
        start = min(starts)
        end = max(cleaned.rfind("}"), cleaned.rfind("]"))
        if end > start:
            try:
                return json.loads(cleaned[start : end + 1])
            except json.JSONDecodeError:
                pass
    raise ExtractionError(f"model reply is not JSON: {text[:200]!r}")


def _validate_facts(data: Any) -> list[ExtractedFact]:
    if isinstance(data, FactList):
        return list(data.facts)
    if isinstance(data, BaseModel):
        data = data.model_dump()
    if isinstance(data, dict):
        if "facts" not in data:
            raise ExtractionError(f"model reply has no 'facts' list: keys {sorted(data)}")
        data = data["facts"]
    if not isinstance(data, list):
        raise ExtractionError(f"model reply 'facts' is {type(data).__name__}, expected a list")
    try:
        return [f if isinstance(f, ExtractedFact) else ExtractedFact.model_validate(f) for f in data]
    except pydantic.ValidationError as e:
        err = e.errors()[0]
        raise ExtractionError(
            f"model returned a malformed fact: {err['msg']} at {'.'.join(map(str, err['loc']))}"
        ) from e


def _run_sync(coro: Coroutine[Any, Any, T]) -> T:
    """Run a coroutine from sync code, even when this thread already runs an event loop."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return asyncio.run(coro)
    with ThreadPoolExecutor(max_workers=1) as pool:
        return pool.submit(asyncio.run, coro).result()


class LLMExtractor:
    """Fact extractor using a LangChain chat model or a LlamaIndex LLM.

    Args:
        llm: A LangChain ``BaseChatModel`` (anything with ``ainvoke``) or a LlamaIndex ``LLM``
            (anything with ``acomplete``).
        structured: Try ``with_structured_output`` on LangChain models first.
        summarize_episodes: Also write episode titles/summaries with the model.

    Example:
        >>> from mem_adapters.enrichment import Enricher, LLMExtractor
        >>> enricher = Enricher(LLMExtractor(chat_model))  # doctest: +SKIP
    """

    wants_context = True

    def __init__(self, llm: Any, *, structured: bool = True, summarize_episodes: bool = True) -> None:
        if hasattr(llm, "acomplete") and not hasattr(llm, "with_structured_output"):
            self.kind = "llama_index"
        elif hasattr(llm, "ainvoke"):
            self.kind = "langchain"
        elif hasattr(llm, "acomplete"):
            self.kind = "llama_index"
        else:
            raise TypeError(
                f"LLMExtractor needs a LangChain chat model or a LlamaIndex LLM, got {type(llm)!r}"
            )
        self.llm = llm
        self.structured = structured
        if not summarize_episodes:
            self.asummarize = None  # type: ignore[assignment]

    async def _complete(self, prompt: str) -> str:
        if self.kind == "langchain":
            msg = await self.llm.ainvoke(prompt)
            content = getattr(msg, "content", msg)
            if isinstance(content, list):  # content blocks
                content = "".join(b.get("text", "") if isinstance(b, dict) else str(b) for b in content)
            return str(content)
        resp = await self.llm.acomplete(prompt)
        return str(getattr(resp, "text", resp))

    async def aextract(
        self,
        turns: Sequence[TurnInput],
        *,
        context: Sequence[TurnInput] = (),
        custom_instructions: str | None = None,
    ) -> list[ExtractedFact]:
        """Facts stated in ``turns``.

        Raises:
            ExtractionError: the model's output is not a valid list of facts.
        """
        if not turns:
            return []
        instructions = f"\nAdditional instructions: {custom_instructions}\n" if custom_instructions else ""
        prompt = PROMPT.format(instructions=instructions, context=_fmt(context), turns=_fmt(turns))
        if self.kind == "langchain" and self.structured:
            try:
                runnable = self.llm.with_structured_output(FactList)
            except NotImplementedError:
                runnable = None  # no tool calling: fall back to a JSON prompt
            if runnable is not None:
                try:
                    out = await runnable.ainvoke(prompt)
                except Exception as e:
                    raise ExtractionError(f"structured output failed: {type(e).__name__}: {e}") from e
                if out is None:
                    raise ExtractionError("structured output returned nothing (no tool call)")
                return _validate_facts(out)
        return _validate_facts(parse_json(await self._complete(prompt)))

    def extract(
        self,
        turns: Sequence[TurnInput],
        *,
        context: Sequence[TurnInput] = (),
        custom_instructions: str | None = None,
    ) -> list[ExtractedFact]:
        """Sync :meth:`aextract`."""
        return _run_sync(self.aextract(turns, context=context, custom_instructions=custom_instructions))

    async def asummarize(self, turns: Sequence[TurnInput]) -> EpisodeSummary:
        """Episode title and summary written by the model.

        Raises:
            ExtractionError: the reply is not ``{"title": ..., "summary": ...}``.
        """
        data = parse_json(await self._complete(SUMMARY_PROMPT.format(turns=_fmt(turns))))
        try:
            return EpisodeSummary.model_validate(data)
        except pydantic.ValidationError as e:
            raise ExtractionError(f"malformed episode summary: {e.errors()[0]['msg']}") from e
