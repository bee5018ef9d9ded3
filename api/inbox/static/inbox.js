// The staff inbox: plain module, no dependencies. Every text from the server is set with
// textContent (never innerHTML): fan text is untrusted.
const csrf = document.querySelector('meta[name="csrf-token"]').content;
const me = document.querySelector(".me").dataset;
const state = { open: null, ctx: null, staff: [], timer: null, fetchedAt: Date.now() };
// Triage labels' human names ("medical emergency"), from the page's "should have come to a
// person" choice.
const LABEL_NAMES = Object.fromEntries([...document.getElementById("pane-template").content
  .querySelectorAll(".person-flag-form option")].filter((o) => o.value).map((o) => [o.value, o.textContent]));

async function call(method, url, body) {
  const opts = { method, headers: { "X-CSRF-Token": csrf }, credentials: "same-origin" };
  if (body !== undefined) {
    opts.headers["Content-Type"] = "application/json";
    opts.body = JSON.stringify(body);
  }
  const r = await fetch(url, opts);
  if (r.status === 401) { location.href = "/inbox/login"; throw new Error("signed out"); }
  const data = r.status === 204 ? null : await r.json().catch(() => null);
  if (!r.ok) {
    const detail = data && data.detail;
    throw new Error(typeof detail === "string" ? detail : r.status === 422 ? "invalid input" : r.statusText);
  }
  return data;
}

function el(tag, cls, text) {
  const e = document.createElement(tag);
  if (cls) e.className = cls;
  if (text !== undefined && text !== null) e.textContent = String(text);
  return e;
}

function span(seconds) {
  const s = Math.max(0, Math.round(seconds));
  if (s < 60) return s + " s";
  const m = Math.floor(s / 60);
  return m < 60 ? m + " min" : Math.floor(m / 60) + " h " + (m % 60) + " min";
}

// How long the fan has waited since their first message no person answered (the server's
// waiting_s, moved on by the time since the lists were fetched: no trust in this machine's
// clock), against the topic's first-response target.
function waitText(waitedAt, targetMinutes) {
  if (waitedAt === null) return { text: "", cls: "" };
  const waited = waitedAt.waited + (Date.now() - waitedAt.at) / 1000;
  const over = waited - targetMinutes * 60;
  if (over > 0) return { text: "waiting " + span(waited) + " · overdue by " + span(over), cls: "late" };
  return { text: "waiting " + span(waited) + " · " + span(-over) + " left", cls: over > -120 ? "soon" : "ok" };
}

function timerText(c) {
  if (c.waiting_s === null || c.waiting_s === undefined) {
    return c.first_response_at ? { text: "answered", cls: "ok" } : { text: "", cls: "" };
  }
  return waitText({ waited: c.waiting_s, at: state.fetchedAt }, c.target_minutes);
}

function renderList(id, rows) {
  const ul = document.getElementById("list-" + id);
  if (!ul) return;
  document.getElementById("count-" + id).textContent = rows.length ? "(" + rows.length + ")" : "";
  ul.replaceChildren(...rows.map((c) => {
    const li = el("li", "conv prio-" + (c.priority || "normal"));
    li.dataset.id = c.id;
    if (state.open === c.id) li.classList.add("selected");
    const a = el("a");
    a.href = "#c" + c.id;
    const top = el("div", "row");
    top.append(el("span", "badge prio-" + (c.priority || "normal"), c.priority || "normal"),
               el("span", "topic", c.topic || "general"), el("span", "fan muted", c.fan));
    if (c.language) top.append(el("span", "lang", c.language));
    const t = timerText(c);
    const timer = el("span", "timer " + t.cls, t.text);
    timer.dataset.waited = c.waiting_s ?? "";
    timer.dataset.target = c.target_minutes;
    top.append(timer);
    a.append(top, el("div", "last", c.last_text));
    if (c.assignee && id === "all") a.append(el("div", "who muted", "with " + c.assignee.name));
    li.append(a);
    return li;
  }));
}

async function refreshLists() {
  const data = await call("GET", "/api/v1/inbox");
  state.fetchedAt = Date.now();
  renderList("mine", data.mine);
  renderList("queue", data.queue);
  renderList("all", data.all);
  urgent.showAll(data.urgent_unassigned || []);
}

function tickTimers() {
  document.querySelectorAll(".timer, .urgent-wait").forEach((t) => {
    if (t.dataset.waited === "") return;
    const r = waitText({ waited: Number(t.dataset.waited), at: state.fetchedAt }, Number(t.dataset.target));
    t.textContent = r.text;
    if (t.classList.contains("timer")) t.className = "timer " + r.cls;
  });
}

// Supervisors: one alerts banner — the flood line (alert.flood) and every urgent thread nobody
// has, from alert.urgent_unassigned and the lists, until someone takes it. An optional beep
// (Web Audio, off by default; the choice is kept in this browser).
const urgent = {
  box: document.getElementById("supervisor-alerts"),
  list: document.getElementById("urgent-banner"),
  flood: document.getElementById("flood-banner"),
  sound: document.getElementById("alert-sound"),
  rows: new Map(),  // conversation id -> list row (or the alert's own fields until the lists load)
  audio: null,
  lastBeep: 0,
  soundOn() { return localStorage.getItem("inbox.alertSound") === "on"; },
  showAll(rows) {
    if (!this.list) return;
    this.rows = new Map(rows.map((r) => [r.id, r]));
    this.render();
  },
  add(id, topic) {
    if (!this.list) return;
    if (!this.rows.has(id)) this.rows.set(id, { id, topic, waiting_s: null });
    this.render();
    this.beep();
  },
  taken(id) {
    if (this.rows.delete(id)) this.render();
  },
  render() {
    if (!this.list) return;
    this.list.replaceChildren(...[...this.rows.values()].map((r) => {
      const li = el("li", "urgent-alert");
      li.dataset.id = r.id;
      const a = el("a", "", "Urgent: " + (r.fan || "conversation " + r.id) + " — " + (r.topic || "general"));
      a.href = "#c" + r.id;
      const wait = el("span", "urgent-wait");
      wait.dataset.waited = r.waiting_s ?? "";
      wait.dataset.target = r.target_minutes ?? 0;
      if (r.waiting_s !== null && r.waiting_s !== undefined) {
        wait.textContent = waitText({ waited: r.waiting_s, at: state.fetchedAt }, r.target_minutes).text;
      }
      li.append(a, el("span", "", " · nobody has it · "), wait);
      return li;
    }));
    this.box.hidden = this.rows.size === 0 && this.flood.hidden;
  },
  beep() {
    if (!this.soundOn() || Date.now() - this.lastBeep < 2000) return;
    this.lastBeep = Date.now();
    try {
      this.audio = this.audio || new AudioContext();
      const osc = this.audio.createOscillator();
      const gain = this.audio.createGain();
      osc.type = "sine";
      osc.frequency.value = 880;
      gain.gain.setValueAtTime(0.2, this.audio.currentTime);
      gain.gain.exponentialRampToValueAtTime(0.001, this.audio.currentTime + 0.35);
      osc.connect(gain).connect(this.audio.destination);
      osc.start();
      osc.stop(this.audio.currentTime + 0.35);
    } catch (e) { /* no audio device: the banner is enough */ }
  },
  showSound() {
    if (!this.sound) return;
    const on = this.soundOn();
    this.sound.textContent = "Alert sound: " + (on ? "on" : "off");
    this.sound.setAttribute("aria-pressed", on ? "true" : "false");
  },
};

if (urgent.sound) {
  urgent.showSound();
  urgent.sound.addEventListener("click", () => {
    localStorage.setItem("inbox.alertSound", urgent.soundOn() ? "off" : "on");
    urgent.showSound();
    if (urgent.soundOn()) { urgent.lastBeep = 0; urgent.beep(); }  // a click may start audio
  });
}
if (urgent.list) {
  urgent.list.addEventListener("click", (e) => {
    const li = e.target.closest(".urgent-alert");
    if (!li) return;
    e.preventDefault();
    history.replaceState(null, "", "#c" + li.dataset.id);
    openConversation(Number(li.dataset.id));
  });
}

function windowText(w) {
  if (!w) return "Not on Messenger (no window).";
  const h = (s) => (s / 3600).toFixed(1) + " h";
  if (w.response_s > 0) return "Standard reply: " + h(w.response_s) + " left (human agent tag: " + h(w.human_agent_s) + ").";
  if (w.human_agent_s > 0) return "24 h passed: HUMAN_AGENT tag, " + h(w.human_agent_s) + " left.";
  return "Closed: no reply may be sent.";
}

function entry(m) {
  const li = el("li", "msg " + m.kind + " from-" + m.sender_type);
  li.dataset.id = m.id;
  const head = el("div", "msg-head");
  head.append(el("span", "sender", m.sender), el("time", "muted", new Date(m.created_at).toLocaleTimeString()));
  if (m.language) {
    const lang = el("span", "lang", m.language);
    lang.title = "language decided for this message";
    head.append(lang);
  }
  li.append(head, el("div", "msg-text", m.text));
  if (m.undelivered) li.append(el("div", "msg-undelivered", "not delivered — " + m.undelivered));
  if (m.kind === "incoming" && state.ctx && state.ctx.may_act) {
    const flags = m.flags || {};
    const row = el("div", "flags");
    const b = el("button", "flag", m.flagged ? "flagged" : "Flag for operators");
    b.disabled = m.flagged;
    b.dataset.message = m.id;
    const missed = "needs_person" in flags;
    const person = el("button", "flag", missed
      ? "should have come to a person: " + (LABEL_NAMES[flags.needs_person] || flags.needs_person)
      : "This should have come to a person…");
    person.disabled = missed;
    person.dataset.personFlag = m.id;
    const unneeded = "no_person_needed" in flags;
    const none = el("button", "flag", unneeded ? "marked: did not need a person" : "This did not need a person");
    none.disabled = unneeded;
    none.dataset.noPerson = m.id;
    row.append(b, person, none);
    li.append(row);
  }
  return li;
}

// The fan's answer to the survey sent when a person resolved the thread (api/csat).
function csatText(csat) {
  if (!csat) return "not asked";
  if (csat.score === null) return "asked, no answer";
  return csat.score + " / 5" + (csat.comment ? " — “" + csat.comment + "”" : "");
}

function renderPane(ctx) {
  const pane = document.getElementById("pane");
  const fresh = !pane.querySelector(".composer") || pane.dataset.id !== String(ctx.id);
  if (fresh) {
    pane.replaceChildren(document.getElementById("pane-template").content.cloneNode(true));
    pane.dataset.id = ctx.id;
    bindPane(pane);
  }
  pane.querySelector(".c-title").textContent = ctx.fan + " — " + (ctx.topic || "general") + " (" + (ctx.priority || "normal") + ")";
  pane.querySelector(".c-meta").textContent = "Channel: " + ctx.channel + " · language: " + (ctx.language || "?") +
    " · status: " + ctx.status + (ctx.assignee ? " · with " + ctx.assignee.name : "");
  pane.querySelector(".c-reasons").textContent = ctx.reasons.length ? "Why: " + ctx.reasons.join("; ") : "";
  const triage = pane.querySelector(".triage");
  triage.replaceChildren(...ctx.reasons.map((r) => el("li", "reason", r)),
                         ...(ctx.triggers.length ? [el("li", "muted", "triggers: " + ctx.triggers.join(", "))] : []));
  pane.querySelector(".window").textContent = windowText(ctx.messenger_window);
  pane.querySelector(".csat").textContent = csatText(ctx.csat);
  pane.querySelector(".earlier").replaceChildren(...(ctx.earlier.length ? ctx.earlier.map((e) =>
    el("li", "", "#" + e.id + " " + (e.topic || "bot only") + " · " + e.status + (e.helped_by ? " · helped by " + e.helped_by : ""))) : [el("li", "muted", "none")]));
  pane.querySelector(".lost").replaceChildren(...(ctx.lost_property.length ? ctx.lost_property.map((r) =>
    el("li", "", (r.item || "item") + " — " + (r.when || "") + " (" + r.status + ")")) : [el("li", "muted", "none")]));
  pane.querySelector(".notes").replaceChildren(...ctx.notes.map((n) => {
    const li = el("li", "note");
    li.append(el("span", "sender", n.author || "staff"), el("div", "", n.text));
    return li;
  }));
  const list = pane.querySelector(".transcript");
  const atBottom = list.scrollHeight - list.scrollTop - list.clientHeight < 40;
  list.replaceChildren(...ctx.transcript.map(entry));
  if (fresh || atBottom) list.scrollTop = list.scrollHeight;
  const act = ctx.may_act && (ctx.status === "assigned" || ctx.status === "queued");
  pane.querySelector('[data-action="take"]').hidden = !ctx.may_take;
  pane.querySelector('[data-action="handback"]').hidden = !(ctx.may_act && ctx.status === "assigned");
  pane.querySelector('[data-action="resolve"]').hidden = !act;
  pane.querySelector('[data-action="transfer"]').hidden = !act;
  if (!act) pane.querySelector(".transfer-form").hidden = true;
  if (!ctx.may_act) pane.querySelector(".person-flag-form").hidden = true;
  pane.querySelector(".composer").hidden = !act;
  pane.querySelector(".note-form").hidden = !ctx.may_act;
  if (fresh) fillTransferTo(pane);
}

function fillTransferTo(pane) {
  const sel = pane.querySelector(".transfer-to");
  if (!sel) return;
  const keep = sel.value;
  sel.replaceChildren(...state.staff.filter((s) => s.handle !== me.handle).map((s) => {
    const o = el("option", "", s.name + " · " + s.title + " (" + s.presence + ")");
    o.value = s.handle;
    return o;
  }));
  if (keep) sel.value = keep;
}

async function openConversation(id) {
  state.open = id;
  document.querySelectorAll(".conv").forEach((li) => li.classList.toggle("selected", li.dataset.id === String(id)));
  try {
    state.ctx = await call("GET", "/api/v1/conversations/" + id + "/context");
    renderPane(state.ctx);
    loadCanned(id);
  } catch (e) {
    document.getElementById("pane").replaceChildren(el("p", "error", e.message));
  }
}

async function reloadOpen() {
  if (state.open === null) return;
  try {
    state.ctx = await call("GET", "/api/v1/conversations/" + state.open + "/context");
    renderPane(state.ctx);
  } catch (e) { say(e.message); }
}

async function loadCanned(id) {
  const rows = await call("GET", "/api/v1/canned?conversation_id=" + id);
  const sel = document.querySelector("#pane .canned");
  if (!sel) return;
  sel.replaceChildren(el("option", "", "Canned…"), ...rows.map((r) => {
    const o = el("option", "", "/" + r.shortcut);
    o.value = r.filled;
    return o;
  }));
  sel.firstChild.value = "";
}

function say(text) {
  const s = document.querySelector("#pane .status");
  if (s) s.textContent = text;
}

async function act(fn, done) {
  try { await fn(); if (done) say(done); } catch (e) { say("Refused: " + e.message); }
  await Promise.all([refreshLists(), reloadOpen()]);
}

function bindPane(pane) {
  const id = () => state.open;
  const text = pane.querySelector(".composer textarea");
  const send = () => {
    const value = text.value.trim();
    if (!value) return;
    text.value = "";
    act(() => call("POST", "/api/v1/conversations/" + id() + "/messages", { text: value }), "Sent.");
  };
  pane.querySelector(".composer").addEventListener("submit", (e) => { e.preventDefault(); send(); });
  text.addEventListener("keydown", (e) => {
    if (e.key === "Enter" && !e.shiftKey && !e.isComposing) { e.preventDefault(); send(); }
  });
  pane.querySelector(".canned").addEventListener("change", (e) => {
    if (e.target.value) { text.value = e.target.value; text.focus(); e.target.selectedIndex = 0; }
  });
  pane.querySelector(".note-form").addEventListener("submit", (e) => {
    e.preventDefault();
    const area = e.target.querySelector("textarea");
    const value = area.value.trim();
    if (!value) return;
    area.value = "";
    act(() => call("POST", "/api/v1/conversations/" + id() + "/notes", { text: value }), "Note added.");
  });
  pane.addEventListener("click", (e) => {
    const b = e.target.closest("button");
    if (!b) return;
    const flagUrl = (mid) => "/api/v1/conversations/" + id() + "/messages/" + mid + "/flag";
    if (b.dataset.message) {
      act(() => call("POST", flagUrl(b.dataset.message), {}), "Flagged for the operators.");
    } else if (b.dataset.personFlag) {
      // "This should have come to a person": a small form asks who (no window.prompt).
      const form = pane.querySelector(".person-flag-form");
      const msg = state.ctx.transcript.find((m) => String(m.id) === b.dataset.personFlag);
      form.elements.message.value = b.dataset.personFlag;
      form.querySelector(".person-flag-text").textContent = msg ? msg.text : "";
      form.hidden = false;
      form.elements.label.focus();
    } else if (b.dataset.action === "person-flag-cancel") {
      const form = pane.querySelector(".person-flag-form");
      form.reset();
      form.hidden = true;
    } else if (b.dataset.noPerson) {
      act(() => call("POST", flagUrl(b.dataset.noPerson), { kind: "no_person_needed" }),
          "Told the operators: this did not need a person.");
    } else if (b.dataset.action === "take") {
      act(() => call("POST", "/api/v1/conversations/" + id() + "/take"), "It's yours.");
    } else if (b.dataset.action === "handback") {
      act(() => call("POST", "/api/v1/conversations/" + id() + "/handback"), "Handed back to the bot.");
    } else if (b.dataset.action === "resolve") {
      act(() => call("POST", "/api/v1/conversations/" + id() + "/resolve"), "Resolved.");
    } else if (b.dataset.action === "transfer") {
      const form = pane.querySelector(".transfer-form");
      form.hidden = !form.hidden;
      if (!form.hidden) { fillTransferTo(pane); form.querySelector("select").focus(); }
    } else if (b.dataset.action === "transfer-cancel") {
      const form = pane.querySelector(".transfer-form");
      form.reset();
      form.hidden = true;
    }
  });
  pane.querySelector(".person-flag-form").addEventListener("submit", (e) => {
    e.preventDefault();
    const form = e.target;
    const label = form.elements.label.value;
    if (!label) return;
    const mid = form.elements.message.value;
    const name = form.elements.label.selectedOptions[0].textContent;
    form.reset();
    form.hidden = true;
    act(() => call("POST", "/api/v1/conversations/" + id() + "/messages/" + mid + "/flag",
                   { kind: "needs_person", label }),
        "Told the operators: this should have come to a person (" + name + ").");
  });
  pane.querySelector(".transfer-form").addEventListener("submit", (e) => {
    e.preventDefault();
    const form = e.target;
    const to = form.elements.handle.value;
    if (!to) return;
    const note = form.elements.note.value.trim();
    const who = form.elements.handle.selectedOptions[0].textContent;
    form.reset();
    form.hidden = true;
    act(() => call("POST", "/api/v1/conversations/" + id() + "/transfer", { handle: to, note }),
        "Transferred to " + who + ".");
  });
}

// Canned responses: a small management screen (list, add, edit, delete) over /api/v1/canned.
const canned = {
  dialog: document.getElementById("canned-dialog"),
  list: document.getElementById("canned-list"),
  form: document.getElementById("canned-form"),
  rows: [],
};

function cannedSay(text) { canned.form.querySelector(".canned-status").textContent = text; }

function cannedEdit(row) {
  const f = canned.form;
  f.elements.id.value = row ? row.id : "";
  f.elements.shortcut.value = row ? row.shortcut : "";
  f.elements.text.value = row ? row.text : "";
  f.querySelector(".canned-form-title").textContent = row ? "Edit /" + row.shortcut : "Add a canned response";
  f.querySelector('button[type="submit"]').textContent = row ? "Save" : "Add";
  f.querySelector('[data-action="canned-new"]').hidden = !row;
  if (row) f.elements.text.focus();
}

async function cannedLoad() {
  canned.rows = await call("GET", "/api/v1/canned");
  canned.list.replaceChildren(...(canned.rows.length ? canned.rows.map((r) => {
    const li = el("li", "canned-row");
    li.dataset.id = r.id;
    const text = el("div", "canned-text");
    text.append(el("strong", "", "/" + r.shortcut), el("div", "", r.text));
    li.append(text);
    if (r.may_edit) {
      const edit = el("button", "", "Edit");
      edit.type = "button";
      edit.dataset.cannedEdit = r.id;
      const del = el("button", "danger", "Delete");
      del.type = "button";
      del.dataset.cannedDelete = r.id;
      li.append(edit, del);
    }
    return li;
  }) : [el("li", "muted", "None yet.")]));
}

document.getElementById("open-canned").addEventListener("click", async () => {
  cannedEdit(null);
  cannedSay("");
  canned.dialog.showModal();
  try { await cannedLoad(); } catch (e) { cannedSay("Could not load: " + e.message); }
});

canned.dialog.addEventListener("click", async (e) => {
  const b = e.target.closest("button");
  if (!b) return;
  if (b.dataset.action === "canned-close") { canned.dialog.close(); return; }
  if (b.dataset.action === "canned-new") { cannedEdit(null); return; }
  if (b.dataset.cannedEdit) {
    cannedEdit(canned.rows.find((r) => String(r.id) === b.dataset.cannedEdit));
  } else if (b.dataset.cannedDelete) {
    const row = canned.rows.find((r) => String(r.id) === b.dataset.cannedDelete);
    if (b.dataset.confirm !== "1") {  // a second click confirms (no window.confirm)
      b.dataset.confirm = "1";
      b.textContent = "Delete /" + row.shortcut + "?";
      return;
    }
    try {
      await call("DELETE", "/api/v1/canned/" + row.id);
      cannedSay("Deleted /" + row.shortcut + ".");
      if (canned.form.elements.id.value === String(row.id)) cannedEdit(null);
    } catch (err) { cannedSay("Refused: " + err.message); }
    await cannedLoad();
  }
});

canned.form.addEventListener("submit", async (e) => {
  e.preventDefault();
  const f = canned.form;
  const body = { shortcut: f.elements.shortcut.value.trim(), text: f.elements.text.value.trim() };
  const editing = f.elements.id.value;
  try {
    if (editing) await call("PUT", "/api/v1/canned/" + editing, body);
    else await call("POST", "/api/v1/canned", body);
    cannedSay((editing ? "Saved /" : "Added /") + body.shortcut + ".");
    cannedEdit(null);
  } catch (err) { cannedSay("Refused: " + err.message); }
  await cannedLoad();
  if (state.open !== null) loadCanned(state.open);
});

function connect() {
  // EventSource resends Last-Event-ID by itself after a drop; the server replays from its ring.
  const live = document.getElementById("live");
  const es = new EventSource("/api/v1/events");
  let pending = null;
  const soon = (convId) => {
    if (pending) return;
    pending = setTimeout(() => {
      pending = null;
      refreshLists();
      reloadOpen();
    }, 50);
  };
  es.onopen = () => { live.textContent = "live"; live.className = "live on"; };
  es.onerror = () => { live.textContent = "reconnecting…"; live.className = "live off"; };
  ["message.created", "conversation.status_changed", "conversation.assigned", "conversation.queued",
   "conversation.unassigned", "conversation.first_response", "conversation.first_response_late",
   "note.created", "message.flagged", "lost_property.reported", "message.delivery_failed",
   "resync"].forEach((t) =>
    es.addEventListener(t, (e) => {
      const data = JSON.parse(e.data || "{}");
      if (t === "message.created" && data.conversation_id !== state.open) { refreshLists(); return; }
      soon(data.conversation_id);
    }));
  // Supervisors: one banner while urgent threads flood in from one network (their alerts are
  // grouped; every fan still got their handoff).
  es.addEventListener("alert.flood", (e) => {
    const banner = urgent.flood;
    if (!banner) return;
    const d = JSON.parse(e.data || "{}");
    banner.hidden = !d.active;
    banner.textContent = d.active
      ? `Urgent flood: ${d.count} urgent threads from ${d.network} within ${d.window_s} s. ` +
        "Alerts are grouped; every thread is in the lists."
      : "";
    urgent.render();
    soon(null);
  });
  // An urgent thread nobody suitable can take: in the banner (and a beep) until someone does.
  es.addEventListener("alert.urgent_unassigned", (e) => {
    const d = JSON.parse(e.data || "{}");
    if (d.conversation_id) urgent.add(d.conversation_id, d.topic);
    soon(d.conversation_id);
  });
  ["conversation.assigned", "conversation.status_changed"].forEach((t) =>
    es.addEventListener(t, (e) => {
      const d = JSON.parse(e.data || "{}");
      if (t === "conversation.assigned" || d.to !== "queued") urgent.taken(d.conversation_id);
    }));
  es.addEventListener("staff.presence_changed", async () => {
    state.staff = await call("GET", "/api/v1/staff");
    const pane = document.getElementById("pane");
    if (pane.querySelector(".transfer-form")) fillTransferTo(pane);
  });
}

document.getElementById("presence").addEventListener("change", async (e) => {
  try {
    await call("PUT", "/api/v1/staff/me/presence", { presence: e.target.value });
    e.target.dataset.current = e.target.value;
  } catch (err) { e.target.value = e.target.dataset.current; }
  refreshLists();
});

document.querySelector(".lists").addEventListener("click", (e) => {
  const li = e.target.closest(".conv");
  if (!li) return;
  e.preventDefault();
  history.replaceState(null, "", "#c" + li.dataset.id);
  openConversation(Number(li.dataset.id));
});

(async () => {
  state.staff = await call("GET", "/api/v1/staff");
  await refreshLists();
  const m = /^#c(\d+)$/.exec(location.hash);
  if (m) openConversation(Number(m[1]));
  connect();
  setInterval(tickTimers, 1000);
})();
