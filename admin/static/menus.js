// The menu editor: live checks while typing, the flow graph, TRY IT, publish, versions and rollback.
"use strict";
(() => {
  const page = document.getElementById("editor-page");
  if (!page) return;
  const name = page.dataset.menu;
  const api = `/api/menus/${encodeURIComponent(name)}`;
  const $ = (id) => document.getElementById(id);
  const { _ } = hotline;
  const source = $("source");
  const gutter = $("gutter");
  const CHECK_DELAY_MS = 300;
  const state = { detail: null, baseVersion: null, savedText: source.value, checkSeq: 0, graphKey: "",
                  problemLines: new Set(), sim: null, typed: "" };

  // -- the text and its line numbers ----------------------------------------------------------

  function lineCount() { return source.value.split("\n").length; }

  function drawGutter() {
    const lines = [];
    for (let n = 1; n <= lineCount(); n++) lines.push(state.problemLines.has(n) ? `<b>${n}</b>` : String(n));
    gutter.innerHTML = lines.join("\n");
    gutter.scrollTop = source.scrollTop;
  }

  function selectLine(line) {
    const lines = source.value.split("\n");
    const start = lines.slice(0, line - 1).reduce((sum, text) => sum + text.length + 1, 0);
    const end = start + (lines[line - 1] || "").length;
    source.focus();
    source.setSelectionRange(start, end);
    const lineHeight = parseFloat(getComputedStyle(source).lineHeight) || 18;
    source.scrollTop = Math.max(0, (line - 5) * lineHeight);
    drawGutter();
  }

  function lineOfNode(id) {
    const lines = source.value.split("\n");
    const found = lines.findIndex((text) => new RegExp(`^\\s+["']?${id.replace(/[.*+?^${}()|[\]\\]/g, "\\$&")}["']?\\s*:`).test(text));
    return found < 0 ? null : found + 1;
  }

  // -- live checks ----------------------------------------------------------------------------

  let checkTimer = null;
  function changed() {
    $("dirty").hidden = source.value === state.savedText;
    drawGutter();
    clearTimeout(checkTimer);
    checkTimer = setTimeout(runCheck, CHECK_DELAY_MS);
  }

  async function runCheck() {
    const seq = ++state.checkSeq;
    let result;
    try {
      result = await hotline.api("POST", `${api}/check`, { source: source.value });
    } catch (error) {
      if (seq === state.checkSeq) hotline.show(error.message);
      return;
    }
    if (seq !== state.checkSeq) return; // an older answer arriving after a newer one
    showProblems(result.problems);
    const status = $("check-status");
    status.textContent = result.valid ? _("valid")
      : result.problems.length === 1 ? _("1 problem") : _("{n} problems", { n: result.problems.length });
    status.className = `tag ${result.valid ? "good" : "bad"}`;
    $("publish").disabled = !result.valid;
    if (result.valid && result.graph) drawGraph(result.graph);
  }

  function showProblems(problems) {
    const list = $("problems");
    state.problemLines = new Set(problems.filter((p) => p.line).map((p) => p.line));
    list.replaceChildren(...(problems.length ? problems.map(problemItem) : [hotline.el("li", { class: "muted" }, _("none"))]));
    drawGutter();
  }

  function problemItem(problem) {
    const where = [problem.node ? _("node {node}", { node: problem.node }) : _("menu"),
                   problem.line ? _("line {line}", { line: problem.line }) : null]
      .filter(Boolean).join(" · ");
    const attrs = { type: "button", class: "problem", "data-line": problem.line || "", "data-node": problem.node || "" };
    if (problem.line) attrs.onclick = () => selectLine(problem.line);
    return hotline.el("li", null, hotline.el("button", attrs, hotline.el("strong", null, where), " ", problem.reason));
  }

  // -- the flow graph -------------------------------------------------------------------------

  let graph = null;
  // Labels are drawn at LABEL_PX on screen or more when the graph is fitted: a big menu is shown from its
  // top at that size (drag or zoom out to see the rest) rather than whole and unreadable.
  const NODE_FONT_PX = 12;
  const LABEL_PX = 12;
  const READABLE_ZOOM = LABEL_PX / NODE_FONT_PX;
  const ZOOM_STEP = 1.25;
  const SHAPES = { menu: "round-rectangle", input: "round-rectangle", say: "rectangle", action: "diamond",
                   queue: "hexagon", hangup: "octagon", transfer: "octagon", record: "ellipse",
                   language: "ellipse", survey: "round-rectangle" };
  const COLOURS = { menu: "#dbeafe", input: "#e0f2fe", say: "#f2f4f7", action: "#fef0c7", queue: "#dcfae6",
                    hangup: "#fee4e2", transfer: "#fee4e2", record: "#f4ebff", language: "#f2f4f7", survey: "#dbeafe" };

  function drawGraph(data) {
    const inherited = $("show-inherited").checked;
    const key = JSON.stringify([data, inherited]);
    if (key === state.graphKey) return;
    state.graphKey = key;
    state.graphData = data;
    // Global keys and the default fallback leave every node: drawn only on request, or they hide the flow.
    const edges = data.edges.filter((e) => inherited || e.kind === "own");
    const elements = [
      ...data.nodes.map((n) => ({ data: { id: n.id, label: n.label, type: n.type } })),
      ...edges.map((e, i) => ({ data: { id: `e${i}`, source: e.source, target: e.target, label: e.label, kind: e.kind } })),
    ];
    if (!graph) {
      graph = cytoscape({ container: $("graph"), elements, style: graphStyle(), minZoom: 0.1, maxZoom: 4,
                          autoungrabify: true, boxSelectionEnabled: false });
      graph.on("tap", "node", (event) => { const line = lineOfNode(event.target.id()); if (line) selectLine(line); });
      graph.on("zoom", showZoom);
      window.menuGraph = graph; // for people and tests poking at the page
    } else {
      graph.elements().remove();
      graph.add(elements);
    }
    graph.layout({ name: "dagre", rankDir: "TB", nodeSep: 30, rankSep: 60, edgeSep: 10, fit: false }).run();
    fitReadable();
    $("graph").dataset.nodes = String(data.nodes.length);
  }

  // The whole graph if it fits at a readable size; else readable, from the top, where the call starts (the
  // layout's top node), in the middle.
  function fitReadable() {
    if (!graph || graph.nodes().empty()) return;
    graph.fit(undefined, 20);
    if (graph.zoom() < READABLE_ZOOM) {
      const top = graph.elements().boundingBox().y1;
      const start = graph.nodes().min((n) => n.position("y")).ele.position();
      graph.zoom(READABLE_ZOOM);
      graph.pan({ x: graph.width() / 2 - start.x * READABLE_ZOOM, y: 20 - top * READABLE_ZOOM });
    }
    showZoom();
  }

  function zoomBy(factor) {
    if (!graph) return;
    graph.zoom({ level: graph.zoom() * factor, renderedPosition: { x: graph.width() / 2, y: graph.height() / 2 } });
  }

  function showZoom() { $("zoom-level").textContent = `${Math.round(graph.zoom() * 100)}%`; }

  function graphStyle() {
    return [
      { selector: "node", style: {
        shape: (n) => SHAPES[n.data("type")] || "rectangle",
        "background-color": (n) => COLOURS[n.data("type")] || "#fff",
        "border-width": 1, "border-color": "#98a2b3", label: "data(label)", "text-wrap": "wrap",
        "text-max-width": 200, "text-valign": "center", "font-size": NODE_FONT_PX, width: 210, height: 66,
        color: "#1d2433" } },
      { selector: "edge", style: {
        width: 1.2, "line-color": "#98a2b3", "target-arrow-color": "#98a2b3", "target-arrow-shape": "triangle",
        "curve-style": "bezier", label: "data(label)", "font-size": NODE_FONT_PX - 1, color: "#475467",
        "text-background-color": "#fff", "text-background-opacity": 1, "text-background-padding": 1 } },
      { selector: "edge[kind != 'own']", style: { "line-style": "dashed", "line-color": "#d0d5dd",
        "target-arrow-color": "#d0d5dd", color: "#98a2b3" } },
    ];
  }

  // -- status, saving, publishing -------------------------------------------------------------

  async function loadDetail() {
    const detail = await hotline.api("GET", api);
    state.detail = detail;
    state.baseVersion = detail.draft ? detail.draft.base_version : detail.live_version;
    const live = detail.live_version
      ? _("Live: version {version}, published by {who} at {time}.", { version: detail.live_version, who: detail.published_by, time: when(detail.published_at) })
      : _("Never published.");
    const draft = detail.draft
      ? _("Draft saved by {who} at {time}, based on version {version}.", { who: detail.draft.updated_by, time: when(detail.draft.updated_at), version: detail.draft.base_version })
      : _("No saved draft.");
    $("status").textContent = `${live} ${draft}`;
    const stale = $("stale");
    stale.hidden = !(detail.draft && detail.draft.stale);
    stale.textContent = stale.hidden ? "" : _("Version {live} went live (published by {who}) after this draft began from version {base}: check the versions below before publishing.",
      { live: detail.live_version, who: detail.published_by, base: detail.draft.base_version });
    $("discard").disabled = !detail.draft;
  }

  const when = hotline.when;

  async function save() {
    try {
      await hotline.api("PUT", `${api}/draft`, { source: source.value, base_version: state.baseVersion });
      state.savedText = source.value;
      $("dirty").hidden = true;
      hotline.show(_("Draft saved."), "ok");
      await loadDetail();
    } catch (error) { hotline.show(error.message); }
  }

  async function discard() {
    try {
      await hotline.api("DELETE", `${api}/draft`);
      await loadDetail();
      source.value = state.detail.live_source || "";
      state.savedText = source.value;
      changed();
      hotline.show(_("Draft discarded: the editor holds the live text again."), "ok");
    } catch (error) { hotline.show(error.message); }
  }

  // -- confirming: what would change in the live menu, line by line --------------------------------

  let confirmed = null; // what the dialog's confirm button does

  function showDiff(diff) {
    const lines = (diff || "").split("\n").filter((line, i, all) => line || i < all.length - 1);
    $("confirm-diff").replaceChildren(...(lines.length ? lines.map((line) => hotline.el("span", {
      class: line.startsWith("+") && !line.startsWith("+++") ? "add"
        : line.startsWith("-") && !line.startsWith("---") ? "del" : null }, `${line}\n`)) : [_("(no change)")]));
  }

  async function confirmThen(body, title, what, go, action) {
    let preview;
    try {
      preview = await hotline.api("POST", `${api}/preview`, body);
    } catch (error) {
      if (error.data && error.data.problems) showProblems(error.data.problems);
      hotline.show(error.message);
      return;
    }
    $("confirm-title").textContent = title;
    $("confirm-what").textContent = preview.live_version
      ? [what, _("Changes against the live version {version}:", { version: preview.live_version })].join(" ") : what;
    showDiff(preview.diff);
    $("confirm-go").textContent = go;
    confirmed = action;
    $("confirm-dialog").showModal();
  }

  function askPublish() {
    confirmThen({ source: source.value }, _("Publish this draft?"),
      _("It goes live at once as a new version: new calls hear it."), _("Publish"), () => publish(false));
  }

  function askRollback(version) {
    confirmThen({ version }, _("Roll back to v{version}?", { version }),
      _("The text of v{version} goes live again at once, as a new version: new calls hear it.", { version }),
      _("Roll back"), () => rollback(version));
  }

  async function publish(overwrite) {
    $("publish-stale").hidden = true;
    try {
      const published = await hotline.api("POST", `${api}/publish`,
        { source: source.value, base_version: state.baseVersion, overwrite: !!overwrite });
      state.savedText = source.value;
      $("dirty").hidden = true;
      $("last-publish").hidden = false;
      $("last-publish-summary").textContent = _("Published version {version} by {who}: what changed", { version: published.version, who: published.published_by });
      $("last-diff").textContent = published.diff || _("(no change)");
      hotline.show(_("Version {version} is live: new calls hear it now.", { version: published.version }), "ok");
      await Promise.all([loadDetail(), loadVersions()]);
    } catch (error) {
      if (error.status === 409) {
        $("publish-stale-text").textContent = error.message + " ";
        $("publish-stale").hidden = false;
      } else {
        if (error.data && error.data.problems) showProblems(error.data.problems);
        hotline.show(error.message);
      }
    }
  }

  // -- versions and rollback ------------------------------------------------------------------

  async function loadVersions() {
    const versions = await hotline.api("GET", `${api}/versions`).catch(() => []);
    const rows = versions.map((v) => hotline.el("tr", { "data-version": v.version },
      hotline.el("td", null, `v${v.version} `, v.live ? hotline.el("span", { class: "tag good" }, _("live")) : null,
        v.restored_from ? hotline.el("span", { class: "tag rollback" }, _("rollback to v{version}", { version: v.restored_from })) : null),
      hotline.el("td", { translate: "no" }, v.published_by),
      hotline.el("td", null, when(v.published_at)),
      hotline.el("td", null, hotline.el("details", null, hotline.el("summary", null, diffSize(v.diff)),
                                        hotline.el("pre", { class: "diff", translate: "no" }, v.diff || _("(no change)")))),
      hotline.el("td", null, v.live ? null : hotline.el("button", {
        type: "button", class: "secondary rollback", id: `rollback-${v.version}`, onclick: () => askRollback(v.version),
      }, _("Roll back to v{version}", { version: v.version })))));
    $("versions").tBodies[0].replaceChildren(...rows);
  }

  function diffSize(diff) {
    const lines = (diff || "").split("\n");
    const added = lines.filter((l) => l.startsWith("+") && !l.startsWith("+++")).length;
    const removed = lines.filter((l) => l.startsWith("-") && !l.startsWith("---")).length;
    return `+${added} −${removed}`;
  }

  async function rollback(version) {
    try {
      const published = await hotline.api("POST", `${api}/rollback`, { version });
      hotline.show(_("Version {old} is live again as version {version}.", { old: version, version: published.version }), "ok");
      const untouched = source.value === state.savedText;
      await Promise.all([loadDetail(), loadVersions()]);
      if (untouched && !state.detail.draft) { // nothing of the admin's to keep: show what is live now
        source.value = state.savedText = state.detail.live_source;
        changed();
      }
    } catch (error) { hotline.show(error.message); }
  }

  // -- TRY IT ---------------------------------------------------------------------------------

  async function simCall() {
    state.typed = "";
    $("sim-path").replaceChildren();
    $("sim-effects").replaceChildren();
    try {
      showSim(await hotline.api("POST", `${api}/simulations`, { source: source.value }));
    } catch (error) {
      if (error.data && error.data.problems) showProblems(error.data.problems);
      hotline.show(error.message);
    }
  }

  async function simSend(body) {
    if (!state.sim) return;
    state.typed = "";
    try {
      showSim(await hotline.api("POST", `${api}/simulations/${encodeURIComponent(state.sim.id)}`, body));
    } catch (error) { hotline.show(error.message); }
  }

  function pressKey(key) {
    const sim = state.sim;
    if (!sim) return;
    const waiting = sim.waiting;
    if (waiting.kind === "record") {
      if (key === "#" || key === "*") simSend({ event: "recording", seconds: 5 });
      return;
    }
    if (waiting.kind !== "keys") return;
    state.typed += key;
    showTyped();
    // As a phone's gather: done at the finish key or when enough digits are in.
    if ((waiting.finish_on_key && key === waiting.finish_on_key) || state.typed.length >= waiting.max_digits) {
      simSend({ event: "keys", digits: state.typed });
    }
  }

  function simSilence() {
    if (state.typed) simSend({ event: "keys", digits: state.typed });
    else simSend({ event: "timeout" });
  }

  function showTyped() {
    const sensitive = state.sim && state.sim.waiting.sensitive;
    $("sim-typed").textContent = sensitive ? "•".repeat(state.typed.length) : state.typed;
  }

  function showSim(sim) {
    state.sim = sim;
    const screen = $("sim-screen");
    // What the caller hears is in the menu's language, whatever the page's.
    screen.replaceChildren(...(sim.said.length ? sim.said.map((s) => hotline.el("p", { class: "said", lang: s.language,
      translate: "no", "data-prompt": s.prompt_id }, s.text)) : [hotline.el("p", { class: "muted" }, _("(silence)"))]));
    for (const effect of sim.effects) $("sim-effects").append(hotline.el("li", null, effect));
    $("sim-path").replaceChildren(...sim.path.map((step) => hotline.el("li", { translate: "no" },
      hotline.el("code", null, step.node), " ", step.input)));
    const kind = sim.waiting.kind;
    const live = kind !== "ended";
    document.querySelectorAll("#keypad .key").forEach((b) => { b.disabled = !(kind === "keys" || kind === "record"); });
    $("sim-timeout").disabled = !(kind === "keys" || kind === "record");
    $("sim-hangup").disabled = !live;
    $("sim-recorded").hidden = kind !== "record";
    $("sim-agent").hidden = $("sim-no-agent").hidden = kind !== "queue";
    $("sim-waiting").textContent = waitingText(sim);
    showTyped();
  }

  function waitingText(sim) {
    const w = sim.waiting;
    const node = sim.node;
    if (w.kind === "keys") {
      const keys = w.max_digits > 1 ? _("at {node}: waiting for up to {n} keys", { node, n: w.max_digits })
        : _("at {node}: waiting for a key", { node });
      return keys + (w.finish_on_key ? _(", {key} to finish", { key: w.finish_on_key }) : "");
    }
    if (w.kind === "record") return _("at {node}: recording (press # to finish)", { node });
    if (w.kind === "queue") return _("at {node}: waiting for an agent", { node });
    if (w.kind === "transfer") return _("transferred to {target}", { target: w.target });
    return _("call ended ({outcome})", { outcome: hotline.label(sim.outcome || "hangup") });
  }

  // -- wiring ---------------------------------------------------------------------------------

  source.addEventListener("input", changed);
  source.addEventListener("scroll", () => { gutter.scrollTop = source.scrollTop; });
  // Tab indents (two spaces, as YAML wants) and Shift+Tab outdents; Esc, then Tab or Shift+Tab, leaves the
  // editor as everywhere else, so that the keyboard is never trapped in it (the help text under it says so).
  let leaving = false;
  source.addEventListener("keydown", (event) => {
    if (event.key === "Escape") { leaving = true; return; }
    if (event.key === "Shift") return;
    const tab = event.key === "Tab" && !event.ctrlKey && !event.altKey && !event.metaKey;
    if (tab && !leaving) {
      event.preventDefault();
      if (event.shiftKey) outdent();
      else source.setRangeText("  ", source.selectionStart, source.selectionEnd, "end");
      changed();
    }
    leaving = false;
  });
  source.addEventListener("blur", () => { leaving = false; });

  function outdent() {
    const start = source.value.lastIndexOf("\n", source.selectionStart - 1) + 1;
    const spaces = source.value.slice(start, start + 2).match(/^ {0,2}/)[0].length;
    if (spaces) source.setRangeText("", start, start + spaces, "end");
  }
  $("save").addEventListener("click", save);
  $("discard").addEventListener("click", discard);
  $("publish").addEventListener("click", askPublish);
  $("confirm-go").addEventListener("click", () => {
    const action = confirmed;
    $("confirm-dialog").close();
    if (action) action();
  });
  $("confirm-cancel").addEventListener("click", () => $("confirm-dialog").close());
  $("confirm-dialog").addEventListener("close", () => { confirmed = null; });
  $("zoom-in").addEventListener("click", () => zoomBy(ZOOM_STEP));
  $("zoom-out").addEventListener("click", () => zoomBy(1 / ZOOM_STEP));
  $("zoom-fit").addEventListener("click", fitReadable);
  $("graph").addEventListener("keydown", (event) => {
    if (event.ctrlKey || event.altKey || event.metaKey) return;
    const act = { "+": () => zoomBy(ZOOM_STEP), "=": () => zoomBy(ZOOM_STEP), "-": () => zoomBy(1 / ZOOM_STEP),
                  "0": fitReadable }[event.key];
    if (act) { event.preventDefault(); act(); }
  });
  $("publish-anyway").addEventListener("click", () => publish(true));
  $("show-inherited").addEventListener("change", () => { if (state.graphData) drawGraph(state.graphData); });
  $("sim-call").addEventListener("click", simCall);
  $("sim-hangup").addEventListener("click", () => simSend({ event: "hangup" }));
  $("sim-timeout").addEventListener("click", simSilence);
  $("sim-recorded").addEventListener("click", () => simSend({ event: "recording", seconds: 5 }));
  $("sim-agent").addEventListener("click", () => simSend({ event: "queue", result: "bridged" }));
  $("sim-no-agent").addEventListener("click", () => simSend({ event: "queue", result: "timeout" }));
  document.querySelectorAll("#keypad .key").forEach((b) => b.addEventListener("click", () => pressKey(b.dataset.key)));

  drawGutter();
  loadDetail().catch((error) => hotline.show(error.message));
  loadVersions();
  runCheck();
})();
