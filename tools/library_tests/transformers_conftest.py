# Local harness (not upstream). With TOME_PATCH=1, every transformers model built by the tests is patched with
# tome_nb.apply_patch(model, r=0) right after construction (at the end of the top-level class's own post_init call).
import collections
import inspect
import os
import sys

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

import pytest  # noqa: E402

TOME = os.environ.get("TOME_PATCH") == "1"
STATS = collections.Counter()          # (outcome, class name) -> count
CURRENT = {"nodeid": None}
PER_TEST = collections.defaultdict(list)


def _is_top_level_construction(self, frame):
    """True if post_init is being called directly from type(self).__init__ and no other PreTrainedModel is
    under construction further up the stack (i.e. `self` is not a submodule of a model being built)."""
    import transformers

    caller = frame.f_back  # frame of whoever called post_init
    while caller is not None and caller.f_code.co_name == "post_init":  # overriding post_init (e.g. BackboneMixin)
        caller = caller.f_back
    init = getattr(type(self), "__init__", None)
    code = getattr(init, "__code__", None)
    if caller is None or code is None or caller.f_code is not code:
        return False
    f = caller.f_back
    while f is not None:
        if f.f_code.co_name == "__init__":
            other = f.f_locals.get("self")
            if other is not None and other is not self and isinstance(other, transformers.PreTrainedModel):
                return False
        f = f.f_back
    return True


def _install_patch_hook():
    import transformers
    from tome_nb import apply_patch

    orig_post_init = transformers.PreTrainedModel.post_init

    def post_init(self, *args, **kwargs):
        out = orig_post_init(self, *args, **kwargs)
        frame = inspect.currentframe()
        try:
            top = _is_top_level_construction(self, frame)
        finally:
            del frame
        if top:
            name = type(self).__name__
            try:
                apply_patch(self, r=0)
                STATS[("patched", name)] += 1
                PER_TEST[CURRENT["nodeid"]].append(name)
            except TypeError as e:
                STATS[("TypeError", name + ": " + str(e).splitlines()[0][:120])] += 1
        return out

    post_init._tome_hook = True
    transformers.PreTrainedModel.post_init = post_init


if TOME:
    _install_patch_hook()


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_protocol(item, nextitem):
    CURRENT["nodeid"] = item.nodeid
    yield
    CURRENT["nodeid"] = None


def pytest_terminal_summary(terminalreporter):
    tr = terminalreporter
    tr.section(f"tome harness (TOME_PATCH={'1' if TOME else '0'})")
    if not TOME:
        tr.write_line("unpatched run: no hook installed")
        return
    for (kind, name), n in sorted(STATS.items()):
        tr.write_line(f"{kind:9s} {n:5d}  {name}")
    tr.write_line(f"tests that built at least one patched model: {sum(1 for k, v in PER_TEST.items() if k and v)}")
    out = os.environ.get("TOME_PER_TEST")
    if out:
        with open(out, "w") as fh:
            for k, v in sorted(PER_TEST.items(), key=lambda kv: str(kv[0])):
                fh.write(f"{k}\t{','.join(sorted(set(v)))}\n")


def pytest_configure(config):
    # upstream registers these markers in its root conftest; silence unknown-mark warnings here
    for m in ("generate", "flash_attn_test", "flash_attn_3_test", "flash_attn_4_test", "torch_compile_test",
              "torch_export_test", "training_ci", "tensor_parallel_ci", "bitsandbytes", "is_training_test",
              "is_tensor_parallel_test", "is_pipeline_test", "is_staging_test", "accelerate_tests",
              "not_device_test", "tensor_parallel", "kernels_test", "fsdp_test"):
        config.addinivalue_line("markers", f"{m}: upstream marker")
