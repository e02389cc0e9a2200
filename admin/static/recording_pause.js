// The agent console's "Pause recording" button (issue 19): for a sensitive moment (card details) the agent pauses
// the conversation's recording and resumes it; the server audits both and resumes by itself after a while.
// Kept apart from console.js: it only needs the call the agent is on, which it asks the console API for.
"use strict";
(() => {
  const button = document.getElementById("recording-pause");
  if (!button) return;
  let paused = false;
  let callId = null;

  function show() {
    button.textContent = paused ? hotline._("Resume recording") : hotline._("Pause recording");
    button.classList.toggle("danger", paused);
    button.setAttribute("aria-pressed", String(paused));
  }

  button.addEventListener("click", async () => {
    try {
      const console_ = await hotline.api("GET", "/api/agent/console");
      const current = console_.call && console_.call.call_id;
      if (!current) return;
      if (current !== callId) { callId = current; paused = false; }
      const state = await hotline.api("POST", `/api/calls/${encodeURIComponent(current)}/recording`, { paused: !paused });
      paused = state.paused;
      show();
    } catch (error) {
      hotline.show(error.message);
    }
  });
  show();
})();
