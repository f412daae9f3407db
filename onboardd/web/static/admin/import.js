// onboardd admin UI: the import wizard. The drop zone (Alpine component "importDrop") puts a
// dropped file into the real <input type=file> and submits the form, which htmx sends as
// multipart; a file that is too large or of the wrong type is refused here before it is sent
// (the server checks again). After a column dropdown changes, each select's aria-invalid
// follows the message beside it.
(function () {
  "use strict";

  var KINDS = [".csv", ".xlsx", ".xls"];

  function extension(name) {
    var dot = name.lastIndexOf(".");
    return dot < 0 ? "" : name.slice(dot).toLowerCase();
  }

  function fileProblem(file, form) {
    if (!file) {
      return "Choose a file first: your customer list as a .csv, .xlsx or .xls file.";
    }
    var ext = extension(file.name);
    if (KINDS.indexOf(ext) < 0) {
      return "Files of type '" + (ext || "without extension") + "' are not supported. " +
        "Upload a .csv, .xlsx or .xls file.";
    }
    var max = parseInt(form.getAttribute("data-max-bytes"), 10);
    if (max && file.size > max) {
      return "This file is larger than the " + form.getAttribute("data-max-mb") + " MB limit. " +
        "Split the customer list into smaller files and upload them one at a time.";
    }
    if (file.size === 0) {
      return "The file is empty. Choose the file that holds your customer list.";
    }
    return "";
  }

  document.addEventListener("alpine:init", function () {
    window.Alpine.data("importDrop", function () {
      return {
        dragging: false,
        problem: "",

        init: function () {
          var self = this;
          var form = this.$root;
          this.problem = form.getAttribute("data-problem") || "";
          form.addEventListener("htmx:beforeRequest", function (event) {
            var input = self.$refs.file;
            var found = fileProblem(input.files && input.files[0], form);
            if (found) {
              event.preventDefault();
              self.problem = found;
              input.focus();
            }
          });
          form.addEventListener("htmx:validation:halted", function () {
            self.problem = fileProblem(null, form);
          });
        },

        get zoneClass() { return this.dragging ? "over" : ""; },
        get invalid() { return this.problem ? "true" : "false"; },

        over: function () { this.dragging = true; },

        leave: function (event) {
          if (!event.relatedTarget || !this.$el.contains(event.relatedTarget)) {
            this.dragging = false;
          }
        },

        chosen: function () { this.problem = ""; },

        drop: function (event) {
          this.dragging = false;
          var files = event.dataTransfer ? event.dataTransfer.files : null;
          if (!files || files.length === 0) {
            this.problem = "Drop a file: your customer list as a .csv, .xlsx or .xls file.";
            return;
          }
          if (files.length > 1) {
            this.problem = "Drop one file at a time.";
            return;
          }
          var moved = new DataTransfer();
          moved.items.add(files[0]);
          this.$refs.file.files = moved.files;
          this.problem = "";
          this.$root.requestSubmit();
        }
      };
    });
  });

  // The messages beside the column dropdowns come back out of band; mark their selects.
  document.addEventListener("htmx:afterSettle", function () {
    var form = document.getElementById("mapping-form");
    if (!form) { return; }
    var selects = form.querySelectorAll("select");
    for (var i = 0; i < selects.length; i++) {
      var message = document.getElementById("err-" + selects[i].name);
      if (message && message.textContent.trim()) {
        selects[i].setAttribute("aria-invalid", "true");
      } else {
        selects[i].removeAttribute("aria-invalid");
      }
    }
  });
})();
