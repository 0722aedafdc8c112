"""Model families: how a registered model is built, trained and exported.

``paddledet`` models (Mask R-CNN, Cascade Mask R-CNN, SOLOv2) are paddledet architectures described
completely by the ``Architecture`` section of their config (:mod:`.ppdet_family`). Mask-RT-DETR is this
library's own implementation (``tutorial_lib.models.mask_rtdetr``), run by :mod:`.mask_rtdetr_family`.
A new family plugs in by adding a class with the same methods as :class:`.ppdet_family.PaddleDetFamily`
and an entry in :data:`FAMILIES`.
"""
from ..errors import UserError

FAMILIES = {"paddledet": "tutorial_lib.engine.ppdet_family:PaddleDetFamily",
            "mask_rtdetr": "tutorial_lib.engine.mask_rtdetr_family:MaskRTDETRFamily"}


def family_name(cfg):
    arch = cfg.get("Architecture") or {}
    name = arch.get("family")
    if name:
        return str(name)
    model = cfg["Global"].get("model") or ""
    if model.startswith("Mask-RT-DETR"):
        return "mask_rtdetr"
    return None


def get_family(cfg):
    """The family object for ``cfg`` (raises a UserError for configs no engine can run)."""
    name = family_name(cfg)
    model = cfg["Global"].get("model")
    if name not in FAMILIES:
        raise UserError(f"config for {model!r} has no usable Architecture section (Architecture.family="
                        f"{name!r}); use a bundled model config such as MaskRCNN-ResNet50-FPN")
    import importlib

    module_name, _, cls_name = FAMILIES[name].partition(":")
    return getattr(importlib.import_module(module_name), cls_name)(cfg.get("Architecture") or {})
