// durable's dashboard: a client of the HTTP API under
// /runtime/webhooks/durabletask/ and nothing else. No framework, no build
// step: the DOM is built with el() (never from HTML strings, so no payload
// can inject markup), pages are routed by the URL's hash, and the API key,
// when the server asks for one, lives in this tab's sessionStorage and
// travels in the x-functions-key header only.
"use strict";

const API = "/runtime/webhooks/durabletask";
const KEY = "durable.apiKey";
const STATUSES = ["Running", "Pending", "Suspended", "Completed", "Failed", "Terminated", "ContinuedAsNew", "Canceled"];
const TERMINAL = new Set(["Completed", "Failed", "Terminated", "Canceled", "ContinuedAsNew"]);
const PAGE = 50;           // instances per page
const COUNT_PAGES = 5;     // pages of 1000 read per status to count it
const LIST_REFRESH = 5000; // ms between refreshes of the list
const LIVE_REFRESH = 2000; // ms between refreshes of a running instance and the node
const MAX_ROWS = 500;      // timeline and history rows drawn; the rest is counted

// ---- DOM helpers ----------------------------------------------------------

// el(tag, attrs, ...children): attrs are properties (class, href, dataset
// entries as data-*, on* handlers); children are nodes or strings.
function el(tag, attrs, ...children) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === undefined || v === null || v === false) continue;
    if (k === "class") e.className = v;
    else if (k.startsWith("on")) e.addEventListener(k.slice(2), v);
    else if (k.startsWith("data-") || k === "for" || k === "role" || k.startsWith("aria-")) e.setAttribute(k, v);
    else e[k] = v;
  }
  for (const c of children.flat()) {
    if (c === undefined || c === null || c === false) continue;
    e.append(c instanceof Node ? c : String(c));
  }
  return e;
}

const $ = (sel, root) => (root || document).querySelector(sel);
const view = () => $("#view");

function show(...nodes) {
  view().replaceChildren(...nodes.flat().filter((n) => n !== null && n !== undefined && n !== false));
}

function banner(msg) {
  const b = $("#banner");
  b.textContent = msg || "";
  b.hidden = !msg;
}

function statusBadge(s) {
  return el("span", { class: "badge st-" + String(s || "").toLowerCase(), "data-status": s }, s || "?");
}

function json(v) {
  if (v === undefined || v === null) return el("span", { class: "muted" }, "null");
  return el("pre", { class: "json" }, JSON.stringify(v, null, 2));
}

// parseTime keeps milliseconds: the API gives nanoseconds, which Date
// does not parse everywhere.
function parseTime(s) {
  if (!s) return NaN;
  return Date.parse(String(s).replace(/(\.\d{3})\d+/, "$1"));
}

function fmtTime(s) {
  const t = parseTime(s);
  if (isNaN(t)) return "";
  return new Date(t).toISOString().replace("T", " ").replace(/\.\d+Z$/, "Z");
}

function fmtDur(ms) {
  if (!isFinite(ms)) return "";
  if (ms < 1) return ms <= 0 ? "0 ms" : "<1 ms";
  if (ms < 1000) return Math.round(ms) + " ms";
  if (ms < 60000) return (ms / 1000).toFixed(ms < 10000 ? 2 : 1) + " s";
  if (ms < 3600000) return Math.floor(ms / 60000) + " min " + Math.round((ms % 60000) / 1000) + " s";
  return (ms / 3600000).toFixed(1) + " h";
}

function instanceLink(id) {
  return el("a", { href: "#/instance/" + encodeURIComponent(id), class: "mono" }, id);
}

// ---- the API --------------------------------------------------------------

class APIError extends Error {
  constructor(status, message) {
    super(message);
    this.status = status;
  }
}

// api calls the HTTP API. A 401 asks for the key (once per failed call)
// and retries with it.
async function api(method, path, { body, token, asked } = {}) {
  const headers = {};
  const key = sessionStorage.getItem(KEY);
  if (key) headers["x-functions-key"] = key;
  if (token) headers["x-ms-continuation-token"] = token;
  if (body !== undefined) headers["Content-Type"] = "application/json";
  const res = await fetch(API + path, { method, headers, body: body === undefined ? undefined : body, cache: "no-store" });
  if (res.status === 401 && !asked) {
    await askKey(key ? "The API key was refused. Enter the node's API key." : "This node requires an API key.");
    return api(method, path, { body, token, asked: true });
  }
  const text = await res.text();
  let data = null;
  if (text) {
    try { data = JSON.parse(text); } catch { data = text; }
  }
  if (!res.ok && res.status !== 202) {
    const msg = data && data.Message ? data.Message : (typeof data === "string" ? data : res.statusText);
    throw new APIError(res.status, res.status + ": " + msg);
  }
  return { status: res.status, data, token: res.headers.get("x-ms-continuation-token") || "" };
}

// ---- modal dialogs --------------------------------------------------------

// dialog shows a form and resolves with its values on OK; submit may throw
// to keep the dialog open with the error.
function dialog({ title, text, fields = [], ok = "OK", danger = false, submit }) {
  return new Promise((resolve) => {
    const m = $("#modal"), form = $("#modal-form"), err = $("#modal-error");
    $("#modal-title").textContent = title;
    $("#modal-text").textContent = text || "";
    const okBtn = $("#modal-ok");
    okBtn.textContent = ok;
    okBtn.className = danger ? "danger" : "";
    err.hidden = true;
    const inputs = fields.map((f) => {
      const input = f.multiline
        ? el("textarea", { name: f.name, id: "field-" + f.name, rows: 4, placeholder: f.placeholder || "", value: f.value || "" })
        : el("input", { name: f.name, id: "field-" + f.name, type: f.type || "text", placeholder: f.placeholder || "", value: f.value || "", required: !!f.required });
      return { f, input, row: el("label", { class: "field" }, el("span", {}, f.label), input) };
    });
    $("#modal-fields").replaceChildren(...inputs.map((i) => i.row));
    const close = (v) => {
      m.hidden = true;
      form.onsubmit = null;
      $("#modal-cancel").onclick = null;
      resolve(v);
    };
    form.onsubmit = async (e) => {
      e.preventDefault();
      const values = {};
      for (const { f, input } of inputs) values[f.name] = input.value;
      okBtn.disabled = true;
      try {
        if (submit) await submit(values);
        close(values);
      } catch (ex) {
        err.textContent = ex.message;
        err.hidden = false;
      } finally {
        okBtn.disabled = false;
      }
    };
    $("#modal-cancel").onclick = () => close(null);
    m.hidden = false;
    (inputs[0] ? inputs[0].input : okBtn).focus();
  });
}

let keyPrompt = null; // one prompt at a time, shared by concurrent calls

function askKey(text) {
  if (!keyPrompt) {
    keyPrompt = dialog({
      title: "API key",
      text: text + " It is kept for this tab only (sessionStorage) and sent in the x-functions-key header.",
      fields: [{ name: "key", label: "Key", type: "password", required: true }],
      ok: "Use key",
    }).then((v) => {
      keyPrompt = null;
      if (v && v.key) sessionStorage.setItem(KEY, v.key);
    });
  }
  return keyPrompt;
}

// ---- routing --------------------------------------------------------------

let timer = null;  // the current page's refresh
let renderSeq = 0; // renders started; a stale one does not draw

function every(ms, fn) {
  clearInterval(timer);
  timer = setInterval(fn, ms);
}

function route() {
  clearInterval(timer);
  timer = null;
  banner("");
  const hash = location.hash.replace(/^#\/?/, "");
  const [path, qs] = hash.split("?");
  const parts = path.split("/").map(decodeURIComponent);
  const params = new URLSearchParams(qs || "");
  for (const a of document.querySelectorAll("nav a")) a.classList.toggle("active", a.dataset.nav === (parts[0] === "instance" ? "instances" : parts[0] === "entity" ? "entities" : parts[0]));
  const seq = ++renderSeq;
  const page = {
    "": () => instancesPage(params, seq),
    instances: () => instancesPage(params, seq),
    instance: () => instancePage(parts.slice(1).join("/"), seq),
    entities: () => entitiesPage(params, seq),
    entity: () => entityPage(parts[1], parts.slice(2).join("/"), seq),
    node: () => nodePage(seq),
  }[parts[0]];
  (page || (() => show(el("p", {}, "No such page. ", el("a", { href: "#/instances" }, "Instances")))))();
}

const current = (seq) => seq === renderSeq;

function fail(e) {
  banner(e.message || String(e));
}

// ---- instance list --------------------------------------------------------

// listQuery is the API query of the list's filters (the name filter is
// applied here: the API has none).
function listQuery(f, status, top, showInput) {
  const q = new URLSearchParams();
  if (status) q.set("runtimeStatus", status);
  if (f.prefix) q.set("instanceIdPrefix", f.prefix);
  if (f.from) q.set("createdTimeFrom", new Date(f.from).toISOString());
  if (f.to) q.set("createdTimeTo", new Date(f.to).toISOString());
  q.set("top", String(top));
  q.set("showInput", showInput ? "true" : "false");
  return "/instances?" + q.toString();
}

// fetchPage reads one page of matching instances from token on. With a
// name filter it reads on until the page is full or the listing ends, so
// the token it returns continues right after the last instance read.
async function fetchPage(f, token) {
  const rows = [];
  let next = token;
  for (let reads = 0; reads < 20; reads++) {
    const r = await api("GET", listQuery(f, f.status, PAGE, false), { token: next });
    next = r.token;
    const page = Array.isArray(r.data) ? r.data : [];
    rows.push(...(f.name ? page.filter((i) => i.name === f.name) : page));
    if (!next || rows.length >= PAGE || !f.name) break;
  }
  return { rows, next };
}

// countStatus counts the instances of one status matching the filters,
// reading at most COUNT_PAGES pages of 1000 ("5000+" past that).
async function countStatus(f, status) {
  let n = 0, token = "";
  for (let i = 0; i < COUNT_PAGES; i++) {
    const r = await api("GET", listQuery(f, status, 1000, false), { token });
    const page = Array.isArray(r.data) ? r.data : [];
    n += f.name ? page.filter((x) => x.name === f.name).length : page.length;
    token = r.token;
    if (!token) return String(n);
  }
  return n + "+";
}

function filtersFrom(params) {
  return {
    status: params.get("status") || "",
    name: params.get("name") || "",
    prefix: params.get("prefix") || "",
    from: params.get("from") || "",
    to: params.get("to") || "",
  };
}

function filtersHash(f) {
  const q = new URLSearchParams();
  for (const [k, v] of Object.entries(f)) if (v) q.set(k, v);
  const s = q.toString();
  return "#/instances" + (s ? "?" + s : "");
}

async function instancesPage(params, seq) {
  const f = filtersFrom(params);
  const tokens = [""]; // tokens of the pages seen, for Previous
  let auto = sessionStorage.getItem("durable.autoRefresh") !== "off";

  const statusSel = el("select", { name: "status", id: "f-status" }, el("option", { value: "" }, "any status"), STATUSES.map((s) => el("option", { value: s, selected: s === f.status }, s)));
  const form = el("form", { class: "filters", id: "filters", onsubmit: (e) => {
    e.preventDefault();
    const nf = {};
    for (const k of ["status", "name", "prefix", "from", "to"]) nf[k] = form.elements[k].value.trim();
    location.hash = filtersHash(nf);
  } },
  el("label", {}, "Status", statusSel),
  el("label", {}, "Name", el("input", { name: "name", id: "f-name", value: f.name, placeholder: "orchestrator" })),
  el("label", {}, "Id prefix", el("input", { name: "prefix", id: "f-prefix", value: f.prefix, placeholder: "order-" })),
  el("label", {}, "Created from", el("input", { name: "from", id: "f-from", type: "datetime-local", step: 1, value: f.from })),
  el("label", {}, "to", el("input", { name: "to", id: "f-to", type: "datetime-local", step: 1, value: f.to })),
  el("button", { type: "submit", id: "f-apply" }, "Filter"),
  el("a", { href: "#/instances", class: "button quiet" }, "Clear"));

  const counts = el("div", { class: "counts", id: "counts" });
  const body = el("tbody", { id: "instances" });
  const pager = el("div", { class: "pager" });
  const refresh = el("label", { class: "inline" }, el("input", { type: "checkbox", id: "auto-refresh", checked: auto, onchange: (e) => {
    auto = e.target.checked;
    sessionStorage.setItem("durable.autoRefresh", auto ? "on" : "off");
  } }), " auto-refresh");
  const start = el("button", { type: "button", class: "quiet", id: "start", onclick: () => startDialog() }, "Start…");
  show(el("div", { class: "titlebar" }, el("h1", {}, "Instances"), el("span", { class: "spacer" }), refresh, start),
    form, counts,
    el("table", { class: "list" }, el("thead", {}, el("tr", {}, ["Instance", "Name", "Status", "Created", "Last updated", "Output"].map((h) => el("th", {}, h)))), body),
    pager);

  let pageIdx = 0, next = "";
  async function load() {
    try {
      const r = await fetchPage(f, tokens[pageIdx]);
      if (!current(seq)) return;
      next = r.next;
      body.replaceChildren(...(r.rows.length ? r.rows.map((i) => el("tr", { "data-id": i.instanceId },
        el("td", {}, instanceLink(i.instanceId)),
        el("td", {}, i.name),
        el("td", {}, statusBadge(i.runtimeStatus)),
        el("td", {}, fmtTime(i.createdTime)),
        el("td", {}, fmtTime(i.lastUpdatedTime)),
        el("td", { class: "mono clip" }, i.output === null || i.output === undefined ? "" : JSON.stringify(i.output)))) :
        [el("tr", {}, el("td", { colSpan: 6, class: "muted", id: "no-instances" }, "No instances match."))]));
      pager.replaceChildren(
        el("button", { type: "button", class: "quiet", id: "prev-page", disabled: pageIdx === 0, onclick: () => { pageIdx--; load(); } }, "← Previous"),
        el("span", { class: "muted" }, "page " + (pageIdx + 1)),
        el("button", { type: "button", class: "quiet", id: "next-page", disabled: !next, onclick: () => { tokens[pageIdx + 1] = next; pageIdx++; load(); } }, "Next →"));
      banner("");
    } catch (e) {
      if (current(seq)) fail(e);
    }
  }
  async function loadCounts() {
    try {
      const values = await Promise.all(STATUSES.map((s) => countStatus(f, s)));
      if (!current(seq)) return;
      counts.replaceChildren(...STATUSES.map((s, i) => {
        const nf = Object.assign({}, f, { status: f.status === s ? "" : s });
        return el("a", { href: filtersHash(nf), class: "count" + (f.status === s ? " active" : ""), "data-status": s }, statusBadge(s), el("b", { "data-count": s }, values[i]));
      }));
    } catch (e) {
      if (current(seq)) fail(e);
    }
  }
  await Promise.all([load(), loadCounts()]);
  let ticks = 0;
  every(LIST_REFRESH, () => {
    if (!auto || !$("#modal").hidden) return;
    load();
    if (++ticks % 2 === 0) loadCounts(); // counting reads up to 8 × COUNT_PAGES pages: every other refresh
  });
}

function startDialog() {
  return dialog({
    title: "Start an orchestration",
    fields: [
      { name: "name", label: "Orchestrator", required: true },
      { name: "id", label: "Instance id (optional)" },
      { name: "input", label: "Input (JSON, optional)", multiline: true },
    ],
    ok: "Start",
    submit: async (v) => {
      const body = v.input.trim() ? checkJSON(v.input) : undefined;
      const path = "/orchestrators/" + encodeURIComponent(v.name.trim()) + (v.id.trim() ? "/" + encodeURIComponent(v.id.trim()) : "");
      const r = await api("POST", path, { body });
      location.hash = "#/instance/" + encodeURIComponent(r.data.id);
    },
  });
}

function checkJSON(s) {
  try {
    JSON.parse(s);
  } catch (e) {
    throw new Error("Not JSON: " + e.message);
  }
  return s;
}

// ---- one instance -----------------------------------------------------------

async function instancePage(id, seq) {
  const path = "/instances/" + encodeURIComponent(id);
  let st;
  try {
    st = (await api("GET", path + "?showHistory=true&showHistoryOutput=true&showInput=true")).data;
  } catch (e) {
    if (!current(seq)) return;
    show(el("h1", {}, "Instance ", el("span", { class: "mono" }, id)), el("p", { class: "error", id: "instance-error" }, e.message), el("p", {}, el("a", { href: "#/instances" }, "← Instances")));
    return;
  }
  if (!current(seq)) return;
  const events = st.historyEvents || [];
  const started = events.find((e) => e.EventType === "ExecutionStarted");
  const parent = started && started.ParentInstanceId;
  const children = childInstances(events);
  const tasks = timelineTasks(events, st);
  const scrolled = window.scrollY; // a refresh keeps the reader's place

  const summary = el("dl", { class: "summary" },
    el("dt", {}, "Status"), el("dd", { id: "instance-status" }, statusBadge(st.runtimeStatus)),
    el("dt", {}, "Name"), el("dd", {}, st.name),
    el("dt", {}, "Created"), el("dd", {}, fmtTime(st.createdTime)),
    el("dt", {}, "Last updated"), el("dd", {}, fmtTime(st.lastUpdatedTime)),
    parent ? [el("dt", {}, "Parent"), el("dd", { id: "parent" }, instanceLink(parent))] : null,
    children.length ? [el("dt", {}, "Children"), el("dd", { id: "children" }, children.map((c) => el("span", { class: "child" }, instanceLink(c))))] : null);

  show(
    el("p", {}, el("a", { href: "#/instances" }, "← Instances")),
    el("div", { class: "titlebar" }, el("h1", {}, el("span", { class: "mono", id: "instance-id" }, st.instanceId)), el("span", { class: "spacer" }), actions(st)),
    summary,
    st.failureDetails ? failureBox(st.failureDetails) : null,
    el("div", { class: "payloads" },
      el("section", {}, el("h3", {}, "Input"), json(st.input)),
      el("section", {}, el("h3", {}, "Output"), json(st.output)),
      el("section", {}, el("h3", {}, "Custom status"), json(st.customStatus))),
    el("h2", {}, "Timeline"),
    timeline(tasks, events, st),
    el("h2", {}, "History"),
    historyTable(events));
  window.scrollTo(0, scrolled);
  if (!TERMINAL.has(st.runtimeStatus)) {
    every(LIVE_REFRESH, () => {
      if ($("#modal").hidden) instancePage(id, seq);
    });
  } else {
    clearInterval(timer); // a finished instance changes no more
  }
}

function failureBox(f) {
  const chain = [];
  for (let x = f; x; x = x.InnerFailure) chain.push(x);
  return el("section", { class: "failure", id: "failure" },
    el("h3", {}, "Failure"),
    chain.map((x, i) => el("div", { class: "failure-link" },
      el("div", {}, i > 0 ? el("span", { class: "muted" }, "caused by ") : null, el("b", {}, x.ErrorType || "Error"), ": ", x.ErrorMessage),
      x.StackTrace ? el("details", {}, el("summary", {}, "stack"), el("pre", { class: "stack" }, x.StackTrace)) : null)));
}

function childInstances(events) {
  const ids = [];
  for (const e of events) {
    const s = e.EventType === "SubOrchestrationInstanceCreated" ? e : e.Scheduled && e.Scheduled.EventType === "SubOrchestrationInstanceCreated" ? e.Scheduled : null;
    if (s && s.InstanceId && !ids.includes(s.InstanceId)) ids.push(s.InstanceId);
  }
  return ids;
}

// timelineTasks pairs each task's opening with its completion: activities
// and sub-orchestrations come folded (Scheduled), timers, entity calls and
// locks are paired by TaskId. An open task runs to the instance's last
// update (now, while it runs).
function timelineTasks(events, st) {
  const kinds = {
    TaskScheduled: "activity", SubOrchestrationInstanceCreated: "suborchestration", TimerCreated: "timer",
    EntityOperationCalled: "entity", EntityLockRequested: "lock",
  };
  const closers = {
    TaskCompleted: "activity", TaskFailed: "activity", SubOrchestrationInstanceCompleted: "suborchestration",
    SubOrchestrationInstanceFailed: "suborchestration", TimerFired: "timer", EntityOperationCompleted: "entity",
    EntityOperationFailed: "entity", EntityLockGranted: "lock",
  };
  const open = new Map();
  const tasks = [];
  const end = TERMINAL.has(st.runtimeStatus) ? parseTime(events.length ? events[events.length - 1].Timestamp : st.lastUpdatedTime) : Date.now();
  for (const e of events) {
    if (kinds[e.EventType]) {
      const t = { kind: kinds[e.EventType], name: e.Name || "", start: parseTime(e.Timestamp), end: NaN, state: "open", taskId: e.TaskId, target: e.InstanceId, fireAt: e.FireAt };
      if (t.kind === "timer") t.name = "until " + fmtTime(e.FireAt).slice(11) + " (" + fmtDur(parseTime(e.FireAt) - t.start) + ")";
      if (t.kind === "entity") t.name = (e.InstanceId ? e.InstanceId.replace(/^@/, "") + " " : "") + (e.Name || "");
      if (t.kind === "lock") t.name = (e.InstanceId || "lock").replace(/^@/, "");
      open.set(e.TaskId, t);
      tasks.push(t);
      continue;
    }
    const kind = closers[e.EventType];
    if (!kind) continue;
    let t = open.get(e.TaskId);
    if (!t && e.Scheduled) {
      // Folded: the scheduling is inside the completion.
      t = { kind, name: e.FunctionName || e.Scheduled.Name || "", start: parseTime(e.ScheduledTime || e.Scheduled.Timestamp), taskId: e.TaskId, target: e.Scheduled.InstanceId };
      tasks.push(t);
    }
    if (!t) continue;
    open.delete(e.TaskId);
    t.end = parseTime(e.Timestamp);
    t.state = /Failed$/.test(e.EventType) ? "failed" : "done";
    t.result = e.Result;
    t.failure = e.FailureDetails;
  }
  for (const t of tasks) {
    if (t.state === "open") t.end = Math.max(end, t.start);
  }
  return tasks;
}

// timeline draws a Gantt chart: one row per task, bars positioned in
// percent of the span from the first to the last event (or now), points
// for events raised.
function timeline(tasks, events, st) {
  if (!events.length) return el("p", { class: "muted" }, "No history.");
  const t0 = parseTime(events[0].Timestamp);
  let t1 = TERMINAL.has(st.runtimeStatus) ? parseTime(events[events.length - 1].Timestamp) : Date.now();
  for (const t of tasks) t1 = Math.max(t1, t.end || t.start);
  const span = Math.max(t1 - t0, 1);
  const pct = (t) => ((t - t0) / span) * 100;
  const rows = [];
  const marks = events.filter((e) => e.EventType === "EventRaised" || e.EventType === "ExecutionSuspended" || e.EventType === "ExecutionResumed" || e.EventType === "ExecutionTerminated");
  rows.push(el("div", { class: "tl-row tl-axis" }, el("div", { class: "tl-label" }, ""), el("div", { class: "tl-track" },
    [0, 0.25, 0.5, 0.75, 1].map((f) => {
      const tick = el("span", { class: "tl-tick" }, "+" + fmtDur(span * f));
      tick.style.left = (f * 100) + "%";
      return tick;
    }))));
  for (const t of tasks.slice(0, MAX_ROWS)) {
    const bar = el("div", { class: "tl-bar k-" + t.kind + " s-" + t.state, title: t.kind + " " + t.name + ": " + fmtDur(t.end - t.start) + (t.state === "open" ? " (waiting)" : "") });
    bar.style.left = pct(t.start) + "%";
    bar.style.width = Math.max(pct(t.end) - pct(t.start), 0.4) + "%";
    const label = el("div", { class: "tl-label", title: t.name }, el("span", { class: "kind" }, t.kind), " ", t.kind === "suborchestration" && t.target ? instanceLink(t.target) : t.name);
    rows.push(el("div", { class: "tl-row", "data-kind": t.kind, "data-state": t.state }, label,
      el("div", { class: "tl-track" }, bar), el("div", { class: "tl-dur" }, fmtDur(t.end - t.start) + (t.state === "open" ? " …" : ""))));
  }
  for (const m of marks.slice(0, MAX_ROWS)) {
    const dot = el("div", { class: "tl-mark", title: m.EventType + " " + (m.Name || m.Reason || "") });
    dot.style.left = pct(parseTime(m.Timestamp)) + "%";
    rows.push(el("div", { class: "tl-row", "data-kind": "event" }, el("div", { class: "tl-label" }, el("span", { class: "kind" }, "event"), " ", m.EventType === "EventRaised" ? m.Name : m.EventType.replace("Execution", "").toLowerCase()),
      el("div", { class: "tl-track" }, dot), el("div", { class: "tl-dur" }, "+" + fmtDur(parseTime(m.Timestamp) - t0))));
  }
  if (tasks.length > MAX_ROWS) rows.push(el("div", { class: "muted" }, (tasks.length - MAX_ROWS) + " more tasks not drawn."));
  if (!tasks.length && !marks.length) rows.push(el("div", { class: "muted" }, "No activities, timers, sub-orchestrations or entity calls yet."));
  return el("div", { class: "timeline", id: "timeline" }, rows, el("div", { class: "legend" },
    ["activity", "timer", "suborchestration", "entity", "lock"].map((k) => el("span", { class: "lg k-" + k }, k)),
    el("span", { class: "lg s-open" }, "waiting"), el("span", { class: "lg s-failed" }, "failed")));
}

function historyTable(events) {
  const t0 = events.length ? parseTime(events[0].Timestamp) : 0;
  return el("table", { class: "list history", id: "history" },
    el("thead", {}, el("tr", {}, ["#", "Time", "+", "Event", "Name", "Task", "Details"].map((h) => el("th", {}, h)))),
    el("tbody", {}, events.slice(0, MAX_ROWS).map((e) => {
      const details = [];
      if (e.ScheduledTime) details.push("scheduled " + fmtTime(e.ScheduledTime) + " (took " + fmtDur(parseTime(e.Timestamp) - parseTime(e.ScheduledTime)) + ")");
      if (e.FireAt) details.push("fire at " + fmtTime(e.FireAt));
      if (e.Reason) details.push(e.Reason);
      if (e.OrchestrationStatus) details.push(e.OrchestrationStatus);
      const payload = e.Result !== undefined ? e.Result : e.Input;
      const target = e.InstanceId && e.EventType !== "ExecutionStarted" ? e.InstanceId : e.Scheduled && e.Scheduled.InstanceId;
      return el("tr", { "data-event": e.EventType },
        el("td", { class: "muted" }, e.Position !== undefined ? e.Position : ""),
        el("td", { class: "mono" }, fmtTime(e.Timestamp)),
        el("td", { class: "mono muted" }, fmtDur(parseTime(e.Timestamp) - t0)),
        el("td", {}, e.EventType),
        el("td", {}, e.FunctionName || e.Name || ""),
        el("td", { class: "muted" }, e.TaskId !== undefined ? e.TaskId : ""),
        el("td", { class: "clip" }, details.join("; "), target && /SubOrchestration/.test(e.EventType) ? [" ", instanceLink(target)] : null,
          payload !== undefined ? el("code", { class: "payload" }, " " + JSON.stringify(payload)) : null));
    }),
    events.length > MAX_ROWS ? el("tr", {}, el("td", { colSpan: 7, class: "muted" }, (events.length - MAX_ROWS) + " more events not shown (durable history ID shows them all).")) : null));
}

// actions: the buttons that make sense for the instance's status, each
// behind a confirmation.
function actions(st) {
  const s = st.runtimeStatus;
  const path = "/instances/" + encodeURIComponent(st.instanceId);
  const running = s === "Running" || s === "Pending" || s === "Suspended";
  const reason = [{ name: "reason", label: "Reason (optional)" }];
  const after = () => instancePage(st.instanceId, ++renderSeq);
  const act = (label, id, spec, run, show = true) => show ? el("button", { type: "button", id: "act-" + id, class: spec.danger ? "danger quiet" : "quiet", onclick: () => dialog(Object.assign({ title: label + " " + st.instanceId, ok: label, submit: async (v) => { await run(v); after(); } }, spec)) }, label) : null;
  const q = (v) => (v.reason ? "?reason=" + encodeURIComponent(v.reason) : "");
  return el("div", { class: "actions" },
    act("Raise event", "raise", { fields: [{ name: "event", label: "Event name", required: true }, { name: "data", label: "Data (JSON, optional)", multiline: true }] },
      (v) => api("POST", path + "/raiseEvent/" + encodeURIComponent(v.event.trim()), { body: v.data.trim() ? checkJSON(v.data) : undefined }), running),
    act("Suspend", "suspend", { fields: reason, text: "The instance stops taking events until it is resumed." }, (v) => api("POST", path + "/suspend" + q(v)), s === "Running" || s === "Pending"),
    act("Resume", "resume", { fields: reason }, (v) => api("POST", path + "/resume" + q(v)), s === "Suspended"),
    act("Terminate", "terminate", { fields: reason, danger: true, text: "The instance ends as Terminated; running activities see their context canceled." }, (v) => api("POST", path + "/terminate" + q(v)), running),
    act("Rewind", "rewind", { fields: reason, text: "Re-runs the failed tasks of this instance." }, (v) => api("POST", path + "/rewind" + q(v)), s === "Failed"),
    act("Restart", "restart", { fields: [{ name: "newid", label: "New instance id? (yes/no)", value: "yes" }], text: "Starts the orchestration again with the same input." }, async (v) => {
      const fresh = !/^n/i.test(v.newid.trim());
      const r = await api("POST", path + "/restart?restartWithNewInstanceId=" + fresh);
      if (r.data && r.data.id && r.data.id !== st.instanceId) location.hash = "#/instance/" + encodeURIComponent(r.data.id);
    }, TERMINAL.has(s)),
    act("Purge", "purge", { danger: true, text: "Deletes the instance and its history. This cannot be undone." }, async () => {
      await api("DELETE", path);
      location.hash = "#/instances";
    }, TERMINAL.has(s)));
}

// ---- entities -------------------------------------------------------------

async function entitiesPage(params, seq) {
  const name = params.get("name") || "";
  const tokens = [""];
  let pageIdx = 0;
  const form = el("form", { class: "filters", onsubmit: (e) => {
    e.preventDefault();
    const n = form.elements.name.value.trim();
    location.hash = "#/entities" + (n ? "?name=" + encodeURIComponent(n) : "");
  } }, el("label", {}, "Name", el("input", { name: "name", id: "e-name", value: name, placeholder: "counter" })), el("button", { type: "submit" }, "Filter"),
  el("button", { type: "button", class: "quiet", id: "signal", onclick: () => signalDialog(name, "").then((v) => { if (v) load(); }) }, "Signal…"));
  const body = el("tbody", { id: "entities" });
  const pager = el("div", { class: "pager" });
  show(el("h1", {}, "Entities"), form, el("table", { class: "list" }, el("thead", {}, el("tr", {}, ["Entity", "Key", "Last operation", "State"].map((h) => el("th", {}, h)))), body), pager);
  async function load() {
    try {
      const r = await api("GET", "/entities" + (name ? "/" + encodeURIComponent(name) : "") + "?fetchState=true&top=" + PAGE, { token: tokens[pageIdx] });
      if (!current(seq)) return;
      const rows = Array.isArray(r.data) ? r.data : [];
      body.replaceChildren(...(rows.length ? rows.map((e) => el("tr", {},
        el("td", {}, el("a", { href: "#/entity/" + encodeURIComponent(e.entityId.name) + "/" + encodeURIComponent(e.entityId.key) }, e.entityId.name)),
        el("td", { class: "mono" }, e.entityId.key),
        el("td", {}, fmtTime(e.lastOperationTime)),
        el("td", { class: "mono clip" }, JSON.stringify(e.state)))) : [el("tr", {}, el("td", { colSpan: 4, class: "muted" }, "No entities."))]));
      pager.replaceChildren(
        el("button", { type: "button", class: "quiet", disabled: pageIdx === 0, onclick: () => { pageIdx--; load(); } }, "← Previous"),
        el("span", { class: "muted" }, "page " + (pageIdx + 1)),
        el("button", { type: "button", class: "quiet", disabled: !r.token, onclick: () => { tokens[pageIdx + 1] = r.token; pageIdx++; load(); } }, "Next →"));
    } catch (e) {
      if (current(seq)) fail(e);
    }
  }
  await load();
  every(LIST_REFRESH, () => { if ($("#modal").hidden) load(); });
}

function entityPath(name, key) {
  return "/entities/" + encodeURIComponent(name) + "/" + (key === "" ? "$" : encodeURIComponent(key));
}

function signalDialog(name, key) {
  return dialog({
    title: "Signal an entity",
    fields: [
      { name: "name", label: "Entity name", value: name, required: true },
      { name: "key", label: "Key", value: key },
      { name: "op", label: "Operation", required: true },
      { name: "input", label: "Input (JSON, optional)", multiline: true },
    ],
    ok: "Signal",
    submit: async (v) => {
      const base = "/entities/" + encodeURIComponent(v.name.trim()) + (v.key ? "/" + encodeURIComponent(v.key) : "");
      await api("POST", base + "?op=" + encodeURIComponent(v.op.trim()), { body: v.input.trim() ? checkJSON(v.input) : undefined });
    },
  });
}

async function entityPage(name, key, seq) {
  const head = [el("p", {}, el("a", { href: "#/entities" }, "← Entities")), el("div", { class: "titlebar" }, el("h1", {}, name, " ", el("span", { class: "mono" }, key)), el("span", { class: "spacer" }),
    el("button", { type: "button", class: "quiet", onclick: async () => { await signalDialog(name, key); entityPage(name, key, ++renderSeq); } }, "Signal…"))];
  try {
    const r = await api("GET", entityPath(name, key));
    if (!current(seq)) return;
    show(...head, el("h3", {}, "State"), el("div", { id: "entity-state" }, json(r.data)));
  } catch (e) {
    if (!current(seq)) return;
    show(...head, el("p", { class: e.status === 404 ? "muted" : "error" }, e.status === 404 ? "This entity has no state." : e.message));
  }
}

// ---- node -----------------------------------------------------------------

async function nodePage(seq) {
  let prev = null;
  const stats = el("div", { class: "cards", id: "node" });
  const failures = el("tbody", { id: "failures" });
  show(el("h1", {}, "Node"), stats, el("h2", {}, "Recent failures"), el("p", { class: "muted" }, "Failed instances created in the last 24 hours, latest first."),
    el("table", { class: "list" }, el("thead", {}, el("tr", {}, ["Instance", "Name", "Failed at", "Output"].map((h) => el("th", {}, h)))), failures));
  const card = (label, value, note, id) => el("div", { class: "card", "data-stat": id }, el("div", { class: "card-label" }, label), el("div", { class: "card-value" }, value), note ? el("div", { class: "card-note muted" }, note) : null);
  async function load() {
    try {
      const [n, f] = await Promise.all([
        api("GET", "/node"),
        api("GET", "/instances?runtimeStatus=Failed&top=1000&showInput=false&createdTimeFrom=" + encodeURIComponent(new Date(Date.now() - 86400000).toISOString())),
      ]);
      if (!current(seq)) return;
      const s = n.data, now = Date.now();
      let recent = "";
      if (prev && s.transactions > prev.s.transactions) {
        const dt = s.transactions - prev.s.transactions;
        recent = "last " + fmtDur(now - prev.at) + ": " + fmtDur(((s.commitSeconds - prev.s.commitSeconds) / dt) * 1000) + " over " + dt + " txns";
      }
      const rate = prev ? ((s.commits - prev.s.commits) / ((now - prev.at) / 1000)).toFixed(0) + " commits/s" : "";
      prev = { s, at: now };
      const down = s.partitionsDown || [];
      stats.replaceChildren(
        card("Status", !s.ready ? "starting" : down.length ? "degraded" : "ready", "up " + fmtDur(s.uptimeSeconds * 1000), "ready"),
        card("Partitions", s.hostedPartitions.length + " of " + s.partitions, "hosted: " + (s.hostedPartitions.join(", ") || "none"), "partitions"),
        ...down.map((d) => card("Partition " + d.partition + " down", "down", d.error, "down-" + d.partition)),
        card("Actors in memory", s.inMemory, "instances and entities not passivated" + (s.maxInMemory ? " (at most about " + s.maxInMemory + ")" : "") + "; " + s.actors + " actor processes in all", "actors"),
        card("Activities running", s.activitiesRunning + " / " + s.activitySlots, s.activitiesWaiting + " instances waiting for a slot", "activities"),
        card("Commit latency", fmtDur(s.meanCommitLatencySeconds * 1000), recent || "mean since open", "commit"),
        card("Commits", s.commits, (s.transactions ? (s.commits / s.transactions).toFixed(1) : "0") + " per store transaction" + (rate ? "; " + rate : ""), "commits"),
        card("Go", s.goroutines + " goroutines", (s.heapBytes / 1048576).toFixed(1) + " MiB heap", "go"));
      const rows = (Array.isArray(f.data) ? f.data : []).sort((a, b) => parseTime(b.lastUpdatedTime) - parseTime(a.lastUpdatedTime)).slice(0, 20);
      failures.replaceChildren(...(rows.length ? rows.map((i) => el("tr", {}, el("td", {}, instanceLink(i.instanceId)), el("td", {}, i.name), el("td", {}, fmtTime(i.lastUpdatedTime)), el("td", { class: "clip" }, i.failureDetails ? i.failureDetails.ErrorMessage : JSON.stringify(i.output)))) :
        [el("tr", {}, el("td", { colSpan: 4, class: "muted" }, "No failed instances."))]));
      banner("");
    } catch (e) {
      if (current(seq)) fail(e);
    }
  }
  await load();
  every(LIVE_REFRESH, load);
}

// ---- start ----------------------------------------------------------------

$("#key-button").addEventListener("click", () => {
  sessionStorage.removeItem(KEY);
  askKey("Enter the node's API key.").then(route);
});
window.addEventListener("hashchange", route);
route();
