"""GeoTIFF in, GeoJSON out: sliced inference over raster windows, polygons in the raster's CRS.

The raster is never loaded whole: tiles are read with rasterio windows, detections are kept as cropped
masks (see :mod:`.sliced`), and each instance is polygonised in its own crop with the window's affine
transform, so polygons land at map coordinates. Images without georeferencing (PNG, JPEG, or a TIFF
without a transform) give pixel-coordinate GeoJSON.
"""
import json
from pathlib import Path

import numpy as np

from ..errors import UserError
from .sliced import sliced_predict


class RasterReader:
    """Reads RGB uint8 tiles from a raster through windows (bands 1-3, or band 1 repeated)."""

    def __init__(self, dataset):
        self.ds = dataset
        self.height, self.width = dataset.height, dataset.width
        self.bands = [1, 2, 3] if dataset.count >= 3 else [1, 1, 1]
        self.scale = None
        if dataset.dtypes[0] != "uint8":  # stretch other types to 0..255 with the raster's own statistics
            stats = [dataset.statistics(b, approx=True) for b in sorted(set(self.bands))]
            self.scale = (min(s.min for s in stats), max(s.max for s in stats))

    def read(self, x0, y0, x1, y1):
        from rasterio.windows import Window

        data = self.ds.read(self.bands, window=Window(x0, y0, x1 - x0, y1 - y0))
        if self.scale is not None:
            lo, hi = self.scale
            data = np.clip((data.astype(np.float64) - lo) / max(hi - lo, 1e-12) * 255, 0, 255)
        return np.ascontiguousarray(np.transpose(data, (1, 2, 0)).astype(np.uint8))


def instance_geometry(inst, transform):
    """Shapely geometry of one cropped-mask instance in the coordinates of ``transform`` (pixel -> map)."""
    from rasterio import features
    from rasterio.transform import Affine
    from shapely.geometry import shape
    from shapely.ops import unary_union

    crop_transform = transform @ Affine.translation(inst.x0, inst.y0)
    shapes = [shape(geom) for geom, value in
              features.shapes(inst.mask.astype(np.uint8), mask=inst.mask, transform=crop_transform) if value == 1]
    return unary_union(shapes) if shapes else None


def instances_to_geojson(instances, transform, crs=None, to_epsg4326=False):
    """A GeoJSON FeatureCollection dict: one (Multi)Polygon per instance with class, label and score."""
    from shapely.geometry import mapping

    features = []
    for k, inst in enumerate(instances):
        geometry = instance_geometry(inst, transform)
        if geometry is None:
            continue
        geometry = mapping(geometry)
        if to_epsg4326 and crs is not None:
            from rasterio.warp import transform_geom

            geometry = transform_geom(crs, "EPSG:4326", geometry)
        features.append({"type": "Feature", "id": k, "geometry": geometry,
                         "properties": {"class_id": inst.cls_id, "label": inst.label, "score": round(inst.score, 5),
                                        "pixel_bbox": list(inst.box), "pixel_area": inst.area}})
    collection = {"type": "FeatureCollection", "features": features}
    if crs is not None and not to_epsg4326:
        collection["crs"] = {"type": "name", "properties": {"name": crs.to_string()}}
    return collection


def write_mask_geotiff(instances, path, profile):
    """A georeferenced single-band raster of ``cls_id + 1`` per pixel (0 = background), written window by window."""
    import rasterio
    from rasterio.windows import Window

    profile = dict(profile, driver="GTiff", count=1, dtype="uint8", nodata=0, compress="deflate")
    profile.pop("photometric", None)
    with rasterio.open(path, "w+", **profile) as dst:
        for inst in sorted(instances, key=lambda i: i.score):  # higher scores painted last, on top
            x0, y0, x1, y1 = inst.box
            window = Window(x0, y0, x1 - x0, y1 - y0)
            tile = dst.read(1, window=window)
            tile[inst.mask] = inst.cls_id + 1
            dst.write(tile, 1, window=window)
    return path


def predict_geotiff(predict_fn, src, geojson_path, slice_size=512, overlap_ratio=0.2, to_epsg4326=False,
                    mask_path=None, match_iou=0.5, progress=True):
    """Sliced prediction over a GeoTIFF (or any raster rasterio opens); writes GeoJSON, optionally a mask GeoTIFF.

    Returns a summary dict (instances found, CRS, output paths).
    """
    import warnings

    import rasterio
    from rasterio.errors import NotGeoreferencedWarning, RasterioIOError

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", NotGeoreferencedWarning)
            dataset = rasterio.open(src)
    except RasterioIOError as exc:
        raise UserError(f"cannot open raster {src}: {exc}") from None
    with dataset:
        georeferenced = dataset.crs is not None and not dataset.transform.is_identity
        if to_epsg4326 and not georeferenced:
            raise UserError(f"{src} has no georeferencing; EPSG:4326 output needs a CRS (omit to_epsg4326)")
        instances = sliced_predict(RasterReader(dataset), predict_fn, slice_size, overlap_ratio, match_iou, progress)
        transform = dataset.transform if georeferenced else rasterio.transform.Affine.identity()
        collection = instances_to_geojson(instances, transform, dataset.crs if georeferenced else None, to_epsg4326)
        geojson_path = Path(geojson_path)
        geojson_path.parent.mkdir(parents=True, exist_ok=True)
        geojson_path.write_text(json.dumps(collection), encoding="utf-8")
        if mask_path is not None:
            write_mask_geotiff(instances, mask_path, dataset.profile)
    return {"instances": len(collection["features"]), "crs": dataset.crs.to_string() if georeferenced else None,
            "geojson": str(geojson_path), "mask": str(mask_path) if mask_path else None}
