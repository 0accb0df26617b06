#!/usr/bin/env python3
"""Check the offline docs site in a real browser: headless Chromium (Debian's chromium + chromium-driver).

Serves _docs/ on localhost, opens the index and every chapter, and fails on:
- JavaScript errors and failed requests in the browser console (any CDN request fails offline too);
- images that did not load (figures are embedded; a broken one has no natural width);
- empty pages (too little text) and pages whose maths was not rendered by MathJax;
- error outputs left in a page (a Python traceback);
- figures without alt text;
- broken internal links (a page that does not exist, or an anchor that is not on it) and links to the hosts
  in settings.ini (`doc_host`, `git_url`), which serve nothing for this copy;
- a search box that does not find the right chapter for a few queries (SEARCHES).
Saves a full-page screenshot of each page under checks/screenshots/.

    python tools/check_site.py            # needs: apt-get install chromium chromium-driver; pip install selenium
"""
import configparser, functools, http.server, json, shutil, socketserver, sys, threading, time
from pathlib import Path
from urllib.parse import unquote, urlparse

ROOT = Path(__file__).resolve().parent.parent
SITE, SHOTS = ROOT / "_docs", ROOT / "checks" / "screenshots"
FLAGS = ["--headless=new", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-dev-shm-usage",
         "--disable-background-networking", "--disable-component-update", "--disable-sync", "--window-size=1400,1000"]


def serve(folder: Path):
    "Serve `folder` on a free localhost port in a background thread; returns (server, base URL)."
    class Quiet(http.server.SimpleHTTPRequestHandler):
        def log_message(self, *args): pass
    handler = functools.partial(Quiet, directory=str(folder))
    srv = socketserver.TCPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    return srv, f"http://127.0.0.1:{srv.server_address[1]}"


def browser():
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service
    opts = webdriver.ChromeOptions()
    opts.binary_location = shutil.which("chromium") or "/usr/bin/chromium"
    for f in FLAGS: opts.add_argument(f)
    opts.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    return webdriver.Chrome(service=Service(shutil.which("chromedriver") or "/usr/bin/chromedriver"), options=opts)


CHECK_JS = """
const imgs = Array.from(document.images);
const math = document.querySelectorAll('.MathJax, .MathJax_Display, .MathJax_SVG, mjx-container').length;
const rawMath = (document.body.innerText.match(/\\$\\$[^$]+\\$\\$/g) || []).length;
return {
  title: document.title,
  text: document.body.innerText.length,
  images: imgs.length,
  broken: imgs.filter(i => !(i.complete && i.naturalWidth > 0)).map(i => (i.getAttribute('src') || '').slice(0, 60)),
  math: math, rawMath: rawMath,
  tracebacks: document.querySelectorAll('.jp-RenderedText[data-mime-type="application/vnd.jupyter.stderr"]').length,
  errorsShown: (document.body.innerText.match(/Traceback \\(most recent call last\\)/g) || []).length,
  sidebarLinks: document.querySelectorAll('.site-sidebar a').length,
  noAlt: imgs.filter(i => !(i.getAttribute('alt') || '').trim()).length,
  links: Array.from(document.querySelectorAll('a[href]')).map(a => a.href),
};
"""

# (query, page the first result must be on): the search box must lead a reader to the right chapter
SEARCHES = [("bipartite soft matching", "02_matching.html"), ("proportional attention", "04_proportional_attention.html"),
            ("size-weighted average merge_wavg", "03_merging.html"), ("DynamicViT", "09a_dynamicvit.html")]


def dead_hosts() -> set:
    "Hosts named in settings.ini that serve nothing for this project (doc_host, and git_url's owner path)."
    cfg = configparser.ConfigParser(); cfg.read(ROOT / "settings.ini")
    d = cfg["DEFAULT"]
    return {d.get("doc_host", "").rstrip("/"), d.get("git_url", "").rstrip("/")} - {""}


def link_problems(links: list, base: str, ids: dict, dead: set) -> list:
    "Internal links to missing pages or anchors, and links into the dead hosts `dead`."
    out = []
    for href in links:
        if any(href.startswith(h) for h in dead): out.append(f"link to a host that serves nothing: {href[:100]}"); continue
        if not href.startswith(base): continue
        u = urlparse(href)
        path = unquote(u.path).lstrip("/") or "index.html"
        target = SITE / path
        if not target.is_file(): out.append(f"broken link: {path}"); continue
        if u.fragment and target.suffix == ".html":
            if path not in ids:
                from bs4 import BeautifulSoup
                ids[path] = {t.get("id") for t in BeautifulSoup(target.read_text(), "html.parser").find_all(id=True)}
            if unquote(u.fragment) not in ids[path]: out.append(f"broken anchor: {path}#{u.fragment[:60]}")
    return sorted(set(out))


def search_problems(drv, base: str) -> list:
    "Type each query into the search box of the index page; the first result must be on the expected page."
    from selenium.webdriver.common.by import By
    out = []
    drv.get(f"{base}/index.html")
    box = drv.find_element(By.ID, "site-search")
    for query, page in SEARCHES:
        box.clear(); box.send_keys(query); time.sleep(0.3)
        hits = [a.get_attribute("href") for a in drv.find_elements(By.CSS_SELECTOR, "#site-search-results a")]
        first = urlparse(hits[0]).path.rsplit("/", 1)[-1] if hits else None
        print(f"search {query!r:38s} -> {len(hits):2d} results, first on {first}")
        if first != page: out.append(f"search {query!r}: first result on {first}, expected {page}")
        if query == SEARCHES[0][0]: drv.save_screenshot(str(SHOTS / "search.png"))
    box.clear(); box.send_keys("zqxjkv"); time.sleep(0.3)
    none = drv.find_elements(By.CSS_SELECTOR, "#site-search-results li.none")
    if not none: out.append("search for a word on no page shows no 'No results' line")
    return out


def main() -> int:
    if not (SITE / "_site.json").exists():
        print("no built site: run `python tools/build_docs.py` first"); return 1
    if not (shutil.which("chromium") and shutil.which("chromedriver")):
        print("Chromium not found: `apt-get install -y chromium chromium-driver`"); return 1
    pages = json.loads((SITE / "_site.json").read_text())["pages"]
    shutil.rmtree(SHOTS, ignore_errors=True); SHOTS.mkdir(parents=True)
    srv, base = serve(SITE)
    drv = browser()
    failures, ids, dead = [], {}, dead_hosts()
    try:
        for page in pages:
            drv.get(f"{base}/{page}")
            drv.set_script_timeout(30)              # wait for MathJax 3 to finish typesetting
            drv.execute_async_script("const done = arguments[arguments.length - 1];"
                                     "const p = window.MathJax && MathJax.startup && MathJax.startup.promise;"
                                     "p ? p.then(() => done(true), () => done(false)) : setTimeout(() => done(true), 500);")
            time.sleep(0.3)
            info = drv.execute_script(CHECK_JS)
            logs = [l for l in drv.get_log("browser") if l["level"] in ("SEVERE",)]
            h = drv.execute_script("return document.body.scrollHeight")
            drv.set_window_size(1400, min(max(h, 800), 12000))
            drv.save_screenshot(str(SHOTS / (Path(page).stem + ".png")))
            drv.set_window_size(1400, 1000)
            problems = [f"console: {l['message'][:160]}" for l in logs]
            problems += [f"broken image {b}" for b in info["broken"]]
            if info["text"] < 500: problems.append(f"nearly empty page ({info['text']} characters)")
            if info["rawMath"]: problems.append(f"{info['rawMath']} display equations left unrendered")
            if info["errorsShown"]: problems.append(f"{info['errorsShown']} Python tracebacks shown")
            if info["sidebarLinks"] < len(pages): problems.append(f"sidebar has {info['sidebarLinks']} links for {len(pages)} pages")
            if info["noAlt"]: problems.append(f"{info['noAlt']} images without alt text")
            problems += link_problems(info["links"], base, ids, dead)
            text = (SITE / page).read_text()
            problems += [f"names a host that serves nothing: {h}" for h in dead if h in text]
            status = "ok" if not problems else "FAIL"
            print(f"{status:4s} {page:38s} {info['text']:7d} chars {info['images']:3d} images {info['math']:4d} equations")
            failures += [f"{page}: {p}" for p in problems]
        failures += search_problems(drv, base)
    finally:
        drv.quit(); srv.shutdown()
    if failures:
        print("\n".join(failures)); print(f"browser check: {len(failures)} problems"); return 1
    print(f"browser check: {len(pages)} pages ok, no broken internal link, search finds {len(SEARCHES)} of {len(SEARCHES)}; screenshots in {SHOTS.relative_to(ROOT)}/")
    return 0


if __name__ == "__main__":
    sys.exit(main())
