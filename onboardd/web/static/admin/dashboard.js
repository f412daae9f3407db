// onboardd admin UI, the dashboard: draws the per-day (or per-week) and conversion-curve charts with uPlot
// from the page's JSON data block (<script type="application/json" id="dashboard-data">, which
// the browser never executes, so the CSP holds). Each chart is in a <figure> whose aria-label
// and table say the same in words; the charts follow their container's width (a phone too).
(function () {
  "use strict";

  var COLORS = ["#5b2a86", "#1f7a8c", "#c05621", "#1c6b3c", "#a4262c", "#3d5a99", "#8a5a00",
                "#6b7280"];

  function readData() {
    var el = document.getElementById("dashboard-data");
    if (!el) { return null; }
    try { return JSON.parse(el.textContent); } catch (e) { return null; }
  }

  function heightFor(width) { return width < 520 ? 220 : 280; }

  function lines(list, manyPoints, offset) {
    return list.map(function (line, i) {
      return { label: line.label, stroke: COLORS[(i + (offset || 0)) % COLORS.length], width: 2,
               points: { show: !manyPoints } };
    });
  }

  function draw(el, opts, data) {
    var width = Math.floor(el.clientWidth) || 320;
    opts.width = width;
    opts.height = heightFor(width);
    var chart = new window.uPlot(opts, data, el);
    if (window.ResizeObserver) {
      var last = width;
      new window.ResizeObserver(function () {
        var now = Math.floor(el.clientWidth);
        if (now && now !== last) {
          last = now;
          chart.setSize({ width: now, height: heightFor(now) });
        }
      }).observe(el);
    }
    return chart;
  }

  function countAxis(u, vals) {
    return vals.map(function (v) { return Number.isInteger(v) ? v.toLocaleString() : ""; });
  }

  // One chart of counts per bucket (a day, or a week starting on Monday).
  function timeChart(el, data, list, offset) {
    var perDay = data.bucket === "day";
    var opts = {
      // Bucket dates are calendar days: shown as such, whatever the browser's timezone.
      tzDate: function (ts) { return window.uPlot.tzDate(new Date(ts * 1000), "Etc/UTC"); },
      scales: { x: { time: true },
                y: { range: function (u, min, max) { return [0, Math.max(4, max)]; } } },
      series: [{ label: perDay ? "Day" : "Week starting", value: "{D} {MMM} {YYYY}" }]
        .concat(lines(list, data.x.length > 45, offset)),
      axes: [{}, { values: countAxis }],
    };
    draw(el, opts, [data.x].concat(list.map(function (l) { return l.values; })));
  }

  function curveChart(el, data) {
    var c = data.curve;
    var opts = {
      scales: { x: { time: false }, y: { range: function (u, min, max) { return [0, Math.max(10, Math.ceil(max / 10) * 10)]; } } },
      series: [{ label: "Days since the invite" }].concat(lines(c.lines, true).map(function (line) {
        line.value = function (u, v) { return v == null ? "–" : v.toFixed(1) + " %"; };
        return line;
      })),
      axes: [{ label: "Days since the invite" },
             { label: "Registered", values: function (u, vals) {
               return vals.map(function (v) { return v + " %"; });
             } }],
    };
    draw(el, opts, [c.x].concat(c.lines.map(function (l) { return l.values; })));
  }

  function start() {
    if (!window.uPlot) { return; }  // the tables still say everything
    var data = readData();
    if (!data) { return; }
    ["messages", "people"].forEach(function (name, i) {
      var el = document.querySelector('[data-chart="' + name + '"]');
      if (el) { timeChart(el, data, data[name], 2 * i); }
    });
    var curve = document.querySelector('[data-chart="curve"]');
    if (curve && data.curve.lines.length) { curveChart(curve, data); }
  }

  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", start);
  } else {
    start();
  }
})();
