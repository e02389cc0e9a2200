// Work-order detail: ask for a signed link to the recording, then play it.
"use strict";
(() => {
  const button = document.getElementById("play-recording");
  const player = document.getElementById("player");
  if (!button || !player) return;
  button.addEventListener("click", async () => {
    button.disabled = true;
    try {
      const link = await hotline.api("POST", `/api/recordings/${encodeURIComponent(button.dataset.ref)}/link`);
      player.src = link.url;
      player.hidden = false;
      player.play().catch(() => {});  // autoplay may be refused: the controls are there
    } catch (error) {
      hotline.show(error.message);
    } finally {
      button.disabled = false;
    }
  });
})();
