"""Enrichment: rule extractor, supersession, episodes, durable jobs, LLM extractors."""

from __future__ import annotations

import json
from datetime import datetime, timezone
from typing import Any

import pytest

from mem_adapters import AsyncMemoryEngine, MemoryEngine
from mem_adapters.enrichment import (
    Enricher,
    ExtractionError,
    LLMExtractor,
    RuleExtractor,
    TurnInput,
    change_type,
    extract_for_add,
    parse_json,
    resolve_date,
    to_third_person,
)
from mem_adapters.errors import JobError

T0 = datetime(2024, 5, 8, 14, 0, tzinfo=timezone.utc)


def _turn(text: str, role: str = "user", tid: str = "t1", when: datetime = T0) -> TurnInput:
    return TurnInput(id=tid, role=role, text=text, timestamp=when)


def _facts(engine: MemoryEngine, **kw: Any) -> list[Any]:
    return engine.list(kinds=["fact"], page_size=1000, **kw).results


@pytest.fixture
def eng(tmp_path, embedder):
    e = MemoryEngine(tmp_path / "enr", embedder=embedder, enricher=Enricher(backoff=0.01))
    yield e
    e.close()


# ---------------------------------------------------------------- rules


@pytest.mark.parametrize(
    ("text", "predicate", "value", "fact_type"),
    [
        ("I moved to Berlin last year.", "lives_in", "Berlin", "location"),
        ("I live in Lisbon with my two cats.", "lives_in", "Lisbon", "location"),
        ("I work as a nurse at the city hospital.", "works_as", "nurse at the city hospital", "work"),
        ("I'm allergic to peanuts.", "allergic_to:peanuts", "yes", "profile"),
        ("I really love hiking in the mountains.", "preference:hiking mountains", "loves", "preference"),
        ("I can't stand jazz.", "preference:jazz", "dislikes", "preference"),
        ("My favorite food is sushi.", "favorite food", "sushi", "preference"),
        ("My husband Tom is a chef.", "husband", "Tom", "relationship"),
        ("I'm planning to run a marathon in October.", "plans", "run a marathon in October", "plan"),
        ("Lost my job as a banker yesterday.", "job_status", "unemployed", "work"),
        ("I'm vegetarian now.", "diet", "vegetarian", "preference"),
    ],
)
def test_rule_extractor_typed_facts(text, predicate, value, fact_type):
    facts = RuleExtractor().extract([_turn(text, role="Ana")])
    match = [f for f in facts if f.predicate == predicate]
    assert match, [(f.predicate, f.value) for f in facts]
    assert match[0].value == value
    assert match[0].fact_type == fact_type
    assert match[0].subject == "ana"
    assert match[0].source_turn_ids == ["t1"]


def test_rule_extractor_skips_small_talk_questions_and_assistant():
    ex = RuleExtractor()
    turns = [
        _turn("How have you been?", tid="a"),
        _turn("I'm so happy for you!", tid="b"),
        _turn("I agree, that sounds great.", tid="c"),
        _turn("I moved to Paris.", role="assistant", tid="d"),
        _turn("Thanks!", tid="e"),
    ]
    assert ex.extract(turns) == []


def test_rule_extractor_resolves_relative_dates_into_text():
    facts = RuleExtractor().extract([_turn("I went to a LGBTQ support group yesterday.", role="Caroline")])
    assert len(facts) == 1
    f = facts[0]
    assert f.event_date == "2024-05-07"
    assert f.fact_type == "event"
    assert f.text.startswith("Caroline went to a LGBTQ support group yesterday")
    assert "7 May 2024" in f.text
    assert "LGBTQ" in f.entities


def test_compound_sentence_gives_one_fact_per_clause():
    facts = RuleExtractor().extract([_turn("I live in Paris and I love sushi.")])
    by_pred = {f.predicate: f for f in facts}
    assert by_pred["lives_in"].text == "The user lives in Paris."
    assert by_pred["preference:sushi"].text == "The user loves sushi."


@pytest.mark.parametrize(
    ("text", "iso", "phrase"),
    [
        ("yesterday", "2024-05-07", "7 May 2024"),
        ("last week", "2024-05-01", "the week before 8 May 2024"),
        ("two months ago", "2024-03", "March 2024"),
        ("last year", "2023", "2023"),
        ("next Friday", "2024-05-10", "10 May 2024"),
        ("on 3 June, 2021", "2021-06-03", "3 June 2021"),
        ("in March 2020", "2020-03", "March 2020"),
    ],
)
def test_resolve_date(text, iso, phrase):
    got = resolve_date(text, T0)  # T0 is a Wednesday
    assert got is not None
    assert (got.iso, got.phrase) == (iso, phrase)


def test_resolve_date_needs_reference_for_relative():
    assert resolve_date("yesterday", None) is None
    assert resolve_date("nothing here", T0) is None


def test_third_person_and_change_type():
    assert to_third_person("I love hiking with my dog.", "Ana") == "Ana loves hiking with Ana's dog."
    assert to_third_person("I've been to Rome.", "Jo") == "Jo has been to Rome."
    assert change_type("likes", "dislikes") == "contradiction"
    assert change_type("likes", "loves") == "refinement"
    assert change_type("Berlin", "Berlin Mitte") == "refinement"
    assert change_type("Paris", "Rome") == "update"


def test_extract_for_add_and_custom_instructions():
    text = "user: Hi! I'm allergic to peanuts. What's up?\nassistant: Noted.\nThe budget meeting is Friday."
    assert extract_for_add(text) == ["The user is allergic to peanuts."]
    focused = extract_for_add(text, custom_instructions="Focus on budget topics")
    assert "The budget meeting is Friday." in focused


# ---------------------------------------------------------------- engine: facts and supersession


def test_remember_returns_job_and_facts_are_written(eng):
    res = eng.remember(
        [
            {"role": "user", "text": "I live in Paris and I love sushi.", "timestamp": "2024-01-01T10:00:00"},
            {"role": "assistant", "text": "Nice to hear!", "timestamp": "2024-01-01T10:00:05"},
        ],
        session_id="s1",
        user_id="u1",
    )
    assert res.passive_job_id
    status = eng.wait(res.passive_job_id, timeout=60)
    assert status.status == "done" and status.attempts == 1 and status.turn_ids == res.active_ids
    facts = _facts(eng)
    assert sorted(f.text for f in facts) == ["The user lives in Paris.", "The user loves sushi."]
    for f in facts:
        assert f.user_id == "u1" and f.session_id == "s1" and f.role == "user"
        assert f.parent_id == res.active_ids[0] and f.source_ids == [res.active_ids[0]]
        assert f.is_latest and f.status == "active" and f.version == 1
        assert f.attributes["origin"] == "extracted" and f.attributes["subject"] == "user"
    mem, _ = eng._run(eng.aengine.collections("default"))
    got = eng._run(mem.get(ids=res.active_ids, include=["metadatas"]))
    assert [m["enrich"] for m in got["metadatas"]] == ["done", "done"]


def test_supersession_chain_history_and_as_of(eng):
    r1 = eng.remember(
        [{"role": "user", "text": "I live in Paris.", "timestamp": "2024-01-01T10:00:00"}],
        session_id="s1",
        user_id="u1",
    )
    eng.wait(r1.passive_job_id, timeout=60)
    r2 = eng.remember(
        [{"role": "user", "text": "I moved to Berlin last week.", "timestamp": "2024-03-01T10:00:00"}],
        session_id="s1",
        user_id="u1",
    )
    eng.wait(r2.passive_job_id, timeout=60)
    facts = {f.attributes["value"]: f for f in _facts(eng)}
    old, new = facts["Paris"], facts["Berlin"]
    assert (old.status, old.is_latest, old.version) == ("superseded", False, 1)
    assert (new.status, new.is_latest, new.version) == ("active", True, 2)
    assert new.supersedes == old.id
    assert new.attributes["change_type"] == "update"
    assert "the week before 1 March 2024" in new.text
    hist = eng.history(new.id)
    assert [(h.memory_id, h.version, h.event) for h in hist] == [(old.id, 1, "ADD"), (new.id, 2, "SUPERSEDE")]
    assert [h.memory_id for h in eng.history(old.id)] == [old.id, new.id]
    # Latest wins by default; as_of answers with what was latest then.
    now_hits = eng.search("where does the user live", kinds=["fact"], k=5).results
    assert now_hits[0].id == new.id
    then = eng.search("where does the user live", kinds=["fact"], k=5, as_of="2024-02-01T00:00:00Z").results
    assert [h.id for h in then] == [old.id]


def test_preference_contradiction_and_restatement(eng):
    ids = []
    for text, ts in [
        ("I love sushi.", "2024-01-01T10:00:00"),
        ("I love sushi so much.", "2024-01-02T10:00:00"),
        ("I hate sushi now.", "2024-02-01T10:00:00"),
    ]:
        r = eng.remember([{"role": "user", "text": text, "timestamp": ts}], session_id="s1", user_id="u1")
        eng.wait(r.passive_job_id, timeout=60)
        ids.append(r.active_ids[0])
    facts = [f for f in _facts(eng) if f.attributes["predicate"] == "preference:sushi"]
    assert len(facts) == 2  # the restatement reinforced the first fact instead of duplicating it
    first, second = sorted(facts, key=lambda f: f.version)
    assert first.source_ids == ids[:2]
    assert second.attributes["value"] == "hates" and second.attributes["change_type"] == "contradiction"
    assert second.supersedes == first.id and not first.is_latest


def test_supersession_is_per_user(eng):
    for user, text in [("u1", "I live in Paris."), ("u2", "I live in Rome.")]:
        r = eng.remember([{"role": "user", "text": text}], session_id=f"s-{user}", user_id=user)
        eng.wait(r.passive_job_id, timeout=60)
    assert all(f.is_latest for f in _facts(eng))


def test_observations_get_keys_and_supersede(eng):
    r1 = eng.remember(
        [
            {
                "role": "Caroline",
                "text": "Hi!",
                "timestamp": "2024-01-01T10:00:00",
                "observations": ["Caroline lives in Boston."],
            }
        ],
        session_id="s1",
    )
    eng.wait(r1.passive_job_id, timeout=60)
    r2 = eng.remember(
        [{"role": "Caroline", "text": "I moved to Denver last month.", "timestamp": "2024-06-01T10:00:00"}],
        session_id="s1",
    )
    eng.wait(r2.passive_job_id, timeout=60)
    facts = {f.attributes.get("value"): f for f in _facts(eng)}
    obs = facts["Boston"]
    assert obs.text == "Caroline lives in Boston." and obs.attributes["origin"] == "observation"
    assert obs.attributes["subject"] == "caroline" and obs.attributes["predicate"] == "lives_in"
    assert obs.is_latest is False and facts["Denver"].supersedes == obs.id


def test_deleting_a_turn_deletes_its_facts(eng):
    r = eng.remember([{"role": "user", "text": "My favorite color is green."}], session_id="s1")
    eng.wait(r.passive_job_id, timeout=60)
    assert len(_facts(eng)) == 1
    eng.delete(r.active_ids[0])
    assert _facts(eng) == []


# ---------------------------------------------------------------- episodes


def test_episodes_split_on_time_gap_and_end_session(eng):
    day1 = [
        ("I adopted a puppy named Max.", "2024-01-01T10:00:00"),
        ("We walk every morning.", "2024-01-01T10:01:00"),
    ]
    day2 = [("I started a pottery class.", "2024-01-05T18:00:00")]
    for text, ts in [*day1, *day2]:
        r = eng.remember([{"role": "Ana", "text": text, "timestamp": ts}], session_id="s1", user_id="u1")
    eng.wait_all(timeout=60)
    eps = eng.list(kinds=["episode"]).results
    assert len(eps) == 2
    first, second = sorted(eps, key=lambda e: e.attributes["started_at"])
    assert first.attributes["open"] is False and second.attributes["open"] is True
    assert len(first.attributes["turn_ids"]) == 2 and len(second.attributes["turn_ids"]) == 1
    assert first.attributes["ended_at"].startswith("2024-01-01T10:01")
    assert first.attributes["fact_ids"] and all(f.startswith("f_") for f in first.attributes["fact_ids"])
    assert "Max" in first.text and first.text.startswith(first.attributes["title"] + ": ")
    closed = eng.end_session("s1")
    assert closed is not None and closed.id == second.id and closed.attributes["open"] is False
    assert closed.attributes["turn_ids"] == [r.active_ids[0]]
    assert eng.end_session("s1") is None
    # After closing, the next turn opens a new episode.
    eng.remember(
        [{"role": "Ana", "text": "I finished my first bowl.", "timestamp": "2024-01-05T18:05:00"}],
        session_id="s1",
        user_id="u1",
    )
    eng.wait_all(timeout=60)
    assert len(eng.list(kinds=["episode"]).results) == 3


def test_episode_size_limit(tmp_path, embedder):
    e = MemoryEngine(tmp_path / "s", embedder=embedder, enricher=Enricher(episode_max_turns=3))
    try:
        turns = [
            {"role": "user", "text": f"I visited museum number {i}.", "timestamp": f"2024-01-01T10:0{i}:00"}
            for i in range(7)
        ]
        e.remember(turns, session_id="s1")
        e.wait_all(timeout=60)
        sizes = sorted(len(x.attributes["turn_ids"]) for x in e.list(kinds=["episode"]).results)
        assert sizes == [1, 3, 3]
    finally:
        e.close()


def test_episode_topic_shift(tmp_path, embedder):
    e = MemoryEngine(
        tmp_path / "s", embedder=embedder, enricher=Enricher(min_episode_turns=3, topic_shift=0.2)
    )
    try:
        cooking = [
            "I baked sourdough bread today.",
            "My bread dough needs more flour and yeast.",
            "I love baking bread and pastries.",
            "Baking bread with whole wheat flour is my favorite.",
        ]
        space = ["The quarterly tax filing deadline for my company is April 15."]
        e.remember(
            [
                {"role": "user", "text": t, "timestamp": f"2024-01-01T10:0{i}:00"}
                for i, t in enumerate(cooking + space)
            ],
            session_id="s1",
        )
        e.wait_all(timeout=60)
        sizes = sorted(len(x.attributes["turn_ids"]) for x in e.list(kinds=["episode"]).results)
        assert sizes == [1, 4]
    finally:
        e.close()


# ---------------------------------------------------------------- jobs


def test_job_status_errors_and_erase_counts_jobs(eng):
    with pytest.raises(JobError):
        eng.job_status("job_nope")
    r = eng.remember([{"role": "user", "text": "I live in Oslo."}], session_id="s1", user_id="u1")
    eng.wait(r.passive_job_id, timeout=60)
    with pytest.raises(JobError):
        eng.job_status(r.passive_job_id, tenant_id="other")
    receipt = eng.erase(user_id="u1")
    assert receipt.jobs == 1 and receipt.derived == 2  # the fact and the episode
    with pytest.raises(JobError):
        eng.job_status(r.passive_job_id)


def test_enrichment_disabled_engine_has_no_jobs(tmp_path, embedder):
    e = MemoryEngine(tmp_path / "s", embedder=embedder)
    try:
        assert (
            e.remember([{"role": "user", "text": "I live in Oslo."}], session_id="s").passive_job_id is None
        )
        with pytest.raises(JobError):
            e.wait_all(1)
    finally:
        e.close()


def test_restart_resumes_pending_turns_without_job(tmp_path, embedder):
    """Turns written with enrich=pending but no job (crash before submit) are found in Chroma."""
    path = tmp_path / "s"
    e = MemoryEngine(path, embedder=embedder)  # no enricher: turns stay pending
    r = e.remember([{"role": "user", "text": "I work at Acme Corp."}], session_id="s1", user_id="u1")
    e.close()
    e2 = MemoryEngine(path, embedder=embedder, enricher="default")
    try:
        e2.wait_all(timeout=60)
        facts = _facts(e2)
        assert [f.attributes["value"] for f in facts] == ["Acme Corp"]
        assert facts[0].parent_id == r.active_ids[0]
        _, aux = e2._run(e2.aengine.collections("default"))
        jobs = e2._run(aux.get_all(where={"type": "job"}, include=["metadatas"]))
        assert [m["status"] for m in jobs["metadatas"]] == ["done"]
    finally:
        e2.close()


async def test_async_engine_worker_task(tmp_path, embedder):
    eng = AsyncMemoryEngine(tmp_path / "a", embedder=embedder, enricher="default")
    try:
        r = await eng.remember([{"role": "user", "text": "My sister Lena lives in Vienna."}], session_id="s1")
        status = await eng.wait(r.passive_job_id, timeout=60)
        assert status.status == "done"
        facts = (await eng.list(kinds=["fact"])).results
        assert any(
            f.attributes["predicate"] == "has" and f.attributes["value"] == "sister Lena" for f in facts
        )
        ep = await eng.end_session("s1")
        assert ep is not None and ep.kind == "episode"
    finally:
        await eng.aclose()


# ---------------------------------------------------------------- LLM extractors


GOOD = {
    "facts": [
        {
            "text": "Ana moved to Berlin.",
            "fact_type": "location",
            "subject": "Ana",
            "predicate": "lives_in",
            "value": "Berlin",
            "event_date": None,
            "confidence": 0.9,
            "source_turn_ids": ["t1"],
        }
    ]
}
MISSING_VALUE = {
    "facts": [
        {
            "text": "Ana moved.",
            "fact_type": "location",
            "subject": "Ana",
            "predicate": "lives_in",
            "source_turn_ids": ["t1"],
        }
    ]
}


def _tool_model(payloads: list[dict[str, Any]]) -> Any:
    """A LangChain fake chat model that answers with tool calls, so with_structured_output works."""
    from langchain_core.language_models.fake_chat_models import GenericFakeChatModel
    from langchain_core.messages import AIMessage

    class FakeToolChatModel(GenericFakeChatModel):
        def bind_tools(self, tools: Any, **kwargs: Any) -> Any:
            return self

    msgs = [
        AIMessage(content="", tool_calls=[{"name": "FactList", "args": p, "id": f"c{i}"}])
        for i, p in enumerate(payloads)
    ]
    return FakeToolChatModel(messages=iter(msgs))


def _scripted_llama(replies: list[str]) -> Any:
    from llama_index.core.base.llms.types import CompletionResponse
    from llama_index.core.llms import MockLLM

    class ScriptedLLM(MockLLM):
        def complete(self, prompt: str, formatted: bool = False, **kwargs: Any) -> CompletionResponse:
            return CompletionResponse(text=replies.pop(0))

    return ScriptedLLM()


def _llm_turn() -> list[TurnInput]:
    return [_turn("Guess what, I moved to Berlin!", role="Ana")]


async def test_llm_extractor_langchain_structured_output():
    facts = await LLMExtractor(_tool_model([GOOD])).aextract(_llm_turn())
    assert [(f.subject, f.predicate, f.value) for f in facts] == [("Ana", "lives_in", "Berlin")]


async def test_llm_extractor_langchain_structured_output_malformed():
    with pytest.raises(ExtractionError, match="structured output failed"):
        await LLMExtractor(_tool_model([MISSING_VALUE])).aextract(_llm_turn())


async def test_llm_extractor_langchain_json_fallback_and_instructions():
    from langchain_core.language_models.fake_chat_models import FakeListChatModel

    model = FakeListChatModel(responses=["```json\n" + json.dumps(GOOD) + "\n```", "Sorry, I can't do that."])
    ex = LLMExtractor(model)
    facts = await ex.aextract(_llm_turn(), custom_instructions="Only locations")
    assert facts[0].value == "Berlin"
    with pytest.raises(ExtractionError, match="not JSON"):
        await ex.aextract(_llm_turn())


def test_llm_extractor_llamaindex_mockllm():
    from llama_index.core.llms import MockLLM

    facts = LLMExtractor(_scripted_llama([json.dumps(GOOD)])).extract(_llm_turn())
    assert facts[0].predicate == "lives_in"
    with pytest.raises(ExtractionError):  # the stock MockLLM echoes the prompt: not a fact list
        LLMExtractor(MockLLM()).extract(_llm_turn())
    with pytest.raises(ExtractionError, match="malformed fact"):
        LLMExtractor(_scripted_llama([json.dumps(MISSING_VALUE)])).extract(_llm_turn())
    assert parse_json('Here you go: {"facts": []} hope it helps') == {"facts": []}


def test_llm_extractor_rejects_non_llm():
    with pytest.raises(TypeError):
        LLMExtractor(object())


def _llm_payload(turn_id: str, value: str) -> dict[str, Any]:
    return {
        "facts": [
            {
                "text": f"Ana lives in {value}.",
                "fact_type": "location",
                "subject": "Ana",
                "predicate": "lives_in",
                "value": value,
                "source_turn_ids": [turn_id],
            }
        ]
    }


def test_engine_with_llm_extractor_retries_after_malformed_output(tmp_path, embedder):
    replies: list[str] = []
    llm = _scripted_llama(replies)
    e = MemoryEngine(
        tmp_path / "s",
        embedder=embedder,
        enricher=Enricher(LLMExtractor(llm, summarize_episodes=False), backoff=0.01),
    )
    try:
        from mem_adapters.records import turn_id

        tid = "turn-1"
        stored = turn_id("default", None, None, "s1", tid)  # the id the extractor is shown and cites
        replies += ['{"facts": [{"text": "Ana', json.dumps(_llm_payload(stored, "Berlin"))]
        r = e.remember([{"id": tid, "role": "Ana", "text": "I moved to Berlin."}], session_id="s1")
        assert r.active_ids == [stored]
        status = e.wait(r.passive_job_id, timeout=60)
        assert (status.status, status.attempts) == ("done", 2)
        assert [f.attributes["value"] for f in _facts(e)] == ["Berlin"]
        assert _facts(e)[0].attributes["origin"] == "extracted"
    finally:
        e.close()


def test_engine_with_llm_extractor_fails_clearly_and_writes_nothing(tmp_path, embedder):
    bad = [
        json.dumps(MISSING_VALUE),
        "not json",
        json.dumps({"facts": [{**GOOD["facts"][0], "source_turn_ids": ["x"]}]}),
    ]
    e = MemoryEngine(
        tmp_path / "s", embedder=embedder, enricher=Enricher(LLMExtractor(_scripted_llama(bad)), backoff=0.01)
    )
    try:
        r = e.remember([{"id": "t1", "role": "Ana", "text": "I moved to Berlin."}], session_id="s1")
        status = e.wait(r.passive_job_id, timeout=60)
        assert status.status == "failed" and status.attempts == 3
        assert "ExtractionError" in status.error and "unknown source turns" in status.error
        assert _facts(e) == [] and e.list(kinds=["episode"]).results == []
        mem, _ = e._run(e.aengine.collections("default"))
        tid = r.active_ids[0]  # the stored id of caller id "t1"
        assert e._run(mem.get(ids=[tid], include=["metadatas"]))["metadatas"][0]["enrich"] == "failed"
        # The turn itself is untouched and still searchable.
        assert e.search("Berlin").results[0].caller_id == "t1"
    finally:
        e.close()
