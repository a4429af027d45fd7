/* PesaDesk counter: keyboard shortcuts and countdowns. No framework; every page works without it.
 *
 * Countdowns: an element with data-seconds="N" counts down to 0 from when it appeared (the
 * server computed N, so the browser's clock does not matter). Its closest [data-countdown]
 * then finishes: "enable" re-enables a button, "swap" hides itself and shows the next
 * sibling, "hide" hides itself.
 */
(function () {
  "use strict";
  var ends = new WeakMap();
  document.documentElement.classList.add("js");

  function tick() {
    var now = Date.now();
    document.querySelectorAll("[data-seconds]").forEach(function (el) {
      if (!ends.has(el)) ends.set(el, now + Number(el.getAttribute("data-seconds")) * 1000);
      var left = Math.max(0, Math.ceil((ends.get(el) - now) / 1000));
      if (el.textContent !== String(left)) el.textContent = left;
      var box = el.closest("[data-countdown]");
      if (left > 0 || !box || box.hasAttribute("data-done")) return;
      box.setAttribute("data-done", "");
      var how = box.getAttribute("data-countdown");
      if (how === "enable") {
        box.disabled = false;
        box.querySelectorAll(".wait").forEach(function (w) { w.hidden = true; });
      } else {
        box.hidden = true;
        if (how === "swap" && box.nextElementSibling) box.nextElementSibling.hidden = false;
      }
    });
  }

  function phone() { return document.getElementById("phone"); }

  function focusPhone() {
    var field = document.querySelector('#pay-form [aria-invalid="true"]') || phone();
    if (field) field.focus();
  }

  document.addEventListener("keydown", function (e) {
    var t = e.target || {};
    if (e.key === "/" && !e.ctrlKey && !e.metaKey && !e.altKey && t.id !== "q") {
      var q = document.getElementById("q");
      if (q && t.tagName !== "TEXTAREA") {
        e.preventDefault();
        q.focus();
        q.select();
      }
    } else if (e.altKey && !e.ctrlKey && !e.metaKey && (e.code === "KeyR" || e.key === "r" || e.key === "R")) {
      // Resend the latest failed payment (rows are newest first).
      var button = document.querySelector("#payment-rows .resend-form button");
      if (button) {
        e.preventDefault();
        if (!button.disabled) return button.click();
        // Still inside M-Pesa's refusal window: say how long, keep the cursor where it is.
        var note = button.closest(".row").querySelector(".wait-note");
        var say = document.getElementById("announcer");
        if (note) {
          note.classList.remove("nudge");
          void note.offsetWidth;  // restart the highlight
          note.classList.add("nudge");
          if (say) say.textContent = note.textContent;
        }
      }
    } else if (e.key === "Escape" && phone()) {
      e.preventDefault();
      phone().focus();
    }
  });

  /* A list that sends itself (the language) must not send while a keyboard user only looks
   * through it: arrow keys on a closed list change its value at once, and reloading the page
   * then would be a change of context on input (WCAG 3.2.2). From the keyboard, Enter sends
   * the choice, or the form's button, shown once the value changed; a choice made with the
   * mouse or by touch still sends itself. */
  var keyed = null;
  document.addEventListener("keydown", function (e) {
    var t = e.target;
    if (!t || !t.hasAttribute || !t.hasAttribute("data-autosubmit")) return;
    if (e.key === "Enter") {
      e.preventDefault();
      t.form.submit();
      return;
    }
    keyed = t;  // a change fired while this key is handled came from the keyboard
    setTimeout(function () { keyed = null; }, 0);
  }, true);

  document.addEventListener("change", function (e) {
    var t = e.target;
    if (!t.hasAttribute || !t.hasAttribute("data-autosubmit")) return;
    if (t !== keyed) return t.form.submit();
    var chosen = t.options[t.selectedIndex];
    t.form.classList.toggle("pending", !(chosen && chosen.defaultSelected));
  });

  document.addEventListener("click", function (e) {
    if (e.target.closest && e.target.closest("[data-print]")) window.print();
  });

  /* A row that refreshes itself keeps the focus on its button (the buttons have ids, which
   * htmx restores). If that button is gone (the sale moved on), the cashier's place is the
   * phone box, not the top of the page. */
  var focusedRow = null;
  document.addEventListener("htmx:beforeSwap", function (e) {
    var target = e.detail && e.detail.target;
    var row = target && target.matches && target.matches("li.row") ? target : null;
    focusedRow = row && row.contains(document.activeElement) ? row : null;
  });
  document.addEventListener("htmx:afterSwap", function () {
    var lost = !document.activeElement || document.activeElement === document.body;
    if (focusedRow && lost) focusPhone();
    focusedRow = null;
  });

  // After a resend or cancel, the cashier is ready for the next customer.
  document.addEventListener("htmx:afterSettle", function (e) {
    dedupeRows();
    var elt = e.detail && e.detail.requestConfig && e.detail.requestConfig.elt;
    if (!elt || !elt.closest) return;
    if (elt.closest(".row-action:not(.send-form)")) focusPhone();
  });

  /* Sending a sale: saving it takes a moment (the push itself is sent by the new row), and
   * the form is not swapped (the server answers with the row and a new key). While the sale
   * saves its fields are read-only, so nothing typed can half-overwrite it; once saved they
   * are cleared for the next customer. A second Enter meanwhile is the same sale: dropped. */
  var SALE_FIELDS = ["phone", "amount", "reference"];

  function saleFields(form) {
    return SALE_FIELDS.map(function (name) { return form.querySelector("#" + name); })
      .filter(Boolean);
  }

  document.addEventListener("htmx:beforeRequest", function (e) {
    var form = e.detail && e.detail.elt;
    if (!form || form.id !== "pay-form") return;
    form.classList.add("saving");
    saleFields(form).forEach(function (field) { field.readOnly = true; });
  });

  document.addEventListener("htmx:afterRequest", function (e) {
    var form = e.detail && e.detail.elt;
    if (!form || form.id !== "pay-form") return;
    form.classList.remove("saving");
    var fields = saleFields(form);
    fields.forEach(function (field) { field.readOnly = false; });
    var xhr = e.detail.xhr;
    // A refusal swaps the form in with its message; a failure is said by failed() above.
    if (!e.detail.successful || !xhr || xhr.getResponseHeader("HX-Reswap") !== "none") return;
    fields.forEach(function (field) {
      field.value = "";
      field.removeAttribute("aria-invalid");
      field.removeAttribute("aria-describedby");
    });
    var error = document.getElementById("pay-error");
    if (error) error.remove();
    focusPhone();
  });

  // A repeated Enter (after a lost answer) brings its row back: keep the newest copy only.
  function dedupeRows() {
    var seen = {};
    document.querySelectorAll("#payment-rows > li.row").forEach(function (row) {
      if (seen[row.id]) row.remove(); else seen[row.id] = true;
    });
  }

  /* Never silent: every request of the counter that fails says so, where the cashier looks,
   * in the user's language (the page carries the words in data-msg-* attributes), and keeps
   * what was typed (htmx swaps nothing on a failure). */
  function words(key) {
    var counter = document.getElementById("counter");
    return (counter && counter.getAttribute("data-msg-" + key)) || "";
  }

  function kindOf(elt) {
    if (elt.closest("#pay-form")) return "send";
    if (elt.closest(".send-form")) return "sending";
    if (elt.closest("#search-form")) return "search";
    if (elt.matches && elt.matches("li.row")) return "poll";
    return "action";
  }

  function slotFor(elt, kind) {
    if (kind === "send") return document.getElementById("pay-alert");
    if (kind === "search") return document.getElementById("search-alert");
    if (kind === "poll") return document.getElementById("counter-alert");
    var row = elt.closest(".row");
    if (!row) return document.getElementById("counter-alert");
    var slot = row.querySelector(".row-alert");
    if (!slot) {
      // Made when needed: the next update of the row (which replaces it) clears it.
      slot = document.createElement("p");
      slot.className = "row-alert form-error";
      slot.setAttribute("role", "alert");
      slot.hidden = true;
      row.appendChild(slot);
    }
    return slot;
  }

  function say(slot, text) {
    if (!slot || !text) return;
    slot.textContent = text;
    slot.hidden = false;
    var announcer = document.getElementById("announcer");
    if (announcer && slot.getAttribute("role") !== "alert") announcer.textContent = text;
  }

  function serverWords(xhr) {
    // The app's own error fragment (templates/_error.html) already says what happened.
    var box = document.createElement("div");
    box.innerHTML = xhr.responseText || "";
    var said = box.querySelector("#error p");
    return said ? said.textContent.trim() : "";
  }

  function failed(e, how) {
    var elt = e.detail && e.detail.elt;
    if (!elt || !elt.closest || !document.getElementById("counter")) return;
    var kind = kindOf(elt);
    var text;
    if (how === "response") {
      var xhr = e.detail.xhr;
      if (xhr.status === 401) text = words("session-ended");
      else text = serverWords(xhr) || words("server-error");
    } else if (how === "timeout" && kind === "send") {
      text = words("send-timeout");
    } else {
      text = words(kind + "-offline") || words("action-offline");
    }
    if (kind === "poll" && how !== "response") text = words("poll-offline");
    say(slotFor(elt, kind), text);
  }

  document.addEventListener("htmx:sendError", function (e) { failed(e, "network"); });
  document.addEventListener("htmx:timeout", function (e) { failed(e, "timeout"); });
  document.addEventListener("htmx:responseError", function (e) { failed(e, "response"); });
  document.addEventListener("htmx:afterRequest", function (e) {
    var elt = e.detail && e.detail.elt;
    if (!e.detail.successful || !elt || !elt.closest) return;
    var kind = kindOf(elt);
    var slot = slotFor(elt, kind);
    // A row poll that works again ends the "connection lost" banner.
    if (slot && (kind !== "poll" || slot.textContent === words("poll-offline"))) {
      slot.hidden = true;
      slot.textContent = "";
    }
  });

  tick();
  setInterval(tick, 250);
})();
