"""COCO evaluation, per-class AP, a confusion matrix and a COCO error breakdown.

Predictions are ``{image_id: Instances}`` (:class:`tutorial_lib.structures.Instances`, class ids 0..N-1); ground
truth is the split's COCO JSON. COCO AP comes from hotcoco (:mod:`.cocoeval_hotcoco`) where it is installed, else
from the vectorised :mod:`.cocoeval_fast` -- both give pycocotools' numbers, many times faster -- unless
``backend="pycocotools"`` asks for the reference.
"""
import contextlib
import io

import numpy as np
from pycocotools import mask as mask_utils
from pycocotools.cocoeval import COCOeval

from ..errors import UserError
from ..structures import Instances
from . import cocoeval_fast, cocoeval_hotcoco

STAT_NAMES = ("AP", "AP50", "AP75", "APs", "APm", "APl")
BACKENDS = ("auto", "hotcoco", "fast", "pycocotools")


def encode_mask(mask):
    """Bool (H, W) -> COCO RLE with ``counts`` as str (JSON-ready)."""
    rle = mask_utils.encode(np.asfortranarray(mask.astype(np.uint8)))
    rle["counts"] = rle["counts"].decode("ascii")
    return rle


def to_coco_results(predictions, clsid2catid):
    """Per-image predictions -> COCO result lists ``(bbox_results, segm_results)``."""
    bbox, segm = [], []
    for image_id, inst in predictions.items():
        for k in range(len(inst)):
            x1, y1, x2, y2 = (float(v) for v in inst.boxes[k])
            common = {"image_id": int(image_id), "category_id": int(clsid2catid[int(inst.class_ids[k])]),
                      "score": float(inst.scores[k])}
            bbox.append({**common, "bbox": [x1, y1, x2 - x1, y2 - y1]})
            segm.append({**common, "segmentation": encode_mask(inst.mask(k))})
    return bbox, segm


def resolve_backend(backend="auto"):
    """``auto`` -> ``hotcoco`` where it can be imported, else ``fast``; other names are checked and returned."""
    if backend not in BACKENDS:
        raise UserError(f"unknown COCO evaluation backend {backend!r}; choose one of {', '.join(BACKENDS)}")
    if backend == "auto":
        return "hotcoco" if cocoeval_hotcoco.available() else "fast"
    return backend


def _run_cocoeval(coco_gt, results, iou_type, backend):
    """Evaluate quietly with a resolved ``backend``; return an object with COCOeval's ``stats`` and ``eval`` (None
    when nothing to evaluate)."""
    if not results:
        return None
    if backend != "pycocotools":
        return (cocoeval_hotcoco if backend == "hotcoco" else cocoeval_fast).evaluate(coco_gt, results, iou_type)
    with contextlib.redirect_stdout(io.StringIO()):
        coco_dt = coco_gt.loadRes(results)
        evaluator = COCOeval(coco_gt, coco_dt, iou_type)
        evaluator.evaluate()
        evaluator.accumulate()
        evaluator.summarize()
    return evaluator


def _per_class(evaluator, coco_gt):
    """AP and AP50 per category (None for a class without ground truth in this split)."""
    out = {}
    cat_ids = coco_gt.getCatIds()
    column = {cat_id: k for k, cat_id in enumerate(sorted(cat_ids))}  # COCOeval's category axis is sorted by id
    for cat_id in cat_ids:
        k = column[cat_id]
        name = coco_gt.cats[cat_id]["name"]
        if evaluator is None:
            has_gt = bool(coco_gt.getAnnIds(catIds=[cat_id]))
            out[name] = {"AP": 0.0 if has_gt else None, "AP50": 0.0 if has_gt else None}
            continue
        precision = evaluator.eval["precision"][:, :, k, 0, -1]  # iou, recall, class, area=all, maxDets=100
        ap = precision[precision > -1]
        ap50 = precision[0][precision[0] > -1]
        out[name] = {"AP": float(ap.mean()) if ap.size else None, "AP50": float(ap50.mean()) if ap50.size else None}
    return out


def coco_metrics(coco_gt, predictions, clsid2catid, backend="auto"):
    """Mask and box AP (COCO 0.5:0.95), AP50, AP75, APs/m/l and per-class AP, as fractions in [0, 1].

    Top-level ``AP``/``AP50``/... are mask (segmentation) numbers; ``bbox_AP``/... are box numbers.
    ``backend``: ``"auto"`` (default: hotcoco if installed, else fast), ``"hotcoco"`` (:mod:`.cocoeval_hotcoco`),
    ``"fast"`` (:mod:`.cocoeval_fast`) or ``"pycocotools"`` (``COCOeval``, the reference).
    """
    backend = resolve_backend(backend)
    bbox_res, segm_res = to_coco_results(predictions, clsid2catid)
    metrics = {}
    per_class = {}
    for iou_type, prefix, results in (("segm", "", segm_res), ("bbox", "bbox_", bbox_res)):
        evaluator = _run_cocoeval(coco_gt, results, iou_type, backend)
        stats = evaluator.stats[:6] if evaluator is not None else np.zeros(6)
        for name, value in zip(STAT_NAMES, stats):
            metrics[prefix + name] = round(float(value), 6)  # -1: no object of that size (COCO)
        for cls_name, values in _per_class(evaluator, coco_gt).items():
            entry = per_class.setdefault(cls_name, {})
            entry["mask_AP" if not prefix else "bbox_AP"] = values["AP"]
            entry["mask_AP50" if not prefix else "bbox_AP50"] = values["AP50"]
    metrics["per_class"] = per_class
    return metrics


# ----------------------------------------------------------------------------- confusion and error analysis
def _gt_of_image(coco_gt, image_id, catid2clsid):
    anns = [a for a in coco_gt.loadAnns(coco_gt.getAnnIds(imgIds=[image_id])) if not a.get("iscrowd", 0)]
    info = coco_gt.imgs[image_id]
    rles = [coco_gt.annToRLE(a) for a in anns]
    return rles, np.array([catid2clsid[a["category_id"]] for a in anns], np.int64), (info["height"], info["width"])


def match_image(inst, gt_rles, gt_classes):
    """Classify one image's predictions against its ground truth by mask IoU, highest score first.

    Returns ``(entries, missed)``: one ``(kind, gt_class or None, pred_class)`` per prediction, where kind is
    correct (right class, IoU >= 0.5), confusion (another class's object at IoU >= 0.5, or at >= 0.1 with no
    object of its own class near), localisation (own class, 0.1 <= IoU < 0.5), duplicate (own-class object
    already found) or background (IoU < 0.1 with everything); ``missed`` are the classes of ground truths
    that no prediction found. ``gt_class`` is set when the prediction took that ground truth (IoU >= 0.5).
    """
    order = np.argsort(-inst.scores, kind="stable")
    pred_rles = [encode_mask(inst.mask(i)) for i in order]
    classes = inst.class_ids[order]
    if gt_rles and pred_rles:
        ious = np.asarray(mask_utils.iou(pred_rles, gt_rles, [0] * len(gt_rles))).reshape(len(pred_rles), -1)
    else:
        ious = np.zeros((len(pred_rles), len(gt_rles)))
    matched = np.zeros(len(gt_rles), bool)
    entries = []
    for p, cls in enumerate(classes):
        same = gt_classes == cls
        free_same = np.where(same & ~matched, ious[p], -1.0)
        free_any = np.where(~matched, ious[p], -1.0)
        best_same = ious[p][same].max() if same.any() else 0.0
        if free_same.size and free_same.max() >= 0.5:
            g = int(free_same.argmax())
            matched[g] = True
            entries.append(("correct", int(gt_classes[g]), int(cls)))
        elif best_same >= 0.5:
            entries.append(("duplicate", None, int(cls)))
        elif free_any.size and free_any.max() >= 0.5:
            g = int(free_any.argmax())
            matched[g] = True
            entries.append(("confusion", int(gt_classes[g]), int(cls)))
        elif best_same >= 0.1:
            entries.append(("localisation", None, int(cls)))
        elif ious[p].size and ious[p].max() >= 0.1:
            entries.append(("confusion", None, int(cls)))
        else:
            entries.append(("background", None, int(cls)))
    missed = [int(c) for c, m in zip(gt_classes, matched) if not m]
    return entries, missed


ERROR_KINDS = ("correct", "localisation", "confusion", "duplicate", "background", "missed")
# the predictions that take no object, besides background: each kind gets its own row under the confusion matrix
NO_OBJECT_KINDS = ("localisation", "confusion", "duplicate")


def error_analysis(coco_gt, predictions, catid2clsid, num_classes, score_threshold=0.5):
    """Confusion matrix and error breakdown of the predictions scoring at least ``score_threshold``, in one
    vocabulary (:mod:`tutorial_lib.figures` draws both).

    ``matrix``: one row per ground-truth class plus ``background``, one column per predicted class plus
    ``missed``. A class row holds each object of that class once: under the class of the prediction that took it
    (IoU >= 0.5; the diagonal is ``correct``) or under ``missed``. The ``background`` row holds the predictions
    with no object of any class within IoU 0.1, so it sums to ``counts["background"]``. The other predictions that
    took no object are in ``no_object`` (one row per kind of :data:`NO_OBJECT_KINDS`, one column per predicted
    class): matrix and counts then agree everywhere (diagonal = correct, off-diagonal + the confusion row =
    confusion, the missed column = missed).
    """
    matrix = np.zeros((num_classes + 1, num_classes + 1), np.int64)
    no_object = np.zeros((len(NO_OBJECT_KINDS), num_classes), np.int64)
    counts = dict.fromkeys(ERROR_KINDS, 0)
    for image_id in sorted(coco_gt.imgs):
        gt_rles, gt_classes, size = _gt_of_image(coco_gt, image_id, catid2clsid)
        inst = predictions.get(image_id) or Instances.empty(size)
        entries, missed = match_image(inst.filter(score_threshold), gt_rles, gt_classes)
        for kind, gt_class, pred_class in entries:
            counts[kind] += 1
            if gt_class is not None:
                matrix[gt_class, pred_class] += 1
            elif kind == "background":
                matrix[num_classes, pred_class] += 1
            else:
                no_object[NO_OBJECT_KINDS.index(kind), pred_class] += 1
        for g in missed:
            matrix[g, num_classes] += 1
            counts["missed"] += 1
    return {"matrix": matrix, "no_object": no_object, "counts": counts, "score_threshold": score_threshold}


def confusion_data(analysis, labels):
    """The confusion matrix of :func:`error_analysis` as ``evaluate_result.json`` stores it (and
    :func:`tutorial_lib.figures.plot_confusion` draws it)."""
    labels = list(labels)
    return {"rows": labels + ["background"], "cols": labels + ["missed"], "matrix": analysis["matrix"].tolist(),
            "no_object": {"rows": list(NO_OBJECT_KINDS), "cols": labels, "matrix": analysis["no_object"].tolist()},
            "score_threshold": analysis["score_threshold"], "iou": 0.5}
