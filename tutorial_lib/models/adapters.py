"""Model adapters: how a registered model is built, fed, read and exported, looked up by name.

An adapter is the one object the engine talks to about a model (build, reader ops, input conversion, output
parsing into :class:`tutorial_lib.structures.Instances`, export spec). ``Architecture.adapter`` in a config
names it:

=================  ============================================================================================
``paddledet``      paddledet architectures (Mask R-CNN, Cascade Mask R-CNN, SOLOv2), described completely by the
                   config's ``Architecture`` section: :class:`tutorial_lib.models.paddledet.PaddleDetAdapter`
``mask_rtdetr``    this library's Mask-RT-DETR S-H: :class:`tutorial_lib.models.mask_rtdetr.adapter.MaskRTDETRAdapter`
=================  ============================================================================================

A new adapter subclasses :class:`.base.ModelAdapter` (the written contract) and gets one entry in :func:`adapter_class`. The imports below are
plain ones inside the function, so that importing the registry does not import paddle or ppdet.
"""
from ..errors import UserError

ADAPTERS = ("paddledet", "mask_rtdetr")


def adapter_name(cfg):
    """``Architecture.adapter`` of ``cfg``; Mask-RT-DETR models default to ``mask_rtdetr``."""
    arch = cfg.get("Architecture") or {}
    if "family" in arch:
        raise UserError("Architecture.family was renamed Architecture.adapter (paddledet or mask_rtdetr)")
    name = arch.get("adapter")
    if name:
        return str(name)
    model = cfg["Global"].get("model") or ""
    return "mask_rtdetr" if model.startswith("Mask-RT-DETR") else None


def adapter_class(name):
    if name == "paddledet":
        from .paddledet import PaddleDetAdapter

        return PaddleDetAdapter
    if name == "mask_rtdetr":
        from .mask_rtdetr.adapter import MaskRTDETRAdapter

        return MaskRTDETRAdapter
    raise KeyError(name)


def get_adapter(cfg):
    """The adapter object for ``cfg`` (a UserError for configs no adapter can run)."""
    name = adapter_name(cfg)
    if name not in ADAPTERS:
        raise UserError(f"config for {cfg['Global'].get('model')!r} has no usable Architecture section "
                        f"(Architecture.adapter={name!r}, known: {', '.join(ADAPTERS)}); use a bundled model config "
                        "such as MaskRCNN-ResNet50-FPN")
    return adapter_class(name)(cfg.get("Architecture") or {})
