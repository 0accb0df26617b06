#!/usr/bin/env python3
"""tome_nb against the original ToMe code (facebookresearch/ToMe) on the same timm model and images.

The original code is CC-BY-NC and never enters this repository: this script imports it from a checkout
*outside* the project (`--ref`, or the environment variable TOME_REF), patches one copy of DeiT-Tiny with it
and another with `tome_nb.apply_patch`, runs both on every batch, and writes only numbers:

- nbs/data/reference_agreement_deit_tiny.csv  per schedule: top-1 of both, predictions that differ, the share
  of images whose logits agree within 1e-3, the largest logit difference (plus device, versions, date);
- nbs/data/reference_tome_predictions.csv     the original's prediction for every image and schedule;
- nbs/data/reference_tome_golden.npz          the original's logits on the first images at r=13 and (13, -0.5),
  which merged token holds each patch after blocks 1 and 2 at r=13 (the golden test of chapter 05), and its
  logits at r=13 on the same weights built without the class token and pooled by averaging (`tome_nb.assets.without_class_token`);
- nbs/data/reference_matching_golden.npz       the original's merge on random metrics with no, one and two protected
  tokens (which inputs each output token holds, in output order): chapter 02's test of the matching alone;
- with --matching-only, only that file; with --speed, instead: nbs/data/reference_speed_cpu.csv, the throughput of timm's model, tome_nb and the original
  at r=13 (ViT-S/16 and DeiT-Tiny, batch 32 and 1, random weights), in one interleaved run per row (chapter 07), with
  the free reduction (`bench.free_reduction`: ToMe's token counts, nothing spent choosing them) as the bound no
  matching can beat, and the share of ToMe's time spent beyond it.

    git clone https://github.com/facebookresearch/ToMe /tmp/ToMe        # anywhere outside the project
    python tools/compare_reference.py --ref /tmp/ToMe
    python tools/compare_reference.py --ref /tmp/ToMe --speed     # on an otherwise idle machine
"""
import argparse, os, sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SCHEDULES = {"r=0": 0, "r=4": 4, "r=8": 8, "r=13": 13, "r=16": 16, "(13, -0.5)": (13, -0.5), "(16, -1)": (16, -1)}
GOLDEN_IMAGES = 8


def load_original(ref: Path):
    "The original code's timm patch, imported from a checkout outside this project."
    if not (ref / "tome" / "patch" / "timm.py").is_file():
        sys.exit(f"error: {ref} is not a checkout of facebookresearch/ToMe (no tome/patch/timm.py)")
    if ref.resolve().is_relative_to(ROOT): sys.exit("error: the original code must live outside this project")
    sys.path.insert(0, str(ref))
    import tome
    return tome.patch.timm


def groups(source):
    "[B, T, N0] source map -> [B, N0]: the index of the output token that holds each input token."
    return source.float().argmax(1)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--ref", default=os.environ.get("TOME_REF"), help="checkout of facebookresearch/ToMe (outside the project)")
    ap.add_argument("--limit", type=int, default=None, help="only the first N images")
    ap.add_argument("--batch-size", type=int, default=50)
    ap.add_argument("--out", default=str(ROOT / "nbs" / "data"), help="folder for the result files")
    ap.add_argument("--matching-only", action="store_true", help="write only reference_matching_golden.npz (seconds)")
    ap.add_argument("--speed", action="store_true", help="measure throughput against the original instead of accuracy")
    ap.add_argument("--runs", type=int, default=9, help="interleaved rounds per row (--speed)")
    args = ap.parse_args(argv)
    if not args.ref: sys.exit("error: give --ref PATH (or TOME_REF): a checkout of facebookresearch/ToMe")
    original_patch = load_original(Path(args.ref))
    if args.speed: return speed(original_patch, Path(args.out), args.runs)
    matching_golden(Path(args.out))
    if args.matching_only: return

    import numpy as np, torch
    from tqdm.auto import tqdm
    from tome_nb import apply_patch
    from tome_nb.assets import asset_path, create_model, labelled_images, run_info, without_class_token, write_csv
    from tome_nb.eval import image_loader
    torch.set_grad_enabled(False)

    name = "deit_tiny_patch16_224"
    ours = apply_patch(create_model(name))
    orig = create_model(name)
    original_patch(orig, trace_source=False, prop_attn=True)
    items = labelled_images(asset_path("imagenet-val-1300"), args.limit)
    loader = image_loader(items, ours, batch_size=args.batch_size)

    stats = {k: dict(n=0, top1_original=0, top1_tome_nb=0, differ=0, within=0, maxdiff=0.0) for k in SCHEDULES}
    preds = {k: [] for k in SCHEDULES}
    golden = {}
    for bi, (x, y) in enumerate(tqdm(loader, desc="original vs tome_nb", unit="batch")):
        for key, sched in SCHEDULES.items():
            ours.r, orig.r = sched, sched
            lo, lt = orig(x), ours(x)
            po, pt = lo.argmax(-1), lt.argmax(-1)
            diff = (lo - lt).abs().amax(-1)                                           # [B] largest logit difference
            s = stats[key]
            s["n"] += len(y); s["top1_original"] += int((po == y).sum()); s["top1_tome_nb"] += int((pt == y).sum())
            s["differ"] += int((po != pt).sum()); s["within"] += int((diff <= 1e-3).sum())
            s["maxdiff"] = max(s["maxdiff"], float(diff.max()))
            preds[key] += po.tolist()
            if bi == 0 and key in ("r=13", "(13, -0.5)"):
                golden[f"logits {key}"] = lo[:GOLDEN_IMAGES].numpy()
        if bi == 0:                                                                   # merge groups after blocks 1 and 2
            gap = without_class_token(orig)
            original_patch(gap, trace_source=False, prop_attn=True)
            gap.r = 13
            golden["logits gap r=13"] = gap(x[:GOLDEN_IMAGES]).numpy()
            orig._tome_info["trace_source"] = True
            for blocks in (1, 2):
                orig.r = [13] * blocks
                orig(x[:GOLDEN_IMAGES])
                golden[f"groups after block {blocks}"] = groups(orig._tome_info["source"]).numpy()
            orig._tome_info["trace_source"] = False

    info = run_info("cpu", "float32", args.batch_size)
    out = Path(args.out)
    rows = [dict(model=name, images_set="imagenet-val-1300", schedule=k, images=s["n"],
                 top1_original=round(100 * s["top1_original"] / s["n"], 2), top1_tome_nb=round(100 * s["top1_tome_nb"] / s["n"], 2),
                 predictions_differ=s["differ"], logits_within_1e3_pct=round(100 * s["within"] / s["n"], 2),
                 max_logit_diff=f"{s['maxdiff']:.2e}", **info) for k, s in stats.items()]
    write_csv(rows, out / "reference_agreement_deit_tiny.csv")
    write_csv([dict(file=Path(p).name, label=lab, **{k: preds[k][i] for k in SCHEDULES}) for i, (p, lab) in enumerate(items)],
              out / "reference_tome_predictions.csv")
    np.savez_compressed(out / "reference_tome_golden.npz", files=np.array([Path(p).name for p, _ in items[:GOLDEN_IMAGES]]),
                        **{k.replace(" ", "_").replace(",", "").replace("(", "").replace(")", ""): v for k, v in golden.items()},
                        info=np.array([f"{k}={v}" for k, v in info.items()]))
    print(f"{'schedule':12s} {'original':>9s} {'tome_nb':>8s} {'differ':>7s} {'logits<=1e-3':>13s} {'max diff':>9s}")
    for r in rows:
        print(f"{r['schedule']:12s} {r['top1_original']:9.2f} {r['top1_tome_nb']:8.2f} {r['predictions_differ']:7d} "
              f"{r['logits_within_1e3_pct']:12.2f}% {r['max_logit_diff']:>9s}")
    print(f"[{rows[0]['images']} images; {info['device']}, {info['dtype']}, torch {info['torch']}, timm {info['timm']}, {info['date']}]")


def matching_golden(out: Path, cases: int = 30) -> None:
    "The original's bipartite soft matching on random metrics: inputs, `r`, protected tokens and each output's members."
    import numpy as np, torch
    from tome.merge import bipartite_soft_matching as original_matching       # from the checkout outside the project
    g = torch.Generator().manual_seed(0)
    arrays = {}
    for i in range(cases):
        P = i % 3                                                   # 0: no class token, 1: class token, 2: class + distillation
        N = int(torch.randint(P + 2, 60, (1,), generator=g))
        r = int(torch.randint(1, N // 2 + 3, (1,), generator=g))    # sometimes beyond the cap
        metric = torch.randn(3, N, 8, generator=g)
        merge, _ = original_matching(metric, r, class_token=P >= 1, distill_token=P == 2)
        held = merge(torch.eye(N).expand(3, N, N).contiguous(), mode="sum")   # [3, N - r', N]: inputs inside each output, in order
        arrays |= {f"metric_{i}": metric.numpy(), f"held_{i}": held.numpy(), f"r_p_{i}": np.array([r, P])}
    np.savez_compressed(out / "reference_matching_golden.npz", **arrays)
    print(f"wrote {out / 'reference_matching_golden.npz'}: {cases} cases")


def speed(original_patch, out: Path, runs: int, r: int = 13) -> None:
    "Paired throughput ratios of tome_nb and the original against timm's model, per model and batch size, one CSV."
    import copy, torch, timm
    from tome_nb import apply_patch
    from tome_nb.assets import run_info, write_csv
    from tome_nb.bench import compare, free_reduction, paired_ratio
    from tome_nb.patch import model_gflops
    torch.set_grad_enabled(False)
    rows = []
    for name in ("vit_small_patch16_224", "deit_tiny_patch16_224"):
        model = timm.create_model(name, pretrained=False).eval()
        orig = copy.deepcopy(model)
        original_patch(orig)
        orig.r = r
        ideal = model_gflops(model, 0) / model_gflops(model, r)
        for bs in (32, 1):
            res = compare({"timm": model, "tome_nb": apply_patch(copy.deepcopy(model), r=r), "original": orig,
                           "free": free_reduction(model, r)}, batch_size=bs, device="cpu", runs=runs, min_run_time=0.5, progress=False)
            cols = {}
            for a, b in [("tome_nb", "timm"), ("original", "timm"), ("tome_nb", "original"), ("free", "timm"), ("free", "original"),
                         ("tome_nb", "free")]:
                med, q1, q3 = paired_ratio(res, a, b)
                cols |= {f"{a}_over_{b}": round(med, 4), f"{a}_over_{b}_q1": round(q1, 4), f"{a}_over_{b}_q3": round(q3, 4)}
            rows.append(dict(model=name, r=r, **cols, flop_ratio=round(ideal, 4),
                             tome_nb_of_flop_ratio=round(cols["tome_nb_over_timm"] / ideal, 4),
                             matching_share_pct=round(100 * (1 - cols["tome_nb_over_free"]), 2), runs=runs,
                             **run_info("cpu", "float32", bs)))
            write_csv(rows, out / "reference_speed_cpu.csv")
            x = rows[-1]
            print(f"{name} batch {bs}: tome_nb/timm {x['tome_nb_over_timm']:.3f}, original/timm {x['original_over_timm']:.3f}, "
                  f"tome_nb/original {x['tome_nb_over_original']:.3f}, free/original {x['free_over_original']:.3f}, "
                  f"ToMe's time spent beyond the free reduction {x['matching_share_pct']:.1f}%, FLOP ratio {ideal:.3f}", flush=True)


if __name__ == "__main__":
    main()
