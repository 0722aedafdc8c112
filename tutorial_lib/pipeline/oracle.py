"""A tile predictor that answers with the ground truth: sliced inference's merge judged on its own.

A scene's score after sliced inference mixes two kinds of error: the model's (objects missed, misread, badly
outlined) and the merge's (an object cut by a tile seam left in two pieces, or kept twice). :class:`OracleTilePredictor`
removes the first kind: shown a tile of the raster, it returns every labelled object's part inside that tile, as a
perfect model would, so whatever ``predict_geotiff`` + ``evaluate_scene`` then count against the labels is the
merge's doing (and the vectorisation's).

It has the interface a real predictor has (``tile -> result``, or a list of tiles with ``batch_size`` > 1), so the
real path runs unchanged. A predictor is shown pixels only, not where they are, so the oracle recognises each tile
by its pixels: it reads every window of the tile grid once, as ``predict_geotiff`` will, and keeps a digest of each.

Scores: ``0.55 + 0.4 x (share of the object the tile shows) + 0.04 x (a fixed number per object)``, so, as with a
model, the more of an object a tile shows the higher its piece scores, pieces of one object are ordered the same
way in every run, and every piece passes the usual 0.5 operating threshold (the merge, not the threshold, decides).
"""
import hashlib
from pathlib import Path
from typing import Dict, List, Optional, Sequence, Union

import numpy as np

from ..data.categories import NWPU_CLASSES
from ..data.geovector import read_vector_file, reproject, valid_polygonal
from ..data.raster import RasterReader, open_raster
from ..errors import UserError
from ..predict.result import InstanceSegResult
from ..structures import Instances
from .sliced import tile_grid
from .vectors import polygon_to_mask

GOLDEN = 0.6180339887498949  # k x GOLDEN mod 1: the fixed numbers per object, spread evenly over [0, 1)


def tile_digest(tile: np.ndarray) -> bytes:
    """A digest of a tile's pixels and shape: how the oracle recognises a tile (and a cache finds it again)."""
    return hashlib.blake2b(np.ascontiguousarray(tile).tobytes(), digest_size=16,
                           person=str(tile.shape).encode()[:16]).digest()


class OracleTilePredictor:
    """``predict_fn`` for :func:`~tutorial_lib.pipeline.geo.predict_geotiff` over ``raster`` that returns the
    ``labels`` (a vector file; class in ``class_field``) cut to each tile (see the module docstring).

    ``slice_size`` and ``overlap_ratio`` must be those given to ``predict_geotiff``: only the tiles of that grid are
    known. ``classes``: the class names in class-id order (a label of another class is a UserError).
    """

    def __init__(self, raster: Union[str, Path], labels: Union[str, Path], class_field: str = "class",
                 slice_size: int = 512, overlap_ratio: float = 0.2, classes: Sequence[str] = NWPU_CLASSES):
        import shapely

        self.classes = list(classes)
        layer = read_vector_file(labels, "labels")
        names = [str(c) for c in layer.column(class_field, "class_field")]
        unknown = sorted(set(names) - set(self.classes))
        if unknown:
            raise UserError(f"labels of classes {', '.join(unknown[:5])} are not in classes= ({len(self.classes)} "
                            "names); pass the class list of the labels")
        with open_raster(raster) as ds:
            geometries = reproject(layer.geometries, layer.crs, ds.crs) if layer.crs and ds.crs else layer.geometries
            to_pixels = ~ds.transform
            pixels = shapely.transform(np.asarray(geometries, dtype=object),
                                       lambda xy: np.column_stack(to_pixels @ (xy[:, 0], xy[:, 1])))
            self.tiles = self._index(RasterReader(ds), tile_grid(ds.height, ds.width, int(slice_size),
                                                                 float(overlap_ratio)))
        polygons = [valid_polygonal(g) for g in pixels]
        keep = [k for k, g in enumerate(polygons) if not g.is_empty]
        self.polygons = np.array([polygons[k] for k in keep], dtype=object)
        self.class_ids = np.array([self.classes.index(names[k]) for k in keep], np.int64)
        self.areas = shapely.area(self.polygons)
        self.tree = shapely.STRtree(self.polygons)
        self.calls = 0

    @staticmethod
    def _index(reader: RasterReader, windows: List[tuple]) -> dict:
        """``{digest of the tile's pixels: window}`` for the windows holding data; two alike is an error."""
        index: Dict[bytes, tuple] = {}
        for window in windows:
            valid = reader.valid(*window)
            if valid is not None and not valid.any():
                continue  # all no-data: sliced inference never predicts it
            key = tile_digest(reader.read(*window))
            if key in index:
                raise ValueError(f"tiles {index[key]} and {window} hold the same pixels: the oracle cannot tell them "
                                 "apart")
            index[key] = window
        return index

    def window(self, tile: np.ndarray) -> Optional[tuple]:
        """The grid window ``(x0, y0, x1, y1)`` whose pixels ``tile`` holds (None for an unknown image)."""
        return self.tiles.get(tile_digest(tile))

    def __call__(self, tile: Union[np.ndarray, List[np.ndarray]]):
        if isinstance(tile, list):
            return [self(t) for t in tile]
        import shapely

        self.calls += 1
        window = self.window(tile)
        if window is None:
            raise ValueError("the oracle was shown an image that is no tile of its grid (another slice_size or "
                             "overlap_ratio, or full_image?)")
        x0, y0, x1, y1 = window
        crops, offsets, boxes, scores, class_ids = [], [], [], [], []
        for k in sorted(self.tree.query(shapely.box(x0, y0, x1, y1), predicate="intersects")):
            bx0, by0, bx1, by1 = self.polygons[k].bounds
            cx0, cy0 = max(x0, int(np.floor(bx0))), max(y0, int(np.floor(by0)))
            cx1, cy1 = min(x1, int(np.ceil(bx1))), min(y1, int(np.ceil(by1)))
            mask = polygon_to_mask(self.polygons[k], (cy1 - cy0, cx1 - cx0), (cx0, cy0))
            if not mask.any():
                continue
            seen = float(shapely.area(shapely.clip_by_rect(self.polygons[k], x0, y0, x1, y1))) / self.areas[k]
            crops.append(mask)
            offsets.append((cx0 - x0, cy0 - y0))
            boxes.append((cx0 - x0, cy0 - y0, cx1 - x0, cy1 - y0))
            scores.append(0.55 + 0.4 * min(seen, 1.0) + 0.04 * (k * GOLDEN % 1.0))
            class_ids.append(self.class_ids[k])
        instances = Instances((y1 - y0, x1 - x0), np.asarray(boxes, np.float32).reshape(-1, 4), scores, class_ids,
                              crops, np.asarray(offsets, np.int64).reshape(-1, 2))
        return InstanceSegResult(None, instances, self.classes)


__all__ = ["OracleTilePredictor", "tile_digest"]
