// The users page: list, create, change role, reset password, deactivate/reactivate, unlock (all through /api/users).
"use strict";
(() => {
  const { el, api, show } = hotline;
  const body = document.querySelector("#users tbody");
  const roleOptions = document.getElementById("roles").innerHTML;
  const form = document.getElementById("new-user");
  const field = (id) => document.getElementById(id);

  async function load() {
    try {
      render(await api("GET", "/api/users"));
    } catch (error) {
      show(`could not load the users: ${error.message}`);
    }
  }

  function render(users) {
    body.replaceChildren(...users.map(row));
    if (!users.length) body.append(el("tr", {}, el("td", { colspan: 6, class: "muted" }, "no users")));
  }

  function row(user) {
    const role = el("select", { "aria-label": `role of ${user.name}`, class: "role" });
    role.innerHTML = roleOptions;
    role.value = user.role;
    const password = el("input", { type: "password", class: "password", placeholder: "new password",
                                   autocomplete: "new-password", "aria-label": `new password for ${user.name}` });
    const status = [el("span", { class: user.active ? "tag good" : "tag bad" }, user.active ? "active" : "deactivated")];
    if (user.locked) status.push(" ", el("span", { class: "tag bad" }, `new addresses wait until ${time(user.locked_until)}`));
    return el("tr", { "data-user": user.name },
      el("td", {}, user.name),
      el("td", {}, role, " ", button("Change role", "change-role", () =>
        act(user, "role", { role: role.value }, `${user.name} is now ${role.value}`))),
      el("td", {}, user.agent_id || "–"),
      el("td", {}, status),
      el("td", {}, user.last_login_at ? time(user.last_login_at) : "never"),
      el("td", { class: "actions" },
        password, " ", button("Reset password", "reset-password", () =>
          act(user, "password", { password: password.value }, `password of ${user.name} reset: their sessions ended`)),
        " ", user.active
          ? button("Deactivate", "deactivate danger", () => act(user, "deactivate", undefined, `${user.name} deactivated`))
          : button("Reactivate", "reactivate", () => act(user, "reactivate", undefined, `${user.name} reactivated`)),
        user.locked ? [" ", button("Unlock", "unlock", () => act(user, "unlock", undefined, `${user.name} unlocked`))] : []));
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

  function time(iso) {
    return new Date(iso).toLocaleString();
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
      show(`${user.name} created as ${user.role}`, "ok");
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
