// Shared by every page: JSON calls to /api with the page's CSRF token, and small DOM helpers.
"use strict";
const hotline = {
  csrf: document.querySelector('meta[name="csrf-token"]')?.content || "",

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
    return s < 60 ? `${s}s` : `${Math.floor(s / 60)}m ${String(s % 60).padStart(2, "0")}s`;
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
