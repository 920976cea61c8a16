// The inbox and the session page: timers that tick from the server's timestamps, service-level colours, and
// filters that apply as they change. A static file: the Content-Security-Policy allows no
// inline code.
(function () {
  "use strict";
  // Server clock minus this browser's, from the last fragment that said what time it was.
  var offset = 0;

  function syncClock() {
    var stamped = document.querySelector("[data-server-now]");
    var serverNow = stamped && parseFloat(stamped.dataset.serverNow);
    if (serverNow) offset = serverNow * 1000 - Date.now();
  }

  function duration(seconds) {
    seconds = Math.max(0, Math.floor(seconds));
    var d = Math.floor(seconds / 86400), h = Math.floor(seconds % 86400 / 3600);
    var m = Math.floor(seconds % 3600 / 60), s = seconds % 60;
    if (d) return d + "d " + h + "h";
    if (h) return h + "h " + (m < 10 ? "0" : "") + m + "m";
    if (m) return m + "m " + (s < 10 ? "0" : "") + s + "s";
    return s + "s";
  }

  function tick() {
    var now = (Date.now() + offset) / 1000;
    document.querySelectorAll("time[data-since]").forEach(function (time) {
      var elapsed = now - parseFloat(time.dataset.since);
      time.textContent = duration(elapsed);
      var warn = parseFloat(time.dataset.warn) || 0, breach = parseFloat(time.dataset.breach) || 0;
      var breached = breach > 0 && elapsed >= breach;
      var warned = !breached && warn > 0 && elapsed >= warn;
      var row = time.closest("tr") || time.parentElement;
      row.classList.toggle("sla-breach", breached);
      row.classList.toggle("sla-warn", warned);
      var mark = row.querySelector(".sla-mark");
      if (mark) mark.hidden = !breached;
    });
  }

  document.querySelectorAll("form[data-autosubmit]").forEach(function (form) {
    form.addEventListener("change", function () { form.requestSubmit(); });
  });
  document.body.addEventListener("htmx:afterSettle", function () { syncClock(); tick(); });
  document.body.addEventListener("htmx:wsAfterMessage", function () { syncClock(); tick(); });
  syncClock();
  tick();
  setInterval(tick, 1000);
})();
