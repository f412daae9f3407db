// onboardd admin UI: the campaign builder's small client-side state (Alpine CSP build: the
// attributes name only these properties and methods).
(function () {
  "use strict";

  document.addEventListener("alpine:init", function () {
    var Alpine = window.Alpine;

    // Buttons that write a {{variable}} at the message's cursor (replacing a selection), then
    // give the focus back to the message with the cursor after the variable. The input event
    // lets htmx refresh the preview.
    Alpine.data("templateEditor", function () {
      return {
        insert: function (event) {
          var button = (event && event.currentTarget) || this.$el;
          var area = this.$refs.template;
          var text = "{{" + button.getAttribute("data-variable") + "}}";
          var start = area.selectionStart;
          var end = area.selectionEnd;
          area.setRangeText(text, start, end, "end");
          area.focus();
          area.dispatchEvent(new Event("input", { bubbles: true }));
        }
      };
    });

    // Send now or later: the date and time field shows only for later.
    Alpine.data("scheduleToggle", function () {
      return {
        later: false,
        init: function () { this.later = this.$el.getAttribute("data-later") === "true"; },
        pick: function (event) { this.later = event.target.value === "later"; }
      };
    });

    // The channel: the WhatsApp ContentSid field shows for WhatsApp and Both.
    Alpine.data("channelChoice", function () {
      return {
        channel: "whatsapp",
        init: function () { this.channel = this.$el.getAttribute("data-channel") || "whatsapp"; },
        pick: function (event) { this.channel = event.target.value; },
        get usesWhatsapp() { return this.channel !== "sms"; }
      };
    });
  });

  // After a refused save the page opens on the list of problems (a page load, or the page
  // swapped in by the boosted form).
  function showProblems() {
    var problems = document.getElementById("form-problems");
    if (problems) {
      problems.setAttribute("tabindex", "-1");
      problems.focus();
    }
  }
  document.addEventListener("DOMContentLoaded", showProblems);
  document.addEventListener("htmx:afterSettle", function (event) {
    if (event.detail.boosted) { showProblems(); }
  });
})();
