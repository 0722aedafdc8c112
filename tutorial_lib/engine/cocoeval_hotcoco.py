"""COCO bbox / segm evaluation with hotcoco (a Rust reimplementation of pycocotools' ``COCOeval``).

Why: on a 5,000-image split with ~20 instances per image, hotcoco evaluates segm 14-18x faster than pycocotools the
first time and 22-24x on a repeated evaluation (docs/benchmarks.md), and its precision / recall / score arrays come
out bit-for-bit equal to pycocotools' on that split and on every corner case of
tests/engine/test_cocoeval_fast.py (crowd regions, ties, GT id 0, areas from boxes, >100 detections) but one:
pycocotools never counts a match with a ground truth whose id is 0 (it stores matched ids and tests them against 0), hotcoco does. A ground truth with id 0
therefore sends the evaluation to :mod:`.cocoeval_fast`, which reproduces that. ``metrics.coco_metrics`` uses this
module by default when hotcoco is installed; :mod:`.cocoeval_fast` is the fallback and pycocotools stays the
reference in the tests.

The ground truth is converted once per ``COCO`` object (cached on it, like :mod:`.cocoeval_fast` caches its RLEs),
so a training run's per-epoch evaluations pay the conversion once. Neither input is modified.
"""
from . import cocoeval_fast
from .cocoeval_fast import FastCOCOevalResult, check_image_ids, check_iou_type, default_params

CACHE_ATTR = "_tutorial_lib_hotcoco"  # (dataset, anns index, hotcoco.COCO) kept on the pycocotools COCO object


def available():
    """True when hotcoco can be imported (it is in requirements.txt; an environment may still lack it)."""
    try:
        import hotcoco  # noqa: F401
    except ImportError:
        return False
    return True


def _gt(coco_gt):
    import hotcoco

    cached = coco_gt.__dict__.get(CACHE_ATTR)
    if cached is not None and cached[0] is coco_gt.dataset and cached[1] is coco_gt.anns:  # not re-indexed since
        return cached[2]
    gt = hotcoco.COCO(coco_gt.dataset)
    coco_gt.__dict__[CACHE_ATTR] = (coco_gt.dataset, coco_gt.anns, gt)
    return gt


def evaluate(coco_gt, results, iou_type="segm"):
    """Same contract as :func:`.cocoeval_fast.evaluate`: ``coco_gt`` is a ``pycocotools.coco.COCO``, ``results``
    COCO result dicts; returns ``stats``, ``eval`` (precision, recall, scores) and ``params``."""
    import hotcoco

    check_iou_type(iou_type)
    check_image_ids(coco_gt, results)
    if 0 in coco_gt.anns:  # the one pycocotools quirk hotcoco does not share (see the module docstring)
        return cocoeval_fast.evaluate(coco_gt, results, iou_type)
    gt = _gt(coco_gt)
    evaluator = hotcoco.COCOeval(gt, gt.loadRes(results), iou_type)
    evaluator.evaluate()
    evaluator.accumulate()  # summarize() would print from Rust (past sys.stdout): the stats come from the arrays
    out, params = evaluator.eval, evaluator.params
    return FastCOCOevalResult(default_params(params.imgIds, params.catIds, iou_type), out["precision"],
                              out["recall"], out["scores"])
