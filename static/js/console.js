// The console's live connection and its fallback.
//
// While the websocket is down (Redis or the server unavailable) the page says
// "Reconnecting…" and polls the same fragments over HTTP (the [data-poll]
// elements) every data-retry-seconds. When the socket opens again it asks for
// what it missed (the ws-hello / thread-cursor forms) and polling stops.
// A static file, not hx-on attributes: the Content-Security-Policy allows no inline code.
(function () {
  "use strict";
  var root = document.querySelector("[data-live]");
  var status = document.getElementById("live-status");
  if (!root || !status) return;
  var seconds = parseFloat(root.dataset.retrySeconds) || 5;
  var timer = null;

  // Reconnect with exponential backoff and jitter, but never wait longer than
  // the polling interval, so live updates come back soon after the service does.
  htmx.config.wsReconnectDelay = function (retryCount) {
    var delay = Math.min(1000 * Math.pow(2, retryCount), seconds * 1000);
    return delay * (0.5 + Math.random() / 2);
  };

  function poll() {
    document.querySelectorAll("[data-poll]").forEach(function (element) {
      htmx.trigger(element, "console-poll");
    });
  }

  function live(state) {
    status.dataset.state = state;
    if (state === "open") {
      clearInterval(timer);
      timer = null;
    } else if (timer === null) {
      timer = setInterval(poll, seconds * 1000);
    }
  }

  document.body.addEventListener("htmx:wsOpen", function () { live("open"); });
  document.body.addEventListener("htmx:wsClose", function () { live("closed"); });
  // A reply asks the socket for the new turn; without a socket, ask by HTTP.
  document.body.addEventListener("thread-sync", function () {
    if (status.dataset.state !== "open") poll();
  });

  // A poll answered just after the socket reopened can carry turns the socket
  // also sends: keep the first copy of each thread item.
  var thread = document.getElementById("thread");
  if (thread) {
    new MutationObserver(function () {
      var seen = {};
      Array.prototype.slice.call(thread.children).forEach(function (item) {
        if (item.id && seen[item.id]) item.remove();
        else seen[item.id] = true;
      });
    }).observe(thread, { childList: true });
  }
})();
