// Live inbox list: long-poll /inbox/changes and re-fetch the server-rendered list fragment.
// The fragment is escaped HTML made by the server; nothing from a request is interpreted here.
(function () {
  "use strict";
  var root = document.getElementById("live-list");
  if (!root) { watchDetail(); return; }
  var version = root.getAttribute("data-version");
  var changesUrl = root.getAttribute("data-changes-url");
  var fragmentUrl = root.getAttribute("data-fragment-url");
  var status = document.getElementById("live-status");

  function sleep(ms) { return new Promise(function (resolve) { setTimeout(resolve, ms); }); }

  function setOnline(online) {
    if (!status) { return; }
    status.className = online ? "muted small" : "muted small offline";
    status.textContent = online ? "New requests appear here on their own."
      : "Lost contact with the server; retrying…";
  }

  async function refresh() {
    var response = await fetch(fragmentUrl, { credentials: "same-origin" });
    if (response.status === 401) { window.location.assign("/inbox/login"); return; }
    if (response.ok) { root.innerHTML = await response.text(); }
  }

  async function loop() {
    var delay = 500;
    for (;;) {
      try {
        var response = await fetch(changesUrl + "?since=" + encodeURIComponent(version),
          { credentials: "same-origin", headers: { "Accept": "application/json" } });
        if (response.status === 401) { window.location.assign("/inbox/login"); return; }
        if (!response.ok) { throw new Error("HTTP " + response.status); }
        var data = await response.json();
        if (String(data.version) !== String(version)) {
          version = String(data.version);
          await refresh();
        }
        setOnline(true);
        delay = 500;
      } catch (err) {
        setOnline(false);
        await sleep(delay);
        delay = Math.min(delay * 2, 10000);
      }
    }
  }

  // Waiting times go stale even when nothing changes.
  setInterval(function () { refresh().catch(function () {}); }, 30000);
  loop();
})();

// A detail page: it updates itself when the request is decided, runs or expires (anywhere).
// Each change of the server's counter is followed by a look at the request's small JSON state;
// when that changed, the page is re-fetched and parsed with DOMParser (which runs no scripts)
// and its server-rendered, escaped #live-detail replaces this one. While the person may still
// decide (pending, say a quorum's progress), their open forms are kept and a banner tells them.
function watchDetail() {
  "use strict";
  var live = document.getElementById("live-detail");
  if (!live || !live.getAttribute("data-state-url")) { return; }
  var stateUrl = live.getAttribute("data-state-url");
  var state = live.getAttribute("data-state");
  var version = "-1";
  function sleep(ms) { return new Promise(function (resolve) { setTimeout(resolve, ms); }); }
  function pending(value) { return String(value).indexOf("pending|") === 0; }
  async function replace() {
    var page = await fetch(window.location.pathname, { credentials: "same-origin" });
    if (!page.ok) { return false; }
    var doc = new DOMParser().parseFromString(await page.text(), "text/html");
    var fresh = doc.getElementById("live-detail");
    if (!fresh) { return false; }
    live.replaceChildren.apply(live, Array.prototype.slice.call(fresh.childNodes).map(
      function (node) { return document.importNode(node, true); }));
    state = fresh.getAttribute("data-state");
    live.setAttribute("data-state", state);
    return true;
  }
  (async function () {
    for (;;) {
      try {
        var response = await fetch("/inbox/changes?since=" + encodeURIComponent(version),
          { credentials: "same-origin", headers: { "Accept": "application/json" } });
        if (!response.ok) { throw new Error("HTTP " + response.status); }
        var data = await response.json();
        var first = version === "-1";
        version = String(data.version);
        if (first) { continue; }
        var answer = await fetch(stateUrl,
          { credentials: "same-origin", headers: { "Accept": "application/json" } });
        if (!answer.ok) { continue; }
        var now = String((await answer.json()).state);
        if (now === state) { continue; }
        if (pending(state) && pending(now) && document.getElementById("decide")) {
          var banner = document.getElementById("changed-elsewhere");
          if (banner) { banner.hidden = false; }
          state = now;
          continue;
        }
        await replace();
      } catch (err) {
        await sleep(2000);
      }
    }
  })();
}
