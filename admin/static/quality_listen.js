// The scoring page's player: "Listen to both / caller / agent" on a stereo conversation recording (caller on
// the left channel, agent on the right), and the recording's pauses on the timeline (from the link reply).
"use strict";
(() => {
  const box = document.getElementById("listening");
  const player = document.getElementById("player");
  const choice = document.getElementById("channel-choice");
  if (!box || !player || !choice) return;

  // Built on the first choice (a user gesture: browsers start an AudioContext made earlier suspended). Once the
  // element feeds Web Audio it plays only through it, so this is not built for a reviewer who never chooses.
  let gains = null;
  const route = () => {
    const context = new AudioContext();
    const splitter = context.createChannelSplitter(2);
    const merger = context.createChannelMerger(2);
    context.createMediaElementSource(player).connect(splitter);
    gains = { caller: context.createGain(), agent: context.createGain() };
    // channel 0 (left) is the caller, 1 (right) the agent; each goes to both ears so one party alone is heard
    // on both sides.
    [gains.caller, gains.agent].forEach((gain, channel) => {
      splitter.connect(gain, channel);
      gain.connect(merger, 0, 0);
      gain.connect(merger, 0, 1);
    });
    merger.connect(context.destination);
    player.addEventListener("play", () => context.resume());
    box.audio = { context, gains };  // read by the browser test
    return context;
  };

  const listen = (channel) => {
    const context = gains ? box.audio.context : route();
    gains.caller.gain.value = channel === "agent" ? 0 : 1;
    gains.agent.gain.value = channel === "caller" ? 0 : 1;
    box.dataset.channel = channel;
    context.resume();
  };
  choice.addEventListener("change", (event) => {
    if (event.target.name === "channel") listen(event.target.value);
  });

  // The link reply says the recording's kind (only conversations are stereo) and where the agent paused it.
  const showPauses = (pauses) => {
    const body = document.querySelector("#timeline tbody");
    if (!body || !pauses.length) return;
    body.querySelector("td[colspan]")?.parentElement.remove();  // "no record of this call yet"
    const offset = (row) => parseFloat(row.cells[0].textContent);
    for (const [from, to] of pauses) {
      const row = hotline.el("tr", { "data-kind": "recording_paused", "data-offset": from, class: "paused" },
        hotline.el("td", {}, from.toFixed(1)),
        hotline.el("td", {}, hotline._("Recording paused")),
        hotline.el("td", {}, hotline._("{from}–{to} s", { from: from.toFixed(1), to: to.toFixed(1) })));
      const after = [...body.rows].find((r) => offset(r) > from);
      body.insertBefore(row, after || null);
    }
  };
  hotline.api("POST", `/api/recordings/${encodeURIComponent(box.dataset.ref)}/link`).then((link) => {
    choice.hidden = link.kind !== "conversation";
    showPauses(link.pauses || []);
  }).catch(() => { choice.hidden = true; });
})();
