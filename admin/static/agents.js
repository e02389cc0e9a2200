// The agents page: the roster from /api/roster; saving goes through PUT /api/agents/<id>, whose
// refusal (Agent.check's reason) is shown as the server wrote it.
"use strict";
(() => {
  const { el, _ } = hotline;
  const canEdit = document.getElementById("roster").dataset.canEdit === "1";
  const body = document.querySelector("#agents tbody");
  const form = document.getElementById("agent-form");
  const formError = document.getElementById("form-error");
  const STATE_TAG = { available: "good", deactivated: "bad" };
  const DONE = { deactivate: "{id} deactivated", reactivate: "{id} reactivated" };
  const REFUSED = { deactivate: "{id} was not deactivated: {error}", reactivate: "{id} was not reactivated: {error}" };
  // For the catalogue (messages looked up by a variable above are not found by the extractor otherwise):
  void [_("{id} deactivated"), _("{id} reactivated"), _("{id} was not deactivated: {error}"),
        _("{id} was not reactivated: {error}")];

  async function load() {
    try {
      render(await hotline.api("GET", "/api/roster"));
    } catch (error) {
      hotline.show(_("Could not load the agents: {error}", { error: error.message }));
    }
  }

  function render(agents) {
    body.replaceChildren(...agents.map(row));
    if (!agents.length) body.append(el("tr", {}, el("td", { colspan: 8, class: "muted" }, _("No agents yet."))));
  }

  function row(agent) {
    const skills = Object.entries(agent.skills).map(([skill, level]) => el("span", { class: "tag", translate: "no" }, `${skill} ${level}`));
    return el("tr", { id: `agent-${agent.id}`, class: agent.active ? null : "deactivated", "data-state": agent.state },
      el("td", { translate: "no" }, agent.id), el("td", { translate: "no" }, agent.name), el("td", { translate: "no" }, agent.endpoint),
      el("td", { class: "skills" }, skills), el("td", { translate: "no" }, agent.languages.join(", ")),
      el("td", {}, el("span", { class: `tag ${STATE_TAG[agent.state] || ""}` }, hotline.label(agent.state))),
      el("td", { class: "calls" }, agent.calls_today),
      canEdit ? el("td", { class: "actions" }, actions(agent)) : null);
  }

  function actions(agent) {
    if (!agent.active) {
      return el("button", { type: "button", class: "reactivate", onclick: () => act(agent, "reactivate") }, _("Reactivate"));
    }
    return [
      el("button", { type: "button", class: "secondary edit", onclick: () => edit(agent) }, _("Edit")),
      el("button", { type: "button", class: "danger deactivate", onclick: () => act(agent, "deactivate") }, _("Deactivate")),
    ];
  }

  async function act(agent, action) {
    try {
      await hotline.api("POST", `/api/agents/${encodeURIComponent(agent.id)}/${action}`);
      hotline.show(_(DONE[action], { id: agent.id }), "ok");
    } catch (error) {
      hotline.show(_(REFUSED[action], { id: agent.id, error: error.message }));
    }
    await load();
  }

  function edit(agent) {
    form.elements.id.value = agent.id;
    form.elements.id.readOnly = true;
    form.elements.name.value = agent.name;
    form.elements.endpoint.value = agent.endpoint;
    form.elements.languages.value = agent.languages.join(", ");
    for (const input of form.querySelectorAll("[data-skill]")) input.value = agent.skills[input.dataset.skill] ?? "";
    document.getElementById("form-title").textContent = _("Edit {id}", { id: agent.id });
    formError.hidden = true;
    form.elements.name.focus();
  }

  function clear() {
    form.reset();
    form.elements.id.readOnly = false;
    document.getElementById("form-title").textContent = _("New agent");
    formError.hidden = true;
  }

  // A level that is not a whole number is sent as typed: the server says what is wrong with it.
  function level(text) {
    return /^-?\d+$/.test(text) ? Number(text) : text;
  }

  async function save(event) {
    event.preventDefault();
    const id = form.elements.id.value.trim();
    const skills = {};
    for (const input of form.querySelectorAll("[data-skill]")) {
      if (input.value.trim()) skills[input.dataset.skill] = level(input.value.trim());
    }
    const languages = form.elements.languages.value.split(",").map((s) => s.trim()).filter(Boolean);
    const agent = { name: form.elements.name.value.trim(), endpoint: form.elements.endpoint.value.trim(),
                    skills, languages };
    try {
      if (!id) throw new Error(_("an agent id is required"));
      await hotline.api("PUT", `/api/agents/${encodeURIComponent(id)}`, agent);
    } catch (error) {
      formError.textContent = error.message;
      formError.hidden = false;
      return;
    }
    hotline.show(_("Saved {id}", { id }), "ok");
    clear();
    await load();
  }

  if (canEdit) {
    form.addEventListener("submit", save);
    document.getElementById("agent-new").addEventListener("click", clear);
  }
  load();
})();
