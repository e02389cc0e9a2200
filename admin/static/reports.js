// The reports page: the period's report from /api/reports/summary, key figures and four Chart.js charts.
// A refused period shows the API's own sentence; the CSV link always points at the chosen period.
"use strict";
(() => {
  const { el, _ } = hotline;
  const form = document.getElementById("period");
  const report = document.getElementById("report");
  const periodError = document.getElementById("period-error");
  const labels = JSON.parse(document.getElementById("report-labels").textContent);
  const charts = {};
  const CATEGORY_COLORS = ["#0b63ce", "#b54708", "#7a5af8", "#5b6577"];
  const RATING_COLORS = ["#067647", "#47cd89", "#98a2b3", "#f79009", "#b42318"];

  const pct = (rate) => (rate === null ? null : Math.round(rate * 1000) / 10);

  function query() {
    const params = new URLSearchParams({ from: form.elements.from.value, to: form.elements.to.value });
    return params.toString();
  }

  async function load() {
    const q = query();
    document.getElementById("csv-link").href = `/api/reports/summary.csv?${q}`;
    history.replaceState(null, "", `/admin/reports?${q}`);
    let data;
    try {
      data = await hotline.api("GET", `/api/reports/summary?${q}`);
    } catch (error) {
      report.hidden = true;
      periodError.textContent = error.message;
      periodError.hidden = false;
      return;
    }
    periodError.hidden = true;
    report.hidden = false;
    const p = data.period;
    document.getElementById("report-period").textContent =
      _("{start} to {end} ({zone}), made {time}", { start: p.start, end: p.end, zone: p.timezone, time: hotline.when(p.generated_at) });
    figures(data);
    drawCharts(data);
    document.body.dataset.ready = `${p.start}/${p.end}`;
  }

  function figures(data) {
    const { calls, queue, repeat_callers: repeat, complaints, return_visits: visits } = data;
    const items = [
      ["calls", _("Calls"), calls.total, _("{inbound} inbound, {outbound} outbound", calls)],
      ["self_service_rate", _("Self-service"), hotline.percent(queue.self_service_rate), _("of {n} inbound", { n: queue.inbound_calls })],
      ["service_level", _("Service level"), hotline.percent(queue.service_level),
        _("{n} of {queued} queued in {s} s", { n: queue.answered_within_sl, queued: queue.queued, s: data.period.service_level_s })],
      ["asa_s", _("Average speed of answer"), hotline.seconds(queue.asa_s), _("{n} answered", { n: queue.answered })],
      ["abandonment_rate", _("Abandoned in queue"), hotline.percent(queue.abandonment_rate), _("{n} calls", { n: queue.abandoned })],
      ["aht_s", _("Average handle time"), hotline.seconds(queue.aht_s), _("talk time only")],
      ["fcr_proxy", _("First-contact resolution (proxy)"), hotline.percent(repeat.fcr_proxy),
        _("{n} of {calls} called again within 7 days", { n: repeat.repeated, calls: repeat.calls })],
      ["complaints", _("Complaints"), complaints.total, _("replied on time {rate}", { rate: hotline.percent(complaints.replied_on_time_rate) })],
      ["resolved_on_time_rate", _("Resolved on time"), hotline.percent(complaints.resolved_on_time_rate),
        _("{late} late, {pending} pending", { late: complaints.resolved_late, pending: complaints.resolve_pending })],
      ["reach_rate", _("Return visits reached"), hotline.percent(visits.reach_rate), _("{n} of {total}", { n: visits.reached, total: visits.finished })],
      ["csat", _("CSAT (rated 1-2)"), hotline.percent(visits.csat), _("{n} rated", { n: visits.rated })],
    ];
    document.getElementById("figures").replaceChildren(...items.map(([key, title, value, note]) =>
      el("div", { class: "card", id: `fig-${key}` }, el("div", { class: "muted" }, title),
        el("div", { class: "figure" }, value), el("div", { class: "muted note" }, note))));
  }

  function drawCharts(data) {
    const hours = data.hourly.map((h) => String(h.hour).padStart(2, "0"));
    draw("chart-calls-hour", "bar", hours, [{ label: _("calls"), data: data.hourly.map((h) => h.calls),
                                              backgroundColor: "#0b63ce" }], { y: { beginAtZero: true } });
    // A line of points, not bars: 0 % shows as a point, an hour without queued calls as a gap.
    draw("chart-sl-hour", "line", hours, [{ label: _("service level %"), data: data.hourly.map((h) => pct(h.service_level)),
                                            borderColor: "#067647", backgroundColor: "#067647", pointRadius: 4,
                                            spanGaps: false }], { y: { min: 0, max: 100 } });
    draw("chart-complaints-week", "bar", data.weekly.map((w) => w.week),
      labels.categories.map((category, i) => ({
        label: labels.category_labels[category] || category, data: data.weekly.map((w) => w.by_category[category] || 0),
        backgroundColor: CATEGORY_COLORS[i % CATEGORY_COLORS.length],
      })),
      { x: { stacked: true }, y: { stacked: true, beginAtZero: true } });
    const ratings = Object.keys(labels.ratings);
    draw("chart-satisfaction", "bar", ratings.map((k) => labels.ratings[k]),
      [{ label: _("return visits"), data: ratings.map((k) => data.return_visits.ratings[k].count),
         backgroundColor: RATING_COLORS }], { y: { beginAtZero: true } });
  }

  function draw(id, type, chartLabels, datasets, scales) {
    const old = charts[id];
    if (old) {
      old.data.labels = chartLabels;
      old.data.datasets = datasets;
      old.update();
      return;
    }
    const ticks = { precision: 0 };
    for (const axis of Object.values(scales)) axis.ticks = ticks;
    charts[id] = new Chart(document.getElementById(id), {
      type, data: { labels: chartLabels, datasets },
      options: { animation: false, responsive: true, scales, plugins: { legend: { display: datasets.length > 1 } } },
    });
  }

  // The CSV of the period in the form, fetched here rather than followed: a refused period is a JSON sentence,
  // which a plain download link would drop without a word.
  document.getElementById("csv-link").addEventListener("click", async (event) => {
    event.preventDefault();
    const link = event.currentTarget;
    const href = `/api/reports/summary.csv?${query()}`;
    link.href = href;
    let response;
    try {
      response = await fetch(href, { credentials: "same-origin" });
    } catch (error) {
      showRefusal(error.message);
      return;
    }
    if (!response.ok) {
      const text = await response.text();
      let reason = `${response.status} ${response.statusText}`;
      try { reason = JSON.parse(text).error || reason; } catch (_) { /* not JSON: the status says it */ }
      showRefusal(reason);
      return;
    }
    if (!report.hidden) periodError.hidden = true;  // the refusal was the download's: it holds no more
    const named = /filename="?([^";]+)"?/.exec(response.headers.get("Content-Disposition") || "");
    const url = URL.createObjectURL(await response.blob());
    const save = el("a", { href: url, download: named ? named[1] : "hotline-report.csv", hidden: true });
    document.body.append(save);
    save.click();
    save.remove();
    setTimeout(() => URL.revokeObjectURL(url), 10000);
  });

  function showRefusal(reason) {
    periodError.textContent = reason;
    periodError.hidden = false;
  }

  form.addEventListener("submit", (event) => {
    event.preventDefault();
    load();
  });
  load();
})();
