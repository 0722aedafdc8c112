"""COCO's matching and average precision, on the polygons of one scene instead of the masks of many images.

A merged scene is one huge "image" whose objects are polygons in map units; rasterising it to COCO masks would cost
memory in proportion to the scene. These functions apply pycocotools' rules (``COCOeval.evaluateImg`` and
``accumulate``) to polygon IoUs instead, so the numbers mean what COCO's mean, and ``tests/pipeline/test_scene_eval.py``
checks them against hotcoco on rasterised masks:

* per class, detections by descending score (stable), the top ``max_dets`` only; each takes the unmatched ground
  truth of highest IoU at or above the threshold, preferring ground truth inside the area range to ground truth
  outside it (which is *ignored*: matching it neither helps nor hurts);
* an unmatched detection whose own area is outside the range is ignored too;
* precision at 101 recall points (0, 0.01, ..., 1), made monotone from the right, averaged; a class without ground
  truth in the range has no value (COCO's -1) and is left out of the mean.
"""
import numpy as np

RECALL_POINTS = np.linspace(0.0, 1.0, 101)
COCO_IOU_THRESHOLDS = tuple(float(t) for t in np.round(np.linspace(0.5, 0.95, 10), 2))


def candidate_ious(predictions, truths):
    """IoU of every (prediction, ground truth) pair that overlaps: ``(pred index, gt index, iou)`` arrays."""
    import shapely

    empty = (np.zeros(0, int), np.zeros(0, int), np.zeros(0))
    if len(predictions) == 0 or len(truths) == 0:
        return empty
    pi, gi = shapely.STRtree(truths).query(predictions, predicate="intersects")  # (input, tree) index pairs
    if len(pi) == 0:
        return empty
    inter = shapely.area(shapely.intersection(predictions[pi], truths[gi]))
    union = shapely.area(predictions[pi]) + shapely.area(truths[gi]) - inter
    iou = np.where(union > 0, inter / np.where(union > 0, union, 1), 0.0)
    keep = iou > 0
    return pi[keep], gi[keep], iou[keep]


def by_prediction(pairs, n_predictions):
    """``pairs`` grouped per prediction: a list of ``(gt indices, ious)``."""
    pi, gi, iou = pairs
    order = np.argsort(pi, kind="stable")
    cuts = np.searchsorted(pi[order], np.arange(1, n_predictions))
    return list(zip(np.split(gi[order], cuts), np.split(iou[order], cuts)))


def greedy_match(order, candidates, gt_ignored, threshold):
    """COCO's matching at one IoU threshold: the gt index each prediction matched (-1: none), predictions taken
    in ``order`` (descending score)."""
    taken = np.zeros(len(gt_ignored), bool)
    matched = np.full(len(candidates), -1)
    for d in order:
        gts, ious = candidates[d]
        ok = ~taken[gts] & (ious >= threshold)
        if not ok.any():
            continue
        preferred = ok & ~gt_ignored[gts]
        pick = preferred if preferred.any() else ok
        j = int(np.argmax(np.where(pick, ious, -1.0)))
        taken[gts[j]] = True
        matched[d] = gts[j]
    return matched


def interpolated_precision(matched, det_ignored, n_truths):
    """Precision at the 101 recall points of detections in score order (None without ground truth)."""
    if n_truths == 0:
        return None
    counted = ~det_ignored
    tp = np.cumsum((matched >= 0) & counted)
    fp = np.cumsum((matched < 0) & counted)
    recall = tp / n_truths
    precision = tp / np.maximum(tp + fp, np.spacing(1))
    precision = np.maximum.accumulate(precision[::-1])[::-1] if len(precision) else precision
    picks = np.searchsorted(recall, RECALL_POINTS, side="left")
    out = np.zeros(len(RECALL_POINTS))
    valid = picks < len(precision)
    out[valid] = precision[picks[valid]]
    return out


def class_precisions(scores, pred_areas, truth_areas, candidates, area_range, thresholds, max_dets):
    """One class: ``[precision curve or None per threshold]`` for the ground truth of ``area_range`` (lo, hi)."""
    lo, hi = area_range
    order = np.argsort(-np.asarray(scores, float), kind="mergesort")[:max_dets]
    gt_ignored = (truth_areas < lo) | (truth_areas > hi)
    n_truths = int((~gt_ignored).sum())
    curves = []
    for threshold in thresholds:
        matched = greedy_match(order, candidates, gt_ignored, threshold)[order]
        outside = (pred_areas[order] < lo) | (pred_areas[order] > hi)
        det_ignored = np.where(matched >= 0, gt_ignored[np.maximum(matched, 0)], outside)
        curves.append(interpolated_precision(matched, det_ignored, n_truths))
    return curves


def mean_precision(curves):
    """COCO's AP: the mean of every precision value of the classes that have ground truth (None if none has)."""
    values = [c for c in curves if c is not None]
    return float(np.mean(values)) if values else None


__all__ = ["COCO_IOU_THRESHOLDS", "RECALL_POINTS", "by_prediction", "candidate_ious", "class_precisions",
           "greedy_match", "interpolated_precision", "mean_precision"]
