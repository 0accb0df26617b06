#!/usr/bin/env python3
"""Build the docs site offline, without Quarto, into _docs/.

nbdev 2 renders its site with Quarto, which cannot be installed on machines that reach only package
registries. This builds an equivalent offline site from the same inputs:

1. `nbdev.serve.proc_nbs` processes the notebooks exactly as `nbdev_docs` does before calling Quarto
   (hidden cells dropped, export directives removed, show_doc tables rendered, doc links added);
2. nbconvert renders each processed notebook to HTML with its `lab` template, extended in
   tools/docs_template/ with the site's navbar and the sidebar from nbs/sidebar.yml;
3. MathJax 3 is vendored from the `sphinx-mathjax-offline` package on PyPI (no CDN), figures stay embedded
   as data URIs with alt text (from the text that introduces them), and links to notebooks point to the
   rendered pages;
4. links to the hosts named in settings.ini (`doc_host`, `git_url`), which serve nothing for this offline
   copy, become links to the local pages (symbols) or plain source references (file and line);
5. a client-side search: `_static/search_index.js` (one entry per section of every page) and
   `_static/search.js` (the box in the navbar), no server and no CDN.

    python tools/build_docs.py            # -> _docs/index.html, _docs/<chapter>.html, _docs/_static/
"""
import html, json, re, shutil, sys, time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
NBS, OUT, PROC = ROOT / "nbs", ROOT / "_docs", ROOT / "_proc"
TEMPLATE_BASE = Path(__file__).resolve().parent / "docs_template"


def sidebar() -> list:
    "The sidebar from nbs/sidebar.yml: a list of ('page', file) and ('section', title, [files])."
    import yaml
    items = yaml.safe_load((NBS / "sidebar.yml").read_text())["website"]["sidebar"]["contents"]
    out = []
    for it in items:
        if isinstance(it, str): out.append(("page", it))
        else: out.append(("section", it["section"], list(it["contents"])))
    return out


def page_name(nb_file: str) -> str:
    return Path(nb_file).stem + ".html"


def options(cell) -> dict:
    "Quarto cell options (`#| key: value`) left in a processed code cell."
    opts = {}
    for line in cell.source.splitlines():
        m = re.match(r"^#\|\s*([\w-]+)\s*:\s*(.+?)\s*$", line)
        if m: opts[m.group(1)] = m.group(2)
    return opts


def plain_text(md: str) -> str:
    "Markdown to one line of plain text: no emphasis, code ticks, link targets, maths delimiters or headings."
    md = re.sub(r"\[([^\]]+)\]\([^)]*\)", r"\1", md)
    md = re.sub(r"^#+\s*", "", md, flags=re.M)
    md = re.sub(r"[*_`$]|<[^>]+>", "", md)
    return re.sub(r"\s+", " ", md).strip()


def figure_alt(intro: str, n: int) -> str:
    "Alt text for the `n`-th figure of a cell: the first sentences of the markdown that introduces it."
    text = plain_text(intro) or "A figure drawn by the code above"
    sentences = re.split(r"(?<=[.:;])\s+", text)
    alt = ""
    for s_ in sentences:
        if len(alt) + len(s_) > 280 and alt: break
        alt = (alt + " " + s_).strip()
    alt = alt[:300].rstrip(":;, ")
    return f"Figure: {alt}" + (f" (panel {n + 1})" if n else "")


def prepare(nb) -> tuple:
    "Title and description from the frontmatter; apply echo/output/include options; strip directive lines; alt text."
    import yaml
    title, desc = None, None
    nb.metadata.pop("widgets", None)          # widget state stored by nbdev's show_doc run: no widgets on these pages
    cells, intro = [], ""
    for c in nb.cells:
        if c.cell_type == "markdown": intro = c.source
        if c.cell_type == "code":
            pngs = [o for o in c.get("outputs", []) if "image/png" in o.get("data", {})]
            for n, o in enumerate(pngs):
                o.setdefault("metadata", {}).setdefault("image/png", {})["alt"] = figure_alt(intro, n)
        if c.cell_type == "raw" and c.source.lstrip().startswith("---"):
            fm = yaml.safe_load(c.source.strip().strip("-")) or {}
            title, desc = fm.get("title", title), fm.get("description", desc)
            continue
        if c.cell_type == "code":
            o = options(c)
            if o.get("include") == "false": continue
            if o.get("output") == "false": c.outputs = []
            c.source = "\n".join(l for l in c.source.splitlines() if not l.startswith("#|")).strip()
            if o.get("echo") == "false": c.metadata["tags"] = ["remove_input"]
            if not c.source and not c.outputs: continue
        cells.append(c)
    nb.cells = cells
    return title, desc


def inline_md(text: str) -> str:
    "Escape a one-line description and render its `code` spans."
    return re.sub(r"`([^`]+)`", r"<code>\1</code>", html.escape(text))


def nav_html(current: str, pages: dict) -> str:
    "The sidebar, with the current page marked."
    def link(f):
        name = page_name(f)
        cls = ' class="active"' if name == current else ""
        return f'<li><a href="{name}"{cls}>{html.escape(pages.get(f, Path(f).stem))}</a></li>'
    parts = ['<nav class="site-sidebar" aria-label="chapters"><ul>']
    for item in sidebar():
        if item[0] == "page": parts.append(link(item[1]))
        else:
            parts.append(f'<li class="section"><span>{html.escape(item[1])}</span><ul>')
            parts += [link(f) for f in item[2]]
            parts.append("</ul></li>")
    parts.append("</ul></nav>")
    return "\n".join(parts)


def vendor_mathjax() -> str:
    "Copy MathJax 3 (one self-contained file, SVG output) from the sphinx-mathjax-offline package on PyPI."
    from importlib.metadata import files
    src = next((f.locate() for f in files("sphinx-mathjax-offline") or [] if f.name == "tex-svg-full.js"), None)
    if src is None: raise FileNotFoundError("MathJax not found: pip install sphinx-mathjax-offline (a dev requirement)")
    dst = OUT / "_static" / "mathjax"
    dst.mkdir(parents=True, exist_ok=True)
    shutil.copy(src, dst / "tex-svg-full.js")
    return "_static/mathjax/tex-svg-full.js"


def search_entries(body: str, page: str, page_title: str) -> list:
    "One search entry per section (h1-h3 with an id) of a rendered page: url, title, text (capped)."
    from bs4 import BeautifulSoup
    main = BeautifulSoup(body, "html.parser").find("main")
    if main is None: return []
    for t in main.find_all(["script", "style", "img"]): t.decompose()
    entries, cur = [], dict(url=page, title=page_title, parts=[])
    for el in main.descendants:
        if getattr(el, "name", None) in ("h1", "h2", "h3") and el.get("id"):
            entries.append(cur)
            head = el.get_text(" ", strip=True).rstrip("¶").strip()
            cur = dict(url=f"{page}#{el['id']}", title=f"{page_title} › {head}", parts=[])
        elif isinstance(el, str) and el.parent.name not in ("h1", "h2", "h3"):
            cur["parts"].append(el)
    entries.append(cur)
    out = []
    for e in entries:
        text = re.sub(r"\s+", " ", " ".join(e.pop("parts"))).strip()[:6000]
        if text or e["url"] == page: out.append(dict(e, text=text))
    return out


def fix_anchor(page: str, anchor: str, ids: dict) -> str:
    """A symbol link made to this site's anchors: nbdev lower-cases them (Quarto's ids), nbconvert keeps the case;
    a symbol with no section of its own (a private helper) links to its page."""
    have = ids.get(page, set())
    if anchor in have: return f'href="{page}#{anchor}"'
    same = [i for i in have if i.lower() == anchor.lower()]
    return f'href="{page}#{same[0]}"' if same else f'href="{page}"'


def main() -> int:
    import nbformat
    from nbconvert import HTMLExporter
    from nbdev.serve import proc_nbs
    import warnings
    t0 = time.time()
    shutil.rmtree(PROC, ignore_errors=True)
    # Each chapter's hidden setup cell imports and seeds the RNG in one cell on purpose; nbdev warns about
    # that mix for every chapter, which only buries real warnings.
    warnings.filterwarnings("ignore", message="Found cells containing imports and other code")
    proc_nbs(path=str(NBS), n_workers=0, force=True)      # nbdev's own processing for docs
    shutil.rmtree(OUT, ignore_errors=True); OUT.mkdir()
    mathjax = vendor_mathjax()
    shutil.copy(NBS / "styles.css", OUT / "_static" / "styles.css")
    shutil.copy(TEMPLATE_BASE / "site.css", OUT / "_static" / "site.css")
    shutil.copy(TEMPLATE_BASE / "static" / "search.js", OUT / "_static" / "search.js")
    files = [f for item in sidebar() for f in ([item[1]] if item[0] == "page" else item[2])]
    missing = [f for f in files if not (PROC / f).exists()]
    if missing: print(f"sidebar.yml names notebooks that do not exist: {missing}"); return 1
    notebooks, titles = {}, {}
    for f in files:
        nb = nbformat.read(PROC / f, as_version=4)
        title, desc = prepare(nb)
        notebooks[f], titles[f] = (nb, title, desc), title or Path(f).stem
    from traitlets.config import Config
    cfg = Config({"TagRemovePreprocessor": {"enabled": True, "remove_input_tags": ["remove_input"]}})
    exporter = HTMLExporter(config=cfg, template_name="tome_nb", extra_template_basedirs=[str(TEMPLATE_BASE)],
                            mathjax_url=mathjax, exclude_input_prompt=True, exclude_output_prompt=True)
    errors = []
    from nbdev.config import get_config
    cfg_ = get_config()
    site = f"{cfg_.doc_host}{cfg_.doc_baseurl}".rstrip("/")
    src = f"{cfg_.git_url}/blob/{cfg_.branch}/".replace("//blob", "/blob")
    hosts = re.escape(site) + "|" + re.escape(cfg_.git_url)                 # the hosts in settings.ini, which serve nothing here
    index, bodies = [], {}
    local = {re.sub(r"^\d+[a-zA-Z0-9]*_", "", Path(f).stem): Path(f).stem for f in files}
    for f, (nb, title, desc) in notebooks.items():
        name = page_name(f)
        for c in nb.cells:
            for o in c.get("outputs", []):
                if o.get("output_type") == "error": errors.append(f"{f}: stored error output {o.get('ename')}")
        body, _ = exporter.from_notebook_node(nb, resources=dict(
            site_title="tome_nb", page_title=title or Path(f).stem, page_description=inline_md(desc or ""),
            sidebar=nav_html(name, titles), metadata=dict(name=title or Path(f).stem)))
        body = re.sub(r'href="(?!https?:|#|mailto:)([^"#]+?)\.ipynb(#[^"]*)?"', lambda m: f'href="{m.group(1)}.html{m.group(2) or ""}"', body)
        # nbdev's symbol links point at the hosted site, whose page names drop the number prefix: use our pages
        body = re.sub(r'href="' + re.escape(site) + r'/([\w-]+)\.html', lambda m: f'href="{local.get(m.group(1), m.group(1))}.html', body)
        # Pandoc link attributes from show_doc ([source](url){target=... style=...}) become HTML attributes
        body = re.sub(r'<a href="([^"]+)">([^<]+)</a>\{target="_blank" style="([^"]*)"\}',
                      r'<a href="\1" target="_blank" style="\3">\2</a>', body)
        # show_doc's [source] links point at a repository host this offline copy cannot reach: name the file and line
        body = re.sub(r'<a href="' + re.escape(src) + r'([^"#]+)(?:#L(\d+))?"[^>]*>source</a>',
                      lambda m: f'<span class="source-ref">source: <code>{m.group(1)}</code>' + (f', line {m.group(2)}' if m.group(2) else '') + '</span>', body)
        # nbdev's markdown links inside signature comments ([`name`](host/page.html#name)) keep their text
        body = re.sub(r'\[([^\]\n]+)\]\((?:' + hosts + r')[^)\s]*\)', r'\1', body)
        # any other link to those hosts keeps its text and loses its target
        body = re.sub(r'<a href="(?:' + hosts + r')[^"]*"[^>]*>(.*?)</a>', r'\1', body, flags=re.S)
        bodies[name] = (body, title or Path(f).stem)
    ids = {n: set(re.findall(r'\sid="([^"]+)"', b)) for n, (b, _) in bodies.items()}
    for name, (body, title) in bodies.items():
        body = re.sub(r'href="([\w-]+\.html)#([^"]+)"', lambda m: fix_anchor(m.group(1), m.group(2), ids), body)
        index += search_entries(body, name, title)
        (OUT / name).write_text(body)
    (OUT / "_static" / "search_index.js").write_text("window.TOME_NB_SEARCH = " + json.dumps(index, ensure_ascii=False) + ";\n")
    (OUT / "_site.json").write_text(json.dumps({"pages": [page_name(f) for f in files], "titles": titles}, indent=1))
    shutil.rmtree(PROC, ignore_errors=True)
    print(f"built {len(files)} pages into {OUT.relative_to(ROOT)}/ in {time.time() - t0:.0f}s")
    if errors:
        print("\n".join(errors)); return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
