// The live dashboard: one snapshot per server-sent event, drawn at most once per animation frame.
// Agent rows are kept by id and only changed cells are written, so 1,000 rows redraw in a few ms.
"use strict";
(() => {
  const STATES = ["available", "offered", "busy", "wrap_up", "not_ready", "offline"];
  const $ = (id) => document.getElementById(id);
  const LEVELS = JSON.parse($("dash-head").dataset.thresholds || "{}");
  const { _, label } = hotline;
  const LEVEL_TEXT = { warn: _("warning"), alert: _("alert") };
  let latest = null;      // the newest snapshot not drawn yet
  let shown = null;       // the snapshot on screen, and when it arrived (for the ticking waits)
  let shownAt = 0;
  let frame = 0;
  const rows = new Map(); // agent id -> { tr, cells, data, key }
  let sort = { column: "name", descending: false };

  // "alert", "warn" or "" for a figure against its thresholds; `low` when a lower figure is worse.
  function level(value, name, low = false) {
    const t = LEVELS[name];
    if (!t || value === null || value === undefined) return "";
    const past = (limit) => (low ? value < limit : value > limit);
    return past(t.alert) ? "alert" : past(t.warn) ? "warn" : "";
  }

  // A colour and a word (not colour alone): the figure's element gets lvl-*, the mark says it in text.
  function mark(target, markNode, lvl) {
    target.classList.toggle("lvl-warn", lvl === "warn");
    target.classList.toggle("lvl-alert", lvl === "alert");
    if (!markNode) return;
    // the arrows are for the eye; a screen reader hears the word alone
    markNode.replaceChildren(...(lvl ? [hotline.el("span", { "aria-hidden": "true" }, lvl === "alert" ? "▲▲" : "▲"),
      ` ${LEVEL_TEXT[lvl]}`] : []));
    markNode.className = lvl ? `level lvl-${lvl}` : "level";
  }

  function stateCards(agents) {
    const box = $("agent-states");
    for (const state of Object.keys(agents)) {
      if ($(`agents-${state}`)) continue;
      box.append(hotline.el("div", { class: "card" },
        hotline.el("div", { class: "muted" }, label(state)),
        hotline.el("div", { class: "figure", id: `agents-${state}` }, "0")));
    }
  }

  function queueRow(q) {
    const tags = Object.entries(q.agents).filter(([, n]) => n > 0)
      .map(([state, n]) => hotline.el("span", { class: `tag state-${state}`, title: label(state) }, `${n} ${label(state)}`));
    return hotline.el("tr", { "data-queue": q.queue, class: q.waiting > 0 ? "busy" : null },
      hotline.el("td", { translate: "no" }, q.queue),
      hotline.el("td", { class: "num waiting" }, q.waiting),
      hotline.el("td", { class: "num longest", "data-base": q.waiting > 0 ? q.longest_wait_s : null },
        hotline.el("span", { class: "value" }, q.waiting > 0 ? hotline.seconds(q.longest_wait_s) : "–"), " ",
        hotline.el("span", { class: "level" })),
      hotline.el("td", { class: "num" }, hotline.seconds(q.expected_wait_s)),
      hotline.el("td", {}, tags.length ? tags : hotline.el("span", { class: "muted" }, _("nobody"))));
  }

  // -- a row per agent ----------------------------------------------------------------------------

  const NATURAL = new Intl.Collator(undefined, { numeric: true }); // "Agent 2" before "Agent 10"
  const SORT_VALUE = {
    name: (a) => (a.name || a.id).toLowerCase(),
    state: (a) => STATES.indexOf(a.state),
    reason: (a) => a.reason,
    in_state: (a) => (a.in_state_s === null ? -1 : a.in_state_s),
    queue: (a) => (a.call ? a.call.queue : ""),
    caller: (a) => (a.call ? a.call.caller : ""),
    talk: (a) => (a.call && a.call.talk_s !== null ? a.call.talk_s : -1),
    calls: (a) => a.calls_today,
  };

  function compare(a, b) {
    const value = SORT_VALUE[sort.column];
    const x = value(a), y = value(b);
    let order = typeof x === "number" ? x - y : NATURAL.compare(x, y);
    if (sort.descending) order = -order;
    return order || NATURAL.compare(a.id, b.id);
  }

  // Rows are cloned from one built here: cheaper than building 1,000 rows cell by cell.
  const CELLS = ["name", "state", "reason", "in_state", "queue", "caller", "talk", "calls", "action"];
  const CELL_CLASS = { in_state: "num in-state", talk: "num talk", calls: "num calls" };
  const DATA_CELLS = ["name", "queue", "caller"]; // names and numbers: not words of the page's language
  const PROTO = hotline.el("tr", {}, CELLS.map((name) => hotline.el("td", { class: CELL_CLASS[name] || name,
                                                                        translate: DATA_CELLS.includes(name) ? "no" : null })));
  // the call's actions (monitor, transfer, hang up) show only while the agent is on a connected call
  const CALL_ACTIONS = { monitor: _("Monitor…"), transfer: _("Transfer…"), hangup: _("Hang up") };
  PROTO.lastChild.append(hotline.el("button", { type: "button", class: "secondary change" }, _("Change…")),
                         ...Object.entries(CALL_ACTIONS).map(([name, text]) => hotline.el("button", {
                           type: "button", class: name === "hangup" ? `secondary danger ${name}` : `secondary ${name}`,
                           hidden: true }, text)));

  function newRow(agent) {
    const tr = PROTO.cloneNode(true);
    tr.dataset.agent = agent.id;
    const cells = Object.fromEntries(CELLS.map((name, i) => [name, tr.cells[i]]));
    const buttons = Object.fromEntries(["change", ...Object.keys(CALL_ACTIONS)].map((name) =>
      [name, cells.action.querySelector(`button.${name}`)]));
    for (const button of cells.action.children) button.dataset.agent = agent.id;
    return { tr, cells, buttons, data: null, key: "", inStateBase: null, talkBase: null };
  }

  function fillRow(row, agent) {
    // the times grow with every snapshot: kept on the row for tick(), out of the comparison, so that
    // a row whose agent did not change is not rewritten
    row.inStateBase = agent.in_state_s;
    row.talkBase = agent.call ? agent.call.talk_s : null;
    const key = JSON.stringify(agent, (name, value) => (name === "in_state_s" || name === "talk_s" ? undefined : value));
    if (key === row.key) return;
    const c = row.cells;
    row.key = key;
    row.data = agent;
    row.tr.dataset.state = agent.state;
    c.name.textContent = agent.name || agent.id;
    c.name.title = agent.id;
    const name = agent.name || agent.id;
    const b = row.buttons;
    b.change.setAttribute("aria-label", _("Change state of {name}", { name }));
    // only a connected call can be joined, moved or ended: not while it rings the agent
    const onCall = Boolean(agent.call && agent.call.id && agent.call.state === "busy");
    for (const button of [b.monitor, b.transfer, b.hangup]) button.hidden = !onCall;
    b.monitor.setAttribute("aria-label", _("Monitor the call of {name}", { name }));
    b.transfer.setAttribute("aria-label", _("Transfer the call of {name}", { name }));
    b.hangup.setAttribute("aria-label", _("Hang up the call of {name}", { name }));
    c.state.replaceChildren(hotline.el("span", { class: `tag state-${agent.state}` }, label(agent.state)));
    c.reason.textContent = agent.reason ? label(agent.reason) : "";
    c.queue.textContent = agent.call ? agent.call.queue : "";
    c.caller.textContent = agent.call ? agent.call.caller : "";
    c.talk.textContent = agent.call && agent.call.state === "offered" ? _("ringing") : "";
    c.calls.textContent = agent.calls_today;
  }

  function drawAgents(list) {
    const body = $("agent-rows").tBodies[0];
    const seen = new Set();
    for (const agent of list) {
      seen.add(agent.id);
      let row = rows.get(agent.id);
      if (!row) rows.set(agent.id, (row = newRow(agent)));
      fillRow(row, agent);
    }
    for (const [id, row] of rows) {
      if (!seen.has(id)) { row.tr.remove(); rows.delete(id); }
    }
    order(body);
  }

  // Put the rows in the sorted order, moving nothing when it already is.
  function order(body) {
    const sorted = [...rows.values()].sort((a, b) => compare(a.data, b.data));
    const now = body.children;
    if (sorted.length === now.length && sorted.every((row, i) => now[i] === row.tr)) return;
    body.replaceChildren(...sorted.map((row) => row.tr));
  }

  function sortBy(column) {
    sort = { column, descending: sort.column === column ? !sort.descending : false };
    showSort();
  }

  function showSort() {
    const column = sort.column;
    for (const th of document.querySelectorAll("#agent-rows th[data-sort]")) {
      const here = th.dataset.sort === column;
      if (here) th.setAttribute("aria-sort", sort.descending ? "descending" : "ascending");
      else th.removeAttribute("aria-sort");
      th.querySelector(".arrow").textContent = here ? (sort.descending ? " ▼" : " ▲") : "";
    }
    order($("agent-rows").tBodies[0]);
  }

  // -- changing an agent's state --------------------------------------------------------------------

  let changing = null; // the agent id the dialog is open for

  function openChange(agentId) {
    const row = rows.get(agentId);
    if (!row) return;
    changing = agentId;
    $("state-agent").textContent = row.data.name || agentId;
    $("state-now").textContent = label(row.data.state) + (row.data.reason ? ` (${label(row.data.reason)})` : "");
    $("state-error").hidden = true;
    $("state-dialog").showModal();
  }

  async function change(state) {
    const body = { state };
    if (state === "not_ready") body.reason = $("state-reason").value;
    try {
      await hotline.api("POST", `/api/agents/${encodeURIComponent(changing)}/state`, body);
      $("state-dialog").close();
      hotline.show(`${$("state-agent").textContent}: ${label(state)}`, "ok");
    } catch (error) {
      $("state-error").textContent = error.message;
      $("state-error").hidden = false;
    }
  }

  // -- listen, whisper, barge: POST /api/calls/<id>/monitor rings the supervisor's phone -----------------

  const PHONE_KEY = "hotline.monitorEndpoint"; // asked once, kept in this browser
  let monitoring = null; // { agent, call } the dialog is open for

  // "<queue>, caller <caller>" for a dialog: the queue's id is a name, not a word of the page's language,
  // so it has its own element, marked translate="no"
  function describeCall(target, call) {
    const text = _("{queue}, caller {caller}", { queue: "\u0001", caller: call.caller });
    const [before, after] = text.split("\u0001");
    const queue = document.createElement("span");
    queue.setAttribute("translate", "no");
    queue.textContent = call.queue;
    target.replaceChildren(before, queue, after ?? "");
  }

  // The call a dialog was opened for, kept apart from the row: the row may change while the dialog is open,
  // and the action must go to the call the supervisor saw.
  function callOf(agentId) {
    const row = rows.get(agentId);
    if (!row || !row.data.call || !row.data.call.id) return null;
    return { agent: row.data.name || agentId, call: row.data.call.id, details: row.data.call };
  }

  function openMonitor(agentId) {
    monitoring = callOf(agentId);
    if (!monitoring) return;
    $("monitor-agent").textContent = monitoring.agent;
    describeCall($("monitor-call"), monitoring.details);
    $("monitor-endpoint").value = localStorage.getItem(PHONE_KEY) || "";
    $("monitor-error").hidden = true;
    $("monitor-dialog").showModal();
    if (!$("monitor-endpoint").value) $("monitor-endpoint").focus();
  }

  async function monitorCall(mode) {
    const endpoint = $("monitor-endpoint").value.trim();
    if (!endpoint) {
      $("monitor-error").textContent = _("Give the phone to ring: your extension or PJSIP endpoint.");
      $("monitor-error").hidden = false;
      $("monitor-endpoint").focus();
      return;
    }
    try {
      await hotline.api("POST", `/api/calls/${encodeURIComponent(monitoring.call)}/monitor`, { mode, endpoint });
      localStorage.setItem(PHONE_KEY, endpoint);
      $("monitor-dialog").close();
      const said = { listen: _("Ringing {endpoint}: answer to listen to {agent}'s call."),
                     whisper: _("Ringing {endpoint}: answer to whisper to {agent}."),
                     barge: _("Ringing {endpoint}: answer to barge into {agent}'s call.") }[mode];
      hotline.show(hotline._(said, { endpoint, agent: monitoring.agent }), "ok");
    } catch (error) {
      $("monitor-error").textContent = error.message;
      $("monitor-error").hidden = false;
    }
  }

  // -- transfer (cold, to a queue or an available agent) and hang up: POST /api/calls/<id>/... ----------

  let moving = null;  // { agent, call } the transfer dialog is open for
  let ending = null;  // { agent, call } the hang-up dialog is open for

  function fail(id, error) {
    $(id).textContent = error.message;
    $(id).hidden = false;
  }

  async function openTransfer(agentId) {
    moving = callOf(agentId);
    if (!moving) return;
    $("transfer-agent").textContent = moving.agent;
    describeCall($("transfer-call"), moving.details);
    $("transfer-error").hidden = true;
    const select = $("transfer-target");
    select.replaceChildren();
    $("transfer-send").disabled = true;  // until the targets are there
    $("transfer-dialog").showModal();
    select.focus();
    try {
      // warm transfers (talking to the target first) are the agent's, from the console: cold only here
      const targets = await hotline.api("GET", "/api/calls/transfer-targets");
      const option = (value, text, translate) => hotline.el("option", { value, translate }, text);
      select.replaceChildren(
        hotline.el("optgroup", { label: _("Queues") }, targets.queues.map((q) => option(`queue:${q}`, label(q)))),
        hotline.el("optgroup", { label: _("Available agents") },
          targets.agents.map((a) => option(`agent:${a.id}`, `${a.name} (${a.id})`, "no"))));
      if (!targets.agents.length) {
        select.lastChild.append(hotline.el("option", { disabled: true, value: "" }, _("nobody available now")));
      }
      $("transfer-send").disabled = false;
    } catch (error) {
      fail("transfer-error", error);
    }
  }

  async function transferCall() {
    const chosen = $("transfer-target").selectedOptions[0];
    if (!chosen || !chosen.value) {
      fail("transfer-error", new Error(_("Choose where to send the caller.")));
      return;
    }
    const [kind, ...rest] = chosen.value.split(":");
    const send = $("transfer-send");
    send.disabled = true;  // one click, one transfer
    try {
      await hotline.api("POST", `/api/calls/${encodeURIComponent(moving.call)}/transfer`,
                        { mode: "cold", to: { kind, value: rest.join(":") } });
      $("transfer-dialog").close();
      hotline.show(_("{agent}'s call sent to {target}.", { agent: moving.agent, target: chosen.textContent }), "ok");
    } catch (error) {
      fail("transfer-error", error);
    } finally {
      send.disabled = false;
    }
  }

  function openHangup(agentId) {
    ending = callOf(agentId);
    if (!ending) return;
    $("hangup-agent").textContent = ending.agent;
    describeCall($("hangup-call"), ending.details);
    $("hangup-error").hidden = true;
    $("hangup-dialog").showModal();  // focus on Cancel (autofocus): Enter alone does not end the call
  }

  async function hangupCall() {
    const confirm = $("hangup-confirm");
    confirm.disabled = true;
    try {
      await hotline.api("POST", `/api/calls/${encodeURIComponent(ending.call)}/hangup`);
      $("hangup-dialog").close();
      hotline.show(_("Hung up {agent}'s call.", { agent: ending.agent }), "ok");
    } catch (error) {
      fail("hangup-error", error);
    } finally {
      confirm.disabled = false;
    }
  }

  // -- drawing ------------------------------------------------------------------------------------

  function draw() {
    frame = 0;
    const snap = latest;
    latest = null;
    if (!snap) return;
    const began = performance.now();
    shown = snap;
    shownAt = performance.now();
    $("waiting").textContent = snap.waiting;
    $("in-ivr").textContent = snap.in_ivr;
    const t = snap.today;
    $("service-level").textContent = hotline.percent(t.service_level);
    mark($("service-level"), $("service-level-level"), level(t.service_level, "service_level", true));
    $("service-level-detail").textContent = _("{n} of {queued} queued calls", { n: t.answered_within_sl, queued: t.queued });
    $("abandonment").textContent = hotline.percent(t.abandonment_rate);
    mark($("abandonment"), $("abandonment-level"), level(t.abandonment_rate, "abandonment"));
    $("abandonment-detail").textContent = _("{n} of {queued} queued calls", { n: t.abandoned, queued: t.queued });
    stateCards(snap.agents);
    for (const [state, n] of Object.entries(snap.agents)) $(`agents-${state}`).textContent = n;
    $("agents-total").textContent = _("{n} in all", { n: snap.agents_total });
    const queueRows = document.createDocumentFragment();
    for (const q of snap.queues) queueRows.append(queueRow(q));
    $("queues").tBodies[0].replaceChildren(queueRows);
    drawAgents(snap.agent_rows || []);
    $("as-of").textContent = hotline.when(snap.at);
    tick();
    if (!document.body.dataset.ready) document.body.dataset.readyMs = String(Math.round(performance.now()));
    document.body.dataset.ready = "1";
    document.body.dataset.snapshotAt = String(snap.at);
    document.body.dataset.drawMs = String(Math.round(performance.now() - began)); // for bench/dashboard.py
  }

  // Waits, times in state and talk times grow between events: count them up from the last snapshot.
  function tick() {
    if (!shown) return;
    const passed = (performance.now() - shownAt) / 1000;
    const longest = shown.waiting > 0 ? shown.longest_wait_s + passed : null;
    $("longest-wait").textContent = longest === null ? "–" : hotline.seconds(longest);
    mark($("longest-wait"), $("longest-wait-level"), level(longest, "wait_s"));
    for (const cell of document.querySelectorAll("#queues td.longest[data-base]")) {
      const wait = Number(cell.dataset.base) + passed;
      cell.querySelector(".value").textContent = hotline.seconds(wait);
      mark(cell, cell.querySelector(".level"), level(wait, "wait_s"));
    }
    for (const row of rows.values()) {
      const inState = row.inStateBase === null ? "–" : hotline.seconds(row.inStateBase + passed);
      if (row.cells.in_state.textContent !== inState) row.cells.in_state.textContent = inState;
      if (row.talkBase !== null) {
        const talk = hotline.seconds(row.talkBase + passed);
        if (row.cells.talk.textContent !== talk) row.cells.talk.textContent = talk;
      }
    }
  }

  function link(text, kind) {
    const tag = $("link");
    tag.textContent = text;
    tag.className = `tag ${kind}`;
  }

  stateCards(Object.fromEntries(STATES.map((s) => [s, 0])));
  for (const th of document.querySelectorAll("#agent-rows th[data-sort]")) {
    th.querySelector("button").addEventListener("click", () => sortBy(th.dataset.sort));
  }
  showSort();
  $("agent-rows").addEventListener("click", (event) => {
    const button = event.target.closest("button.change");
    if (button) openChange(button.dataset.agent);
    const monitor = event.target.closest("button.monitor");
    if (monitor) openMonitor(monitor.dataset.agent);
    const transfer = event.target.closest("button.transfer");
    if (transfer) openTransfer(transfer.dataset.agent);
    const hangup = event.target.closest("button.hangup");
    if (hangup) openHangup(hangup.dataset.agent);
  });
  for (const button of document.querySelectorAll("#state-dialog button[data-state]")) {
    button.addEventListener("click", () => change(button.dataset.state));
  }
  $("state-cancel").addEventListener("click", () => $("state-dialog").close());
  for (const button of document.querySelectorAll("#monitor-dialog button[data-mode]")) {
    button.addEventListener("click", () => monitorCall(button.dataset.mode));
  }
  $("monitor-cancel").addEventListener("click", () => $("monitor-dialog").close());
  $("transfer-send").addEventListener("click", transferCall);
  $("transfer-cancel").addEventListener("click", () => $("transfer-dialog").close());
  $("hangup-confirm").addEventListener("click", hangupCall);
  $("hangup-cancel").addEventListener("click", () => $("hangup-dialog").close());

  // The browser retries a dropped stream by itself; a refused one (503: the server's live streams are all
  // open, or the session ended) is tried again here, every 5 s.
  function follow() {
    const source = new EventSource("/api/live/stream");
    source.addEventListener("snapshot", (event) => {
      const began = performance.now();
      latest = JSON.parse(event.data);
      document.body.dataset.parseMs = String(Math.round(performance.now() - began)); // for bench/dashboard.py
      if (!frame) frame = requestAnimationFrame(draw);
    });
    source.addEventListener("open", () => link(_("live"), "good"));
    source.addEventListener("error", () => {
      link(_("reconnecting…"), "bad");
      if (source.readyState === EventSource.CLOSED) setTimeout(follow, 5000);
    });
  }
  follow();
  setInterval(tick, 1000);
})();
