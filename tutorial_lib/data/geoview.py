"""A look at a GeoTIFF scene and its polygon labels before chipping: a small RGB picture, its no-data pixels, and
the labels moved onto it (notebook 04; :func:`tutorial_lib.figures.plot_geoscene` draws it).

:func:`scene_preview` reads the whole raster decimated to ``max_side`` pixels (GeoTIFF overviews make that cheap),
stretched to 8 bits as chipping does (:class:`.raster.RasterReader`: the first three bands, 2-98 % percentiles, here
of the whole scene rather than of its training chips), and reprojects the labels to the raster's pixel grid
(:func:`.geolabels.labels_on_raster`), so that a polygon in the wrong CRS or at the wrong place shows as such.
``detail`` adds a full-resolution window of that many pixels where the labels are most varied (the most classes,
then the most labels), on which small objects and their outlines can be told apart.
"""
from dataclasses import dataclass, field
from pathlib import Path
from typing import List, Optional, Tuple

import numpy as np

from .geolabels import labels_on_raster, read_labels
from .geosplit import chip_windows
from .raster import RasterReader, open_raster


@dataclass
class ScenePreview:
    """One view of a scene: ``image`` (h, w, 3) uint8; ``valid`` bool (h, w) or None (no no-data); ``objects``
    ``[(class name, shapely geometry in the raster's pixel coordinates)]`` that touch the view; ``window``
    ``(col, row, width, height)``: the part of the raster it shows; ``scale`` view pixels per raster pixel;
    ``facts`` what the files say (sizes, bands, CRSs); ``detail`` a full-resolution view of a part (or None)."""

    image: np.ndarray
    valid: Optional[np.ndarray]
    objects: List[Tuple[str, object]]
    window: Tuple[int, int, int, int]
    scale: float
    facts: dict = field(default_factory=dict)
    detail: Optional["ScenePreview"] = None


def _densest_window(geometries, classes, width, height, side):
    """``(col, row, side, side)``: the window of a ``side`` px grid (half overlapping) whose label centroids hold
    the most classes, then the most labels."""
    import shapely

    points = shapely.get_coordinates(shapely.centroid(geometries)) if len(geometries) else np.zeros((0, 2))
    best, most = None, (-1, -1)
    for col, row, w, h in chip_windows(width, height, side, 0.5):
        inside = ((points[:, 0] >= col) & (points[:, 0] < col + w) & (points[:, 1] >= row)
                  & (points[:, 1] < row + h))
        score = (len(set(classes[inside].tolist())), int(inside.sum()))
        if score > most:
            best, most = (col, row, w, h), score
    return best


def _eight_bit(data, limits, bands):
    """(3, h, w) -> (h, w, 3) uint8, stretched between ``limits`` ``{band: (low, high)}`` (None: uint8 as is)."""
    if limits is not None:
        low = np.array([limits[b][0] for b in bands], np.float32)[:, None, None]
        high = np.array([limits[b][1] for b in bands], np.float32)[:, None, None]
        data = np.clip((np.nan_to_num(data.astype(np.float32)) - low) / (high - low) * 255.0 + 0.5, 0, 255)
    return np.ascontiguousarray(np.transpose(data, (1, 2, 0)).astype(np.uint8))


def _view(ds, reader, geometries, classes, window, shape):
    """The view of ``window`` read at ``shape`` (h, w): picture, valid pixels, the objects that touch it, scale."""
    import shapely
    from rasterio.enums import Resampling
    from rasterio.windows import Window
    from shapely.geometry import box

    col, row, w, h = window
    scale = shape[1] / w
    area = Window(col, row, w, h)
    data = ds.read(reader.bands, window=area, out_shape=(len(reader.bands),) + shape, resampling=Resampling.average)
    image = _eight_bit(data, reader.limits, reader.bands)
    valid = None
    if reader.has_mask:
        valid = np.logical_and.reduce([ds.read_masks(b, window=area, out_shape=shape) > 0
                                       for b in sorted(set(reader.bands))])
        image[~valid] = 0
    frame = box(col, row, col + w, row + h)
    near = shapely.intersects(geometries, frame) if len(geometries) else np.zeros(0, bool)
    return image, valid, list(zip(classes[near].tolist(), geometries[near])), scale


def scene_preview(raster, labels, *, class_column="class", class_name=None, max_side=1024,
                  detail: Optional[int] = 512) -> ScenePreview:
    """A :class:`ScenePreview` of ``raster`` (a GeoTIFF) with ``labels`` (a vector file; the class from
    ``class_column``, or ``class_name`` for all) at most ``max_side`` pixels a side, and, unless ``detail`` is None or
    the scene fits ``max_side``, a full-resolution ``detail`` px window where the labels are most varied."""
    raster, labels = Path(raster), Path(labels)
    label_sets, _ = read_labels([labels], None if class_name else class_column, class_name)
    with open_raster(raster) as ds:
        reader = RasterReader(ds)
        geometries, classes, _ = labels_on_raster(label_sets, ds)
        scale = min(1.0, max_side / max(ds.width, ds.height))
        shape = (max(1, round(ds.height * scale)), max(1, round(ds.width * scale)))
        whole = (0, 0, ds.width, ds.height)
        image, valid, objects, scale = _view(ds, reader, geometries, classes, whole, shape)
        facts = {"raster": raster.name, "size (px)": f"{ds.width} x {ds.height}", "bands": ds.count,
                 "data type": "/".join(sorted(set(ds.dtypes))), "no-data value": ds.nodata,
                 "CRS": ds.crs.to_string() if ds.crs else None, "pixel size": f"{abs(ds.transform.a):g} m",
                 "labels": labels.name, "label CRS": str(label_sets[0].crs) if label_sets else None,
                 "polygons": sum(len(s.geometries) for s in label_sets),
                 "classes": len({str(c) for s in label_sets for c in s.classes})}
        preview = ScenePreview(image, valid, objects, whole, scale, facts)
        if detail and scale < 1:  # a scene shown whole at full resolution needs no detail
            side = min(int(detail), ds.width, ds.height)
            window = _densest_window(geometries, classes, ds.width, ds.height, side)
            part = _view(ds, reader, geometries, classes, window, (window[3], window[2]))
            preview.detail = ScenePreview(*part[:3], window, part[3])
    return preview


__all__ = ["ScenePreview", "scene_preview"]
