// onboardd admin UI: behaviour shared by every page. Pages register their own Alpine
// components in their own files (loaded before Alpine's CSP build, which allows no inline
// expressions beyond property access and method calls on registered components).
(function () {
  "use strict";

  // A new error in the page's alert region is read out and takes the focus, so a keyboard or
  // screen-reader user hears what went wrong.
  document.addEventListener("htmx:afterSwap", function (event) {
    var target = event.detail.target;
    if (target && target.id === "flash" && target.firstElementChild) {
      target.firstElementChild.setAttribute("tabindex", "-1");
      target.firstElementChild.focus();
    }
  });

  // A request that could not reach the daemon at all (offline, daemon restarting).
  document.addEventListener("htmx:sendError", function () {
    var flash = document.getElementById("flash");
    if (flash) {
      flash.innerHTML = "";
      var p = document.createElement("p");
      p.className = "alert error";
      p.setAttribute("role", "alert");
      p.textContent = "The server could not be reached. Check the connection and try again.";
      flash.appendChild(p);
    }
  });

  // Clear an old alert when a new request starts.
  document.addEventListener("htmx:beforeRequest", function () {
    var flash = document.getElementById("flash");
    if (flash) { flash.innerHTML = ""; }
  });

  document.addEventListener("alpine:init", function () {
    // <form x-data="autoSubmit"> with a select: choosing submits (the salon switcher).
    window.Alpine.data("autoSubmit", function () {
      return { submit: function () { this.$root.requestSubmit(); } };
    });
  });
})();
