"""Listing a tenant's enrichment jobs: ``MemoryEngine.list_jobs`` (paging, status, tenants)."""

from __future__ import annotations

from typing import Any

import pytest

from mem_adapters import MemoryEngine, ValidationError
from mem_adapters.enrichment import Enricher, ExtractionError, RuleExtractor
from mem_adapters.enrichment.job_list import JobPage


class FailOn(RuleExtractor):
    """The rule extractor, except that a batch mentioning FAILME raises (its job fails)."""

    def extract(self, turns: Any, **kw: Any) -> Any:
        if any("FAILME" in t.text for t in turns):
            raise ExtractionError("FAILME: this batch fails on purpose")
        return super().extract(turns, **kw)


@pytest.fixture(scope="module")
def jobs(tmp_path_factory, embedder) -> Any:
    """Seven jobs in tenant acme (two failing, one of user bob), two in tenant globex."""
    path = tmp_path_factory.mktemp("jobs") / "store"
    e = MemoryEngine(path, embedder=embedder, enricher=Enricher(FailOn(), max_attempts=1, backoff=0.01))
    made: dict[str, list[str]] = {"acme": [], "globex": []}
    texts = ["I love tea.", "FAILME now", "I live in Oslo.", "I have a cat.", "FAILME again", "I ski.", "Hi."]
    for i, text in enumerate(texts):
        r = e.remember(
            [{"role": "user", "text": text}, {"role": "assistant", "text": f"ok {i}"}],
            session_id=f"s{i}",
            user_id="bob" if i == 3 else "ann",
            tenant_id="acme",
        )
        e.wait(r.passive_job_id, timeout=120)
        made["acme"].append(r.passive_job_id)
    for i in range(2):
        r = e.remember([{"role": "user", "text": f"globex {i}"}], session_id=f"g{i}", tenant_id="globex")
        e.wait(r.passive_job_id, timeout=120)
        made["globex"].append(r.passive_job_id)
    yield e, made, path
    e.close()


def test_pages_newest_first_with_counts(jobs):
    e, made, _ = jobs
    seen: list[str] = []
    page: JobPage = e.list_jobs(1, 3, tenant_id="acme")
    assert (page.count, page.next, page.previous) == (7, 2, None)
    while True:
        seen += [j.job_id for j in page.results]
        if page.next is None:
            break
        page = e.list_jobs(page.next, 3, tenant_id="acme")
    assert (page.next, page.previous, len(page.results)) == (None, 2, 1)
    assert seen == made["acme"][::-1]  # newest first, every job once
    first = e.list_jobs(1, 50, tenant_id="acme").results[-1]  # the oldest
    assert first.job_id == made["acme"][0] and first.status == "done" and first.error is None
    assert first.turn_count == 2 == len(first.turn_ids) and first.session_id == "s0"
    assert first.user_id == "ann" and first.created_at is not None and first.finished_at is not None
    assert e.list_jobs(4, 3, tenant_id="acme").results == []


def test_status_and_user_filters(jobs):
    e, made, _ = jobs
    failed = e.list_jobs(tenant_id="acme", status="failed")
    assert failed.count == 2
    assert [j.job_id for j in failed.results] == [made["acme"][4], made["acme"][1]]
    assert all(j.error.endswith("FAILME: this batch fails on purpose") for j in failed.results)
    done = e.list_jobs(tenant_id="acme", status="done")
    assert done.count == 5 and {j.status for j in done.results} == {"done"}
    assert e.list_jobs(tenant_id="acme", status="pending").count == 0
    bob = e.list_jobs(tenant_id="acme", user_id="bob")
    assert [j.job_id for j in bob.results] == [made["acme"][3]]
    # The listing and job_status agree on every shared field.
    for j in e.list_jobs(tenant_id="acme").results:
        one = e.job_status(j.job_id, tenant_id="acme")
        assert one.model_dump() == {k: v for k, v in j.model_dump().items() if k in one.model_dump()}


def test_tenants_are_isolated(jobs):
    e, made, _ = jobs
    g = e.list_jobs(tenant_id="globex")
    assert [j.job_id for j in g.results] == made["globex"][::-1]
    assert not set(made["acme"]) & {j.job_id for j in g.results}
    assert e.list_jobs().count == 0  # the default tenant has no jobs
    assert e.list_jobs(tenant_id="nobody").count == 0
    assert e.list_jobs(tenant_id="globex", user_id="ann").count == 0


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"page": 0}, "page"),
        ({"page_size": 0}, "page_size"),
        ({"page_size": 1001}, "page_size"),
        ({"status": "finished"}, "status"),
        ({"tenant_id": ""}, "tenant_id"),
        ({"user_id": ""}, "user_id"),
    ],
)
def test_bad_arguments_are_validation_errors(jobs, kwargs, field):
    e, _, _ = jobs
    with pytest.raises(ValidationError) as err:
        e.list_jobs(**kwargs)
    assert err.value.field == field


def test_listed_without_a_worker(jobs, tmp_path, embedder):
    """Jobs are durable rows: an engine with enricher=None lists what another run recorded."""
    e, made, path = jobs
    e.close()
    reopened = MemoryEngine(path, embedder=embedder, enricher=None)
    try:
        assert [j.job_id for j in reopened.list_jobs(tenant_id="acme").results] == made["acme"][::-1]
    finally:
        reopened.close()
