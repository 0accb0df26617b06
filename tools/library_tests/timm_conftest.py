"""Run timm's own model tests on a few ViT families, unpatched or (TOME_PATCH=1) patched by tome_nb at r=0."""
import os
import timm
MODELS = ["test_vit", "test_vit2", "test_vit3", "vit_tiny_patch16_224", "deit_tiny_patch16_224", "deit_tiny_distilled_patch16_224",
          "vit_small_patch14_reg4_dinov2", "vit_wee_patch16_reg1_gap_256", "vit_pwee_patch16_reg1_gap_256",
          "vit_little_patch16_reg4_gap_256"]
if os.environ.get("TOME_PATCH"):
    from tome_nb import apply_patch
    _create = timm.create_model
    def create_model(*args, **kwargs):
        m = _create(*args, **kwargs)
        try: apply_patch(m, r=0)
        except TypeError: pass                                   # a model tome_nb does not support stays as it is
        return m
    timm.create_model = create_model

def pytest_collection_modifyitems(config, items):
    keep, drop = [], []
    for it in items:
        name = getattr(it, "callspec", None) and it.callspec.params.get("model_name")
        (keep if name is not None and name.split(".")[0] in MODELS else drop).append(it)
    items[:] = keep
    config.hook.pytest_deselected(items=drop)
