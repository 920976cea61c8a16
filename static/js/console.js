// The console's live connection and its fallback.
//
// While the websocket is down (Redis or the server unavailable) the page says
// "Reconnecting…" and polls the same fragments over HTTP (the [data-poll]
// elements) every data-retry-seconds. When the socket opens again it asks for
// what it missed (the form[data-ws-hello] fields) and polling stops.
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

  // The app-level heartbeat: a socket can die without a close event (a frozen server, a
  // dropped network path). Every few seconds the page beats (saying whether the user is
  // here, for presence) and the server answers; after three beats of silence the page says
  // "Reconnecting…", polls, and opens a new socket.
  var beatSeconds = parseFloat(root.dataset.heartbeatSeconds) || 3;
  var socket = null, retired = null, wrapper = null, heardAt = 0, inputAt = Date.now();
  var IDLE_MS = 5 * 60 * 1000;
  ["keydown", "pointerdown", "pointermove", "scroll", "focus"].forEach(function (name) {
    window.addEventListener(name, function () { inputAt = Date.now(); }, { passive: true });
  });

  function active() {
    return document.visibilityState === "visible" && Date.now() - inputAt < IDLE_MS;
  }

  function beat() {
    if (!wrapper || status.dataset.state !== "open") return;
    if (Date.now() - heardAt > 3 * beatSeconds * 1000) {
      live("closed");
      retired = socket;
      wrapper.reconnect();
      return;
    }
    wrapper.send(JSON.stringify({ beat: 1, active: active() }));
  }
  setInterval(beat, beatSeconds * 1000);
  document.addEventListener("visibilitychange", beat);

  // What the page shows, said to the server when a socket opens: the fields of each
  // form[data-ws-hello]. Sent from here, not by each form's own htmx trigger: a form a poll
  // has just swapped in is wired only once htmx settles it, and a socket opening in that
  // moment would miss its hello and never get a live update.
  function fields(form) {
    var data = {};
    new FormData(form).forEach(function (value, name) { data[name] = value; });
    return JSON.stringify(data);
  }
  function hello() {
    document.querySelectorAll("form[data-ws-hello]").forEach(function (form) {
      wrapper.send(fields(form));
    });
  }

  document.body.addEventListener("htmx:wsOpen", function (event) {
    socket = event.detail.event.target;
    wrapper = event.detail.socketWrapper;
    heardAt = Date.now();
    live("open");
    hello();
    beat();
  });
  document.body.addEventListener("htmx:wsBeforeMessage", function (event) {
    heardAt = Date.now();
    // The server's answer to a beat has nothing to swap.
    if (event.detail.message === "<!-- beat -->") event.preventDefault();
  });
  document.body.addEventListener("htmx:wsClose", function (event) {
    // A socket given up on by the heartbeat may report its close after its successor opened.
    if (retired && event.detail.event && event.detail.event.target === retired) return;
    live("closed");
  });
  // A reply asks the socket for the new turn; without a socket, ask by HTTP.
  document.body.addEventListener("thread-sync", function () {
    var cursor = document.getElementById("thread-cursor");
    if (status.dataset.state !== "open") poll();
    else if (cursor) wrapper.send(fields(cursor));
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
