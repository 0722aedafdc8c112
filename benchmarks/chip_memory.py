"""Chipping a GeoTIFF for training streams: peak memory must not grow with the scene (target <= 1.5x RSS for a
10,980 x 10,980 scene against a 2,048 x 2,048 one).

Generates seeded 4-band uint16 GeoTIFFs (UTM, 10 m pixels, tiled 512 px and deflate-compressed, a slanted no-data
edge, bright rectangles) written strip by strip, with one rectangle label per 160 x 160 px cell in a GeoPackage in
EPSG:4326 (so labels are reprojected), then runs :func:`tutorial_lib.data.geochips.chip_dataset` on each scene in a
fresh process (512 px chips, blocks of 1,024 px, defaults otherwise) and prints peak RSS, the ratio and the times.

    python benchmarks/chip_memory.py [--work /tmp/chip_memory]

Scenes are cached in ``--work`` (a few MB: the pattern compresses well); the chips are written there, replaced per run.
"""
import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

PIXEL = 10.0
ORIGIN = (500000.0, 5000000.0)
CELL = 160  # one labelled rectangle per CELL x CELL pixels
STRIP = 512


def rectangles(side, seed=0):
    """One seeded rectangle ``(x0, y0, x1, y1)`` in pixels per cell of the scene."""
    rng = np.random.default_rng(seed)
    cells = side // CELL
    out = []
    for cy in range(cells):
        for cx in range(cells):
            w, h = rng.integers(10, 60, 2)
            x0, y0 = cx * CELL + rng.integers(0, CELL - w), cy * CELL + rng.integers(0, CELL - h)
            out.append((int(x0), int(y0), int(x0 + w), int(y0 + h)))
    return out


def make_scene(folder, side):
    """``scene.tif`` and ``labels.gpkg`` in ``folder`` (kept between runs); the raster is never held whole."""
    import rasterio
    import shapely
    from pyogrio.raw import write
    from rasterio.transform import from_origin
    from rasterio.windows import Window

    from tutorial_lib.data.geovector import reproject

    raster, labels = folder / "scene.tif", folder / "labels.gpkg"
    if raster.exists() and labels.exists():
        return raster, labels
    folder.mkdir(parents=True, exist_ok=True)
    transform = from_origin(*ORIGIN, PIXEL, PIXEL)
    boxes = rectangles(side)
    profile = {"driver": "GTiff", "width": side, "height": side, "count": 4, "dtype": "uint16", "nodata": 0,
               "tiled": True, "blockxsize": 512, "blockysize": 512, "compress": "deflate", "predictor": 2,
               "crs": "EPSG:32633", "transform": transform}
    with rasterio.open(raster, "w", **profile) as dst:
        for y0 in range(0, side, STRIP):
            h = min(STRIP, side - y0)
            yy, xx = np.mgrid[y0:y0 + h, 0:side]
            ground = ((xx // 16 + yy // 16) % 64 * 8).astype(np.uint16)
            strip = np.stack([ground + 600 * b for b in range(1, 5)])
            for x0, ry0, x1, ry1 in boxes:
                if ry1 > y0 and ry0 < y0 + h:
                    strip[:, max(ry0 - y0, 0):min(ry1 - y0, h), x0:x1] += 3000
            strip[:, xx < 0.08 * side + 0.1 * yy] = 0  # a slanted no-data edge, as a scene's swath
            dst.write(strip, window=Window(0, y0, side, h))
    pixels = np.array([shapely.box(*b) for b in boxes], dtype=object)
    in_map = shapely.transform(pixels, lambda xy: np.column_stack(transform @ (xy[:, 0], xy[:, 1])))
    lonlat = reproject(in_map, "EPSG:32633", "EPSG:4326")
    classes = np.array(["vehicle" if k % 3 else "tank" for k in range(len(boxes))], dtype=object)
    write(str(labels), np.array([shapely.to_wkb(g) for g in lonlat], dtype=object), [classes], fields=["cls"],
          driver="GPKG", geometry_type="Polygon", crs="EPSG:4326")
    return raster, labels


def peak_rss_mb():
    """This process's peak RSS (VmHWM). Not ``getrusage``: Linux keeps its ``ru_maxrss`` across ``exec``, so a
    child would report the peak of the parent that forked it (here: the one that generated the scene)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    raise SystemExit("no VmHWM in /proc/self/status (Linux only)")


def child(raster, labels, out):
    """Chip one scene in this fresh process; print a JSON line with peak RSS, the RSS after imports and seconds."""
    import rasterio  # noqa: F401 (imported before the baseline is read: chipping imports them anyway)
    import shapely  # noqa: F401

    from tutorial_lib.data.geochips import chip_dataset

    after_imports = peak_rss_mb()
    start = time.perf_counter()
    report = chip_dataset(raster, labels, out, class_column="cls", chip_size=512, block_size=1024, overwrite=True)
    seconds = time.perf_counter() - start
    peak = peak_rss_mb()
    print(json.dumps({"peak_rss_mb": peak, "import_rss_mb": after_imports, "seconds": seconds,
                      "chips": sum(report.images.values()), "annotations": sum(report.annotations.values()),
                      "skipped_nodata_chips": report.skipped_nodata_chips}))


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--work", default="/tmp/chip_memory")
    parser.add_argument("--child", nargs=3, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(*args.child)
        return
    work = Path(args.work)
    runs = {}
    for side in (2048, 10980):
        start = time.perf_counter()
        raster, labels = make_scene(work / f"scene_{side}", side)
        made = time.perf_counter() - start
        proc = subprocess.run([sys.executable, __file__, "--child", str(raster), str(labels),
                               str(work / f"chips_{side}")], capture_output=True, text=True, check=False)
        if proc.returncode != 0:
            raise SystemExit(proc.stderr[-3000:])
        runs[side] = result = json.loads(proc.stdout.strip().splitlines()[-1])
        print(f"{side:>6} x {side} px ({made:.0f} s to generate): {result['chips']} chips, {result['annotations']} "
              f"annotations, {result['skipped_nodata_chips']} no-data chips skipped, {result['seconds']:.1f} s, "
              f"peak RSS {result['peak_rss_mb']:.0f} MB (after imports {result['import_rss_mb']:.0f} MB)",
              flush=True)
    ratio = runs[10980]["peak_rss_mb"] / runs[2048]["peak_rss_mb"]
    print(f"peak RSS 10,980^2 / 2,048^2 scene: {ratio:.2f}x (target <= 1.5x)")


if __name__ == "__main__":
    main()
