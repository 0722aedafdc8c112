"""Merge modes of sliced inference on a generated GeoTIFF scene, with an oracle tile predictor (or a real model).

    OMP_NUM_THREADS=2 python benchmarks/merge_modes.py                       # the table in docs/benchmarks.md
    OMP_NUM_THREADS=2 python benchmarks/merge_modes.py --model_dir DIR [--threshold 0.3] [--size 1024]

The scene is ``tutorial_lib.data.geoscene``'s (4096 px at 0.4 m, 4-band uint16, UTM, no-data collar; made once in
``--work`` and reused). Every merge mode x match metric x ``match_on`` runs the real path: ``predict_geotiff`` with
512 px tiles, overlap 0.2 and match threshold 0.5 writes the merged GeoJSON, and ``evaluate_scene`` scores it
against ``labels.geojson`` over that tile grid (AP, AP50, F1 at score 0.5, seam-split and duplicate rates, AP per
m² band).

The tile predictor is by default :class:`tutorial_lib.pipeline.oracle.OracleTilePredictor`: each tile's ground truth,
so every error the table shows is the merge's (or the vectorisation's: outlines follow pixel edges, which caps AP
at strict IoU for cars). ``--model_dir`` predicts the tiles with an exported model instead (model and merge errors
together). Tile predictions do not depend on the merge: each tile is predicted once and the 12 runs reuse it, so
``run s`` is one run's merge, vectorisation and writing, and the predictions' time is printed once.
"""
import argparse
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tutorial_lib.data.geoscene import make_geoscene  # noqa: E402
from tutorial_lib.pipeline.geo import predict_geotiff  # noqa: E402
from tutorial_lib.pipeline.oracle import OracleTilePredictor, tile_digest  # noqa: E402
from tutorial_lib.pipeline.scene_eval import AERIAL_AREA_BANDS, TileGrid, evaluate_scene  # noqa: E402
from tutorial_lib.pipeline.options import (MATCH_METRICS, MATCH_ON, MERGE_MODES, MergeOptions,  # noqa: E402
                                           SliceOptions)

SLICE, OVERLAP, THRESHOLD = 512, 0.2, 0.5
DEFAULT = ("GREEDYNMM", "IOU", "masks")  # sliced.py's default merge
SAHI = ("GREEDYNMM", "IOS", "boxes")  # SAHI's default postprocess (GREEDYNMM, IOS 0.5) on boxes


class TileCache:
    """A tile predictor whose results are kept by the tile's pixels: the first run predicts, the others reuse."""

    def __init__(self, predict_fn):
        self.predict_fn = predict_fn
        self.results = {}
        self.seconds = 0.0

    def __call__(self, tile):
        key = tile_digest(tile)
        if key not in self.results:
            start = time.perf_counter()
            self.results[key] = self.predict_fn(tile)
            self.seconds += time.perf_counter() - start
        return self.results[key]


def model_predictor(model_dir, threshold):
    """The exported model as the pipeline runs it on tiles (one tile per call), and its class names."""
    from tutorial_lib import create_pipeline

    pipeline = create_pipeline("instance_segmentation", model_dir=model_dir)
    return (lambda tile: next(pipeline.predict(tile, threshold=threshold))), pipeline.labels


def cell(value, digits=3):
    return "–" if value is None else f"{value:.{digits}f}"


def percent(value):
    return "–" if value is None else f"{100 * value:.1f} %"


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--work", default=str(ROOT / "output" / "benchmarks" / "merge_modes"))
    parser.add_argument("--size", type=int, default=4096, help="scene side in pixels")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--model_dir", help="predict the tiles with this exported model instead of the oracle")
    parser.add_argument("--threshold", type=float, default=0.3, help="--model_dir: the model's score threshold")
    args = parser.parse_args()

    work = Path(args.work)
    start = time.perf_counter()
    scene = make_geoscene(work / f"scene_{args.size}_{args.seed}", seed=args.seed, size=args.size)
    made = time.perf_counter() - start
    if args.model_dir:
        predict, labels = model_predictor(args.model_dir, args.threshold)
        source = f"model {args.model_dir} (threshold {args.threshold})"
    else:
        oracle = OracleTilePredictor(scene.raster, scene.labels, "class", SLICE, OVERLAP)
        predict, labels, source = oracle, oracle.classes, "oracle (the ground truth cut to each tile)"
    tiles = TileCache(predict)
    grid = TileGrid.from_raster(scene.raster, SLICE, OVERLAP)
    out = work / ("model" if args.model_dir else "oracle") / f"{args.size}_{args.seed}"

    rows = []
    for mode in MERGE_MODES:
        for metric in MATCH_METRICS:
            for on in MATCH_ON:
                before, start = tiles.seconds, time.perf_counter()
                path = out / f"{mode}_{metric}_{on}.geojson"
                predict_geotiff(tiles, scene.raster, path, slicing=SliceOptions(SLICE, OVERLAP),
                                merging=MergeOptions(mode, metric, on, THRESHOLD), progress=False, labels=labels)
                seconds = time.perf_counter() - start - (tiles.seconds - before)
                report = evaluate_scene(path, scene.labels, class_field="label", label_class_field="class",
                                        tile_grid=grid, score_threshold=0.5)
                rows.append(((mode, metric, on), report, seconds))

    print(f"scene: {scene.raster} ({args.size} px, {'reused' if scene.reused else f'made in {made:.1f} s'}), "
          f"tiles predicted by the {source} in {tiles.seconds:.1f} s ({len(tiles.results)} tiles)\n")
    counts = ", ".join(f"{name} {n}" for name, n in scene.counts.items() if n)
    print("| scene | objects | seam-crossing objects (512 px tiles, overlap 0.2) | tile predictions |")
    print("|---|---|---|---|")
    print(f"| {args.size} × {args.size} px, 0.4 m, seed {args.seed} | {scene.objects} ({counts}) | "
          f"{rows[0][1].seam_crossing} | {source}: {len(tiles.results)} tiles, {tiles.seconds:.1f} s once |\n")
    bands = list(AERIAL_AREA_BANDS)
    print("| merge | metric | match on | instances | AP | AP50 | F1 | seam-split rate | duplicate rate | "
          + " | ".join(f"AP {b}" for b in bands) + " | run s |")
    print("|---|---|---|---|---|---|---|---|---|" + "---|" * len(bands) + "---|")
    for key, r, seconds in rows:
        mark = " (default)" if key == DEFAULT else " (SAHI)" if key == SAHI else ""
        print(f"| {key[0]}{mark} | {key[1]} | {key[2]} | {r.predictions} | {cell(r.ap)} | {cell(r.ap50)} | "
              f"{cell(r.f1)} | {percent(r.seam_split_rate)} ({r.seam_split}) | "
              f"{percent(r.duplicate_rate)} ({r.duplicates}) | "
              + " | ".join(cell(r.ap_by_area[b]) for b in bands) + f" | {seconds:.1f} |")
    by_key = {key: r for key, r, _ in rows}
    default, sahi = by_key[DEFAULT], by_key[SAHI]
    print("\n| target (default merge vs SAHI's) | default | SAHI's | met |")
    print("|---|---|---|---|")
    print(f"| seam-split rate ≤ 2 % | {percent(default.seam_split_rate)} | {percent(sahi.seam_split_rate)} | "
          f"{'yes' if default.seam_split_rate is not None and default.seam_split_rate <= 0.02 else 'no'} |")
    print(f"| F1 not below SAHI's | {cell(default.f1)} | {cell(sahi.f1)} | "
          f"{'yes' if default.f1 >= sahi.f1 else 'no'} |")
    print(f"| duplicate rate not above SAHI's | {percent(default.duplicate_rate)} | {percent(sahi.duplicate_rate)} | "
          f"{'yes' if default.duplicate_rate <= sahi.duplicate_rate else 'no'} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
