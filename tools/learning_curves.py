#!/usr/bin/env python3
"""Learning curves of the learned pruning methods (chapter 09's figure, chapter 10's long-budget rows).

Trains each method at one setting under `LONG_BUDGET` with `PAPER_RECIPE` on the shared DeiT-Tiny weights and
imagenet-sample-1000, measures top-1 on imagenet-val-1300 after every epoch, and writes
nbs/data/learning_curves_deit_tiny.csv (rewritten after each method, so a stopped run keeps what it finished).
Each run checkpoints into $TOME_NB_CACHE/runs; running the same command again continues where it stopped,
and a finished method is read back from the cache without training.

    python tools/learning_curves.py                       # all three, about 15 minutes each on 2 CPU cores
    python tools/learning_curves.py --methods avit        # one of them
"""
import argparse, sys
from dataclasses import replace
from pathlib import Path

import torch

from tome_nb.assets import create_model, read_csv, run_info, write_csv
from tome_nb.comparison import LONG_BUDGET, PAPER_RECIPE, learning_curve

SETTINGS = {"dynamicvit": 0.7, "spvit": 0.7, "avit": 8.0}
CSV = Path(__file__).resolve().parents[1] / "nbs" / "data" / "learning_curves_deit_tiny.csv"

def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--methods", nargs="+", choices=list(SETTINGS), default=list(SETTINGS))
    p.add_argument("--epochs", type=int, default=LONG_BUDGET.epochs, help="training budget in epochs of 1,000 images")
    p.add_argument("--limit", type=int, default=None, help="only the first N evaluation images (a quick try)")
    p.add_argument("--csv", default=str(CSV))
    a = p.parse_args(argv)
    if a.epochs < 1: p.error("--epochs must be >= 1")
    budget = replace(LONG_BUDGET, epochs=a.epochs, verbose=True, ckpt_every=8)   # neither changes what is learned
    model = create_model("deit_tiny_patch16_224").eval()
    old = [r for r in read_csv(a.csv) if r["method"] not in a.methods] if Path(a.csv).is_file() else []
    rows = []
    for method in a.methods:
        print(f"{method} {SETTINGS[method]}: {a.epochs} epochs, {PAPER_RECIPE.get(method)}", flush=True)
        rows += [dict(**r, **run_info("cpu", "float32", budget.batch_size))
                 for r in learning_curve(model, "deit_tiny_patch16_224", method, SETTINGS[method], budget, limit=a.limit)]
        write_csv(old + rows, a.csv)
        print(f"{method}: top-1 per epoch " + ", ".join(f"{r['top1']:.2f}" for r in rows if r["method"] == method), flush=True)
    return 0

if __name__ == "__main__":
    torch.set_num_threads(2)
    sys.exit(main())
