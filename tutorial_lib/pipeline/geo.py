"""GeoTIFF in, vectors and label rasters out: sliced inference over raster windows, written as it streams.

The raster is never loaded whole: tiles are read through rasterio windows, instances are merged as the tile rows
advance (:mod:`.sliced`), and each instance that becomes final is polygonised in its own crop and written at once:

* GeoJSON (RFC 7946: WGS 84 longitude/latitude, no ``crs`` member), one (Multi)Polygon per instance with
  ``class_id``, ``label``, ``score``, ``area_m2`` (computed in a projected CRS), ``pixel_area``, ``pixel_bbox``;
* optionally the same features in the raster's own CRS as GeoPackage / FlatGeobuf (``vector_path``);
* optionally Cloud-Optimised GeoTIFFs of the class (``mask_path``: class id + 1) and instance (``instance_path``:
  feature id) of every pixel, 0 = background, painted window by window.

Images without georeferencing (PNG, JPEG, a TIFF without CRS) give pixel-coordinate outputs. Reading runs with
GDAL's PAM off, so no ``.aux.xml`` is ever written beside the input, and with a small GDAL block cache, so memory
stays flat however large the scene.
"""
import os
import warnings
from pathlib import Path

import numpy as np

# the raster reading core lives in the data layer (chipping shares it); its names stay importable from here
from ..data.raster import (GDAL_OPTIONS, STRETCH_PERCENTILES, RasterReader, is_georeferenced,  # noqa: F401
                           is_georeferenced_file, open_raster)
from ..errors import UserError
from .options import AUTO_SLICE, WHOLE_TILE_MAX  # noqa: F401  (slice_size=None: see SliceOptions.tile_size)
from .sliced import SlicedInference
from .vectors import GeoJSONWriter, VectorFileWriter, area_function, mask_to_polygons, temp_path


class LabelRasters:
    """Class and instance rasters painted window by window into temporary tiled GeoTIFFs, then copied to
    Cloud-Optimised GeoTIFFs at ``close()``. Where instances overlap, the higher score wins the pixel."""

    def __init__(self, dataset, class_path=None, instance_path=None, num_classes=255):
        self.paths = {"class": class_path, "instance": instance_path}
        self.scores = np.zeros(1024, np.float32)  # score of each instance id (0 = background)
        base = {"driver": "GTiff", "width": dataset.width, "height": dataset.height, "count": 1, "tiled": True,
                "blockxsize": 512, "blockysize": 512, "compress": "deflate", "zlevel": 1, "nodata": 0}
        if is_georeferenced(dataset):
            base.update(crs=dataset.crs, transform=dataset.transform)
        self.profiles = {"class": dict(base, dtype="uint8" if num_classes < 255 else "uint16"),
                         "instance": dict(base, dtype="uint32")}
        # the instance raster decides who owns a pixel, so it is kept even when only the class raster is wanted
        self.tmp = {}
        for kind in ("instance", "class"):
            target = self.paths[kind]
            if kind == "instance" and target is None:
                target = Path(class_path)
            if target is not None:
                target.parent.mkdir(parents=True, exist_ok=True)
                self.tmp[kind] = temp_path(target.with_name(f"{target.stem}-{kind}-work{target.suffix}"))
        self._open_all("w+")

    def _open_all(self, mode):
        import rasterio
        from rasterio.errors import NotGeoreferencedWarning

        with warnings.catch_warnings():
            warnings.simplefilter("ignore", NotGeoreferencedWarning)
            self.files = {kind: rasterio.open(path, mode, **(self.profiles[kind] if mode == "w+" else {}))
                          for kind, path in self.tmp.items()}

    def reopen(self):
        """Close and reopen the work files: flushes GDAL's cached blocks, keeping memory flat on long runs."""
        for f in self.files.values():
            f.close()
        self._open_all("r+")

    def paint(self, ids, instances):
        """Paint one chunk of instances (ids = their feature ids) through one window around all of them."""
        from rasterio.windows import Window

        if len(instances) == 0:
            return
        top = int(max(ids))
        if top >= len(self.scores):
            self.scores = np.resize(self.scores, max(top + 1, 2 * len(self.scores)))
        x0, y0 = instances.mask_offsets.min(axis=0)
        x1 = max(int(o[0]) + m.shape[1] for m, o in zip(instances.masks, instances.mask_offsets))
        y1 = max(int(o[1]) + m.shape[0] for m, o in zip(instances.masks, instances.mask_offsets))
        window = Window(int(x0), int(y0), x1 - int(x0), y1 - int(y0))
        owner = self.files["instance"].read(1, window=window)
        classes = self.files["class"].read(1, window=window) if "class" in self.files else None
        for k in np.argsort(instances.scores, kind="stable"):  # higher scores painted last
            mask, (mx, my) = instances.masks[k], instances.mask_offsets[k]
            if mask.size == 0:
                continue
            score, iid = float(instances.scores[k]), int(ids[k])
            self.scores[iid] = score
            rows, cols = slice(my - y0, my - y0 + mask.shape[0]), slice(mx - x0, mx - x0 + mask.shape[1])
            here = owner[rows, cols]
            wins = mask & ((here == 0) | (self.scores[here] < score))
            here[wins] = iid
            if classes is not None:
                classes[rows, cols][wins] = int(instances.class_ids[k]) + 1
        self.files["instance"].write(owner, 1, window=window)
        if classes is not None:
            self.files["class"].write(classes, 1, window=window)

    def close(self):
        from rasterio.shutil import copy

        for f in self.files.values():
            f.close()
        for kind, target in self.paths.items():
            if target is not None:
                out = temp_path(target)
                copy(str(self.tmp[kind]), str(out), driver="COG", compress="deflate", blocksize=512)
                os.replace(out, target)
        self.abort()

    def abort(self):
        for f in self.files.values():
            f.close()
        for path in self.tmp.values():
            Path(path).unlink(missing_ok=True)


def _features(instances, ids, labels, transform, area_of, simplify_tolerance):
    """GeoJSON-like feature dicts (shapely geometry in the raster's CRS, or pixels) of one chunk of instances."""
    geometries = [mask_to_polygons(mask, (int(x0), int(y0)), simplify_tolerance, transform)
                  for mask, (x0, y0) in zip(instances.masks, instances.mask_offsets)]
    keep = [k for k, g in enumerate(geometries) if not g.is_empty]
    areas = area_of([geometries[k] for k in keep])
    out = []
    for k, area in zip(keep, areas):
        mask, (x0, y0) = instances.masks[k], instances.mask_offsets[k]
        cls = int(instances.class_ids[k])
        out.append({"id": int(ids[k]), "geometry": geometries[k],
                    "properties": {"instance_id": int(ids[k]), "class_id": cls, "label": labels.get(cls, str(cls)),
                                   "score": round(float(instances.scores[k]), 5),
                                   "area_m2": None if area is None else round(float(area), 4),
                                   "pixel_area": int(mask.sum())},
                    "pixel_bbox": [int(x0), int(y0), int(x0) + mask.shape[1], int(y0) + mask.shape[0]]})
    return out


def predict_geotiff(predict_fn, src, geojson_path, *, slicing=None, merging=None, to_epsg4326=False,
                    mask_path=None, vector_path=None, instance_path=None, simplify_tolerance=0.0, labels=None,
                    progress=True, raster=None):
    """Sliced prediction over a GeoTIFF (or any raster rasterio opens), read by windows and written as it streams.

    Writes ``geojson_path`` (RFC 7946 lon/lat when georeferenced, else pixel coordinates), and optionally
    ``vector_path`` (.gpkg/.fgb in the raster's CRS), ``mask_path`` (class COG) and ``instance_path`` (instance
    COG). ``slicing`` / ``merging``: :class:`~.options.SliceOptions` / :class:`~.options.MergeOptions` (defaults
    when None; ``slice_size=None``: one tile up to ``WHOLE_TILE_MAX`` px, else ``AUTO_SLICE`` tiles; ``batch_size``
    None: 1). ``to_epsg4326=True`` insists on georeferencing (the GeoJSON is lon/lat anyway).
    ``simplify_tolerance`` in pixels. ``labels``: class names by id (default: those the predictions carry).
    ``raster``: the model's :class:`~tutorial_lib.data.raster.RasterSettings` (``Predictor.raster_settings``): its
    bands and training stretch replace the scene's own percentiles. Masks never cover no-data, and a detection more
    than half on no-data is dropped. Returns a summary dict (instances, CRS, output paths, tiles).
    """
    with open_raster(src) as dataset:
        georeferenced = is_georeferenced(dataset)
        if to_epsg4326 and not georeferenced:
            raise UserError(f"{src} has no georeferencing; EPSG:4326 output needs a CRS (omit to_epsg4326)")
        crs = dataset.crs if georeferenced else None
        transform = dataset.transform if georeferenced else None
        area_of = area_function(crs, dataset.transform, dataset.width, dataset.height)
        reader = RasterReader(dataset, settings=raster)  # the model's bands and training stretch, when it has them
        run = SlicedInference(reader, predict_fn, slicing, merging, progress)
        names = dict(labels) if isinstance(labels, dict) else dict(enumerate(labels or ()))
        writers = [GeoJSONWriter(geojson_path, crs)]
        vector = VectorFileWriter(vector_path, crs) if vector_path else None
        rasters = None
        try:
            if vector is not None:
                writers.append(vector)
            if mask_path is not None or instance_path is not None:
                rasters = LabelRasters(dataset, Path(mask_path) if mask_path else None,
                                       Path(instance_path) if instance_path else None)
            next_id = 1
            for chunk in run:
                names_now = {**run.labels, **names}
                ids = np.arange(next_id, next_id + len(chunk))
                next_id += len(chunk)
                features = _features(chunk, ids, names_now, transform, area_of, simplify_tolerance)
                for feature in features:
                    feature["properties"]["pixel_bbox"] = feature.pop("pixel_bbox")
                writers[0].write(features)
                if vector is not None:
                    vector.write([{**f, "properties": {k: v for k, v in f["properties"].items() if k != "pixel_bbox"}}
                                  for f in features])
                if rasters is not None:
                    rasters.paint(ids, chunk)
                    rasters.reopen()
            for writer in writers:
                writer.close()
            if rasters is not None:
                rasters.close()
        except BaseException:
            for writer in writers:
                writer.abort()
            if rasters is not None:
                rasters.abort()
            raise
        count = writers[0].count
    return {"instances": count, "crs": crs.to_string() if crs is not None else None,
            "geojson": str(geojson_path), "vector": str(vector_path) if vector_path else None,
            "mask": str(mask_path) if mask_path else None, "instance_raster": str(instance_path) if instance_path
            else None, "tiles": len(run.tiles), "tiles_predicted": run.tiles_predicted}
