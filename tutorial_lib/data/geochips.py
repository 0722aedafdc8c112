"""Step 4 for remote sensing: GeoTIFF scenes + polygon labels -> a COCO chip dataset in the tutorial layout.

A detector trains on images of a few hundred pixels, while a scene is tens of thousands of pixels wide, often
4+ bands of uint16 with no-data edges, and its labels are polygons in some other CRS. :func:`chip_dataset` cuts the
scenes into chips and the labels with them:

1. *Plan* (one raster at a time, window by window; a raster is never read whole): labels are reprojected to the
   raster's pixel grid (:mod:`.geolabels`); chips with more no-data than ``nodata_threshold`` are skipped; label
   polygons are clipped to each chip and to its valid pixels, and a piece smaller than ``min_area_fraction`` of its
   whole polygon is dropped (a sliver of a cut object teaches nothing recognisable).
2. *Split by area* (:mod:`.geosplit`): whole rasters or spatial blocks go to val, never single chips.
3. *Stretch*: non-uint8 bands are mapped to 0-255 between percentiles computed once, over windows sampled from the
   *training* chips (val stays unseen), with exactly the reader prediction uses (:class:`.raster.RasterReader`).
   The limits are recorded in the dataset's ``info`` (``bands``, ``dtype``, ``limits`` ``{band: [low, high]}``),
   and :func:`raster_settings` reads them back, so that an exported model carries them to deployment.
4. *Write* ``images/`` (8-bit RGB PNG or JPEG) and ``annotations/instance_{train,val}.json``. Each image entry
   keeps ``source`` (the raster), ``window`` ``[col_off, row_off, width, height]``, ``transform`` (the chip's
   affine, rasterio order ``a, b, c, d, e, f``) and ``crs``, so predictions on a chip map back to the scene.

The output is built in a temporary folder beside ``output_dir`` and moved into place at the end, so a failed run
leaves nothing that looks finished; nothing is ever written beside the inputs. Such a dataset must not be split
again at random (neighbouring chips would land in both splits): :func:`is_chip_dataset` lets
:mod:`.split` refuse it.
"""
import json
import os
import shutil
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import List, Optional

import numpy as np
from tqdm.auto import tqdm

from ..config.schema import DEFAULTS
from ..errors import UserError
from .geolabels import labels_on_raster, read_labels
from .geosplit import SPLIT_BY, assign_val, chip_windows, drop_cross_split_overlaps
from .geovector import VECTOR_SUFFIXES, polygonal
from .raster import (RASTER_SUFFIXES, STRETCH_PERCENTILES, RasterReader, RasterSettings, has_nodata, is_georeferenced,
                     needs_stretch, open_raster, percentile_limits, select_bands, valid_mask, valid_samples)

OPTIONS = DEFAULTS["CheckDataset"]["convert"]  # the defaults below are the config keys' defaults
CHIP_KEYS = ("class_column", "class_name", "bands", "chip_size", "overlap", "nodata_threshold", "min_area_fraction",
             "image_format", "split_by", "block_size", "val_fraction")
INFO_KEY = "geochips"
IMAGE_FORMATS = {"png": "PNG", "jpg": "JPEG"}
FOLDER_VECTOR_SUFFIXES = tuple(s for s in VECTOR_SUFFIXES if s != ".json")  # a folder's .json may be anything
STRETCH_WINDOWS = 64  # training chips sampled for the stretch ...
STRETCH_SIDE = 128  # ... each read decimated to this many pixels a side


@dataclass
class ChipReport:
    """What :func:`chip_dataset` wrote and what it left out (counts), and the stretch it recorded."""

    dataset_dir: str
    images: dict
    annotations: dict
    categories: list
    val_units: list
    skipped_nodata_chips: int
    dropped_overlap_chips: int
    dropped_small_pieces: int
    skipped_features: int
    features_outside: int
    stretch: Optional[dict] = None

    def to_dict(self):
        return asdict(self)


@dataclass
class _Chip:
    raster: int
    window: tuple  # col, row, width, height
    pieces: list  # (class name, polygon in the raster's pixel coordinates)


def is_chip_dataset(coco):
    """True for a COCO dict written by :func:`chip_dataset` (its ``info``, or images that keep a source window)."""
    info = coco.get("info")
    if isinstance(info, dict) and INFO_KEY in info:
        return True
    return any(isinstance(img, dict) and "window" in img and "source" in img for img in coco.get("images", []))


def _check_options(chip_size, overlap, nodata_threshold, min_area_fraction, split_by, block_size, val_fraction,
                   image_format):
    checks = [(isinstance(chip_size, int) and chip_size >= 16, f"chip_size must be an int >= 16, got {chip_size!r}"),
              (0 <= overlap < 1, f"overlap must be in [0, 1), got {overlap}"),
              (0 <= nodata_threshold <= 1, f"nodata_threshold must be in [0, 1], got {nodata_threshold}"),
              (0 <= min_area_fraction <= 1, f"min_area_fraction must be in [0, 1], got {min_area_fraction}"),
              (split_by in SPLIT_BY, f"split_by must be raster or blocks, got {split_by!r}"),
              (isinstance(block_size, int) and block_size >= chip_size,
               f"block_size must be an int >= chip_size ({chip_size}), got {block_size!r}"),
              (0 < val_fraction < 1, f"val_fraction must be in (0, 1), got {val_fraction}"),
              (image_format in IMAGE_FORMATS, f"image_format must be png or jpg, got {image_format!r}")]
    for ok, message in checks:
        if not ok:
            raise UserError(message)


def _expand(items, suffixes, what):
    """Files named by ``items`` (paths or folders, one or a list): a folder gives its files with ``suffixes``."""
    items = [items] if isinstance(items, (str, os.PathLike)) else list(items or [])
    found = []
    for item in map(Path, items):
        if item.is_dir():
            found += sorted(p for p in item.iterdir() if p.is_file() and p.suffix.lower() in suffixes)
        elif item.exists():
            found.append(item)
        else:
            raise UserError(f"{what}: {item} does not exist; check the path")
    if not found:
        raise UserError(f"no {what} in {', '.join(str(i) for i in items)[:80] or 'the input'} (looked for "
                        f"{', '.join(suffixes)}); name the files")
    return found


def _valid_region(valid, col, row):
    """The valid pixels of a chip as a polygon in raster pixel coordinates."""
    import shapely
    from affine import Affine
    from rasterio import features
    from shapely.geometry import shape

    parts = [shape(g) for g, v in features.shapes(valid.view(np.uint8), mask=valid,
                                                   transform=Affine.translation(col, row)) if v]
    return shapely.union_all(parts)


def _pieces(tree, geometries, classes, areas, window, region, min_area_fraction):
    """The label pieces inside one chip (and inside its valid pixels), and how many were too small to keep."""
    from shapely.geometry import box

    col, row, w, h = window
    frame = box(col, row, col + w, row + h)
    pieces, dropped = [], 0
    for i in sorted(tree.query(frame, predicate="intersects")):
        piece = geometries[i].intersection(frame)
        piece = polygonal(piece.intersection(region) if region is not None else piece)
        if piece.is_empty or piece.area <= 0:
            continue
        if piece.area < min_area_fraction * areas[i]:
            dropped += 1
            continue
        pieces.append((classes[i], piece))
    return pieces, dropped


def _plan_raster(index, path, label_sets, bands, chip_size, overlap, nodata_threshold, min_area_fraction):
    """Chips of one raster worth keeping, with their label pieces; the raster's facts; counts."""
    import shapely
    from rasterio.windows import Window

    with open_raster(path) as ds:
        if not is_georeferenced(ds):
            raise UserError(f"raster {path.name} has no CRS or geotransform, so labels cannot be placed on it; assign "
                            "one (gdal_edit.py -a_srs EPSG:XXXX, and -a_ullr when it has no geotransform)")
        selected = select_bands(ds, bands)
        facts = {"path": path, "crs": ds.crs.to_string(), "transform": ds.transform, "bands": selected,
                 "dtypes": [ds.dtypes[b - 1] for b in selected], "stretch": needs_stretch(ds, selected)}
        geometries, classes, hits = labels_on_raster(label_sets, ds)
        tree, areas = shapely.STRtree(geometries), shapely.area(geometries)
        masked = has_nodata(ds, selected)
        chips, skipped, dropped = [], 0, 0
        for window in chip_windows(ds.width, ds.height, chip_size, overlap):
            region = None
            if masked:
                valid = valid_mask(ds, selected, Window(*window))
                if not valid.any() or 1.0 - valid.mean() > nodata_threshold:
                    skipped += 1
                    continue
                region = None if valid.all() else _valid_region(valid, window[0], window[1])
            pieces, small = _pieces(tree, geometries, classes, areas, window, region, min_area_fraction)
            dropped += small
            chips.append(_Chip(index, window, pieces))
    return facts, chips, hits, skipped, dropped


def _training_stretch(facts, chips):
    """``{band: (low, high)}`` over windows sampled evenly from the training chips (None for uint8 data)."""
    from rasterio.windows import Window

    if not any(f["stretch"] for f in facts):
        return None
    picks = [chips[i] for i in np.unique(np.linspace(0, len(chips) - 1, min(len(chips), STRETCH_WINDOWS)).round()
                                         .astype(int))]
    samples = {band: [] for band in facts[0]["bands"]}
    for index in sorted({c.raster for c in picks}):
        with open_raster(facts[index]["path"]) as ds:
            for chip in (c for c in picks if c.raster == index):
                for band, values in valid_samples(ds, facts[index]["bands"], Window(*chip.window),
                                                  STRETCH_SIDE).items():
                    samples[band].append(values)
    return percentile_limits(samples, "the training chips")


def _hole_free(polygon):
    """``polygon`` as hole-free pieces with the same union (COCO polygons cannot have holes): cut it along a
    vertical line through a hole until no piece has one."""
    from shapely.geometry import LineString
    from shapely.ops import split

    if not polygon.interiors:
        return [polygon]
    x = type(polygon)(polygon.interiors[0]).representative_point().x
    _, miny, _, maxy = polygon.bounds
    halves = split(polygon, LineString([(x, miny - 1), (x, maxy + 1)])).geoms
    return [piece for half in halves for piece in _hole_free(half)]


def _annotation(piece, col, row):
    """COCO fields of one label piece, in the chip's pixel coordinates (None when nothing drawable remains)."""
    rings = []
    for part in getattr(piece, "geoms", [piece]):
        for hole_free in _hole_free(part):
            coords = np.round(np.asarray(hole_free.exterior.coords)[:-1] - (col, row), 2)
            if len(np.unique(coords, axis=0)) >= 3:
                rings.append(coords.ravel().tolist())
    if not rings:
        return None
    minx, miny, maxx, maxy = piece.bounds
    return {"segmentation": rings, "area": round(piece.area, 2), "iscrowd": 0,
            "bbox": [round(minx - col, 2), round(miny - row, 2), round(maxx - minx, 2), round(maxy - miny, 2)]}


def _check_same_bands(facts):
    kinds = {(tuple(f["bands"]), tuple(f["dtypes"])) for f in facts}
    if len(kinds) > 1:
        shown = "; ".join(f"{f['path'].name}: bands {f['bands']} {f['dtypes'][0]}" for f in facts[:2])
        raise UserError(f"the rasters differ in bands or data type ({shown}); chip them separately or pass bands=")


def _check_output(output_dir, inputs, overwrite):
    root = output_dir.resolve()
    if any(root == p.resolve() or root in p.resolve().parents for p in inputs):
        raise UserError(f"output {output_dir} holds inputs; write the chips to another folder")
    if output_dir.exists() and any(output_dir.iterdir()) and not overwrite:
        raise UserError(f"output {output_dir} is not empty; choose another folder or pass overwrite=True "
                        "(--overwrite)")


def _write(folder, facts, chips, is_val, stretch, names, image_format, settings, progress):
    """Images and both annotation files under ``folder``; ``{split: (images, annotations)}`` counts."""
    from affine import Affine
    from PIL import Image

    (folder / "images").mkdir(parents=True)
    (folder / "annotations").mkdir()
    stems = [f["path"].stem for f in facts]
    category = {name: k + 1 for k, name in enumerate(names)}
    splits = {"train": ([], []), "val": ([], [])}
    next_id = 1  # annotation ids, unique across both files
    bar = tqdm(total=len(chips), desc="chips", disable=not progress)
    for index, fact in enumerate(facts):
        mine = [k for k, c in enumerate(chips) if c.raster == index]
        if not mine:
            continue
        prefix = f"{index:03d}_" if stems.count(stems[index]) > 1 else ""
        with open_raster(fact["path"]) as ds:
            reader = RasterReader(ds, bands=fact["bands"], stretch=stretch)
            for k in mine:
                col, row, w, h = chips[k].window
                file_name = f"{prefix}{stems[index]}_x{col}_y{row}.{image_format}"
                Image.fromarray(reader.read(col, row, col + w, row + h)).save(
                    folder / "images" / file_name, IMAGE_FORMATS[image_format],
                    **({"quality": 95} if image_format == "jpg" else {}))
                images, annotations = splits["val" if is_val[k] else "train"]
                image_id = k + 1
                images.append({"id": image_id, "file_name": file_name, "width": w, "height": h,
                               "source": str(fact["path"].resolve()), "window": [col, row, w, h],
                               "transform": list(fact["transform"] @ Affine.translation(col, row))[:6],
                               "crs": fact["crs"]})
                for name, piece in chips[k].pieces:
                    fields = _annotation(piece, col, row)
                    if fields is not None:
                        annotations.append({"id": next_id, "image_id": image_id, "category_id": category[name],
                                            **fields})
                        next_id += 1
                bar.update()
    bar.close()
    for split, (images, annotations) in splits.items():
        coco = {"info": {"description": "chips of GeoTIFF scenes (tutorial_lib.data.geochips)", "split": split,
                         INFO_KEY: settings},
                "images": images, "annotations": annotations,
                "categories": [{"id": i, "name": n, "supercategory": "object"} for n, i in category.items()]}
        (folder / "annotations" / f"instance_{split}.json").write_text(
            json.dumps(coco, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
    return {split: (len(i), len(a)) for split, (i, a) in splits.items()}


def chip_dataset(rasters, labels, output_dir, *, class_column: Optional[str] = None,
                 class_name: Optional[str] = None, chip_size: int = OPTIONS["chip_size"],
                 overlap: float = OPTIONS["overlap"], nodata_threshold: float = OPTIONS["nodata_threshold"],
                 min_area_fraction: float = OPTIONS["min_area_fraction"], split_by: str = OPTIONS["split_by"],
                 block_size: int = OPTIONS["block_size"], val_fraction: float = OPTIONS["val_fraction"],
                 bands=None, image_format: str = OPTIONS["image_format"], seed: int = DEFAULTS["Global"]["seed"],
                 overwrite: bool = False, progress: bool = False) -> ChipReport:
    """Chip GeoTIFF ``rasters`` (files or folders) with polygon ``labels`` (GeoJSON / GeoPackage / Shapefile files
    or folders) into a COCO dataset at ``output_dir`` (see the module docstring for every step).

    The class of each polygon is its ``class_column`` value, or ``class_name`` for label files without one.
    ``bands``: 3 band numbers (R, G, B) or 1 (grey) read from every raster. ``seed`` draws the val rasters or blocks.
    Bad input raises one :class:`UserError` line: raster without CRS, unreadable file, unknown class column, labels
    outside every raster, or no annotation left.
    """
    _check_options(chip_size, overlap, nodata_threshold, min_area_fraction, split_by, block_size, val_fraction,
                   image_format)
    raster_paths = _expand(rasters, RASTER_SUFFIXES, "rasters")
    label_paths = _expand(labels, FOLDER_VECTOR_SUFFIXES, "label files")
    output_dir = Path(output_dir)
    _check_output(output_dir, raster_paths + label_paths, overwrite)
    label_sets, skipped_features = read_labels(label_paths, class_column, class_name)
    hits: List[list] = [[] for _ in label_sets]
    facts, chips, skipped_nodata, dropped_small = [], [], 0, 0
    for index, path in enumerate(raster_paths):
        fact, mine, raster_hits, skipped, small = _plan_raster(index, path, label_sets, bands, chip_size, overlap,
                                                               nodata_threshold, min_area_fraction)
        facts.append(fact)
        chips += mine
        skipped_nodata, dropped_small = skipped_nodata + skipped, dropped_small + small
        for seen, hit in zip(hits, raster_hits):
            seen.append(hit)
    _check_same_bands(facts)
    inside = sum(int(np.logical_or.reduce(seen).sum()) for seen in hits)
    features = sum(len(s.geometries) for s in label_sets)
    if inside == 0:
        raise UserError(f"none of the {features} label polygons lies on a raster; check that labels and rasters "
                        "cover the same place and that the labels' CRS is right")
    if not chips:
        raise UserError(f"every chip has more no-data than nodata_threshold={nodata_threshold}; raise it, or check "
                        "the rasters' nodata value")
    if not any(c.pieces for c in chips):
        raise UserError(f"labels and rasters overlap, but no chip keeps a label: they lie in no-data or are cut below "
                        f"min_area_fraction={min_area_fraction}; lower it or check the labels")
    table = np.array([(c.raster, *c.window) for c in chips], dtype=np.int64)
    is_val, val_units = assign_val(table, split_by, block_size, val_fraction, seed)
    keep = drop_cross_split_overlaps(table, is_val)
    chips, is_val = [c for c, k in zip(chips, keep) if k], is_val[keep]
    if is_val.all():
        raise UserError("no training chip is left once those overlapping val chips are dropped; raise block_size "
                        "or lower overlap")
    limits = _training_stretch(facts, [c for c, v in zip(chips, is_val) if not v])
    bands_used = facts[0]["bands"]
    stretch = None if limits is None else {"bands": bands_used, "percentiles": list(STRETCH_PERCENTILES),
                                           "low": [limits[b][0] for b in bands_used],
                                           "high": [limits[b][1] for b in bands_used]}
    names = sorted({str(c) for s in label_sets for c in s.classes})
    settings = {"rasters": [str(f["path"].resolve()) for f in facts],
                "label_files": [str(p.resolve()) for p in label_paths], "class_column": class_column,
                "class_name": class_name, "chip_size": chip_size, "overlap": overlap,
                "nodata_threshold": nodata_threshold, "min_area_fraction": min_area_fraction,
                "image_format": image_format, "split_by": split_by, "block_size": block_size,
                "val_fraction": val_fraction, "seed": seed, "bands": bands_used, "stretch": stretch,
                "dtype": facts[0]["dtypes"][0],
                "limits": None if limits is None else {str(b): list(limits[b]) for b in dict.fromkeys(bands_used)},
                "val_units": [_unit_name(u, facts) for u in val_units]}
    tmp = output_dir.parent / f".{output_dir.name}.tmp-{os.getpid()}"
    shutil.rmtree(tmp, ignore_errors=True)
    try:
        counts = _write(tmp, facts, chips, is_val, limits, names, image_format, settings, progress)
        if output_dir.exists():
            shutil.rmtree(output_dir)
        os.replace(tmp, output_dir)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return ChipReport(str(output_dir), {s: n[0] for s, n in counts.items()}, {s: n[1] for s, n in counts.items()},
                      names, settings["val_units"], skipped_nodata, int((~keep).sum()), dropped_small,
                      skipped_features, features - inside, stretch)


def _unit_name(unit, facts):
    name = facts[unit[0]]["path"].name
    return name if len(unit) == 1 else f"{name} block ({unit[1]}, {unit[2]})"


def raster_settings(dataset_dir) -> Optional[RasterSettings]:
    """The :class:`.raster.RasterSettings` (bands, per-band stretch limits, data type) a chip dataset at
    ``dataset_dir`` was made with, from its annotation files' ``info``; None for any other dataset (or none)."""
    info = None
    for split in ("train", "val"):
        path = Path(dataset_dir) / "annotations" / f"instance_{split}.json"
        try:
            coco = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            continue
        if isinstance(coco, dict) and is_chip_dataset(coco):
            info = (coco.get("info") or {}).get(INFO_KEY)
            break
    if not isinstance(info, dict) or not info.get("bands"):
        return None
    bands = _three_bands(info["bands"])
    limits = info.get("limits")
    stretch = info.get("stretch")
    if limits is None and isinstance(stretch, dict):  # datasets chipped before ``limits`` was recorded
        limits = {b: [lo, hi] for b, lo, hi in zip(*(stretch.get(k) or [] for k in ("bands", "low", "high")))}
    return RasterSettings.from_dict({"bands": bands, "dtype": info.get("dtype"), "stretch": limits},
                                    f"the {INFO_KEY} info of {Path(dataset_dir).name}")


def _three_bands(bands):
    """Recorded bands as the three read as R, G, B (a single grey band repeated)."""
    bands = [int(b) for b in ([bands] if isinstance(bands, int) else bands)]
    return bands * 3 if len(bands) == 1 else bands


def chip_from_config(dataset_dir, output_dir, options, seed):
    """``CheckDataset.convert`` with ``src_dataset_type=GeoTIFF``: the rasters in ``dataset_dir`` and
    ``label_files`` (default: the vector files in ``dataset_dir``) chipped into ``output_dir`` (replaced)."""
    labels = options.get("label_files") or [dataset_dir]
    report = chip_dataset([dataset_dir], labels, output_dir, seed=seed, overwrite=True,
                          **{k: options.get(k, OPTIONS[k]) for k in CHIP_KEYS})
    return {"src_dataset_type": "GeoTIFF", "src_dir": str(dataset_dir), **report.to_dict()}


__all__ = ["CHIP_KEYS", "ChipReport", "chip_dataset", "chip_from_config", "is_chip_dataset", "raster_settings"]
