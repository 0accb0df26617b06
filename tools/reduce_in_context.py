#!/usr/bin/env python3
"""What one block's token reduction costs alone and inside the model (issue 24), on this machine's CPU.

The reduction step of a ToMe block (`ToMeReduce`: head mean, matching, merge of features and sizes) is timed on
one block's real inputs (random weights, `--tokens` tokens entering it, r=13) in three settings, interleaved in
`--rounds` rounds (medians):

- `alone`: called over and over in a tight loop, so its code and data stay in the caches;
- `after_mlp`: each call follows the block's MLP, as in a real forward pass (the MLP's matrix products evict them);
- `tiny`: the same code on a sequence of 9 tokens of width 12, where the tensors are too small to cost anything:
  what is left is PyTorch's fixed cost per operator and the Python around it;
- for scale, the whole block with ToMe (`block_tome`) and with the free reduction (`block_free`, chapter 07: the same
  token count, nothing spent choosing the tokens): their difference is what ToMe costs per block.

It also counts the operators the step dispatches (`TorchDispatchMode`). One row per model and setting.

    python tools/reduce_in_context.py       # on an otherwise idle machine; writes nbs/data/reduce_in_context_cpu.csv
"""
import argparse, statistics, sys, time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(Path(__file__).resolve().parent))
from profile_overhead import MODELS   # the models of the operator profile, so the two files describe the same ones


def count_ops(fn) -> int:
    "How many ATen operators `fn()` dispatches."
    from torch.utils._python_dispatch import TorchDispatchMode

    class Count(TorchDispatchMode):
        n = 0
        def __torch_dispatch__(self, func, types, args=(), kwargs=None):
            Count.n += 1
            return func(*args, **(kwargs or {}))

    with Count(): fn()
    return Count.n


def inputs(blk, x, size, r: int, num_protected: int = 1):
    "The `ReduceInput` the block's reduction sees for tokens `x`."
    from tome_nb.patch import ReduceInput
    from tome_nb.similarity import attention_qkv
    xn = blk.norm1(x)
    q, k, v = attention_qkv(blk.attn, xn)
    return ReduceInput(x, size, None, r, num_protected, xn, q, k, v, False, 0)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--models", nargs="+", default=list(MODELS))
    ap.add_argument("--batch-size", type=int, default=1)
    ap.add_argument("--tokens", type=int, default=158, help="tokens entering the block (158: the fourth block at r=13)")
    ap.add_argument("--r", type=int, default=13)
    ap.add_argument("--calls", type=int, default=100, help="timed calls per setting and round")
    ap.add_argument("--rounds", type=int, default=11)
    ap.add_argument("--out", default=str(ROOT / "nbs" / "data" / "reduce_in_context_cpu.csv"))
    args = ap.parse_args(argv)
    import timm, torch
    from tqdm.auto import tqdm
    from tome_nb.assets import run_info, write_csv
    from tome_nb.bench import keep_first
    from tome_nb.patch import ToMeReduce, block_forward
    reduce, rows, B = ToMeReduce(), [], args.batch_size
    for name in tqdm(args.models, desc="models"):
        torch.manual_seed(0)
        model = timm.create_model(name, pretrained=False).eval()
        blk, C = model.blocks[3], model.embed_dim
        x = torch.randn(B, args.tokens, C)
        size = torch.randint(1, 4, (B, args.tokens, 1)).float()
        tiny = timm.create_model(name, pretrained=False, embed_dim=12, num_heads=model.blocks[0].attn.num_heads,
                                 depth=1).eval().blocks[0]
        with torch.no_grad():
            t = inputs(blk, x, size, args.r)
            t_tiny = inputs(tiny, torch.randn(B, 9, 12), torch.ones(B, 9, 1), 2)
            mlp_in = blk.norm2(x)
            step = lambda s: (lambda: reduce(s))
            settings = {"alone": (t, step(t), None), "after_mlp": (t, step(t), lambda: blk.mlp(mlp_in)),
                        "tiny": (t_tiny, step(t_tiny), None),
                        "block_tome": (t, lambda: block_forward(blk, x, size, None, args.r, 1, reduce), None),
                        "block_free": (t, lambda: block_forward(blk, x, None, None, args.r, 1, keep_first, False), None)}
            times = {k: [] for k in settings}
            for _ in range(3): [fn() for _, fn, _ in settings.values()]      # warm-up
            for _ in range(args.rounds):
                for k, (_, fn, before) in settings.items():
                    total = 0.0
                    for _ in range(args.calls):
                        if before is not None: before()
                        t0 = time.perf_counter(); fn(); total += time.perf_counter() - t0
                    times[k].append(total / args.calls * 1e6)
            for k, (s, fn, _) in settings.items():
                rows.append(dict(model=name, setting=k, tokens=s.x.shape[1], width=s.x.shape[2], r=s.r,
                                 operators=count_ops(fn), us_per_call=round(statistics.median(times[k]), 1),
                                 rounds=args.rounds, calls=args.calls, **run_info("cpu", "float32", B)))
                print(f"{name} {k:9s} {rows[-1]['us_per_call']:7.1f} us, {rows[-1]['operators']} operators", flush=True)
    path = write_csv(rows, args.out)
    print(f"wrote {path} ({len(rows)} rows)")


if __name__ == "__main__":
    main()
