// vadctl review page: keyboard navigation, filter, sorting, clip viewer and verdicts kept in
// localStorage (exported as video,start_frame,end_frame,verdict). No network, no libraries.
(function () {
  "use strict";
  var STORE = "vadctl-review-verdicts";
  var LABELS = { reviewed: "reviewed", false_alarm: "false alarm" };
  var current = null;

  function $(selector) { return document.querySelector(selector); }
  function all(selector) { return Array.prototype.slice.call(document.querySelectorAll(selector)); }
  function visibleEntries() { return all("article.event").filter(function (e) { return !e.hidden; }); }

  function load() {
    try { return JSON.parse(localStorage.getItem(STORE) || "{}") || {}; } catch (err) { return {}; }
  }
  function save(verdicts) { localStorage.setItem(STORE, JSON.stringify(verdicts)); }

  function select(entry, scroll) {
    if (current) { current.classList.remove("current"); }
    current = entry;
    if (!entry) { return; }
    entry.classList.add("current");
    if (scroll) { entry.scrollIntoView({ block: "start" }); }
    if (history.replaceState) { history.replaceState(null, "", "#" + entry.id); }
  }

  function move(step) {
    var list = visibleEntries();
    if (!list.length) { return; }
    var i = list.indexOf(current);
    i = i < 0 ? (step > 0 ? 0 : list.length - 1) : Math.max(0, Math.min(list.length - 1, i + step));
    select(list[i], true);
  }

  function openClip(entry) {
    entry = entry || current;
    if (!entry || !entry.dataset.clip) { return; }
    var dialog = $("#clip-dialog");
    $("#clip-title").textContent = entry.querySelector("h3").textContent;
    $("#clip-img").src = entry.dataset.clip;
    if (!dialog.open) { dialog.showModal(); }
  }

  function closeClip() {
    var dialog = $("#clip-dialog");
    if (dialog.open) { dialog.close(); }
  }

  function showVerdicts() {
    var verdicts = load();
    all("article.event").forEach(function (entry) {
      var found = verdicts[entry.dataset.key];
      var verdict = found ? found.verdict : "";
      entry.dataset.verdict = verdict;
      entry.querySelector(".verdict-text").textContent = verdict ? "marked: " + LABELS[verdict] : "";
      entry.querySelectorAll("button[data-verdict]").forEach(function (b) {
        b.setAttribute("aria-pressed", String(b.dataset.verdict === verdict));
      });
    });
    all("#events-table tbody tr").forEach(function (row) {
      var found = verdicts[row.dataset.key];
      row.querySelector(".verdict-cell").textContent = found ? LABELS[found.verdict] : "";
    });
  }

  function toggleVerdict(entry, verdict) {
    var verdicts = load();
    var key = entry.dataset.key;
    if (verdicts[key] && verdicts[key].verdict === verdict) {
      delete verdicts[key];
    } else {
      verdicts[key] = {
        video: entry.dataset.video,
        start_frame: Number(entry.dataset.start),
        end_frame: Number(entry.dataset.end),
        verdict: verdict
      };
    }
    save(verdicts);
    showVerdicts();
  }

  function csvField(value) {
    var text = String(value);
    return /[",\r\n]/.test(text) ? '"' + text.replace(/"/g, '""') + '"' : text;
  }

  function exportCsv() {
    var verdicts = load();
    var lines = ["video,start_frame,end_frame,verdict"];
    Object.keys(verdicts).sort().forEach(function (key) {
      var v = verdicts[key];
      lines.push([v.video, v.start_frame, v.end_frame, v.verdict].map(csvField).join(","));
    });
    var blob = new Blob([lines.join("\n") + "\n"], { type: "text/csv" });
    var link = document.createElement("a");
    link.href = URL.createObjectURL(blob);
    link.download = "verdicts.csv";
    document.body.appendChild(link);
    link.click();
    link.remove();
  }

  function applyFilter() {
    var words = $("#filter").value.toLowerCase().split(/\s+/).filter(Boolean);
    function matches(el) {
      var text = el.dataset.search || "";
      return words.every(function (w) { return text.indexOf(w) >= 0; });
    }
    all("article.event, #events-table tbody tr").forEach(function (el) { el.hidden = !matches(el); });
    if (current && current.hidden) { select(null); }
  }

  function sortBy(column, button) {
    var body = $("#events-table tbody");
    var descending = button.dataset.direction !== "desc";
    all("#events-table th button").forEach(function (b) { delete b.dataset.direction; });
    button.dataset.direction = descending ? "desc" : "asc";
    var rows = Array.prototype.slice.call(body.rows);
    rows.sort(function (a, b) {
      var x = a.dataset[column], y = b.dataset[column];
      var nx = Number(x), ny = Number(y);
      var order = column === "video" || isNaN(nx) || isNaN(ny) ? x.localeCompare(y) : nx - ny;
      return descending ? -order : order;
    });
    rows.forEach(function (row) { body.appendChild(row); });
  }

  document.addEventListener("DOMContentLoaded", function () {
    all("article.event").forEach(function (entry) {
      entry.addEventListener("click", function () { select(entry, false); });
      entry.querySelectorAll("button[data-verdict]").forEach(function (b) {
        b.addEventListener("click", function () { toggleVerdict(entry, b.dataset.verdict); });
      });
      var play = entry.querySelector(".open-clip");
      if (play) { play.addEventListener("click", function () { select(entry, false); openClip(entry); }); }
    });
    all("#events-table th button").forEach(function (b) {
      b.addEventListener("click", function () { sortBy(b.dataset.sort, b); });
    });
    all("#events-table tbody a").forEach(function (a) {
      a.addEventListener("click", function (event) {
        var entry = document.getElementById(a.getAttribute("href").slice(1));
        if (entry) { event.preventDefault(); select(entry, true); }
      });
    });
    $("#filter").addEventListener("input", applyFilter);
    $("#export").addEventListener("click", exportCsv);
    $("#clip-close").addEventListener("click", closeClip);
    document.addEventListener("keydown", function (event) {
      if (event.ctrlKey || event.metaKey || event.altKey) { return; }
      if (event.target && /^(INPUT|TEXTAREA|SELECT)$/.test(event.target.tagName)) {
        if (event.key === "Escape") { event.target.blur(); }
        return;
      }
      if (event.key === "j") { closeClip(); move(1); }
      else if (event.key === "k") { closeClip(); move(-1); }
      else if (event.key === "o") { openClip(); }
      else if (event.key === "Escape") { closeClip(); }
      else { return; }
      event.preventDefault();
    });
    var start = location.hash && document.getElementById(location.hash.slice(1));
    if (start && start.classList.contains("event")) { select(start, true); }
    showVerdicts();
  });
})();
