"""Vector files in (GeoJSON, GeoPackage, Shapefile, FlatGeobuf) and geometries moved between CRSs.

Labels for chipping (:mod:`.geochips`) and the files compared by scene evaluation
(:mod:`tutorial_lib.pipeline.scene_eval`) are read here. pyogrio's plain reader (``pyogrio.raw.read``: WKB plus one
numpy array per field) is used, so neither geopandas nor pyarrow is needed. Geometries are repaired on the way in
(``make_valid``, polygonal part only): a self-intersecting digitised outline would otherwise break clipping and
area computations later.
"""
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..errors import UserError

VECTOR_SUFFIXES = (".geojson", ".json", ".gpkg", ".shp", ".fgb")


@dataclass
class VectorLayer:
    """One layer of a vector file: shapely geometries (None where a feature has none), fields, CRS string."""

    name: str
    geometries: np.ndarray
    fields: dict
    crs: object  # rasterio CRS or None

    def __len__(self):
        return len(self.geometries)

    def column(self, field, key, fix="name one of them"):
        """The values of ``field``; else a UserError that names ``key`` (the option that chose it), the columns
        there are, and ``fix``."""
        if field not in self.fields:
            shown = ", ".join(list(self.fields)[:8]) or "none"
            raise UserError(f"{key}={field!r} is not a column of {self.name} (its columns: {shown}); {fix}")
        return self.fields[field]


def read_vector_file(path, what="labels"):
    """The first layer of ``path`` as a :class:`VectorLayer`; one UserError line when it cannot be read."""
    import shapely
    from pyogrio import errors
    from pyogrio.raw import read
    from rasterio.crs import CRS

    path = Path(path)
    try:
        meta, _, wkb, values = read(str(path))
    except (errors.DataSourceError, errors.DataLayerError, errors.FieldError, errors.GeometryError, OSError) as exc:
        text = str(exc).splitlines()[0].replace(str(path), path.name)[:80]
        raise UserError(f"cannot read {what} {path.name}: {text}; give a GeoJSON, GeoPackage or Shapefile") from None
    geometries = np.array([None if g is None else shapely.from_wkb(g) for g in wkb], dtype=object)
    crs = CRS.from_user_input(meta["crs"]) if meta.get("crs") else None
    return VectorLayer(path.name, geometries, dict(zip(meta["fields"], values)), crs)


def polygonal(geometry):
    """Only the polygonal part of ``geometry`` (``make_valid`` and clipping can add stray lines or points)."""
    from shapely.geometry import MultiPolygon, Polygon

    if geometry is None or geometry.is_empty:
        return Polygon()
    if isinstance(geometry, (Polygon, MultiPolygon)):
        return geometry
    flat = []
    for part in getattr(geometry, "geoms", []):
        if isinstance(part, Polygon) and not part.is_empty:
            flat.append(part)
        elif isinstance(part, MultiPolygon):
            flat.extend(part.geoms)
    if not flat:
        return Polygon()
    return flat[0] if len(flat) == 1 else MultiPolygon(flat)


def valid_polygonal(geometry):
    """``geometry`` repaired when invalid, polygonal part only (an empty Polygon for None or non-areal input)."""
    from shapely import make_valid

    if geometry is None:
        return polygonal(None)
    return polygonal(geometry if geometry.is_valid else make_valid(geometry))


def reproject(geometries, src_crs, dst_crs):
    """Geometries from ``src_crs`` to ``dst_crs``, all coordinates in one PROJ call (per-geometry calls cost
    milliseconds each). Polygons that would span more than 180 degrees of longitude in EPSG:4326 (they cross the
    antimeridian) go through GDAL's ``transform_geom``, which cuts them there (RFC 7946 section 3.1.9)."""
    import shapely
    from rasterio.warp import transform as warp_points
    from rasterio.warp import transform_geom
    from shapely.geometry import mapping, shape

    geometries = np.asarray(list(geometries), dtype=object)
    if len(geometries) == 0:
        return geometries

    def move(coords):
        xs, ys = warp_points(src_crs, dst_crs, coords[:, 0], coords[:, 1])
        return np.column_stack([xs, ys])

    out = shapely.transform(geometries, move)
    if str(dst_crs).upper() == "EPSG:4326":
        bounds = shapely.bounds(out)
        for i in np.flatnonzero(bounds[:, 2] - bounds[:, 0] > 180):
            out[i] = shape(transform_geom(src_crs, dst_crs, mapping(geometries[i]), antimeridian_cutting=True))
    return out


__all__ = ["VECTOR_SUFFIXES", "VectorLayer", "polygonal", "read_vector_file", "reproject", "valid_polygonal"]
