// The agent console: state buttons, the offer pop-up (masked caller, IVR path, open work orders),
// accept / decline, and the wrap-up form. Kept current by the server's "console" events.
// An offer is noticed: a beep (WebAudio, once a click has allowed the page sound), the title, a desktop
// notification (if the agent allowed them, asked on their click), an assertive live region for screen
// readers and the focus on Accept for keyboards.
// The wrap-up form lasts until it is submitted: its draft goes to the server as the agent types (a reload
// or a crash of the browser loses nothing), and its countdown only says when the queue expects it done.
"use strict";
(() => {
  const $ = (id) => document.getElementById(id);
  const { el, _, label } = hotline;
  const EXTEND_S = 60;
  let view = null;
  let skew = 0; // server clock minus this browser's, in seconds
  let draftTimer = null;
  const serverNow = () => Date.now() / 1000 + skew;
  const TITLE = document.title;
  let sound = null; // an AudioContext, made on the agent's first click: browsers keep a page silent until one
  let announced = null; // the call id of the offer last announced

  function allowSound() {
    if (!sound && window.AudioContext) sound = new AudioContext();
    if (sound && sound.state === "suspended") sound.resume();
  }

  function beep() {
    if (!sound || sound.state !== "running") return;
    const start = sound.currentTime;
    [[0, 880], [0.3, 660]].forEach(([at, pitch]) => {
      const tone = sound.createOscillator();
      const volume = sound.createGain();
      tone.frequency.value = pitch;
      volume.gain.setValueAtTime(0.0001, start + at);
      volume.gain.exponentialRampToValueAtTime(0.25, start + at + 0.02);
      volume.gain.exponentialRampToValueAtTime(0.0001, start + at + 0.25);
      tone.connect(volume).connect(sound.destination);
      tone.start(start + at);
      tone.stop(start + at + 0.27);
    });
  }

  function notice(offer) {
    document.title = offer ? `(1) ${_("Incoming call")} · ${TITLE}` : TITLE;
    if (!offer) { announced = null; return; }
    if (announced === offer.call_id) return;
    announced = offer.call_id;
    const text = _("Incoming call from {caller}: accept or decline.", { caller: offer.caller || _("unknown") });
    $("announce").textContent = text;
    if (!offer.accepted) $("accept").focus();
    beep();
    if (window.Notification && Notification.permission === "granted") {
      const note = new Notification(_("Incoming call"), { body: text, tag: offer.call_id });
      note.addEventListener("click", () => { window.focus(); $("accept").focus(); note.close(); });
    }
  }

  function offerNotifications() {
    $("notify-enable").hidden = !(window.Notification && Notification.permission === "default");
  }

  function card(call) {
    const verified = call.verified === null ? _("unknown") : call.verified ? _("verified") : _("not verified");
    const orders = call.work_orders.length
      ? el("ul", { class: "orders" }, call.work_orders.map((o) => el("li", {},
          // a tab of its own: the console (and the call ringing in it) stays where it is
          el("a", { href: `/admin/work-orders/${o.number}`, target: "_blank", rel: "noopener" }, o.number), ` ${label(o.category)} · ${label(o.status)}`)))
      : el("span", { class: "muted" }, _("none"));
    const path = call.ivr_path.length
      ? el("ol", { class: "path" }, call.ivr_path.map((s) => el("li", { translate: "no" }, s.node + (s.input ? ` → ${s.input}` : ""))))
      : el("span", { class: "muted" }, "–");
    return el("dl", {},
      el("dt", {}, _("Caller")), el("dd", { class: "caller", translate: "no" }, call.caller || _("unknown")),
      el("dt", {}, _("Identity")), el("dd", {}, el("span", { class: `tag verified ${call.verified ? "good" : "bad"}` }, verified)),
      el("dt", {}, _("Intent")), el("dd", { class: "intent" }, label(call.intent)),
      el("dt", {}, _("Queue")), el("dd", {}, el("span", { translate: "no" }, call.queue), " · ", _("waited {time}", { time: hotline.seconds(call.waited_s) })),
      el("dt", {}, _("IVR path")), el("dd", { class: "ivr-path" }, path),
      el("dt", {}, _("Open work orders")), el("dd", { class: "work-orders" }, orders));
  }

  function fill(id, call) {
    $(id).replaceChildren(call ? card(call) : "");
  }

  function render(next) {
    // Views come from POST answers and from the stream: one read before a change may arrive after the change's
    // event. The server stamps each view before its reads; an older one than shown is stale.
    if (view && next.now < view.now) return;
    const previous = view;
    view = next;
    if (next.now) skew = next.now - Date.now() / 1000;
    const agent = next.agent;
    $("state").textContent = label(agent.state);
    $("state").className = `tag ${agent.state}`;
    $("state").dataset.state = agent.state;
    $("state-since").textContent = agent.since ? _("since {time}", { time: hotline.when(agent.since) }) : "";
    $("state-reason").textContent = agent.reason ? `(${label(agent.reason)})` : "";
    if (!previous) {
      $("not-ready-reason").replaceChildren(...next.not_ready_reasons.map((r) => el("option", { value: r }, label(r))));
      $("disposition").replaceChildren(el("option", { value: "" }, _("choose…")),
        ...next.dispositions.map((d) => el("option", { value: d }, label(d))));
    }
    $("offer").hidden = !next.offer;
    fill("offer-card", next.offer);
    const accepted = Boolean(next.offer && next.offer.accepted);
    $("accept").hidden = accepted;
    $("pick-up").hidden = !accepted;
    $("on-call").hidden = !next.call;
    fill("call-card", next.call);
    const wrapping = next.wrap_up && !next.offer && !next.call;
    const sameWrap = previous && previous.wrap_up && next.wrap_up && previous.wrap_up.call_id === next.wrap_up.call_id;
    $("wrap-up").hidden = !wrapping;
    if (!sameWrap) {
      fill("wrap-card", next.wrap_up);
      $("wrap-form").reset();
      if (next.wrap_draft) {
        $("disposition").value = next.wrap_draft.code;
        $("notes").value = next.wrap_draft.notes;
      }
    }
    tick();
    $("idle-note").hidden = Boolean(next.offer || next.call || wrapping);
    $("go-available").disabled = ["available", "offered", "busy"].includes(agent.state) || Boolean(next.wrap_up);
    notice(next.offer);
  }

  // Once a second: the wrap-up countdown (and, past it, that the form waits for the agent).
  function tick() {
    if (!view) return;
    const agent = view.agent;
    const counting = agent.state === "wrap_up" && agent.wrap_until;
    const left = counting ? agent.wrap_until - serverNow() : null;
    $("wrap-left").textContent = counting && left > 0 ? _("{time} left", { time: hotline.seconds(left) }) : "";
    $("wrap-over").hidden = !(counting && left <= 0);
    $("wrap-extend").hidden = agent.state !== "wrap_up";
    $("wrap-extend").disabled = !agent.wrap_max_until || agent.wrap_until >= agent.wrap_max_until - 1;
    $("talk-time").textContent = agent.state === "busy" && agent.since
      ? _("talking for {time}", { time: hotline.seconds(Math.max(0, serverNow() - agent.since)) }) : "";
  }
  setInterval(tick, 1000);

  function saveDraft() {
    clearTimeout(draftTimer);
    draftTimer = null;
    if (!view || !view.wrap_up) return;
    hotline.api("PUT", "/api/agent/wrap-up/draft", { call_id: view.wrap_up.call_id, code: $("disposition").value,
                                                      notes: $("notes").value })
      .catch((error) => { if (error.status !== 409) hotline.show(error.message); });
  }
  // Leaving (reload, tab closed) with keystrokes not yet saved: a request that outlives the page.
  function saveDraftOnLeaving() {
    if (!draftTimer || !view || !view.wrap_up) return;
    clearTimeout(draftTimer);
    draftTimer = null;
    fetch("/api/agent/wrap-up/draft", {
      method: "PUT", keepalive: true, credentials: "same-origin",
      headers: { "X-CSRFToken": hotline.csrf, "Content-Type": "application/json" },
      body: JSON.stringify({ call_id: view.wrap_up.call_id, code: $("disposition").value, notes: $("notes").value }),
    });
  }
  function draftSoon() {
    clearTimeout(draftTimer);
    draftTimer = setTimeout(saveDraft, 400);
  }

  // The user's agent is not in the router (never set up, or deactivated): one message that stays, and no
  // button that cannot work; the page stops reading the console until it is reloaded.
  let stopped = false;
  function unavailable(message) {
    stopped = true;
    $("console-missing").textContent = message;
    $("console-missing").hidden = false;
    for (const id of ["go-available", "go-not-ready", "go-offline", "not-ready-reason"]) $(id).disabled = true;
    $("state").textContent = "–";
    $("idle-note").hidden = true;
  }

  async function act(method, path, body) {
    try {
      render(await hotline.api(method, path, body));
    } catch (error) {
      if (error.status === 404) { unavailable(error.message); return; }
      hotline.show(error.message);
      if (error.status === 409) refresh();
    }
  }

  async function refresh() {
    if (stopped) return;
    try {
      render(await hotline.api("GET", "/api/agent/console"));
    } catch (error) {
      if (error.status === 404) unavailable(error.message);
      else hotline.show(error.message);
    }
  }

  document.addEventListener("click", allowSound, { capture: true });
  offerNotifications();
  $("notify-enable").addEventListener("click", () =>
    Notification.requestPermission().then(offerNotifications, offerNotifications));
  $("go-available").addEventListener("click", () => act("POST", "/api/agent/state", { state: "available" }));
  $("go-not-ready").addEventListener("click", () =>
    act("POST", "/api/agent/state", { state: "not_ready", reason: $("not-ready-reason").value }));
  $("go-offline").addEventListener("click", () => act("POST", "/api/agent/state", { state: "offline" }));
  $("accept").addEventListener("click", () =>
    view && view.offer && act("POST", `/api/agent/calls/${encodeURIComponent(view.offer.call_id)}/accept`));
  $("decline").addEventListener("click", () =>
    view && view.offer && act("POST", `/api/agent/calls/${encodeURIComponent(view.offer.call_id)}/decline`));
  $("notes").addEventListener("input", draftSoon);
  $("disposition").addEventListener("change", draftSoon);
  window.addEventListener("pagehide", saveDraftOnLeaving);
  $("wrap-extend").addEventListener("click", () => act("POST", "/api/agent/wrap-up/extend", { seconds: EXTEND_S }));
  $("wrap-form").addEventListener("submit", (event) => {
    event.preventDefault();
    clearTimeout(draftTimer);
    draftTimer = null;
    if (!view || !view.wrap_up) return;
    if (!$("disposition").value) { hotline.show(_("choose a disposition")); return; }
    act("POST", "/api/agent/wrap-up", { call_id: view.wrap_up.call_id, code: $("disposition").value,
                                        notes: $("notes").value });
  });

  // A refused stream (503: the server's live streams are all open) is tried again every 5 s; meanwhile
  // the console is read once a second so no offer is missed.
  function follow() {
    if (stopped) return;
    const events = new EventSource("/api/agent/stream");
    let polling = null;
    events.addEventListener("console", (event) => render(JSON.parse(event.data)));
    events.addEventListener("open", () => { clearInterval(polling); polling = null; });
    events.addEventListener("error", () => {
      if (events.readyState !== EventSource.CLOSED) return;
      polling = polling || setInterval(() => (stopped ? clearInterval(polling) : refresh()), 1000);
      setTimeout(() => { clearInterval(polling); follow(); }, 5000);
    });
  }
  refresh().then(follow);
})();
