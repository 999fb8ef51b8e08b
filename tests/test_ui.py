"""The memory inspector (/ui) in real headless Chromium, over a real `mem-adapters serve`.

A store is seeded with the engine (more than two pages of every list at 5 rows a page, a
fact chain of three versions, a chunked raw memory, episodes, one finished and one failed
enrichment job, and XSS payloads in every field the inspector shows), then served with JWT
auth. Chromium is Debian's (/usr/bin/chromium, installed by scripts/install-browser.sh),
driven by Playwright's Python API; axe-core comes from tests/ui/node_modules.

Screenshots of each view go to $UI_ARTIFACTS (default: a pytest temp folder).
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import jwt
import pytest

from mem_adapters import MemoryEngine
from mem_adapters.enrichment import Enricher, ExtractionError, RuleExtractor
from mem_adapters.server.process import ServerProcess

pytest.importorskip("fastapi")
sync_api = pytest.importorskip("playwright.sync_api")

CHROMIUM = os.environ.get("MEM_ADAPTERS_CHROMIUM", "/usr/bin/chromium")
AXE = Path(__file__).parent / "ui" / "node_modules" / "axe-core" / "axe.min.js"
if not Path(CHROMIUM).exists() or not AXE.exists():
    msg = f"needs {CHROMIUM} and {AXE}: run scripts/install-browser.sh"
    if os.environ.get("CI"):
        raise RuntimeError(msg)
    pytest.skip(msg, allow_module_level=True)

CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
SECRET = "ui-test-secret-" + "y" * 32
PAGE = 5
XSS = '<script>alert(1)</script><img src=x onerror=alert(2)><a href="javascript:alert(3)">x</a>'
XSS_USER = "<img src=x onerror=alert(4)>"
XSS_ID = "sess <img src=x onerror=alert(7)> <svg onload=alert(8)>"  # ids in a URL path: no "/"
XSS_TENANT = '<img src=x onerror=alert(9)><script>alert(10)</script><a href="javascript:alert(11)">t</a>'
XSS_ERROR = '<img src=x onerror=alert(12)><script>alert(13)</script><a href="javascript:alert(14)">e</a>'
ACTIVITIES = [
    "hiking", "cycling", "baking", "painting", "chess", "surfing",
    "knitting", "climbing", "rowing", "gardening", "fishing", "skating",
]  # fmt: skip


class FailOn(RuleExtractor):
    """The rule extractor, except that a batch mentioning FAILME raises (its job fails)."""

    def extract(self, turns: Any, **kw: Any) -> Any:
        if any("FAILME" in t.text for t in turns):
            raise ExtractionError("FAILME: this batch fails on purpose")
        if any("XSSFAIL" in t.text for t in turns):
            raise ExtractionError(f"XSSFAIL {XSS_ERROR}")
        return super().extract(turns, **kw)


def _ts(day: int, minute: int = 0) -> str:
    return f"2024-03-{day:02d}T10:{minute:02d}:00"


def seed(path: Path) -> dict[str, Any]:
    """Write the inspector's test store; returns the ids the tests look for."""
    e = MemoryEngine(path, enricher=Enricher(FailOn(), max_attempts=1, backoff=0.01))
    out: dict[str, Any] = {}
    try:
        for t in range(11):
            e.remember(
                [{"role": "user", "text": f"hello from tenant {t}"}],
                session_id="s",
                tenant_id=f"t{t:02d}",
                user_id=f"user-of-t{t:02d}",
            )
        x = e.remember(
            [{"role": "user", "text": f"hello {XSS}"}],
            session_id=XSS_ID,
            user_id=XSS_USER,
            tenant_id=XSS_TENANT,
        )
        e.wait(x.passive_job_id, timeout=60)
        for u in range(11):
            e.remember([{"role": "user", "text": f"note {u}"}], session_id=f"other-{u}", user_id=f"u{u:02d}")
        chain = ["I moved to Berlin.", "I moved to Paris.", "I moved to Rome."]
        first = None
        for s in range(12):
            turns = [{"role": "user", "text": f"I really love {ACTIVITIES[s]}.", "timestamp": _ts(s + 1)}]
            if s < 3:
                turns.append({"role": "user", "text": chain[s], "timestamp": _ts(s + 1, 1)})
            n = 12 if s == 0 else 6
            for i in range(len(turns), n):
                role = "assistant" if i % 2 else "user"
                turns.append(
                    {
                        "role": role,
                        "text": f"session {s} turn {i} about {ACTIVITIES[s]}",
                        "timestamp": _ts(s + 1, i + 2),
                        "metadata": {"turn_no": i},
                    }
                )
            r = e.remember(turns, session_id=f"s{s:02d}", user_id="ana")
            first = first or r.passive_job_id
            e.wait(r.passive_job_id, timeout=120)
            e.end_session(f"s{s:02d}", user_id="ana")
        out["done_job"] = first
        for i in range(11):
            e.add(raw_text=f"raw note {i} about {ACTIVITIES[i]}", user_id="ana", metadata={"n": i})
        long = " ".join(
            f"Paragraph {i} of the travel log: the train passed lake number {i}." for i in range(200)
        )
        e.add(raw_text=long, user_id="ana", memory_id="travel-log")
        raws = e.list(user_id="ana", kinds=["raw"], page_size=1000).results
        out["chunked"] = next(m.id for m in raws if m.text.startswith("Paragraph 0"))  # its stored id
        bad = e.remember([{"role": "user", "text": "FAILME please"}], session_id="fail", user_id="u10")
        out["failed_job"] = bad.passive_job_id
        e.wait(bad.passive_job_id, timeout=60)
        # Untrusted strings in every field the inspector shows.
        x = e.remember(
            [
                {
                    "role": XSS,
                    "text": f"I really love {XSS}. {XSS}",
                    "timestamp": _ts(20),
                    "metadata": {XSS: XSS, "link": "javascript:alert(5)"},
                }
            ]
            * 1,
            session_id=XSS_ID,
            user_id=XSS_USER,
        )
        e.wait(x.passive_job_id, timeout=60)
        e.end_session(XSS_ID, user_id=XSS_USER)
        e.add(raw_text=f"raw {XSS}", user_id=XSS_USER, metadata={XSS: "javascript:alert(6)"})
        xf = e.remember([{"role": "user", "text": f"XSSFAIL {XSS}"}], session_id="xss-fail", user_id=XSS_USER)
        out["xss_job"] = xf.passive_job_id
        e.wait(xf.passive_job_id, timeout=60)
        out["facts"] = e.list(user_id="ana", kinds=["fact"], page_size=1000).results
        out["episodes"] = e.list(user_id="ana", kinds=["episode"], page_size=1000).count
        out["chunks"] = e.list(kinds=["chunk"], filters={"parent_id": out["chunked"]}, page_size=1000).count
    finally:
        e.close()
    return out


def token(**claims: Any) -> str:
    now = int(time.time())
    return jwt.encode(
        {"sub": "inspector", "org_id": "default", "iat": now, "exp": now + 3600, **claims},
        SECRET,
        algorithm="HS256",
    )


@pytest.fixture(scope="module")
def env(tmp_path_factory) -> Iterator[dict[str, Any]]:
    d = tmp_path_factory.mktemp("ui")
    seeded = seed(d / "store")
    with ServerProcess(["--path", str(d / "store"), "--jwt-secret", SECRET]) as srv:
        admin = {"Authorization": f"Bearer {token(role='admin')}"}
        # The service's worker starts on the first job call and re-runs the failed jobs' turns
        # (still pending) as new jobs: let that happen before the tests, so job lists stay still.
        httpx.get(f"{srv.url}/v1/jobs/{seeded['done_job']}", headers=admin, timeout=60).raise_for_status()
        deadline = time.monotonic() + 180
        while any(
            httpx.get(f"{srv.url}/v1/jobs", headers=admin, params={"status": st}, timeout=60).json()["count"]
            for st in ("pending", "running")
        ):
            assert time.monotonic() < deadline, "enrichment did not settle"
            time.sleep(0.5)
        yield {"url": srv.url, "seed": seeded, "admin": token(role="admin"), "plain": token(), "log": srv.log}


@pytest.fixture(scope="module")
def artifacts(tmp_path_factory) -> Path:
    d = Path(os.environ.get("UI_ARTIFACTS") or tmp_path_factory.mktemp("ui-shots"))
    d.mkdir(parents=True, exist_ok=True)
    return d


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    """Debian's Chromium; Playwright gives each launch a new empty --user-data-dir."""
    with sync_api.sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
        yield b
        b.close()


class Watch:
    """Dialogs opened and requests sent off the page's origin."""

    def __init__(self, page: Any, origin: str) -> None:
        self.dialogs: list[str] = []
        self.offsite: list[str] = []
        self.urls: list[str] = []

        def on_dialog(d: Any) -> None:
            self.dialogs.append(d.message)
            d.dismiss()

        def on_request(r: Any) -> None:
            self.urls.append(r.url)
            if not r.url.startswith(origin):
                self.offsite.append(r.url)

        page.on("dialog", on_dialog)
        page.on("request", on_request)


@pytest.fixture
def page(browser, env) -> Iterator[Any]:
    ctx = browser.new_context(viewport={"width": 1200, "height": 900})
    pg = ctx.new_page()
    pg.watch = Watch(pg, env["url"])
    pg.goto(env["url"] + "/ui/")
    yield pg
    ctx.close()


def login(page: Any, tok: str, size: int = PAGE) -> None:
    page.select_option("#page-size", str(size))
    page.fill("#token", tok)
    page.focus("#token")
    page.keyboard.press("Enter")
    page.wait_for_selector("#users-table")


def press(page: Any, selector: str) -> None:
    """Activate a control from the keyboard: focus it, press Enter."""
    page.locator(selector).first.focus()
    page.keyboard.press("Enter")


def api(env: dict[str, Any], method: str, path: str, **kw: Any) -> httpx.Response:
    return httpx.request(
        method, env["url"] + path, headers={"Authorization": f"Bearer {env['admin']}"}, timeout=60, **kw
    )


def shot(page: Any, artifacts: Path, name: str) -> None:
    page.screenshot(path=str(artifacts / f"{name}.png"), full_page=True)


def next_page(page: Any, pager: str) -> None:
    """Press Next on a pager and wait for the next page to be shown."""
    nav = f"nav[aria-label='{pager} pages']"
    before = page.locator(f"{nav} [data-pager=position]").inner_text()
    press(page, f"{nav} [data-pager=next]")
    page.wait_for_function(
        "([sel, old]) => { const e = document.querySelector(sel); return e && e.textContent !== old; }",
        arg=[f"{nav} [data-pager=position]", before],
    )


def position(page: Any, pager: str) -> str:
    return page.locator(f"nav[aria-label='{pager} pages'] [data-pager=position]").inner_text()


# ---------------------------------------------------------------- headers


def test_ui_answers_carry_a_csp_without_inline_script(env):
    for name in ("/ui/", "/ui/app.js", "/ui/app.css"):
        r = httpx.get(env["url"] + name)
        assert r.status_code == 200, name
        csp = r.headers["content-security-policy"]
        assert "script-src 'self'" in csp and "unsafe-inline" not in csp and "unsafe-eval" not in csp
        assert "connect-src 'self'" in csp
    html = httpx.get(env["url"] + "/ui/").text
    assert (
        '<script src="/ui/app.js"' in html and "<script>" not in html and " on" not in html.split("<body>")[1]
    )
    js = httpx.get(env["url"] + "/ui/app.js").text
    assert not [
        w for w in ("innerHTML", "outerHTML", "insertAdjacentHTML", "document.write", "eval(") if w in js
    ]
    assert httpx.get(env["url"] + "/ui/other.js").status_code == 404
    assert not [p for p in httpx.get(env["url"] + "/openapi.json").json()["paths"] if p.startswith("/ui")]


# ---------------------------------------------------------------- views


def test_every_view_loads_with_pagination(page, env, artifacts):
    seeded = env["seed"]
    login(page, env["admin"])
    assert "Bearer" not in page.url and env["admin"] not in page.url
    assert page.evaluate("sessionStorage.getItem('mem-adapters-token')") == env["admin"]
    shot(page, artifacts, "users")
    users = api(env, "GET", "/v1/users", params={"page": 1, "page_size": PAGE}).json()
    assert page.locator("#users-table tbody tr").count() == PAGE
    assert position(page, "Users") == f"Page 1 of {-(-users['count'] // PAGE)} ({users['count']} in all)"
    next_page(page, "Users")
    page.wait_for_selector("text=Page 2 of")
    next_page(page, "Users")
    page.wait_for_selector("text=Page 3 of")
    page3 = api(env, "GET", "/v1/users", params={"page": 3, "page_size": PAGE}).json()
    shown = page.locator("#users-table tbody tr td:first-child").all_inner_texts()
    assert shown == [u["user_id"] or "(no user)" for u in page3["results"]]

    press(page, "nav[aria-label=Views] [data-view=tenants]")
    page.wait_for_selector("#tenants-table")
    tenants = api(env, "GET", "/v1/tenants").json()["tenants"]
    assert len(tenants) > 2 * PAGE
    assert page.locator("#tenants-table tbody td:first-child").all_inner_texts() == tenants[:PAGE]
    shot(page, artifacts, "tenants")

    press(page, "nav[aria-label=Views] [data-view=users]")
    page.wait_for_selector("#users-table")
    press(page, "[data-user=ana]")
    page.wait_for_selector("#sessions-table")
    assert position(page, "Sessions") == "Page 1 of 3 (12 in all)"
    shot(page, artifacts, "sessions")
    press(page, "[data-session=s00]")
    page.wait_for_selector("#transcript")
    want = api(env, "GET", "/v1/sessions/s00/messages", params={"user_id": "ana", "page_size": 100}).json()
    assert want["count"] == 12
    seen: list[str] = []
    for p in range(3):
        seen += page.locator("#transcript > li").evaluate_all("els => els.map(e => e.dataset.turn)")
        if p < 2:
            next_page(page, "Transcript")
            page.wait_for_selector(f"text=Page {p + 2} of 3")
    assert seen == [t["id"] for t in want["results"]]  # exact order, across pages
    roles = page.locator("#transcript .role").all_inner_texts()
    assert roles == [t["role"] for t in want["results"][10:]]
    assert page.locator("#transcript .ts").first.inner_text() == want["results"][10]["timestamp"]
    assert "turn_no" in page.locator("#transcript").inner_text()
    page.evaluate("window.scrollTo(0, 0)")
    shot(page, artifacts, "transcript")

    press(page, "text=Back to user")
    press(page, "[data-tab=facts]")
    page.wait_for_selector("#facts")
    assert page.locator("#facts > li").count() == PAGE
    n_facts = len(seeded["facts"])
    assert position(page, "Facts") == f"Page 1 of {-(-n_facts // PAGE)} ({n_facts} in all)"
    rome = next(f for f in seeded["facts"] if "Rome" in f.text)
    assert rome.version == 3 and rome.is_latest
    page_of = [f.id for f in seeded["facts"]].index(rome.id) // PAGE + 1
    for _ in range(page_of - 1):
        next_page(page, "Facts")
    card = page.locator(f"[data-fact='{rome.id}']")
    card.wait_for()
    assert card.locator(".version").inner_text() == "3" and card.locator(".is-latest").inner_text() == "true"
    assert card.locator(".supersedes").inner_text() == rome.supersedes
    assert rome.parent_id in card.locator(".sources").inner_text()
    press(page, f"[data-chain='{rome.id}']")
    page.wait_for_selector("#chain-table")
    rows = page.locator("#chain-table tbody tr").all_inner_texts()
    assert len(rows) == 3 and ["Berlin" in rows[0], "Paris" in rows[1], "Rome" in rows[2]] == [True] * 3
    assert [r.split("\t")[:2] for r in rows] == [["1", "false"], ["2", "false"], ["3", "true"]]
    shot(page, artifacts, "facts")
    # A source turn is linked: its detail opens, and from there its transcript.
    press(page, f"[data-fact='{rome.id}'] .sources button")
    page.wait_for_selector("#open-transcript")
    assert page.locator("[data-field=kind]").inner_text() == "turn"

    press(page, "[data-tab=episodes]")
    page.wait_for_selector("#episodes")
    assert seeded["episodes"] > 2 * PAGE
    assert page.locator("#episodes > li").count() == PAGE
    press(page, "[data-episode-turns]")
    page.wait_for_selector("#episode-turns li")
    shot(page, artifacts, "episodes")

    press(page, "[data-tab=raw]")
    page.wait_for_selector("#raws")
    assert position(page, "Raw memories") == "Page 1 of 3 (12 in all)"
    next_page(page, "Raw memories")
    next_page(page, "Raw memories")
    chunked = seeded["chunked"]
    page.wait_for_selector(f"[data-chunks='{chunked}']")
    press(page, f"[data-chunks='{chunked}']")
    page.wait_for_selector("#chunks li")
    assert seeded["chunks"] > 1
    assert f"({seeded['chunks']} in all)" in position(page, "Chunks")
    shot(page, artifacts, "raw")

    press(page, "[data-tab=timeline]")
    page.wait_for_selector("#timeline rect")
    assert page.locator("#timeline rect").count() == 12
    assert page.locator("#timeline circle").count() == n_facts
    shot(page, artifacts, "timeline")
    assert page.watch.dialogs == [] and page.watch.offsite == []


def test_search_shows_score_parts_and_the_context_gauge(page, env, artifacts):
    login(page, env["plain"])
    press(page, "nav[aria-label=Views] [data-view=search]")
    page.fill("#q", "Where does the user live? Rome")
    page.fill("#q-user", "ana")
    page.fill("#q-budget", "600")
    press(page, "#q-budget")  # Enter in the form submits it
    page.wait_for_selector("#hits-table")
    want = api(
        env,
        "POST",
        "/v1/engine/search",
        json={"query": "Where does the user live? Rome", "k": 20, "user_id": "ana"},
    ).json()
    rows = page.locator("#hits-table tbody tr")
    assert rows.count() == min(PAGE, len(want["results"]))
    first = rows.first.locator("td").all_inner_texts()
    hit = want["results"][0]
    assert first[1] == hit["id"] and first[4] == hit["text"]
    assert first[5] == f"{hit['score_parts']['fused']:.4f}"
    assert first[6] == f"{hit['score_parts']['cosine']:.4f}"
    assert first[7] == f"{hit['score_parts']['lexical']:.3f}"
    ctx = api(
        env,
        "POST",
        "/v1/engine/search",
        json={
            "query": "Where does the user live? Rome",
            "k": 20,
            "user_id": "ana",
            "mode": "context",
            "char_budget": 600,
        },
    ).json()
    assert (
        page.locator("#context").inner_text() == ctx["context"].strip()
        or page.locator("#context").text_content() == ctx["context"]
    )
    gauge = page.locator("#budget-gauge")
    assert (
        gauge.get_attribute("max") == "600"
        and int(gauge.get_attribute("value")) == len(ctx["context"]) <= 600
    )
    assert page.locator("#echo").inner_text() == "Where does the user live? Rome"
    if len(want["results"]) > PAGE:
        next_page(page, "Hits")
        assert (
            page.locator("#hits-table tbody tr").first.locator("td").nth(1).inner_text()
            == want["results"][PAGE]["id"]
        )
    shot(page, artifacts, "search")


def _job_rows(page: Any, table: str = "#jobs-table") -> list[list[str]]:
    return [r.split("\t") for r in page.locator(f"{table} tbody tr").all_inner_texts()]


def _api_rows(jobs: list[dict[str, Any]]) -> list[list[str]]:
    """What the Jobs table shows for each job of the API's JSON (the same columns, as text)."""
    return [
        [
            j["job_id"],
            j["status"],
            j["user_id"] or "",
            j["session_id"] or "",
            str(j["turn_count"]),
            str(j["attempts"]),
            j["error"] or "",
            j["created_at"] or "",
            j["finished_at"] or "",
        ]
        for j in jobs
    ]


def test_jobs_list_pages_filters_and_lookup(page, env, artifacts):
    login(page, env["plain"])
    press(page, "nav[aria-label=Views] [data-view=jobs]")
    page.wait_for_selector("#jobs-table tbody tr")
    want = api(env, "GET", "/v1/jobs", params={"page": 1, "page_size": PAGE}).json()
    assert want["count"] > 2 * PAGE
    assert _job_rows(page) == _api_rows(want["results"])
    assert position(page, "Jobs") == f"Page 1 of {-(-want['count'] // PAGE)} ({want['count']} in all)"
    next_page(page, "Jobs")
    want2 = api(env, "GET", "/v1/jobs", params={"page": 2, "page_size": PAGE}).json()
    assert _job_rows(page) == _api_rows(want2["results"])
    press(page, "[data-job-status=failed]")
    page.wait_for_selector("[data-job-status=failed][aria-pressed=true]")
    failed = api(env, "GET", "/v1/jobs", params={"status": "failed", "page_size": PAGE}).json()
    rows = _job_rows(page)
    assert rows == _api_rows(failed["results"]) and {r[1] for r in rows} == {"failed"}
    assert env["seed"]["failed_job"] in [r[0] for r in rows]
    assert "FAILME: this batch fails on purpose" in page.locator("#jobs-table").inner_text()
    shot(page, artifacts, "jobs")
    press(page, "[data-job-status=all]")
    page.wait_for_selector("[data-job-status=all][aria-pressed=true]")
    page.fill("#job-id", env["seed"]["done_job"])
    press(page, "#job-id")
    page.wait_for_selector(f"#looked-up-jobs >> text={env['seed']['done_job']}")
    one = api(env, "GET", f"/v1/jobs/{env['seed']['done_job']}").json()
    looked = _job_rows(page, "#looked-up-jobs")[0]
    assert looked[:2] == [one["job_id"], "done"] and looked[4] == str(len(one["turn_ids"]))


def test_admin_switches_tenant(page, env, artifacts):
    login(page, env["admin"])
    press(page, "nav[aria-label=Views] [data-view=tenants]")
    page.wait_for_selector("#tenants-table")
    next_page(page, "Tenants")
    sent_before = len(page.watch.urls)
    press(page, "[data-tenant=t03]")
    page.wait_for_selector("#current-tenant")
    assert page.locator("#current-tenant").inner_text() == "t03"
    page.wait_for_selector("#view-title >> text=Users of tenant t03")
    want = api(env, "GET", "/v1/users", params={"tenant_id": "t03"}).json()
    assert [u["user_id"] for u in want["results"]] == ["user-of-t03"]
    assert page.locator("#users-table tbody td:first-child").all_inner_texts() == ["user-of-t03"]
    shot(page, artifacts, "tenant-users")
    press(page, "[data-user=user-of-t03]")
    page.wait_for_selector("#sessions-table")
    assert page.locator("#sessions-table tbody td:first-child").all_inner_texts() == ["s"]
    press(page, "[data-session=s]")
    page.wait_for_selector("#transcript")
    assert page.locator("#transcript .text").all_inner_texts() == ["hello from tenant 3"]
    press(page, "nav[aria-label=Views] [data-view=jobs]")
    page.wait_for_selector("#jobs-table tbody tr")
    jobs = api(env, "GET", "/v1/jobs", params={"tenant_id": "t03", "page_size": PAGE}).json()
    assert jobs["count"] == 1 and _job_rows(page) == _api_rows(jobs["results"])
    # While t03 is chosen, every API request names it.
    sent = [u for u in page.watch.urls[sent_before:] if "/v1/" in u]
    assert len(sent) >= 4 and all(u.endswith("tenant_id=t03") for u in sent), sent
    press(page, "#own-tenant")
    page.wait_for_selector("#tenant-bar", state="hidden")
    page.wait_for_selector("#view-title >> text=Users")
    assert "user-of-t03" not in page.locator("#users-table").inner_text()
    assert page.locator("[data-user=ana]").count() == 1
    assert page.watch.dialogs == [] and page.watch.offsite == []


def test_a_plain_token_cannot_list_or_switch_tenants(page, env):
    login(page, env["plain"])
    press(page, "nav[aria-label=Views] [data-view=tenants]")
    page.wait_for_selector("#status.error")
    assert page.locator("#status").inner_text().startswith("403 forbidden")
    assert page.locator("#tenants-table").count() == 0
    # Even a tenant forced into the page's storage is refused by the service, not read.
    page.evaluate("sessionStorage.setItem('mem-adapters-tenant', 't03')")
    page.reload()
    press(page, "nav[aria-label=Views] [data-view=users]")
    page.wait_for_selector("#status.error")
    assert page.locator("#status").inner_text().startswith("403 tenant_mismatch")


def test_edit_and_delete_with_confirmation_from_the_keyboard(page, env):
    login(page, env["plain"])
    press(page, "[data-user=ana]")
    press(page, "[data-tab=raw]")
    page.wait_for_selector("#raws")
    target = page.locator("#raws > li").first.get_attribute("data-raw")
    press(page, f"[data-raw='{target}'] [data-detail]")
    page.wait_for_selector("#edit-form")
    page.fill("#edit-text", "edited raw note")
    page.fill("#edit-metadata", '{"n": 99, "edited": true}')
    press(page, "#save-edit")
    page.wait_for_selector("#confirm[open]")
    page.keyboard.press("Escape")  # cancelled: nothing changes
    assert api(env, "GET", f"/v1/engine/memories/{target}").json()["text"] != "edited raw note"
    press(page, "#save-edit")
    press(page, "#confirm-ok")
    page.wait_for_selector("#memory-text >> text=edited raw note")
    got = api(env, "GET", f"/v1/engine/memories/{target}").json()
    assert (
        got["text"] == "edited raw note" and got["metadata"]["edited"] is True and got["metadata"]["n"] == 99
    )
    press(page, "#delete-memory")
    press(page, "#confirm-ok")
    page.wait_for_selector("#deleted")
    assert api(env, "GET", f"/v1/engine/memories/{target}").status_code == 404


def test_erase_user_shows_its_receipt(page, env, artifacts):
    login(page, env["plain"])
    while not page.locator("[data-user=u09]").count():
        next_page(page, "Users")
        page.wait_for_timeout(200)
    press(page, "[data-user=u09]")
    press(page, "[data-tab=erase]")
    press(page, "#erase-user")
    page.wait_for_selector("#confirm-input")
    page.keyboard.type("wrong")
    page.keyboard.press("Enter")
    page.wait_for_selector("text=Erase cancelled")
    assert api(env, "GET", "/v1/users/u09/sessions").json()["count"] == 1
    press(page, "#erase-user")
    page.wait_for_selector("#confirm-input")
    page.keyboard.type("u09")
    page.keyboard.press("Enter")
    page.wait_for_selector("#erase-result dl")
    text = page.locator("#erase-result").inner_text()
    assert "turns" in text and "tenant_id" in text
    shot(page, artifacts, "erase")
    assert api(env, "GET", "/v1/users/u09/sessions").json()["count"] == 0


def test_tab_reaches_every_control_and_the_token_stays_out_of_urls(page, env):
    page.focus("#token")
    page.keyboard.type(env["plain"])
    order = []
    for _ in range(10):
        page.keyboard.press("Tab")
        order.append(page.evaluate("document.activeElement.id || document.activeElement.dataset.view || ''"))
    assert order[:7] == ["connect", "forget", "page-size", "tenants", "users", "search", "jobs"]
    page.focus("#connect")
    page.keyboard.press("Enter")
    page.wait_for_selector("#users-table")
    assert not [u for u in page.watch.urls if env["plain"] in u]
    assert page.context.cookies() == [] and page.evaluate("localStorage.length") == 0
    assert env["plain"] not in env["log"]() and env["admin"] not in env["log"]()
    assert page.locator("#view button:not([disabled])").evaluate_all("els => els.every(e => e.tabIndex >= 0)")


def _visit_xss_views(page: Any, env: dict[str, Any]) -> None:
    login(page, env["plain"], size=50)
    press(page, f"[data-user='{XSS_USER}']")
    page.wait_for_selector("#sessions-table")
    press(page, "#sessions-table [data-session]")
    page.wait_for_selector("#transcript")
    press(page, "#transcript [data-detail]")
    page.wait_for_selector("#memory-fields")
    press(page, "text=Back to user")
    for tab, sel in (
        ("facts", "#facts"),
        ("episodes", "#episodes"),
        ("raw", "#raws"),
        ("timeline", "#timeline"),
    ):
        press(page, f"[data-tab={tab}]")
        page.wait_for_selector(sel)
    press(page, "nav[aria-label=Views] [data-view=search]")
    page.fill("#q", XSS)
    press(page, "#q")
    page.wait_for_selector("#hits-table")


def test_stored_xss_payloads_render_as_text(page, env, artifacts):
    _visit_xss_views(page, env)
    page.wait_for_timeout(300)
    assert page.locator("#echo").inner_text() == XSS
    assert XSS in page.locator("#hits-table").inner_text()
    assert page.watch.dialogs == []
    assert page.watch.offsite == []
    assert page.locator("#view script, #view img, #view a").count() == 0
    press(page, "nav[aria-label=Views] [data-view=users]")
    page.wait_for_selector("#users-table")
    press(page, f"[data-user='{XSS_USER}']")
    press(page, "[data-tab=raw]")
    page.wait_for_selector("#raws")
    assert "javascript:alert(6)" in page.locator("#raws").inner_text()
    assert page.locator("main [href], main [src], main [onerror]").count() == 0
    assert page.watch.dialogs == [] and page.watch.offsite == []


def test_xss_in_tenant_ids_and_job_errors_renders_as_text(page, env, artifacts):
    login(page, env["admin"], size=50)
    press(page, "nav[aria-label=Views] [data-view=jobs]")
    press(page, "[data-job-status=failed]")
    page.wait_for_selector("[data-job-status=failed][aria-pressed=true]")
    assert f"XSSFAIL {XSS_ERROR}" in page.locator("#jobs-table").inner_text()
    assert XSS_USER in page.locator("#jobs-table").inner_text()
    page.fill("#job-id", env["seed"]["xss_job"])
    press(page, "#job-id")
    page.wait_for_selector("#looked-up-jobs")
    assert XSS_ERROR in page.locator("#looked-up-jobs").inner_text()
    press(page, "nav[aria-label=Views] [data-view=tenants]")
    page.wait_for_selector("#tenants-table")
    assert page.locator("#tenants-table tbody td:first-child").first.inner_text() == XSS_TENANT
    press(page, "#tenants-table [data-tenant]")  # the first: the payload sorts before letters
    page.wait_for_selector("#current-tenant")
    assert page.locator("#current-tenant").inner_text() == XSS_TENANT
    page.wait_for_selector("#users-table")
    assert page.locator("#view-title").inner_text() == f"Users of tenant {XSS_TENANT}"
    assert page.locator("#users-table tbody td:first-child").all_inner_texts() == [XSS_USER]
    press(page, f"[data-user='{XSS_USER}']")
    press(page, "#sessions-table [data-session]")
    page.wait_for_selector("#transcript")
    assert page.locator("#transcript .text").all_inner_texts() == [f"hello {XSS}"]
    press(page, "nav[aria-label=Views] [data-view=jobs]")
    press(page, "[data-job-status=all]")  # the filter stays as it was set
    page.wait_for_selector("#jobs-table tbody tr")
    assert XSS_USER in page.locator("#jobs-table").inner_text()
    page.wait_for_timeout(300)
    assert page.watch.dialogs == [] and page.watch.offsite == []
    assert page.locator("body script, main img, main a, header img, header a").count() == 0
    assert page.locator("main [href], main [src], main [onerror], header [onerror]").count() == 0


def test_axe_reports_no_serious_or_critical_violation(browser, env):
    ctx = browser.new_context(bypass_csp=True)  # only so that axe can be injected
    page = ctx.new_page()
    page.goto(env["url"] + "/ui/")
    axe = AXE.read_text()
    problems: dict[str, list[str]] = {}

    def check(name: str) -> None:
        page.add_script_tag(content=axe)
        res = page.evaluate(
            "async () => (await axe.run(document)).violations.map(v => [v.id, v.impact, v.nodes.length])"
        )
        bad = [f"{i} ({impact}, {n} nodes)" for i, impact, n in res if impact in ("serious", "critical")]
        if bad:
            problems[name] = bad

    check("start")
    login(page, env["admin"])
    check("users")
    press(page, "nav[aria-label=Views] [data-view=tenants]")
    page.wait_for_selector("#tenants-table")
    check("tenants")
    press(page, "[data-tenant=t01]")
    page.wait_for_selector("#current-tenant")
    page.wait_for_selector("#users-table")
    check("tenant-users")
    press(page, "#own-tenant")
    page.wait_for_selector("#tenant-bar", state="hidden")
    page.wait_for_selector("#users-table [data-user=ana]")
    press(page, "[data-user=ana]")
    page.wait_for_selector("#sessions-table")
    check("sessions")
    press(page, "[data-session=s01]")
    page.wait_for_selector("#transcript")
    check("transcript")
    press(page, "text=Back to user")
    for tab, sel in (
        ("facts", "#facts"),
        ("episodes", "#episodes"),
        ("raw", "#raws"),
        ("timeline", "#timeline"),
        ("erase", "#erase-user"),
    ):
        press(page, f"[data-tab={tab}]")
        page.wait_for_selector(sel)
        check(tab)
    press(page, "nav[aria-label=Views] [data-view=search]")
    page.fill("#q", "Rome")
    press(page, "#q")
    page.wait_for_selector("#hits-table")
    check("search")
    press(page, "nav[aria-label=Views] [data-view=jobs]")
    page.fill("#job-id", env["seed"]["done_job"])
    press(page, "#job-id")
    page.wait_for_selector("#jobs-table tbody tr")
    check("jobs")
    ctx.close()
    assert problems == {}


# ---------------------------------------------------------------- keyboard only


def tab_to(page: Any, selector: str, limit: int = 400) -> None:
    """Press Tab (nothing else) until the focused element matches ``selector``."""
    for _ in range(limit):
        page.keyboard.press("Tab")
        if page.evaluate(
            "(sel) => { const a = document.activeElement; return !!a && a.matches(sel); }", selector
        ):
            return
    raise AssertionError(f"{limit} presses of Tab never reached {selector}")


def tab_enter(page: Any, selector: str) -> None:
    """Reach a control with Tab alone, then activate it with Enter."""
    tab_to(page, selector)
    page.keyboard.press("Enter")


def test_every_action_by_tab_and_enter_only(page, env):
    """No clicks and no focus() calls: each action is reached with Tab and started with Enter.

    Runs last in this module: it edits, deletes and erases.
    """
    seeded = env["seed"]
    tab_to(page, "#token")
    page.keyboard.type(env["admin"])
    page.keyboard.press("Enter")
    page.wait_for_selector("#users-table")
    # next page
    tab_enter(page, "nav[aria-label='Users pages'] [data-pager=next]")
    page.wait_for_selector("text=Page 2 of")
    # tenant switch, and back
    tab_enter(page, "[data-view=tenants]")
    page.wait_for_selector("#tenants-table")
    tab_enter(page, "[data-tenant=t02]")
    page.wait_for_selector("#view-title >> text=Users of tenant t02")
    assert page.locator("#users-table tbody td:first-child").all_inner_texts() == ["user-of-t02"]
    tab_enter(page, "#own-tenant")
    page.wait_for_selector("#tenant-bar", state="hidden")
    page.wait_for_selector("[data-user=ana]")
    # open user, session
    tab_enter(page, "[data-user=ana]")
    page.wait_for_selector("#sessions-table")
    tab_enter(page, "[data-session=s01]")
    page.wait_for_selector("#transcript")
    want = api(env, "GET", "/v1/sessions/s01/messages", params={"user_id": "ana", "page_size": 10}).json()
    seen = page.locator("#transcript > li").evaluate_all("els => els.map(e => e.dataset.turn)")
    assert seen == [t["id"] for t in want["results"]]
    tab_enter(page, "#back-to-user")
    # fact chain
    tab_enter(page, "[data-tab=facts]")
    page.wait_for_selector("#facts")
    rome = next(f for f in seeded["facts"] if "Rome" in f.text)
    while not page.locator(f"[data-chain='{rome.id}']").count():
        tab_enter(page, "nav[aria-label='Facts pages'] [data-pager=next]")
        page.wait_for_timeout(200)
    tab_enter(page, f"[data-chain='{rome.id}']")
    page.wait_for_selector("#chain-table")
    assert page.locator("#chain-table tbody tr").count() == 3
    # search
    tab_enter(page, "[data-view=search]")
    page.wait_for_selector("#search-form")
    page.keyboard.type("Where does the user live?")
    tab_to(page, "#q-user")
    page.keyboard.type("ana")
    page.keyboard.press("Enter")
    page.wait_for_selector("#hits-table")
    hits = api(
        env,
        "POST",
        "/v1/engine/search",
        json={"query": "Where does the user live?", "k": 20, "user_id": "ana"},
    ).json()
    assert page.locator("#hits-table tbody tr td:nth-child(2)").first.inner_text() == hits["results"][0]["id"]
    # edit + confirm
    tab_enter(page, "[data-view=users]")
    page.wait_for_selector("[data-user=ana]")
    tab_enter(page, "[data-user=ana]")
    tab_enter(page, "[data-tab=raw]")
    page.wait_for_selector("#raws")
    target = page.locator("#raws > li").first.get_attribute("data-raw")
    tab_enter(page, f"[data-raw='{target}'] [data-detail]")
    page.wait_for_selector("#edit-form")
    tab_to(page, "#edit-text")
    page.keyboard.press("Control+A")
    page.keyboard.type("typed with the keyboard")
    tab_enter(page, "#save-edit")
    page.wait_for_selector("#confirm[open]")
    tab_enter(page, "#confirm-ok")
    page.wait_for_selector("#memory-text >> text=typed with the keyboard")
    assert api(env, "GET", f"/v1/engine/memories/{target}").json()["text"] == "typed with the keyboard"
    # delete + confirm
    tab_enter(page, "#delete-memory")
    page.wait_for_selector("#confirm[open]")
    tab_enter(page, "#confirm-ok")
    page.wait_for_selector("#deleted")
    assert api(env, "GET", f"/v1/engine/memories/{target}").status_code == 404
    # erase + confirm
    tab_enter(page, "[data-view=users]")
    page.wait_for_selector("#users-table")
    while not page.locator("[data-user=u08]").count():
        tab_enter(page, "nav[aria-label='Users pages'] [data-pager=next]")
        page.wait_for_timeout(200)
    tab_enter(page, "[data-user=u08]")
    tab_enter(page, "[data-tab=erase]")
    tab_enter(page, "#erase-user")
    page.wait_for_selector("#confirm-input")
    page.keyboard.type("u08")  # the dialog focuses its input
    page.keyboard.press("Enter")
    page.wait_for_selector("#erase-result dl")
    assert api(env, "GET", "/v1/users/u08/sessions").json()["count"] == 0
    # jobs: next page and a status filter
    tab_enter(page, "[data-view=jobs]")
    page.wait_for_selector("#jobs-table tbody tr")
    tab_enter(page, "nav[aria-label='Jobs pages'] [data-pager=next]")
    page.wait_for_selector("nav[aria-label='Jobs pages'] >> text=Page 2 of")
    tab_enter(page, "[data-job-status=failed]")
    page.wait_for_selector("[data-job-status=failed][aria-pressed=true]")
    assert {r[1] for r in _job_rows(page)} == {"failed"}
    assert page.watch.dialogs == [] and page.watch.offsite == []
