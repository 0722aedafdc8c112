"""COCO evaluation speed: pycocotools' COCOeval against tutorial_lib's two fast backends (vectorised numpy, hotcoco).

Generates a seeded synthetic COCO split (default 5,000 images of 512 px, about 20 instances each, 10 classes,
2 % crowd instances, empty images, perturbed-GT predictions with duplicates, class confusions, false positives
and scores rounded to 0.01 so that ties occur), evaluates segm and bbox with the three backends, prints the times
and the speed-ups, and asserts that the 12 stats of both iou types agree to 1e-6 (the goal is >= 10x for segm).

    OMP_NUM_THREADS=2 python benchmarks/coco_eval.py [--images 5000] [--seed 0] [--profile]
"""
import argparse
import contextlib
import copy
import cProfile
import io
import pstats
import time

import numpy as np
from pycocotools import mask as mask_utils
from pycocotools.coco import COCO
from pycocotools.cocoeval import COCOeval

from tutorial_lib.data.categories import coco_categories
from tutorial_lib.engine import cocoeval_fast, cocoeval_hotcoco


def _blobs(rng, shapes, vertices=12, roughness=0.15):
    """Rough rotated ellipses (rows of cx, cy, radius, aspect, angle) as flat COCO polygons."""
    cx, cy, radius, aspect, angle = (shapes[:, i:i + 1] for i in range(5))
    t = np.linspace(0, 2 * np.pi, vertices, endpoint=False)[None]
    r = radius * (1 + roughness * rng.uniform(-1, 1, (len(shapes), vertices)))
    x, y = r * np.cos(t), aspect * r * np.sin(t)
    c, s = np.cos(angle), np.sin(angle)
    return np.stack([cx + c * x - s * y, cy + s * x + c * y], 2).reshape(len(shapes), -1).round(2).tolist()


def _shapes(rng, n, size):
    """n random (cx, cy, radius, aspect, angle): log-uniform radius, so areas span small, medium and large."""
    radius = np.exp(rng.uniform(np.log(3), np.log(110), n))
    centre = radius[:, None] + rng.uniform(0, 1, (n, 2)) * (size - 2 * radius[:, None])
    return np.column_stack([centre, radius, rng.uniform(0.3, 1.0, n), rng.uniform(0, np.pi, n)])


def make_split(num_images=5000, per_image=20, size=512, num_classes=10, seed=0):
    """Seeded synthetic split: (COCO ground truth dict, segm results, bbox results)."""
    rng = np.random.default_rng(seed)
    images, annotations, segm, bbox = [], [], [], []
    for image_id in range(1, num_images + 1):
        images.append({"id": image_id, "file_name": f"{image_id:05d}.jpg", "height": size, "width": size})
        n_gt = 0 if rng.random() < 0.03 else int(rng.integers(per_image // 2, per_image * 3 // 2 + 1))
        shapes = _shapes(rng, n_gt, size)
        labels = rng.integers(0, num_classes, n_gt)
        crowd = (rng.random(n_gt) < 0.02).astype(int)
        # each object is found with p = 0.9, and found twice with p = 0.1; 10 % of the finds get a random class
        copies = (rng.random(n_gt) < 0.9).astype(int) + (rng.random(n_gt) < 0.1)
        src = np.repeat(np.arange(n_gt), copies)
        found = shapes[src].copy()
        found[:, :2] += rng.normal(0, 1, (len(src), 2)) * found[:, 2:3] * 0.08
        found[:, 2] *= rng.uniform(0.85, 1.15, len(src))
        found[:, 4] += rng.normal(0, 0.1, len(src))
        dt_labels = np.where(rng.random(len(src)) < 0.9, labels[src], rng.integers(0, num_classes, len(src)))
        n_fp = int(rng.poisson(3))  # false positives
        dt_shapes = np.concatenate([found, _shapes(rng, n_fp, size)])
        dt_labels = np.concatenate([dt_labels, rng.integers(0, num_classes, n_fp)])
        scores = rng.uniform(0.05, 1.0, len(dt_shapes)).round(2)  # rounded: ties
        if n_gt:
            polys = _blobs(rng, shapes)
            rles = mask_utils.frPyObjects(polys, size, size)
            areas, boxes = mask_utils.area(rles), mask_utils.toBbox(rles)
            for k in range(n_gt):
                annotations.append({"id": len(annotations) + 1, "image_id": image_id,
                                    "category_id": int(labels[k]) + 1, "segmentation": [polys[k]],
                                    "area": float(areas[k]), "bbox": boxes[k].tolist(), "iscrowd": int(crowd[k])})
        if len(dt_shapes) and rng.random() > 0.02:  # a few images get no predictions at all
            rles = mask_utils.frPyObjects(_blobs(rng, dt_shapes), size, size)
            boxes = mask_utils.toBbox(rles)
            for k, rle in enumerate(rles):
                common = {"image_id": image_id, "category_id": int(dt_labels[k]) + 1, "score": float(scores[k])}
                segm.append({**common, "segmentation": {"size": rle["size"], "counts": rle["counts"].decode()}})
                bbox.append({**common, "bbox": boxes[k].tolist()})
    gt = {"images": images, "annotations": annotations, "categories": coco_categories()[:num_classes]}
    return gt, segm, bbox


def coco_from_dict(dataset):
    coco = COCO()
    coco.dataset = dataset
    with contextlib.redirect_stdout(io.StringIO()):
        coco.createIndex()
    return coco


def run_pycocotools(coco_gt, results, iou_type):
    with contextlib.redirect_stdout(io.StringIO()):
        evaluator = COCOeval(coco_gt, coco_gt.loadRes(results), iou_type)
        evaluator.evaluate()
        evaluator.accumulate()
        evaluator.summarize()
    return evaluator


RUNNERS = {"pycocotools": run_pycocotools, "fast": cocoeval_fast.evaluate, "hotcoco": cocoeval_hotcoco.evaluate}


def _timed(fn, profile, label):
    profiler = cProfile.Profile() if profile else None
    start, start_cpu = time.perf_counter(), time.process_time()
    if profiler:
        profiler.enable()
    out = fn()
    if profiler:
        profiler.disable()
    wall, cpu = time.perf_counter() - start, time.process_time() - start_cpu
    if profiler:
        print(f"--- {label}")
        pstats.Stats(profiler).sort_stats("tottime").print_stats(12)
    return out, wall, cpu


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=5000)
    parser.add_argument("--per_image", type=int, default=20)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--warm", action="store_true",
                        help="also time a second segm evaluation on the same GT object (GT masks already RLE: "
                             "pycocotools rewrote them in place, the fast backend cached them), as in a training loop")
    parser.add_argument("--profile", action="store_true", help="print cProfile's top functions of every backend")
    args = parser.parse_args()
    start = time.perf_counter()
    gt, segm, bbox = make_split(args.images, args.per_image, seed=args.seed)
    print(f"generated {len(gt['images'])} images, {len(gt['annotations'])} GT instances "
          f"({sum(a['iscrowd'] for a in gt['annotations'])} crowd), {len(segm)} predictions "
          f"in {time.perf_counter() - start:.1f} s")
    rows, failures = [], []
    runs = [("segm", segm, False), ("bbox", bbox, False)] + ([("segm", segm, True)] if args.warm else [])
    for iou_type, results, warm in runs:
        label = iou_type + (" (warm)" if warm else "")
        measured = {}
        for backend in ("pycocotools", "fast", "hotcoco"):
            # a fresh GT object and result copies: pycocotools rewrites both in place (RLE masks, ids, areas)
            coco_gt = coco_from_dict(copy.deepcopy(gt))
            copies = [copy.deepcopy(results) for _ in range(1 + warm)]  # copied outside the timed part
            run = RUNNERS[backend]
            if warm:
                run(coco_gt, copies.pop(), iou_type)  # first evaluation, untimed
            measured[backend] = _timed(lambda: run(coco_gt, copies.pop(), iou_type), args.profile,
                                       f"{backend} {label}")
        ref, ref_wall, ref_cpu = measured["pycocotools"]
        for backend in ("fast", "hotcoco"):
            out, wall, cpu = measured[backend]
            diff = float(np.abs(np.asarray(out.stats) - np.asarray(ref.stats)).max())
            prec_diff = float(np.abs(out.eval["precision"] - ref.eval["precision"]).max())
            rows.append((label, backend, ref_wall, wall, ref_cpu, cpu, diff, prec_diff, float(ref.stats[0])))
            if diff > 1e-6 or prec_diff > 1e-6:
                failures.append(f"{backend} {label}")
    print(f"\n{args.images} images, seed {args.seed} (times exclude generating the data and the result lists)\n")
    print("| iou type | backend | pycocotools wall | backend wall | speed-up (wall) | pycocotools CPU | backend CPU "
          "| speed-up (CPU) | max abs diff (stats, precision) | AP |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    for label, backend, ref_s, s, ref_c, c, diff, prec_diff, ap in rows:
        print(f"| {label} | {backend} | {ref_s:.2f} s | {s:.2f} s | **{ref_s / s:.1f}×** | {ref_c:.2f} s | {c:.2f} s "
              f"| {ref_c / c:.1f}× | {diff:.0e}, {prec_diff:.0e} | {ap:.4f} |")
    assert not failures, f"stats differ from pycocotools for {failures}"
    print(f"\n{12 * len(rows)} stats agree with pycocotools to 1e-6")

if __name__ == "__main__":
    main()
