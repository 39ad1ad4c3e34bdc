// Keyboard resolution in the conflicts queue (an add-on: every form works without it).
// j / k move the highlight to the next / previous conflict; on the highlighted one, the keys
// shown on its buttons (i, e, m or n, and 1-9 for the exclusion reasons) press them. Keys do
// nothing while typing in a box (Esc leaves it). Once a conflict is resolved (its section goes),
// the highlight moves on to the next one.
(function () {
  "use strict";

  function isTyping(element) {
    return element && (element.isContentEditable || /^(INPUT|TEXTAREA|SELECT)$/.test(element.tagName));
  }

  function conflicts() {
    return Array.prototype.slice.call(document.querySelectorAll("section[data-conflict]"));
  }

  function current() {
    return document.querySelector("section[data-conflict].current");
  }

  function highlight(section, scroll) {
    var before = current();
    if (before) before.classList.remove("current");
    if (!section) return;
    section.classList.add("current");
    section.focus({ preventScroll: true });
    if (scroll !== false) section.scrollIntoView({ block: "nearest" });
  }

  function move(step) {
    var all = conflicts();
    if (!all.length) return;
    var at = all.indexOf(current());
    var next = at < 0 ? 0 : Math.min(Math.max(at + step, 0), all.length - 1);
    highlight(all[next]);
  }

  // The section about to go (its resolution sent): the one after it (or before it) takes the highlight.
  var following = null;
  document.addEventListener("htmx:beforeRequest", function (event) {
    var section = event.detail.elt.closest && event.detail.elt.closest("section[data-conflict]");
    if (!section) return;
    var all = conflicts();
    var at = all.indexOf(section);
    following = all[at + 1] || all[at - 1] || null;
  });
  document.addEventListener("htmx:afterSwap", function () {
    if (following && !document.body.contains(following)) following = null;
    var shown = current();
    if (shown && document.body.contains(shown)) return; // an error: the same conflict stays
    if (!conflicts().length) {
      // The last one on this page is resolved: the first page again brings the next ones (or says none are left).
      window.location.assign(window.location.pathname);
      return;
    }
    highlight(following || conflicts()[0]);
    following = null;
  });

  document.addEventListener("keydown", function (event) {
    if (!document.getElementById("conflict-keys")) return;
    if (event.key === "Escape" && isTyping(event.target)) {
      event.target.blur();
      return;
    }
    if (event.ctrlKey || event.metaKey || event.altKey || isTyping(event.target)) return;
    if (document.querySelector("dialog[open]")) return;
    var key = event.key.toLowerCase();
    if (key === "j" || key === "k") {
      event.preventDefault();
      move(key === "j" ? 1 : -1);
      return;
    }
    var section = current();
    if (!section) return;
    var button = section.querySelector('[data-conflict-key="' + key + '"]');
    if (!button || button.disabled || button.closest("fieldset:disabled")) return;
    event.preventDefault();
    button.click();
  });

  function start() {
    // On load the page stays at its top (heading and key help in view): the first conflict is
    // highlighted where it is, not scrolled to.
    if (document.getElementById("conflict-keys")) highlight(conflicts()[0] || null, false);
  }
  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", start);
  else start();
})();
