"""Masks -> polygons, and polygons -> GeoJSON (RFC 7946) / GeoPackage / FlatGeobuf, written as they stream.

Polygons follow pixel edges (GDAL's polygonize through :func:`rasterio.features.shapes`), so rasterising them back
on the same grid gives the mask again; holes are kept; pieces touching only at a corner become one MultiPolygon.
Every writer writes to a temporary file beside its target and moves it into place when closed (``os.replace``), so
a reader never sees half a file and an interrupted run leaves no output that looks finished.
"""
import json
import os
from pathlib import Path

import numpy as np

from ..data.geovector import polygonal as _polygonal, reproject, valid_polygonal as _valid  # moved down: chips use them
from ..errors import UserError

VECTOR_DRIVERS = {".gpkg": "GPKG", ".fgb": "FlatGeobuf"}
TMP_MARK = ".tmp-"


def temp_path(path):
    """A temporary name beside ``path`` (same folder, so ``os.replace`` is atomic), keeping its suffix."""
    path = Path(path)
    return path.with_name(f"{path.stem}{TMP_MARK}{os.getpid()}{path.suffix}")


def mask_to_polygons(mask, offset=(0, 0), simplify_tolerance=0.0, transform=None):
    """A valid shapely Polygon or MultiPolygon tracing the pixel edges of ``mask`` (bool (h, w)).

    ``offset`` (x, y) places the mask's top-left pixel in the image (a box-cropped mask's offset); ``transform``
    (an :class:`affine.Affine`, image pixel -> map) then maps it to map coordinates (default: pixel coordinates).
    ``simplify_tolerance`` > 0 simplifies with topology preserved, in pixels (before ``transform``). An empty
    mask gives an empty Polygon.
    """
    from affine import Affine
    from rasterio import features
    from shapely import affinity
    from shapely.geometry import Polygon, shape
    from shapely.ops import unary_union

    mask = np.asarray(mask, bool)
    if mask.ndim != 2:
        raise ValueError(f"mask_to_polygons needs a 2-D mask, got shape {mask.shape}")
    if mask.size == 0 or not mask.any():
        return Polygon()
    shift = Affine.translation(float(offset[0]), float(offset[1]))
    # 4-connectivity: corner-touching pieces stay separate rings (no self-touching ring), the union joins them
    pieces = [shape(geom) for geom, value in
              features.shapes(np.ascontiguousarray(mask).view(np.uint8), mask=mask, connectivity=4, transform=shift)
              if value]
    geometry = _valid(pieces[0] if len(pieces) == 1 else unary_union(pieces))
    geometry = _polygonal(geometry)
    if simplify_tolerance and simplify_tolerance > 0:
        geometry = _valid(geometry.simplify(float(simplify_tolerance), preserve_topology=True))
    if transform is not None and not transform.is_identity:
        geometry = _valid(affinity.affine_transform(geometry, [transform.a, transform.b, transform.d, transform.e,
                                                               transform.xoff, transform.yoff]))
    return geometry


def polygon_to_mask(geometry, shape, offset=(0, 0), transform=None):
    """Rasterise ``geometry`` onto a (h, w) grid whose top-left pixel is image pixel ``offset`` (the inverse of
    :func:`mask_to_polygons`: a pixel is in when its centre is)."""
    from affine import Affine
    from rasterio import features

    h, w = int(shape[0]), int(shape[1])
    if geometry is None or geometry.is_empty or h == 0 or w == 0:
        return np.zeros((h, w), bool)
    pixel_to_out = Affine.translation(float(offset[0]), float(offset[1]))
    if transform is not None:
        pixel_to_out = transform @ pixel_to_out
    return features.rasterize([(geometry, 1)], out_shape=(h, w), transform=pixel_to_out, fill=0,
                              dtype="uint8").astype(bool)


def area_function(crs, transform, width, height):
    """``[geometries in crs] -> [m²]``: planar area for a projected CRS (scaled by its linear unit), area in a
    Lambert equal-area projection centred on the scene for a geographic one; None each without a CRS."""
    import shapely
    from rasterio.crs import CRS
    from rasterio.warp import transform as warp_points

    if crs is None:
        return lambda geometries: [None] * len(geometries)
    if crs.is_projected:
        try:
            factor = float(crs.linear_units_factor[1])
        except Exception as exc:  # a projected CRS whose unit GDAL cannot name
            raise UserError(f"the raster's CRS has no usable linear unit for area_m2: {exc}") from None
        return lambda geometries: list(shapely.area(np.asarray(list(geometries), dtype=object)) * factor * factor)
    cx, cy = transform @ (width / 2, height / 2)
    try:
        lon, lat = warp_points(crs, "EPSG:4326", [cx], [cy])
    except Exception as exc:
        raise UserError(f"cannot relate the raster's CRS to longitude/latitude: {exc}") from None
    laea = CRS.from_proj4(f"+proj=laea +lat_0={lat[0]:.8f} +lon_0={lon[0]:.8f} +datum=WGS84 +units=m +no_defs")
    return lambda geometries: list(shapely.area(reproject(geometries, crs, laea)))


class GeoJSONWriter:
    """A FeatureCollection written feature by feature. With ``crs`` the geometries are reprojected to WGS 84
    longitude/latitude and no ``crs`` member is written (RFC 7946); without, they stay in pixel coordinates."""

    def __init__(self, path, crs=None):
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.crs = crs
        self.tmp = temp_path(self.path)
        self.file = open(self.tmp, "w", encoding="utf-8")
        self.file.write('{"type": "FeatureCollection", "features": [\n')
        self.count = 0

    def write(self, features):
        """``features``: dicts with ``id``, ``geometry`` (shapely, in ``crs`` or pixels) and ``properties``."""
        import shapely
        from shapely.geometry import mapping

        features = list(features)
        geometries = [f["geometry"] for f in features]
        if self.crs is not None:
            geometries = reproject(geometries, self.crs, "EPSG:4326")
        geometries = shapely.orient_polygons(np.asarray(geometries, dtype=object), exterior_cw=False)  # RFC 7946
        for feature, geometry in zip(features, geometries):
            record = {"type": "Feature", "id": feature["id"], "geometry": mapping(geometry),
                      "properties": feature["properties"]}
            self.file.write(("" if self.count == 0 else ",\n") + json.dumps(record))
            self.count += 1

    def close(self):
        self.file.write("\n]}\n")
        self.file.close()
        os.replace(self.tmp, self.path)

    def abort(self):
        self.file.close()
        self.tmp.unlink(missing_ok=True)


class VectorFileWriter:
    """GeoPackage (``.gpkg``) or FlatGeobuf (``.fgb``) in the raster's own CRS via pyogrio, appended chunk by
    chunk. Fields: the ``properties`` of the first feature (same keys in every feature)."""

    def __init__(self, path, crs=None):
        self.path = Path(path)
        self.driver = VECTOR_DRIVERS.get(self.path.suffix.lower())
        if self.driver is None:
            raise UserError(f"vector output {self.path.name}: use a .gpkg (GeoPackage) or .fgb (FlatGeobuf) name")
        try:
            import pyogrio  # noqa: F401
        except ImportError:
            raise UserError("GeoPackage / FlatGeobuf output needs pyogrio (pip install pyogrio)") from None
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.crs = crs
        self.tmp = temp_path(self.path)
        self.tmp.unlink(missing_ok=True)
        self.fields = None
        self.count = 0

    def write(self, features):
        import shapely
        from pyogrio.raw import write

        features = list(features)
        if not features:
            return
        if self.fields is None:
            self.fields = list(features[0]["properties"])
        geometry = np.array([shapely.to_wkb(shapely.geometry.MultiPolygon([f["geometry"]])
                                            if f["geometry"].geom_type == "Polygon" else f["geometry"])
                             for f in features], dtype=object)
        columns = []
        for name in self.fields:
            values = [f["properties"][name] for f in features]
            if all(isinstance(v, str) for v in values):
                columns.append(np.array(values, dtype=object))
            elif all(isinstance(v, (int, np.integer)) for v in values):
                columns.append(np.array(values, dtype=np.int64))
            else:  # floats, possibly None (-> NaN, written as null)
                columns.append(np.array([np.nan if v is None else float(v) for v in values], dtype=np.float64))
        write(str(self.tmp), geometry, columns, fields=self.fields, driver=self.driver,
              geometry_type="MultiPolygon", crs=None if self.crs is None else self.crs.to_wkt(),
              append=self.count > 0, layer="instances")
        self.count += len(features)

    def close(self):
        if self.count == 0:  # an empty layer still needs its schema
            from pyogrio.raw import write

            write(str(self.tmp), np.array([], dtype=object), [np.array([], np.int64)], fields=["instance_id"],
                  driver=self.driver, geometry_type="MultiPolygon", layer="instances",
                  crs=None if self.crs is None else self.crs.to_wkt())
        os.replace(self.tmp, self.path)

    def abort(self):
        self.tmp.unlink(missing_ok=True)


__all__ = ["GeoJSONWriter", "VectorFileWriter", "area_function", "mask_to_polygons", "polygon_to_mask",
           "reproject", "temp_path"]
