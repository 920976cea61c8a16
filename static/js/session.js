// The session page's reply box: a character counter that refuses to send past
// the limit, and the canned-response picker opened by typing "/".
// A static file, not inline code: the Content-Security-Policy allows none.
(function () {
  "use strict";

  // Counters: <p data-char-count-for="ID"> under a textarea with data-max-chars.
  // The textarea has no maxlength (a browser would silently cut a paste); the
  // server refuses too long a text with a message, and so does this, before sending.
  function updateCount(counter) {
    var box = document.getElementById(counter.dataset.charCountFor);
    if (!box) return;
    var max = parseInt(box.dataset.maxChars, 10) || 0;
    var length = box.value.length;
    var over = max && length > max;
    counter.textContent = length.toLocaleString() + " / " + max.toLocaleString() + " characters" +
      (over ? " — " + (length - max).toLocaleString() + " over the limit: shorten it to send." : "");
    counter.classList.toggle("error", !!over);
    counter.classList.toggle("muted", !over);
    box.setAttribute("aria-invalid", over ? "true" : "false");
    var form = box.form;
    var submit = form && form.querySelector("button[type=submit]");
    if (submit) submit.disabled = !!over;
  }

  function updateAll() {
    document.querySelectorAll("[data-char-count-for]").forEach(updateCount);
  }

  document.addEventListener("input", function (event) {
    var box = event.target;
    if (!box.id) return;
    var counter = document.querySelector('[data-char-count-for="' + box.id + '"]');
    if (counter) updateCount(counter);
  });
  document.addEventListener("submit", function (event) {
    var box = event.target.querySelector("[data-max-chars]");
    if (box && box.value.length > (parseInt(box.dataset.maxChars, 10) || Infinity)) {
      event.preventDefault();
      event.stopImmediatePropagation();
    }
  }, true);
  // htmx sends on its own trigger: refuse there too.
  document.addEventListener("htmx:confirm", function (event) {
    var form = event.target.closest && event.target.closest("form");
    var box = form && form.querySelector("[data-max-chars]");
    if (box && box.value.length > (parseInt(box.dataset.maxChars, 10) || Infinity)) {
      event.preventDefault();
    }
  });
  // The reply box announces its picker to assistive technology.
  function describePicker() {
    var list = document.getElementById("canned-picker");
    document.querySelectorAll("textarea[data-canned]").forEach(function (box) {
      if (!list) return;
      box.setAttribute("aria-autocomplete", "list");
      box.setAttribute("aria-controls", list.id);
      box.setAttribute("aria-expanded", "false");
    });
  }

  function ready() { updateAll(); describePicker(); }
  document.addEventListener("htmx:afterSettle", ready);
  document.addEventListener("DOMContentLoaded", ready);

  // The canned-response picker. "/" at the start of the box or after a space
  // opens it; the words typed after it filter by shortcut and title; arrows
  // move, Enter or Tab inserts, Escape closes. The text goes in as a value.
  var picker = { box: null, list: null, start: -1, active: -1 };

  function token(box) {
    var before = box.value.slice(0, box.selectionStart);
    var match = /(^|\s)\/([\w-]*)$/.exec(before);
    if (!match) return null;
    return { start: before.length - match[2].length - 1, query: match[2].toLowerCase() };
  }

  function options() {
    return Array.prototype.filter.call(picker.list.children, function (item) { return !item.hidden; });
  }

  function highlight(index) {
    var shown = options();
    shown.forEach(function (item, i) { item.setAttribute("aria-selected", i === index ? "true" : "false"); });
    picker.active = shown.length ? Math.max(0, Math.min(index, shown.length - 1)) : -1;
    if (picker.active >= 0) {
      picker.box.setAttribute("aria-activedescendant", shown[picker.active].id);
      shown[picker.active].scrollIntoView({ block: "nearest" });
    }
  }

  function close() {
    if (!picker.list) return;
    picker.list.hidden = true;
    picker.box.removeAttribute("aria-activedescendant");
    picker.box.setAttribute("aria-expanded", "false");
    picker.start = -1;
  }

  function open(box, found) {
    picker.box = box;
    picker.list = document.getElementById("canned-picker");
    if (!picker.list) return;
    picker.start = found.start;
    Array.prototype.forEach.call(picker.list.children, function (item) {
      var haystack = (item.dataset.shortcut + " " + item.textContent).toLowerCase();
      item.hidden = found.query !== "" && haystack.indexOf(found.query) === -1;
    });
    var any = options().length > 0;
    picker.list.hidden = !any;
    box.setAttribute("aria-expanded", any ? "true" : "false");
    if (any) highlight(0);
  }

  function insert(item) {
    var box = picker.box;
    var end = box.selectionStart;
    var text = item.dataset.text;
    box.value = box.value.slice(0, picker.start) + text + box.value.slice(end);
    var caret = picker.start + text.length;
    close();
    box.focus();
    box.setSelectionRange(caret, caret);
    box.dispatchEvent(new Event("input", { bubbles: true }));
  }

  document.addEventListener("input", function (event) {
    var box = event.target;
    if (!box.matches || !box.matches("textarea[data-canned]")) return;
    var found = token(box);
    if (found) open(box, found);
    else close();
  });

  document.addEventListener("keydown", function (event) {
    if (!picker.list || picker.list.hidden || event.target !== picker.box) return;
    var shown = options();
    if (event.key === "ArrowDown") { highlight(picker.active + 1); event.preventDefault(); }
    else if (event.key === "ArrowUp") { highlight(picker.active - 1); event.preventDefault(); }
    else if ((event.key === "Enter" || event.key === "Tab") && shown[picker.active]) {
      insert(shown[picker.active]);
      event.preventDefault();
    } else if (event.key === "Escape") { close(); event.preventDefault(); }
  });

  document.addEventListener("mousedown", function (event) {
    var item = event.target.closest && event.target.closest("#canned-picker [role=option]");
    if (item && picker.list && !picker.list.hidden) {
      insert(item);
      event.preventDefault();
    }
  });
  document.addEventListener("focusout", function (event) {
    if (event.target === picker.box) setTimeout(close, 150);
  });
})();
