"""One scene, every merge of sliced inference, scored in map space: why the merge matters, measured.

:func:`compare_merge_modes` predicts each tile of a GeoTIFF scene **once** (the predictions are kept by the tile's
pixels, as :func:`~.oracle.tile_digest` finds them again), then, for each merge setting ``(merge_mode,
match_metric, match_on)``, runs the real path, :func:`~.geo.predict_geotiff` (which writes the merged GeoJSON), and
scores that file against the scene's labels with :func:`~.scene_eval.evaluate_scene` over the same tile grid. Tile
predictions do not depend on the merge, so the settings differ in their merge alone.

Besides the merge settings, the pseudo-setting :data:`NO_MERGE` writes the tiles' detections as they were predicted
(each tile's own pieces, nothing matched): what a scene looks like without a merge, the baseline the others repair.

With :func:`oracle_predictor` (each tile's ground truth, :class:`~.oracle.OracleTilePredictor`) every error the
table shows is the merge's (or the vectorisation's: outlines follow pixel edges); with a real model's ``predict_fn``
model and merge errors come together.

:meth:`MergeStudy.seam_view` cuts a window of the scene around the seams where the most objects cross tile edges
and gathers what :func:`tutorial_lib.figures.plot_seam_zoom` draws: the picture, the ground truth and each setting's
merged polygons in raster pixels, the tile edges, and each setting's seam-split and duplicate counts there.
"""
import math
import time
from dataclasses import dataclass, field
from itertools import product
from pathlib import Path
from typing import Any, Callable, Dict, List, Optional, Sequence, Tuple, Union

import numpy as np

from ..data.categories import NWPU_CLASSES
from ..data.geovector import read_vector_file, reproject, valid_polygonal
from ..data.raster import RasterReader, open_raster
from ..errors import UserError
from .geo import _features, predict_geotiff
from .options import MATCH_METRICS, MATCH_ON, MERGE_MODES, MergeOptions, SliceOptions
from .oracle import OracleTilePredictor, tile_digest
from .scene_eval import AERIAL_AREA_BANDS, SceneReport, TileGrid, evaluate_scene
from .sliced import SlicedInference, tile_grid
from .vectors import GeoJSONWriter, area_function

Setting = Tuple[str, str, str]  # (merge_mode, match_metric, match_on)
NO_MERGE: Setting = ("none", "-", "-")  # the tiles' detections as predicted, nothing merged
DEFAULT_MERGE: Setting = ("GREEDYNMM", "IOU", "masks")  # sliced.py's default
SAHI_MERGE: Setting = ("GREEDYNMM", "IOS", "boxes")  # SAHI's default postprocess, on boxes
ALL_MERGES: Tuple[Setting, ...] = tuple(product(MERGE_MODES, MATCH_METRICS, MATCH_ON))
SCORE_THRESHOLD = 0.5  # the operating point of F1, seam-split and duplicate counts


def setting_name(setting: Setting) -> str:
    """``"GREEDYNMM · IOU · masks"`` (``"no merge"`` for :data:`NO_MERGE`): a setting's name in tables and
    figures."""
    return "no merge" if tuple(setting) == NO_MERGE else " · ".join(setting)


def as_setting(setting: Union[Sequence[str], str]) -> Setting:
    """A setting as a ``(merge_mode, match_metric, match_on)`` tuple; ``"none"`` (or ``"no merge"``) is
    :data:`NO_MERGE`."""
    if isinstance(setting, str):
        if setting.lower() in ("none", "no merge"):
            return NO_MERGE
        raise UserError(f"a merge setting is a (merge_mode, match_metric, match_on) tuple or 'none', got {setting!r}")
    found = tuple(str(v) for v in setting)
    if len(found) != 3:
        raise UserError(f"a merge setting is a (merge_mode, match_metric, match_on) tuple or 'none', got {setting!r}")
    return found


class TileCache:
    """A tile predictor whose results are kept by the tile's pixels: the first run predicts, the others reuse.
    ``calls``: how many times ``predict_fn`` ran; ``seconds``: the time it took."""

    def __init__(self, predict_fn: Callable[[np.ndarray], Any]):
        self.predict_fn = predict_fn
        self.results: Dict[bytes, Any] = {}
        self.seconds = 0.0
        self.calls = 0

    def __call__(self, tile: np.ndarray) -> Any:
        key = tile_digest(tile)
        if key not in self.results:
            start = time.perf_counter()
            self.results[key] = self.predict_fn(tile)
            self.seconds += time.perf_counter() - start
            self.calls += 1
        return self.results[key]


def oracle_predictor(raster: Union[str, Path], labels: Union[str, Path], slicing: SliceOptions = SliceOptions(),
                     class_field: str = "class",
                     classes: Sequence[str] = NWPU_CLASSES) -> OracleTilePredictor:
    """The ground truth cut to each tile of ``slicing``'s grid over ``raster``: a perfect model's ``predict_fn``."""
    if slicing.slice_size is None or slicing.full_image:
        raise UserError("the oracle knows the tiles of a fixed tile grid only: give slicing a slice_size and no "
                        "full_image")
    return OracleTilePredictor(raster, labels, class_field, slicing.slice_size, slicing.overlap_ratio, classes)


@dataclass
class SeamView:
    """A window of the scene for :func:`tutorial_lib.figures.plot_seam_zoom`, everything in raster pixels:
    ``image`` (h, w, 3) uint8 of ``window`` ``(x0, y0, x1, y1)``; ``truth`` the label polygons touching it;
    ``merged`` ``{setting name: polygons}``; ``tiles`` the grid's tile windows touching it; ``counts``
    ``{setting name: {"objects crossing seams", "split", "duplicates", "instances"}}`` counted in the window."""

    image: np.ndarray
    window: Tuple[int, int, int, int]
    truth: List[Any]
    merged: Dict[str, List[Any]]
    tiles: List[Tuple[int, int, int, int]]
    counts: Dict[str, Dict[str, int]]


@dataclass
class MergeStudy:
    """What :func:`compare_merge_modes` found: ``table`` (one row per setting, see :data:`COLUMNS`), ``reports``
    (the full :class:`~.scene_eval.SceneReport` per setting), ``paths`` (each setting's merged GeoJSON),
    ``seconds`` (each run's merge, vectorisation and writing, tile predictions excluded), ``grid`` (the tile
    polygons in map space) and ``windows`` (the same tiles in raster pixels), the tiles predicted and their time."""

    raster: Path
    labels: Path
    class_field: str
    table: Any  # pandas.DataFrame
    reports: Dict[Setting, SceneReport]
    paths: Dict[Setting, Path]
    seconds: Dict[Setting, float]
    grid: TileGrid
    windows: List[Tuple[int, int, int, int]]
    tiles_predicted: int
    predict_seconds: float
    _pixels: Dict[Any, list] = field(default_factory=dict, repr=False)

    @property
    def settings(self) -> List[Setting]:
        return list(self.reports)

    def polygons(self, setting: Setting) -> List[Any]:
        """The merged polygons of ``setting`` (a tuple or its name) in raster pixel coordinates."""
        return self._on_raster(self.paths[self._setting(setting)])

    def truth(self) -> List[Any]:
        """The label polygons in raster pixel coordinates."""
        return self._on_raster(self.labels)

    def _setting(self, setting: Union[Setting, str]) -> Setting:
        for known in self.reports:
            if setting == known or setting == setting_name(known):
                return known
        raise UserError(f"no setting {setting!r} in this study; it has {', '.join(map(setting_name, self.reports))}")

    def _on_raster(self, path: Path) -> list:
        import shapely

        if path not in self._pixels:
            layer = read_vector_file(path, "polygons")
            with open_raster(self.raster) as ds:
                geometries = layer.geometries
                if layer.crs is not None and ds.crs is not None:
                    geometries = reproject(geometries, layer.crs, ds.crs)
                to_pixels = ~ds.transform
                pixels = shapely.transform(np.asarray(geometries, dtype=object),
                                           lambda xy: np.column_stack(to_pixels @ (xy[:, 0], xy[:, 1])))
            self._pixels[path] = [valid_polygonal(g) for g in pixels]
        return self._pixels[path]

    def seam_window(self, side: int = 384) -> Tuple[int, int, int, int]:
        """``(x0, y0, x1, y1)``: the ``side`` px window (on a grid of half-``side`` steps) around the most label
        polygons that a seam (a tile edge inside the scene) runs through and that no tile holds whole (what a merge
        must put together from pieces), then the most seam-crossing polygons of any size."""
        import shapely

        with open_raster(self.raster) as ds:
            width, height = ds.width, ds.height
        side = int(min(side, width, height))
        truth = np.asarray(self.truth(), dtype=object)
        crossing = truth[_crossing(truth, self.windows, width, height)]
        bounds = shapely.bounds(crossing) if len(crossing) else np.zeros((0, 4))
        whole = np.array([any(w[0] <= b[0] and w[1] <= b[1] and b[2] <= w[2] and b[3] <= w[3] for w in self.windows)
                          for b in bounds], bool)
        centres = shapely.centroid(crossing) if len(crossing) else np.zeros(0, dtype=object)
        xs, ys = shapely.get_x(centres), shapely.get_y(centres)
        step = max(1, side // 2)
        best, found = (-1, -1), (0, 0, side, side)
        for y0 in sorted(set(list(range(0, height - side, step)) + [height - side])):
            for x0 in sorted(set(list(range(0, width - side, step)) + [width - side])):
                here = (xs >= x0) & (xs < x0 + side) & (ys >= y0) & (ys < y0 + side)
                score = (int((here & ~whole).sum()), int(here.sum()))
                if score > best:
                    best, found = score, (x0, y0, x0 + side, y0 + side)
        return found

    def seam_view(self, settings: Optional[Sequence[Union[Setting, str]]] = None,
                  window: Optional[Tuple[int, int, int, int]] = None, side: int = 384) -> SeamView:
        """What :func:`tutorial_lib.figures.plot_seam_zoom` draws for ``settings`` (default: every setting of the
        study) in ``window`` (default :meth:`seam_window` of ``side`` px)."""
        import shapely

        chosen = [self._setting(s) for s in (settings or self.settings)]
        x0, y0, x1, y1 = window or self.seam_window(side)
        frame = shapely.box(x0, y0, x1, y1)
        with open_raster(self.raster) as ds:
            image = RasterReader(ds).read(x0, y0, x1, y1)
            width, height = ds.width, ds.height
        tiles = [w for w in self.windows if w[0] < x1 and x0 < w[2] and w[1] < y1 and y0 < w[3]]
        truth = [g for g in self.truth() if g.intersects(frame)]
        # counted on the objects whose centre lies in the window, against the predictions touching it
        inside = [g for g in truth if frame.contains(g.centroid)]
        crossing = int(_crossing(np.asarray(inside, dtype=object), self.windows, width, height).sum()) \
            if inside else 0
        merged, counts = {}, {}
        for setting in chosen:
            name = setting_name(setting)
            merged[name] = [g for g in self.polygons(setting) if g.intersects(frame)]
            report = evaluate_scene([{"geometry": g, "properties": {"score": 1.0}} for g in merged[name]],
                                    [{"geometry": g, "properties": {}} for g in inside], class_field=None,
                                    tile_grid=[shapely.box(*w) for w in self.windows],
                                    score_threshold=SCORE_THRESHOLD)
            counts[name] = {"objects crossing seams": crossing, "split": int(report.seam_split or 0),
                            "duplicates": report.duplicates, "instances": len(merged[name])}
        return SeamView(image, (x0, y0, x1, y1), truth, merged, tiles, counts)


def _crossing(polygons: np.ndarray, windows: Sequence[Tuple[int, int, int, int]], width: int,
              height: int) -> np.ndarray:
    """Bool per polygon (raster pixels): a tile edge that is not on the scene's border runs through its interior."""
    import shapely
    from shapely.geometry import LineString

    crossing = np.zeros(len(polygons), bool)
    if not len(polygons):
        return crossing
    for x in sorted({v for w in windows for v in (w[0], w[2]) if 0 < v < width}):
        crossing |= shapely.relate_pattern(LineString([(x, 0), (x, height)]), polygons, "1********")
    for y in sorted({v for w in windows for v in (w[1], w[3]) if 0 < v < height}):
        crossing |= shapely.relate_pattern(LineString([(0, y), (width, y)]), polygons, "1********")
    return crossing


def _write_unmerged(predict_fn: Callable, raster: Path, path: Path, slicing: SliceOptions,
                    labels: Optional[Sequence[str]]) -> None:
    """The tiles' detections as predicted (no-data handled as ``predict_geotiff`` does), each its own polygon in a
    GeoJSON: a merge whose match never fires."""
    with open_raster(raster) as ds:
        crs = ds.crs
        area_of = area_function(crs, ds.transform, ds.width, ds.height)
        run = SlicedInference(RasterReader(ds), predict_fn, slicing, MergeOptions(), progress=False)
        run.merger.threshold = math.inf  # no two detections ever match: each stays as its tile predicted it
        names = dict(enumerate(labels or ()))
        writer = GeoJSONWriter(path, crs)
        try:
            next_id = 1
            for chunk in run:
                ids = np.arange(next_id, next_id + len(chunk))
                next_id += len(chunk)
                features = _features(chunk, ids, {**run.labels, **names}, ds.transform, area_of, 0.0)
                for feature in features:
                    feature["properties"]["pixel_bbox"] = feature.pop("pixel_bbox")
                writer.write(features)
            writer.close()
        except BaseException:
            writer.abort()
            raise


COLUMNS = ["merge", "metric", "match on", "instances", "AP", "AP50", "precision", "recall", "F1",
           "objects crossing seams", "seam-split", "seam-split rate", "duplicates", "duplicate rate",
           *[f"AP {band}" for band in AERIAL_AREA_BANDS], "run s"]


def compare_merge_modes(raster: Union[str, Path], labels: Union[str, Path], predict_fn: Callable[[np.ndarray], Any],
                        *, output_dir: Union[str, Path], modes: Optional[Sequence[Setting]] = None,
                        slicing: SliceOptions = SliceOptions(512, 0.2), match_threshold: float = 0.5,
                        class_field: str = "class", labels_of_classes: Optional[Sequence[str]] = None,
                        score_threshold: float = SCORE_THRESHOLD, progress: bool = False) -> MergeStudy:
    """Merge one scene's tile predictions every way of ``modes`` and score each merged GeoJSON against ``labels``.

    ``raster``: the GeoTIFF; ``labels``: its ground-truth polygons (class in ``class_field``); ``predict_fn``: a
    tile predictor (``tile -> result``: a pipeline's, or :func:`oracle_predictor`'s), called once per tile holding
    data whatever the number of settings. ``modes``: ``(merge_mode, match_metric, match_on)`` tuples, and/or
    :data:`NO_MERGE` (``"none"``) (default: the 12 of :data:`ALL_MERGES`). ``slicing``: the tile grid (a fixed
    ``slice_size``); ``match_threshold``: every setting's. ``labels_of_classes``: class names by id (default: the
    predictor's ``classes``, else those its results carry). The merged GeoJSONs go to ``output_dir``
    (``<mode>_<metric>_<on>.geojson``, ``no_merge.geojson``). ``score_threshold``: F1, seam-split and duplicate
    counts count the predictions scoring at least this.
    """
    import pandas as pd

    raster, labels, output_dir = Path(raster), Path(labels), Path(output_dir)
    if slicing.slice_size is None or slicing.full_image:
        raise UserError("compare_merge_modes needs a fixed tile grid: give slicing a slice_size and no full_image")
    settings = [as_setting(s) for s in (modes if modes is not None else ALL_MERGES)]
    for s in settings:
        if s != NO_MERGE:
            MergeOptions(*s, match_threshold)  # a bad name is a UserError before any work
    names = list(labels_of_classes) if labels_of_classes is not None else getattr(predict_fn, "classes", None)
    cache = TileCache(predict_fn)
    grid = TileGrid.from_raster(raster, slicing.slice_size, slicing.overlap_ratio)
    with open_raster(raster) as ds:
        windows = tile_grid(ds.height, ds.width, slicing.slice_size, slicing.overlap_ratio)
    reports: Dict[Setting, SceneReport] = {}
    paths: Dict[Setting, Path] = {}
    seconds: Dict[Setting, float] = {}
    for setting in settings:
        before, start = cache.seconds, time.perf_counter()
        path = output_dir / f"{'_'.join(setting) if setting != NO_MERGE else 'no_merge'}.geojson"
        if setting == NO_MERGE:
            _write_unmerged(cache, raster, path, slicing, names)
        else:
            predict_geotiff(cache, raster, path, slicing=slicing, merging=MergeOptions(*setting, match_threshold),
                            progress=progress, labels=names)
        seconds[setting] = time.perf_counter() - start - (cache.seconds - before)
        reports[setting] = evaluate_scene(path, labels, class_field="label", label_class_field=class_field,
                                          tile_grid=grid, score_threshold=score_threshold)
        paths[setting] = path
    rows = []
    for setting, r in reports.items():
        rows.append(dict(zip(COLUMNS, [
            setting[0] if setting != NO_MERGE else "none (tiles as predicted)", setting[1], setting[2],
            r.predictions, r.ap, r.ap50, r.precision, r.recall, r.f1, r.seam_crossing, r.seam_split,
            r.seam_split_rate, r.duplicates, r.duplicate_rate, *[r.ap_by_area[b] for b in AERIAL_AREA_BANDS],
            seconds[setting]])))
    table = pd.DataFrame(rows, columns=COLUMNS)
    return MergeStudy(raster, labels, class_field, table, reports, paths, seconds, grid, windows, cache.calls,
                      cache.seconds)


__all__ = ["ALL_MERGES", "COLUMNS", "DEFAULT_MERGE", "MergeStudy", "NO_MERGE", "SAHI_MERGE", "SeamView",
           "TileCache", "as_setting", "compare_merge_modes", "oracle_predictor", "setting_name"]
