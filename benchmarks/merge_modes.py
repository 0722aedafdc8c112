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
The runs are :func:`tutorial_lib.pipeline.merge_study.compare_merge_modes` (``tl.compare_merge_modes``, which
notebook 07 runs on a few settings); this script prints its numbers as the tables of docs/benchmarks.md.
"""
import argparse
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tutorial_lib.data.geoscene import make_geoscene  # noqa: E402
from tutorial_lib.pipeline.merge_study import (ALL_MERGES, DEFAULT_MERGE, SAHI_MERGE, compare_merge_modes,  # noqa: E402
                                               oracle_predictor)
from tutorial_lib.pipeline.options import SliceOptions  # noqa: E402
from tutorial_lib.pipeline.scene_eval import AERIAL_AREA_BANDS  # noqa: E402

SLICE, OVERLAP, THRESHOLD = 512, 0.2, 0.5
DEFAULT = DEFAULT_MERGE  # sliced.py's default merge: ("GREEDYNMM", "IOU", "masks")
SAHI = SAHI_MERGE  # SAHI's default postprocess (GREEDYNMM, IOS 0.5) on boxes


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
    slicing = SliceOptions(SLICE, OVERLAP)
    if args.model_dir:
        predict, labels = model_predictor(args.model_dir, args.threshold)
        source = f"model {args.model_dir} (threshold {args.threshold})"
    else:
        predict = oracle_predictor(scene.raster, scene.labels, slicing)
        labels, source = predict.classes, "oracle (the ground truth cut to each tile)"
    out = work / ("model" if args.model_dir else "oracle") / f"{args.size}_{args.seed}"
    study = compare_merge_modes(scene.raster, scene.labels, predict, modes=ALL_MERGES, slicing=slicing,
                                match_threshold=THRESHOLD, output_dir=out, labels_of_classes=labels,
                                score_threshold=0.5)
    rows = [(key, study.reports[key], study.seconds[key]) for key in study.settings]

    print(f"scene: {scene.raster} ({args.size} px, {'reused' if scene.reused else f'made in {made:.1f} s'}), "
          f"tiles predicted by the {source} in {study.predict_seconds:.1f} s ({study.tiles_predicted} tiles)\n")
    counts = ", ".join(f"{name} {n}" for name, n in scene.counts.items() if n)
    print("| scene | objects | seam-crossing objects (512 px tiles, overlap 0.2) | tile predictions |")
    print("|---|---|---|---|")
    print(f"| {args.size} × {args.size} px, 0.4 m, seed {args.seed} | {scene.objects} ({counts}) | "
          f"{rows[0][1].seam_crossing} | {source}: {study.tiles_predicted} tiles, "
          f"{study.predict_seconds:.1f} s once |\n")
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
