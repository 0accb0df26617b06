#!/usr/bin/env python3
"""Execute notebooks in place, storing their outputs, skipping cells by test flag; then clean them.

`nbdev_test` runs every notebook but keeps no outputs; the docs site shows the outputs stored in the
notebooks. This runs a notebook top to bottom in `nbs/` (as nbdev_test does) and writes the outputs
back. Cells carrying a skipped flag are not run and keep whatever output they had (so a `slow` sweep
that wrote its CSV once is not re-run each time the chapter is refreshed; the figure cells below it
redraw from the CSV).

    python tools/run_nb.py nbs/12_training.ipynb                 # skip gpu and slow cells (the default)
    python tools/run_nb.py nbs/05_timm.ipynb --skip gpu          # also run the slow cells
    python tools/run_nb.py nbs/*.ipynb --timeout 1800
    python tools/run_nb.py nbs/07_benchmarking.ipynb --also bench_cpu_latency   # also the slow cells mentioning it

After running it calls `nbdev_clean` on the same files, so the result is ready to commit.
"""
import argparse, os, re, subprocess, sys, time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def flags(source: str) -> set:
    "The nbdev test flags of a cell: the words of `#| flag` lines at its top (e.g. `#| slow`)."
    out = set()
    for line in source.splitlines():
        m = re.match(r"^#\|\s*([\w-]+)\s*$", line.strip())
        if m: out.add(m.group(1))
        elif line.strip() and not line.lstrip().startswith("#|"): break
    return out


def run(path: Path, skip: set, timeout: int, also: list = ()) -> float:
    import nbformat
    from nbclient import NotebookClient
    nb = nbformat.read(path, as_version=4)
    skipped = [i for i, c in enumerate(nb.cells) if c.cell_type == "code" and flags(c.source) & skip
               and not any(a in c.source for a in also)]
    kept = {i: nb.cells[i] for i in skipped}
    for i in skipped:                                        # run as a comment; put the original back after
        nb.cells[i] = nbformat.v4.new_code_cell("# skipped by tools/run_nb.py")
    client = NotebookClient(nb, timeout=timeout, kernel_name="python3",
                            resources={"metadata": {"path": str(path.parent)}})
    t = time.time()
    client.execute()
    for i, c in kept.items(): nb.cells[i] = c
    nbformat.write(nb, path)
    return time.time() - t


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("notebooks", nargs="+", type=Path)
    p.add_argument("--skip", nargs="*", default=["gpu", "slow"], help="flags of cells not to run (default: gpu slow)")
    p.add_argument("--timeout", type=int, default=3600, help="seconds per cell (default: %(default)s)")
    p.add_argument("--also", nargs="*", default=[], metavar="TEXT",
                   help="run skipped cells anyway when their source contains one of these strings")
    p.add_argument("--no-clean", action="store_true", help="do not run nbdev_clean afterwards")
    a = p.parse_args()
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    for nb in a.notebooks:
        nb = nb.resolve()
        print(f"{nb.name}: running (skipping cells flagged {' '.join(a.skip) or 'nothing'})", flush=True)
        print(f"{nb.name}: done in {run(nb, set(a.skip), a.timeout, a.also):.0f} s", flush=True)
    if not a.no_clean:
        bindir = Path(sys.executable).parent
        for nb in a.notebooks:
            subprocess.run([str(bindir / "nbdev_clean"), "--fname", str(nb)], cwd=ROOT, check=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
