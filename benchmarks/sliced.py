"""Sliced-inference overhead: wall time of sliced_predict over a large scene / the time spent inside the model
on its tiles (goal <= 1.3x). Uses an exported model (default: the quick-start model, trained on first use).

    OMP_NUM_THREADS=2 python benchmarks/sliced.py [--model_dir DIR] [--tiles 3] [--slice_size 512]
"""
import argparse
import time
from pathlib import Path

import cv2
import numpy as np

import tutorial_lib as tl
from tutorial_lib.pipeline.options import SliceOptions
from tutorial_lib.pipeline.sliced import sliced_predict, tile_grid

DEMO = Path(__file__).resolve().parents[1] / "data" / "remotesensing_demo.png"


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model_dir")
    parser.add_argument("--tiles", type=int, default=3, help="scene = tiles x tiles mosaic of the demo image")
    parser.add_argument("--slice_size", type=int, default=512)
    parser.add_argument("--overlap_ratio", type=float, default=0.2)
    parser.add_argument("--threshold", type=float, default=0.3)
    args = parser.parse_args()
    pipeline = tl.create_pipeline("instance_segmentation", model_dir=args.model_dir, run_mode="mkldnn")
    scene = np.tile(cv2.imread(str(DEMO))[..., ::-1], (args.tiles, args.tiles, 1))
    model_seconds = []

    def timed(tile):
        start = time.perf_counter()
        result = next(pipeline.predictor.predict(tile, threshold=args.threshold))
        model_seconds.append(time.perf_counter() - start)
        return result

    timed(scene[:args.slice_size, :args.slice_size])  # warm-up
    model_seconds.clear()
    start = time.perf_counter()
    instances = sliced_predict(scene, timed, SliceOptions(args.slice_size, args.overlap_ratio), progress=False)
    total = time.perf_counter() - start
    n_tiles = len(tile_grid(*scene.shape[:2], args.slice_size, args.overlap_ratio))
    print(f"scene {scene.shape[1]}x{scene.shape[0]}, {n_tiles} tiles of {args.slice_size} px, "
          f"overlap {args.overlap_ratio}: {len(instances)} merged instances")
    print(f"sliced total {total:.2f} s, model on tiles {sum(model_seconds):.2f} s, "
          f"overhead ratio {total / sum(model_seconds):.3f}x (goal <= 1.3x)")
    print(f"\n| scene | tiles | merged instances | sliced total | model on its tiles | overhead ratio (goal ≤ 1.3×) |")
    print("|---|---|---|---|---|---|")
    print(f"| {scene.shape[1]} × {scene.shape[0]} | {n_tiles} × {args.slice_size} px, overlap {args.overlap_ratio} "
          f"| {len(instances)} | {total:.2f} s | {sum(model_seconds):.2f} s | **{total / sum(model_seconds):.3f}×** |")


if __name__ == "__main__":
    main()
