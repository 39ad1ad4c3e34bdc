// Keyboard shortcuts for screening, and the few htmx settings the screening form needs.
// Everything here is an add-on: every form and link works without it.
(function () {
  "use strict";

  function isTyping(element) {
    return element && (element.isContentEditable || /^(INPUT|TEXTAREA|SELECT)$/.test(element.tagName));
  }

  function toggleHelp() {
    var help = document.getElementById("shortcut-help");
    if (!help) return;
    if (help.open) help.close(); else help.showModal();
  }

  function needsReason(button) {
    // Full-text exclusions need a reason: send the reviewer to the select instead of a round trip.
    var form = button.form;
    var reason = form.querySelector("[name=reason]");
    var other = form.querySelector("[name=other_reason]");
    if ((reason && reason.value) || (other && other.value.trim())) return false;
    if (reason) {
      reason.focus();
      reason.classList.add("needs-attention");
    }
    return true;
  }

  document.addEventListener("keydown", function (event) {
    if (event.key === "Escape" && isTyping(event.target)) {
      event.target.blur();
      return;
    }
    if (event.ctrlKey || event.metaKey || event.altKey || isTyping(event.target)) return;
    if (event.key === "?") {
      event.preventDefault();
      toggleHelp();
      return;
    }
    if (document.querySelector("dialog[open]")) return;
    var key = event.key.toLowerCase();
    if (key === "r") {
      var reason = document.querySelector("#card [name=reason]");
      if (reason) {
        event.preventDefault();
        reason.focus();
      }
      return;
    }
    // Until htmx has wired up a freshly swapped card, a click would submit the plain form.
    var target = document.querySelector('#card[data-ready] [data-shortcut="' + key + '"]');
    if (!target || target.disabled || target.closest("fieldset:disabled")) return;
    event.preventDefault();
    target.click();
  });

  document.addEventListener("click", function (event) {
    if (event.target.closest("[data-help-toggle]")) {
      toggleHelp();
      return;
    }
    var confirming = event.target.closest("[data-confirm]");
    if (confirming && !window.confirm(confirming.getAttribute("data-confirm"))) {
      event.preventDefault();
      return;
    }
    var button = event.target.closest("[data-needs-reason]");
    if (button && needsReason(button)) event.preventDefault();
  }, true);

  function markReady(element) {
    var card = element.id === "card" ? element : element.querySelector && element.querySelector("#card");
    if (card) card.setAttribute("data-ready", "");
  }

  if (window.htmx) {
    window.htmx.onLoad(markReady);
  } else {
    // Without htmx the keys still work: they press the plain buttons and links.
    document.addEventListener("DOMContentLoaded", function () { markReady(document); });
  }

  // The decide view answers 400 with the card and its errors; show it rather than drop it.
  document.addEventListener("htmx:beforeSwap", function (event) {
    if (event.detail.xhr.status === 400) {
      event.detail.shouldSwap = true;
      event.detail.isError = false;
    }
  });

  document.addEventListener("htmx:afterSwap", function (event) {
    if (event.detail.target && event.detail.target.id === "card") window.scrollTo(0, 0);
  });

  // An owner's action on the stopping panel comes back to the stage's panel with its message there:
  // move the keyboard focus to the message, so it is read out and Tab goes on from the panel.
  function focusPanelMessage() {
    var panel = location.hash && document.getElementById(location.hash.slice(1));
    var message = panel && panel.classList.contains("stopping-stage") && panel.querySelector(".messages");
    if (!message) return;
    message.setAttribute("tabindex", "-1");
    message.focus();
  }
  // After "load": the browser's scroll to the #fragment, done by then, would take the focus away again.
  if (document.readyState === "complete") focusPanelMessage();
  else window.addEventListener("load", focusPanelMessage);
})();
