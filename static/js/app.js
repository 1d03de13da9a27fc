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
  // The whole document, not just the swap's target: a live poll brings charts out of band.
  // Charts already drawn are skipped, so this stays cheap.
  document.addEventListener("htmx:afterSettle", function () {
    drawCharts(document);
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

// === Personas & people: the header's unread badge, loaded after the page so pages keep their
// query counts; a refused comment (422) still swaps its panel, which names the error. ===
(function () {
  "use strict";
  document.addEventListener("DOMContentLoaded", function () {
    var link = document.querySelector("[data-badge-url]");
    if (link && window.htmx) {
      window.htmx.ajax("GET", link.dataset.badgeUrl, {
        target: "#notifications-badge",
        swap: "outerHTML",
      });
    }
  });
  document.addEventListener("htmx:beforeSwap", function (event) {
    var target = event.detail.target;
    if (event.detail.xhr.status === 422 && target && target.classList.contains("comments-panel")) {
      event.detail.shouldSwap = true;
      event.detail.isError = false;
    }
  });
})();
// === end personas & people ===

// === Journey maps (journeys/views/maps.py): in-place cell editors and live presence. ===
(function () {
  "use strict";

  // Tell the live poll which cell this tab is editing (blank: none), so others see it.
  function syncEditing() {
    var input = document.getElementById("live-editing");
    if (!input) {
      return;
    }
    var editor = document.querySelector("form.map-cell-editor");
    input.value = editor ? editor.dataset.cell : "";
  }

  // Mark the cells other people are editing, from the presence bar's visitors.
  function markEditing() {
    var bar = document.getElementById("presence-bar");
    if (!bar) {
      return;
    }
    var editing = {};
    bar.querySelectorAll(".presence[data-cell]").forEach(function (visitor) {
      var cell = visitor.dataset.cell;
      if (cell) {
        (editing[cell] = editing[cell] || []).push(visitor.dataset.name);
      }
    });
    document.querySelectorAll(".map-cell[data-editing-by]").forEach(function (cell) {
      if (!editing[cell.dataset.cell]) {
        cell.removeAttribute("data-editing-by");
        cell.classList.remove("is-being-edited");
      }
    });
    Object.keys(editing).forEach(function (key) {
      var cell = document.getElementById("cell-" + key);
      if (cell) {
        cell.dataset.editingBy = editing[key].join(", ");
        cell.classList.add("is-being-edited");
      }
    });
  }

  function refresh() {
    syncEditing();
    markEditing();
  }

  document.addEventListener("DOMContentLoaded", refresh);
  document.addEventListener("htmx:afterSettle", refresh);

  // Escape in an open editor cancels it.
  document.addEventListener("keydown", function (event) {
    if (event.key !== "Escape") {
      return;
    }
    var editor = event.target.closest && event.target.closest("form.map-cell-editor");
    var cancel = editor && editor.querySelector("[data-cell-cancel]");
    if (cancel) {
      event.preventDefault();
      cancel.click();
    }
  });

  // The print button of the printable journey page.
  document.addEventListener("click", function (event) {
    if (event.target.closest && event.target.closest("[data-print]")) {
      window.print();
    }
  });
})();
// === end journey maps ===

// === Web security (config/security.py, Content-Security-Policy): htmx runs with allowEval
// off, so conditions that used to be inline expressions live here. ===
(function () {
  "use strict";
  // Polls marked data-poll-when-visible skip their turn while the tab is hidden.
  document.addEventListener("htmx:confirm", function (event) {
    var source = event.detail.elt;
    if (document.hidden && source && source.closest && source.closest("[data-poll-when-visible]")) {
      event.preventDefault();
    }
  });
})();
// === end web security ===
