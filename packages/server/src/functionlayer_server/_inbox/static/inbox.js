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

// A detail page with open forms: tell the user when someone else decided meanwhile. The page is
// re-fetched and parsed with DOMParser (which runs no scripts); only a data attribute is read.
function watchDetail() {
  "use strict";
  var decide = document.getElementById("decide");
  var banner = document.getElementById("changed-elsewhere");
  if (!decide || !banner || !decide.getAttribute("data-watch")) { return; }
  var url = decide.getAttribute("data-watch");
  var state = decide.getAttribute("data-state");
  var version = "-1";
  function sleep(ms) { return new Promise(function (resolve) { setTimeout(resolve, ms); }); }
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
        var page = await fetch(url, { credentials: "same-origin" });
        if (!page.ok) { continue; }
        var doc = new DOMParser().parseFromString(await page.text(), "text/html");
        var fresh = doc.getElementById("decide");
        if (!fresh || fresh.getAttribute("data-state") !== state) {
          banner.hidden = false;
          return;
        }
      } catch (err) {
        await sleep(2000);
      }
    }
  })();
}
