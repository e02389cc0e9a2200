// Work-order detail: ask for a signed link to the recording, then play it. The player is made only once there is
// a link: an <audio> without a source shows a dead, greyed-out player.
"use strict";
(() => {
  const button = document.getElementById("play-recording");
  const box = document.getElementById("player-box");
  if (!button || !box) return;
  button.addEventListener("click", async () => {
    button.disabled = true;
    try {
      const link = await hotline.api("POST", `/api/recordings/${encodeURIComponent(button.dataset.ref)}/link`);
      const player = document.getElementById("player") || box.appendChild(hotline.el("audio", {
        id: "player", controls: true, preload: "none", "aria-label": button.textContent.trim() }));
      player.src = link.url;  // a fresh link on each press: the last one may have expired
      player.play().catch(() => {});  // autoplay may be refused: the controls are there
    } catch (error) {
      hotline.show(error.message);
    } finally {
      button.disabled = false;
    }
  });
})();
