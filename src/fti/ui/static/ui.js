// fti ui: search as you type. Without JavaScript the forms still work (submit button).
"use strict";
(function () {
  function live(input) {
    var form = input.form;
    var target = document.querySelector(input.getAttribute("data-live"));
    if (!form || !target) { return; }
    var timer = null;
    var seq = 0;
    input.addEventListener("input", function () {
      clearTimeout(timer);
      timer = setTimeout(function () {
        var params = new URLSearchParams(new FormData(form));
        var url = form.getAttribute("action") + "?" + params.toString();
        var mine = ++seq;
        fetch(url, { credentials: "same-origin", headers: { "Accept": "text/html" } })
          .then(function (r) { return r.ok ? r.text() : Promise.reject(r.status); })
          .then(function (html) {
            if (mine !== seq) { return; }  // a newer request is on its way
            var doc = new DOMParser().parseFromString(html, "text/html");
            var fresh = doc.querySelector(input.getAttribute("data-live"));
            if (fresh) {
              target.replaceChildren.apply(target, Array.from(fresh.childNodes));
              history.replaceState(null, "", url);
            }
          })
          .catch(function () { /* keep the current results; the submit button still works */ });
      }, 250);
    });
  }
  document.querySelectorAll("input[data-live]").forEach(live);
})();
