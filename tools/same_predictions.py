#!/usr/bin/env python3
"""Did a change move any prediction? tome_nb's logits on the 1,300 images, saved before and checked after.

Runs DeiT-Tiny (the shared weights) patched with `tome_nb.apply_patch` on every image of imagenet-val-1300 at each
schedule of chapter 05 and the reference comparison, and either saves the logits (`--save`, an .npz outside the
repository: it is 36 MB) or compares them with a saved file (`--against`): per schedule, top-1, the number of
predictions that differ and the largest logit difference. Exit status 1 when any prediction differs.

    python tools/same_predictions.py --save /tmp/before.npz       # on the old code
    python tools/same_predictions.py --against /tmp/before.npz    # on the new code
"""
import argparse, sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from compare_reference import SCHEDULES   # the schedules of the reference comparison (chapter 05 uses the same)


def logits(limit=None, batch_size=50):
    "{schedule: [N, 1000] float32 logits}, the labels and the image file names."
    import numpy as np, torch
    from tqdm.auto import tqdm
    from tome_nb import apply_patch
    from tome_nb.assets import asset_path, create_model, labelled_images
    from tome_nb.eval import image_loader
    torch.set_grad_enabled(False)
    model = apply_patch(create_model("deit_tiny_patch16_224"))
    items = labelled_images(asset_path("imagenet-val-1300"), limit)
    out, labels = {k: [] for k in SCHEDULES}, []
    for x, y in tqdm(image_loader(items, model, batch_size=batch_size), desc="tome_nb logits", unit="batch"):
        labels.append(y.numpy())
        for k, sched in SCHEDULES.items():
            model.r = sched
            out[k].append(model(x).float().numpy())
    return {k: np.concatenate(v) for k, v in out.items()}, np.concatenate(labels), [Path(p).name for p, _ in items]


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    g = ap.add_mutually_exclusive_group(required=True)
    g.add_argument("--save", help="write the logits to this .npz")
    g.add_argument("--against", help="compare with the logits in this .npz")
    ap.add_argument("--limit", type=int, default=None, help="only the first N images")
    args = ap.parse_args(argv)
    import numpy as np
    if args.against and not Path(args.against).is_file(): sys.exit(f"error: --against {args.against}: no such file")
    if args.save and not args.save.endswith(".npz"): sys.exit(f"error: --save {args.save}: give a path ending in .npz")
    new, labels, files = logits(args.limit)
    if args.save:
        np.savez(args.save, labels=labels, files=np.array(files), **{k: v for k, v in new.items()})
        print(f"saved {len(files)} images x {len(new)} schedules to {args.save}")
        return 0
    old = np.load(args.against)
    if list(old["files"]) != files: sys.exit("error: the saved file holds other images")
    moved = 0
    print(f"{'schedule':12s} {'top-1 before':>13s} {'top-1 after':>12s} {'differ':>7s} {'max logit diff':>15s}")
    for k, v in new.items():
        o = old[k]
        differ = int((o.argmax(-1) != v.argmax(-1)).sum()); moved += differ
        print(f"{k:12s} {100 * (o.argmax(-1) == labels).mean():13.2f} {100 * (v.argmax(-1) == labels).mean():12.2f} "
              f"{differ:7d} {np.abs(o - v).max():15.2e}")
    print(f"[{len(files)} images; {moved} predictions differ]")
    return 1 if moved else 0


if __name__ == "__main__":
    sys.exit(main())
