// mem-adapters inspector: a client of the service's documented REST routes.
// Every stored string is untrusted: it is rendered with text nodes only (never parsed as HTML),
// no link is built from data, and the token lives in sessionStorage and the Authorization
// header only (never in a URL).
"use strict";

(() => {
  const TOKEN_KEY = "mem-adapters-token";
  const SIZE_KEY = "mem-adapters-page-size";
  const TENANT_KEY = "mem-adapters-tenant";
  const SVG_NS = "http://www.w3.org/2000/svg";
  const JOB_STATES = ["pending", "running", "done", "failed"];
  // tenant: the tenant an admin picked (sent as ?tenant_id=; null: the credential's own).
  const state = { looked: [], jobStatus: null, tenant: sessionStorage.getItem(TENANT_KEY) };

  // ------------------------------------------------------------------ DOM helpers

  /** An element; attrs are attributes (strings) or on* handlers; children are nodes or text. */
  function h(tag, attrs, ...children) {
    const el = document.createElement(tag);
    setAttrs(el, attrs);
    append(el, children);
    return el;
  }

  function s(tag, attrs, ...children) {
    const el = document.createElementNS(SVG_NS, tag);
    setAttrs(el, attrs);
    append(el, children);
    return el;
  }

  function setAttrs(el, attrs) {
    for (const [k, v] of Object.entries(attrs || {})) {
      if (v === null || v === undefined || v === false) continue;
      if (k.startsWith("on") && typeof v === "function") el.addEventListener(k.slice(2), v);
      else el.setAttribute(k, v === true ? "" : String(v));
    }
  }

  function append(el, children) {
    for (const c of children.flat(Infinity)) {
      if (c === null || c === undefined || c === false) continue;
      el.append(c instanceof Node ? c : document.createTextNode(String(c)));
    }
  }

  function text(v) {
    if (v === null || v === undefined) return "";
    return typeof v === "string" ? v : JSON.stringify(v);
  }

  function button(label, onclick, attrs) {
    return h("button", { type: "button", onclick, ...(attrs || {}) }, label);
  }

  function metaList(obj) {
    const entries = Object.entries(obj || {});
    if (!entries.length) return h("span", { class: "muted" }, "(none)");
    return h("dl", { class: "meta" }, entries.map(([k, v]) => [h("dt", {}, k), h("dd", {}, text(v))]));
  }

  function table(headers, rows, attrs) {
    return h(
      "table",
      attrs || {},
      h("thead", {}, h("tr", {}, headers.map((x) => h("th", { scope: "col" }, x)))),
      h("tbody", {}, rows.map((r) => h("tr", {}, r.map((c) => h("td", {}, c))))),
    );
  }

  const view = () => document.getElementById("view");

  function setStatus(msg, isError) {
    const el = document.getElementById("status");
    el.textContent = msg || "";
    el.className = isError ? "error" : "";
  }

  function pageSize() {
    return Number(sessionStorage.getItem(SIZE_KEY) || "10");
  }

  /** Previous / Next buttons of a paged list ({count, next, previous} of the API). */
  function pager(label, page, got, go) {
    const pages = Math.max(1, Math.ceil(got.count / pageSize()));
    return h(
      "nav",
      { class: "pager", "aria-label": `${label} pages` },
      button("Previous", () => go(got.previous), { disabled: got.previous ? null : true, "data-pager": "previous" }),
      h("span", { "data-pager": "position" }, `Page ${page} of ${pages} (${got.count} in all)`),
      button("Next", () => go(got.next), { disabled: got.next ? null : true, "data-pager": "next" }),
    );
  }

  /** One page of an array (for lists the API answers whole). */
  function slice(items, page) {
    const size = pageSize();
    const count = items.length;
    return {
      count,
      next: page * size < count ? page + 1 : null,
      previous: page > 1 ? page - 1 : null,
      results: items.slice((page - 1) * size, page * size),
    };
  }

  // ------------------------------------------------------------------ API

  class ApiFailure extends Error {}

  async function api(method, path, body) {
    const headers = { Accept: "application/json" };
    const token = sessionStorage.getItem(TOKEN_KEY);
    if (token) headers.Authorization = `Bearer ${token}`;
    if (body !== undefined) headers["Content-Type"] = "application/json";
    const url = state.tenant ? `${path}${path.includes("?") ? "&" : "?"}tenant_id=${enc(state.tenant)}` : path;
    const r = await fetch(url, {
      method,
      headers,
      body: body === undefined ? undefined : JSON.stringify(body),
      credentials: "omit",
      cache: "no-store",
      referrerPolicy: "no-referrer",
    });
    const data = await r.json().catch(() => null);
    if (!r.ok) {
      const err = data && data.error ? data.error : { code: "http_error", message: r.statusText };
      throw new ApiFailure(`${r.status} ${err.code}: ${err.message}`);
    }
    return data;
  }

  const enc = encodeURIComponent;
  const qs = (params) =>
    Object.entries(params)
      .filter(([, v]) => v !== null && v !== undefined)
      .map(([k, v]) => `${enc(k)}=${enc(v)}`)
      .join("&");

  /** Run an async render; show its failure as text in the status line. */
  async function guarded(fn) {
    const key = focusKey(document.activeElement);
    try {
      setStatus("Loading…");
      await fn();
      if (document.getElementById("status").textContent === "Loading…") setStatus("");
    } catch (e) {
      setStatus(e instanceof ApiFailure ? e.message : `Error: ${e.message}`, true);
    }
    restoreFocus(key);
  }

  /** A selector that finds a control again after its view was drawn anew (id or data-* attributes). */
  function focusKey(el) {
    if (!el || el === document.body || !(el instanceof HTMLElement)) return null;
    if (el.id) return `#${CSS.escape(el.id)}`;
    const attrs = Object.entries(el.dataset).map(([k, v]) => `[data-${k.replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`)}="${CSS.escape(v)}"]`);
    if (!attrs.length) return null;
    const nav = el.closest("nav[aria-label]");
    return `${nav ? `nav[aria-label="${CSS.escape(nav.getAttribute("aria-label"))}"] ` : ""}${el.tagName.toLowerCase()}${attrs.join("")}`;
  }

  /** Keyboard users keep their place: when the focused control was redrawn, focus its new copy
   * (a pager's Next stays on Next), else the view's title. */
  function restoreFocus(key) {
    const cur = document.activeElement;
    if (cur && cur !== document.body && document.contains(cur)) return;
    if (document.getElementById("confirm").open) return;
    const again = key ? document.querySelector(key) : null;
    const target = again && !again.disabled ? again : document.getElementById("view-title");
    if (target) target.focus();
  }

  // ------------------------------------------------------------------ confirm dialog

  /** Ask before a destructive action; ``typed`` makes the user type that string first. */
  function confirmAction(title, message, typed) {
    const dlg = document.getElementById("confirm");
    document.getElementById("confirm-title").textContent = title;
    document.getElementById("confirm-text").textContent = message;
    const extra = document.getElementById("confirm-extra");
    extra.replaceChildren();
    let input = null;
    if (typed !== undefined) {
      input = h("input", { id: "confirm-input", type: "text", autocomplete: "off", spellcheck: "false" });
      extra.append(h("label", { for: "confirm-input" }, `Type ${typed} to confirm`), " ", input);
    }
    dlg.returnValue = "";
    return new Promise((resolve) => {
      dlg.addEventListener(
        "close",
        () => resolve(dlg.returnValue === "ok" && (input === null || input.value === typed)),
        { once: true },
      );
      dlg.showModal();
      (input || document.getElementById("confirm-cancel")).focus();
    });
  }

  // ------------------------------------------------------------------ views

  function show(title, ...content) {
    const heading = h("h2", { id: "view-title", tabindex: "-1" }, title);
    view().replaceChildren(heading, ...content, h("section", { id: "detail", "aria-label": "Memory detail" }));
    for (const b of document.querySelectorAll("nav[aria-label=Views] button")) b.removeAttribute("aria-current");
  }

  function mark(name) {
    const b = document.querySelector(`nav[aria-label=Views] button[data-view="${name}"]`);
    if (b) b.setAttribute("aria-current", "page");
  }

  async function tenantsView(page = 1) {
    const got = await api("GET", "/v1/tenants");
    const chunk = slice(got.tenants, page);
    show(
      "Tenants",
      h("p", { class: "muted" }, "Every tenant of the store (needs an admin token). Open one to read its users, sessions, memories and jobs."),
      table(
        ["Tenant", ""],
        chunk.results.map((t) => [
          h("span", { class: "text" }, t),
          button(t === state.tenant ? "Open (current)" : "Open", () => guarded(() => switchTenant(t)), { "data-tenant": t }),
        ]),
        { id: "tenants-table" },
      ),
      pager("Tenants", page, chunk, (p) => guarded(() => tenantsView(p))),
    );
    mark("tenants");
  }

  /** Read another tenant (admin): every request then carries ?tenant_id=; null: the token's own. */
  async function switchTenant(tenant) {
    state.tenant = tenant;
    if (tenant === null) sessionStorage.removeItem(TENANT_KEY);
    else sessionStorage.setItem(TENANT_KEY, tenant);
    tenantBar();
    await usersView();
  }

  function tenantBar() {
    const bar = document.getElementById("tenant-bar");
    if (state.tenant === null) {
      bar.replaceChildren();
      bar.hidden = true;
      return;
    }
    bar.hidden = false;
    bar.replaceChildren(
      "Reading tenant ",
      h("strong", { id: "current-tenant", class: "text" }, state.tenant),
      " (admin) ",
      button("Back to own tenant", () => guarded(() => switchTenant(null)), { id: "own-tenant" }),
    );
  }

  async function usersView(page = 1) {
    const got = await api("GET", `/v1/users?${qs({ page, page_size: pageSize() })}`);
    show(
      state.tenant === null ? "Users" : `Users of tenant ${state.tenant}`,
      table(
        ["User", "Turns", "Memories", "Sessions", "First", "Last", ""],
        got.results.map((u) => [
          h("span", { class: "text" }, u.user_id === null ? "(no user)" : u.user_id),
          String(u.turns),
          String(u.memories),
          String(u.sessions),
          text(u.first_at),
          text(u.last_at),
          u.user_id === null ? "" : button("Open", () => guarded(() => userView(u.user_id)), { "data-user": u.user_id }),
        ]),
        { id: "users-table" },
      ),
      pager("Users", page, got, (p) => guarded(() => usersView(p))),
    );
    mark("users");
  }

  const USER_TABS = [
    ["sessions", "Sessions"],
    ["facts", "Facts"],
    ["episodes", "Episodes"],
    ["raw", "Raw memories"],
    ["timeline", "Timeline"],
    ["erase", "Erase user"],
  ];

  async function userView(user, tab = "sessions") {
    const panel = h("section", { id: "user-tab", "aria-label": `${tab} of the user` });
    const tabs = h(
      "div",
      { class: "tabs", role: "group", "aria-label": "User views" },
      USER_TABS.map(([key, label]) =>
        button(label, () => guarded(() => userView(user, key)), {
          "data-tab": key,
          "aria-pressed": key === tab ? "true" : "false",
          class: key === tab ? "active" : null,
        }),
      ),
    );
    show(`User ${user}`, tabs, panel);
    const render = { sessions: sessionsTab, facts: factsTab, episodes: episodesTab, raw: rawTab, timeline: timelineTab, erase: eraseTab }[tab];
    await render(user, panel, 1);
  }

  async function sessionsTab(user, panel, page) {
    const got = await api("GET", `/v1/users/${enc(user)}/sessions?${qs({ page, page_size: pageSize() })}`);
    panel.replaceChildren(
      h("h3", {}, "Sessions"),
      table(
        ["Session", "Turns", ""],
        got.results.map((x) => [
          h("span", { class: "text" }, x.session_id),
          String(x.turns),
          button("Transcript", () => guarded(() => transcriptView(user, x.session_id, 1)), { "data-session": x.session_id }),
        ]),
        { id: "sessions-table" },
      ),
      pager("Sessions", page, got, (p) => guarded(() => sessionsTab(user, panel, p))),
    );
  }

  async function transcriptView(user, session, page) {
    const got = await api(
      "GET",
      `/v1/sessions/${enc(session)}/messages?${qs({ user_id: user, page, page_size: pageSize() })}`,
    );
    const start = (page - 1) * pageSize() + 1;
    show(
      `Transcript of ${session}`,
      h("div", { class: "row" }, button("Back to user", () => guarded(() => userView(user)), { id: "back-to-user" })),
      h(
        "ol",
        { id: "transcript", start: String(start) },
        got.results.map((t) =>
          h(
            "li",
            { class: "card", "data-turn": t.id },
            h(
              "div",
              { class: "row" },
              h("strong", { class: "role" }, t.role),
              h("span", { class: "muted" }, `seq ${text(t.seq)}`),
              h("time", { class: "ts" }, text(t.timestamp)),
              h("span", { class: "muted" }, t.status),
              button("Details", () => guarded(() => memoryDetail(t.id)), { "data-detail": t.id }),
            ),
            h("p", { class: "text" }, t.text),
            metaList(t.metadata),
          ),
        ),
      ),
      pager("Transcript", page, got, (p) => guarded(() => transcriptView(user, session, p))),
    );
  }

  function idButton(id, label) {
    return button(label || id, () => guarded(() => memoryDetail(id)), { "data-detail": id, class: "idlink" });
  }

  async function supersededBy(id) {
    const got = await api("POST", "/v1/engine/list", { filters: { supersedes: id }, kinds: ["fact"], page_size: 10 });
    return got.results.map((f) => f.id);
  }

  async function factsTab(user, panel, page) {
    const got = await api("POST", "/v1/engine/list", { user_id: user, kinds: ["fact"], page, page_size: pageSize() });
    const cards = [];
    for (const f of got.results) {
      const by = f.is_latest ? [] : await supersededBy(f.id);
      cards.push(
        h(
          "li",
          { class: `card ${f.is_latest ? "latest" : "superseded"}`, "data-fact": f.id },
          h("p", { class: "text" }, f.text),
          h(
            "dl",
            { class: "meta" },
            h("dt", {}, "id"), h("dd", {}, idButton(f.id)),
            h("dt", {}, "version"), h("dd", { class: "version" }, String(f.version)),
            h("dt", {}, "is_latest"), h("dd", { class: "is-latest" }, String(f.is_latest)),
            h("dt", {}, "supersedes"), h("dd", { class: "supersedes" }, f.supersedes ? idButton(f.supersedes) : "(nothing)"),
            h("dt", {}, "superseded by"), h("dd", { class: "superseded-by" }, by.length ? by.map((x) => idButton(x)) : "(nothing)"),
            h("dt", {}, "source turns"),
            h("dd", { class: "sources" }, sourceIds(f).length ? sourceIds(f).map((x) => idButton(x)) : "(none)"),
            h("dt", {}, "attributes"), h("dd", {}, metaList(f.attributes)),
          ),
          button("Chain", () => guarded(() => chainView(f.id)), { "data-chain": f.id }),
        ),
      );
    }
    panel.replaceChildren(
      h("h3", {}, "Facts"),
      h("ol", { id: "facts", start: String((page - 1) * pageSize() + 1) }, cards),
      pager("Facts", page, got, (p) => guarded(() => factsTab(user, panel, p))),
    );
  }

  function sourceIds(m) {
    const ids = [...(m.source_ids || [])];
    if (m.parent_id && !ids.includes(m.parent_id)) ids.unshift(m.parent_id);
    return ids;
  }

  /** Every version of a fact: walk ``supersedes`` back, and ``superseded by`` forward. */
  async function chainView(id) {
    const seen = new Set();
    const chain = [];
    let cur = await api("GET", `/v1/engine/memories/${enc(id)}`);
    while (cur && !seen.has(cur.id)) {
      seen.add(cur.id);
      chain.unshift(cur);
      cur = cur.supersedes ? await api("GET", `/v1/engine/memories/${enc(cur.supersedes)}`).catch(() => null) : null;
    }
    let last = chain[chain.length - 1];
    while (last && !last.is_latest) {
      const next = (await supersededBy(last.id)).filter((x) => !seen.has(x));
      if (!next.length) break;
      last = await api("GET", `/v1/engine/memories/${enc(next[0])}`);
      seen.add(last.id);
      chain.push(last);
    }
    document.getElementById("detail").replaceChildren(
      h("h3", {}, "Supersession chain"),
      table(
        ["Version", "Latest", "Text", "Id", "Supersedes"],
        chain.map((f) => [String(f.version), String(f.is_latest), h("span", { class: "text" }, f.text), idButton(f.id), f.supersedes ? idButton(f.supersedes) : ""]),
        { id: "chain-table" },
      ),
    );
    focusDetail();
  }

  async function episodesTab(user, panel, page) {
    const got = await api("POST", "/v1/engine/list", { user_id: user, kinds: ["episode"], page, page_size: pageSize() });
    panel.replaceChildren(
      h("h3", {}, "Episodes"),
      h(
        "ol",
        { id: "episodes", start: String((page - 1) * pageSize() + 1) },
        got.results.map((e) =>
          h(
            "li",
            { class: "card", "data-episode": e.id },
            h("p", { class: "text" }, e.text),
            metaList(e.attributes),
            h("div", { class: "row" }, "Turns: ", sourceIds(e).map((x) => idButton(x))),
            button("Show turns", () => guarded(() => episodeTurns(e)), { "data-episode-turns": e.id }),
          ),
        ),
      ),
      pager("Episodes", page, got, (p) => guarded(() => episodesTab(user, panel, p))),
    );
  }

  async function episodeTurns(e) {
    const turns = [];
    for (const id of sourceIds(e)) turns.push(await api("GET", `/v1/engine/memories/${enc(id)}`).catch(() => null));
    document.getElementById("detail").replaceChildren(
      h("h3", {}, "Turns of the episode"),
      h(
        "ol",
        { id: "episode-turns" },
        turns.filter(Boolean).map((t) => h("li", {}, h("strong", {}, text(t.role)), " ", h("time", {}, text(t.timestamp)), " ", h("span", { class: "text" }, t.text))),
      ),
    );
    focusDetail();
  }

  async function rawTab(user, panel, page) {
    const got = await api("POST", "/v1/engine/list", { user_id: user, kinds: ["raw"], page, page_size: pageSize() });
    panel.replaceChildren(
      h("h3", {}, "Raw memories"),
      h(
        "ol",
        { id: "raws", start: String((page - 1) * pageSize() + 1) },
        got.results.map((m) =>
          h(
            "li",
            { class: "card", "data-raw": m.id },
            h("p", { class: "text" }, m.text.length > 400 ? `${m.text.slice(0, 400)}…` : m.text),
            metaList(m.metadata),
            h("div", { class: "row" }, idButton(m.id, "Details"), button("Chunks", () => guarded(() => chunksView(m.id, 1)), { "data-chunks": m.id })),
          ),
        ),
      ),
      pager("Raw memories", page, got, (p) => guarded(() => rawTab(user, panel, p))),
    );
  }

  async function chunksView(id, page) {
    const got = await api("POST", "/v1/engine/list", { kinds: ["chunk"], filters: { parent_id: id }, page, page_size: pageSize() });
    document.getElementById("detail").replaceChildren(
      h("h3", {}, `Chunks of ${id}`),
      h(
        "ol",
        { id: "chunks", start: String((page - 1) * pageSize() + 1) },
        got.results.map((c) => h("li", { class: "card" }, h("p", { class: "text" }, c.text), metaList(c.attributes))),
      ),
      pager("Chunks", page, got, (p) => guarded(() => chunksView(id, p))),
    );
    focusDetail();
  }

  function focusDetail() {
    const d = document.getElementById("detail");
    const head = d.querySelector("h3");
    if (head) {
      head.setAttribute("tabindex", "-1");
      head.focus();
    }
  }

  async function timelineTab(user, panel) {
    const sessions = (await api("GET", `/v1/users/${enc(user)}/sessions?${qs({ page: 1, page_size: 200 })}`)).results;
    const spans = [];
    for (const x of sessions) {
      const path = `/v1/engine/sessions/${enc(x.session_id)}/messages`;
      const first = await api("GET", `${path}?${qs({ user_id: user, limit: 1 })}`);
      const last = await api("GET", `${path}?${qs({ user_id: user, limit: 1, last: true })}`);
      const t0 = Date.parse((first[0] && (first[0].timestamp || first[0].created_at)) || "");
      const t1 = Date.parse((last[0] && (last[0].timestamp || last[0].created_at)) || "");
      if (!Number.isNaN(t0)) spans.push({ id: x.session_id, t0, t1: Number.isNaN(t1) ? t0 : t1 });
    }
    const facts = (await api("POST", "/v1/engine/list", { user_id: user, kinds: ["fact"], page: 1, page_size: 500 })).results
      .map((f) => ({ f, t: Date.parse(f.timestamp || f.created_at || "") }))
      .filter((x) => !Number.isNaN(x.t));
    const times = [...spans.flatMap((x) => [x.t0, x.t1]), ...facts.map((x) => x.t)];
    const W = 900, left = 80, right = 20, rowH = 14;
    const H = 60 + spans.length * rowH + 60;
    const svg = s("svg", { class: "timeline", id: "timeline", width: W, height: H, viewBox: `0 0 ${W} ${H}`, role: "img", "aria-labelledby": "timeline-title" });
    svg.append(s("title", { id: "timeline-title" }, `Timeline of ${user}: ${spans.length} sessions, ${facts.length} facts`));
    if (times.length) {
      const lo = Math.min(...times), hi = Math.max(...times);
      const x = (t) => left + ((t - lo) / Math.max(1, hi - lo)) * (W - left - right);
      svg.append(s("text", { x: 4, y: 20, "font-size": 12, fill: "#111" }, "sessions"));
      spans.forEach((sp, i) => {
        const y = 30 + i * rowH;
        const r = s("rect", { x: x(sp.t0), y, width: Math.max(4, x(sp.t1) - x(sp.t0)), height: rowH - 4, fill: "#0b4f9c", "data-session": sp.id });
        r.append(s("title", {}, `${sp.id}: ${new Date(sp.t0).toISOString()} – ${new Date(sp.t1).toISOString()}`));
        svg.append(r);
      });
      const fy = 40 + spans.length * rowH + 10;
      svg.append(s("text", { x: 4, y: fy + 4, "font-size": 12, fill: "#111" }, "facts"));
      for (const { f, t } of facts) {
        const c = s("circle", { cx: x(t), cy: fy, r: 5, fill: f.is_latest ? "#185c2a" : "#fff", stroke: "#185c2a", "stroke-width": 2, "data-fact": f.id });
        c.append(s("title", {}, `${f.text} (v${f.version}${f.is_latest ? ", latest" : ", superseded"})`));
        svg.append(c);
      }
      svg.append(s("text", { x: left, y: H - 8, "font-size": 11, fill: "#111" }, new Date(lo).toISOString()));
      svg.append(s("text", { x: W - right, y: H - 8, "font-size": 11, fill: "#111", "text-anchor": "end" }, new Date(hi).toISOString()));
    }
    panel.replaceChildren(
      h("h3", {}, "Timeline"),
      h("p", { class: "muted" }, "Bars: sessions from first to last turn. Dots: facts (filled: latest, hollow: superseded)."),
      svg,
    );
  }

  async function eraseTab(user, panel) {
    const out = h("div", { id: "erase-result" });
    panel.replaceChildren(
      h("h3", {}, "Erase user"),
      h("p", {}, "Erases every turn, memory, fact, episode, history entry and job of this user in this tenant."),
      button(
        "Erase this user…",
        () =>
          guarded(async () => {
            const ok = await confirmAction("Erase user", `Erase everything of user ${user}? This cannot be undone.`, user);
            if (!ok) {
              setStatus("Erase cancelled");
              return;
            }
            const receipt = await api("DELETE", `/v1/users/${enc(user)}`);
            out.replaceChildren(h("h4", {}, "Erase receipt"), metaList(receipt));
          }),
        { class: "danger", id: "erase-user" },
      ),
      out,
    );
  }

  async function memoryDetail(id) {
    const m = await api("GET", `/v1/engine/memories/${enc(id)}`);
    const textArea = h("textarea", { id: "edit-text" });
    textArea.value = m.text;
    const metaArea = h("textarea", { id: "edit-metadata", spellcheck: "false" });
    metaArea.value = JSON.stringify(m.metadata || {}, null, 2);
    const history = h("div", { id: "history" });
    const fields = ["id", "kind", "role", "user_id", "session_id", "sub_session_id", "timestamp", "seq", "status", "version", "is_latest", "supersedes", "parent_id", "created_at", "updated_at"];
    document.getElementById("detail").replaceChildren(
      h("h3", {}, `Memory ${m.id}`),
      h("dl", { class: "meta", id: "memory-fields" }, fields.map((k) => [h("dt", {}, k), h("dd", { "data-field": k }, text(m[k]))])),
      h("h4", {}, "Text"),
      h("p", { class: "text", id: "memory-text" }, m.text),
      h("h4", {}, "Metadata"),
      metaList(m.metadata),
      h("h4", {}, "Source turns"),
      sourceIds(m).length ? h("div", { class: "row" }, sourceIds(m).map((x) => idButton(x))) : h("p", { class: "muted" }, "(none)"),
      m.kind === "turn" && m.session_id
        ? button("Open transcript", () => guarded(() => transcriptView(m.user_id, m.session_id, 1)), { id: "open-transcript" })
        : null,
      h(
        "form",
        { id: "edit-form", onsubmit: (ev) => { ev.preventDefault(); guarded(() => saveEdit(m.id, textArea.value, metaArea.value)); } },
        h("h4", {}, "Edit"),
        h("label", { for: "edit-text" }, "Text"),
        textArea,
        h("label", { for: "edit-metadata" }, "Metadata (JSON object, merged)"),
        metaArea,
        h("div", { class: "row" }, h("button", { type: "submit", id: "save-edit" }, "Save"), button("Delete…", () => guarded(() => deleteMemory(m.id)), { class: "danger", id: "delete-memory" }), button("History", () => guarded(() => showHistory(m.id, history)), { id: "show-history" })),
      ),
      history,
    );
    focusDetail();
  }

  async function saveEdit(id, newText, metaJson) {
    let metadata;
    try {
      metadata = JSON.parse(metaJson || "{}");
    } catch (e) {
      throw new Error(`metadata is not JSON: ${e.message}`);
    }
    if (metadata === null || typeof metadata !== "object" || Array.isArray(metadata)) throw new Error("metadata must be a JSON object");
    const ok = await confirmAction("Save changes", `Save the new text and metadata of ${id}? The old version goes to its history.`);
    if (!ok) return;
    await api("PATCH", `/v1/engine/memories/${enc(id)}`, { text: newText, metadata });
    await memoryDetail(id);
    setStatus(`Saved ${id}`);
  }

  async function deleteMemory(id) {
    const ok = await confirmAction("Delete memory", `Delete ${id} and what was derived from it?`);
    if (!ok) return;
    await api("DELETE", `/v1/memories/${enc(id)}/`);
    document.getElementById("detail").replaceChildren(h("p", { id: "deleted" }, `Deleted ${id}`));
  }

  async function showHistory(id, box) {
    const rows = await api("GET", `/v1/memories/${enc(id)}/history/`);
    box.replaceChildren(
      h("h4", {}, "History"),
      table(["Version", "Event", "At", "Text"], rows.map((r) => [String(r.version), r.event, text(r.at), h("span", { class: "text" }, r.text)]), { id: "history-table" }),
    );
  }

  function searchView() {
    const q = h("input", { id: "q", type: "search", required: true });
    const user = h("input", { id: "q-user", type: "text" });
    const k = h("input", { id: "q-k", type: "number", min: "1", max: "200", value: "20" });
    const budget = h("input", { id: "q-budget", type: "number", min: "1", value: "1500" });
    const out = h("div", { id: "search-results" });
    show(
      "Search",
      h(
        "form",
        { id: "search-form", onsubmit: (ev) => { ev.preventDefault(); guarded(() => runSearch(q.value, user.value.trim(), Number(k.value), Number(budget.value), out)); } },
        h("div", { class: "row" }, h("label", { for: "q" }, "Query"), q, h("label", { for: "q-user" }, "User (optional)"), user),
        h("div", { class: "row" }, h("label", { for: "q-k" }, "Hits"), k, h("label", { for: "q-budget" }, "Context char budget"), budget, h("button", { type: "submit", id: "run-search" }, "Search")),
      ),
      out,
    );
    mark("search");
    q.focus();
  }

  async function runSearch(query, user, k, budget, out) {
    const scope = user ? { user_id: user } : {};
    const flat = await api("POST", "/v1/engine/search", { query, k, ...scope });
    const ctx = await api("POST", "/v1/engine/search", { query, k, mode: "context", char_budget: budget, ...scope });
    const context = ctx.context || "";
    const hits = h("div", { id: "hits" });
    const renderHits = (page) => {
      const chunk = slice(flat.results, page);
      hits.replaceChildren(
        table(
          ["#", "Id", "Kind", "Role", "Text", "Fused", "Cosine", "Lexical", "Boosts"],
          chunk.results.map((r, i) => {
            const p = r.score_parts || {};
            return [
              String((page - 1) * pageSize() + i + 1),
              idButton(r.id),
              r.kind,
              text(r.role),
              h("span", { class: "text" }, r.text),
              p.fused === undefined ? "" : p.fused.toFixed(4),
              p.cosine === null || p.cosine === undefined ? "—" : p.cosine.toFixed(4),
              p.lexical === undefined ? "" : p.lexical.toFixed(3),
              metaList(Object.fromEntries(Object.entries(p.boosts || {}).map(([b, v]) => [b, v.toFixed(3)]))),
            ];
          }),
          { id: "hits-table", class: "scores" },
        ),
        pager("Hits", page, chunk, renderHits),
      );
    };
    renderHits(1);
    out.replaceChildren(
      h("p", {}, "Results for: ", h("q", { id: "echo" }, query)),
      hits,
      h("h3", {}, "Context string"),
      h(
        "div",
        { class: "row" },
        h("label", { for: "budget-gauge" }, "Characters used of the budget"),
        h("meter", { id: "budget-gauge", min: "0", max: String(budget), value: String(context.length) }),
        h("span", { id: "budget-text" }, `${context.length} of ${budget} characters`),
      ),
      h("pre", { id: "context" }, context),
    );
  }

  const JOB_COLUMNS = ["Job", "Status", "User", "Session", "Turns", "Attempts", "Error", "Created", "Finished"];

  function jobRow(j) {
    return [
      h("span", { class: "text" }, j.job_id),
      h("strong", { class: `job-${j.status}` }, j.status),
      h("span", { class: "text" }, text(j.user_id)),
      h("span", { class: "text" }, text(j.session_id)),
      String(j.turn_count === undefined ? j.turn_ids.length : j.turn_count),
      String(j.attempts),
      h("span", { class: "text job-error" }, text(j.error)),
      text(j.created_at),
      text(j.finished_at),
    ];
  }

  /** The tenant's jobs, newest first (GET /v1/jobs), with a status filter and a lookup by id. */
  async function jobsView(page = 1) {
    const params = { page, page_size: pageSize(), status: state.jobStatus };
    const got = await api("GET", `/v1/jobs?${qs(params)}`);
    const input = h("input", { id: "job-id", type: "text", spellcheck: "false" });
    const looked = h("div", { id: "job-lookup" });
    const renderLooked = () =>
      looked.replaceChildren(
        state.looked.length ? table(JOB_COLUMNS, state.looked.map(jobRow), { id: "looked-up-jobs" }) : "",
      );
    renderLooked();
    const filters = [[null, "All"], ...JOB_STATES.map((x) => [x, x])].map(([value, label]) =>
      button(label, () => {
        state.jobStatus = value;
        return guarded(() => jobsView(1));
      }, {
        "data-job-status": value === null ? "all" : value,
        "aria-pressed": state.jobStatus === value ? "true" : "false",
        class: state.jobStatus === value ? "active" : null,
      }),
    );
    show(
      "Enrichment jobs",
      h("div", { class: "tabs", role: "group", "aria-label": "Job status filter" }, "Status: ", filters),
      table(JOB_COLUMNS, got.results.map(jobRow), { id: "jobs-table" }),
      pager("Jobs", page, got, (p) => guarded(() => jobsView(p))),
      h("h3", {}, "Look up a job"),
      h(
        "form",
        {
          id: "job-form",
          onsubmit: (ev) => {
            ev.preventDefault();
            guarded(async () => {
              const j = await api("GET", `/v1/jobs/${enc(input.value.trim())}`);
              state.looked = [j, ...state.looked.filter((x) => x.job_id !== j.job_id)].slice(0, 20);
              renderLooked();
            });
          },
        },
        h("div", { class: "row" }, h("label", { for: "job-id" }, "Job id (a write's passive_job_id)"), input, h("button", { type: "submit", id: "lookup-job" }, "Look up")),
      ),
      looked,
    );
    mark("jobs");
  }

  // ------------------------------------------------------------------ start

  const VIEWS = {
    tenants: () => guarded(() => tenantsView()),
    users: () => guarded(() => usersView()),
    search: searchView,
    jobs: () => guarded(() => jobsView()),
  };

  function start() {
    const form = document.getElementById("auth-form");
    const tokenInput = document.getElementById("token");
    const size = document.getElementById("page-size");
    size.value = String(pageSize());
    size.addEventListener("change", () => sessionStorage.setItem(SIZE_KEY, size.value));
    tenantBar();
    form.addEventListener("submit", (ev) => {
      ev.preventDefault();
      const t = tokenInput.value.trim();
      if (t) sessionStorage.setItem(TOKEN_KEY, t);
      tokenInput.value = "";
      state.tenant = null; // a new token reads its own tenant until its admin picks another
      sessionStorage.removeItem(TENANT_KEY);
      tenantBar();
      guarded(() => usersView());
    });
    document.getElementById("forget").addEventListener("click", () => {
      sessionStorage.removeItem(TOKEN_KEY);
      sessionStorage.removeItem(TENANT_KEY);
      state.tenant = null;
      tenantBar();
      setStatus("Token forgotten");
    });
    for (const b of document.querySelectorAll("nav[aria-label=Views] button")) {
      b.addEventListener("click", () => VIEWS[b.dataset.view]());
    }
  }

  document.addEventListener("DOMContentLoaded", start);
})();
