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
            metrics[prefix + name] = round(max(float(value), 0.0), 6)
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


def error_analysis(coco_gt, predictions, catid2clsid, num_classes, score_threshold=0.5):
    """Confusion matrix and error breakdown of the predictions scoring at least ``score_threshold``.

    The matrix has one row per ground-truth class plus ``background`` (predictions that took no object)
    and one column per predicted class plus ``missed`` (objects no prediction found).
    """
    matrix = np.zeros((num_classes + 1, num_classes + 1), np.int64)
    counts = dict.fromkeys(ERROR_KINDS, 0)
    for image_id in sorted(coco_gt.imgs):
        gt_rles, gt_classes, size = _gt_of_image(coco_gt, image_id, catid2clsid)
        inst = predictions.get(image_id) or Instances.empty(size)
        entries, missed = match_image(inst.filter(score_threshold), gt_rles, gt_classes)
        for kind, gt_class, pred_class in entries:
            counts[kind] += 1
            matrix[num_classes if gt_class is None else gt_class, pred_class] += 1
        for g in missed:
            matrix[g, num_classes] += 1
            counts["missed"] += 1
    return {"matrix": matrix, "counts": counts, "score_threshold": score_threshold}


def plot_confusion(matrix, names, path, title="confusion matrix (mask IoU >= 0.5)"):
    from matplotlib.figure import Figure  # no pyplot: switching its backend would stop a notebook's inline plots

    labels = list(names)
    rows, cols = labels + ["background"], labels + ["missed"]
    fig = Figure(figsize=(1.0 + 0.55 * len(cols), 1.0 + 0.5 * len(rows)))
    ax = fig.subplots()
    ax.imshow(np.log1p(matrix), cmap="Blues")
    for i in range(matrix.shape[0]):
        for j in range(matrix.shape[1]):
            if matrix[i, j]:
                ax.text(j, i, str(matrix[i, j]), ha="center", va="center", fontsize=8)
    ax.set_xticks(range(len(cols)), cols, rotation=60, ha="right", fontsize=8)
    ax.set_yticks(range(len(rows)), rows, fontsize=8)
    ax.set_xlabel("predicted"); ax.set_ylabel("ground truth"); ax.set_title(title, fontsize=9)
    fig.tight_layout(); fig.savefig(path, dpi=110)
    return str(path)


def plot_errors(counts, path, title="error breakdown"):
    from matplotlib.figure import Figure  # no pyplot (see plot_confusion)

    kinds = list(ERROR_KINDS)
    colors = ["#2ca02c", "#ff7f0e", "#9467bd", "#8c564b", "#d62728", "#7f7f7f"]
    fig = Figure(figsize=(6.5, 3.2))
    ax = fig.subplots()
    ax.bar(kinds, [counts[k] for k in kinds], color=colors)
    for i, k in enumerate(kinds):
        ax.text(i, counts[k], str(counts[k]), ha="center", va="bottom", fontsize=8)
    ax.set_ylabel("count"); ax.set_title(title, fontsize=9)
    fig.tight_layout(); fig.savefig(path, dpi=110)
    return str(path)
