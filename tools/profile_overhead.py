#!/usr/bin/env python3
"""Where the time of a ToMe forward goes, per PyTorch operator (issue 24), on this machine's CPU.

For each model and batch size, torch.profiler records `--forwards` forward passes of four variants of the same
timm model (random weights: time does not depend on them): timm's own, tome_nb at r=13, the "free" reduction
(`bench.free_reduction`: the same token counts, no matching, no size bias) and, with `--ref`, the original ToMe code
(facebookresearch/ToMe, imported from a checkout outside this project; nothing of it enters the repository). The
variants are profiled in turns (`--rounds` of them), so that a change in the machine's load falls on all alike. Every
operator's self CPU time is summed and divided by the number of forwards.

Writes one row per (model, batch, variant, operator): calls and self milliseconds per forward, its share of the
variant's total, and its rank; plus a row with operator `TOTAL`. Chapter 07 shows the top operators of tome_nb
and the original side by side, and the operators where tome_nb spends more than the free reduction (the cost of
choosing which tokens to merge).

    python tools/profile_overhead.py --ref /tmp/ToMe --out nbs/data/profile_cpu.csv    # on an otherwise idle machine
"""
import argparse, copy, sys
from collections import defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
MODELS = ("deit_tiny_patch16_224", "vit_small_patch16_224")


def variants(name: str, r: int, ref):
    "The models to profile: timm's, tome_nb's, the free reduction and (with a checkout) the original code's."
    import timm
    from tome_nb import apply_patch
    from tome_nb.bench import free_reduction
    base = timm.create_model(name, pretrained=False).eval()
    out = {"timm": base, "tome_nb": apply_patch(copy.deepcopy(base), r=r), "free": free_reduction(base, r)}
    if ref is not None:
        orig = copy.deepcopy(base)
        ref.patch.timm(orig, trace_source=False, prop_attn=True)
        orig.r = r
        out["original"] = orig
    return out


def profile_rows(models: dict, x, forwards: int, rounds: int) -> dict:
    "{variant: {op: [calls, self_us]}} summed over `rounds` turns of `forwards` forwards each."
    import torch
    from torch.profiler import ProfilerActivity, profile
    acc = {k: defaultdict(lambda: [0, 0.0]) for k in models}
    with torch.no_grad():
        for m in models.values():
            for _ in range(3): m(x)                                   # warm-up: allocations, oneDNN primitives
        for _ in range(rounds):
            for k, m in models.items():
                with profile(activities=[ProfilerActivity.CPU]) as p:
                    for _ in range(forwards): m(x)
                for e in p.key_averages():
                    acc[k][e.key][0] += e.count
                    acc[k][e.key][1] += e.self_cpu_time_total
    return acc


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--ref", help="checkout of facebookresearch/ToMe, outside the project (adds the original's profile)")
    ap.add_argument("--models", nargs="+", default=list(MODELS))
    ap.add_argument("--batch-sizes", nargs="+", type=int, default=[1, 32])
    ap.add_argument("--r", type=int, default=13)
    ap.add_argument("--forwards", type=int, default=0, help="forwards per profiled turn (default: 20 at batch 1, 2 at 32)")
    ap.add_argument("--rounds", type=int, default=3, help="turns per variant, interleaved")
    ap.add_argument("--top", type=int, default=15, help="operators kept per variant (the rest summed as OTHER)")
    ap.add_argument("--out", default=str(ROOT / "nbs" / "data" / "profile_cpu.csv"))
    args = ap.parse_args(argv)
    ref = None
    if args.ref:
        refp = Path(args.ref).resolve()
        if not (refp / "tome" / "patch" / "timm.py").is_file(): sys.exit(f"error: {args.ref} is not a checkout of facebookresearch/ToMe")
        if refp.is_relative_to(ROOT): sys.exit("error: the original code must live outside this project")
        sys.path.insert(0, str(refp))
        import tome as ref
    import os
    os.environ.setdefault("KINETO_LOG_LEVEL", "5")
    import torch
    from tqdm.auto import tqdm
    from tome_nb.assets import run_info, write_csv
    rows = []
    jobs = [(n, b) for n in args.models for b in args.batch_sizes]
    for name, bs in tqdm(jobs, desc="profiles", unit="setting"):
        models = variants(name, args.r, ref)
        x = torch.randn(bs, 3, 224, 224)
        forwards = args.forwards or (20 if bs == 1 else 2)
        acc = profile_rows(models, x, forwards, args.rounds)
        n = forwards * args.rounds
        for variant, ops in acc.items():
            total = sum(us for _, us in ops.values())
            ranked = sorted(ops.items(), key=lambda kv: -kv[1][1])
            kept, rest = ranked[:args.top], ranked[args.top:]
            entries = [(op, c, us) for op, (c, us) in kept] + [("OTHER", sum(c for _, (c, _) in rest), sum(us for _, (_, us) in rest))]
            entries.append(("TOTAL", sum(c for c, _ in ops.values()), total))
            for rank, (op, calls, us) in enumerate(entries, 1):
                rows.append(dict(model=name, variant=variant, r=args.r if variant != "timm" else 0, op=op,
                                 rank=rank if op not in ("OTHER", "TOTAL") else "", calls_per_forward=round(calls / n, 2),
                                 self_ms_per_forward=round(us / n / 1000, 4), share_pct=round(100 * us / total, 2),
                                 forwards=n, **run_info("cpu", "float32", bs)))
    path = write_csv(rows, args.out)
    print(f"wrote {path} ({len(rows)} rows)")


if __name__ == "__main__":
    main()
