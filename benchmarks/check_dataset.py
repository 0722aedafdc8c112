"""check_dataset at scale: wall time and peak RSS on generated COCO datasets of 1,000 and 10,000 images
(10 annotations per image; goal: <= 30 s at 10,000 images on 2 cores, peak RSS flat in the image count).

Each size is checked (the whole ``Global.mode=check_dataset``) in a fresh subprocess, so that its peak RSS (VmHWM)
is its own; the CPU time of all its threads and the machine's load average are printed too, since wall time on a
shared machine says little by itself. The images are a few distinct JPEG
encodings written under 10,000 distinct file names; the polygons are seeded random 12-point outlines.

    OMP_NUM_THREADS=2 python benchmarks/check_dataset.py [--sizes 1000 10000] [--image_size 512] [--workdir DIR]
"""
import argparse
import io
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from PIL import Image
from pycocotools import mask as mask_utils

from tutorial_lib.data.categories import NWPU_CLASSES, NWPU_INSTANCE_COUNTS, coco_categories

DISTINCT_IMAGES = 8
POINTS = 12
VAL_FRACTION = 0.1


def _jpeg_variants(size, rng):
    """A few distinct, realistic-size JPEG encodings (smooth noise, so that they compress like photos)."""
    variants = []
    for _ in range(DISTINCT_IMAGES):
        small = rng.integers(0, 256, (size // 16, size // 16, 3), dtype=np.uint8)
        image = Image.fromarray(small).resize((size, size), Image.BILINEAR)
        buffer = io.BytesIO()
        image.save(buffer, "JPEG", quality=90)
        variants.append(buffer.getvalue())
    return variants


def _polygons(rng, count, size):
    """``count`` star-shaped 12-point polygons inside a ``size`` x ``size`` image: (count, POINTS, 2) floats."""
    radius = rng.uniform(6, 30, count)
    centre = rng.uniform(radius[:, None] + 1, size - radius[:, None] - 1, (count, 2))
    angles = np.sort(rng.uniform(0, 2 * np.pi, (count, POINTS)), axis=1)
    reach = radius[:, None] * rng.uniform(0.6, 1.0, (count, POINTS))
    return np.round(centre[:, None, :] + reach[..., None] * np.stack([np.cos(angles), np.sin(angles)], -1), 2)


def generate(dataset_dir, num_images, per_image=10, size=512, seed=0):
    """A COCO dataset of ``num_images`` distinct image files and ``num_images * per_image`` annotations."""
    rng = np.random.default_rng(seed)
    dataset_dir = Path(dataset_dir)
    (dataset_dir / "images").mkdir(parents=True, exist_ok=True)
    (dataset_dir / "annotations").mkdir(exist_ok=True)
    variants = _jpeg_variants(size, rng)
    weights = np.array([NWPU_INSTANCE_COUNTS[name] for name in NWPU_CLASSES], float)
    num_val = max(1, round(num_images * VAL_FRACTION))
    splits = {"train": {"images": [], "annotations": []}, "val": {"images": [], "annotations": []}}
    polygons = _polygons(rng, num_images * per_image, size)
    classes = rng.choice(len(NWPU_CLASSES), num_images * per_image, p=weights / weights.sum()) + 1
    rles = mask_utils.frPyObjects(polygons.reshape(len(polygons), -1).tolist(), size, size)  # one batch call
    areas, boxes = mask_utils.area(rles), mask_utils.toBbox(rles)  # what a converter writes: the mask's box
    ann_id = 0
    for index in range(num_images):
        image_id = index + 1
        file_name = f"{image_id:06d}.jpg"
        (dataset_dir / "images" / file_name).write_bytes(variants[index % DISTINCT_IMAGES])
        split = splits["val" if index >= num_images - num_val else "train"]
        split["images"].append({"id": image_id, "file_name": file_name, "width": size, "height": size})
        for k in range(index * per_image, (index + 1) * per_image):
            ann_id += 1
            split["annotations"].append({
                "id": ann_id, "image_id": image_id, "category_id": int(classes[k]),
                "segmentation": [polygons[k].reshape(-1).tolist()], "area": float(areas[k]),
                "bbox": boxes[k].tolist(), "iscrowd": 0})
    for name, split in splits.items():
        data = {"info": {"description": f"benchmarks/check_dataset.py, seed {seed}"}, "licenses": [], **split,
                "categories": coco_categories()}
        (dataset_dir / "annotations" / f"instance_{name}.json").write_text(json.dumps(data), encoding="utf-8")
    return dataset_dir


def peak_rss_mb():
    """This process's peak resident memory. VmHWM starts afresh at exec; ru_maxrss would keep the parent's peak."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux: KiB (not reset at exec)


def measure(dataset_dir, output_dir):
    """Run the check_dataset mode in this process; print one JSON line with its wall time and peak RSS."""
    import contextlib

    import tutorial_lib as tl

    baseline = peak_rss_mb()
    cpu = time.process_time()
    start = time.perf_counter()
    with contextlib.redirect_stdout(io.StringIO()):
        result = tl.run("Mask-RT-DETR-S", ["Global.mode=check_dataset", f"Global.dataset_dir={dataset_dir}",
                                           f"Global.output={output_dir}"])
    seconds, cpu = time.perf_counter() - start, time.process_time() - cpu
    peak = peak_rss_mb()
    attributes = result["attributes"]
    print(json.dumps({"seconds": seconds, "cpu_seconds": cpu, "peak_rss_mb": peak, "rss_after_imports_mb": baseline,
                      "check_pass": result["check_pass"], "errors": len(result["errors"]),
                      "images": attributes["train_images"] + attributes["val_images"],
                      "annotations": attributes["train_annotations"] + attributes["val_annotations"]}))


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[1000, 10000], help="image counts to check")
    parser.add_argument("--per_image", type=int, default=10, help="annotations per image")
    parser.add_argument("--image_size", type=int, default=512)
    parser.add_argument("--workdir", help="where the datasets are generated (default: a temporary folder)")
    parser.add_argument("--measure", nargs=2, metavar=("DATASET", "OUTPUT"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.measure:
        return measure(*args.measure)
    with tempfile.TemporaryDirectory() as tmp:
        workdir = Path(args.workdir or tmp)
        rows = []
        for count in args.sizes:
            dataset = workdir / f"coco_{count}"
            if not (dataset / "annotations" / "instance_val.json").is_file():
                start = time.perf_counter()
                generate(dataset, count, args.per_image, args.image_size)
                print(f"generated {count} images / {count * args.per_image} annotations in "
                      f"{time.perf_counter() - start:.1f} s ({dataset})", flush=True)
            load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
            child = subprocess.run([sys.executable, __file__, "--measure", str(dataset), str(workdir / f"out_{count}")],
                                   capture_output=True, text=True, check=False)
            if child.returncode:
                sys.exit(f"the check of {dataset} failed:\n{child.stderr[-3000:]}")
            row = json.loads(child.stdout.strip().splitlines()[-1])
            row["load"] = load
            rows.append(row)
            print(f"{row['images']:>6} images, {row['annotations']:>7} annotations: {row['seconds']:6.1f} s "
                  f"(CPU {row['cpu_seconds']:.1f} s), "
                  f"peak RSS {row['peak_rss_mb']:6.0f} MB (after imports {row['rss_after_imports_mb']:.0f} MB), "
                  f"check_pass {row['check_pass']}, {row['errors']} errors; load average {load:.1f} on "
                  f"{os.cpu_count()} cores", flush=True)
        print("\n| images / annotations | wall | CPU (all threads) | peak RSS | check | load average before |")
        print("|---|---|---|---|---|---|")
        for row in rows:
            print(f"| {row['images']:,} / {row['annotations']:,} | {row['seconds']:.1f} s | {row['cpu_seconds']:.1f} s "
                  f"| {row['peak_rss_mb']:.0f} MB | {'pass' if row['check_pass'] else 'FAIL'}, {row['errors']} errors "
                  f"| {row['load']:.1f} |")
        if len(rows) >= 2:
            first, last = rows[0], rows[-1]
            print(f"| ratio {last['images'] // first['images']}× the images | ×{last['seconds'] / first['seconds']:.1f} "
                  f"| ×{last['cpu_seconds'] / first['cpu_seconds']:.1f} | **×{last['peak_rss_mb'] / first['peak_rss_mb']:.2f}** "
                  "| goals: ≤ 30 s at 10,000 images, flat memory | |")


if __name__ == "__main__":
    main()
