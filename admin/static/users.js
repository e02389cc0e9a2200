// The users page: list, create, change role, reset password, deactivate/reactivate, unlock (all through /api/users).
"use strict";
(() => {
  const { el, api, show, _ } = hotline;
  const body = document.querySelector("#users tbody");
  const roleOptions = document.getElementById("roles").innerHTML;
  const form = document.getElementById("new-user");
  const field = (id) => document.getElementById(id);

  async function load() {
    try {
      render(await api("GET", "/api/users"));
    } catch (error) {
      show(_("could not load the users: {error}", { error: error.message }));
    }
  }

  function render(users) {
    body.replaceChildren(...users.map(row));
    if (!users.length) body.append(el("tr", {}, el("td", { colspan: 6, class: "muted" }, _("no users"))));
  }

  function row(user) {
    const role = el("select", { "aria-label": _("role of {name}", { name: user.name }), class: "role" });
    role.innerHTML = roleOptions;
    role.value = user.role;
    const password = el("input", { type: "password", class: "password", placeholder: _("new password"),
                                   autocomplete: "new-password", "aria-label": _("new password for {name}", { name: user.name }) });
    const status = [el("span", { class: user.active ? "tag good" : "tag bad" }, user.active ? _("active") : _("deactivated"))];
    if (user.locked) status.push(" ", el("span", { class: "tag bad" }, _("new addresses wait until {time}", { time: hotline.when(user.locked_until) })));
    return el("tr", { "data-user": user.name },
      el("td", { translate: "no" }, user.name),
      el("td", {}, role, " ", button(_("Change role"), "change-role", () =>
        act(user, "role", { role: role.value }, _("{name} is now {role}", { name: user.name, role: hotline.label(role.value) })))),
      el("td", { translate: "no" }, user.agent_id || "–"),
      el("td", {}, status),
      el("td", {}, user.last_login_at ? hotline.when(user.last_login_at) : _("never")),
      el("td", { class: "actions" },
        password, " ", button(_("Reset password"), "reset-password", () =>
          act(user, "password", { password: password.value }, _("password of {name} reset: their sessions ended", { name: user.name }))),
        " ", user.active
          ? button(_("Deactivate"), "deactivate danger", () => act(user, "deactivate", undefined, _("{name} deactivated", { name: user.name })))
          : button(_("Reactivate"), "reactivate", () => act(user, "reactivate", undefined, _("{name} reactivated", { name: user.name }))),
        user.locked ? [" ", button(_("Unlock"), "unlock", () => act(user, "unlock", undefined, _("{name} unlocked", { name: user.name })))] : []));
  }

  function button(label, kind, onclick) {
    return el("button", { type: "button", class: `secondary ${kind}`, onclick }, label);
  }

  async function act(user, action, payload, done) {
    try {
      await api("POST", `/api/users/${encodeURIComponent(user.name)}/${action}`, payload || {});
      show(done, "ok");
    } catch (error) {
      show(error.message);
    }
    await load();
  }

  function agentOnly() {
    form.querySelector(".agent-only").hidden = field("new-role").value !== "agent";
  }

  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    const user = { name: field("new-name").value.trim(), role: field("new-role").value, password: field("new-password").value };
    const agentId = field("new-agent").value.trim();
    if (user.role === "agent" && agentId) user.agent_id = agentId;
    try {
      await api("POST", "/api/users", user);
      show(_("{name} created as {role}", { name: user.name, role: hotline.label(user.role) }), "ok");
      form.reset();
      agentOnly();
    } catch (error) {
      show(error.message);
    }
    await load();
  });
  field("new-role").addEventListener("change", agentOnly);
  agentOnly();
  load();
})();
