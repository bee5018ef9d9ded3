// The operators' console: review what the bot missed, annotate, train, compare, activate, roll
// back. Plain module, no dependencies, no build. Every text that comes from the server is set
// with textContent (never innerHTML): fans' messages are untrusted.
const root = document.getElementById("console");
const csrf = root.dataset.csrf;
const $ = (id) => document.getElementById(id);
const state = {
  items: [], selected: new Set(), current: null, detail: null,
  intents: [], facts: [],
  job: null, poll: null,
  evaluation: null, evalModelId: null, evalPinned: false,
  models: null, busy: false,
};
const POLL_MS = 1000;
const PLOT_NAMES = {
  "summary.png": "Accuracy, macro-F1, out-of-scope caught and accuracy per language: active vs candidate",
  "per_intent_f1.png": "F1 per intent: active (grey) vs candidate (blue; red where it fell)",
  "candidate/confusion.png": "Candidate: confusion matrix on the held-out test file",
  "active/confusion.png": "Active: confusion matrix on the held-out test file",
};
const REASONS = {
  fallback: "fallback", low_confidence: "low confidence", complex_handoff: "handed to a person",
  flagged: "flagged", triage_missed: "should have come to a person",
  triage_unneeded: "did not need a person",
};
const TRIAGE_REASONS = ["triage_missed", "triage_unneeded"];
const LANGUAGE_NAMES = { en: "English", es: "Spanish", de: "German" };
// Triage labels' human names ("medical emergency"), from the page's label choice.
const LABEL_NAMES = Object.fromEntries([...$("detail-template").content
  .querySelectorAll(".triage-form option")].map((o) => [o.value, o.dataset.name]));

// -- plumbing ------------------------------------------------------------------------------------
class ApiError extends Error {
  constructor(status, detail, message) {
    super(message);
    this.status = status;
    this.detail = detail;
  }
}

function describe(detail, r) {
  if (typeof detail === "string") return detail;
  if (detail && typeof detail.message === "string") return detail.message;
  if (Array.isArray(detail)) {
    return detail.map((d) => (d && d.msg ? String(d.msg).replace(/^Value error, /, "") : ""))
      .filter(Boolean).join("; ") || "invalid input";
  }
  return r.statusText || "request failed (" + r.status + ")";
}

async function call(method, url, body) {
  const opts = { method, headers: { "X-CSRF-Token": csrf, Accept: "application/json" },
                 credentials: "same-origin" };
  if (body !== undefined) {
    opts.headers["Content-Type"] = "application/json";
    opts.body = JSON.stringify(body);
  }
  let r;
  try {
    r = await fetch(url, opts);
  } catch (e) {
    throw new ApiError(0, null, "the switchboard did not answer (" + e.message + ")");
  }
  if (r.status === 401) {
    location.href = "/inbox/login?next=/operator";
    throw new ApiError(401, null, "signed out");
  }
  const data = r.status === 204 ? null : await r.json().catch(() => null);
  if (!r.ok) {
    const detail = data && data.detail;
    throw new ApiError(r.status, detail, describe(detail, r));
  }
  return data;
}

function el(tag, cls, text) {
  const e = document.createElement(tag);
  if (cls) e.className = cls;
  if (text !== undefined && text !== null) e.textContent = String(text);
  return e;
}

function cell(text, cls) { return el("td", cls, text); }

function when(iso) {
  if (!iso) return "";
  const d = new Date(iso);
  return isNaN(d) ? String(iso) : d.toLocaleString([], { dateStyle: "short", timeStyle: "short" });
}

function pct(x) { return x === null || x === undefined ? "–" : (x * 100).toFixed(1) + "%"; }
function dec(x) { return x === null || x === undefined ? "–" : Number(x).toFixed(3); }
function signed(x, digits = 3) {
  if (x === null || x === undefined || isNaN(x)) return "";
  const v = Number(x);
  return (v > 0 ? "+" : v < 0 ? "−" : "±") + Math.abs(v).toFixed(digits);
}

function say(node, text, kind) {
  node.textContent = text || "";
  node.classList.toggle("error", kind === "error");
  node.classList.toggle("ok", kind === "ok");
}

function banner(text) {
  const b = $("console-error");
  b.textContent = text || "";
  b.hidden = !text;
}

// Text with the personal data found in it marked (<mark>), built from text nodes only.
function marked(text, findings) {
  const frag = document.createDocumentFragment();
  let last = 0;
  for (const f of [...(findings || [])].sort((a, b) => a.start - b.start)) {
    if (f.start < last || f.end > text.length) continue;
    frag.append(document.createTextNode(text.slice(last, f.start)));
    const m = el("mark", "pii-mark", text.slice(f.start, f.end));
    m.title = "personal data: " + f.kind.replace(/_/g, " ");
    frag.append(m);
    last = f.end;
  }
  frag.append(document.createTextNode(text.slice(last)));
  return frag;
}

// -- tabs ----------------------------------------------------------------------------------------
const TABS = ["review", "training", "models"];

function showTab(name, focus) {
  if (!TABS.includes(name)) name = "review";
  for (const t of TABS) {
    const tab = $("tab-" + t);
    const on = t === name;
    tab.setAttribute("aria-selected", on ? "true" : "false");
    tab.tabIndex = on ? 0 : -1;
    $("panel-" + t).hidden = !on;
    if (on && focus) tab.focus();
  }
  if (location.hash !== "#" + name) history.replaceState(null, "", "#" + name);
  if (name === "review") loadQueue().catch(fail);
  if (name === "training") { loadJobs().catch(fail); loadChanges().catch(fail); }
  if (name === "models") loadModels().catch(fail);
}

document.querySelector(".tabs").addEventListener("click", (e) => {
  const tab = e.target.closest("[role=tab]");
  if (tab) showTab(tab.dataset.tab);
});
document.querySelector(".tabs").addEventListener("keydown", (e) => {
  const at = TABS.indexOf(document.activeElement.dataset.tab);
  if (at < 0) return;
  const step = { ArrowRight: 1, ArrowLeft: -1 }[e.key];
  if (step) { e.preventDefault(); showTab(TABS[(at + step + TABS.length) % TABS.length], true); }
});

function fail(e) { banner(e.message); }

// -- review queue --------------------------------------------------------------------------------
async function loadIntents() {
  const data = await call("GET", "/api/v1/review/intents");
  state.intents = data.intents;
  state.facts = data.facts;
  $("intent-list").replaceChildren(...data.intents.map((name) => {
    const o = el("option");
    o.value = name;
    return o;
  }));
}

function filters() {
  const f = new FormData($("filters"));
  const params = new URLSearchParams();
  params.set("status", f.get("status") || "new");
  if (f.get("reason")) params.set("reason", f.get("reason"));
  const q = String(f.get("q") || "").trim();
  if (q) params.set("q", q);
  params.set("sort", f.get("sort") || "count");
  params.set("limit", "200");
  return params;
}

async function loadQueue() {
  const data = await call("GET", "/api/v1/review/items?" + filters());
  state.items = data.items;
  const shown = new Set(data.items.map((i) => i.id));
  for (const id of [...state.selected]) if (!shown.has(id)) state.selected.delete(id);
  renderQueue(data);
}

function renderQueue(data) {
  const c = data.counts;
  $("count-new").textContent = c.new ? "(" + c.new + ")" : "";
  $("queue-summary").textContent = "Showing " + data.items.length + " of " + data.total +
    " · new " + c.new + " · annotated " + c.annotated + " · ignored " + c.ignored;
  $("queue-empty").hidden = data.items.length > 0;
  $("queue-rows").replaceChildren(...data.items.map(queueRow));
  syncSelection();
}

function queueRow(item) {
  const tr = el("tr", "item-row");
  tr.dataset.id = item.id;
  if (state.current === item.id) tr.classList.add("selected");
  const check = el("input");
  check.type = "checkbox";
  check.className = "pick";
  check.checked = state.selected.has(item.id);
  check.setAttribute("aria-label", "Select: " + item.text);
  const tdCheck = el("td", "check");
  tdCheck.append(check);

  const open = el("button", "linklike item-text", item.text);
  open.type = "button";
  open.dataset.open = item.id;
  const tdText = el("td", "text-cell");
  tdText.append(open);
  if (item.personal_data && item.personal_data.length) {
    const b = el("span", "badge pii-badge", "personal data");
    b.title = item.personal_data.join(", ").replace(/_/g, " ");
    tdText.append(" ", b);
  }
  if (item.language) tdText.append(" ", el("span", "badge", item.language));

  const tdWhy = el("td");
  for (const r of item.reasons || []) tdWhy.append(el("span", "badge reason-" + r, REASONS[r] || r), " ");

  const tdBot = el("td", "small");
  const guess = bestGuess(item);
  if (item.predicted_intent && item.predicted_intent !== guess.name) {
    tdBot.append(el("span", null, item.predicted_intent === "nlu_fallback" ? "didn't get it"
                                                                             : item.predicted_intent));
  }
  if (guess.name) {
    if (tdBot.childNodes.length) tdBot.append(el("br"), el("span", "muted", "best guess "));
    tdBot.append(el("code", null, guess.name));
    if (guess.confidence !== null && guess.confidence !== undefined) {
      tdBot.append(" ", el("span", "muted", pct(guess.confidence)));
    }
  }

  const tdStatus = el("td", "small");
  tdStatus.append(el("span", "pill status-" + item.status, item.status));
  if (item.intent) tdStatus.append(" → ", el("code", null, item.intent));
  if (item.annotated_by) tdStatus.append(el("span", "muted", " by " + item.annotated_by));

  tr.append(tdCheck, tdText, cell("×" + item.occurrences, "num count"), tdWhy, tdBot, tdStatus);
  return tr;
}

// The intent the model leaned to: under a fallback, the best real intent of the ranking.
function bestGuess(item) {
  const real = (item.ranking || []).find((r) => r.name !== "nlu_fallback");
  if (item.predicted_intent === "nlu_fallback" && real) return real;
  return { name: item.predicted_intent, confidence: item.confidence };
}

function syncSelection() {
  const n = state.selected.size;
  $("selected-count").textContent = n + " selected";
  $("bulk-ignore").disabled = n === 0;
  $("bulk-reopen").disabled = n === 0;
  $("bulk-annotate").disabled = n === 0 || !$("bulk-intent").value.trim();
  const all = $("select-all");
  all.checked = n > 0 && n === state.items.length;
  all.indeterminate = n > 0 && n < state.items.length;
}

$("queue-rows").addEventListener("click", (e) => {
  const open = e.target.closest("[data-open]");
  if (open) { openItem(Number(open.dataset.open)).catch(fail); return; }
});
$("queue-rows").addEventListener("change", (e) => {
  if (!e.target.classList.contains("pick")) return;
  const id = Number(e.target.closest("tr").dataset.id);
  if (e.target.checked) state.selected.add(id); else state.selected.delete(id);
  syncSelection();
});
$("select-all").addEventListener("change", (e) => {
  state.selected = new Set(e.target.checked ? state.items.map((i) => i.id) : []);
  document.querySelectorAll("#queue-rows .pick").forEach((c) => { c.checked = e.target.checked; });
  syncSelection();
});
$("bulk-intent").addEventListener("input", syncSelection);

let searchTimer = null;
$("filters").addEventListener("change", () => loadQueue().catch(fail));
$("filters").addEventListener("input", (e) => {
  if (e.target.name !== "q") return;
  clearTimeout(searchTimer);
  searchTimer = setTimeout(() => loadQueue().catch(fail), 300);
});
$("filters").addEventListener("submit", (e) => { e.preventDefault(); loadQueue().catch(fail); });
$("refresh-queue").addEventListener("click", () => loadQueue().then(() => banner("")).catch(fail));

async function bulk(action) {
  const status = $("bulk-status");
  const ids = [...state.selected];
  const body = { ids, action };
  if (action === "annotate") body.intent = $("bulk-intent").value.trim();
  say(status, "Working…");
  try {
    const r = await call("POST", "/api/v1/review/items/bulk", body);
    if (action === "annotate") {
      const skipped = r.skipped.map((s) => "#" + s.id + ": " + s.why).join("; ");
      say(status, "Annotated " + r.annotated.length + (skipped ? ". Skipped " + skipped : "."),
          r.skipped.length ? "error" : "ok");
    } else {
      say(status, (action === "ignore" ? "Ignored " : "Reopened ") + r.changed.length + ".", "ok");
    }
    state.selected.clear();
    await loadQueue();
  } catch (e) {
    say(status, e.message, "error");
  }
}
$("bulk-ignore").addEventListener("click", () => bulk("ignore"));
$("bulk-reopen").addEventListener("click", () => bulk("reopen"));
$("bulk-annotate").addEventListener("click", () => bulk("annotate"));

// -- one item ------------------------------------------------------------------------------------
async function openItem(id) {
  state.current = id;
  document.querySelectorAll("#queue-rows tr").forEach((tr) => {
    tr.classList.toggle("selected", Number(tr.dataset.id) === id);
  });
  const d = await call("GET", "/api/v1/review/items/" + id);
  state.detail = d;
  renderDetail(d);
}

function renderDetail(d) {
  const pane = $("detail");
  pane.replaceChildren($("detail-template").content.cloneNode(true));
  pane.dataset.id = d.id;
  const title = pane.querySelector(".d-text");
  title.replaceChildren(marked(d.text, d.personal_data));
  const meta = ["×" + d.occurrences, (d.reasons || []).map((r) => REASONS[r] || r).join(", "),
                d.language ? "language " + d.language : "", "last seen " + when(d.last_seen_at),
                d.status + (d.intent ? " as " + d.intent : "") +
                (d.annotated_by ? " by " + d.annotated_by : "")];
  pane.querySelector(".d-meta").textContent = meta.filter(Boolean).join(" · ");

  const ranking = pane.querySelector(".ranking");
  if (!d.ranking || !d.ranking.length) ranking.append(el("li", "muted", "no ranking recorded"));
  for (const r of d.ranking || []) {
    const li = el("li");
    const bar = el("meter");
    bar.min = 0; bar.max = 1; bar.value = r.confidence; bar.low = 0.55; bar.optimum = 1;
    bar.setAttribute("aria-label", r.name + " confidence");
    li.append(el("code", null, r.name), bar, el("span", "muted small", pct(r.confidence)));
    ranking.append(li);
  }

  const sightings = pane.querySelector(".sightings");
  if (!d.sightings.length) sightings.append(el("p", "muted small", "no conversation recorded"));
  for (const s of d.sightings) {
    const box = el("div", "sighting");
    const head = el("p", "small muted", "Conversation #" + s.conversation_id + " · " + when(s.at) +
      " · " + (s.reasons || []).map((r) => REASONS[r] || r).join(", "));
    box.append(head);
    if (s.note) box.append(el("p", "note small", "Staff note: " + s.note));
    const ol = el("ol", "context");
    for (const m of s.context) {
      const li = el("li", "ctx from-" + m.sender + (m.this ? " this" : ""));
      if (m.this) li.setAttribute("aria-current", "true");
      li.append(el("span", "who", m.sender === "fan" ? "Fan" : m.sender));
      li.append(el("span", "what", m.text || ""));
      if (m.intent) {
        li.append(el("span", "intent small muted",
          m.intent + (m.confidence !== null && m.confidence !== undefined ? " " + pct(m.confidence) : "")));
      }
      ol.append(li);
    }
    box.append(ol);
    sightings.append(box);
  }
  bindTriage(pane, d);
  bindAnnotate(pane, d);
}

// "Add to triage data", for a message staff marked "should have come to a person" (with who)
// or "did not need a person": the operator confirms the label (or none) and the wording.
function bindTriage(pane, d) {
  const form = pane.querySelector("form.triage-form");
  if (!(d.reasons || []).some((r) => TRIAGE_REASONS.includes(r))) return;
  form.hidden = false;
  const f = form.elements;
  const said = (d.staff_triage || []).map((l) => l === "none" ? "did not need a person"
    : "should have come to a person — " + (LABEL_NAMES[l] || l));
  form.querySelector(".triage-said").textContent = said.length ? "Staff said: " + said.join("; ") + "." : "";
  f.label.value = d.triage_label || (d.staff_triage || [])[0] || "none";
  f.text.value = d.triage_label ? d.example_text : d.text;
  form.querySelector(".triage-lang").textContent = "Language: " + (d.language || "the desk's default") +
    ". Goes into data/triage/semantic/reviewed.tsv.";
  const redacted = form.querySelector("[data-action=triage-use-redacted]");
  redacted.disabled = !d.personal_data.length && d.suggested_text === d.text;
  if (d.personal_data.length && !d.triage_label) showPii(form, d.text, d.personal_data,
    "This message seems to contain personal data: use the redacted text, or confirm it is not personal.");
  redacted.addEventListener("click", () => {
    f.text.value = d.suggested_text;
    f.confirm.checked = false;
    form.querySelector(".pii").hidden = true;
    f.text.focus();
  });
  form.addEventListener("submit", (e) => { e.preventDefault(); addToTriage(form, d); });
}

async function addToTriage(form, d) {
  const f = form.elements;
  const error = form.querySelector(".triage-error");
  const status = form.querySelector(".triage-status");
  say(error, "");
  const body = { label: f.label.value, text: f.text.value.trim() };
  if (!body.text) { say(error, "The triage example is empty.", "error"); return; }
  if (f.confirm.checked) body.confirm_no_personal_data = true;
  const submit = form.querySelector("button[type=submit]");
  submit.disabled = true;
  say(status, "Saving…");
  try {
    const item = await call("POST", "/api/v1/review/items/" + d.id + "/triage", body);
    form.querySelector(".pii").hidden = true;
    say(status, "Added “" + item.example_text + "” to the triage data as " + item.triage_label +
        " (" + item.file + "). Run make train-triage to retrain triage with it.", "ok");
    paneMeta(item);
    await loadQueue();
  } catch (e) {
    say(status, "");
    if (e.status === 422 && e.detail && Array.isArray(e.detail.personal_data)) {
      showPii(form, body.text, e.detail.personal_data, e.detail.message);
      f.confirm.focus();
    } else {
      say(error, e.message, "error");
    }
  } finally {
    submit.disabled = false;
  }
}

function bindAnnotate(pane, d) {
  const form = pane.querySelector("form.annotate");
  const f = form.elements;
  f.text.value = d.example_text || d.text;
  if (d.intent) f.intent.value = d.intent;
  // Each fact inserts its placeholder where the cursor is in the English answer.
  pane.querySelector(".facts-hint").replaceChildren(...state.facts.map((name) => {
    const b = el("button", "fact", "{" + name + "}");
    b.type = "button";
    b.dataset.fact = name;
    b.title = "Insert {" + name + "} into the English answer";
    return b;
  }));
  pane.querySelector(".facts-hint").addEventListener("click", (e) => {
    const b = e.target.closest("[data-fact]");
    if (!b) return;
    const area = f.answer_en;
    const at = area.selectionStart ?? area.value.length;
    const end = area.selectionEnd ?? at;
    const token = "{" + b.dataset.fact + "}";
    area.value = area.value.slice(0, at) + token + area.value.slice(end);
    area.focus();
    area.setSelectionRange(at + token.length, at + token.length);
  });
  const redacted = form.querySelector("[data-action=use-redacted]");
  redacted.disabled = !d.personal_data.length && d.suggested_text === d.text;
  if (d.personal_data.length) showPii(form, d.text, d.personal_data,
    "This message seems to contain personal data: use the redacted text, or confirm it is not personal.");

  form.addEventListener("change", (e) => {
    if (e.target.name !== "target") return;
    const isNew = f.target.value === "new";
    form.querySelector(".existing").hidden = isNew;
    form.querySelector(".new-intent").hidden = !isNew;
  });
  redacted.addEventListener("click", () => {
    f.text.value = d.suggested_text;
    f.confirm.checked = false;
    form.querySelector(".pii").hidden = true;
    f.text.focus();
  });
  form.querySelector("[data-action=ignore]").addEventListener("click", async () => {
    const status = form.querySelector(".annotate-status");
    try {
      await call("POST", "/api/v1/review/items/bulk", { ids: [d.id], action: "ignore" });
      say(status, "Ignored.", "ok");
      await loadQueue();
    } catch (e) {
      say(form.querySelector(".annotate-error"), e.message, "error");
    }
  });
  form.addEventListener("submit", (e) => { e.preventDefault(); annotate(form, d); });
}

function showPii(form, text, findings, message) {
  const box = form.querySelector(".pii");
  box.hidden = false;
  box.querySelector(".pii-message").textContent = message;
  box.querySelector(".pii-text").replaceChildren(marked(text, findings));
  const kinds = [...new Set(findings.map((f) => f.kind.replace(/_/g, " ")))];
  box.querySelector(".pii-kinds").textContent = kinds.length ? "Found: " + kinds.join(", ") : "";
}

async function annotate(form, d) {
  const f = form.elements;
  const error = form.querySelector(".annotate-error");
  const status = form.querySelector(".annotate-status");
  say(error, "");
  const body = { text: f.text.value.trim() };
  if (f.target.value === "new") {
    const name = f.new_name.value.trim();
    const en = f.answer_en.value.trim();
    if (!name || !en) { say(error, "A new intent needs a name and an English answer.", "error"); return; }
    body.new_intent = { name, answer_en: en, answer_es: f.answer_es.value.trim() || null };
  } else {
    const intent = f.intent.value.trim();
    if (!intent) { say(error, "Choose an intent (or create a new one).", "error"); return; }
    body.intent = intent;
  }
  if (!body.text) { say(error, "The training example is empty.", "error"); return; }
  if (f.confirm.checked) body.confirm_no_personal_data = true;
  const submit = form.querySelector("button[type=submit]");
  submit.disabled = true;
  say(status, "Saving…");
  try {
    const item = await call("POST", "/api/v1/review/items/" + d.id + "/annotate", body);
    form.querySelector(".pii").hidden = true;
    say(status, "Added “" + item.example_text + "” as an example of " + item.intent +
        ". Train a new model to teach it to the bot.", "ok");
    paneMeta(item);
    if (body.new_intent) await loadIntents();
    await loadQueue();
  } catch (e) {
    say(status, "");
    if (e.status === 422 && e.detail && Array.isArray(e.detail.personal_data)) {
      showPii(form, body.text, e.detail.personal_data, e.detail.message);
      f.confirm.focus();
    } else {
      say(error, e.message, "error");
    }
  } finally {
    submit.disabled = false;
  }
}

function paneMeta(item) {
  const meta = $("detail").querySelector(".d-meta");
  if (meta) {
    meta.textContent = "×" + item.occurrences + " · annotated as " + item.intent +
      (item.annotated_by ? " by " + item.annotated_by : "");
  }
}

// -- training ------------------------------------------------------------------------------------
async function loadJobs() {
  const jobs = await call("GET", "/api/v1/training/jobs");
  $("job-rows").replaceChildren(...jobs.map(jobRow));
  const latest = jobs[0] || null;
  if (latest) showJob(latest);
  if (latest && (latest.status === "running" || latest.status === "queued")) startPolling(latest.id);
  if (!state.evalPinned) {
    const done = jobs.find((j) => j.model_id && j.status === "succeeded");
    if (done && done.model_id !== state.evalModelId) await loadEvaluation(done.model_id);
  }
}

function jobRow(j) {
  const tr = el("tr");
  tr.dataset.job = j.id;
  const model = el("td");
  if (j.model_id) {
    const b = el("button", "linklike", "#" + j.model_id);
    b.type = "button";
    b.dataset.evaluation = j.model_id;
    b.setAttribute("aria-label", "Show the evaluation of model " + j.model_id);
    model.append(b);
  }
  const running = j.status === "running" || j.status === "queued";
  tr.append(cell("#" + j.id), cell(when(j.created_at)), cell(j.started_by),
            statusCell(j.status, running ? j.phase + " " + Math.round(j.progress) + "%" : ""),
            model);
  return tr;
}

function statusCell(status, extra) {
  const td = el("td");
  td.append(el("span", "pill status-" + status, status));
  if (extra) td.append(" ", el("span", "muted small", extra));
  return td;
}

$("job-rows").addEventListener("click", (e) => {
  const b = e.target.closest("[data-evaluation]");
  if (b) { state.evalPinned = true; loadEvaluation(Number(b.dataset.evaluation)).catch(fail); }
});

function showJob(job) {
  state.job = job;
  const listed = document.querySelector('#job-rows tr[data-job="' + job.id + '"]');
  if (listed) listed.replaceWith(jobRow(job));
  $("job").hidden = false;
  $("job-name").textContent = "Job #" + job.id + " by " + job.started_by;
  const pill = $("job-status");
  pill.textContent = job.status;
  pill.className = "pill status-" + job.status;
  const running = job.status === "running" || job.status === "queued";
  $("job-phase").textContent = running ? job.phase + "…" : job.finished_at ? "finished " + when(job.finished_at) : "";
  $("job-progress").value = job.progress;
  $("job-percent").textContent = Math.round(job.progress) + "%";
  $("start-training").disabled = running || state.busy;
  $("job-badge").textContent = running ? "(" + Math.round(job.progress) + "%)" : "";
  const failed = job.status === "failed";
  $("job-failure").hidden = !failed;
  $("job-error").textContent = failed ? job.error || "failed" : "";
  $("job-log").textContent = failed ? job.log_tail || "(no output)" : "";
}

function startPolling(jobId) {
  if (state.poll) return;
  const tick = async () => {
    try {
      const job = await call("GET", "/api/v1/training/jobs/" + jobId);
      showJob(job);
      if (job.status === "running" || job.status === "queued") {
        state.poll = setTimeout(tick, POLL_MS);
        return;
      }
      state.poll = null;
      if (job.status === "succeeded") {
        say($("training-status"), "Training finished: model #" + job.model_id +
            " is scored — see the evaluation below.", "ok");
        state.evalPinned = false;
        await loadEvaluation(job.model_id);
      } else {
        say($("training-status"), "Training failed: " + (job.error || "see the log"), "error");
      }
      await Promise.all([loadJobs(), loadModels()]);
    } catch (e) {
      state.poll = setTimeout(tick, POLL_MS * 3);  // a blip: keep following the job
      say($("training-status"), "Lost contact for a moment: " + e.message, "error");
    }
  };
  state.poll = setTimeout(tick, POLL_MS);
}

$("start-training").addEventListener("click", async () => {
  const button = $("start-training");
  button.disabled = true;
  say($("training-status"), "Starting…");
  try {
    const job = await call("POST", "/api/v1/training/jobs");
    showJob(job);
    say($("training-status"), "Training job #" + job.id + " started.");
    startPolling(job.id);
    loadJobs().catch(fail);
  } catch (e) {
    say($("training-status"), e.message, "error");
    button.disabled = false;
  }
});

async function loadChanges() {
  const rows = await call("GET", "/api/v1/review/changes");
  const labels = { add_example: "added example", remove_example: "removed example",
                   new_intent: "new intent", add_triage_example: "added triage example",
                   remove_triage_example: "removed triage example" };
  $("change-rows").replaceChildren(...rows.map((c) => {
    const tr = el("tr");
    tr.append(cell(when(c.at)), cell(c.by), cell(labels[c.action] || c.action), cell(c.intent),
              cell(c.example_text || ""));
    return tr;
  }));
}

// -- evaluation ----------------------------------------------------------------------------------
async function loadEvaluation(modelId) {
  state.evalModelId = modelId;
  try {
    state.evaluation = await call("GET", "/api/v1/training/models/" + modelId + "/evaluation");
  } catch (e) {
    state.evaluation = null;
    $("eval-body").hidden = true;
    $("eval-empty").hidden = false;
    $("eval-empty").textContent = "Model #" + modelId + ": " + e.message;
    syncActivateButton();
    return;
  }
  renderEvaluation(state.evaluation);
}

function figures(metrics) {
  const m = metrics || {};
  const conv = m.conversations;
  return {
    accuracy: m.accuracy, macro_f1: m.macro_f1, oos: m.oos_caught,
    conv_passed: conv ? conv.stories - conv.failed : null, conv_total: conv ? conv.stories : null,
    conv_failed: conv ? conv.failed : null,
    reviewed_correct: m.reviewed_correct, reviewed_total: m.reviewed_total,
  };
}

function renderEvaluation(ev) {
  const model = ev.model;
  $("eval-empty").hidden = true;
  $("eval-body").hidden = false;
  $("eval-title").textContent = "Evaluation of model #" + model.id;
  $("eval-model").textContent = model.name + " · " + model.status + " · made by " +
    model.created_by + " " + when(model.created_at) +
    (model.compared_with_id ? " · compared with model #" + model.compared_with_id + " (then active)"
                            : " · no active model to compare with");

  const gate = model.gate || { passed: false, reasons: ["not evaluated"], checks: [] };
  const g = $("gate");
  g.className = "gate " + (gate.passed ? "passed" : "failed");
  const head = el("p", "gate-verdict", gate.passed
    ? "Gate passed: this model may replace the active one."
    : "Gate failed: this model may not be activated.");
  g.replaceChildren(head);
  if (gate.reasons && gate.reasons.length) {
    const ul = el("ul", "gate-reasons");
    for (const r of gate.reasons) ul.append(el("li", null, r));
    g.append(ul);
  }
  if (gate.checks && gate.checks.length) {
    const det = el("details", "gate-checks");
    det.append(el("summary", "small", "What was checked"));
    const ul = el("ul", "small");
    for (const c of gate.checks) ul.append(el("li", null, c));
    det.append(ul);
    g.append(det);
  }

  const cand = figures(model.metrics);
  const act = model.metrics && model.metrics.active ? figures(model.metrics.active) : null;
  const rows = [
    ["Intent accuracy", "accuracy", pct, 1],
    ["Macro-F1", "macro_f1", dec, 1],
    ["Out-of-scope caught", "oos", pct, 1],
  ];
  const tbody = $("summary-table").querySelector("tbody");
  tbody.replaceChildren();
  for (const [label, key, fmt, better] of rows) {
    const a = act ? act[key] : null;
    const c = cand[key];
    const delta = a !== null && a !== undefined && c !== null && c !== undefined ? c - a : null;
    tbody.append(compareRow(label, fmt(a), fmt(c), delta, better, key === "macro_f1" ? 3 : 3));
  }
  const convText = (f) => (f && f.conv_total !== null ? f.conv_passed + " / " + f.conv_total + " pass" : "–");
  const convDelta = act && act.conv_failed !== null && cand.conv_failed !== null
    ? act.conv_failed - cand.conv_failed : null;  // fewer failures is better
  tbody.append(compareRow("Conversation tests", convText(act), convText(cand), convDelta, 1, 0));
  const revText = (f) => (f && f.reviewed_total ? f.reviewed_correct + " / " + f.reviewed_total : "–");
  const revDelta = act && act.reviewed_total ? cand.reviewed_correct - act.reviewed_correct : null;
  tbody.append(compareRow("Reviewed messages right", revText(act), revText(cand), revDelta, 1, 0));

  renderLanguages(ev);
  renderReviewed(ev);
  renderIntents(ev, model);
  renderPlots(ev, model);
  syncActivateButton();
}

function compareRow(label, a, c, delta, better, digits) {
  const tr = el("tr");
  tr.append(el("th", null, label));
  tr.lastChild.scope = "row";
  const d = cell(delta === null ? "" : signed(delta, digits), "num delta");
  if (delta !== null && Math.abs(delta) > 1e-9) d.classList.add(delta * better < 0 ? "drop" : "gain");
  tr.append(cell(a, "num"), cell(c, "num"), d);
  return tr;
}

// Accuracy (and macro-F1) on each language's held-out file, from the comparison
// (scripts/compare_models.py `per_language`); read-only.
function renderLanguages(ev) {
  const rows = (ev.comparison && ev.comparison.per_language) || [];
  const figure = (accuracy, f1) => {
    const td = cell(pct(accuracy), "num");
    if (f1 !== null && f1 !== undefined) td.append(el("span", "small muted", " · F1 " + dec(f1)));
    return td;
  };
  $("language-table").hidden = rows.length === 0;
  $("language-empty").hidden = rows.length > 0;
  $("language-empty").textContent = ev.comparison
    ? "This comparison has no per-language figures (scored before languages were)."
    : "No active model to compare with.";
  $("language-table").querySelector("tbody").replaceChildren(...rows.map((r) => {
    const tr = el("tr");
    tr.dataset.language = r.language;
    const name = el("th", null, (LANGUAGE_NAMES[r.language] || r.language) +
      (r.examples ? " (" + r.examples + ")" : ""));
    name.scope = "row";
    const delta = r.accuracy_delta;
    const d = cell(delta === null || delta === undefined ? "" : signed(delta, 3), "num delta");
    if (delta !== null && delta !== undefined && Math.abs(delta) > 1e-9) {
      d.classList.add(delta < 0 ? "drop" : "gain");
    }
    tr.append(name, figure(r.active_accuracy, r.active_macro_f1),
              figure(r.candidate_accuracy, r.candidate_macro_f1), d);
    return tr;
  }));
}

function renderReviewed(ev) {
  const comp = ev.comparison;
  const newly = new Set(comp ? comp.newly_correct_messages : []);
  const still = new Set(comp ? comp.still_wrong_messages : []);
  const tbody = $("reviewed-table").querySelector("tbody");
  tbody.replaceChildren(...ev.messages.map((m) => {
    const tr = el("tr");
    let verdict = comp ? "no change" : "–";
    let cls = "muted";
    if (newly.has(m.id)) { verdict = "now right ✓"; cls = "gain"; }
    if (still.has(m.id)) { verdict = "still wrong ✗"; cls = "drop"; }
    tr.dataset.message = m.id;
    tr.append(cell(m.text), cell(m.expected), cell(verdict, cls));
    return tr;
  }));
  $("reviewed-summary").textContent = ev.messages.length
    ? (comp ? newly.size + " of " + ev.messages.length +
              " reviewed messages are newly answered right by the candidate." : "")
    : "No annotated messages were scored.";
}

function renderIntents(ev, model) {
  let rows;
  if (ev.comparison) {
    rows = ev.comparison.per_intent.map((r) => ({ ...r }));
  } else {
    const c = (model.metrics && model.metrics.per_intent_f1) || {};
    const a = (model.metrics && model.metrics.active && model.metrics.active.per_intent_f1) || {};
    rows = [...new Set([...Object.keys(c), ...Object.keys(a)])].sort().map((intent) => {
      const af = intent in a ? a[intent] : null;
      const cf = intent in c ? c[intent] : null;
      return { intent, active_f1: af, candidate_f1: cf,
               delta: af !== null && cf !== null ? cf - af : null };
    });
  }
  // Falls first (what an operator must look at), then by name.
  rows.sort((x, y) => (x.delta === null) - (y.delta === null) || (x.delta || 0) - (y.delta || 0) ||
                      x.intent.localeCompare(y.intent));
  // The gate's per-intent floor, as its checks word it (api/registry/gate.py).
  const check = ((model.gate && model.gate.checks) || []).map((c) => /intent F1 >= ([\d.]+)/.exec(c))
    .find(Boolean);
  const floor = check ? Number(check[1]) : 0.8;
  let unchanged = 0;
  $("intent-table").querySelector("tbody").replaceChildren(...rows.map((r) => {
    const tr = el("tr");
    const d = cell(r.delta === null ? "" : signed(r.delta, 2), "num delta");
    if (r.delta !== null && r.delta < -1e-9) { tr.classList.add("fell"); d.classList.add("drop"); }
    if (r.delta !== null && r.delta > 1e-9) d.classList.add("gain");
    // Unchanged intents above the gate's floor are folded away (the checkbox shows them).
    if (r.delta !== null && Math.abs(r.delta) <= 1e-9 && r.candidate_f1 >= floor) {
      tr.classList.add("same");
      unchanged += 1;
    }
    const name = el("th", null);
    name.scope = "row";
    name.append(el("code", null, r.intent));
    tr.append(name, cell(dec(r.active_f1), "num"), cell(dec(r.candidate_f1), "num"), d);
    return tr;
  }));
  $("unchanged-label").textContent = "Show the " + unchanged + " unchanged intents";
  syncUnchanged();
}

function syncUnchanged() {
  $("intent-table").classList.toggle("fold", !$("show-unchanged").checked);
}
$("show-unchanged").addEventListener("change", syncUnchanged);

function renderPlots(ev, model) {
  const figure = (name) => {
    const fig = el("figure", "plot");
    const src = "/api/v1/training/models/" + model.id + "/plots/" +
      name.split("/").map(encodeURIComponent).join("/");
    const a = el("a");
    a.href = src;
    a.target = "_blank";
    a.rel = "noopener";
    const img = el("img");
    img.src = src;
    img.alt = PLOT_NAMES[name] || name;
    a.append(img);
    fig.append(a, el("figcaption", "small muted", PLOT_NAMES[name] || name));
    return fig;
  };
  const confusion = ev.plots.filter((n) => n.endsWith("confusion.png"));
  $("plots").replaceChildren(...ev.plots.filter((n) => !confusion.includes(n)).map(figure));
  $("confusion-plots").replaceChildren(...confusion.map(figure));
  $("confusion").hidden = confusion.length === 0;
}

function activationBlock(model) {
  // Why a model cannot be activated now ("" when it can).
  const activeId = state.models ? state.models.active_id : null;
  if (model.status === "active") return "this model is already serving";
  if (model.status === "rejected") return "it failed the gate";
  if (!model.file_present) return "its file is gone";
  if (model.status === "candidate") {
    if (!model.gate) return "it has not been evaluated";
    if (!model.gate.passed) return "it failed the gate";
    if (activeId !== null && model.compared_with_id !== activeId) {
      return "it was compared with another model than the active one; train again";
    }
  }
  return "";
}

function syncActivateButton() {
  const b = $("eval-activate");
  const ev = state.evaluation;
  const why = ev ? activationBlock(ev.model) : "nothing to activate";
  b.disabled = state.busy || Boolean(why);
  b.title = why ? "Cannot activate: " + why : "Serve this model in the running bot";
  b.dataset.model = ev ? ev.model.id : "";
}

$("eval-activate").addEventListener("click", () => {
  const id = Number($("eval-activate").dataset.model);
  if (id) activate(id, $("eval-status"));
});

// -- models --------------------------------------------------------------------------------------
async function loadModels() {
  state.models = await call("GET", "/api/v1/models");
  renderModels(state.models);
  syncActivateButton();
}

function renderModels(data) {
  const active = data.models.find((m) => m.id === data.active_id);
  $("active-model").textContent = active ? "Serving: #" + active.id + " " + active.name : "No active model recorded";
  const target = rollbackTarget(data);
  const rb = $("rollback");
  rb.disabled = state.busy || !target;
  rb.title = target ? "Serve #" + target.id + " " + target.name + " again" : "No earlier model to roll back to";
  rb.textContent = target ? "Roll back to #" + target.id : "Roll back";
  // What each Rasa process serves (RASA_URLS); one that missed a model says why, and gets the
  // active one when it answers again.
  $("rasa-processes").replaceChildren(...(data.processes || []).map((p) => {
    const li = el("li", "rasa-process");
    li.dataset.url = p.url;
    const serving = p.model_id ? "#" + p.model_id + " " + (p.model || "") : "no model confirmed yet";
    li.append(el("code", null, p.url), " ",
              el("span", "pill " + (p.serves_active ? "gate-pass" : "gate-fail"),
                 p.serves_active ? "serves the active model" : "behind"),
              " ", el("span", "muted", serving + (p.checked_at ? " · checked " + when(p.checked_at) : "")));
    if (p.error) li.append(" ", el("span", "muted", "— " + p.error));
    return li;
  }));
  $("model-rows").replaceChildren(...data.models.map((m) => {
    const tr = el("tr", "model-row status-row-" + m.status);
    tr.dataset.model = m.id;
    // A model never scored itself (e.g. the first baseline) was scored as the active side of
    // a later candidate's comparison: show those figures.
    const scoredBy = m.metrics ? null
      : data.models.find((o) => o.compared_with_id === m.id && o.metrics && o.metrics.active);
    const f = figures(m.metrics || (scoredBy && scoredBy.metrics.active));
    const name = el("th", null);
    name.scope = "row";
    name.append(el("span", null, "#" + m.id + " "), el("span", "small", m.name));
    if (!m.file_present) name.append(" ", el("span", "badge drop", "file missing"));
    const gate = el("td", "small");
    if (m.gate) {
      gate.append(el("span", "pill " + (m.gate.passed ? "gate-pass" : "gate-fail"), m.gate.passed ? "passed" : "failed"));
      if (!m.gate.passed && m.gate.reasons.length) gate.title = m.gate.reasons.join("\n");
    } else {
      gate.append(el("span", "muted", scoredBy ? "scored next to #" + scoredBy.id : "not scored"));
    }
    const served = cell(m.activated_at ? when(m.activated_at) + " by " + m.activated_by : "", "small");
    const actionCell = el("td");
    const actions = el("div", "row-actions");
    actionCell.append(actions);
    if (m.metrics) {
      const b = el("button", "small", "Evaluation");
      b.type = "button";
      b.dataset.evaluation = m.id;
      actions.append(b);
    }
    const why = activationBlock(m);
    if (!why) {
      const b = el("button", "small primary", "Activate");
      b.type = "button";
      b.dataset.activate = m.id;
      b.disabled = state.busy;
      b.setAttribute("aria-label", "Activate model " + m.id);
      actions.append(b);
    }
    const conv = f.conv_total !== null ? f.conv_passed + "/" + f.conv_total : "–";
    tr.append(name, statusCell(m.status), cell(m.source + " · " + m.created_by + " · " + when(m.created_at), "small"),
              cell(pct(f.accuracy), "num"), cell(dec(f.macro_f1), "num"), cell(pct(f.oos), "num"),
              cell(conv, "num"), gate, served, actionCell);
    return tr;
  }));
  $("history").replaceChildren(...data.history.map((h) => {
    const li = el("li");
    const detail = h.detail || {};
    let extra = "";
    if (h.action === "evaluated") extra = detail.passed ? "gate passed" : "gate failed" +
      (detail.reasons && detail.reasons.length ? ": " + detail.reasons.join("; ") : "");
    if ((h.action === "activated" || h.action === "rolled_back") && detail.previous_model_id) {
      extra = "replacing #" + detail.previous_model_id;
    }
    li.append(el("time", "muted small", when(h.at)), " ",
              el("strong", null, (h.action || "").replace(/_/g, " ")), " ",
              el("span", null, "#" + h.model_id + " " + h.model), " ",
              el("span", "muted", "by " + h.by + (extra ? " · " + extra : "")));
    return li;
  }));
}

function rollbackTarget(data) {
  // The registry's rule (api/registry/service.py rollback_target): the retired model served
  // most recently.
  const served = data.models.filter((m) => m.status === "retired" && m.activated_at);
  served.sort((a, b) => Date.parse(b.activated_at) - Date.parse(a.activated_at) || b.id - a.id);
  return served[0] || null;
}

$("model-rows").addEventListener("click", (e) => {
  const ev = e.target.closest("[data-evaluation]");
  if (ev) {
    state.evalPinned = true;
    showTab("training");
    loadEvaluation(Number(ev.dataset.evaluation)).then(() => $("evaluation").scrollIntoView()).catch(fail);
    return;
  }
  const act = e.target.closest("[data-activate]");
  if (act) activate(Number(act.dataset.activate), $("models-status"));
});

$("rollback").addEventListener("click", () => rollback());

function setBusy(on) {
  state.busy = on;
  root.setAttribute("aria-busy", on ? "true" : "false");
  document.body.classList.toggle("busy", on);
  document.querySelectorAll("[data-activate]").forEach((b) => { b.disabled = on; });
  $("rollback").disabled = on || !(state.models && rollbackTarget(state.models));
  $("start-training").disabled = on || Boolean(state.job && state.job.status === "running");
  syncActivateButton();
}

async function swap(path, body, statusNode, pending, done) {
  if (state.busy) return;
  setBusy(true);
  const nodes = [statusNode, $("models-status")].filter((n, i, a) => a.indexOf(n) === i);
  nodes.forEach((n) => say(n, pending));
  const started = Date.now();
  const tick = setInterval(() => {
    const s = Math.round((Date.now() - started) / 1000);
    nodes.forEach((n) => say(n, pending + " (" + s + " s)"));
  }, 1000);
  try {
    const row = await call("POST", path, body);
    clearInterval(tick);
    nodes.forEach((n) => say(n, done(row), "ok"));
  } catch (e) {
    clearInterval(tick);
    const msg = e.status === 502 ? "The bot could not load the model; it keeps the one it had. " + e.message
                                 : e.message;
    nodes.forEach((n) => say(n, msg, "error"));
  } finally {
    setBusy(false);
    await loadModels().catch(fail);
    if (state.evalModelId) await loadEvaluation(state.evalModelId).catch(fail);
  }
}

function activate(id, statusNode) {
  return swap("/api/v1/models/" + id + "/activate", undefined, statusNode,
              "Loading model #" + id + " into the bot… this can take a minute",
              (row) => "Model #" + row.id + " is now serving (activated by " + row.activated_by + ")." + behind(row));
}

function rollback() {
  const target = state.models && rollbackTarget(state.models);
  return swap("/api/v1/models/rollback", {}, $("models-status"),
              "Rolling back" + (target ? " to model #" + target.id : "") + "… this can take a minute",
              (row) => "Rolled back: model #" + row.id + " " + row.name + " is serving again." + behind(row));
}

function behind(row) {
  const missed = (row.processes || []).filter((p) => !p.serves_active);
  return missed.length ? " " + missed.length + " of " + row.processes.length +
    " Rasa processes did not load it yet (see Rasa processes); they get it when they answer again." : "";
}

// -- start ---------------------------------------------------------------------------------------
async function start() {
  try {
    await Promise.all([loadIntents(), loadModels()]);
  } catch (e) {
    fail(e);
  }
  showTab((location.hash || "#review").slice(1));
  // Follow a job that is already running whichever tab is open.
  if (!location.hash.includes("training")) loadJobs().catch(fail);
}

start();
