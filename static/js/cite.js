// Links to a turn of the thread ("#turn-42": the brief's citations, relevant context, search
// hits) when the page has not loaded that turn yet: the session page opens on its newest
// turns, so the link presses "Load earlier turns" until the turn is there, then goes to it.
// A static file: the Content-Security-Policy allows no inline code.
(function () {
  "use strict";
  var MAX_LOADS = 30; // 100 turns each; past that the thread is the place to scroll

  function earlier() {
    return document.querySelector("#thread .thread-earlier button");
  }

  function reach(id, loads) {
    var target = document.getElementById(id);
    if (target) {
      target.scrollIntoView({ block: "center" });
      target.focus({ preventScroll: true });
      history.replaceState(null, "", "#" + id);
      return;
    }
    var button = earlier();
    if (!button || loads >= MAX_LOADS) return;
    button.click();
    afterLoad(button, function () {
      reach(id, loads + 1);
    });
  }

  // One load is done when the button's own list item has been swapped for the turns it
  // brought (htmx's settle events fire once per swapped element, about 100 a load, so
  // they cannot count loads). A failed request leaves the button: give up after 10 s.
  function afterLoad(button, next) {
    var waited = 0;
    (function check() {
      if (!button.isConnected) {
        setTimeout(next, 30); // past htmx's settle
        return;
      }
      waited += 50;
      if (waited < 10000) setTimeout(check, 50);
    })();
  }

  document.addEventListener("click", function (event) {
    var link = event.target.closest && event.target.closest('a[href^="#turn-"]');
    if (!link) return;
    var id = link.getAttribute("href").slice(1);
    if (document.getElementById(id)) return; // the browser scrolls to it
    event.preventDefault();
    reach(id, 0);
  });
})();
