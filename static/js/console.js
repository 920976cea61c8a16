// The console's "Live" / "Reconnecting…" marker follows the websocket (htmx ws extension).
// A static file, not hx-on attributes: the Content-Security-Policy allows no inline code.
"use strict";

function liveStateSet(state) {
  const marker = document.getElementById("live-status");
  if (marker) {
    marker.dataset.state = state;
  }
}

document.addEventListener("htmx:wsOpen", () => liveStateSet("open"));
document.addEventListener("htmx:wsClose", () => liveStateSet("closed"));
