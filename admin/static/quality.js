// The quality pages: a comment at the player's current time (scoring page), the trend chart (scorecards).
"use strict";
(() => {
  const player = document.getElementById("player");
  const now = document.getElementById("comment-now");
  if (player && now) {
    now.addEventListener("click", () => {
      const empty = [...document.querySelectorAll("#comments input[name='comment_at']")].find((i) => !i.value);
      if (!empty) return;
      const s = Math.floor(player.currentTime);
      empty.value = `${Math.floor(s / 60)}:${String(s % 60).padStart(2, "0")}`;
      empty.nextElementSibling.focus();
    });
  }
  const data = document.getElementById("trend-data");
  const canvas = document.getElementById("trend-chart");
  if (data && canvas && window.Chart) {
    const chart = JSON.parse(data.textContent);
    new Chart(canvas, {
      type: "line", data: chart,
      options: { animation: false, responsive: true, spanGaps: true, scales: { y: { min: 0, max: 100 } } },
    });
  }
})();
