#!/usr/bin/env python3
"""Check the offline docs site in a real browser: headless Chromium (Debian's chromium + chromium-driver).

Serves _docs/ on localhost, opens the index and every chapter, and fails on:
- JavaScript errors and failed requests in the browser console (any CDN request fails offline too);
- images that did not load (figures are embedded; a broken one has no natural width);
- empty pages (too little text) and pages whose maths was not rendered by MathJax;
- error outputs left in a page (a Python traceback).
Saves a full-page screenshot of each page under checks/screenshots/.

    python tools/check_site.py            # needs: apt-get install chromium chromium-driver; pip install selenium
"""
import functools, http.server, json, shutil, socketserver, sys, threading, time
from pathlib import Path

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
};
"""


def main() -> int:
    if not (SITE / "_site.json").exists():
        print("no built site: run `python tools/build_docs.py` first"); return 1
    if not (shutil.which("chromium") and shutil.which("chromedriver")):
        print("Chromium not found: `apt-get install -y chromium chromium-driver`"); return 1
    pages = json.loads((SITE / "_site.json").read_text())["pages"]
    shutil.rmtree(SHOTS, ignore_errors=True); SHOTS.mkdir(parents=True)
    srv, base = serve(SITE)
    drv = browser()
    failures = []
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
            status = "ok" if not problems else "FAIL"
            print(f"{status:4s} {page:38s} {info['text']:7d} chars {info['images']:3d} images {info['math']:4d} equations")
            failures += [f"{page}: {p}" for p in problems]
    finally:
        drv.quit(); srv.shutdown()
    if failures:
        print("\n".join(failures)); print(f"browser check: {len(failures)} problems"); return 1
    print(f"browser check: {len(pages)} pages ok; screenshots in {SHOTS.relative_to(ROOT)}/")
    return 0


if __name__ == "__main__":
    sys.exit(main())
