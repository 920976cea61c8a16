// What needs the user (the #attention list the server keeps current): its count in the tab
// title, and for each new item an optional sound and an opt-in desktop notification.
(function () {
  "use strict";
  var SOUND = "moss.notify.sound", DESKTOP = "moss.notify.desktop";
  var baseTitle = document.title.replace(/^\(\d+\) /, "");
  var seen = null;
  var audio = null;

  function stored(key) {
    try { return window.localStorage.getItem(key) === "1"; } catch (e) { return false; }
  }
  function store(key, on) {
    try { window.localStorage.setItem(key, on ? "1" : "0"); } catch (e) { /* private mode */ }
  }
  function desktopOn() {
    return stored(DESKTOP) && "Notification" in window && Notification.permission === "granted";
  }

  function beep() {
    if (!audio) return;
    var oscillator = audio.createOscillator(), gain = audio.createGain();
    oscillator.frequency.value = 880;
    gain.gain.value = 0.1;
    oscillator.connect(gain).connect(audio.destination);
    oscillator.start();
    oscillator.stop(audio.currentTime + 0.15);
  }

  function announce(item) {
    if (stored(SOUND)) beep();
    if (!desktopOn()) return;
    var note = new Notification(item.dataset.title, { body: item.dataset.body, tag: item.dataset.key });
    note.onclick = function () { window.focus(); window.location.href = item.dataset.url; };
  }

  function update() {
    var list = document.getElementById("attention");
    if (!list) return;
    var count = parseInt(list.dataset.count, 10) || 0;
    document.title = (count > 0 ? "(" + count + ") " : "") + baseTitle;
    var items = Array.prototype.slice.call(list.querySelectorAll("li[data-key]"));
    var keys = {};
    items.forEach(function (item) { keys[item.dataset.key] = true; });
    if (seen !== null) {
      items.filter(function (item) { return !seen[item.dataset.key]; }).slice(0, 3).forEach(announce);
    }
    seen = keys;
  }

  var sound = document.querySelector("[data-notify-sound]");
  if (sound) {
    sound.checked = stored(SOUND);
    sound.addEventListener("change", function () {
      store(SOUND, sound.checked);
      // Browsers let a page play sound only once the user has interacted with it.
      if (sound.checked && !audio && window.AudioContext) audio = new AudioContext();
    });
    if (sound.checked) {
      document.addEventListener("pointerdown", function () {
        if (!audio && window.AudioContext) audio = new AudioContext();
      }, { once: true });
    }
  }

  var desktop = document.querySelector("[data-notify-desktop]");
  function label() {
    if (!desktop) return;
    var supported = "Notification" in window;
    desktop.hidden = !supported;
    desktop.textContent = "Desktop notifications: " + (desktopOn() ? "on" : "off");
    desktop.setAttribute("aria-pressed", desktopOn() ? "true" : "false");
  }
  if (desktop) {
    desktop.addEventListener("click", function () {
      if (desktopOn()) { store(DESKTOP, false); label(); return; }
      Notification.requestPermission().then(function (permission) {
        store(DESKTOP, permission === "granted");
        label();
      });
    });
    label();
  }

  document.body.addEventListener("htmx:wsAfterMessage", update);
  document.body.addEventListener("htmx:afterSettle", update);
  update();
})();
