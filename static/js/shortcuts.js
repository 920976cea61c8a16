// Keyboard shortcuts for the console (`?` lists them). In the inbox: j/k move between rows,
// c claims, o or Enter opens; r, h and e open the session at its reply, hand-back or
// resolve form. On a session page the same keys act on that session.
(function () {
  "use strict";
  var dialog = document.getElementById("shortcuts");
  var selectedId = null;
  var ACTIONS = { r: "reply", h: "hand-back", e: "resolve" };

  function rows() {
    return Array.prototype.slice.call(document.querySelectorAll("#queue tr.queue-row"));
  }

  function select(row, quiet) {
    rows().forEach(function (r) { r.classList.remove("selected"); r.removeAttribute("aria-selected"); });
    if (!row) { selectedId = null; return; }
    row.classList.add("selected");
    row.setAttribute("aria-selected", "true");
    if (!quiet) row.scrollIntoView({ block: "nearest" });
    selectedId = row.id;
  }

  function selected() {
    return selectedId ? document.getElementById(selectedId) : null;
  }

  function move(step) {
    var all = rows();
    if (!all.length) return;
    var index = all.indexOf(selected());
    index = index < 0 ? (step > 0 ? 0 : all.length - 1) : Math.min(all.length - 1, Math.max(0, index + step));
    select(all[index]);
  }

  // A session page's form for an action (the URLs stay whatever the page's layout is).
  function actionForm(action) {
    return document.querySelector('form[action$="/' + action + '/"]');
  }

  function openForm(action) {
    var form = actionForm(action);
    if (!form) return false;
    for (var el = form; el; el = el.parentElement) {
      if (el.tagName === "DETAILS") el.open = true;
      if (el.hidden) el.hidden = false;
    }
    var field = form.querySelector("textarea, input:not([type=hidden]), select, button");
    if (field) { field.scrollIntoView({ block: "center" }); field.focus(); }
    return true;
  }

  function toggleHelp() {
    if (!dialog) return;
    if (dialog.open) dialog.close(); else dialog.showModal();
  }

  document.querySelectorAll("[data-shortcuts-open]").forEach(function (button) {
    button.addEventListener("click", toggleHelp);
  });

  document.addEventListener("keydown", function (event) {
    if (event.ctrlKey || event.metaKey || event.altKey) return;
    var target = event.target;
    if (target.closest && target.closest("input, textarea, select, [contenteditable]")) return;
    if (event.key === "?") { event.preventDefault(); toggleHelp(); return; }
    if (dialog && dialog.open) return;
    var row = selected();
    var key = event.key;
    if (key === "j" || key === "ArrowDown") { if (rows().length) { event.preventDefault(); move(1); } return; }
    if (key === "k" || key === "ArrowUp") { if (rows().length) { event.preventDefault(); move(-1); } return; }
    if (key === "c") {
      var claim = row ? row.querySelector("button.claim") : document.querySelector("form[action$='/claim/'] button");
      if (claim) { event.preventDefault(); claim.click(); }
      return;
    }
    if ((key === "o" || key === "Enter") && row) { event.preventDefault(); window.location.href = row.dataset.url; return; }
    if (ACTIONS[key]) {
      if (row) { event.preventDefault(); window.location.href = row.dataset.url + "#do-" + ACTIONS[key]; }
      else if (openForm(ACTIONS[key])) event.preventDefault();
    }
  });

  // The queue is re-rendered live: keep the selection on the same session.
  document.body.addEventListener("htmx:wsAfterMessage", function () { select(selected(), true); });
  document.body.addEventListener("htmx:afterSettle", function () { select(selected(), true); });

  // Arriving from the inbox with r, h or e.
  var wanted = /^#do-(reply|hand-back|resolve)$/.exec(window.location.hash);
  if (wanted) openForm(wanted[1]);
})();
