"""Mask-RT-DETR (PP-HGNetV2 backbones, sizes S/M/L/X/H) for instance segmentation."""
from .build import MaskRTDETR, build_mask_rtdetr
from .load import CLASS_DEPENDENT_KEYS, CheckpointMismatchError, load_pretrained
from .preprocess import preprocess

__all__ = ["MaskRTDETR", "build_mask_rtdetr", "load_pretrained", "preprocess", "CLASS_DEPENDENT_KEYS",
           "CheckpointMismatchError"]
