"""The fast COCO evaluators -- tutorial_lib.engine.cocoeval_fast (vectorised numpy) and cocoeval_hotcoco (Rust) --
against pycocotools' COCOeval (the reference): the generated sample, a randomised set full of corner cases, and
tiny hand-computed cases. Every comparison runs for both backends (the ``backend`` fixture)."""
import contextlib
import copy
import io
import json

import numpy as np
import pytest
from pycocotools import mask as mask_utils
from pycocotools.coco import COCO
from pycocotools.cocoeval import COCOeval

from tutorial_lib.engine import cocoeval_fast, cocoeval_hotcoco
from tutorial_lib.engine.metrics import coco_metrics
from tutorial_lib.errors import UserError
from tutorial_lib.structures import Instances


def _coco(dataset):
    coco = COCO()
    coco.dataset = copy.deepcopy(dataset)
    with contextlib.redirect_stdout(io.StringIO()):
        coco.createIndex()
    return coco


@pytest.fixture(params=["fast", "hotcoco"])
def backend(request):
    """The backend under test, as the module whose ``evaluate`` is compared with pycocotools."""
    return {"fast": cocoeval_fast, "hotcoco": cocoeval_hotcoco}[request.param]


def _reference(dataset, results, iou_type):
    with contextlib.redirect_stdout(io.StringIO()):
        coco_gt = _coco(dataset)
        evaluator = COCOeval(coco_gt, coco_gt.loadRes(copy.deepcopy(results)), iou_type)
        evaluator.evaluate()
        evaluator.accumulate()
        evaluator.summarize()
    return evaluator


def _assert_same(backend, dataset, results, iou_type):
    """backend == pycocotools on the 12 stats and the precision / recall / score arrays; returns its result."""
    ref = _reference(dataset, results, iou_type)
    untouched = copy.deepcopy(results)
    fast = backend.evaluate(_coco(dataset), results, iou_type)
    assert results == untouched  # the fast backend leaves the results alone (loadRes rewrites them)
    np.testing.assert_allclose(fast.stats, ref.stats, rtol=0, atol=1e-6)
    for key in ("precision", "recall", "scores"):
        assert fast.eval[key].shape == ref.eval[key].shape
        np.testing.assert_allclose(fast.eval[key], ref.eval[key], rtol=0, atol=1e-6, err_msg=key)
    return fast


# ----------------------------------------------------------------------------- (a) the generated sample
def _perturbed_predictions(coco_gt, seed):
    """GT masks shifted / grown / shrunk, some dropped, some relabelled, plus false positives, as Instances."""
    import cv2

    rng = np.random.default_rng(seed)
    predictions = {}
    cat_ids = sorted(coco_gt.getCatIds())
    for image_id in sorted(coco_gt.getImgIds()):
        info = coco_gt.imgs[image_id]
        h, w = info["height"], info["width"]
        masks, classes = [], []
        for ann in coco_gt.loadAnns(coco_gt.getAnnIds(imgIds=[image_id])):
            if rng.random() < 0.15:
                continue
            mask = coco_gt.annToMask(ann).astype(np.uint8)
            mask = np.roll(mask, tuple(rng.integers(-2, 3, 2)), axis=(0, 1))
            op = rng.integers(3)
            if op:
                mask = (cv2.dilate if op == 1 else cv2.erode)(mask, np.ones((3, 3), np.uint8))
            masks.append(mask.astype(bool))
            label = cat_ids.index(ann["category_id"])
            classes.append(label if rng.random() < 0.9 else int(rng.integers(len(cat_ids))))
        for _ in range(int(rng.integers(0, 3))):  # false positives
            y, x = rng.integers(0, h - 20), rng.integers(0, w - 20)
            mask = np.zeros((h, w), bool)
            mask[y:y + rng.integers(4, 20), x:x + rng.integers(4, 20)] = True
            masks.append(mask)
            classes.append(int(rng.integers(len(cat_ids))))
        if not masks:
            continue
        masks = np.stack(masks)
        boxes = np.array([[xs.min(), ys.min(), xs.max() + 1, ys.max() + 1] if len(xs) else [0, 0, 0, 0]
                          for ys, xs in (np.nonzero(m) for m in masks)], np.float32)
        scores = rng.integers(1, 20, len(masks)) / 20  # coarse scores: ties
        predictions[image_id] = Instances((h, w), boxes, scores, np.array(classes), masks)
    return predictions, {k: c for k, c in enumerate(cat_ids)}


@pytest.mark.parametrize("split", ["train", "val"])
def test_generated_sample_matches_pycocotools(backend, sample_dir, split):
    coco_gt = COCO(str(sample_dir / "annotations" / f"instance_{split}.json"))
    predictions, clsid2catid = _perturbed_predictions(coco_gt, seed=1)
    from tutorial_lib.engine.metrics import to_coco_results

    bbox, segm = to_coco_results(predictions, clsid2catid)
    assert len(segm) > 50
    for iou_type, results in (("segm", segm), ("bbox", bbox)):
        fast = _assert_same(backend, coco_gt.dataset, results, iou_type)
        assert 0.2 < fast.stats[0] < 1.0  # a real, non-trivial score
    # coco_metrics with either backend: the same report (pycocotools rewrites the GT in place: give it a copy)
    name = backend.__name__.rsplit("_", 1)[-1]  # "fast" / "hotcoco"
    fast = coco_metrics(_coco(coco_gt.dataset), predictions, clsid2catid, backend=name)
    ref = coco_metrics(_coco(coco_gt.dataset), predictions, clsid2catid, backend="pycocotools")
    assert fast == ref
    assert fast["AP"] > 0.2 and set(fast["per_class"]) == {c["name"] for c in coco_gt.dataset["categories"]}


# ----------------------------------------------------------------------------- (b) randomised corner cases
def _random_set(seed, num_images=240, size=128):
    """GT and results with crowd regions, empty images, images without results, tied scores and IoUs,
    a category without GT, >100 results in one image/category, multi-polygon GTs and every area range."""
    rng = np.random.default_rng(seed)
    cats = [{"id": c, "name": f"c{c}"} for c in (1, 2, 3, 7)]  # 7: never in the GT
    images, anns, segm, bbox = [], [], [], []

    def polygon(x, y, bw, bh):
        return [float(v) for v in (x, y, x + bw, y, x + bw, y + bh, x + bw * 0.5, y + bh * 1.1, x, y + bh)]

    for image_id in range(1, num_images + 1):
        images.append({"id": image_id, "height": size, "width": size, "file_name": f"{image_id}.png"})
        kind = rng.random()
        n_gt = 0 if kind < 0.1 else int(rng.integers(1, 9))
        gts = []
        for _ in range(n_gt):
            bw, bh = (float(v) for v in np.exp(rng.uniform(np.log(3), np.log(120), 2)).round())
            x, y = float(rng.integers(0, max(1, size - bw))), float(rng.integers(0, max(1, size - bh)))
            cat = int(rng.choice([1, 2, 3], p=[0.6, 0.3, 0.1]))
            crowd = int(rng.random() < 0.08)
            polys = [polygon(x, y, bw, bh)]
            if rng.random() < 0.1:  # a second part
                polys.append(polygon(min(x + bw, size - 4), y, 3, 3))
            gts.append((x, y, bw, bh, cat))
            rle = mask_utils.merge(mask_utils.frPyObjects(polys, size, size))
            area = float(mask_utils.area(rle)) if rng.random() < 0.8 else bw * bh  # areas that disagree too
            anns.append({"id": len(anns) + 1, "image_id": image_id, "category_id": cat, "segmentation": polys,
                         "area": area, "bbox": [x, y, bw, bh], "iscrowd": crowd})
            if rng.random() < 0.05:  # an exact duplicate GT: IoU ties between GTs
                anns.append({**anns[-1], "id": len(anns) + 1})
        if 0.1 <= kind < 0.15:
            continue  # GT but no results
        dets = []
        for x, y, bw, bh, cat in gts:
            for _ in range(int(rng.integers(0, 3))):
                jitter = rng.integers(-2, 3, 4) * rng.integers(0, 2)
                dets.append((x + jitter[0], y + jitter[1], max(1, bw + jitter[2]), max(1, bh + jitter[3]),
                             cat if rng.random() < 0.85 else int(rng.choice([1, 2, 3, 7]))))
        for _ in range(int(rng.integers(0, 4))):
            bw, bh = (float(v) for v in rng.integers(2, 60, 2))
            dets.append((float(rng.integers(0, size - bw)), float(rng.integers(0, size - bh)), bw, bh,
                         int(rng.choice([1, 2, 3, 7]))))
        if image_id == 7:  # more than 100 results of one category in one image: maxDets truncation
            dets += [(float(i % 60), float(i // 60 * 10), 12.0, 9.0, 1) for i in range(130)]
        if not dets:
            continue
        polys = [polygon(*d[:4]) for d in dets]
        rles = mask_utils.frPyObjects(polys, size, size)
        for (x, y, bw, bh, cat), rle in zip(dets, rles):
            score = float(rng.integers(1, 11) / 10)  # ten distinct scores: many ties
            segm.append({"image_id": image_id, "category_id": cat, "score": score,
                         "segmentation": {"size": rle["size"], "counts": rle["counts"].decode()}})
            bbox.append({"image_id": image_id, "category_id": cat, "score": score,
                         "bbox": [float(x), float(y), float(bw), float(bh)]})
    order = rng.permutation(len(segm))  # results not grouped by image
    dataset = {"images": images, "annotations": anns, "categories": cats}
    return dataset, [segm[i] for i in order], [bbox[i] for i in order]


@pytest.mark.parametrize("seed", [0, 1])
def test_randomised_corner_cases_match_pycocotools(backend, seed):
    dataset, segm, bbox = _random_set(seed)
    assert sum(a["iscrowd"] for a in dataset["annotations"]) > 10
    for iou_type, results in (("segm", segm), ("bbox", bbox)):
        fast = _assert_same(backend, dataset, results, iou_type)
        k7 = sorted(c["id"] for c in dataset["categories"]).index(7)
        assert (fast.eval["precision"][:, :, k7] == -1).all()  # category without GT
        assert (fast.stats[3:6] > 0).all()  # small, medium and large objects all present


def test_randomised_with_json_round_trip_and_rle_gt(backend):
    """GT given as compressed RLE (str counts) and results read back from JSON: still identical."""
    dataset, segm, _ = _random_set(3, num_images=60)
    coco = _coco(dataset)
    for ann in dataset["annotations"]:
        rle = coco.annToRLE(coco.anns[ann["id"]])
        ann["segmentation"] = {"size": rle["size"], "counts": rle["counts"].decode()}
    _assert_same(backend, dataset, json.loads(json.dumps(segm)), "segm")


# ----------------------------------------------------------------------------- (c) hand-computed cases
def _tiny(gts, dets, cats=(1, 2), image_ids=(1,)):
    """gts: (image, cat, x, y, w, h, iscrowd[, id]); dets: (image, cat, x, y, w, h, score)."""
    dataset = {"images": [{"id": i, "height": 100, "width": 100} for i in image_ids],
               "categories": [{"id": c, "name": f"c{c}"} for c in cats],
               "annotations": [{"id": g[7] if len(g) > 7 else n + 1, "image_id": g[0], "category_id": g[1],
                                "bbox": list(map(float, g[2:6])), "area": float(g[4] * g[5]), "iscrowd": g[6],
                                "segmentation": [[g[2], g[3], g[2] + g[4], g[3], g[2] + g[4], g[3] + g[5], g[2],
                                                  g[3] + g[5]]]} for n, g in enumerate(gts)]}
    results = [{"image_id": d[0], "category_id": d[1], "bbox": list(map(float, d[2:6])), "score": d[6]}
               for d in dets]
    return dataset, results


def _ap(fast, k=0, area=0, max_det=2):
    """AP over thresholds from the precision array (as _per_class reads it)."""
    p = fast.eval["precision"][:, :, k, area, max_det]
    return float(p[p > -1].mean()) if (p > -1).any() else -1.0


HAND_CASES = {
    # name: (gts, dets, expected AP of category 1 over area=all, maxDets=100)
    "exact hit": ([(1, 1, 10, 10, 20, 20, 0)], [(1, 1, 10, 10, 20, 20, 0.9)], 1.0),
    # FP ranked above the TP: precision 1/2 at recall 1, envelope 0.5 everywhere
    "fp first": ([(1, 1, 10, 10, 20, 20, 0)], [(1, 1, 60, 60, 20, 20, 0.9), (1, 1, 10, 10, 20, 20, 0.8)], 0.5),
    # one of two GTs found: precision 1 up to recall 0.5 = 51 of 101 recall thresholds
    "half recall": ([(1, 1, 10, 10, 20, 20, 0), (1, 1, 60, 60, 20, 20, 0)], [(1, 1, 10, 10, 20, 20, 0.9)],
                    51 / 101),
    # equal scores keep result order: FP listed first -> like "fp first"; TP listed first -> AP 1
    "tie fp listed first": ([(1, 1, 10, 10, 20, 20, 0)],
                            [(1, 1, 60, 60, 20, 20, 0.5), (1, 1, 10, 10, 20, 20, 0.5)], 0.5),
    "tie tp listed first": ([(1, 1, 10, 10, 20, 20, 0)],
                            [(1, 1, 10, 10, 20, 20, 0.5), (1, 1, 60, 60, 20, 20, 0.5)], 1.0),
    # a detection inside a crowd region is ignored, not a FP, even ranked first
    "crowd ignores": ([(1, 1, 10, 10, 20, 20, 0), (1, 1, 50, 50, 40, 40, 1)],
                      [(1, 1, 55, 55, 20, 20, 0.9), (1, 1, 10, 10, 20, 20, 0.8)], 1.0),
    # the same region as a normal GT: the first detection (IoU 0.25 with it) is a FP, then one TP of two GTs
    "no crowd": ([(1, 1, 10, 10, 20, 20, 0), (1, 1, 50, 50, 40, 40, 0)],
                 [(1, 1, 55, 55, 20, 20, 0.9), (1, 1, 10, 10, 20, 20, 0.8)], 51 / 101 * 0.5),
    # IoU of 14x20 inside 20x20 is exactly 0.7: a match for thresholds 0.5..0.7 (5 of 10)
    "iou exactly 0.7": ([(1, 1, 10, 10, 20, 20, 0)], [(1, 1, 10, 10, 14, 20, 0.9)], 0.5),
    # a GT with id 0 never counts as matched in pycocotools: its detection is a FP
    "gt id 0": ([(1, 1, 10, 10, 20, 20, 0, 0)], [(1, 1, 10, 10, 20, 20, 0.9)], 0.0),
    # detections of a category absent from GT do not touch category 1
    "other category": ([(1, 1, 10, 10, 20, 20, 0)], [(1, 2, 10, 10, 20, 20, 0.95), (1, 1, 10, 10, 20, 20, 0.9)],
                       1.0),
}


@pytest.mark.parametrize("name", sorted(HAND_CASES))
def test_hand_computed_cases(backend, name):
    gts, dets, expected = HAND_CASES[name]
    dataset, results = _tiny(gts, dets)
    for iou_type in ("bbox", "segm"):
        rows = results
        if iou_type == "segm":  # the same rectangles as masks
            rows = []
            for r in results:
                x, y, w, h = r["bbox"]
                rle = mask_utils.frPyObjects([[x, y, x + w, y, x + w, y + h, x, y + h]], 100, 100)[0]
                rows.append({k: v for k, v in r.items() if k != "bbox"} | {"segmentation": rle})
        fast = _assert_same(backend, dataset, rows, iou_type)
        if iou_type == "bbox":  # rasterised rectangles change areas / IoUs slightly: exact numbers for boxes
            assert _ap(fast) == pytest.approx(expected, abs=1e-12), name


def test_area_ranges_and_max_dets_by_hand(backend):
    # small GT (10x10) found by the second detection; the first is a medium-sized FP
    dataset, results = _tiny([(1, 1, 10, 10, 10, 10, 0)],
                             [(1, 1, 50, 50, 40, 40, 0.9), (1, 1, 10, 10, 10, 10, 0.8)], cats=(1,))
    fast = _assert_same(backend, dataset, results, "bbox")
    assert _ap(fast, area=0) == pytest.approx(0.5)  # all: FP first
    assert _ap(fast, area=1) == pytest.approx(1.0)  # small: the medium FP is ignored
    assert _ap(fast, area=2) == -1 and _ap(fast, area=3) == -1  # no medium / large GT
    stats = fast.stats
    assert stats[6] == 0.0 and stats[7] == 1.0 and stats[8] == 1.0  # AR@1 misses it, AR@10 / AR@100 find it
    assert stats[4] == -1 and stats[5] == -1


def test_images_without_gt_or_results(backend):
    # image 2 has no GT (its detection is a FP), image 3 no results, image 4 neither
    dataset, results = _tiny([(1, 1, 10, 10, 20, 20, 0), (3, 1, 10, 10, 20, 20, 0)],
                             [(1, 1, 10, 10, 20, 20, 0.5), (2, 1, 10, 10, 20, 20, 0.9)], image_ids=(1, 2, 3, 4))
    fast = _assert_same(backend, dataset, results, "bbox")
    # FP (0.9) then TP (0.5): precision 0.5 at recall 0.5 -> 51 recall thresholds at 0.5
    assert _ap(fast) == pytest.approx(51 / 101 * 0.5)


def test_no_results_and_unknown_images(backend):
    dataset, _ = _tiny([(1, 1, 10, 10, 20, 20, 0)], [])
    fast = backend.evaluate(_coco(dataset), [], "segm")
    assert fast.stats[0] == 0.0 and fast.stats[3] == 0.0 and fast.stats[4] == -1
    with pytest.raises(UserError, match="not in the ground truth"):
        backend.evaluate(_coco(dataset), [{"image_id": 99, "category_id": 1, "bbox": [0, 0, 1, 1], "score": 1.0}], "bbox")
    with pytest.raises(UserError, match="iou_type"):
        backend.evaluate(_coco(dataset), [], "keypoints")


def test_coco_metrics_rejects_unknown_backend():
    dataset, _ = _tiny([(1, 1, 10, 10, 20, 20, 0)], [])
    with pytest.raises(UserError, match="backend"):
        coco_metrics(_coco(dataset), {}, {0: 1}, backend="cocoapi")


def test_second_evaluation_on_the_same_gt_object(backend):
    """The GT cache (and pycocotools' in-place rewrite of the GT before it) change nothing."""
    dataset, segm, _ = _random_set(4, num_images=40)
    coco_gt = _coco(dataset)
    first = backend.evaluate(coco_gt, segm, "segm")
    assert getattr(coco_gt, backend.CACHE_ATTR)  # the cached GT (RLEs / hotcoco's COCO)
    again = backend.evaluate(coco_gt, segm, "segm")
    np.testing.assert_array_equal(first.eval["precision"], again.eval["precision"])
    with contextlib.redirect_stdout(io.StringIO()):  # pycocotools turns the GT polygons into RLEs in place
        ref = COCOeval(coco_gt, coco_gt.loadRes(copy.deepcopy(segm)), "segm")
        ref.evaluate()
        ref.accumulate()
    after = backend.evaluate(coco_gt, segm, "segm")
    np.testing.assert_array_equal(after.eval["precision"], ref.eval["precision"])
    np.testing.assert_array_equal(after.eval["precision"], first.eval["precision"])
