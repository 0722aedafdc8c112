"""Reading a detector's raw outputs into :class:`tutorial_lib.structures.Instances` (numpy only).

The same reading serves evaluation (dygraph outputs, through an adapter's ``parse_outputs``) and deployment
(Paddle Inference / ONNX Runtime outputs, in :class:`tutorial_lib.predict.Predictor`), so an exported model is
read exactly like the model it was exported from. Layouts, named by ``inference.yml``'s ``arch``:

* box + mask models (Mask R-CNN, Cascade Mask R-CNN, Mask-RT-DETR): ``bbox`` (N, 6: class, score, x1, y1, x2, y2),
  ``bbox_num`` (B,), ``mask`` (N, H, W) at the original image size -- or, for the R-CNN models this project
  exports (``box_mask_threshold`` given), ``mask`` (N, M, M): each detection's mask probabilities on its box, which
  :func:`paste_box_masks` pastes here as box-sized crops. Pasting in the graph (paddledet's ``MaskPostProcess``)
  costs N x H x W floats several times over, before any score threshold; here only around each box;
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


def _axis_weights(a0, a1, m, size):
    """Bilinear weights (pixels x m) of one box axis, as ``grid_sample(align_corners=False)`` with zero padding
    computes them for the pixel centres of ``[0, size)``, restricted to the pixels that can get a non-zero value;
    returns ``(first pixel, weights)``."""
    extent = a1 - a0
    if not extent > 0:
        return 0, np.zeros((0, m), np.float32)
    first = max(0, int(np.floor(a0 - extent / m)))
    last = min(size, int(np.ceil(a1 + extent / m)) + 1)
    centres = np.arange(first, last, dtype=np.float32) + np.float32(0.5)
    grid = (centres - np.float32(a0)) / np.float32(extent) * np.float32(2) - np.float32(1)
    source = ((grid + np.float32(1)) * np.float32(m) - np.float32(1)) / np.float32(2)  # input pixel coordinate
    low = np.floor(source)
    frac = (source - low).astype(np.float32)
    low = low.astype(np.int64)
    weights = np.zeros((len(centres), m + 2), np.float32)  # columns -1 and m stand for the zero padding
    rows = np.arange(len(centres))
    weights[rows, np.clip(low, -1, m) + 1] += np.float32(1) - frac
    weights[rows, np.clip(low + 1, -1, m) + 1] += frac
    return first, weights[:, 1:m + 1]


def paste_box_masks(probabilities, boxes, image_size, threshold=0.5):
    """Box-relative mask probabilities (N, M, M) and their boxes (N, 4, x1 y1 x2 y2, image pixels) -> tight
    bool crops and their (x, y) offsets, equal to paddledet's ``paste_mask`` (bilinear ``grid_sample`` over the
    whole image, ``align_corners=False``, zero padding) followed by ``>= threshold``, up to float rounding, and
    laid out as :meth:`Instances.to_cropped` lays out full masks."""
    h, w = image_size
    crops, offsets = [], []
    for prob, box in zip(probabilities, boxes):
        x0, y0, x1, y1 = (float(v) for v in box)
        top, wy = _axis_weights(y0, y1, prob.shape[0], h)
        left, wx = _axis_weights(x0, x1, prob.shape[1], w)
        mask = (wy @ prob.astype(np.float32) @ wx.T) >= threshold
        rows, cols = np.flatnonzero(mask.any(axis=1)), np.flatnonzero(mask.any(axis=0))
        if len(rows):
            crops.append(mask[rows[0]:rows[-1] + 1, cols[0]:cols[-1] + 1])
            offsets.append((left + int(cols[0]), top + int(rows[0])))
        else:
            crops.append(np.zeros((0, 0), bool))
            offsets.append((int(max(0, x0)), int(max(0, y0))))
    return crops, np.asarray(offsets, np.int64).reshape(-1, 2)


def parse_outputs(architecture, outputs, batch_size, origin_shapes, box_mask_threshold=None):
    """Split a batch of raw outputs (tensors or numpy, by name) into one :class:`Instances` per image.

    ``origin_shapes``: each image's (h, w). Empty-image placeholders that paddledet inserts (score 0 or label -1)
    are dropped. ``box_mask_threshold``: ``mask`` holds box-relative probabilities, pasted with this threshold
    (masks come out box-cropped); None: ``mask`` is at the image size.
    """
    outputs = {k: _numpy(v) for k, v in outputs.items()}
    bbox_num = np.asarray(outputs["bbox_num"]).reshape(-1).astype(np.int64)
    results, start = [], 0
    for i in range(batch_size):
        n = int(bbox_num[i]) if i < len(bbox_num) else 0
        rows, start = slice(start, start + n), start + n
        h, w = (int(v) for v in origin_shapes[i])
        if architecture in SEGM_ARCHS:
            masks = np.asarray(outputs["segm"])[rows, :h, :w] > 0
            class_ids = np.asarray(outputs["cate_label"]).reshape(-1)[rows].astype(np.int64)
            scores = np.asarray(outputs["cate_score"]).reshape(-1)[rows].astype(np.float32)
            boxes = masks_to_boxes(masks)
        else:
            bbox = np.asarray(outputs["bbox"])[rows]
            class_ids = bbox[:, 0].astype(np.int64)
            scores = bbox[:, 1].astype(np.float32)
            boxes = bbox[:, 2:6].astype(np.float32)
            if box_mask_threshold is not None:  # probabilities on each box: paste the kept ones only
                keep = (scores > 0) & (class_ids >= 0)
                crops, offsets = paste_box_masks(np.asarray(outputs["mask"])[rows][keep], boxes[keep], (h, w),
                                                 box_mask_threshold)
                results.append(Instances((h, w), boxes[keep], scores[keep], class_ids[keep], crops, offsets))
                continue
            masks = np.asarray(outputs["mask"])[rows, :h, :w] > 0 if "mask" in outputs else np.zeros((n, h, w), bool)
        keep = (scores > 0) & (class_ids >= 0)
        if masks.shape[0] != len(keep):  # defensive: a model that returns no mask for placeholders
            masks = np.zeros((len(keep), h, w), bool)
        results.append(Instances((h, w), boxes[keep], scores[keep], class_ids[keep], masks[keep]))
    return results
