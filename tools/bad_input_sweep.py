#!/usr/bin/env python
"""A careless user's sweep of `tome_nb` (issue 20: no traceback, no silent wrong result under bad input).

Every case is one command: `tome_nb ...` (the command line, its checkpoints and `--resume`) or a `python -c`
snippet (the public library API). Each runs in a subprocess, in a fresh temporary folder of its own (its working
directory: every path in a case is relative to it), with a time limit. A case expects either

* `refuse`: exit status non-zero, no Python traceback, and a last stderr line that names the argument or file
  (one of the case's `names`); a refusal must also leave the folder as it found it (no new or changed file), or
* `run`: valid input, exit status 0 (and, for some, a check of what was written).

Verdicts: PASS-refused, PASS-ran (good); TRACEBACK, SILENT (expected a refusal, got exit 0), WRONG-REFUSE (valid
input refused), HANG (time limit), VAGUE (refused, but the message names neither the argument nor the file),
LEFTOVER (refused, but files were left or changed), WRONG-RESULT (ran, but what it wrote or computed is wrong),
CRASH (killed by a signal) (bad); SKIP (the case needs what this machine lacks: no GPU, assets, transformers).

Library snippets run inside a small harness: an exception raised by a deliberate check in tome_nb (a ValueError,
TypeError, NotImplementedError, OSError or RuntimeError whose innermost frame is in the tome_nb package) counts as a
refusal and prints one line; any other exception (from inside torch or timm, a KeyError, an AssertionError, ...)
prints its traceback. A snippet that checks a property calls `wrong(msg)` (exit 3) when the result is wrong.

    python tools/bad_input_sweep.py                # all cases; writes nbs/data/bad_input_sweep.csv
    python tools/bad_input_sweep.py --quick        # ~15 representative cases, under 2 minutes (for CI)
    python tools/bad_input_sweep.py --list         # the cases
    python tools/bad_input_sweep.py --only ID,ID --keep   # some cases, keeping their folders to look at

A full run writes the CSV (one row per case, with the date and tome_nb's version); `--only` and `--quick` write
one only when `--csv PATH` is given. The exit status is 1 when any case failed.
"""
from __future__ import annotations
import argparse, csv, datetime, io, os, re, shlex, shutil, signal, subprocess, sys, tempfile, textwrap, time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Dict, List, Optional, Sequence

ROOT = Path(__file__).resolve().parent.parent
CSV_PATH = ROOT / "nbs" / "data" / "bad_input_sweep.csv"
TIMEOUT = 120
ROOT_USER = hasattr(os, "geteuid") and os.geteuid() == 0
GOOD = ("PASS-refused", "PASS-ran", "SKIP")

# ---------------------------------------------------------------------------------------------------------------
# The session: where fixtures shared by many cases are built once, and what this machine offers.

class Session:
    def __init__(self, keep: bool = False):
        self.dir = Path(tempfile.mkdtemp(prefix="tome_nb_sweep_"))
        self.keep = keep
        self.assets = self._assets()
        self.built: Dict[str, Path] = {}
        self.version, self.cuda, self.hf = "?", False, False
        exe = Path(sys.executable).parent / "tome_nb"
        self.cli = [str(exe)] if exe.is_file() else [sys.executable, "-c", "import sys; from tome_nb.cli import main; sys.exit(main())"]
        (self.dir / "mpl").mkdir(); (self.dir / "cache").mkdir()

    @staticmethod
    def _assets() -> Optional[Path]:
        env = os.environ.get("TOME_NB_ASSETS")
        p = Path(env).expanduser() if env else ROOT.parent / "shared" / "assets"
        return p.resolve() if p.is_dir() else None

    def env(self, extra: Optional[dict] = None) -> dict:
        e = {k: v for k, v in os.environ.items() if k not in ("TOME_NB_DEBUG", "WORLD_SIZE", "RANK", "LOCAL_RANK",
                                                               "MASTER_ADDR", "MASTER_PORT")}
        e.update(HF_HUB_OFFLINE="1", MPLBACKEND="Agg", MPLCONFIGDIR=str(self.dir / "mpl"), TOME_NB_CACHE=str(self.dir / "cache"),
                 PYTHONDONTWRITEBYTECODE="1", TQDM_DISABLE="1")
        if self.assets is not None: e["TOME_NB_ASSETS"] = str(self.assets)
        for k, v in (extra or {}).items():
            if v is None: e.pop(k, None)
            else: e[k] = v
        return e

    def probe(self) -> None:
        "tome_nb's version, and whether this machine has CUDA and transformers (one subprocess)."
        code = ("import importlib.util, torch, tome_nb; print(tome_nb.__version__, torch.cuda.is_available(), "
                "importlib.util.find_spec('transformers') is not None)")
        p = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=self.env(), timeout=300)
        if p.returncode != 0: sys.exit(f"bad_input_sweep: cannot import tome_nb:\n{p.stderr.strip()}")
        v, cuda, hf = p.stdout.split()[-3:]
        self.version, self.cuda, self.hf = v, cuda == "True", hf == "True"

    def shared(self, name: str) -> Path:
        "A fixture built once per session: see `SHARED`."
        if name not in self.built:
            t0 = time.time()
            self.built[name] = SHARED[name](self)
            print(f"  (built shared fixture {name} in {time.time() - t0:.1f} s)", flush=True)
        return self.built[name]

    def close(self) -> None:
        if self.keep: print(f"kept: {self.dir}")
        else: shutil.rmtree(self.dir, ignore_errors=True)

S: Session = None  # set in main()

# ---------------------------------------------------------------------------------------------------------------
# Files a careless user has lying around.

TEXT = b"shopping list: milk, eggs\n"

def image_bytes(i: int = 0, mode: str = "RGB", size=(64, 48), fmt: str = "JPEG") -> bytes:
    "A small synthetic photo-like image (smooth colours, so it compresses like one), as file bytes."
    import numpy as np
    from PIL import Image
    rng = np.random.default_rng(i)
    h, w = size[1], size[0]
    yy, xx = np.mgrid[0:h, 0:w]
    base = np.stack([(xx * (3 + i) + yy * 2) % 256, (yy * (5 + i)) % 256, (xx + yy + 40 * i) % 256], -1)
    arr = np.clip(base + rng.normal(0, 8, base.shape), 0, 255).astype("uint8")
    img = Image.fromarray(arr, "RGB")
    if mode != "RGB": img = img.convert(mode)
    buf = io.BytesIO(); img.save(buf, fmt)
    return buf.getvalue()

def cut_jpeg() -> bytes:
    "A JPEG whose header is intact but whose data stops half-way (a download that was cut off)."
    b = image_bytes(7, size=(160, 160))
    return b[: len(b) // 3]

def write_folder(t: Path, name: str, files, labels_text: Optional[str] = None, images_dir: bool = True) -> Path:
    "A labelled folder t/name: images/ + labels.txt from (file name, bytes, label) triples."
    f = t / name
    img_dir = f / "images" if images_dir else f
    img_dir.mkdir(parents=True, exist_ok=True)
    for fname, data, _ in files: (img_dir / fname).write_bytes(data() if callable(data) else data)
    (f / "labels.txt").write_text(labels_text if labels_text is not None else "".join(f"{n} {y}\n" for n, _, y in files))
    return f

def good_files(n: int = 4):
    return [(f"img_{i}.JPEG", (lambda i=i: image_bytes(i)), i) for i in range(n)]

def fx_data(name: str = "data", n: int = 4, extra=(), labels_text: Optional[str] = None, images_dir: bool = True):
    "A setup step: a labelled folder of `n` good images plus `extra` (file name, bytes, label) triples."
    return lambda t: write_folder(t, name, good_files(n) + list(extra), labels_text, images_dir)

def fx_file(name: str, data=b""):
    "A setup step: a file (bytes, or a callable giving them)."
    def f(t: Path):
        p = t / name; p.parent.mkdir(parents=True, exist_ok=True)
        p.write_bytes(data() if callable(data) else data)
    return f

def fx_dir(name: str, files: Sequence[str] = ()):
    def f(t: Path):
        (t / name).mkdir(parents=True, exist_ok=True)
        for n in files: (t / name / n).write_text("x\n")
    return f

def fx_copy(shared: str, dst: str):
    "A setup step: a copy of a shared fixture (file or folder)."
    def f(t: Path):
        src = S.shared(shared)
        if src.is_dir(): shutil.copytree(src, t / dst)
        else: shutil.copy(src, t / dst)
    return f

def fx_asset_copy(rel: str, dst: str, nbytes: Optional[int] = None):
    "A setup step: a copy (or the first `nbytes`) of an assets file."
    def f(t: Path):
        data = (S.assets / rel).read_bytes()
        (t / dst).write_bytes(data[:nbytes] if nbytes else data)
    return f

def fx_class_folders(name: str = "cls", wnids: Sequence[str] = ("n01440764", "n01443537")):
    def f(t: Path):
        for i, w in enumerate(wnids):
            d = t / name / w; d.mkdir(parents=True)
            for k in range(2): (d / f"{w}_{k}.JPEG").write_bytes(image_bytes(10 * i + k))
    return f

def fx_newest_ckpt(action: str, run: str = "run"):
    "A setup step on a copied run: damage its newest checkpoint ('cut', 'empty') or put another run's after it ('other')."
    def f(t: Path):
        ck = sorted((t / run / "checkpoints").glob("step_*.safetensors"))[-1]
        if action == "cut": ck.write_bytes(ck.read_bytes()[:1000])
        elif action == "empty": ck.write_bytes(b"")
        elif action == "other":
            other = sorted((S.shared("run_r3") / "checkpoints").glob("step_*.safetensors"))[-1]
            shutil.copy(other, t / run / "checkpoints" / "step_0000009.safetensors")
    return f

def fx_train_run(out: str = "run", r: str = "2"):
    "A setup step: a finished one-epoch run of test_vit in the case's folder (on its data/), as `train()` would start it."
    def f(t: Path):
        argv = train(r=r, out=out)
        p = subprocess.run(S.cli + argv, capture_output=True, text=True, env=S.env(), timeout=300, cwd=t)
        if p.returncode: raise RuntimeError(f"training the fixture run failed: {last_line(p.stderr)}")
    return f

def fx_unwritable(name: str = "ro"):
    "A setup step: a folder nobody may write in (for root, who ignores permissions, the case uses /sys instead)."
    def f(t: Path):
        (t / name).mkdir()
        os.chmod(t / name, 0o500)
    return f

UNWRITABLE = "/sys" if ROOT_USER else "ro"     # root may write anywhere chmod allows; /sys refuses new files even to root

# Fixtures shared by many cases, built once (by subprocesses: the sweep itself imports neither torch nor tome_nb).

def _build_torch_files(s: Session) -> Path:
    d = s.dir / "torch_files"; d.mkdir()
    code = textwrap.dedent(f"""
        import torch, timm
        from safetensors.torch import save_file
        torch.manual_seed(0)
        sd = timm.create_model("test_vit").state_dict()
        torch.save(sd, {str(d / 'testvit.pth')!r})
        save_file({{k: torch.full_like(v, float("nan")) if v.is_floating_point() else v for k, v in sd.items()}}, {str(d / 'testvit_nan.safetensors')!r})
        torch.save([1, 2, 3], {str(d / 'list.pth')!r})
        torch.save({{"a": 1, "b": "two"}}, {str(d / 'junk_dict.pth')!r})
    """)
    p = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=s.env(), timeout=300)
    if p.returncode: raise RuntimeError(f"building the torch fixtures failed:\n{p.stderr}")
    return d

def _build_run(s: Session, r: str) -> Path:
    data = s.dir / "run_data"
    if not data.exists(): write_folder(s.dir, "run_data", good_files(4))
    out = s.dir / f"run_r{r}"
    argv = ["train", "--model", "test_vit", "--random-weights", "--r", r, "--data", str(data), "--batch-size", "2",
            "--device", "cpu", "--workers", "0", "--no-progress", "--out", str(out)]
    p = subprocess.run(S.cli + argv, capture_output=True, text=True, env=s.env(), timeout=300, cwd=s.dir)
    if p.returncode: raise RuntimeError(f"building run r={r} failed:\n{p.stderr}")
    return out

SHARED: Dict[str, Callable[[Session], Path]] = {
    "torch_files": _build_torch_files,
    "testvit.pth": lambda s: s.shared("torch_files") / "testvit.pth",
    "testvit_nan.safetensors": lambda s: s.shared("torch_files") / "testvit_nan.safetensors",
    "list.pth": lambda s: s.shared("torch_files") / "list.pth",
    "junk_dict.pth": lambda s: s.shared("torch_files") / "junk_dict.pth",
    "run_r2": lambda s: _build_run(s, "2"),
    "run_r3": lambda s: _build_run(s, "3"),
    "run_r2_weights": lambda s: s.shared("run_r2") / "model.safetensors",
    "run_r2_ckpt": lambda s: sorted((s.shared("run_r2") / "checkpoints").glob("step_*.safetensors"))[-1],
}

DEIT = "weights/deit_tiny_patch16_224.safetensors"

# ---------------------------------------------------------------------------------------------------------------
# Cases.

@dataclass
class Case:
    id: str
    area: str
    description: str
    argv: Optional[List[str]] = None                # tome_nb's arguments (paths relative to the case's folder)
    code: Optional[str] = None                      # a library snippet, run by `python -c` (see LIB_HELPERS)
    expect: str = "refuse"                          # refuse | run
    names: Sequence[str] = ()                       # a refusal's message must contain one of these (case-insensitive)
    setup: Sequence[Callable[[Path], None]] = ()    # steps that make the case's files
    post: Optional[Callable[[Path, str, str], Optional[str]]] = None   # after a run: None, or what is wrong
    clean: bool = True                              # a refusal must leave the folder as it was
    quick: bool = False                             # part of --quick
    needs: Sequence[str] = ()                       # assets | no-cuda | hf
    env: Optional[dict] = None                      # environment changes (None value: unset)
    timeout: int = TIMEOUT

CASES: List[Case] = []

def case(id, area, description, **kw) -> None:
    assert id not in {c.id for c in CASES}, id
    assert kw.get("expect", "refuse") in ("refuse", "run"), id
    CASES.append(Case(id, area, description, **kw))

_NEG_NUM = re.compile(r"^-\d+$|^-\d*\.\d+$")        # what argparse takes as a negative number, not an option

def opts(defaults: dict, over: dict) -> List[str]:
    "Command-line options from defaults updated by `over` (True: a flag; None/False: left out; a list: several values)."
    d = dict(defaults); d.update(over)
    argv: List[str] = []
    for k, v in d.items():
        if v is None or v is False: continue
        flag = "--" + k.rstrip("_").replace("_", "-")
        if v is True: argv.append(flag)
        elif isinstance(v, (list, tuple)): argv += [flag, *map(str, v)]
        else:
            v = str(v)
            argv += [f"{flag}={v}"] if v.startswith("-") and not _NEG_NUM.match(v) else [flag, v]
    return argv

BENCH = dict(model="test_vit", random_weights=True, device="cpu", r=["0", "4"], batch_size=2, runs=1, min_time=0.01,
             no_progress=True, csv="out.csv")
EVAL = dict(model="test_vit", random_weights=True, r=["0", "2"], data="data", batch_size=2, device="cpu", no_progress=True)
TRAIN = dict(model="test_vit", random_weights=True, r="2", data="data", batch_size=2, device="cpu", workers=0,
             no_progress=True, out="run")
COMPARE = dict(throughput_only=True, data="data", limit=2, batch_size=2, runs=1, no_progress=True, csv="cmp.csv")

def bench(**o): return ["bench"] + opts(BENCH, o)
def evalc(**o): return ["eval"] + opts(EVAL, o)
def train(**o): return ["train"] + opts(TRAIN, o)
def compare(**o): return ["compare"] + opts(COMPARE, o)

DATA = fx_data()

def csv_check(path: str, **want):
    "A post check: the CSV at `path` exists, and its first row has these values."
    def post(t: Path, out: str, err: str) -> Optional[str]:
        p = t / path
        if not p.is_file(): return f"{path} was not written"
        rows = list(csv.DictReader(p.open()))
        if not rows: return f"{path} has no rows"
        for k, v in want.items():
            if str(rows[0].get(k)) != str(v): return f"{path}: {k} = {rows[0].get(k)!r}, expected {v!r}"
        return None
    return post

def exists_check(*paths: str, absent: Sequence[str] = ()):
    def post(t: Path, out: str, err: str) -> Optional[str]:
        for p in paths:
            if not (t / p).exists(): return f"{p} was not written"
        for p in absent:
            if (t / p).exists(): return f"{p} should not exist"
        return None
    return post

def output_check(text: str, where: str = "out"):
    def post(t: Path, out: str, err: str) -> Optional[str]:
        return None if text in (out if where == "out" else err) else f"{text!r} not in std{where}"
    return post

# --- the command itself ------------------------------------------------------------------------------------------

case("cli-no-args", "cli", "no subcommand: prints the help", argv=[], expect="run")
case("cli-version", "cli", "--version", argv=["--version"], expect="run")
case("cli-help", "cli", "--help", argv=["--help"], expect="run")
case("cli-unknown-cmd", "cli", "a subcommand that does not exist", argv=["frobnicate"], names=["frobnicate"], quick=True)
case("cli-upper-cmd", "cli", "subcommand in capitals", argv=["BENCH"], names=["BENCH"])
case("cli-unknown-opt", "cli", "an option that does not exist", argv=["bench", "--bogus"], names=["--bogus"])
case("cli-stray-arg", "cli", "a stray positional argument", argv=["bench", "deit_tiny_patch16_224"], names=["deit_tiny_patch16_224"])
case("cli-bench-r-novalue", "cli", "bench --r with no value", argv=["bench", "--r"], names=["--r"])
case("cli-eval-r-novalue", "cli", "eval --r with no value", argv=["eval", "--r"], names=["--r"])
case("cli-train-no-out", "cli", "train without the required --out", argv=["train", "--model", "test_vit"], names=["--out"])

# --- bench: the model ---------------------------------------------------------------------------------------------

case("bench-valid", "bench", "smallest valid run (test_vit, random weights, 1 round)", argv=bench(), expect="run",
     post=csv_check("out.csv", model="test_vit"), quick=True)
case("bench-model-unknown", "bench", "unknown model name", argv=bench(model="vit_nonexistent"), names=["vit_nonexistent"], quick=True)
case("bench-model-empty", "bench", "empty model name", argv=bench(model=""), names=["model"])
case("bench-model-cnn", "bench", "a CNN (resnet18): not a ViT", argv=bench(model="resnet18"), names=["resnet18"])
case("bench-model-relpos", "bench", "a timm ViT variant the patch does not support (relative positions)",
     argv=bench(model="test_vit_relpos"), names=["test_vit_relpos", "VisionTransformer"])
case("bench-model-hf-empty", "bench", "hf: with no name", argv=bench(model="hf:", random_weights=False), names=["hf:"])
case("bench-model-tv-empty", "bench", "tv: with no name", argv=bench(model="tv:", random_weights=False), names=["tv:"])
case("bench-model-hf-bert", "bench", "hf: a transformers class that is not a vision model", argv=bench(model="hf:BertModel", random_weights=False),
     names=["BertModel"], needs=["hf"])
case("bench-model-hf-unknown", "bench", "hf: an unknown name", argv=bench(model="hf:no_such_model", random_weights=False),
     names=["no_such_model"], needs=["hf"])
case("bench-model-bad-prefix", "bench", "an unknown library prefix", argv=bench(model="xx:deit_tiny_patch16_224"), names=["xx:"])
case("bench-tv-train", "bench", "--train with a torchvision model", argv=bench(model="tv:vit_b_16", random_weights=False, train=True),
     names=["--train"])
case("bench-tv-r-big", "bench", "--r larger than a torchvision model can merge", argv=bench(model="tv:vit_b_16", random_weights=False, r=["200"]),
     names=["--r", "200"])
case("bench-hf-builder-data", "bench", "--data with a randomly initialised transformers class",
     argv=bench(model="hf:Dinov2Model", random_weights=False, data="data"), setup=[DATA], names=["--data"], needs=["hf"])
case("bench-hf-deit3", "bench", "hf: conversion of a model the transformers patch cannot take (DeiT-3, layer scale)",
     argv=bench(model="hf:deit3_small_patch16_224"), names=["deit3"], needs=["hf"])

# --- bench: r ----------------------------------------------------------------------------------------------------

for cid, desc, r, quick in [("neg", "negative r", ["-1"], True), ("neg-mixed", "a negative among valid values", ["0", "8", "-3"], False),
                            ("abc", "non-numeric r", ["abc"], False), ("float", "fractional r", ["1.5"], False),
                            ("exp", "r in exponent notation (1e9)", ["1e9"], False),
                            ("comma", "a per-block list with a fraction (13,-0.5): not a schedule", ["13,-0.5"], False),
                            ("paren", "Python's tuple syntax (13,-0.5): the text form is 13:-0.5", ["(13,-0.5)"], False),
                            ("colon-big", "R:INFLECT with inflect outside [-1, 1] (13:2)", ["13:2"], False),
                            ("colon3", "three colon fields (13:0.5:1)", ["13:0.5:1"], False),
                            ("list-neg", "a negative value in a per-block list (4,-1)", ["4,-1"], False),
                            ("list-long", "a per-block list longer than test_vit's 6 blocks", ["1,1,1,1,1,1,1"], False),
                            ("list-over-max", "a per-block list with a value test_vit cannot merge (4,51)", ["4,51"], False),
                            ("empty", "empty r", [""], False), ("nan", "r = nan", ["nan"], False), ("huge", "r = 99999", ["99999"], False),
                            ("over-max", "r = 51, one more than test_vit can merge (50)", ["51"], False)]:
    case(f"bench-r-{cid}", "bench", desc, argv=bench(r=r), names=["--r"], quick=quick)
case("bench-r-at-max", "bench", "r = 50, the most test_vit can merge", argv=bench(r=["50"]), expect="run")

def csv_has(path: str, column: str, *values: str):
    "A post check: the CSV at `path` has a row with each of these values in `column`."
    def post(t: Path, out: str, err: str) -> Optional[str]:
        p = t / path
        if not p.is_file(): return f"{path} was not written"
        got = [row.get(column) for row in csv.DictReader(p.open())]
        missing = [v for v in values if v not in got]
        return f"{path}: no row with {column} = {missing[0]!r} (got {sorted(set(got))})" if missing else None
    return post
case("bench-r-colon", "bench", "R:INFLECT schedule 13:-0.5 (the same text forms as train and eval)", argv=bench(r=["0", "13:-0.5"]),
     expect="run", post=csv_has("out.csv", "r", "0", "13:-0.5"))
case("bench-r-per-block", "bench", "a per-block schedule 4,4,2 (the rest 0)", argv=bench(r=["4,4,2"]), expect="run",
     post=csv_has("out.csv", "r", "4,4,2"))

# --- bench: counts and numbers ----------------------------------------------------------------------------------

for cid, o, names in [("bs-0", dict(batch_size=0), ["--batch-size"]), ("bs-neg", dict(batch_size=-4), ["--batch-size"]),
                      ("bs-abc", dict(batch_size="abc"), ["--batch-size"]), ("bs-float", dict(batch_size=2.5), ["--batch-size"]),
                      ("bs-huge", dict(batch_size=10**9), ["--batch-size", "memory"]),
                      ("runs-0", dict(runs=0), ["--runs"]), ("runs-neg", dict(runs=-2), ["--runs"]),
                      ("mintime-0", dict(min_time=0), ["--min-time"]), ("mintime-neg", dict(min_time=-1), ["--min-time"]),
                      ("mintime-nan", dict(min_time="nan"), ["--min-time"]), ("mintime-inf", dict(min_time="inf"), ["--min-time"]),
                      ("mintime-abc", dict(min_time="abc"), ["--min-time"]),
                      ("device-tpu", dict(device="tpu"), ["--device"]), ("device-empty", dict(device=""), ["--device"]),
                      ("dtype-bogus", dict(dtype="bogus"), ["--dtype"]), ("dtype-f16-cpu", dict(dtype="float16"), ["float16"])]:
    k, v = next(iter(o.items()))
    case(f"bench-{cid}", "bench", f"--{k.replace('_', '-')} {v!r}", argv=bench(**o), names=names)
case("bench-device-cuda", "bench", "--device cuda on a machine without a GPU", argv=bench(device="cuda"), names=["cuda"], needs=["no-cuda"])
case("bench-dtype-bf16-cpu", "bench", "--dtype bfloat16 on CPU (documented as allowed)", argv=bench(dtype="bfloat16"), expect="run")
case("bench-train-mode", "bench", "--train --explicit (valid)", argv=bench(train=True, explicit=True), expect="run")

# --- bench: weights ----------------------------------------------------------------------------------------------

NOW = dict(random_weights=False)
for cid, desc, setup, w, names, quick in [
        ("missing", "a weights file that does not exist", [], "nope.safetensors", ["nope.safetensors"], False),
        ("dir", "a folder given as the weights file", [fx_dir("w.safetensors")], "w.safetensors", ["w.safetensors"], False),
        ("zero", "a zero-byte .safetensors", [fx_file("w.safetensors")], "w.safetensors", ["w.safetensors"], False),
        ("text", "a text file named .safetensors", [fx_file("w.safetensors", TEXT)], "w.safetensors", ["w.safetensors"], False),
        ("garbage-pth", "a garbage .pth", [fx_file("w.pth", b"junk")], "w.pth", ["w.pth"], False),
        ("list-pth", "a .pth that holds a list", [fx_copy("list.pth", "w.pth")], "w.pth", ["w.pth"], False),
        ("dict-pth", "a .pth that holds a dict of non-tensors", [fx_copy("junk_dict.pth", "w.pth")], "w.pth", ["w.pth"], False)]:
    case(f"bench-weights-{cid}", "bench", desc, argv=bench(weights=w, **NOW), setup=setup, names=names, quick=quick)
case("bench-weights-trunc", "bench", "a truncated .safetensors (first 5,000 bytes of DeiT-Tiny)",
     argv=bench(model="deit_tiny_patch16_224", weights="w.safetensors", **NOW), setup=[fx_asset_copy(DEIT, "w.safetensors", 5000)],
     names=["w.safetensors"], needs=["assets"], quick=True)
case("bench-weights-other-arch", "bench", "DeiT-Tiny weights for --model test_vit", argv=bench(weights=f"{{a}}/{DEIT}", **NOW),
     names=["deit_tiny_patch16_224.safetensors", "do not fit"], needs=["assets"])
case("bench-weights-and-random", "bench", "--weights and --random-weights together (which weights?)",
     argv=bench(weights="w.pth", random_weights=True), setup=[fx_copy("testvit.pth", "w.pth")], names=["--weights", "--random-weights"])
case("bench-weights-valid-pth", "bench", "a valid test_vit state dict as .pth", argv=bench(weights="w.pth", **NOW),
     setup=[fx_copy("testvit.pth", "w.pth")], expect="run")
case("bench-no-assets-random", "bench", "no assets and no download: runs on random weights and says so (documented)",
     argv=bench(**NOW), env={"TOME_NB_ASSETS": "/nonexistent/assets"}, expect="run",
     post=lambda t, o, e: None if "random" in o.splitlines()[0] else f"first line does not say random: {o.splitlines()[0]!r}")
case("bench-no-assets-data", "bench", "no real weights but --data: top-1 needs real weights (documented refusal)",
     argv=bench(data="data", **NOW), setup=[DATA], env={"TOME_NB_ASSETS": "/nonexistent/assets"}, names=["weights"])

# --- bench: --data -----------------------------------------------------------------------------------------------

def bdata(**o): return bench(data="data", **o)
for cid, desc, setup, names, quick, clean in [
        ("missing", "--data folder that does not exist", [], ["--data"], False, True),
        ("file", "--data is a file", [fx_file("data", TEXT)], ["--data"], False, True),
        ("empty", "--data is an empty folder", [fx_dir("data")], ["--data"], False, True),
        ("no-images", "labels.txt lists images that are not there", [fx_file("data/labels.txt", b"a.JPEG 1\nb.JPEG 2\n")],
         ["a.JPEG", "missing"], False, True),
        ("bad-line", "a labels.txt line without a label", [fx_data(labels_text="img_0.JPEG\n")], ["labels.txt"], False, True),
        ("label-text", "a non-numeric label", [fx_data(labels_text="img_0.JPEG cat\n")], ["labels.txt"], False, True),
        ("label-3cols", "a labels.txt line with three columns", [fx_data(labels_text="img_0.JPEG 1 2\n")], ["labels.txt"], False, True),
        ("label-oor", "a label outside the model's 1,000 classes", [fx_data(extra=[("far.JPEG", image_bytes, 5000)])], ["outside", "5000"], False, True),
        ("label-neg", "a negative label", [fx_data(extra=[("neg.JPEG", image_bytes, -1)])], ["outside", "-1"], False, True),
        ("text-jpeg", "a text file named .JPEG among good images", [fx_data(extra=[("notes.JPEG", TEXT, 1)])], ["notes.JPEG"], True, True),
        ("zero-byte", "a zero-byte .JPEG", [fx_data(extra=[("empty.JPEG", b"", 1)])], ["empty.JPEG"], False, True),
        ("truncated", "a JPEG cut off half-way (header intact)", [fx_data(extra=[("cut.JPEG", cut_jpeg, 1)])], ["cut.JPEG"], False, True),
        ("all-bad", "only unreadable files", [fx_data(n=0, extra=[("a.JPEG", TEXT, 1), ("b.JPEG", b"", 2)])], ["--data", "a.JPEG"], False, True),
        ("all-bad-skip", "only unreadable files, with --skip-bad-images", [fx_data(n=0, extra=[("a.JPEG", TEXT, 1), ("b.JPEG", b"", 2)])],
         ["--data", "decode"], False, True),
        ("class-unknown", "sub-folders that are not ImageNet WordNet ids", [fx_class_folders(name="data", wnids=("cats", "dogs"))],
         ["cats", "WordNet"], False, True),
        ("no-labels", "images/ but no labels.txt", [fx_data(), lambda t: (t / "data" / "labels.txt").unlink()], ["labels.txt"], False, True)]:
    o = dict(skip_bad_images=True) if cid.endswith("-skip") else {}
    case(f"bench-data-{cid}", "bench", desc, argv=bdata(**o), setup=setup, names=names, quick=quick, clean=clean)
case("bench-data-limit-0", "bench", "--limit 0", argv=bdata(limit=0), setup=[DATA], names=["--limit"])
case("bench-data-limit-neg", "bench", "--limit -2", argv=bdata(limit=-2), setup=[DATA], names=["--limit"])
case("bench-data-valid", "bench", "--data with 4 good images", argv=bdata(), setup=[DATA], expect="run", post=csv_check("out.csv", images=4))
case("bench-data-limit-big", "bench", "--limit larger than the folder (uses all 4)", argv=bdata(limit=1000), setup=[DATA], expect="run",
     post=csv_check("out.csv", images=4))
case("bench-data-skip-one", "bench", "one text file among 4 images, --skip-bad-images: left out, named", argv=bdata(skip_bad_images=True),
     setup=[fx_data(extra=[("notes.JPEG", TEXT, 1)])], expect="run", post=csv_check("out.csv", images=4))
case("bench-data-class-folders", "bench", "ImageNet class-folder layout", argv=bench(data="cls"), setup=[fx_class_folders()], expect="run",
     post=csv_check("out.csv", images=4))
case("bench-data-odd-images", "bench", "grayscale, CMYK, RGBA PNG, 1x1 and PNG-named-.JPEG images (all valid)", argv=bdata(),
     setup=[fx_data(n=1, extra=[("gray.JPEG", lambda: image_bytes(1, "L"), 1), ("cmyk.JPEG", lambda: image_bytes(2, "CMYK"), 2),
                                ("rgba.png", lambda: image_bytes(3, "RGBA", fmt="PNG"), 3), ("dot.JPEG", lambda: image_bytes(4, size=(1, 1)), 4),
                                ("png.JPEG", lambda: image_bytes(5, fmt="PNG"), 5)])], expect="run", post=csv_check("out.csv", images=6))
case("bench-data-crlf", "bench", "labels.txt with Windows line endings", argv=bdata(), expect="run", post=csv_check("out.csv", images=2),
     setup=[fx_data(n=2, labels_text="img_0.JPEG 0\r\nimg_1.JPEG 1\r\n")])
case("bench-data-bom", "bench", "labels.txt saved with a UTF-8 byte-order mark (Notepad)", argv=bdata(), expect="run",
     post=csv_check("out.csv", images=2), setup=[fx_data(n=2, labels_text="\ufeffimg_0.JPEG 0\nimg_1.JPEG 1\n")])
case("bench-data-blank-lines", "bench", "labels.txt with blank lines", argv=bdata(), expect="run", post=csv_check("out.csv", images=2),
     setup=[fx_data(n=2, labels_text="\nimg_0.JPEG 0\n\n\nimg_1.JPEG 1\n\n")])

# --- bench: output files -----------------------------------------------------------------------------------------

PRECIOUS = b"precious results\n"
case("bench-csv-exists", "bench", "--csv names an existing file", argv=bench(), setup=[fx_file("out.csv", PRECIOUS)],
     names=["--csv", "out.csv"], quick=True)
case("bench-plot-exists", "bench", "the default plot path (out.png) exists", argv=bench(), setup=[fx_file("out.png", PRECIOUS)],
     names=["--plot", "out.png"])
case("bench-csv-overwrite", "bench", "existing --csv with --overwrite: replaced", argv=bench(overwrite=True), setup=[fx_file("out.csv", PRECIOUS)],
     expect="run", post=csv_check("out.csv", model="test_vit"))
case("bench-csv-nodir", "bench", "--csv in a folder that does not exist", argv=bench(csv="nodir/out.csv"), names=["--csv", "nodir"])
case("bench-csv-isdir", "bench", "--csv is a folder", argv=bench(csv="somedir"), setup=[fx_dir("somedir")], names=["--csv", "somedir"])
case("bench-csv-unwritable", "bench", "--csv in a folder that cannot be written", argv=bench(csv=f"{UNWRITABLE}/tome_nb_sweep.csv"),
     setup=[] if ROOT_USER else [fx_unwritable()], names=["--csv", UNWRITABLE, "permission", "not permitted"])
case("bench-csv-empty", "bench", "--csv '' (an empty path)", argv=bench(csv=""), names=["--csv"])
case("bench-plot-nodir", "bench", "--plot in a folder that does not exist", argv=bench(plot="nodir/p.png"), names=["--plot", "nodir"])
case("bench-plot-bad-ext", "bench", "--plot with a format matplotlib cannot write (.xyz)", argv=bench(plot="p.xyz"), names=["--plot", "xyz"])
case("bench-csv-equals-plot", "bench", "--csv and --plot the same file: the plot would overwrite the CSV", argv=bench(plot="out.csv"),
     names=["--plot", "--csv"])
case("bench-csv-png", "bench", "--csv out.png with the default plot path (the CSV path with .png): the same file", argv=bench(csv="out.png"),
     names=["--plot", "--csv", "out.png"])

# --- compare -----------------------------------------------------------------------------------------------------

case("compare-valid", "compare", "smallest valid run (--throughput-only, DeiT-Tiny, 2 images)", argv=compare(), setup=[DATA],
     expect="run", needs=["assets"], post=exists_check("cmp.csv"), timeout=300)
for cid, o, names, setup in [("model-unknown", dict(model="nope_vit"), ["nope_vit"], []),
                             ("model-cnn", dict(model="resnet18"), ["resnet18"], [DATA]),
                             ("model-noweights", dict(model="test_vit"), ["test_vit"], [DATA]),
                             ("data-missing", dict(data="nope"), ["--data", "nope"], []),
                             ("data-file", dict(data="f.txt"), ["--data", "f.txt"], [fx_file("f.txt", TEXT)]),
                             ("limit-0", dict(limit=0), ["--limit"], [DATA]), ("epochs-0", dict(epochs=0), ["--epochs"], [DATA]),
                             ("epochs-neg", dict(epochs=-1), ["--epochs"], [DATA]), ("runs-0", dict(runs=0), ["--runs"], [DATA]),
                             ("bs-0", dict(batch_size=0), ["--batch-size"], [DATA]),
                             ("csv-nodir", dict(csv="nodir/c.csv"), ["--csv"], [DATA]),
                             ("csv-exists", dict(), ["--csv", "cmp.csv"], [DATA, fx_file("cmp.csv", PRECIOUS)]),
                             ("dtype-f16-cpu", dict(dtype="float16", device="cpu"), ["float16"], [DATA]),
                             ("recipe-bogus", dict(recipe="bogus"), ["--recipe"], [DATA]),
                             ("label-oor", dict(), ["outside", "5000"], [fx_data(extra=[("far.JPEG", image_bytes, 5000)])]),
                             ("text-jpeg", dict(), ["a_notes.JPEG"], [fx_data(extra=[("a_notes.JPEG", TEXT, 1)])])]:
    case(f"compare-{cid}", "compare", f"compare: {cid.replace('-', ' ')}", argv=compare(**o), setup=setup, names=names, needs=["assets"],
         timeout=300)
case("compare-device-cuda", "compare", "--device cuda without a GPU", argv=compare(device="cuda"), setup=[DATA], names=["cuda"],
     needs=["no-cuda"])

# --- eval --------------------------------------------------------------------------------------------------------

case("eval-valid", "eval", "smallest valid run (test_vit, random weights, 4 images)", argv=evalc(), setup=[DATA], expect="run",
     post=output_check("on 4 images"), quick=True)
for cid, r, quick in [("abc", "abc", False), ("comma-float", "13,-0.5", True), ("paren", "(13,-0.5)", False), ("exp", "1e9", False),
                      ("neg", "-1", False), ("nan", "nan", False), ("inf", "inf", False), ("colon-empty", "13:", False),
                      ("colon3", "13:0.5:1", False), ("inflect-big", "13:2", False), ("inflect-nan", "13:nan", False),
                      ("too-long", "1,1,1,1,1,1,1", False), ("trailing-comma", "2,", False), ("huge", "99999", False), ("empty", "", False),
                      ("hex", "0x10", False), ("neg-in-list", "4,-1", False), ("float", "2.5", False), ("over-max", "51", False)]:
    case(f"eval-r-{cid}", "eval", f"--r {r!r}", argv=evalc(r=["0", r]), setup=[DATA], names=["--r", "inflect", "r has", "r[", "r must"] + ([r] if r else []), quick=quick)
for cid, r in [("spaces", " 2 "), ("inflect", "2:-0.5"), ("per-block", "4,4,2")]:
    case(f"eval-r-{cid}", "eval", f"--r {r!r} (valid)", argv=evalc(r=["0", r]), setup=[DATA], expect="run")
for cid, o, names in [("bs-0", dict(batch_size=0), ["--batch-size"]), ("bs-neg", dict(batch_size=-3), ["--batch-size"]),
                      ("limit-0", dict(limit=0), ["--limit"]), ("nproc-0", dict(nproc=0), ["--nproc"]), ("nproc-neg", dict(nproc=-1), ["--nproc"]),
                      ("nproc-too-many", dict(nproc=5), ["processes", "--nproc"]), ("model-unknown", dict(model="vit_nonexistent"), ["vit_nonexistent"]),
                      ("model-empty", dict(model=""), ["--model"]), ("device-bogus", dict(device="quantum"), ["--device"]),
                      ("csv-nodir", dict(csv="nodir/e.csv"), ["--csv", "nodir"]), ("csv-isdir", dict(csv="data"), ["--csv"]),
                      ("csv-empty", dict(csv=""), ["--csv"])]:
    case(f"eval-{cid}", "eval", f"eval: {cid.replace('-', ' ')} ({list(o.values())[0]!r})", argv=evalc(**o), setup=[DATA], names=names)
case("eval-device-cuda", "eval", "--device cuda without a GPU", argv=evalc(device="cuda"), setup=[DATA], names=["cuda"], needs=["no-cuda"])
case("eval-csv-exists", "eval", "--csv names an existing file", argv=evalc(csv="e.csv"), setup=[DATA, fx_file("e.csv", PRECIOUS)],
     names=["--csv", "e.csv"])
case("eval-csv-overwrite", "eval", "existing --csv with --overwrite", argv=evalc(csv="e.csv", overwrite=True),
     setup=[DATA, fx_file("e.csv", PRECIOUS)], expect="run", post=csv_check("e.csv", images=4))
case("eval-limit-big", "eval", "--limit larger than the folder", argv=evalc(limit=1000), setup=[DATA], expect="run", post=output_check("on 4 images"))
case("eval-nproc-2", "eval", "--nproc 2 (valid, DDP on CPU)", argv=evalc(nproc=2), setup=[DATA], expect="run", post=output_check("on 4 images"))
case("eval-default-data", "eval", "no --data: the assets' validation images (--limit 2)", argv=evalc(data=None, limit=2), expect="run",
     needs=["assets"], post=output_check("on 2 images"))
case("eval-assets-env-missing", "eval", "no --data and TOME_NB_ASSETS names a missing folder", argv=evalc(data=None),
     env={"TOME_NB_ASSETS": "/nonexistent/assets"}, names=["TOME_NB_ASSETS"])
case("eval-assets-env-file", "eval", "no --data and TOME_NB_ASSETS names a file", argv=evalc(data=None), setup=[fx_file("assets.txt", TEXT)],
     env={"TOME_NB_ASSETS": "assets.txt"}, names=["TOME_NB_ASSETS"])

# eval: weights
EW = dict(random_weights=False)
for cid, desc, setup, w, o, names, needs in [
        ("missing", "a weights file that does not exist", [], "nope.safetensors", {}, ["nope.safetensors"], []),
        ("dir", "a folder as the weights file", [fx_dir("w.safetensors")], "w.safetensors", {}, ["w.safetensors"], []),
        ("zero", "a zero-byte .safetensors", [fx_file("w.safetensors")], "w.safetensors", {}, ["w.safetensors"], []),
        ("garbage-pth", "a garbage .pth", [fx_file("w.pth", b"\x80junk")], "w.pth", {}, ["w.pth"], []),
        ("trunc", "a truncated .safetensors", [fx_asset_copy(DEIT, "w.safetensors", 5000)], "w.safetensors",
         dict(model="deit_tiny_patch16_224"), ["w.safetensors"], ["assets"]),
        ("other-arch", "DeiT-Tiny weights for --model test_vit", [], f"{{a}}/{DEIT}", {}, ["deit_tiny_patch16_224.safetensors", "do not fit"], ["assets"]),
        ("run-wrong-model", "a run's model.safetensors (trained for test_vit) with --model deit_tiny_patch16_224",
         [fx_copy("run_r2_weights", "trained.safetensors")], "trained.safetensors", dict(model="deit_tiny_patch16_224"), ["test_vit"], []),
        ("checkpoint", "a training checkpoint (step_*.safetensors) instead of model.safetensors, with another --model",
         [fx_copy("run_r2_ckpt", "step_0000002.safetensors")], "step_0000002.safetensors", dict(model="test_vit2"),
         ["step_0000002.safetensors"], []),
        ("nan", "a weights file full of NaN: top-1 of a NaN model is no result", [fx_copy("testvit_nan.safetensors", "w.safetensors")],
         "w.safetensors", {}, ["w.safetensors", "nan"], [])]:
    case(f"eval-weights-{cid}", "eval", desc, argv=evalc(weights=w, **{**EW, **o}), setup=[DATA] + setup, names=names, needs=needs)
case("eval-weights-and-random", "eval", "--weights and --random-weights together", argv=evalc(weights="trained.safetensors"),
     setup=[DATA, fx_copy("run_r2_weights", "trained.safetensors")], names=["--weights", "--random-weights"])
case("eval-weights-run", "eval", "a run's model.safetensors; model and schedule read from it", argv=evalc(weights="trained.safetensors", model=None, r=None, **EW),
     setup=[DATA, fx_copy("run_r2_weights", "trained.safetensors")], expect="run", post=output_check("test_vit (trained.safetensors)"))

# eval: data
for cid, desc, setup, names, o in [
        ("missing", "--data folder that does not exist", [], ["--data", "data"], {}),
        ("file", "--data is a file", [fx_file("data", TEXT)], ["--data"], {}),
        ("empty", "--data is an empty folder", [fx_dir("data")], ["--data"], {}),
        ("label-oor", "a label outside 0..999", [fx_data(extra=[("far.JPEG", image_bytes, 5000)])], ["outside", "5000"], {}),
        ("label-neg", "a negative label", [fx_data(extra=[("neg.JPEG", image_bytes, -1)])], ["outside", "-1"], {}),
        ("text-jpeg", "a text file named .JPEG", [fx_data(extra=[("notes.JPEG", TEXT, 1)])], ["notes.JPEG"], {}),
        ("truncated", "a JPEG cut off half-way", [fx_data(extra=[("cut.JPEG", cut_jpeg, 1)])], ["cut.JPEG"], {}),
        ("all-bad-skip", "only unreadable files, --skip-bad-images", [fx_data(n=0, extra=[("a.JPEG", TEXT, 1), ("b.JPEG", b"", 2)])],
         ["--data", "decode", "no images"], dict(skip_bad_images=True)),
        ("label-oor-skip", "a label outside 0..999 with --skip-bad-images (skipping is for images, not labels)",
         [fx_data(extra=[("far.JPEG", image_bytes, 5000)])], ["outside", "5000"], dict(skip_bad_images=True))]:
    case(f"eval-data-{cid}", "eval", desc, argv=evalc(**o), setup=setup, names=names, quick=cid == "label-oor")
case("eval-data-skip-one", "eval", "one text file among 4 images, --skip-bad-images", argv=evalc(skip_bad_images=True),
     setup=[fx_data(extra=[("notes.JPEG", TEXT, 1)])], expect="run", post=output_check("on 4 images"))
case("eval-data-class-folders", "eval", "ImageNet class-folder layout", argv=evalc(data="cls"), setup=[fx_class_folders()], expect="run",
     post=output_check("on 4 images"))

# --- train -------------------------------------------------------------------------------------------------------

RUN = fx_train_run()
case("train-valid", "train", "smallest valid run (test_vit, 4 images, batch 2, 1 epoch)", argv=train(), setup=[DATA], expect="run",
     post=exists_check("run/model.safetensors", "run/run.json"), quick=True)
for cid, o, names in [("epochs-0", dict(epochs=0), ["--epochs"]), ("epochs-neg", dict(epochs=-1), ["--epochs"]),
                      ("bs-0", dict(batch_size=0), ["--batch-size"]), ("bs-gt-data", dict(batch_size=8), ["--batch-size", "batch"]),
                      ("bs-split", dict(batch_size=3, nproc=2), ["--batch-size"]), ("lr-0", dict(lr=0), ["--lr"]),
                      ("lr-neg", dict(lr=-1e-3), ["--lr"]), ("lr-nan", dict(lr="nan"), ["--lr"]), ("lr-inf", dict(lr="inf"), ["--lr"]),
                      ("lr-abc", dict(lr="abc"), ["--lr"]), ("min-lr-gt-lr", dict(min_lr=1), ["--min-lr"]),
                      ("min-lr-neg", dict(min_lr=-1e-6), ["--min-lr"]), ("warmup-neg", dict(warmup_steps=-1), ["--warmup-steps"]),
                      ("wd-neg", dict(weight_decay=-0.1), ["--weight-decay"]), ("wd-nan", dict(weight_decay="nan"), ["--weight-decay"]),
                      ("clip-neg", dict(clip_grad=-1), ["--clip-grad"]), ("alpha-2", dict(alpha=2), ["--alpha"]),
                      ("alpha-neg", dict(alpha=-0.1), ["--alpha"]), ("alpha-nan", dict(alpha="nan"), ["--alpha"]),
                      ("temp-0", dict(temperature=0), ["--temperature"]), ("temp-neg", dict(temperature=-1), ["--temperature"]),
                      ("temp-inf", dict(temperature="inf", teacher=True), ["--temperature"]),
                      ("drop-path-1", dict(drop_path=1), ["--drop-path"]), ("drop-path-neg", dict(drop_path=-0.1), ["--drop-path"]),
                      ("scale-min-0", dict(scale_min=0), ["--scale-min"]), ("scale-min-2", dict(scale_min=2), ["--scale-min"]),
                      ("color-jitter-neg", dict(color_jitter=-1), ["--color-jitter"]), ("reprob-2", dict(reprob=2), ["--reprob"]),
                      ("aa-bogus", dict(auto_augment="bogus"), ["--auto-augment", "bogus"]),
                      ("aa-bad-magnitude", dict(auto_augment="rand-mX"), ["--auto-augment", "rand-mX"]),
                      ("trainable-bogus", dict(trainable="bogus"), ["--trainable"]), ("dtype-f16", dict(dtype="float16"), ["--dtype"]),
                      ("keep-0", dict(keep=0), ["--keep"]), ("ckpt-every-neg", dict(ckpt_every=-1), ["--ckpt-every"]),
                      ("print-every-neg", dict(print_every=-1), ["--print-every"]), ("workers-neg", dict(workers=-1), ["--workers"]),
                      ("nproc-0", dict(nproc=0), ["--nproc"]), ("nproc-too-many", dict(nproc=8, batch_size=8), ["processes", "--nproc", "batch"]),
                      ("seed-abc", dict(seed="abc"), ["--seed"]), ("limit-0", dict(limit=0), ["--limit"]),
                      ("limit-1", dict(limit=1), ["--batch-size", "batch"]), ("r-abc", dict(r="abc"), ["--r"]),
                      ("r-neg", dict(r="-1"), ["--r", "-1"]), ("r-huge", dict(r="9999"), ["--r", "9999"]),
                      ("r-too-long", dict(r="1,1,1,1,1,1,1"), ["--r", "7 entries"]), ("r-inflect-big", dict(r="13:2"), ["--r", "inflect"]),
                      ("model-unknown", dict(model="vit_nonexistent"), ["vit_nonexistent"]), ("model-cnn", dict(model="resnet18"), ["resnet18"]),
                      ("out-empty", dict(out=""), ["--out"]), ("device-bogus", dict(device="quantum"), ["--device"])]:
    case(f"train-{cid}", "train", f"train: {cid.replace('-', ' ')} ({' '.join(f'{k}={v!r}' for k, v in o.items())})", argv=train(**o),
         setup=[DATA], names=names, quick=cid == "lr-nan")
case("train-device-cuda", "train", "--device cuda without a GPU", argv=train(device="cuda"), setup=[DATA], names=["cuda"], needs=["no-cuda"])

# train: data, val and weights
for cid, desc, o, setup, names, clean, needs in [
        ("data-missing", "--data folder that does not exist", {}, [], ["--data", "data"], True, []),
        ("data-file", "--data is a file", {}, [fx_file("data", TEXT)], ["--data"], True, []),
        ("data-empty", "--data is an empty folder", {}, [fx_dir("data")], ["--data"], True, []),
        ("data-label-oor", "a training label outside 0..999", {}, [fx_data(extra=[("far.JPEG", image_bytes, 5000)])], ["outside", "5000"], True, []),
        ("data-text-jpeg", "a text file named .JPEG", {}, [fx_data(extra=[("notes.JPEG", TEXT, 1)])], ["notes.JPEG"], True, []),
        ("data-truncated", "a JPEG cut off half-way (found when decoded)", {}, [fx_data(extra=[("cut.JPEG", cut_jpeg, 1)])], ["cut.JPEG"], False, []),
        ("data-all-bad-skip", "only unreadable files, --skip-bad-images", dict(skip_bad_images=True),
         [fx_data(n=0, extra=[("a.JPEG", TEXT, 1), ("b.JPEG", b"", 2), ("c.JPEG", TEXT, 3)])], ["--data", "decode", "images"], True, []),
        ("val-missing", "--val folder that does not exist", dict(val="nope"), [DATA], ["--val", "nope"], True, []),
        ("val-limit-0", "--val-limit 0", dict(val="data", val_limit=0), [DATA], ["--val-limit"], True, []),
        ("val-label-oor", "a --val label outside 0..999", dict(val="val"), [DATA, fx_data("val", extra=[("far.JPEG", image_bytes, 5000)])],
         ["--val", "outside", "5000"], True, []),
        ("val-text-jpeg", "a text file named .JPEG in --val", dict(val="val"), [DATA, fx_data("val", extra=[("notes.JPEG", TEXT, 1)])],
         ["notes.JPEG"], True, []),
        ("weights-missing", "--weights that does not exist", dict(weights="nope.safetensors", random_weights=False), [DATA],
         ["nope.safetensors"], True, []),
        ("weights-trunc", "a truncated .safetensors", dict(model="deit_tiny_patch16_224", weights="w.safetensors", random_weights=False),
         [DATA, fx_asset_copy(DEIT, "w.safetensors", 5000)], ["w.safetensors"], True, ["assets"]),
        ("weights-other-arch", "DeiT-Tiny weights for --model test_vit", dict(weights=f"{{a}}/{DEIT}", random_weights=False), [DATA],
         ["deit_tiny_patch16_224.safetensors", "do not fit"], True, ["assets"]),
        ("weights-run-wrong-model", "a run's model.safetensors (test_vit) for --model deit_tiny_patch16_224",
         dict(model="deit_tiny_patch16_224", weights="trained.safetensors", random_weights=False),
         [DATA, fx_copy("run_r2_weights", "trained.safetensors")], ["test_vit"], True, []),
        ("weights-and-random", "--weights and --random-weights together", dict(weights="trained.safetensors"),
         [DATA, fx_copy("run_r2_weights", "trained.safetensors")], ["--weights", "--random-weights"], True, [])]:
    case(f"train-{cid}", "train", desc, argv=train(**o), setup=setup, names=names, clean=clean, needs=needs)
case("train-data-skip-one", "train", "one text file among 4 images, --skip-bad-images", argv=train(skip_bad_images=True),
     setup=[fx_data(extra=[("notes.JPEG", TEXT, 1)])], expect="run", post=exists_check("run/model.safetensors"))
case("train-weights-run", "train", "continue from a run's model.safetensors (--weights)", argv=train(weights="trained.safetensors", random_weights=False),
     setup=[DATA, fx_copy("run_r2_weights", "trained.safetensors")], expect="run", post=exists_check("run/model.safetensors"))
case("train-bf16-cpu", "train", "--dtype bfloat16 on CPU", argv=train(dtype="bfloat16"), setup=[DATA], expect="run")
case("train-teacher", "train", "--teacher --alpha 0.5 --temperature 2", argv=train(teacher=True, alpha=0.5, temperature=2), setup=[DATA], expect="run")
case("train-ckpt-every", "train", "--ckpt-every 1 --keep 1: one checkpoint kept", argv=train(ckpt_every=1, keep=1), setup=[DATA], expect="run",
     post=lambda t, o, e: None if len(list((t / "run" / "checkpoints").glob("step_*"))) == 1 else "not exactly 1 checkpoint kept")
case("train-nproc-2", "train", "--nproc 2 (valid, DDP on CPU)", argv=train(nproc=2), setup=[DATA], expect="run",
     post=exists_check("run/model.safetensors"))
case("train-out-unwritable", "train", "--out in a folder that cannot be written", argv=train(out=f"{UNWRITABLE}/tome_nb_sweep_run"),
     setup=[DATA] + ([] if ROOT_USER else [fx_unwritable()]), names=["--out", UNWRITABLE, "permission", "not permitted"])

# train: the run folder, checkpoints and --resume
RUNSET = [DATA, RUN]
for cid, desc, o, setup, names, quick in [
        ("out-file", "--out is a file", {}, [DATA, fx_file("run", TEXT)], ["--out"], False),
        ("out-nonempty", "--out is a folder with other files", {}, [DATA, fx_dir("run", ["notes.txt"])], ["--out"], False),
        ("out-existing-run", "--out already holds a run, no --resume/--overwrite", {}, RUNSET, ["--resume", "--overwrite"], False),
        ("resume-and-overwrite", "--resume and --overwrite together", dict(resume=True, overwrite=True), [DATA], ["--resume", "--overwrite"], True),
        ("resume-diff-r", "--resume with another --r than the run's", dict(resume=True, r="3"), RUNSET, ["--resume-anyway", "r "], False),
        ("resume-diff-epochs", "--resume with more --epochs than the run's (documented: --resume-anyway)", dict(resume=True, epochs=2), RUNSET,
         ["--resume-anyway", "epochs"], False),
        ("resume-anyway-diff-model", "--resume-anyway with another model", dict(resume_anyway=True, model="test_vit2"), RUNSET, ["model"], False),
        ("resume-ckpt-cut", "--resume when the newest checkpoint is truncated", dict(resume=True), RUNSET + [fx_newest_ckpt("cut")], ["step_"], False),
        ("resume-ckpt-empty", "--resume when the newest checkpoint is zero bytes", dict(resume=True), RUNSET + [fx_newest_ckpt("empty")], ["step_"], False),
        ("resume-ckpt-other-run", "--resume when the newest checkpoint is another run's (r=3)", dict(resume=True),
         RUNSET + [fx_newest_ckpt("other")], ["step_0000009", "another run"], False),
        ("resume-runjson-garbage", "--resume when run.json is not JSON", dict(resume=True), RUNSET + [fx_file("run/run.json", b"not json{")],
         ["run.json"], False),
        ("resume-runjson-empty-obj", "--resume when run.json is {} (no config)", dict(resume=True), RUNSET + [fx_file("run/run.json", b"{}")],
         ["run.json"], False),
        ("resume-runjson-missing", "--resume when run.json was deleted", dict(resume=True),
         RUNSET + [lambda t: (t / "run" / "run.json").unlink()], ["--out", "run.json"], False)]:
    case(f"train-{cid}", "train", desc, argv=train(**o), setup=setup, names=names, quick=quick)
case("train-resume-new", "train", "--resume with no run yet (documented: starts one)", argv=train(resume=True), setup=[DATA], expect="run",
     post=exists_check("run/model.safetensors"))
case("train-resume-empty-dir", "train", "--resume on an empty folder", argv=train(resume=True), setup=[DATA, fx_dir("run")], expect="run",
     post=exists_check("run/model.safetensors"))
case("train-resume-done", "train", "--resume a run that has finished (nothing to do)", argv=train(resume=True), setup=RUNSET, expect="run")
case("train-resume-anyway-diff-r", "train", "--resume-anyway with another --r (documented)", argv=train(resume_anyway=True, r="3", epochs=2),
     setup=RUNSET, expect="run")
case("train-overwrite", "train", "--overwrite an existing run", argv=train(overwrite=True), setup=RUNSET, expect="run",
     post=exists_check("run/model.safetensors"))
case("train-resume-nproc-2", "train", "--resume-anyway --epochs 2 on 2 processes a run trained on 1", argv=train(resume_anyway=True, epochs=2, nproc=2),
     setup=RUNSET, expect="run")

# --- the library API ---------------------------------------------------------------------------------------------

LIB_HELPERS = textwrap.dedent("""\
    import copy, io, math, sys
    import numpy as np, torch, timm, tome_nb
    from tome_nb import *
    from tome_nb.assets import read_csv, write_csv
    def vit(name="test_vit"): return timm.create_model(name).eval()
    def img(b=1, s=160): return torch.randn(b, 3, s, s, generator=torch.Generator().manual_seed(0))
    def wrong(msg): print("WRONG: " + msg, file=sys.stderr); sys.exit(3)
""")

LIB_HARNESS = textwrap.dedent("""\
    import os, sys, traceback, warnings
    warnings.simplefilter("ignore")
    def _run(helpers, src):
        g = {"__name__": "__sweep_case__", "A": A}
        exec(compile(helpers, "<helpers>", "exec"), g)
        try: exec(compile(src, "<case>", "exec"), g)
        except Exception as e:
            pkg = os.path.dirname(os.path.abspath(g["tome_nb"].__file__)) + os.sep
            frames = traceback.extract_tb(e.__traceback__)
            last = os.path.abspath(frames[-1].filename) if frames else ""
            if isinstance(e, (ValueError, TypeError, NotImplementedError, OSError, RuntimeError)) and last.startswith(pkg):
                print(f"refused: {type(e).__name__}: {(str(e).strip().splitlines() or [''])[0]}", file=sys.stderr); sys.exit(2)
            traceback.print_exc(); sys.exit(1)
""")

def lib(id, description, code, expect="refuse", names=(), **kw) -> None:
    case(id, "api", description, code=textwrap.dedent(code).strip() + "\n", expect=expect, names=names, **kw)

SAME_AS_TIMM = textwrap.dedent("""
    m, p = vit(), apply_patch(vit(), r=4)
    def outcome(model):
        try: return ("ok", tuple(model(X).shape))
        except Exception as e: return ("error", type(e).__name__)
    a, b = outcome(m), outcome(p)
    if a != b: wrong(f"timm gives {a}, the patched model {b}")
""")

lib("api-patch-linear", "apply_patch on a Linear layer", "apply_patch(torch.nn.Linear(2, 2))", names=["VisionTransformer"])
lib("api-patch-none", "apply_patch(None)", "apply_patch(None)", names=["VisionTransformer", "None"])
lib("api-patch-cnn", "apply_patch on a timm CNN", "apply_patch(timm.create_model('test_resnet'))", names=["VisionTransformer"])
lib("api-patch-sequential", "apply_patch on a ViT wrapped in nn.Sequential", "apply_patch(torch.nn.Sequential(vit()))", names=["Sequential"])
lib("api-patch-relpos", "apply_patch on a ViT with relative positions", "apply_patch(vit('test_vit_relpos'))", names=["VisionTransformer", "RelPos"])
for cid, r, names in [("str", '"13"', ["r must"]), ("neg", "-4", ["r must be >= 0"]), ("float", "13.5", ["r must"]),
                      ("nan", 'float("nan")', ["r must"]), ("inf", 'float("inf")', ["r must"]), ("bool", "True", ["r must"]),
                      ("none", "None", ["r must", "NoneType"]), ("tuple1", "(13,)", ["tuple", "(r, inflect)"]), ("tuple3", "(13, -0.5, 1)", ["tuple", "(r, inflect)"]),
                      ("inflect-str", '(13, "fast")', ["inflect"]), ("inflect-big", "(13, 2.0)", ["inflect"]), ("inflect-nan", '(13, float("nan"))', ["inflect"]),
                      ("list-long", "[1] * 7", ["7 entries"]), ("list-neg", "[4, -1]", ["r[1]"]), ("list-float", "[4, 2.5]", ["r[1]"]),
                      ("list-str", '["4"]', ["r[0]"]), ("set", "{4}", ["r must", "set"])]:
    lib(f"api-r-{cid}", f"apply_patch(model, r={r})", f"apply_patch(vit(), r={r})", names=names, quick=cid == "list-long")
lib("api-r-numpy", "apply_patch with r = numpy.int64(4) (an integer)", "m = apply_patch(vit(), r=np.int64(4)); m(img())", expect="run")
lib("api-r-huge", "r = 10**9: capped per block (documented), still 1000 finite logits", """
    y = apply_patch(vit(), r=10**9)(img())
    if y.shape != (1, 1000) or not torch.isfinite(y).all(): wrong(f"shape {tuple(y.shape)}, finite {bool(torch.isfinite(y).all())}")
""", expect="run")
for cid, r, names in [("neg", "-1", ["r must be >= 0"]), ("str", '"abc"', ["r must"]), ("list-long", "[1] * 7", ["7 entries"]),
                      ("float", "2.5", ["r must"])]:
    lib(f"api-set-r-{cid}", f"model.r = {r} on a patched model", f"m = apply_patch(vit(), r=4)\nm.r = {r}", names=names)
lib("api-set-r-keeps-old", "a refused model.r = -1 leaves r and the outputs as they were", """
    m = apply_patch(vit(), r=4); before = m(img())
    try: m.r = -1
    except (ValueError, TypeError): pass
    else: wrong("model.r = -1 was accepted")
    if m.r != 4: wrong(f"r is now {m.r!r}")
    if not torch.equal(m(img()), before): wrong("outputs changed")
""", expect="run", quick=True)
lib("api-set-r-inflect", "model.r = (5, -0.5)", "m = apply_patch(vit()); m.r = (5, -0.5); m(img())", expect="run")
lib("api-set-r-empty-list", "model.r = [] (no block merges)", """
    m = apply_patch(vit()); ref = m(img()); m.r = []
    if not torch.equal(m(img()), ref): wrong("r = [] differs from r = 0")
""", expect="run")
lib("api-remove-unpatched", "remove_patch on a model never patched (documented no-op)", "remove_patch(vit())(img())", expect="run")
lib("api-remove-twice", "remove_patch twice", "m = apply_patch(vit(), r=4); remove_patch(m); remove_patch(m); m(img())", expect="run")
lib("api-remove-restores", "remove_patch gives back exactly timm's outputs", """
    m = vit(); ref = m(img()); apply_patch(m, r=8); m(img()); remove_patch(m)
    if type(m).__name__ != "VisionTransformer" or not torch.equal(m(img()), ref): wrong("not restored")
""", expect="run")
lib("api-reapply", "apply_patch twice: the second call's r wins (documented)", """
    m = apply_patch(apply_patch(vit(), r=4), r=8)
    if m.r != 8: wrong(f"r = {m.r}")
""", expect="run")
lib("api-patch-then-evit", "apply_evit on a ToMe-patched model", "from tome_nb.prune import apply_evit\napply_evit(apply_patch(vit(), r=4), keep_rate=0.7, locations=(1, 3))",
    names=["already patched", "remove_patch"])
lib("api-evit-keep-big", "apply_evit keep_rate=1.5", "from tome_nb.prune import apply_evit\napply_evit(vit(), keep_rate=1.5, locations=(1, 3))", names=["keep_rate"])
lib("api-evit-keep-0", "apply_evit keep_rate=0", "from tome_nb.prune import apply_evit\napply_evit(vit(), keep_rate=0, locations=(1, 3))", names=["keep_rate"])
lib("api-evit-both", "apply_evit with both r and keep_rate", "from tome_nb.prune import apply_evit\napply_evit(vit(), r=4, keep_rate=0.5, locations=(1, 3))",
    names=["keep_rate"])
lib("api-evit-locations", "apply_evit at a block the model does not have", "from tome_nb.prune import apply_evit\napply_evit(vit(), keep_rate=0.7, locations=(3, 99))",
    names=["locations", "99"])
lib("api-random-drop-neg", "apply_random_drop r=-1", "apply_random_drop(vit(), r=-1)", names=["r must"])
lib("api-method-unknown", "apply_method with an unknown method", "apply_method(vit(), 'bogus')", names=["bogus"])
lib("api-metric-unknown", "apply_patch metric='bogus'", "apply_patch(vit(), r=4, metric='bogus')", names=["metric", "bogus"])
lib("api-forward-wrong-size", "a 224-pixel image for a 160-pixel model: the patched model fails as timm does",
    "X = img(s=224)" + SAME_AS_TIMM, expect="run")
lib("api-forward-unbatched", "an image without the batch dimension: as timm does", "X = img()[0]" + SAME_AS_TIMM, expect="run")
lib("api-forward-uint8", "a uint8 image: as timm does", "X = torch.zeros(1, 3, 160, 160, dtype=torch.uint8)" + SAME_AS_TIMM, expect="run")
lib("api-forward-nan", "a NaN image: no crash, right shape", """
    y = apply_patch(vit(), r=8)(torch.full((2, 3, 160, 160), float("nan")))
    if y.shape != (2, 1000): wrong(f"shape {tuple(y.shape)}")
""", expect="run")
lib("api-forward-empty-batch", "an empty batch on a fixed-size model (documented)", """
    m = apply_patch(vit("test_vit3"), r=8)
    if m(torch.randn(0, 3, 160, 160)).shape[0] != 0: wrong("not empty")
""", expect="run")
lib("api-forward-attn-mask", "forward_features with an attn_mask", "m = apply_patch(vit(), r=4); m.forward_features(img(), attn_mask=torch.ones(1, 101, 101, dtype=torch.bool))",
    names=["attn_mask"])
lib("api-forward-intermediates", "forward_intermediates with r > 0 (documented refusal)", "apply_patch(vit(), r=4).forward_intermediates(img())",
    names=["forward_intermediates"])
lib("api-jit-script", "torch.jit.script of a patched model (documented refusal)", "torch.jit.script(apply_patch(vit(), r=4))", names=["TorchScript"])
lib("api-deepcopy", "copy.deepcopy of a patched model gives the same outputs", """
    m = apply_patch(vit(), r=4); c = copy.deepcopy(m)
    if not torch.equal(m(img()), c(img())) or c.r != 4: wrong("copy differs")
""", expect="run")
lib("api-pickle", "torch.save / torch.load of a whole patched model", """
    m = apply_patch(vit(), r=4); buf = io.BytesIO(); torch.save(m, buf); buf.seek(0)
    c = torch.load(buf, weights_only=False)
    if not torch.equal(m(img()), c(img())): wrong("reloaded model differs")
""", expect="run")
lib("api-state-dict", "a patched model's state_dict loads into plain timm (strict)", """
    vit().load_state_dict(apply_patch(vit(), r=4).state_dict(), strict=True)
""", expect="run")
lib("api-backward", "training step (forward + backward) with r = 8", """
    m = apply_patch(vit().train(), r=8); m(img(2)).sum().backward()
    if any(p.grad is None for p in m.parameters() if p.requires_grad): wrong("some parameters got no gradient")
""", expect="run")
lib("api-token-counts-neg", "token_counts(model, r=-1)", "token_counts(vit(), r=-1)", names=["r must"])
lib("api-gflops-linear", "model_gflops of a Linear", "model_gflops(torch.nn.Linear(2, 2))", names=["VisionTransformer"])
lib("api-gflops-str", "model_gflops(model, r='abc')", "model_gflops(vit(), r='abc')", names=["r must"])
lib("api-parse-r-0", "parse_r(0, 4)", "parse_r(0, 4)", names=["num_layers"])
lib("api-parse-r-inflect", "parse_r(6, (4, -1.5))", "parse_r(6, (4, -1.5))", names=["inflect"])
lib("api-bsm-2d", "bipartite_soft_matching on a 2-D metric", "bipartite_soft_matching(torch.randn(4, 10), 2)", names=["metric"])
lib("api-bsm-none", "bipartite_soft_matching r=None", "bipartite_soft_matching(torch.randn(1, 10, 4), None)", names=["r must"])
lib("api-bsm-neg", "bipartite_soft_matching r=-1", "bipartite_soft_matching(torch.randn(1, 10, 4), -1)", names=["r must"])
lib("api-bsm-protected-neg", "bipartite_soft_matching num_protected=-1", "bipartite_soft_matching(torch.randn(1, 10, 4), 2, num_protected=-1)",
    names=["num_protected"])
lib("api-bsm-protected-big", "bipartite_soft_matching num_protected larger than the tokens", "bipartite_soft_matching(torch.randn(1, 10, 4), 2, num_protected=20)",
    names=["protected"])
lib("api-bsm-empty", "bipartite_soft_matching on 0 tokens: nothing to merge", """
    merge, _ = bipartite_soft_matching(torch.randn(1, 0, 4), 2)
    if merge(torch.randn(1, 0, 4)).shape != (1, 0, 4): wrong("shape")
""", expect="run")
lib("api-bsm-nan", "a NaN metric: merging still returns the right shape", """
    merge, _ = bipartite_soft_matching(torch.full((1, 10, 4), float("nan")), 2)
    if merge(torch.randn(1, 10, 4)).shape != (1, 8, 4): wrong("shape")
""", expect="run")
lib("api-merge-wavg-mismatch", "merge_wavg with tokens of another length than the plan", """
    merge_wavg(bipartite_soft_matching(torch.randn(1, 10, 4), 2)[0], torch.randn(1, 11, 4))
""", names=["merge plan"])
lib("api-prop-attn-size-shape", "prop_attention with a size of the wrong shape", """
    q = torch.randn(1, 2, 5, 4); prop_attention(q, q, q, torch.ones(1, 4, 1))
""", names=["size"])
lib("api-prop-attn-neg-size", "prop_attention with negative token sizes (NaN otherwise)", """
    q = torch.randn(1, 2, 5, 4); y = prop_attention(q, q, q, -torch.ones(1, 5, 1)); print("nan in output:", bool(y.isnan().any()))
""", names=["size"])
lib("api-unmerge-mismatch", "unmerge_tokens with a source map for other tokens", "unmerge_tokens(torch.randn(1, 5, 4), torch.ones(1, 6, 10))",
    names=["source"])
lib("api-vis-not-source", "make_visualization with a source map that is not one", "make_visualization(torch.rand(3, 32, 32), torch.ones(3, 5))",
    names=["source map"])
lib("api-vis-columns", "make_visualization with a source map for another image size", "make_visualization(torch.rand(3, 32, 32), torch.eye(3))",
    names=["patch columns"])
lib("api-create-unknown", "create_model of an unknown name", "create_model('not_a_real_vit')", names=["not_a_real_vit"])
lib("api-create-empty", "create_model('')", "create_model('')", names=["model"])
lib("api-create-weights-missing", "create_model with a missing weights file", "create_model('test_vit', weights='nope.safetensors')",
    names=["nope.safetensors"])
lib("api-create-weights-dir", "create_model with a folder as weights", "create_model('test_vit', weights='w.safetensors')",
    setup=[fx_dir("w.safetensors")], names=["w.safetensors"])
lib("api-create-weights-garbage", "create_model with a garbage .pth", "create_model('test_vit', weights='w.pth')",
    setup=[fx_file("w.pth", b"junk")], names=["w.pth"])
lib("api-create-weights-other-arch", "create_model('test_vit') with DeiT-Tiny weights", f"create_model('test_vit', weights=A + '/{DEIT}')",
    names=["do not fit"], needs=["assets"])
lib("api-labelled-missing", "labelled_images of a missing folder", "labelled_images('nope')", names=["nope"])
lib("api-labelled-file", "labelled_images of a file", "labelled_images('f.txt')", setup=[fx_file("f.txt", TEXT)], names=["f.txt"])
lib("api-labelled-empty", "labelled_images of an empty folder", "labelled_images('data')", setup=[fx_dir("data")], names=["data"])
lib("api-labelled-limit-0", "labelled_images(limit=0): an empty list is no data set", "print(len(labelled_images('data', limit=0)))",
    setup=[DATA], names=["limit"])
lib("api-labelled-limit-neg", "labelled_images(limit=-1): silently drops the last image", "print(len(labelled_images('data', limit=-1)))",
    setup=[DATA], names=["limit"])
lib("api-loader-bs0", "image_loader batch_size=0", "image_loader('data', vit(), batch_size=0)", setup=[DATA], names=["batch_size"])
lib("api-loader-limit-neg", "image_loader limit=-1", "print(len(image_loader('data', vit(), limit=-1).dataset))", setup=[DATA], names=["limit"])
lib("api-evaluate-empty", "evaluate over no images", "evaluate(vit(), image_loader([], vit()), progress=False)", names=["no images"])
lib("api-evaluate-device", "evaluate on device 'quantum'", "evaluate(vit(), image_loader('data', vit(), batch_size=2), device='quantum', progress=False)",
    setup=[DATA], names=["device", "quantum"])
lib("api-evaluate-label-oor", "evaluate with a label outside the model's classes", """
    items = labelled_images('data'); items = [(items[0][0], 5000)] + items[1:]
    print(evaluate(vit(), image_loader(items, vit(), batch_size=2), progress=False))
""", setup=[DATA], names=["outside", "5000"])
lib("api-benchmark-bs-neg", "benchmark batch_size=-1", "benchmark(vit(), batch_size=-1)", names=["batch_size"])
lib("api-benchmark-device", "benchmark device='quantum'", "benchmark(vit(), device='quantum')", names=["device"])
lib("api-benchmark-runs-0", "benchmark runs=0", "benchmark(vit(), batch_size=1, device='cpu', runs=0)", names=["runs"])
lib("api-benchmark-dtype", "benchmark dtype='int8'", "benchmark(vit(), batch_size=1, device='cpu', dtype='int8')", names=["dtype"])
lib("api-benchmark-mintime-inf", "benchmark min_run_time=inf", "benchmark(vit(), batch_size=1, device='cpu', min_run_time=float('inf'))",
    names=["min_run_time"])
lib("api-hf-from-linear", "hf_from_timm of a Linear", "hf_from_timm(torch.nn.Linear(2, 2))", names=["VisionTransformer", "Linear"], needs=["hf"])
lib("api-tv-from-cnn", "tv_from_timm of a CNN", "tv_from_timm(timm.create_model('test_resnet'))", names=["VisionTransformer", "ResNet"])
lib("api-tv-r-neg", "apply_patch(torchvision ViT, r=-1)", "apply_patch(tv_from_timm(timm.create_model('deit_tiny_patch16_224')), r=-1)",
    names=["r must"])
lib("api-tv-r-long", "apply_patch(torchvision ViT, r=[1]*13) on 12 blocks", "apply_patch(tv_from_timm(timm.create_model('deit_tiny_patch16_224')), r=[1] * 13)",
    names=["13 entries"])
lib("api-hf-r-neg", "apply_patch(transformers ViT, r=-1)", "apply_patch(hf_from_timm(timm.create_model('deit_tiny_patch16_224')), r=-1)",
    names=["r must"], needs=["hf"])
lib("api-hf-set-r-str", "model.r = 'abc' on a patched transformers ViT", "m = apply_patch(hf_from_timm(timm.create_model('deit_tiny_patch16_224')), r=4); m.r = 'abc'",
    names=["r must"], needs=["hf"])
FIT_DS = "ds = [(torch.randn(3, 160, 160), i % 10) for i in range(4)]\nloss = lambda m, x, y: (torch.nn.functional.cross_entropy(m(x), y), {})\n"
lib("api-fit-empty", "fit on an empty data set", FIT_DS + "fit(vit(), [], loss, FitConfig(batch_size=2, progress=False))", names=["samples", "batch"])
lib("api-fit-bs0", "fit with batch_size=0", FIT_DS + "fit(vit(), ds, loss, FitConfig(batch_size=0, progress=False))", names=["batch"])
lib("api-fit-f16", "fit with dtype float16 (needs loss scaling)", FIT_DS + "fit(vit(), ds, loss, FitConfig(batch_size=2, dtype='float16', device='cpu', progress=False))",
    names=["float16"])
lib("api-fit-device", "fit on device 'quantum'", FIT_DS + "fit(vit(), ds, loss, FitConfig(batch_size=2, device='quantum', progress=False))",
    names=["device", "quantum"])
lib("api-write-csv-nodir", "write_csv into a folder that cannot exist", "write_csv([dict(a=1)], '/proc/1/no/out.csv')", names=["cannot write"])
lib("api-read-csv-missing", "read_csv of a missing file", "read_csv('nope.csv')", names=["nope.csv"])
lib("api-sample-image-missing", "sample_image of a missing sample", "sample_image('nope.png')", names=["nope.png"], needs=["assets"])
lib("api-dense-unpatched", "dense_features of an unpatched model (documented)", "dense_features(vit(), img())", expect="run")

# ---------------------------------------------------------------------------------------------------------------
# Running a case.

def snapshot(d: Path) -> Dict[str, tuple]:
    out = {}
    for p in d.rglob("*"):
        try: st = p.lstat()
        except OSError: continue
        out[str(p.relative_to(d))] = (p.is_dir(), None if p.is_dir() else st.st_size, None if p.is_dir() else st.st_mtime_ns)
    return out

def fill(s: str, t: Path) -> str:
    return s.replace("{a}", str(S.assets) if S.assets else "/no/assets").replace("{t}", str(t))

def command_of(c: Case) -> List[str]:
    "The command as a user would type it (paths relative to the case folder)."
    if c.code is not None: return ["python", "-c", LIB_HELPERS + c.code]
    return ["tome_nb"] + [fill(a, Path(".")) for a in c.argv]

def last_line(text: str) -> str:
    lines = [l.strip() for l in text.splitlines() if l.strip()]
    return lines[-1] if lines else ""

@dataclass
class Result:
    case: Case
    verdict: str
    rc: Optional[int]
    message: str
    note: str
    seconds: float
    stdout: str = ""
    stderr: str = ""

def skip_reason(c: Case) -> Optional[str]:
    if "assets" in c.needs and S.assets is None: return "no assets folder"
    if "no-cuda" in c.needs and S.cuda: return "this machine has CUDA"
    if "hf" in c.needs and not S.hf: return "transformers is not installed"
    return None

def run_case(c: Case, timeout: Optional[int] = None) -> Result:
    why = skip_reason(c)
    if why: return Result(c, "SKIP", None, "", why, 0.0)
    t = S.dir / f"case_{c.id}"
    t.mkdir()
    t0 = time.time()
    try:
        for step in c.setup: step(t)
    except Exception as e:
        return Result(c, "SETUP-ERROR", None, f"{type(e).__name__}: {e}"[:200], "the case's setup failed", time.time() - t0)
    before = snapshot(t)
    if c.code is not None:
        src = LIB_HARNESS + f"A = {str(S.assets) if S.assets else '/no/assets'!r}\n_run({LIB_HELPERS!r}, {c.code!r})\n"
        cmd = [sys.executable, "-c", src]
    else:
        cmd = S.cli + [fill(a, t) for a in c.argv]
    env = S.env({k: (fill(v, t) if isinstance(v, str) else v) for k, v in (c.env or {}).items()})
    t0 = time.time()
    proc = subprocess.Popen(cmd, cwd=t, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True)
    try:
        out, err = proc.communicate(timeout=max(timeout or 0, c.timeout) if c.timeout != TIMEOUT else (timeout or TIMEOUT))
        hung = False
    except subprocess.TimeoutExpired:
        try: os.killpg(proc.pid, signal.SIGKILL)
        except ProcessLookupError: pass
        out, err = proc.communicate()
        hung = True
    secs = time.time() - t0
    rc = proc.returncode
    msg = last_line(err) or (f"stdout: {last_line(out)}" if out.strip() else "")
    note = ""
    if hung: verdict = "HANG"
    elif "Traceback (most recent call last)" in out + err: verdict = "TRACEBACK"
    elif rc < 0: verdict, note = "CRASH", f"killed by signal {-rc}"
    elif rc == 3 and "WRONG:" in err: verdict = "WRONG-RESULT"
    elif c.expect == "run":
        if rc != 0: verdict = "WRONG-REFUSE"
        else:
            problem = c.post(t, out, err) if c.post else None
            verdict, note = ("WRONG-RESULT", problem) if problem else ("PASS-ran", "")
    elif rc == 0: verdict = "SILENT"
    else:
        after = snapshot(t)
        new = sorted(k for k in after if k not in before)
        changed = sorted(k for k in before if k in after and after[k] != before[k] and not before[k][0])
        gone = sorted(k for k in before if k not in after)
        if not last_line(err): verdict, note = "VAGUE", "no message on stderr"
        elif c.names and not any(n.lower() in last_line(err).lower() for n in c.names):
            verdict, note = "VAGUE", f"message names none of {list(c.names)}"
        elif c.clean and (new or changed or gone):
            verdict = "LEFTOVER"
            note = "; ".join(f"{what}: {', '.join(v[:4])}" for what, v in (("new", new), ("changed", changed), ("removed", gone)) if v)
        else: verdict = "PASS-refused"
    if verdict == "SILENT" and not note: note = f"exit 0; stdout: {last_line(out)[:150]}" if out.strip() else "exit 0"
    return Result(c, verdict, rc, msg[:200], note[:300], secs, out, err)

def cleanup(t: Path) -> None:
    for p in [t, *t.rglob("*")]:
        try:
            if p.is_dir() and not p.is_symlink(): os.chmod(p, 0o700)
        except OSError: pass
    shutil.rmtree(t, ignore_errors=True)

# ---------------------------------------------------------------------------------------------------------------

def write_results(results: List[Result], path: Path) -> Path:
    date = datetime.datetime.now().isoformat(timespec="seconds")
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["id", "area", "description", "command", "expect", "exit_code", "verdict", "message", "note", "seconds", "date", "tome_nb_version"])
        for r in results:
            w.writerow([r.case.id, r.case.area, r.case.description, shlex.join(command_of(r.case)), r.case.expect,
                        "" if r.rc is None else r.rc, r.verdict, r.message, r.note, round(r.seconds, 1), date, S.version])
    return path

def main(argv: Optional[Sequence[str]] = None) -> int:
    global S
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--only", default=None, help="comma-separated case ids (or id prefixes ending in *)")
    p.add_argument("--quick", action="store_true", help="the ~15 representative cases of --quick (under 2 minutes)")
    p.add_argument("--list", action="store_true", help="list the cases and exit")
    p.add_argument("--csv", default=None, help=f"results CSV (default: {CSV_PATH.relative_to(ROOT)} for a full run, none otherwise)")
    p.add_argument("--timeout", type=int, default=TIMEOUT, help="seconds per case (default: %(default)s)")
    p.add_argument("--keep", action="store_true", help="keep the cases' folders (their path is printed)")
    p.add_argument("-v", "--verbose", action="store_true", help="print the stderr tail of every failed case")
    args = p.parse_args(argv)
    if args.timeout < 1: p.error(f"--timeout must be at least 1, got {args.timeout}")
    cases = CASES
    if args.quick: cases = [c for c in cases if c.quick]
    if args.only:
        want = [w.strip() for w in args.only.split(",") if w.strip()]
        unknown = [w for w in want if not any(c.id == w or (w.endswith("*") and c.id.startswith(w[:-1])) for c in CASES)]
        if unknown: p.error(f"--only: no case {', '.join(unknown)} (see --list)")
        cases = [c for c in cases if any(c.id == w or (w.endswith("*") and c.id.startswith(w[:-1])) for w in want)]
    if args.list:
        for c in cases: print(f"{c.id:34s} {c.area:8s} {c.expect:7s} {'quick' if c.quick else '     '} {c.description}")
        print(f"{len(cases)} cases ({sum(c.quick for c in cases)} in --quick)")
        return 0
    full = not (args.quick or args.only)
    csv_path = Path(args.csv) if args.csv else (CSV_PATH if full else None)
    S = Session(keep=args.keep)
    t_start = time.time()
    results: List[Result] = []
    try:
        S.probe()
        print(f"tome_nb {S.version}; CUDA: {S.cuda}; transformers: {S.hf}; assets: {S.assets}; {len(cases)} cases", flush=True)
        for i, c in enumerate(cases, 1):
            r = run_case(c, args.timeout)
            results.append(r)
            print(f"[{i:3d}/{len(cases)}] {r.verdict:13s} {c.id:34s} {r.seconds:5.1f}s  {r.message[:110]}", flush=True)
            if r.verdict not in GOOD:
                if r.note: print(f"      note: {r.note}")
                if args.verbose:
                    for line in (r.stderr.strip().splitlines() or r.stdout.strip().splitlines())[-6:]: print(f"      | {line}")
            if not args.keep: cleanup(S.dir / f"case_{c.id}")
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
    finally:
        S.close()
    wall = time.time() - t_start
    failed = [r for r in results if r.verdict not in GOOD]
    skipped = sum(r.verdict == "SKIP" for r in results)
    if csv_path is not None and results: print(f"wrote {write_results(results, csv_path)}")
    counts: Dict[str, int] = {}
    for r in results: counts[r.verdict] = counts.get(r.verdict, 0) + 1
    print("verdicts: " + ", ".join(f"{k} {v}" for k, v in sorted(counts.items())))
    print(f"{len(results)} cases: {len(results) - len(failed) - skipped} passed, {len(failed)} failed"
          + (f", {skipped} skipped" if skipped else "") + f" ({wall:.0f} s)")
    return 1 if failed or len(results) < len(cases) else 0

if __name__ == "__main__":
    sys.exit(main())
