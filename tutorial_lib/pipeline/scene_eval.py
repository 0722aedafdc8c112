"""Map-space evaluation of a merged scene: predicted polygons against ground-truth polygons, areas in m².

Tile-level COCO AP (``Global.mode=evaluate``) scores chips. A deployed model is judged on the merged scene, where
sliced inference adds errors of its own: an object cut by a tile seam comes out as two halves, and two tiles'
detections of one object that merging failed to join come out as a duplicate. :func:`evaluate_scene` scores the
scene as a user sees it (the GeoJSON / GeoPackage that ``predict_geotiff`` writes against the label file):

* **AP, AP50, AP75** with COCO's rules (:mod:`.scene_match`) on polygon IoU, per class; ``max_dets`` (10,000)
  is large enough for a whole scene, where COCO's 100 per image would cut off most objects.
* **Precision, recall, F1** at IoU 0.5 for the predictions scoring at least ``score_threshold``: the operating
  point a map is drawn at.
* **AP by object area in m²**, in bands that separate aerial object kinds rather than COCO's pixel sizes (a
  32 x 32 px object is a car at 0.15 m and a stadium at 10 m): below 100 m² (cars ~8 m², buses ~30 m², small
  boats), 100-1,000 m² (tennis courts ~260 m² playing area, basketball courts ~420 m², storage tanks 10-35 m across,
  small planes, houses), above 1,000 m² (track fields ~16,000 m², baseball diamonds, large ships, harbours).
  COCO's pixel bands (small < 32² px, medium < 96² px, large) come beside them when the pixel size is known. A band
  without ground truth has no AP (None, shown "–"), never 0.
* **Seam-split rate**: of the ground-truth objects that a tile seam crosses (a tile edge, scene border excluded,
  runs through the object's interior), the share matched by two or more *pieces*: predictions of its class, scoring
  at least ``score_threshold``, that cover at least 10 % of its area with at least half of their own area. Both
  bounds keep stray overlaps from counting: a sliver is not a piece, nor is a big box that merely includes the object.
* **Duplicate rate**: the share of the predictions scoring at least ``score_threshold`` that are false positives at
  IoU 0.5 although their IoU with a ground truth of their class reaches 0.5 (that object was matched already).

No-data is never background: with ``valid_area`` (the raster's valid-data footprint, a geometry or the raster
itself, polygonised at a coarse resolution), predictions and labels lying more than half outside it are ignored,
neither false positives nor misses; they are counted in ``ignored_predictions`` / ``ignored_ground_truth``.

Both sides are reprojected to one projected CRS so that areas are in m²: the predictions' CRS when projected, else
the labels', else (both geographic) the UTM zone of the labels' centre. Without any CRS, coordinates are taken as
they are (e.g. pixels, with ``pixel_size=1``).
"""
import math
import os
from dataclasses import asdict, dataclass
from typing import Dict, Optional

import numpy as np

from ..data.geovector import read_vector_file, reproject, valid_polygonal
from ..data.raster import colour_bands, open_raster
from ..errors import UserError
from .scene_match import (COCO_IOU_THRESHOLDS, by_prediction, candidate_ious, class_precisions, greedy_match,
                          mean_precision)
from .sliced import tile_grid as tile_windows

AERIAL_AREA_BANDS = {"< 100 m²": (0.0, 100.0), "100-1,000 m²": (100.0, 1000.0), "> 1,000 m²": (1000.0, math.inf)}
COCO_PIXEL_BANDS = {"small (< 32² px)": (0.0, 32.0 ** 2), "medium (32²-96² px)": (32.0 ** 2, 96.0 ** 2),
                    "large (> 96² px)": (96.0 ** 2, math.inf)}
MAX_DETS = 10_000
MATCH_IOU = 0.5  # precision / recall / F1 and duplicates
PIECE_COVER = 0.10  # a seam piece covers at least this share of the object ...
PIECE_INSIDE = 0.5  # ... with at least this share of its own area
VALID_INSIDE = 0.5  # with valid_area: a polygon with less than this share of its area inside it is ignored
VALID_AREA_SIDE = 512  # a raster's valid-data footprint is polygonised from its mask read at most this many px a side


@dataclass
class TileGrid:
    """The tiles of sliced inference as polygons in ``crs`` (map coordinates), and the pixel size in metres."""

    tiles: list
    crs: object = None
    pixel_size: Optional[float] = None

    @classmethod
    def from_raster(cls, path, slice_size, overlap_ratio=0.2):
        """The tiles ``predict_geotiff`` cuts ``path`` into with this ``slice_size`` and ``overlap_ratio``."""
        from shapely.geometry import Polygon

        with open_raster(path) as ds:
            t = ds.transform
            tiles = [Polygon([t @ (x0, y0), t @ (x1, y0), t @ (x1, y1), t @ (x0, y1)])
                     for x0, y0, x1, y1 in tile_windows(ds.height, ds.width, int(slice_size), float(overlap_ratio))]
            projected = ds.crs is not None and ds.crs.is_projected
            size = math.sqrt(abs(t.determinant)) * _unit_factor(ds.crs) if projected else None
            return cls(tiles, ds.crs, size)


@dataclass
class SceneReport:
    """The numbers of :func:`evaluate_scene`; None where a number has no meaning (no ground truth, no grid)."""

    crs: Optional[str]
    predictions: int
    ground_truth: int
    classes: list
    ap: Optional[float]
    ap50: Optional[float]
    ap75: Optional[float]
    ap_by_class: dict
    ap_by_area: dict
    ap_by_pixel_area: Optional[dict]
    score_threshold: float
    precision: Optional[float]
    recall: Optional[float]
    f1: Optional[float]
    seam_crossing: Optional[int]
    seam_split: Optional[int]
    seam_split_rate: Optional[float]
    duplicates: int
    duplicate_rate: Optional[float]
    ignored_predictions: int = 0  # lying mostly outside valid_area
    ignored_ground_truth: int = 0

    def to_dict(self):
        return asdict(self)

    def to_markdown(self):
        """A two-column table (metric, value); None shows as "–"."""
        def cell(value):
            return "–" if value is None else f"{value:.3f}" if isinstance(value, float) else str(value)

        at = f" (IoU {MATCH_IOU}, score >= {self.score_threshold})"
        rows = [("CRS", self.crs or "none (coordinates as given)"), ("predictions / ground truth",
                                                                     f"{self.predictions} / {self.ground_truth}"),
                ("AP (IoU 0.50:0.95)", cell(self.ap)), ("AP50", cell(self.ap50)), ("AP75", cell(self.ap75))]
        rows += [(f"AP {name}", cell(v)) for name, v in self.ap_by_area.items()]
        rows += [(f"AP {name}", cell(v)) for name, v in (self.ap_by_pixel_area or {}).items()]
        rows += [(f"AP class {name}", cell(v)) for name, v in self.ap_by_class.items()]
        rows += [("precision" + at, cell(self.precision)), ("recall" + at, cell(self.recall)),
                 ("F1" + at, cell(self.f1)), ("seam-crossing objects", cell(self.seam_crossing)),
                 ("seam-split objects", cell(self.seam_split)), ("seam-split rate", cell(self.seam_split_rate)),
                 ("duplicates", cell(self.duplicates)), ("duplicate rate", cell(self.duplicate_rate))]
        if self.ignored_predictions or self.ignored_ground_truth:
            rows.append(("ignored in no-data (predictions / ground truth)",
                         f"{self.ignored_predictions} / {self.ignored_ground_truth}"))
        return "\n".join(["| metric | value |", "|---|---|"] + [f"| {m} | {v} |" for m, v in rows])


def _unit_factor(crs):
    """Metres per unit of a projected CRS (1 without a CRS)."""
    if crs is None or not crs.is_projected:
        return 1.0
    return float(crs.linear_units_factor[1])


def _read(source, crs, what, fields):
    """``(geometries, {field: values}, crs)`` of a vector file or a sequence of features; empty or non-polygonal
    geometries are dropped. A feature is a shapely geometry or a mapping with ``geometry`` (shapely or GeoJSON)
    and ``properties``."""
    from shapely.geometry import shape

    if isinstance(source, (str, os.PathLike)):
        layer = read_vector_file(source, what)
        geometries, crs = layer.geometries, layer.crs
        values = {key: layer.column(field, key) for key, field in fields.items()}
    else:
        features = list(source)
        geometries = [f if hasattr(f, "geom_type") else f["geometry"] for f in features]
        geometries = [g if g is None or hasattr(g, "geom_type") else shape(g) for g in geometries]
        rows = [{} if hasattr(f, "geom_type") else (f.get("properties") or {}) for f in features]
        for key, field in fields.items():
            missing = next((r for r in rows if field not in r), None)
            if missing is not None:
                raise UserError(f"{key}={field!r} is missing from a feature of the {what} (its properties: "
                                f"{', '.join(list(missing)[:8]) or 'none'}); name one of them")
        values = {key: [r[field] for r in rows] for key, field in fields.items()}
    geometries = [valid_polygonal(g) for g in geometries]
    keep = [i for i, g in enumerate(geometries) if not g.is_empty]
    return (np.array([geometries[i] for i in keep], dtype=object),
            {key: [v[i] for i in keep] for key, v in values.items()}, crs)


def evaluation_crs(pred_crs, label_crs, geometries):
    """The projected CRS both sides are compared in (see the module docstring); None without any CRS.
    When both CRSs are geographic, the centre of ``geometries`` (the labels, or the predictions when there are no
    labels) places the UTM zone."""
    import shapely
    from rasterio.crs import CRS
    from rasterio.warp import transform as warp_points

    for crs in (pred_crs, label_crs):
        if crs is not None and crs.is_projected:
            return crs
    crs = label_crs or pred_crs
    if crs is None:
        return None
    if len(geometries) == 0:
        raise UserError("both inputs are in geographic coordinates and both are empty, so no UTM zone can be chosen; "
                        "give projected inputs")
    minx, miny, maxx, maxy = shapely.total_bounds(geometries)
    lon, lat = warp_points(crs, "EPSG:4326", [(minx + maxx) / 2], [(miny + maxy) / 2])
    zone = int((lon[0] + 180) // 6) % 60 + 1
    return CRS.from_epsg((32600 if lat[0] >= 0 else 32700) + zone)


def _to(geometries, src, dst):
    return geometries if src is None or dst is None or src == dst or len(geometries) == 0 else \
        np.array([valid_polygonal(g) for g in reproject(geometries, src, dst)], dtype=object)


def _seams(grid, crs):
    """Tile edges that are not on the scene's border, as line segments in ``crs``."""
    import shapely
    from shapely.geometry import LineString

    tiles = [t if hasattr(t, "geom_type") else shapely.box(*t) for t in grid.tiles]
    border = shapely.union_all(tiles).boundary
    segments = []
    for tile in tiles:
        ring = list(tile.exterior.coords)
        segments += [LineString(pair) for pair in zip(ring[:-1], ring[1:])]
    segments = np.array([s for s in segments if not border.covers(s)], dtype=object)
    if grid.crs is not None and crs is not None and grid.crs != crs and len(segments):
        segments = reproject(segments, grid.crs, crs)
    return segments


def _seam_counts(seams, truths, truth_classes, preds, pred_classes):
    """``(crossing, split)``: ground truths a seam runs through, and those matched by 2+ pieces (module docstring)."""
    import shapely

    if len(seams) == 0 or len(truths) == 0:
        return 0, 0
    gi, si = shapely.STRtree(seams).query(truths, predicate="intersects")  # (input, tree) index pairs
    inside = shapely.relate_pattern(seams[si], truths[gi], "1********")  # line interior meets polygon interior
    crossing = np.unique(gi[inside])
    split = 0
    if len(preds) and len(crossing):
        gj, pi = shapely.STRtree(preds).query(truths[crossing], predicate="intersects")
        inter = shapely.area(shapely.intersection(preds[pi], truths[crossing][gj]))
        piece = ((inter >= PIECE_COVER * shapely.area(truths[crossing][gj])) &
                 (inter >= PIECE_INSIDE * shapely.area(preds[pi])) &
                 (pred_classes[pi] == truth_classes[crossing][gj]))
        split = int((np.bincount(gj[piece], minlength=len(crossing)) >= 2).sum())
    return len(crossing), split


def valid_footprint(raster, side: int = VALID_AREA_SIDE):
    """``(geometry, crs)``: where ``raster`` holds data (every colour band valid: no nodata value, alpha, internal
    mask or NaN), polygonised from its masks read at most ``side`` pixels a side, in the raster's CRS."""
    import shapely
    from rasterio import features
    from rasterio.transform import Affine
    from shapely.geometry import shape

    with open_raster(raster) as ds:
        scale = min(1.0, side / max(ds.width, ds.height))
        h, w = max(1, round(ds.height * scale)), max(1, round(ds.width * scale))
        bands = colour_bands(ds) or [1]
        valid = np.logical_and.reduce([ds.read_masks(b, out_shape=(h, w)) > 0 for b in bands])
        for b in (b for b in bands if ds.dtypes[b - 1].startswith("float")):
            valid &= np.isfinite(ds.read(b, out_shape=(h, w)))
        transform = ds.transform @ Affine.scale(ds.width / w, ds.height / h)
        parts = [shape(g) for g, v in features.shapes(valid.view(np.uint8), mask=valid, transform=transform) if v]
        return shapely.union_all(parts), ds.crs


def _inside(geometries, area):
    """Bool per geometry: at least :data:`VALID_INSIDE` of its area lies in ``area``."""
    import shapely

    if len(geometries) == 0:
        return np.zeros(0, bool)
    return shapely.area(shapely.intersection(geometries, area)) >= VALID_INSIDE * shapely.area(geometries)


def _ratio(part, whole):
    return None if not whole else part / whole


def evaluate_scene(pred_vectors, label_vectors, *, iou_thresholds=COCO_IOU_THRESHOLDS, score_field: str = "score",
                   class_field: Optional[str] = "label", label_class_field: Optional[str] = None,
                   area_bands: Optional[dict] = None, tile_grid=None, score_threshold: float = 0.5,
                   pixel_size: Optional[float] = None, crs=None, max_dets: int = MAX_DETS, valid_area=None,
                   valid_area_crs=None) -> SceneReport:
    """Score a merged scene's predictions against its ground truth (see the module docstring for each number).

    ``pred_vectors`` / ``label_vectors``: vector files (GeoJSON, GeoPackage, Shapefile) or sequences of features
    (shapely geometries, or mappings with ``geometry`` and ``properties``) in ``crs``. ``class_field``: the class
    property of the predictions (None: one class), ``label_class_field`` that of the labels (default the same).
    ``area_bands``: ``{name: (low, high)}`` in m² (default :data:`AERIAL_AREA_BANDS`). ``tile_grid``: a
    :class:`TileGrid`, or tile polygons / ``(minx, miny, maxx, maxy)`` boxes in the predictions' CRS; without it the
    seam numbers are None. ``pixel_size`` (m) adds COCO's pixel bands (default: the grid's pixel size).
    ``valid_area``: where the raster holds data, a shapely geometry in ``valid_area_crs`` (default: the
    predictions' CRS) or a raster path (its footprint, :func:`valid_footprint`); predictions and labels more than
    half outside it are ignored, so no-data never counts as background.
    """
    from rasterio.crs import CRS

    crs = CRS.from_user_input(crs) if crs is not None else None
    label_field = label_class_field or class_field
    preds, pred_values, pred_crs = _read(pred_vectors, crs, "predictions",
                                         {"score_field": score_field, **({"class_field": class_field}
                                                                         if class_field else {})})
    truths, truth_values, label_crs = _read(label_vectors, crs, "labels",
                                            {"label_class_field": label_field} if class_field else {})
    if (pred_crs is None) != (label_crs is None):
        raise UserError(f"only the {'labels' if pred_crs is None else 'predictions'} have a CRS; give both sides one "
                        "(or pass crs= for feature lists)")
    target = evaluation_crs(pred_crs, label_crs, truths if len(truths) else preds)
    preds, truths = _to(preds, pred_crs, target), _to(truths, label_crs, target)
    ignored_preds = ignored_truths = 0
    if valid_area is not None:
        area, area_crs = valid_area, CRS.from_user_input(valid_area_crs) if valid_area_crs is not None else pred_crs
        if isinstance(valid_area, (str, os.PathLike)):
            area, area_crs = valid_footprint(valid_area)
        elif not hasattr(valid_area, "geom_type"):
            raise UserError(f"valid_area must be a shapely geometry or a raster path, got {type(valid_area).__name__}")
        area = _to(np.array([area], dtype=object), area_crs, target)[0]
        keep_p, keep_t = _inside(preds, area), _inside(truths, area)
        ignored_preds, ignored_truths = int((~keep_p).sum()), int((~keep_t).sum())
        preds, truths = preds[keep_p], truths[keep_t]
        pred_values = {k: [v for v, keep in zip(vs, keep_p) if keep] for k, vs in pred_values.items()}
        truth_values = {k: [v for v, keep in zip(vs, keep_t) if keep] for k, vs in truth_values.items()}
    scores = np.asarray(pred_values["score_field"], float)
    pred_classes = np.array([str(c) for c in pred_values.get("class_field", ["object"] * len(preds))], dtype=object)
    truth_classes = np.array([str(c) for c in truth_values.get("label_class_field", ["object"] * len(truths))],
                             dtype=object)
    factor = _unit_factor(target) ** 2
    pred_areas, truth_areas = _areas(preds, factor), _areas(truths, factor)
    grid = tile_grid if tile_grid is None or isinstance(tile_grid, TileGrid) else TileGrid(list(tile_grid), pred_crs)
    pixel_size = pixel_size or (grid.pixel_size if grid is not None else None)

    classes = sorted(set(truth_classes) | set(pred_classes))
    thresholds = [float(t) for t in iou_thresholds]
    bands = {"all": (0.0, math.inf), **(area_bands or AERIAL_AREA_BANDS)}
    if pixel_size:
        bands.update({f"px {name}": (lo * pixel_size ** 2, hi * pixel_size ** 2)
                      for name, (lo, hi) in COCO_PIXEL_BANDS.items()})
    curves: Dict[str, list] = {name: [] for name in bands}  # per band: [per class: [per threshold]]
    tp = duplicates = kept_preds = 0
    for name in classes:
        p, g = pred_classes == name, truth_classes == name
        candidates = by_prediction(candidate_ious(preds[p], truths[g]), int(p.sum()))
        for band, area_range in bands.items():
            curves[band].append(class_precisions(scores[p], pred_areas[p], truth_areas[g], candidates, area_range,
                                                 thresholds, max_dets))
        order = [d for d in np.argsort(-scores[p], kind="mergesort") if scores[p][d] >= score_threshold]
        matched = greedy_match(order, candidates, np.zeros(int(g.sum()), bool), MATCH_IOU)
        kept_preds += len(order)
        tp += int((matched[order] >= 0).sum())
        duplicates += sum(1 for d in order if matched[d] < 0 and len(candidates[d][1]) and
                          candidates[d][1].max() >= MATCH_IOU)

    def ap(band, at=None):
        picks = range(len(thresholds)) if at is None else [thresholds.index(at)] if at in thresholds else []
        return mean_precision([c[k] for c in curves[band] for k in picks]) if picks else None

    precision, recall = _ratio(tp, kept_preds), _ratio(tp, len(truths))
    f1 = None if precision is None or recall is None else \
        (2 * precision * recall / (precision + recall) if precision + recall else 0.0)
    seam_crossing = seam_split = None
    if grid is not None:
        seam_crossing, seam_split = _seam_counts(_seams(grid, target), truths, truth_classes,
                                                 preds[scores >= score_threshold],
                                                 pred_classes[scores >= score_threshold])
    return SceneReport(
        crs=target.to_string() if target is not None else None, predictions=len(preds), ground_truth=len(truths),
        classes=classes, ap=ap("all"), ap50=ap("all", 0.5), ap75=ap("all", 0.75),
        ap_by_class={name: mean_precision(curves["all"][k]) for k, name in enumerate(classes)},
        ap_by_area={name: ap(name) for name in (area_bands or AERIAL_AREA_BANDS)},
        ap_by_pixel_area={name: ap(f"px {name}") for name in COCO_PIXEL_BANDS} if pixel_size else None,
        score_threshold=score_threshold, precision=precision, recall=recall, f1=f1,
        seam_crossing=seam_crossing, seam_split=seam_split,
        seam_split_rate=_ratio(seam_split, seam_crossing) if grid is not None else None,
        duplicates=duplicates, duplicate_rate=_ratio(duplicates, kept_preds), ignored_predictions=ignored_preds,
        ignored_ground_truth=ignored_truths)


def _areas(geometries, factor):
    import shapely

    return shapely.area(geometries) * factor if len(geometries) else np.zeros(0)


__all__ = ["AERIAL_AREA_BANDS", "COCO_PIXEL_BANDS", "SceneReport", "TileGrid", "evaluate_scene", "evaluation_crs",
           "valid_footprint"]
