#!/usr/bin/env python3
"""Every GPU measurement of the course in one call, for a lent GPU (or `--dry-run`: the same code at toy sizes on a CPU).

A lent GPU comes for minutes, on a bare machine that reaches no registry, so everything runs from one command, in the
order of what matters most, each section time-boxed (a section that would not fit in what is left of `--budget` is
skipped and logged), and each result file written as soon as its section ends:

    bench_gpu.csv              chapter 07's GPU sweep (GPU_SWEEP, then GPU_SWEEP_COMPILED): timm vs tome_nb, paired ratios
    bench_gpu_overhead.csv     share of the forward pass inside matching + merging (ViT-S/B, bf16, batch 1/32/256)
    bench_gpu_latency.csv      batch-1 latency of timm, tome_nb and the free reduction, eager and compiled (ViT-S/B)
    accuracy_deit_tiny_gpu.csv DeiT-Tiny top-1 at r=0/13 on the carried images: CPU fp32, GPU fp32, GPU bf16, and how
                               often the GPU predictions agree with the CPU's
    comparison_deit_tiny_gpu.csv  chapter 10's methods, throughput on the GPU
    train_throughput_gpu.csv   chapter 12's training throughput (ViT-B, bf16 autocast, batch 128)
    gpu_checks.csv             every chapter's `gpu` cells, run in order with the cells before them: one row per notebook
    gpu_run.log                what ran, what passed, what was skipped, with times

Every CSV row carries the device, dtype, batch size, torch/timm versions and the date (`run_info`).

On the device machine (the tree travels without .git, so the commit is passed in):
    python3 tools/gpu_run.py --out $OUT --budget 390 --code <commit>
Here, a CPU dry run of the same code at toy sizes (the test in chapter 07 runs it):
    python tools/gpu_run.py --dry-run --out /tmp/gpu_dry
"""
import argparse, contextlib, copy, io, json, os, sys, time, traceback, types
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
CHECK_NOTEBOOKS = ("04_proportional_attention.ipynb", "05_timm.ipynb", "12_training.ipynb")
SKIP_FLAGS = {"slow", "notest"}

# full sizes (the GPU) and toy sizes (--dry-run, on a CPU)
FULL = dict(device="cuda", runs=7, min_run_time=0.25, acc_images=None, acc_batch=100, overhead_models=("vit_small_patch16_224", "vit_base_patch16_224"),
            overhead_batches=(1, 32, 256), latency_models=("vit_small_patch16_224", "vit_base_patch16_224"),
            compare_model="deit_tiny_patch16_224", compare_batch=256, train_model="vit_base_patch16_224", train_batch=128,
            train_rs=(0, 13))
DRY = dict(device="cpu", runs=2, min_run_time=0.01, acc_images=8, acc_batch=4, overhead_models=("test_vit",),
           overhead_batches=(1, 2), latency_models=("test_vit",), compare_model="deit_tiny_patch16_224", compare_batch=4,
           train_model="test_vit", train_batch=2, train_rs=(0, 8))
DRY_SWEEP = [dict(model="test_vit", rs=(0, 8), batch_size=2, dtype="float32", explicit=False)]
DRY_SWEEP_COMPILED = []


class Runner:
    "Sections in order, each skipped when less than its estimate is left of the budget; a log line for every event."
    def __init__(self, out: Path, budget: float, code: str = ""):
        self.out, self.budget, self.t0, self.code = out, budget, time.time(), code
        out.mkdir(parents=True, exist_ok=True)
        self.logf = open(out / "gpu_run.log", "a")
        self.status = {}

    def log(self, msg: str) -> None:
        line = f"[{time.time() - self.t0:6.1f}s] {msg}"
        print(line, flush=True); self.logf.write(line + "\n"); self.logf.flush()

    def left(self) -> float: return self.budget - (time.time() - self.t0)

    def stamp(self) -> None:
        "Add the `code` column (the commit measured) to every result file that lacks it."
        if not self.code: return
        import csv
        from tome_nb.assets import write_csv
        for f in self.out.glob("*.csv"):
            with open(f, newline="") as fh: rows = list(csv.DictReader(fh))
            if any(not r.get("code") for r in rows): write_csv([dict(r, code=r.get("code") or self.code) for r in rows], f)

    def section(self, name: str, estimate: float, fn) -> None:
        if self.left() < estimate:
            self.status[name] = "skipped"
            return self.log(f"SKIP {name}: needs about {estimate:.0f}s, {self.left():.0f}s left of the budget")
        self.log(f"START {name} (estimate {estimate:.0f}s)")
        t = time.time()
        try:
            fn(); self.status[name] = "done"
            self.log(f"DONE {name} in {time.time() - t:.1f}s")
        except Exception:
            self.status[name] = "failed"
            self.log(f"FAIL {name} after {time.time() - t:.1f}s\n{traceback.format_exc()}")
        self.stamp()


def environment(run: Runner, cfg: dict) -> None:
    import platform, torch, timm
    import tome_nb
    run.log(f"python {platform.python_version()}, torch {torch.__version__}, timm {timm.__version__}, tome_nb {tome_nb.__version__}")
    if cfg["device"] == "cuda":
        if not torch.cuda.is_available(): raise RuntimeError("no CUDA device")
        p = torch.cuda.get_device_properties(0)
        run.log(f"GPU {p.name}, {p.total_memory / 2**30:.0f} GiB, {p.multi_processor_count} SMs, CUDA {torch.version.cuda}, "
                f"cuDNN {torch.backends.cudnn.version()}")
    from tome_nb.assets import assets_dir
    run.log(f"assets: {assets_dir(required=False)}")


def sweep(run: Runner, cfg: dict, configs, keep: bool = False) -> None:
    "Chapter 07's `run_sweep` on `configs` into bench_gpu.csv (with `keep`, after the rows already there), row by row."
    from tome_nb.bench import run_sweep
    n = 0
    for c in configs:                                     # one configuration at a time: what is done is on disk
        rows = run_sweep([c], run.out / "bench_gpu.csv", device=cfg["device"], runs=cfg["runs"], progress=False, append=keep or n > 0)
        n += 1
        for r in rows[-len(c["rs"]) - 1:]:
            if r["method"] != "timm":
                run.log(f"  {r['model']} {r['dtype']} b{r['batch_size']} compile={r['compile']} r={r['r']}: "
                        f"{r['speedup']:.3f}x of ideal {r['ideal_speedup']:.3f} ({r['measured_over_ideal']:.3f})")


def overhead(run: Runner, cfg: dict) -> None:
    import timm
    from tome_nb.assets import write_csv
    from tome_nb.bench import overhead_sweep
    dtype = "bfloat16" if cfg["device"] == "cuda" else "float32"
    rows = []
    for name in cfg["overhead_models"]:
        rows += overhead_sweep(timm.create_model(name, pretrained=False), r=13 if cfg["device"] == "cuda" else 8,
                               batch_sizes=cfg["overhead_batches"], min_time=1.0 if cfg["device"] == "cuda" else 0.05,
                               name=name, device=cfg["device"], dtype=dtype)
        write_csv(rows, run.out / "bench_gpu_overhead.csv")
    for r in rows: run.log(f"  {r['model']} b{r['batch_size']}: matching + merging {r['reduce_share']:.1%} of the forward pass")


def latency(run: Runner, cfg: dict, compile: bool) -> None:
    import timm
    from tome_nb.assets import write_csv
    from tome_nb.bench import latency_sweep
    rows = []
    for name in cfg["latency_models"]:
        rows += latency_sweep(timm.create_model(name, pretrained=False).eval(), r=13 if cfg["device"] == "cuda" else 8,
                              batch_size=1, compile=compile, device=cfg["device"], runs=cfg["runs"] + 4,
                              min_run_time=cfg["min_run_time"], name=name, progress=False)
        write_csv(rows, run.out / "bench_gpu_latency.csv")
    for r in rows: run.log(f"  {r['model']} {r['method']} compiled={r['compiled']}: {r['latency_ms']:.2f} ms, speed-up {r['speedup']:.3f}")


def accuracy(run: Runner, cfg: dict) -> None:
    "DeiT-Tiny (real weights) on the carried images, r=0 and 13: CPU fp32 against GPU fp32 and bf16, image by image."
    import torch
    from tome_nb import apply_patch
    from tome_nb.assets import asset_path, create_model, labelled_images, run_info, write_csv
    from tome_nb.eval import image_loader
    name = "deit_tiny_patch16_224"
    cpu_model = apply_patch(create_model(name))
    items = labelled_images(asset_path("imagenet-val-1300"), cfg["acc_images"])
    loader = image_loader(items, cpu_model, batch_size=cfg["acc_batch"], num_workers=min(8, os.cpu_count() or 1))
    dev = torch.device(cfg["device"])
    runs = {"cpu float32": (cpu_model, torch.device("cpu"), torch.float32)}
    if dev.type == "cuda":
        runs["cuda float32"] = (apply_patch(create_model(name)).to(dev), dev, torch.float32)
        runs["cuda bfloat16"] = (apply_patch(create_model(name)).to(dev, torch.bfloat16), dev, torch.bfloat16)
    stats = {(k, r): dict(n=0, top1=0, agree=0, maxdiff=0.0) for k in runs for r in (0, 13)}
    with torch.inference_mode():
        for x, y in loader:
            for r in (0, 13):
                ref = None
                for k, (m, d, dt) in runs.items():
                    m.r = r
                    logits = m(x.to(d, dt)).float().cpu()
                    ref = logits if ref is None else ref
                    s = stats[(k, r)]
                    s["n"] += len(y); s["top1"] += int((logits.argmax(-1) == y).sum())
                    s["agree"] += int((logits.argmax(-1) == ref.argmax(-1)).sum())
                    s["maxdiff"] = max(s["maxdiff"], float((logits - ref).abs().max()))
    rows = []
    for (k, r), s in stats.items():
        d, dt = k.split()
        rows.append(dict(model=name, images_set="imagenet-val-1300", r=r, run=k, images=s["n"], top1=round(100 * s["top1"] / s["n"], 2),
                         agreement_with_cpu=round(100 * s["agree"] / s["n"], 2), max_logit_diff_vs_cpu=round(s["maxdiff"], 5),
                         **run_info(torch.device(d) if d == "cuda" else "cpu", dt, cfg["acc_batch"])))
        run.log(f"  r={r} {k}: top-1 {rows[-1]['top1']:.2f}% on {s['n']} images, agreement with CPU {rows[-1]['agreement_with_cpu']:.2f}%")
    write_csv(rows, run.out / "accuracy_deit_tiny_gpu.csv")


def comparison(run: Runner, cfg: dict) -> None:
    "Chapter 10's methods on the GPU, throughput only; DynamicViT/SP-ViT with untrained predictors (their keep counts are fixed)."
    from tome_nb.assets import write_csv
    from tome_nb.comparison import run_comparison
    name = cfg["compare_model"]
    dtype = "bfloat16" if cfg["device"] == "cuda" else "float32"
    rows = run_comparison(name, device=cfg["device"], dtype=dtype, batch_size=cfg["compare_batch"], runs=min(cfg["runs"], 5),
                          accuracy=False, progress=False)          # throughput only: untrained predictors, no A-ViT
    write_csv(rows, run.out / "comparison_deit_tiny_gpu.csv")
    for r in rows: run.log(f"  {r['method']:22s} {r['setting']:10s} {r['gflops_ratio']:.3f} of the FLOPs, speed-up {r['speedup']:.3f}")


def training(run: Runner, cfg: dict) -> None:
    import timm
    from tome_nb.assets import write_csv
    from tome_nb.train import train_throughput
    dtype = "bfloat16" if cfg["device"] == "cuda" else "float32"
    model = timm.create_model(cfg["train_model"], pretrained=False)
    rows = train_throughput(model, rs=cfg["train_rs"], batch_size=cfg["train_batch"], device=cfg["device"], dtype=dtype,
                            runs=cfg["runs"] - 2 if cfg["device"] == "cuda" else 2, min_run_time=cfg["min_run_time"] * 2,
                            name=cfg["train_model"], progress=False)
    write_csv(rows, run.out / "train_throughput_gpu.csv")
    for r in rows: run.log(f"  {r['method']} r={r['r']}: {r['img_s']:.0f} img/s, speed-up {r['speedup']:.3f} (ideal {r['ideal_speedup']:.3f})")


def notebook_cells(path: Path) -> list:
    "(index, source, flags) of the code cells of a notebook, directive lines kept."
    nb = json.loads(path.read_text())
    out = []
    for i, c in enumerate(nb["cells"]):
        if c["cell_type"] != "code": continue
        src = "".join(c["source"])
        flags = {w for line in src.splitlines() if line.startswith("#|") for w in line[2:].split()}
        out.append((i, src, flags))
    return out


def _ipython_stub() -> None:
    "The device has no IPython: a text-only `IPython.display.Markdown` for the cells that import it."
    try: import IPython.display  # noqa: F401
    except ImportError:
        ip, disp = types.ModuleType("IPython"), types.ModuleType("IPython.display")
        disp.Markdown = lambda text: text
        disp.display = print
        ip.display, ip.get_ipython, ip.version_info, ip.__version__ = disp, lambda: None, (8, 0, 0), "8.0.0"   # what matplotlib and tqdm ask
        sys.modules["IPython"], sys.modules["IPython.display"] = ip, disp


def run_notebook(path: Path, with_gpu: bool) -> dict:
    "Execute a notebook's cells in order in one namespace, skipping `slow`/`notest` (and `gpu` unless `with_gpu`)."
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    _ipython_stub()
    mod = types.ModuleType(f"nb_{path.stem}")          # a real module, so that classes defined in cells pickle by name
    sys.modules[mod.__name__] = mod
    ns = mod.__dict__
    cells = notebook_cells(path)
    ran = gpu_ran = 0
    cwd = os.getcwd()
    os.chdir(path.parent)
    t = time.time()
    try:
        for i, src, flags in cells:
            if flags & SKIP_FLAGS or ("gpu" in flags and not with_gpu) or "nbdev_export" in src: continue
            body = "\n".join(l for l in src.splitlines() if not l.startswith("#|"))
            try:
                with contextlib.redirect_stdout(io.StringIO()):
                    exec(compile(body, f"{path.name}[cell {i}]", "exec"), ns)
            except Exception as e:
                return dict(notebook=path.name, status="failed", cells_run=ran, gpu_cells_run=gpu_ran, failed_cell=i,
                            error=f"{type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''}"[:300],
                            seconds=round(time.time() - t, 1))
            finally: plt.close("all")
            ran += 1; gpu_ran += "gpu" in flags
    finally: os.chdir(cwd)
    return dict(notebook=path.name, status="passed", cells_run=ran, gpu_cells_run=gpu_ran, failed_cell="", error="",
                seconds=round(time.time() - t, 1))


def checks(run: Runner, cfg: dict, notebooks) -> None:
    import torch
    from tome_nb.assets import run_info, write_csv
    rows = []
    for nb in notebooks:
        left = run.left()
        if left < 30:
            rows.append(dict(notebook=nb, status="skipped", error=f"{left:.0f}s left of the budget")); continue
        res = run_notebook(ROOT / "nbs" / nb, with_gpu=cfg["device"] == "cuda")
        rows.append(res)
        run.log(f"  {res['status'].upper():7s} {nb}: {res['cells_run']} cells ({res['gpu_cells_run']} gpu) in {res['seconds']}s"
                + (f"; cell {res['failed_cell']}: {res['error']}" if res["status"] == "failed" else ""))
        dev = torch.device(cfg["device"])
        write_csv([dict(r, **run_info(dev, "float32", None)) for r in rows], run.out / "gpu_checks.csv")
    if any(r["status"] == "failed" for r in rows): raise RuntimeError("a notebook failed (see gpu_checks.csv)")


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", default=os.environ.get("OUT", "gpu_out"), help="folder for the result files (default: $OUT)")
    ap.add_argument("--budget", type=float, default=420, help="seconds; sections that would not fit are skipped")
    ap.add_argument("--dry-run", action="store_true", help="toy sizes on the CPU: checks that the script works, measures nothing")
    ap.add_argument("--only", default=None, help="comma-separated section names to run (default: all)")
    ap.add_argument("--skip", default="", help="comma-separated section names to leave out")
    ap.add_argument("--runs", type=int, default=None, help="interleaved rounds per measurement (default: 7 on a GPU)")
    ap.add_argument("--code", default="", help="the commit being measured, written into every row (the device gets no .git)")
    args = ap.parse_args(argv)
    cfg = dict(DRY if args.dry_run else FULL)
    if args.runs is not None: cfg["runs"] = max(args.runs, 3)
    run = Runner(Path(args.out), args.budget, args.code)
    run.log(f"tome_nb GPU run{' (dry run, CPU, toy sizes)' if args.dry_run else ''}: budget {args.budget:.0f}s, out {run.out}")
    from tome_nb.bench import GPU_SWEEP, GPU_SWEEP_COMPILED
    sweep_eager, sweep_compiled = (DRY_SWEEP, DRY_SWEEP_COMPILED) if args.dry_run else (GPU_SWEEP, GPU_SWEEP_COMPILED)
    sections = [                                            # most important first; estimates are GPU seconds
        ("environment", 5, lambda: environment(run, cfg)),
        ("sweep", 90, lambda: sweep(run, cfg, sweep_eager)),
        ("overhead", 20, lambda: overhead(run, cfg)),
        ("accuracy", 30, lambda: accuracy(run, cfg)),
        ("training", 30, lambda: training(run, cfg)),
        ("comparison", 40, lambda: comparison(run, cfg)),
        ("checks", 60, lambda: checks(run, cfg, CHECK_NOTEBOOKS[:1] if args.dry_run else CHECK_NOTEBOOKS)),
        ("latency", 60, lambda: latency(run, cfg, compile=False)),
        ("sweep_compiled", 100, lambda: sweep(run, cfg, sweep_compiled, keep=True)),
        ("latency_compiled", 120, lambda: latency(run, cfg, compile=True)),
    ]
    only, skip = (set(args.only.split(",")) if args.only else None), set(filter(None, args.skip.split(",")))
    unknown = ((only or set()) | skip) - {name for name, _, _ in sections}
    if unknown: ap.error(f"unknown sections {sorted(unknown)}; the sections are {[name for name, _, _ in sections]}")
    for name, est, fn in sections:
        if (only is None or name in only or name == "environment") and name not in skip:
            run.section(name, 0 if args.dry_run else est, fn)
    run.log("summary: " + ", ".join(f"{k} {v}" for k, v in run.status.items()))
    return 0 if all(v != "failed" for v in run.status.values()) else 1


if __name__ == "__main__":
    sys.exit(main())
