/**
 * The review page's style and script, inlined into every page so it opens from a file with no
 * network. The script builds everything with createElement and textContent: captions and paths
 * are untrusted text, and nothing of theirs is ever parsed as HTML.
 */

export const PAGE_STYLE = `
:root { color-scheme: light dark; --bg: #fafafa; --fg: #1b1b1b; --muted: #666; --card: #fff; --line: #ddd; --accent: #2457c5; --warn: #b25b00; --bad: #b3261e; }
@media (prefers-color-scheme: dark) { :root { --bg: #151515; --fg: #eee; --muted: #aaa; --card: #222; --line: #333; --accent: #8fb0ff; --warn: #ffb35c; --bad: #ff8a80; } }
* { box-sizing: border-box; }
body { margin: 0; font: 14px/1.4 system-ui, sans-serif; background: var(--bg); color: var(--fg); }
header { padding: 12px 16px; border-bottom: 1px solid var(--line); }
h1 { font-size: 18px; margin: 0 0 8px; }
#counts { display: flex; flex-wrap: wrap; gap: 6px 18px; margin-bottom: 8px; }
#counts b { font-variant-numeric: tabular-nums; }
.charts { display: flex; flex-wrap: wrap; gap: 16px; }
figure { margin: 0; }
figcaption { color: var(--muted); font-size: 12px; }
svg .bar { fill: var(--accent); }
svg text { fill: var(--muted); font-size: 9px; }
.controls { display: flex; gap: 8px; align-items: center; margin-top: 8px; flex-wrap: wrap; }
#search { flex: 1 1 260px; max-width: 480px; padding: 6px 8px; font: inherit; }
#grid { display: grid; grid-template-columns: repeat(auto-fill, minmax(240px, 1fr)); gap: 12px; padding: 16px; }
.card { background: var(--card); border: 1px solid var(--line); border-radius: 6px; overflow: hidden; display: flex; flex-direction: column; }
.card .thumb { display: block; height: 180px; background: var(--line); }
.card img { width: 100%; height: 180px; object-fit: contain; display: block; }
.card .body { padding: 8px; display: flex; flex-direction: column; gap: 4px; }
.card .caption { white-space: pre-wrap; overflow-wrap: anywhere; max-height: 12em; overflow: auto; }
.card .path, .card .meta { color: var(--muted); font-size: 12px; overflow-wrap: anywhere; }
.flag { display: inline-block; padding: 0 6px; border-radius: 8px; background: var(--warn); color: #000; font-size: 11px; margin-right: 4px; }
.card.failed .caption { color: var(--bad); }
#pager { display: flex; gap: 6px; justify-content: center; padding: 0 16px 16px; }
#pager button { font: inherit; padding: 4px 10px; }
#failures-section { padding: 0 16px 24px; }
table { border-collapse: collapse; width: 100%; }
td, th { border-bottom: 1px solid var(--line); text-align: left; padding: 4px 6px; vertical-align: top; overflow-wrap: anywhere; }
`;

export const PAGE_SCRIPT = `
(function () {
  "use strict";
  var PAGE_SIZE = 60;
  function data(id) { return JSON.parse(document.getElementById(id).textContent); }
  var rows = data("rows"), failures = data("failures"), summary = data("summary");
  var grid = document.getElementById("grid"), pager = document.getElementById("pager");
  var search = document.getElementById("search"), filter = document.getElementById("filter");
  var shownLine = document.getElementById("shown");
  var page = 0, matching = rows;

  function el(tag, className, text) {
    var node = document.createElement(tag);
    if (className) node.className = className;
    if (text !== undefined && text !== null) node.textContent = String(text);
    return node;
  }
  document.getElementById("title").textContent = document.title.replace(/^caption report: /, "");

  function counts() {
    var box = document.getElementById("counts");
    function add(label, value) { var item = el("span"); item.appendChild(el("b", "", value)); item.appendChild(document.createTextNode(" " + label)); box.appendChild(item); }
    add("captioned", summary.captioned);
    add("failed", summary.failed);
    Object.keys(summary.failedByCode).sort().forEach(function (code) { add("failed: " + code, summary.failedByCode[code]); });
    add("copies", summary.copies);
    add("flagged", summary.flaggedRows);
    Object.keys(summary.flagged).sort().forEach(function (flag) { add(flag, summary.flagged[flag]); });
    add("prompt tokens", summary.promptTokens.toLocaleString());
    add("completion tokens", summary.completionTokens.toLocaleString());
  }

  function chart(target, histogram) {
    var ns = "http://www.w3.org/2000/svg", width = 360, height = 110, bottom = 18;
    var svg = document.createElementNS(ns, "svg");
    svg.setAttribute("width", width); svg.setAttribute("height", height); svg.setAttribute("role", "img");
    var most = Math.max.apply(null, histogram.counts.concat([1]));
    var barWidth = width / histogram.counts.length;
    histogram.counts.forEach(function (count, i) {
      var h = (height - bottom - 12) * count / most;
      var bar = document.createElementNS(ns, "rect");
      bar.setAttribute("class", "bar"); bar.setAttribute("x", i * barWidth + 1); bar.setAttribute("width", barWidth - 2);
      bar.setAttribute("y", height - bottom - h); bar.setAttribute("height", h);
      var tip = document.createElementNS(ns, "title");
      tip.textContent = histogram.edges[i] + "–" + histogram.edges[i + 1] + ": " + count;
      bar.appendChild(tip); svg.appendChild(bar);
      if (count > 0) { var n = document.createElementNS(ns, "text"); n.setAttribute("x", i * barWidth + barWidth / 2); n.setAttribute("y", height - bottom - h - 2); n.setAttribute("text-anchor", "middle"); n.textContent = count; svg.appendChild(n); }
      if (i % 2 === 0) { var edge = document.createElementNS(ns, "text"); edge.setAttribute("x", i * barWidth); edge.setAttribute("y", height - 4); edge.textContent = histogram.edges[i] >= 1000 ? histogram.edges[i] / 1000 + "k" : histogram.edges[i]; svg.appendChild(edge); }
    });
    document.getElementById(target).appendChild(svg);
  }

  function rowCard(row) {
    var card = el("article", "card");
    var link = el("a", "thumb"); link.href = row.o; link.target = "_blank"; link.rel = "noopener";
    var img = el("img"); img.loading = "lazy"; img.alt = row.p; img.src = row.t;
    img.addEventListener("error", function () { img.remove(); link.textContent = "no preview"; });
    link.appendChild(img); card.appendChild(link);
    var body = el("div", "body");
    if (row.f.length) { var flags = el("div"); row.f.forEach(function (flag) { flags.appendChild(el("span", "flag", flag)); }); body.appendChild(flags); }
    body.appendChild(el("div", "caption", row.c));
    body.appendChild(el("div", "path", row.p));
    var meta = [];
    if (row.v) meta.push(row.v);
    if (row.w && row.h) meta.push(row.w + "×" + row.h + " sent");
    if (row.pt !== null || row.ct !== null) meta.push((row.pt || 0) + " + " + (row.ct || 0) + " tokens");
    if (row.k) meta.push("copy of an identical file"); else if (row.l !== null) meta.push(row.l + " ms");
    body.appendChild(el("div", "meta", meta.join(" · ")));
    card.appendChild(body);
    return card;
  }

  function failureCard(failure) {
    var card = el("article", "card failed");
    var body = el("div", "body");
    body.appendChild(el("div", "caption", failure.c + ": " + failure.m));
    var path = el("a", "path", failure.p); path.href = failure.o; path.target = "_blank"; path.rel = "noopener";
    body.appendChild(path);
    card.appendChild(body);
    return card;
  }

  function apply() {
    var query = search.value.trim().toLowerCase(), mode = filter.value;
    var source = mode === "failed" ? failures : rows;
    matching = source.filter(function (item) {
      if (mode === "flagged" && !(item.f && item.f.length)) return false;
      if (mode === "truncated" && !(item.f && item.f.indexOf("truncated") >= 0)) return false;
      if (!query) return true;
      // Lower-cased once per item, not once per keystroke.
      if (item.s === undefined) item.s = (item.p + " | " + (mode === "failed" ? item.c + " " + item.m : item.c)).toLowerCase();
      return item.s.indexOf(query) >= 0;
    });
    page = 0;
    render();
  }

  function render() {
    var pages = Math.max(1, Math.ceil(matching.length / PAGE_SIZE));
    page = Math.min(page, pages - 1);
    grid.replaceChildren();
    var slice = matching.slice(page * PAGE_SIZE, (page + 1) * PAGE_SIZE);
    var failed = filter.value === "failed";
    slice.forEach(function (item) { grid.appendChild(failed ? failureCard(item) : rowCard(item)); });
    shownLine.textContent = matching.length + " shown" + (pages > 1 ? ", page " + (page + 1) + " of " + pages : "");
    pager.replaceChildren();
    if (pages > 1) {
      var prev = el("button", "", "previous"); prev.disabled = page === 0;
      prev.addEventListener("click", function () { page -= 1; render(); window.scrollTo(0, 0); });
      var next = el("button", "", "next"); next.disabled = page >= pages - 1;
      next.addEventListener("click", function () { page += 1; render(); window.scrollTo(0, 0); });
      pager.appendChild(prev); pager.appendChild(el("span", "", (page + 1) + " / " + pages)); pager.appendChild(next);
    }
  }

  function failureTable() {
    var body = document.querySelector("#failures-table tbody");
    if (!failures.length) { document.getElementById("failures-section").appendChild(el("p", "", "No failures.")); return; }
    // A few hundred rows at a time: 100,000 failed files must not freeze the page.
    var shownRows = 0, more = el("button", "", "");
    function addRows() {
      failures.slice(shownRows, shownRows + 200).forEach(function (failure) {
        var tr = el("tr");
        var file = el("td"); var a = el("a", "", failure.p); a.href = failure.o; a.target = "_blank"; a.rel = "noopener"; file.appendChild(a);
        tr.appendChild(file); tr.appendChild(el("td", "", failure.c)); tr.appendChild(el("td", "", failure.m));
        body.appendChild(tr);
      });
      shownRows = Math.min(failures.length, shownRows + 200);
      more.textContent = "show more (" + (failures.length - shownRows) + " left)";
      more.hidden = shownRows >= failures.length;
    }
    more.addEventListener("click", addRows);
    document.getElementById("failures-section").appendChild(more);
    addRows();
  }

  counts();
  chart("latency-chart", summary.latency);
  chart("length-chart", summary.captionLength);
  failureTable();
  var typing = null;
  search.addEventListener("input", function () { clearTimeout(typing); typing = setTimeout(apply, 150); });
  filter.addEventListener("change", apply);
  apply();
})();
`;
