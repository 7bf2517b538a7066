// Live updates for the status page: the events stream (/events, Server-Sent
// Events) is appended as it comes, and after every pass the page's own
// server-rendered content is fetched again and swapped in. Without
// JavaScript the page works as it is: refresh to update.
(function () {
  "use strict";
  // The names (event types) come from the server: /static/names.js.
  var names = window.reconcilerNames;
  if (!names || !window.EventSource || !window.fetch || !window.DOMParser) return;
  var list = document.getElementById("event-list");
  var live = document.getElementById("live");
  var refreshing = false, again = false;

  function text(s) { return document.createTextNode(s); }
  function code(s) { var c = document.createElement("code"); c.textContent = s; return c; }
  function muted(s) { var c = document.createElement("span"); c.className = "muted"; c.textContent = s; return c; }

  function addEvent(ev) {
    var li = document.createElement("li");
    var t = new Date(ev.time);
    li.appendChild(muted(t.toISOString().substring(11, 19)));
    li.appendChild(text(" "));
    li.appendChild(code(ev.type));
    if (ev.subject) { li.appendChild(text(" ")); li.appendChild(code(ev.subject)); }
    var msg = " " + (ev.message || "");
    if (ev.from || ev.to) msg += " " + (ev.from || "") + " \u2192 " + (ev.to || "");
    li.appendChild(text(msg + " "));
    if (ev.pass) li.appendChild(muted(ev.pass));
    list.insertBefore(li, list.firstChild);
    while (list.children.length > 200) list.removeChild(list.lastChild);
  }

  // refresh swaps in a freshly rendered <main>; calls during a fetch
  // coalesce into one more.
  function refresh() {
    if (refreshing) { again = true; return; }
    refreshing = true;
    fetch(location.pathname, { headers: { "Accept": "text/html" } })
      .then(function (r) { return r.text(); })
      .then(function (html) {
        var doc = new DOMParser().parseFromString(html, "text/html");
        var fresh = doc.getElementById("main");
        if (fresh) {
          document.getElementById("main").replaceWith(fresh);
          document.title = doc.title;
        }
      })
      .catch(function () {})
      .then(function () {
        refreshing = false;
        if (again) { again = false; refresh(); }
      });
  }

  var es = new EventSource("/events");
  es.onopen = function () { live.textContent = "(live)"; };
  es.onerror = function () { live.textContent = "(reconnecting\u2026)"; };
  es.onmessage = function (m) { handle(m.data); };
  names.events.forEach(function (type) {
    es.addEventListener(type, function (m) { handle(m.data); });
  });
  function handle(data) {
    var ev;
    try { ev = JSON.parse(data); } catch (e) { return; }
    if (ev.type === names.figures) { refresh(); return; } // figures, not news
    addEvent(ev);
    if (names.refreshOn.indexOf(ev.type) >= 0) refresh();
  }
})();
