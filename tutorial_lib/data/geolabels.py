"""Polygon labels for chipping: read with their class, then placed on a raster's pixel grid.

Each label file keeps its own CRS until it meets a raster: :func:`labels_on_raster` reprojects it to that raster's
CRS and then into the raster's pixel coordinates (the inverse geotransform), so that clipping to chips happens in
pixels, where a chip is a plain box. Features without a polygon or without a class are skipped and counted, not
fatal: real label files carry stray points and empty rows.
"""
import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..errors import UserError
from .geovector import read_vector_file, reproject, valid_polygonal


@dataclass
class LabelSet:
    """The usable features of one label file: valid polygonal geometries, their class names, the file's CRS."""

    name: str
    geometries: np.ndarray
    classes: np.ndarray
    crs: object


def _has_class(value):
    return value is not None and not (isinstance(value, float) and math.isnan(value)) and str(value).strip() != ""


def read_labels(paths, class_column=None, class_name=None):
    """``(label sets, skipped feature count)``; the class comes from ``class_column`` or is ``class_name``."""
    paths = [Path(p) for p in paths]
    if class_column is not None and class_name is not None:
        raise UserError("give class_column (classes from a column) or class_name (one class for all), not both")
    layers = [read_vector_file(p, "labels") for p in paths]
    if class_column is None and class_name is None:
        shown = ", ".join(list(layers[0].fields)[:8]) if layers else ""
        raise UserError(f"labels need a class: pass class_column (a column of {layers[0].name}: {shown or 'none'}) "
                        "or class_name=NAME for one class")
    sets, skipped = [], 0
    for layer in layers:
        if layer.crs is None:
            raise UserError(f"labels {layer.name} have no CRS, so they cannot be placed on a raster; add one (a .prj, "
                            "or ogr2ogr -a_srs EPSG:XXXX) or save them as GeoPackage")
        values = layer.column(class_column, "class_column", "pass one of them, or class_name=NAME for one class") \
            if class_column is not None else [class_name] * len(layer)
        geometries = [valid_polygonal(g) for g in layer.geometries]
        keep = [i for i, (g, v) in enumerate(zip(geometries, values)) if not g.is_empty and _has_class(v)]
        skipped += len(layer) - len(keep)
        sets.append(LabelSet(layer.name, np.array([geometries[i] for i in keep], dtype=object),
                             np.array([str(values[i]).strip() for i in keep], dtype=object), layer.crs))
    return sets, skipped


def labels_on_raster(label_sets, dataset):
    """The labels that touch ``dataset``, in its pixel coordinates: ``(geometries, classes, hits)`` where ``hits``
    holds, per label set, a bool array of which of its features touch the raster.

    Only the labels near the raster's footprint (its bounds in the labels' CRS) are reprojected, so a large label
    file costs little per raster."""
    import shapely
    from rasterio.warp import transform_bounds
    from shapely.geometry import box

    inverse = ~dataset.transform
    frame = box(0, 0, dataset.width, dataset.height)
    geometries, classes, hits = [], [], []
    for labels in label_sets:
        hit = np.zeros(len(labels.geometries), bool)
        near = np.arange(len(labels.geometries))
        if labels.crs != dataset.crs:
            west, south, east, north = transform_bounds(dataset.crs, labels.crs, *dataset.bounds, densify_pts=21)
            if west <= east:  # a footprint across the antimeridian: no prefilter
                near = np.flatnonzero(shapely.intersects(labels.geometries, box(west, south, east, north)))
        moved = labels.geometries[near]
        if len(moved) and labels.crs != dataset.crs:
            moved = reproject(moved, labels.crs, dataset.crs)
        pixels = shapely.transform(np.asarray(moved, dtype=object),
                                   lambda xy: np.column_stack(inverse @ (xy[:, 0], xy[:, 1])))
        pixels = np.array([valid_polygonal(g) for g in pixels], dtype=object)
        inside = shapely.intersects(pixels, frame) if len(pixels) else np.zeros(0, bool)
        hit[near[inside]] = True
        geometries.extend(pixels[inside])
        classes.extend(labels.classes[near[inside]])
        hits.append(hit)
    return np.array(geometries, dtype=object), np.array(classes, dtype=object), hits

__all__ = ["LabelSet", "labels_on_raster", "read_labels"]
