// openccs console: live sections and the image picker. No inline script anywhere (the
// Content-Security-Policy forbids it): this file is the console's only script.
"use strict";

(function () {
  var DEFAULT_EVERY = 2000;

  function live() {
    return Array.prototype.slice.call(document.querySelectorAll("[data-live][id]"));
  }

  function atBottom(el) {
    return el.scrollHeight - el.scrollTop - el.clientHeight < 8;
  }

  // Re-fetch this page and swap in the sections marked data-live (forms stay as typed).
  function refresh() {
    if (document.hidden) return Promise.resolve();
    // A fetch the server never answers must not end the live updates: give up after 15 s.
    var ctl = window.AbortController ? new AbortController() : null;
    var timer = ctl ? window.setTimeout(function () { ctl.abort(); }, 15000) : null;
    return fetch(window.location.href, {
      headers: { "X-Console-Live": "1" },
      credentials: "same-origin",
      cache: "no-store",
      signal: ctl ? ctl.signal : undefined,
    }).then(function (r) {
      if (r.status === 401) {
        window.location.href = "/console/login?next=" + encodeURIComponent(window.location.pathname);
        return;
      }
      if (!r.ok) return;
      return r.text().then(function (html) {
        var doc = new DOMParser().parseFromString(html, "text/html");
        var followBox = document.getElementById("follow");
        live().forEach(function (el) {
          // Logs stay as they are while the person unticked "follow".
          if (followBox && !followBox.checked && el.hasAttribute("data-follow")) return;
          var fresh = doc.getElementById(el.id);
          if (!fresh || fresh.innerHTML === el.innerHTML) return;
          var follow = el.hasAttribute("data-follow");
          var logs = follow ? el.querySelectorAll("pre.log") : [];
          var stick = Array.prototype.map.call(logs, atBottom);
          el.innerHTML = fresh.innerHTML;
          if (follow) {
            Array.prototype.forEach.call(el.querySelectorAll("pre.log"), function (pre, i) {
              if (stick[i] !== false) pre.scrollTop = pre.scrollHeight;
            });
          }
        });
        document.body.setAttribute("data-refreshed", String(Date.now()));
      });
    }).catch(function () {}).then(function () {
      if (timer) window.clearTimeout(timer);
    });
  }

  function start() {
    var sections = live();
    if (sections.length) {
      var every = DEFAULT_EVERY;
      sections.forEach(function (el) {
        var e = parseInt(el.getAttribute("data-every") || "", 10);
        if (e > every) every = e;
      });
      var loop = function () {
        refresh().then(function () { window.setTimeout(loop, every); });
      };
      window.setTimeout(loop, every);
    }
    Array.prototype.forEach.call(document.querySelectorAll("pre.log"), function (pre) {
      pre.scrollTop = pre.scrollHeight;
    });
    var picker = document.getElementById("image-picker");
    if (picker) {
      picker.addEventListener("change", function () {
        var target = document.getElementById(picker.getAttribute("data-target"));
        if (target && picker.value) target.value = picker.value;
      });
    }
  }

  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", start);
  } else {
    start();
  }
})();
