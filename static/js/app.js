// Customer Circle: small progressive enhancements; every page also works without them.
(function () {
  "use strict";

  document.documentElement.classList.replace("no-js", "js");

  // Charts: figures built in Python arrive as JSON next to the element that shows them.
  function drawCharts(root) {
    if (typeof window.Plotly === "undefined") {
      return;
    }
    root.querySelectorAll("script[type='application/json'][data-chart-for]").forEach(function (source) {
      var target = document.getElementById(source.dataset.chartFor);
      if (!target || target.dataset.drawn) {
        return;
      }
      var figure = JSON.parse(source.textContent);
      target.dataset.drawn = "true";
      window.Plotly.newPlot(target, figure.data, figure.layout, {
        responsive: true,
        displaylogo: false,
      });
    });
  }

  document.addEventListener("DOMContentLoaded", function () {
    drawCharts(document);
  });
  document.addEventListener("htmx:afterSettle", function (event) {
    drawCharts(event.target);
  });

  // A session that expired meanwhile answers htmx with the login page: go there instead
  // of swapping a login form into a card.
  document.addEventListener("htmx:beforeSwap", function (event) {
    var loginUrl = document.body.dataset.loginUrl;
    var responseUrl = event.detail.xhr.responseURL;
    if (loginUrl && responseUrl && new URL(responseUrl).pathname === loginUrl) {
      event.detail.shouldSwap = false;
      window.location.assign(responseUrl);
    }
  });
})();
