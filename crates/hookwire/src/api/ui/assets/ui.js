// hookwire web app: progressive enhancement only; every page works without it.
(function () {
  "use strict";

  // Times are rendered as UTC ISO in <time datetime>; show them in the viewer's zone.
  function localTimes(root) {
    root.querySelectorAll("time[datetime]").forEach(function (el) {
      var d = new Date(el.getAttribute("datetime"));
      if (!isNaN(d)) {
        el.textContent = d.toLocaleString();
        el.title = el.getAttribute("datetime");
      }
    });
  }

  // Free times typed into datetime-local fields are in the viewer's zone;
  // tell the server which one.
  function timezoneOffsets(root) {
    var offset = String(new Date().getTimezoneOffset());
    root.querySelectorAll("input.tz-offset").forEach(function (el) {
      el.value = offset;
    });
  }

  // The webhook form: offer only the data types the chosen event supports,
  // and warn (not block) about http:// targets. The server checks both anyway.
  function webhookForm() {
    var form = document.querySelector("form.webhook-form");
    if (!form) return;
    var event = form.querySelector("#event_type");
    function currentEvent() {
      return event ? (event.value || event.getAttribute("data-event") || "") : "";
    }
    function sync() {
      var ev = currentEvent();
      form.querySelectorAll(".check[data-events]").forEach(function (box) {
        var ok = !ev || box.getAttribute("data-events").split(" ").indexOf(ev) >= 0;
        box.hidden = !ok;
        if (!ok) box.querySelector("input").checked = false;
      });
    }
    if (event && event.tagName === "SELECT") event.addEventListener("change", sync);
    sync();
    var url = form.querySelector("#url");
    var warning = form.querySelector("#http-warning");
    if (url && warning) {
      url.addEventListener("input", function () {
        warning.hidden = !/^\s*http:\/\//i.test(url.value);
      });
    }
  }

  // The agent view: poll the JSON endpoint and swap in the server-escaped cards.
  function agentView() {
    var list = document.getElementById("visitors");
    if (!list) return;
    var empty = document.getElementById("visitors-empty");
    var last = null;
    function poll() {
      fetch(list.getAttribute("data-src"), { credentials: "same-origin", headers: { Accept: "application/json" } })
        .then(function (r) { if (!r.ok) throw new Error(r.status); return r.json(); })
        .then(function (data) {
          if (data.html !== last) {
            last = data.html;
            list.innerHTML = data.html; // built and escaped by the server
            localTimes(list);
          }
          if (empty) empty.hidden = data.visitors.length > 0;
        })
        .catch(function () { /* signed out or offline: keep what is shown */ });
    }
    setInterval(poll, 2000);
  }

  document.addEventListener("DOMContentLoaded", function () {
    localTimes(document);
    timezoneOffsets(document);
    webhookForm();
    agentView();
  });
})();
