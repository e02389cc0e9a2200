// Shared by every page: JSON calls to /api with the page's CSRF token, small DOM helpers, the page's
// language (messages from the page's JSON block #page-i18n: the CSP allows no inline script) and its times.
"use strict";
const hotline = {
  csrf: document.querySelector('meta[name="csrf-token"]')?.content || "",
  i18n: JSON.parse(document.getElementById("page-i18n")?.textContent || '{"messages": {}, "labels": {}}'),
  timezone: document.body.dataset.timezone || "UTC",

  // The message in the page's language, its {names} filled in: _("Saved {id}", { id }).
  _(message, values) {
    const text = hotline.i18n.messages[message] || message;
    return values ? text.replace(/\{(\w+)\}/g, (all, name) => (name in values ? String(values[name]) : all)) : text;
  },

  // A code (state, status, role, category...) as people read it in the page's language.
  label(code) {
    if (code === null || code === undefined || code === "") return "–";
    return hotline.i18n.labels[code] || String(code).replaceAll("_", " ");
  },

  // Every time on every page: "2026-12-06 22:52:03" in HOTLINE_TIMEZONE (from Unix seconds or ISO 8601 text).
  when(value) {
    if (value === null || value === undefined || value === "") return "–";
    const date = typeof value === "number" ? new Date(value * 1000) : new Date(value);
    if (Number.isNaN(date.getTime())) return String(value);
    const parts = {};
    for (const part of hotline.timeFormat.formatToParts(date)) parts[part.type] = part.value;
    return `${parts.year}-${parts.month}-${parts.day} ${parts.hour}:${parts.minute}:${parts.second}`;
  },

  // fetch JSON; throws an Error carrying the server's "error" sentence and the status.
  async api(method, path, body) {
    const init = { method, credentials: "same-origin", headers: { "X-CSRFToken": hotline.csrf } };
    if (body !== undefined) {
      init.headers["Content-Type"] = "application/json";
      init.body = JSON.stringify(body);
    }
    const response = await fetch(path, init);
    const text = await response.text();
    let data = null;
    try { data = text ? JSON.parse(text) : null; } catch (_) { data = text; }
    if (!response.ok) {
      const error = new Error((data && data.error) || `${response.status} ${response.statusText}`);
      error.status = response.status;
      error.data = data;
      throw error;
    }
    return data;
  },

  // element builder: el("td", {class: "x"}, "text", child)
  el(tag, attrs, ...children) {
    const node = document.createElement(tag);
    for (const [name, value] of Object.entries(attrs || {})) {
      if (value === null || value === undefined || value === false) continue;
      if (name.startsWith("on")) node.addEventListener(name.slice(2), value);
      else node.setAttribute(name, value === true ? "" : value);
    }
    for (const child of children.flat()) {
      if (child === null || child === undefined) continue;
      node.append(child instanceof Node ? child : document.createTextNode(String(child)));
    }
    return node;
  },

  seconds(value) {
    if (value === null || value === undefined) return "–";
    const s = Math.round(value);
    return s < 60 ? hotline._("{s}s", { s })
      : hotline._("{m}m {s}s", { m: Math.floor(s / 60), s: String(s % 60).padStart(2, "0") });
  },

  percent(value) {
    return value === null || value === undefined ? "–" : `${(value * 100).toFixed(1)}%`;
  },

  show(message, kind = "error") {
    const box = document.getElementById("message") || document.querySelector("main");
    const line = hotline.el("p", { class: `flash ${kind}`, role: kind === "error" ? "alert" : "status" }, message);
    box.prepend(line);
    setTimeout(() => line.remove(), 8000);
  },
};
hotline.timeFormat = new Intl.DateTimeFormat("en-CA", {
  timeZone: hotline.timezone, year: "numeric", month: "2-digit", day: "2-digit",
  hour: "2-digit", minute: "2-digit", second: "2-digit", hourCycle: "h23",
});
