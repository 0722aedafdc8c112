"""The Mask-RT-DETR detector (backbone -> neck -> transformer -> post-process) and its builder."""
import numpy as np
import paddle
import paddle.nn as nn

from .backbone import PPHGNetV2
from .configs import EVAL_SIZE, NECK_CONFIGS, NUM_PROTOTYPES, POSTPROCESS_CONFIG, SIZES, TRANSFORMER_CONFIG
from .decoder import MaskRTDETRTransformer
from .encoder import MaskHybridEncoder
from .postprocess import DETRPostProcess

__all__ = ["MaskRTDETR", "build_mask_rtdetr"]


class MaskRTDETR(nn.Layer):
    """State-dict order ``backbone.*``, ``transformer.*``, ``neck.*`` like PaddleDetection's DETR.

    * eval ``forward(inputs)`` with ``{'image', 'im_shape', 'scale_factor'}`` -> ``{'bbox', 'bbox_num', 'mask'}``
    * ``forward_raw(image)`` -> ``{'logits', 'boxes' (sigmoid cxcywh), 'masks' (stride-4 logits)}``
    * train ``forward(inputs)`` with ``gt_class``, ``gt_bbox`` (cxcywh, normalised), ``gt_segm`` -> loss dict
    """

    def __init__(self, backbone, neck, transformer, post_process, loss=None):
        super().__init__()
        self.backbone = backbone
        self.transformer = transformer
        self.neck = neck
        self.post_process = post_process
        self.loss = loss

    def _features(self, image):
        feats = self.backbone(image)
        self.transformer._record("backbone_outs", feats)
        enc_feats, mask_feat = self.neck(feats)
        self.transformer._record("neck_enc_feats", enc_feats)
        self.transformer._record("neck_mask_feat", mask_feat)
        return enc_feats, mask_feat

    def forward_raw(self, image):
        """Raw head outputs of the ``eval_idx`` decoder layer (eval mode)."""
        enc_feats, mask_feat = self._features(image)
        logits, boxes, masks, _, _, _ = self.transformer(enc_feats, mask_feat)
        return {"logits": logits[-1], "boxes": boxes[-1], "masks": masks[-1]}

    def forward(self, inputs):
        if self.training:
            inputs = dict(inputs)
            for key, dtype in (("gt_class", "int64"), ("gt_bbox", "float32"), ("gt_segm", "float32")):
                if key in inputs:
                    inputs[key] = [paddle.to_tensor(np.asarray(g) if not isinstance(g, paddle.Tensor) else g)
                                   .astype(dtype) for g in inputs[key]]
            enc_feats, mask_feat = self._features(inputs["image"])
            out = self.transformer(enc_feats, mask_feat, gt_meta=inputs)
            assert self.loss is not None, "build the model with a loss to train it"
            return self.loss(out, inputs)
        raw = self.forward_raw(inputs["image"])
        bbox, bbox_num, mask = self.post_process(raw["boxes"], raw["logits"], raw["masks"],
                                                 inputs["im_shape"], inputs["scale_factor"])
        return {"bbox": bbox, "bbox_num": bbox_num, "mask": mask}


def build_mask_rtdetr(size: str, num_classes: int = 80, with_loss: bool = True) -> MaskRTDETR:
    """Build Mask-RT-DETR-{S,M,L,X,H} with PaddleDetection's key names, shapes and default initialisers."""
    size = size.upper()
    if size not in SIZES:
        raise ValueError(f"unknown Mask-RT-DETR size {size!r}; expected one of {SIZES}")
    backbone = PPHGNetV2(size, return_idx=(0, 1, 2, 3))
    neck_cfg = dict(NECK_CONFIGS[size])
    neck = MaskHybridEncoder(in_channels=backbone.out_channels, feat_strides=[4, 8, 16, 32],
                             num_prototypes=NUM_PROTOTYPES[size], eval_size=EVAL_SIZE, **neck_cfg)
    tcfg = dict(TRANSFORMER_CONFIG)
    transformer = MaskRTDETRTransformer(num_classes=num_classes, num_prototypes=NUM_PROTOTYPES[size],
                                        backbone_feat_channels=[neck_cfg["hidden_dim"]] * 3,
                                        eval_size=EVAL_SIZE, **tcfg)
    post = DETRPostProcess(num_classes=num_classes, **POSTPROCESS_CONFIG)
    loss = None
    if with_loss:
        from .loss import MaskDINOLoss
        loss = MaskDINOLoss(num_classes=num_classes)
    return MaskRTDETR(backbone, neck, transformer, post, loss)
