"""Large scenes: flat memory and flat time per tile for GeoTIFF sliced inference (read by windows, merged and
written as it streams).

Generates seeded 3-band GeoTIFFs (UTM, 10 m pixels, thousands of bright discs, many cut by tile borders), runs
``predict_geotiff`` with every output (GeoJSON, GeoPackage, class + instance COGs) and a fast fake predictor (the
discs by threshold + connected components), each scene in a fresh process (a warm-up on a 4-tile scene, then the
fastest of 3 runs), and prints:

  (a) peak RSS, 10,980 x 10,980 scene / 2,048 x 2,048 scene (target <= 1.5x);
  (b) CPU time per tile, 400-tile scene / 100-tile scene (target within +-10 %; CPU time of the process,
      because wall time on a shared machine measures the neighbours).

    OMP_NUM_THREADS=2 python benchmarks/large_scene.py [--work /tmp/large_scene] [--model_dir DIR]

``--model_dir`` (an exported model) also runs the real predictor on a few tiles of the big scene through the same
path. Scenes are cached in ``--work`` (about 0.7 GB).
"""
import argparse
import json
import resource
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

SLICE, OVERLAP = 512, 0.2
CELL = 150  # one disc per 150 x 150 px cell
REPEATS = 3


def tiles_per_side(side):
    step = int(round(SLICE * (1 - OVERLAP)))
    return 1 if side <= SLICE else len(set(list(range(0, side - SLICE, step)) + [side - SLICE]))


def side_for_tiles(n):
    """Scene side giving n x n tiles."""
    return SLICE + (n - 1) * int(round(SLICE * (1 - OVERLAP)))


def make_scene(path, side, seed=0):
    """A seeded GeoTIFF written strip by strip (never held whole): noisy dark ground, bright discs."""
    import cv2
    import rasterio
    from rasterio.transform import from_origin
    from rasterio.windows import Window

    if path.exists():
        return path
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".part.tif")
    cells = (side + CELL - 1) // CELL
    rng = np.random.default_rng(seed)
    centres = [(int(cx * CELL + rng.integers(20, CELL - 20)), int(cy * CELL + rng.integers(20, CELL - 20)),
                int(rng.integers(8, 45))) for cy in range(cells) for cx in range(cells)]
    with rasterio.open(tmp, "w", driver="GTiff", width=side, height=side, count=3, dtype="uint8", tiled=True,
                       blockxsize=512, blockysize=512, crs="EPSG:32633",
                       transform=from_origin(500000.0, 5000000.0, 10.0, 10.0)) as dst:
        for y0 in range(0, side, 512):
            h = min(512, side - y0)
            strip_rng = np.random.default_rng([seed, y0])
            strip = strip_rng.integers(40, 80, (h, side, 3), dtype=np.uint8)
            for cx, cy, r in centres:
                if cy + r >= y0 and cy - r < y0 + h:
                    cv2.circle(strip, (cx, cy - y0), r, (230, 220, 200), -1)
            dst.write(np.transpose(strip, (2, 0, 1)), window=Window(0, y0, side, h))
    tmp.rename(path)
    return path


def fake_predictor(tile):
    """The discs of one tile: bright pixels, connected components, score by size."""
    import cv2

    from tutorial_lib.predict import InstanceSegResult
    from tutorial_lib.structures import Instances

    n, labels, stats, _ = cv2.connectedComponentsWithStats((tile[..., 0] > 150).astype(np.uint8))
    masks = np.stack([labels == k for k in range(1, n)]) if n > 1 else np.zeros((0,) + tile.shape[:2], bool)
    boxes = np.array([[s[0], s[1], s[0] + s[2], s[1] + s[3]] for s in stats[1:]], np.float32).reshape(-1, 4)
    scores = 0.5 + 0.5 * np.minimum(1.0, stats[1:, 4] / 6400.0)
    return InstanceSegResult(None, Instances(tile.shape[:2], boxes, scores, np.zeros(n - 1), masks), ["disc"])


def child(src, out, model_dir=None, max_tiles=None):
    """One scene in this (fresh) process: print a JSON line with peak RSS, seconds and tile count."""
    from tutorial_lib.pipeline.geo import predict_geotiff

    base_rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    predict = fake_predictor
    if model_dir:
        from tutorial_lib.predict import Predictor

        predictor = Predictor(model_dir, threshold=0.3)
        predict = lambda tile: next(predictor.predict(tile))  # noqa: E731
    if max_tiles:  # the real model: only the top-left corner of the scene (n x n tiles)
        from tutorial_lib.pipeline.geo import RasterReader, open_raster
        from tutorial_lib.pipeline.options import SliceOptions
        from tutorial_lib.pipeline.sliced import SlicedInference

        side = side_for_tiles(int(np.sqrt(max_tiles)))
        with open_raster(src) as ds:
            reader = RasterReader(ds)
            reader.height = reader.width = side
            start = time.perf_counter()
            run = SlicedInference(reader, predict, SliceOptions(SLICE, OVERLAP), progress=False)
            found = sum(len(chunk) for chunk in run)
            seconds = time.perf_counter() - start
        print(json.dumps({"tiles": len(run.tiles), "seconds": seconds, "instances": found}))
        return
    def run(src, out):
        return predict_geotiff(predict, src, out / "scene.geojson", slicing=SliceOptions(SLICE, OVERLAP),
                               mask_path=out / "classes.tif", vector_path=out / "scene.gpkg",
                               instance_path=out / "instances.tif", progress=False)

    # Warm-up on a 4-tile scene first: the first use of GDAL's drivers, PROJ and pyogrio in a process costs the
    # same whatever the scene; counted in, it would make time per tile fall with the tile count.
    out = Path(out)
    run(make_scene(out.parent / "scene_warmup.tif", side_for_tiles(2)), out / "warmup")
    times = []
    for _ in range(REPEATS):  # the fastest of a few runs (timeit's rule: slower runs measure interference)
        start, cpu_start = time.perf_counter(), time.process_time()
        summary = run(src, out)
        times.append((time.process_time() - cpu_start, time.perf_counter() - start))
    cpu, seconds = min(times)
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(json.dumps({"tiles": summary["tiles"], "instances": summary["instances"], "seconds": seconds,
                      "cpu_seconds": cpu, "peak_rss_mb": peak, "import_rss_mb": base_rss}))


def run_child(src, out, *extra):
    proc = subprocess.run([sys.executable, __file__, "--child", str(src), str(out), *extra], capture_output=True,
                          text=True)
    if proc.returncode != 0:
        raise SystemExit(proc.stderr[-3000:])
    return json.loads(proc.stdout.strip().splitlines()[-1])


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--work", default="/tmp/large_scene")
    parser.add_argument("--model_dir", help="also run this exported model on a few tiles")
    parser.add_argument("--model_tiles", type=int, default=4)
    parser.add_argument("--child", nargs="+", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        src, out, *rest = args.child
        child(src, out, rest[0] if rest else None, int(rest[1]) if len(rest) > 1 else None)
        return
    work = Path(args.work)
    runs = {}
    for name, side in (("2048", 2048), ("100 tiles", side_for_tiles(10)), ("400 tiles", side_for_tiles(20)),
                       ("10980", 10980)):
        start = time.perf_counter()
        src = make_scene(work / f"scene_{side}.tif", side)
        made = time.perf_counter() - start
        result = run_child(src, work / f"out_{side}")
        runs[name] = result
        print(f"{name:>9}: {side} x {side} px ({made:.0f} s to generate), {result['tiles']} tiles, "
              f"{result['instances']} instances, wall {result['seconds']:.1f} s, CPU {result['cpu_seconds']:.1f} s = "
              f"{1000 * result['cpu_seconds'] / result['tiles']:.1f} ms CPU/tile, peak RSS "
              f"{result['peak_rss_mb']:.0f} MB (after imports {result['import_rss_mb']:.0f} MB)", flush=True)
    ratio = runs["10980"]["peak_rss_mb"] / runs["2048"]["peak_rss_mb"]
    # CPU time, not wall time: on a shared machine wall time follows the neighbours' load, not this code
    per_tile = {k: runs[k]["cpu_seconds"] / runs[k]["tiles"] for k in runs}
    drift = per_tile["400 tiles"] / per_tile["100 tiles"] - 1
    print(f"(a) peak RSS 10,980^2 / 2,048^2 scene: {ratio:.2f}x (target <= 1.5x)")
    print(f"(b) CPU time per tile 400 vs 100 tiles: {1000 * per_tile['400 tiles']:.1f} vs "
          f"{1000 * per_tile['100 tiles']:.1f} ms ({100 * drift:+.1f} %, target within +-10 %); "
          f"10,980^2 scene: {1000 * per_tile['10980']:.1f} ms")
    print("\n| scene | tiles | instances | CPU s | CPU ms / tile | peak RSS |\n|---|---|---|---|---|---|")
    for name, r in runs.items():
        print(f"| {name} | {r['tiles']:,} | {r['instances']:,} | {r['cpu_seconds']:.1f} "
              f"| {1000 * r['cpu_seconds'] / r['tiles']:.1f} | {r['peak_rss_mb']:.0f} MB |")
    print(f"| (a) peak RSS 10,980² / 2,048² | **{ratio:.2f}×** (target ≤ 1.5×) | | | | |")
    print(f"| (b) CPU per tile, 400 vs 100 tiles | **{100 * drift:+.1f} %** (target ±10 %) | | | | |")
    if args.model_dir:
        result = run_child(work / "scene_10980.tif", work / "out_model", args.model_dir, str(args.model_tiles))
        print(f"real model ({args.model_dir}) on {result['tiles']} tiles of the 10,980^2 scene: "
              f"{result['seconds'] / result['tiles']:.2f} s/tile, {result['instances']} instances")


if __name__ == "__main__":
    main()
