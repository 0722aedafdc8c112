"""Reading a detector's raw outputs into :class:`tutorial_lib.structures.Instances` (numpy only).

The same reading serves evaluation (dygraph outputs, through an adapter's ``parse_outputs``) and deployment
(Paddle Inference / ONNX Runtime outputs, in :class:`tutorial_lib.predict.Predictor`), so an exported model is
read exactly like the model it was exported from. Layouts, named by ``inference.yml``'s ``arch``:

* box + mask models (Mask R-CNN, Cascade Mask R-CNN, Mask-RT-DETR): ``bbox`` (N, 6: class, score, x1, y1, x2, y2),
  ``bbox_num`` (B,), ``mask`` (N, H, W) at the original image size;
* SOLOv2 (:data:`SEGM_ARCHS`): ``segm`` (N, H, W), ``cate_label``, ``cate_score``, ``bbox_num``; boxes come from
  the masks.
"""
import numpy as np

from ..structures import Instances, masks_to_boxes

SEGM_ARCHS = {"SOLOv2"}  # architectures that output masks only (no boxes, batch size 1 at inference)


def output_names(architecture):
    """Names of the exported model's outputs, in fetch order: ``paddle.jit.save`` flattens the dict a model
    returns in sorted key order."""
    if architecture in SEGM_ARCHS:
        return sorted(["segm", "bbox_num", "cate_label", "cate_score"])
    return sorted(["bbox", "bbox_num", "mask"])


def _numpy(value):
    return value.numpy() if hasattr(value, "numpy") else np.asarray(value)


def parse_outputs(architecture, outputs, batch_size, origin_shapes):
    """Split a batch of raw outputs (tensors or numpy, by name) into one :class:`Instances` per image.

    ``origin_shapes``: each image's (h, w). Empty-image placeholders that paddledet inserts (score 0 or label -1)
    are dropped.
    """
    outputs = {k: _numpy(v) for k, v in outputs.items()}
    bbox_num = np.asarray(outputs["bbox_num"]).reshape(-1).astype(np.int64)
    results, start = [], 0
    for i in range(batch_size):
        n = int(bbox_num[i]) if i < len(bbox_num) else 0
        h, w = (int(v) for v in origin_shapes[i])
        if architecture in SEGM_ARCHS:
            masks = np.asarray(outputs["segm"])[start:start + n, :h, :w] > 0
            class_ids = np.asarray(outputs["cate_label"]).reshape(-1)[start:start + n].astype(np.int64)
            scores = np.asarray(outputs["cate_score"]).reshape(-1)[start:start + n].astype(np.float32)
            boxes = masks_to_boxes(masks)
        else:
            bbox = np.asarray(outputs["bbox"])[start:start + n]
            masks = np.asarray(outputs["mask"])[start:start + n, :h, :w] > 0 if "mask" in outputs else \
                np.zeros((n, h, w), bool)
            class_ids = bbox[:, 0].astype(np.int64)
            scores = bbox[:, 1].astype(np.float32)
            boxes = bbox[:, 2:6].astype(np.float32)
        start += n
        keep = (scores > 0) & (class_ids >= 0)
        if masks.shape[0] != len(keep):  # defensive: a model that returns no mask for placeholders
            masks = np.zeros((len(keep), h, w), bool)
        results.append(Instances((h, w), boxes[keep], scores[keep], class_ids[keep], masks[keep]))
    return results
