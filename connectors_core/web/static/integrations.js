// Progressive enhancement only: the page works without this file.
(function () {
  "use strict";
  // The catalogue's cards, or the one connector of a details page.
  var grid = document.querySelector(".grid");
  var cards = grid ? Array.prototype.slice.call(grid.querySelectorAll(".card"))
    : Array.prototype.slice.call(document.querySelectorAll("main.details"));
  if (!cards.length) return;
  var search = document.getElementById("q");
  var filters = document.getElementById("filters");
  var count = document.getElementById("count");

  // What this script writes, in the page's language: the server renders the
  // strings into #cc-strings (English stays the fallback for a page without them).
  var strings = {
    count: "Showing {shown} of {total} integrations",
    connected: "Connected",
    needsReauth: "Needs re-authorization",
    organization: "organization {value}",
    user: "user {value}",
    key: "key {value}"
  };
  var given = document.getElementById("cc-strings");
  if (given) {
    try {
      var parsed = JSON.parse(given.textContent);
      Object.keys(strings).forEach(function (name) {
        if (typeof parsed[name] === "string") strings[name] = parsed[name];
      });
    } catch (e) { /* the English strings stay */ }
  }
  // One pass: a value that looks like {a placeholder} is written as it is.
  function say(name, values) {
    return strings[name].replace(/\{(\w+)\}/g, function (whole, key) {
      return Object.prototype.hasOwnProperty.call(values, key) ? String(values[key]) : whole;
    });
  }

  function value(id) { var el = document.getElementById(id); return el ? el.value : ""; }

  // Filter as the user types or picks, without a round trip.
  function apply() {
    // Every word must be found somewhere in the card's text, as the server matches.
    var words = (search ? search.value : "").toLowerCase().split(/\s+/).filter(Boolean);
    var category = value("category"), status = value("status"), tag = value("tag");
    var shown = 0;
    cards.forEach(function (card) {
      var text = card.dataset.search;
      var ok = words.every(function (word) { return text.indexOf(word) !== -1; }) &&
        (!category || card.dataset.category === category) &&
        (!status || card.dataset.status === status) &&
        (!tag || (" " + card.dataset.tags + " ").indexOf(" " + tag + " ") !== -1);
      card.hidden = !ok;
      if (ok) shown += 1;
    });
    if (count) count.textContent = say("count", { shown: shown, total: cards.length });
    // The filters stay in the URL: a reload, a bookmark or a shared link shows the same.
    if (window.history && window.URLSearchParams) {
      var params = new URLSearchParams();
      if (search && search.value.trim()) params.set("q", search.value.trim());
      if (category) params.set("category", category);
      if (status) params.set("status", status);
      if (tag) params.set("tag", tag);
      var qs = params.toString();
      window.history.replaceState(null, "", window.location.pathname + (qs ? "?" + qs : ""));
    }
    var empty = document.getElementById("empty");
    if (empty && cards.length) empty.hidden = shown !== 0;
  }
  if (grid && search) search.addEventListener("input", apply);
  if (grid && filters) {
    filters.addEventListener("change", apply);
  }

  // Live connection state from the status route.
  function render(card, status) {
    var line = card.querySelector("[data-state]");
    // A card listing several connections is the server's to draw.
    if (!line || status.connections) return;
    var by = card.querySelector("[data-attribution]");
    if (by && !status.connected && status.error !== "needs_reauth") by.hidden = true;
    card.classList.toggle("is-connected", !!status.connected);
    card.classList.toggle("is-reauth", status.error === "needs_reauth");
    if (status.connected) {
      var s = status.status || {};
      var parts = [];
      if (s.label) parts.push(s.label);
      if (s.organizationId) parts.push(say("organization", { value: s.organizationId }));
      if (s.userId) parts.push(say("user", { value: s.userId }));
      if (s.keyHint) parts.push(say("key", { value: s.keyHint }));
      var config = s.config || {};
      Object.keys(config).forEach(function (name) { parts.push(name + " " + config[name]); });
      line.textContent = "";
      var dot = document.createElement("span");
      dot.className = "dot"; dot.setAttribute("aria-hidden", "true");
      var strong = document.createElement("strong");
      strong.textContent = say("connected", {});
      line.appendChild(dot); line.appendChild(strong);
      if (parts.length) line.appendChild(document.createTextNode(" · " + parts.join(" · ")));
    } else if (status.error === "needs_reauth") {
      var flagged = document.createElement("strong");
      flagged.textContent = say("needsReauth", {});
      line.textContent = "";
      line.appendChild(flagged);
    }
  }
  // Ask only for cards on screen (the page may list hundreds), once each, and
  // again for those on screen when the user comes back to the tab.
  function refresh(card) {
    // The server wrote each card's status URL: it knows where the routes are mounted.
    fetch(card.dataset.statusUrl,
          { credentials: "same-origin", headers: { "Accept": "application/json" } })
      .then(function (r) { return r.ok ? r.json() : null; })
      .then(function (status) { if (status) render(card, status); })
      .catch(function () { /* the server-rendered state stays */ });
  }
  var live = cards.filter(function (card) { return !!card.dataset.statusUrl; });
  var onScreen = new Set();
  if ("IntersectionObserver" in window) {
    var seen = new Set();
    var observer = new IntersectionObserver(function (entries) {
      entries.forEach(function (entry) {
        if (entry.isIntersecting) {
          onScreen.add(entry.target);
          if (!seen.has(entry.target)) { seen.add(entry.target); refresh(entry.target); }
        } else {
          onScreen.delete(entry.target);
        }
      });
    });
    live.forEach(function (card) { observer.observe(card); });
  }
  document.addEventListener("visibilitychange", function () {
    if (document.visibilityState === "visible") onScreen.forEach(refresh);
  });
})();
