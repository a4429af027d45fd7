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

  document.addEventListener("change", function (e) {
    if (e.target.hasAttribute && e.target.hasAttribute("data-autosubmit")) e.target.form.submit();
  });

  document.addEventListener("click", function (e) {
    if (e.target.closest && e.target.closest("[data-print]")) window.print();
  });

  // After a send, resend or cancel, the cashier is ready for the next customer.
  document.addEventListener("htmx:afterSettle", function (e) {
    var elt = e.detail && e.detail.requestConfig && e.detail.requestConfig.elt;
    if (!elt || !elt.closest) return;
    if (elt.closest("#pay-form, .row-action")) focusPhone();
  });

  tick();
  setInterval(tick, 250);
})();
