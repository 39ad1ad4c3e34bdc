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
    settleDecision(event);
  });

  // Prefetched next card. Each card carries the next one, claimed for this reviewer and rendered
  // ahead, in a <template class="next-card">. When a decision is sent, that card is shown at once
  // and the card decided on is hidden (kept in the page until the answer: htmx sends from it);
  // the answer then brings only the card after the one now shown. Any other answer (the decision
  // failed, or the card shown is no longer this reviewer's) is swapped in as before.
  function nextCardOf(card) {
    var next = card && card.querySelector(":scope > template.next-card");
    return next && next.content.firstElementChild ? next : null;
  }

  document.addEventListener("htmx:configRequest", function (event) {
    var form = event.detail.elt;
    if (!form.matches || !form.matches("#card form.decision-form")) return;
    var card = form.closest("#card");
    var next = nextCardOf(card);
    if (!next || !window.htmx) return;
    var shown = next.content.firstElementChild.cloneNode(true);
    card.removeAttribute("id");
    card.hidden = true;
    card.setAttribute("data-decided", "");
    card.parentNode.insertBefore(shown, card);
    window.htmx.process(shown);
    markReady(shown);
    window.scrollTo(0, 0);
    announce(shown);
    event.detail.headers["X-Sieve-Showing"] = next.getAttribute("data-record");
  });

  function settleDecision(event) {
    // Only the answer to a decision sent from a card hidden for its prefetched successor (not, say,
    // the progress bar that card was still fetching).
    var source = event.detail.requestConfig && event.detail.requestConfig.elt;
    if (!source || !source.matches || !source.matches("form.decision-form")) return;
    var decided = source.closest("[data-decided]");
    if (!decided) return;
    var shown = document.getElementById("card");
    var xhr = event.detail.xhr;
    if (xhr && xhr.status === 200 && xhr.getResponseHeader("X-Sieve-Next-Only") && shown) {
      event.detail.shouldSwap = false;
      var holder = document.createElement("template");
      holder.innerHTML = xhr.responseText;
      var fresh = holder.content.querySelector("template.next-card");
      var old = shown.querySelector(":scope > template.next-card");
      if (old) old.remove();
      if (fresh) shown.appendChild(fresh);
      decided.remove();
      var progress = shown.querySelector("[data-progress-after-decision]");
      if (progress) window.htmx.trigger(progress, "sieve:decided");
      return;
    }
    // Back to the card decided on, which htmx then replaces with the answer (or shows again).
    if (shown) shown.remove();
    decided.removeAttribute("data-decided");
    decided.hidden = false;
    decided.id = "card";
  }

  // No answer at all (network down, time-out): the card decided on comes back to be decided again.
  ["htmx:sendError", "htmx:timeout"].forEach(function (name) {
    document.addEventListener(name, function (event) {
      settleDecision({ detail: { requestConfig: event.detail.requestConfig, xhr: null } });
    });
  });

  document.addEventListener("htmx:afterSwap", function (event) {
    if (event.detail.target && event.detail.target.id === "card") {
      window.scrollTo(0, 0);
      announce(document.getElementById("card"));
    }
  });

  // A new card replaces the one decided on: say which record it is in the page's live region (a
  // screen reader reads it out), and keep the keyboard focus at the decision, not back at the page's
  // start, so Tab goes on to the decision buttons.
  function announce(card) {
    var announcer = document.getElementById("screen-announcer");
    if (!card || !announcer) return;
    var title = card.querySelector(".record-title");
    var done = card.querySelector(".all-done h2");
    var number = card.getAttribute("data-record");
    announcer.textContent = title
      ? "Next record" + (number ? " #" + number : "") + ": " + title.textContent.trim()
      : (done ? done.textContent.trim() : "");
    var active = document.activeElement;
    if (!active || active === document.body || !document.body.contains(active) || active.closest("[data-decided], [hidden]")) {
      var target = card.querySelector("#decision") || card;
      if (target === card && !card.hasAttribute("tabindex")) card.setAttribute("tabindex", "-1");
      target.focus({ preventScroll: true });
    }
  }

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
