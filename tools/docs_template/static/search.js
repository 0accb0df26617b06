// Client-side search for the offline tome_nb site: no server, no CDN. The index (window.TOME_NB_SEARCH, written
// by tools/build_docs.py into _static/search_index.js) holds one entry per section of every page:
// {url, title, text}. Every word of the query must occur in an entry; words in its title count most.
(function () {
  const box = document.getElementById("site-search"), list = document.getElementById("site-search-results");
  if (!box || !list || !window.TOME_NB_SEARCH) return;
  const entries = window.TOME_NB_SEARCH.map(e => Object.assign({ t: e.title.toLowerCase(), x: e.text.toLowerCase() }, e));
  const count = (s, w) => { let n = 0, i = s.indexOf(w); while (i >= 0 && n < 20) { n++; i = s.indexOf(w, i + w.length); } return n; };
  function snippet(e, w) {
    const i = Math.max(0, e.x.indexOf(w));
    const s = e.text.slice(Math.max(0, i - 60), i + 100).replace(/\s+/g, " ");
    return (i > 60 ? "\u2026" : "") + s + "\u2026";
  }
  function search(q) {
    const words = q.toLowerCase().split(/\s+/).filter(w => w.length > 1);
    if (!words.length) return [];
    const hits = [];
    for (const e of entries) {
      let score = 0;
      for (const w of words) {
        const inTitle = e.t.includes(w), n = count(e.x, w);
        if (!inTitle && !n) { score = -1; break; }
        score += (inTitle ? 10 : 0) + n;
      }
      if (score > 0) hits.push([score + (e.t.includes(words.join(" ")) ? 20 : 0), e]);
    }
    return hits.sort((a, b) => b[0] - a[0]).slice(0, 12).map(h => h[1]);
  }
  function show() {
    const q = box.value.trim(), hits = search(q);
    list.innerHTML = "";
    if (!q) { list.hidden = true; return; }
    if (!hits.length) {
      const li = document.createElement("li"); li.className = "none"; li.textContent = "No results for \u201c" + q + "\u201d";
      list.appendChild(li);
    }
    const first = q.toLowerCase().split(/\s+/).filter(w => w.length > 1)[0];
    for (const e of hits) {
      const li = document.createElement("li"), a = document.createElement("a"), p = document.createElement("span");
      a.href = e.url; a.textContent = e.title; p.textContent = snippet(e, first);
      li.appendChild(a); li.appendChild(p); list.appendChild(li);
    }
    list.hidden = false;
  }
  box.addEventListener("input", show);
  box.addEventListener("keydown", ev => {
    if (ev.key === "Enter") { const a = list.querySelector("a"); if (a) window.location.href = a.href; }
    if (ev.key === "Escape") { box.value = ""; show(); }
  });
  document.addEventListener("click", ev => { if (!list.contains(ev.target) && ev.target !== box) list.hidden = true; });
})();
