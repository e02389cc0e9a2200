// The on-call panel's controls (issue 18): hang up, hold / resume, transfer (cold or warm) and, while a warm
// transfer is under way, complete or cancel. Kept apart from console.js: it watches the on-call panel that
// console.js fills and asks the console API which call that is.
"use strict";
(() => {
  const $ = (id) => document.getElementById(id);
  const { el, _ } = hotline;
  const box = $("call-controls");
  if (!box) return;
  const call = { id: null, held: false, warm: false };

  function path(action) {
    return `/api/calls/${encodeURIComponent(call.id)}/${action}`;
  }

  async function send(action, body, after) {
    if (!call.id) return;
    try {
      await hotline.api("POST", path(action), body);
      after();
      render();
    } catch (error) {
      hotline.show(error.message);
    }
  }

  function option(value, text) {
    return el("option", { value }, text);
  }

  async function fillTargets() {
    const select = $("transfer-target");
    try {
      const targets = await hotline.api("GET", "/api/calls/transfer-targets");
      select.replaceChildren(
        el("optgroup", { label: _("Queues") }, targets.queues.map((q) => option(`queue:${q}`, hotline.label(q)))),
        el("optgroup", { label: _("Agents") }, targets.agents.map((a) => option(`agent:${a.id}`, `${a.name} (${a.id})`))),
        el("optgroup", { label: _("Supervisors") },
          targets.supervisors.map((a) => option(`supervisor:${a.id}`, `${a.name} (${a.id})`))));
    } catch (error) {
      hotline.show(error.message);
    }
  }

  function transfer() {
    const [kind, ...rest] = $("transfer-target").value.split(":");
    const mode = $("transfer-mode").value;
    if (!kind || !rest.length) { hotline.show(_("choose where to transfer the call")); return; }
    send("transfer", { mode, to: { kind, value: rest.join(":") } }, () => {
      if (mode === "warm") { call.warm = true; call.held = true; } else { call.id = null; }
    });
  }

  function render() {
    box.hidden = !call.id;
    if (!call.id) { box.replaceChildren(); return; }
    const warmButtons = call.warm
      ? [el("button", { type: "button", id: "transfer-complete", onclick: () =>
            send("transfer/complete", undefined, () => { call.id = null; call.warm = false; }) }, _("Complete transfer")),
         el("button", { type: "button", class: "secondary", id: "transfer-cancel", onclick: () =>
            send("transfer/cancel", undefined, () => { call.warm = false; call.held = false; }) }, _("Cancel transfer"))]
      : [];
    box.replaceChildren(
      el("div", { class: "actions" },
        el("button", { type: "button", class: "danger", id: "hang-up", onclick: () =>
          send("hangup", undefined, () => { call.id = null; }) }, _("Hang up")),
        el("button", { type: "button", class: "secondary", id: "hold", disabled: call.warm, onclick: () =>
          send("hold", { on: !call.held }, () => { call.held = !call.held; }) }, call.held ? _("Resume") : _("Hold")),
        call.held && !call.warm ? el("span", { class: "tag" }, _("on hold")) : null),
      el("div", { class: "actions transfer", hidden: call.warm },
        el("label", {}, _("Transfer to"), " ", el("select", { id: "transfer-target", onfocus: fillTargets })),
        el("label", {}, _("How"), " ", el("select", { id: "transfer-mode" },
          option("cold", _("cold: the caller goes at once")), option("warm", _("warm: talk to them first")))),
        el("button", { type: "button", id: "transfer", onclick: transfer }, _("Transfer"))),
      el("div", { class: "actions" }, warmButtons));
    if (!call.warm) fillTargets();
  }

  // console.js fills #call-card when a call is connected and empties it when it is over.
  async function follow() {
    const panel = $("on-call");
    const showing = panel && !panel.hidden;
    let id = null;
    let onCall = null;
    if (showing) {
      try {
        const view = await hotline.api("GET", "/api/agent/console");
        id = view.call ? view.call.call_id : null;
        onCall = view.on_call;
      } catch (error) {
        return;
      }
    }
    if (id !== call.id) {
      // The server keeps the hold and a warm transfer under way: a reloaded page shows them as they are.
      const warm = Boolean(onCall && onCall.transfer_to);
      Object.assign(call, { id, held: Boolean(onCall && onCall.on_hold) || warm, warm });
      render();
    }
  }
  const watch = new MutationObserver(follow);
  for (const id of ["on-call", "call-card"]) {
    if ($(id)) watch.observe($(id), { attributes: true, childList: true });
  }
  follow();
})();
