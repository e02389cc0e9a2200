// The reports page: the period's report from /api/reports/summary, key figures and four Chart.js charts.
// A refused period shows the API's own sentence; the CSV link always points at the chosen period.
"use strict";
(() => {
  const { el } = hotline;
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
      `${p.start} to ${p.end} (${p.timezone}), made ${new Date(p.generated_at).toLocaleString()}`;
    figures(data);
    drawCharts(data);
    document.body.dataset.ready = `${p.start}/${p.end}`;
  }

  function figures(data) {
    const { calls, queue, repeat_callers: repeat, complaints, return_visits: visits } = data;
    const items = [
      ["calls", "Calls", calls.total, `${calls.inbound} inbound, ${calls.outbound} outbound`],
      ["self_service_rate", "Self-service", hotline.percent(queue.self_service_rate), `of ${queue.inbound_calls} inbound`],
      ["service_level", "Service level", hotline.percent(queue.service_level),
        `${queue.answered_within_sl} of ${queue.queued} queued in ${data.period.service_level_s} s`],
      ["asa_s", "Average speed of answer", hotline.seconds(queue.asa_s), `${queue.answered} answered`],
      ["abandonment_rate", "Abandoned in queue", hotline.percent(queue.abandonment_rate), `${queue.abandoned} calls`],
      ["aht_s", "Average handle time", hotline.seconds(queue.aht_s), "talk time only"],
      ["fcr_proxy", "First-contact resolution (proxy)", hotline.percent(repeat.fcr_proxy),
        `${repeat.repeated} of ${repeat.calls} called again within 7 days`],
      ["complaints", "Complaints", complaints.total, `replied on time ${hotline.percent(complaints.replied_on_time_rate)}`],
      ["resolved_on_time_rate", "Resolved on time", hotline.percent(complaints.resolved_on_time_rate),
        `${complaints.resolved_late} late, ${complaints.resolve_pending} pending`],
      ["reach_rate", "Return visits reached", hotline.percent(visits.reach_rate), `${visits.reached} of ${visits.finished}`],
      ["csat", "CSAT (rated 1-2)", hotline.percent(visits.csat), `${visits.rated} rated`],
    ];
    document.getElementById("figures").replaceChildren(...items.map(([key, title, value, note]) =>
      el("div", { class: "card", id: `fig-${key}` }, el("div", { class: "muted" }, title),
        el("div", { class: "figure" }, value), el("div", { class: "muted note" }, note))));
  }

  function drawCharts(data) {
    const hours = data.hourly.map((h) => String(h.hour).padStart(2, "0"));
    draw("chart-calls-hour", "bar", hours, [{ label: "calls", data: data.hourly.map((h) => h.calls),
                                              backgroundColor: "#0b63ce" }], { y: { beginAtZero: true } });
    // A line of points, not bars: 0 % shows as a point, an hour without queued calls as a gap.
    draw("chart-sl-hour", "line", hours, [{ label: "service level %", data: data.hourly.map((h) => pct(h.service_level)),
                                            borderColor: "#067647", backgroundColor: "#067647", pointRadius: 4,
                                            spanGaps: false }], { y: { min: 0, max: 100 } });
    draw("chart-complaints-week", "bar", data.weekly.map((w) => w.week),
      labels.categories.map((category, i) => ({
        label: category, data: data.weekly.map((w) => w.by_category[category] || 0),
        backgroundColor: CATEGORY_COLORS[i % CATEGORY_COLORS.length],
      })),
      { x: { stacked: true }, y: { stacked: true, beginAtZero: true } });
    const ratings = Object.keys(labels.ratings);
    draw("chart-satisfaction", "bar", ratings.map((k) => labels.ratings[k]),
      [{ label: "return visits", data: ratings.map((k) => data.return_visits.ratings[k].count),
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

  form.addEventListener("submit", (event) => {
    event.preventDefault();
    load();
  });
  load();
})();
