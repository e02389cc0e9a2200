// The live dashboard: one snapshot per server-sent event, drawn at most once per animation frame.
"use strict";
(() => {
  const STATES = ["available", "offered", "busy", "wrap_up", "not_ready", "offline"];
  const $ = (id) => document.getElementById(id);
  let latest = null;      // the newest snapshot not drawn yet
  let shown = null;       // the snapshot on screen, and when it arrived (for the ticking waits)
  let shownAt = 0;
  let frame = 0;

  function stateCards(agents) {
    const box = $("agent-states");
    for (const state of Object.keys(agents)) {
      if ($(`agents-${state}`)) continue;
      box.append(hotline.el("div", { class: "card" },
        hotline.el("div", { class: "muted" }, hotline.label(state)),
        hotline.el("div", { class: "figure", id: `agents-${state}` }, "0")));
    }
  }

  function queueRow(q, late) {
    const tags = Object.entries(q.agents).filter(([, n]) => n > 0)
      .map(([state, n]) => hotline.el("span", { class: `tag state-${state}`, title: hotline.label(state) }, `${n} ${hotline.label(state)}`));
    const classes = [q.waiting > 0 ? "busy" : "", q.waiting > 0 && q.longest_wait_s > late ? "late" : ""].join(" ").trim();
    return hotline.el("tr", { "data-queue": q.queue, class: classes || null },
      hotline.el("td", { translate: "no" }, q.queue),
      hotline.el("td", { class: "num waiting" }, q.waiting),
      hotline.el("td", { class: "num longest", "data-base": q.waiting > 0 ? q.longest_wait_s : null },
        q.waiting > 0 ? hotline.seconds(q.longest_wait_s) : "–"),
      hotline.el("td", { class: "num" }, hotline.seconds(q.expected_wait_s)),
      hotline.el("td", {}, tags.length ? tags : hotline.el("span", { class: "muted" }, hotline._("nobody"))));
  }

  function draw() {
    frame = 0;
    const snap = latest;
    latest = null;
    if (!snap) return;
    shown = snap;
    shownAt = performance.now();
    $("waiting").textContent = snap.waiting;
    $("in-ivr").textContent = snap.in_ivr;
    const t = snap.today;
    $("service-level").textContent = hotline.percent(t.service_level);
    $("service-level-detail").textContent = hotline._("{n} of {queued} queued calls", { n: t.answered_within_sl, queued: t.queued });
    $("abandonment").textContent = hotline.percent(t.abandonment_rate);
    $("abandonment-detail").textContent = hotline._("{n} of {queued} queued calls", { n: t.abandoned, queued: t.queued });
    stateCards(snap.agents);
    for (const [state, n] of Object.entries(snap.agents)) $(`agents-${state}`).textContent = n;
    $("agents-total").textContent = hotline._("{n} in all", { n: snap.agents_total });
    const rows = document.createDocumentFragment();
    for (const q of snap.queues) rows.append(queueRow(q, t.service_level_s));
    $("queues").tBodies[0].replaceChildren(rows);
    $("as-of").textContent = hotline.when(snap.at);
    tick();
    if (!document.body.dataset.ready) document.body.dataset.readyMs = String(Math.round(performance.now()));
    document.body.dataset.ready = "1";
    document.body.dataset.snapshotAt = String(snap.at);
  }

  // Waits grow between events: count them up on screen from the last snapshot.
  function tick() {
    if (!shown) return;
    const passed = (performance.now() - shownAt) / 1000;
    $("longest-wait").textContent = shown.waiting > 0 ? hotline.seconds(shown.longest_wait_s + passed) : "–";
    for (const cell of document.querySelectorAll("#queues td.longest[data-base]")) {
      cell.textContent = hotline.seconds(Number(cell.dataset.base) + passed);
    }
  }

  function link(text, kind) {
    const tag = $("link");
    tag.textContent = text;
    tag.className = `tag ${kind}`;
  }

  stateCards(Object.fromEntries(STATES.map((s) => [s, 0])));
  // The browser retries a dropped stream by itself; a refused one (503: the server's live streams are all
  // open, or the session ended) is tried again here, every 5 s.
  function follow() {
    const source = new EventSource("/api/live/stream");
    source.addEventListener("snapshot", (event) => {
      latest = JSON.parse(event.data);
      if (!frame) frame = requestAnimationFrame(draw);
    });
    source.addEventListener("open", () => link(hotline._("live"), "good"));
    source.addEventListener("error", () => {
      link(hotline._("reconnecting…"), "bad");
      if (source.readyState === EventSource.CLOSED) setTimeout(follow, 5000);
    });
  }
  follow();
  setInterval(tick, 1000);
})();
