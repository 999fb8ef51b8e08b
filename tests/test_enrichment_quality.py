"""Quality of the default enrichment: readable fact texts, names, plural statements, episodes,
and enrichment under a Chroma server and under concurrent callers."""

from __future__ import annotations

import threading
import uuid
from collections import Counter
from datetime import datetime, timezone
from typing import Any

import pytest

from mem_adapters import AsyncMemoryEngine, MemoryEngine
from mem_adapters.cli import DEMO_TURNS
from mem_adapters.enrichment import (
    Enricher,
    ExtractedFact,
    RuleExtractor,
    TurnInput,
    summarize_rules,
    to_third_person,
)

T0 = datetime(2025, 3, 1, 9, tzinfo=timezone.utc)


def _extract(text: str, role: str = "user") -> list[ExtractedFact]:
    return RuleExtractor().extract([TurnInput(id="t1", role=role, text=text, timestamp=T0)])


def _facts(engine: MemoryEngine, **kw: Any) -> list[Any]:
    return engine.list(kinds=["fact"], page_size=1000, **kw).results


def _demo_turns() -> list[dict[str, str]]:
    return [{"role": r, "text": t, "timestamp": ts} for r, t, ts in DEMO_TURNS]


@pytest.fixture
def eng(tmp_path, embedder):
    e = MemoryEngine(tmp_path / "q", embedder=embedder, enricher=Enricher(backoff=0.01))
    yield e
    e.close()


# ---------------------------------------------------------------- third-person text


@pytest.mark.parametrize(
    ("sentence", "expected"),
    [
        (
            "I just moved to Lisbon with my partner Sam.",
            "The user just moved to Lisbon with the user's partner Sam.",
        ),
        (
            "On weekends I like hiking along the coast near Sintra.",
            "On weekends the user likes hiking along the coast near Sintra.",
        ),
        ("I work as a nurse and start night shifts.", "The user works as a nurse and starts night shifts."),
        ("I go to school and study law.", "The user goes to school and studies law."),
        # A shared infinitive or modal keeps the second verb in its base form.
        ("I want to travel and start a business.", "The user wants to travel and start a business."),
        ("I will cook and bake all day.", "The user will cook and bake all day."),
        # A noun after "and" is left alone.
        ("I like cats and dogs.", "The user likes cats and dogs."),
        ("We moved to Porto last month.", "The user and others moved to Porto last month."),
        # With "I" in the sentence, "we" may include the listener: it stays as said.
        ("I think we did great.", "The user thinks we did great."),
        ("We're selling our flat.", "The user and others are selling their flat."),
    ],
)
def test_third_person_is_grammatical(sentence, expected):
    assert to_third_person(sentence, "The user") == expected


def test_third_person_named_speaker_keeps_capital():
    assert (
        to_third_person("I love my dog and walk him daily.", "Ana")
        == "Ana loves Ana's dog and walks him daily."
    )


# ---------------------------------------------------------------- names


@pytest.mark.parametrize(
    ("text", "name"),
    [
        ("Hi! I'm Dana.", "Dana"),
        ("I am Dana, nice to meet you.", "Dana"),
        ("My name is Dana Silva.", "Dana Silva"),
        ("my name's Dana", "Dana"),
        ("Please call me Dana.", "Dana"),
        ("Call me Dana", "Dana"),
    ],
)
def test_stating_a_name_is_a_profile_fact(text, name):
    facts = [f for f in _extract(text) if f.predicate == "name"]
    assert len(facts) == 1
    assert (facts[0].value, facts[0].fact_type, facts[0].subject) == (name, "profile", "user")
    assert facts[0].text == f"The user's name is {name}."


@pytest.mark.parametrize("text", ["I'm Italian.", "I'm Catholic and proud of it.", "I'm here."])
def test_nationality_or_filler_is_not_a_name(text):
    assert [f for f in _extract(text) if f.predicate == "name"] == []


# ---------------------------------------------------------------- one sentence, several aspects


def test_one_sentence_with_two_aspects_gives_two_distinct_texts():
    facts = _extract("I just moved to Lisbon with my partner Sam.")
    by_pred = {f.predicate: f for f in facts}
    assert set(by_pred) == {"lives_in", "partner"}
    assert by_pred["lives_in"].value == "Lisbon" and by_pred["partner"].value == "Sam"
    assert by_pred["partner"].text == "The user's partner is Sam."
    assert len({f.text for f in facts}) == len(facts)


def test_typed_value_stops_at_a_second_verb():
    facts = _extract("I work as a nurse and start night shifts next Monday.")
    work = [f for f in facts if f.predicate == "works_as"]
    assert [f.value for f in work] == ["nurse"]
    assert work[0].text.startswith("The user works as a nurse and starts night shifts next Monday")


class _EchoExtractor:
    """An extractor that states two aspects of a turn with the same text (like a sloppy LLM)."""

    def extract(self, turns, *, context=(), custom_instructions=None):
        out = []
        for t in turns:
            out.append(ExtractedFact(text="The user moved to Lisbon with Sam.", subject="user",
                                     predicate="lives_in", value="Lisbon", confidence=0.9,
                                     source_turn_ids=[t.id], entities=["Lisbon"]))  # fmt: skip
            out.append(ExtractedFact(text="The user moved to Lisbon with Sam.", subject="user",
                                     predicate="partner", value="Sam", confidence=0.8,
                                     source_turn_ids=[t.id], entities=["Sam"]))  # fmt: skip
        return out


def test_worker_merges_facts_with_identical_text(tmp_path, embedder):
    with MemoryEngine(tmp_path / "m", embedder=embedder, enricher=Enricher(_EchoExtractor())) as e:
        r = e.remember([{"role": "user", "text": "Moved to Lisbon with Sam."}], session_id="s", user_id="u")
        assert e.wait(r.passive_job_id, 60).status == "done"
        facts = _facts(e)
        assert len(facts) == 1
        assert facts[0].attributes["predicate"] == "lives_in"
        assert facts[0].attributes["entities"] == ["Lisbon", "Sam"]


# ---------------------------------------------------------------- first-person plural


@pytest.mark.parametrize(
    ("text", "predicate", "value"),
    [
        ("We moved to Porto last month.", "lives_in", "Porto"),
        ("We live in Porto now.", "lives_in", "Porto"),
        ("We're planning to visit Japan next year.", "plans", "visit Japan"),
        ("We got married in June.", "marital_status", "married"),
        ("We adopted a dog named Rex.", "pet", "dog"),
    ],
)
def test_first_person_plural_statements(text, predicate, value):
    facts = [f for f in _extract(text) if f.predicate == predicate]
    assert [f.value for f in facts] == [value]
    assert facts[0].subject == "user" and facts[0].text.startswith("The user and others ")


@pytest.mark.parametrize("text", ["We should hang out sometime, it was fun.", "We are so happy for you!"])
def test_plural_small_talk_is_skipped(text):
    assert _extract(text) == []


# ---------------------------------------------------------------- the demo conversation, end to end


def test_demo_conversation_names_supersession_and_episode(eng):
    r = eng.remember(_demo_turns(), session_id="demo", user_id="dana")
    assert eng.wait(r.passive_job_id, 60).status == "done"
    facts = _facts(eng)
    texts = [f.text for f in facts]
    # No two facts of the same turn read the same.
    per_turn = Counter((f.parent_id, f.text) for f in facts)
    assert all(n == 1 for n in per_turn.values()), per_turn
    # The name is a profile fact, and later facts of that user use it.
    names = [f for f in facts if f.attributes["predicate"] == "name"]
    assert [(f.attributes["value"], f.attributes["fact_type"]) for f in names] == [("Dana", "profile")]
    assert "Dana works as a nurse and starts night shifts next Monday (3 March 2025)." in texts
    assert "Dana's partner is Sam." in texts
    assert not any(" The user" in t or "start night" in t for t in texts), texts
    lisbon = next(f for f in facts if f.attributes["predicate"] == "lives_in")
    assert lisbon.attributes["value"] == "Lisbon"

    ep = eng.end_session("demo", user_id="dana")
    assert ep is not None
    title, summary = ep.attributes["title"], ep.attributes["summary"]
    assert title.startswith("Dana: ") and "Lisbon" in title and "user:" not in title.lower()
    topics = title.removeprefix("Dana: ").split(", ")
    assert len(topics) == len(set(topics)) == 3 and "dana" not in {t.lower() for t in topics}
    sentences = [s for s in summary.split(". ") if s]
    assert len(sentences) == len(set(sentences)), summary
    assert len(summary) <= 600

    # A plural move in a later session supersedes the Lisbon fact of the same user.
    r2 = eng.remember(
        [{"role": "user", "text": "We moved to Porto last month.", "timestamp": "2025-06-01T10:00:00Z"}],
        session_id="demo2",
        user_id="dana",
    )
    eng.wait_all(60)
    assert eng.wait(r2.passive_job_id, 60).status == "done"
    by_id = {f.id: f for f in _facts(eng)}
    porto = next(f for f in by_id.values() if f.attributes.get("value") == "Porto")
    old = by_id[lisbon.id]
    assert porto.text == "Dana and others moved to Porto last month (May 2025)."
    assert (porto.status, porto.is_latest, porto.version, porto.supersedes) == ("active", True, 2, lisbon.id)
    assert (old.status, old.is_latest) == ("superseded", False)
    assert [h.memory_id for h in eng.history(porto.id)] == [lisbon.id, porto.id]
    # The partner fact from the same sentence is a separate aspect: it stays latest.
    assert next(f for f in by_id.values() if f.attributes["predicate"] == "partner").is_latest
    q = "where does Dana live"
    before = eng.search(q, kinds=["fact"], user_id="dana", k=3, as_of="2025-04-01T00:00:00Z").results
    after = eng.search(q, kinds=["fact"], user_id="dana", k=3, as_of="2025-06-15T00:00:00Z").results
    assert lisbon.id in [h.id for h in before] and porto.id not in [h.id for h in before]
    assert porto.id in [h.id for h in after] and lisbon.id not in [h.id for h in after]


def test_a_name_from_an_earlier_session_is_used(eng):
    eng.remember([{"role": "user", "text": "My name is Dana."}], session_id="a", user_id="dana")
    eng.remember([{"role": "user", "text": "I'm allergic to peanuts."}], session_id="b", user_id="dana")
    eng.remember([{"role": "user", "text": "I'm allergic to peanuts."}], session_id="c", user_id="other")
    eng.wait_all(60)
    texts = {(f.user_id, f.text) for f in _facts(eng)}
    assert ("dana", "Dana is allergic to peanuts.") in texts
    assert ("other", "The user is allergic to peanuts.") in texts


# ---------------------------------------------------------------- episode summaries


def _fact_row(text: str, predicate: str, conf: float, parent: str) -> tuple[str, dict[str, Any]]:
    import json

    attrs = {"predicate": predicate, "subject": "user", "value": "x", "confidence": conf}
    return text, {"attrs": json.dumps(attrs), "parent_id": parent}


def test_summary_is_deduplicated_ordered_and_bounded():
    turns = [
        TurnInput(id="a", role="user", text="I moved to Lisbon with my partner Sam. Lisbon is lovely."),
        TurnInput(id="b", role="assistant", text="Welcome to Lisbon!"),
        TurnInput(id="c", role="user", text="I'm allergic to shellfish, shellfish is everywhere here."),
    ]
    facts = [
        _fact_row("The user is allergic to shellfish.", "allergic_to:shellfish", 0.9, "c"),
        _fact_row("The user moved to Lisbon with the user's partner Sam.", "lives_in", 0.85, "a"),
        _fact_row("The user moved to Lisbon with the user's partner Sam.", "lives_in", 0.85, "a"),
        _fact_row("The user's partner is Sam.", "partner", 0.8, "a"),
    ]
    s = summarize_rules(turns, facts)
    assert s.summary == (
        "The user moved to Lisbon with the user's partner Sam. The user is allergic to shellfish."
    )
    # Most mentioned first (Lisbon); ties in order of first mention; "partner" loses to the name.
    assert s.title == "User: Lisbon, Sam, shellfish"
    named = summarize_rules(turns, facts, name="Dana")
    assert named.title.startswith("Dana: ")
    many = [_fact_row(f"The user visited museum number {i} in town.", "did", 0.6, "a") for i in range(40)]
    bounded = summarize_rules(turns, many, max_facts=40, max_chars=200)
    assert len(bounded.summary) <= 200 and bounded.summary.endswith(".")


# ---------------------------------------------------------------- concurrency and server mode


def test_concurrent_remember_from_threads(tmp_path, embedder):
    statements = ["I live in Lisbon.", "I'm allergic to peanuts.", "I work as a nurse.", "I love hiking."]
    errors: list[BaseException] = []
    results: list[Any] = []
    with MemoryEngine(tmp_path / "c", embedder=embedder, enricher="default") as e:

        def worker(w: int) -> None:
            try:
                for j, text in enumerate(statements):
                    turns = [{"role": "user", "text": text, "timestamp": f"2025-03-0{w + 1}T10:0{j}:00Z"}]
                    results.append(e.remember(turns, session_id=f"s{w}", user_id="u"))
            except BaseException as exc:  # surfaced below: a thread's exception is otherwise lost
                errors.append(exc)

        threads = [threading.Thread(target=worker, args=(w,)) for w in range(4)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert errors == []
        e.wait_all(120)
        assert {e.wait(r.passive_job_id, 60).status for r in results} == {"done"}
        turn_ids = [i for r in results for i in r.active_ids]
        assert len(turn_ids) == 16
        mem, _ = e.run(e.aengine.collections("default"))
        got = e.run(mem.get(ids=turn_ids, include=["metadatas"]))
        assert [m["enrich"] for m in got["metadatas"]] == ["done"] * 16
        facts = _facts(e)
        latest = [f for f in facts if f.is_latest]
        # Every statement was made four times: one fact each, citing all four turns.
        assert sorted(f.text for f in latest) == sorted(
            ["The user lives in Lisbon.", "The user is allergic to peanuts.", "The user works as a nurse.",
             "The user loves hiking."]
        )  # fmt: skip
        assert len(facts) == 4
        assert all(len(f.source_ids) == 4 for f in facts)


@pytest.mark.server
async def test_enrichment_against_chroma_server(chroma_server, embedder):
    host, port = chroma_server
    t = f"enr-{uuid.uuid4().hex[:10]}"
    eng = AsyncMemoryEngine(host=host, port=port, embedder=embedder, enricher="default")
    try:
        r1 = await eng.remember(
            [
                {
                    "role": "user",
                    "text": "I live in Paris and I love sushi.",
                    "timestamp": "2025-01-01T10:00:00Z",
                }
            ],
            session_id="s1",
            user_id="u",
            tenant_id=t,
        )
        assert (await eng.wait(r1.passive_job_id, 60, tenant_id=t)).status == "done"
        facts = (await eng.list(kinds=["fact"], tenant_id=t)).results
        assert sorted(f.text for f in facts) == ["The user lives in Paris.", "The user loves sushi."]
        paris = next(f for f in facts if f.attributes["value"] == "Paris")
        r2 = await eng.remember(
            [{"role": "user", "text": "We moved to Berlin last week.", "timestamp": "2025-03-01T10:00:00Z"}],
            session_id="s2",
            user_id="u",
            tenant_id=t,
        )
        assert (await eng.wait(r2.passive_job_id, 60, tenant_id=t)).status == "done"
        by_value = {f.attributes["value"]: f for f in (await eng.list(kinds=["fact"], tenant_id=t)).results}
        berlin, old = by_value["Berlin"], by_value["Paris"]
        assert (berlin.supersedes, berlin.version, berlin.is_latest) == (paris.id, 2, True)
        assert (old.status, old.is_latest) == ("superseded", False)
        hist = await eng.history(berlin.id, tenant_id=t)
        assert [h.memory_id for h in hist] == [paris.id, berlin.id]
    finally:
        await eng.aclose()
