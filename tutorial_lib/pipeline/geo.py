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
import contextlib
import os
import warnings
from pathlib import Path

import numpy as np

from ..errors import UserError
from .sliced import SlicedInference
from .vectors import GeoJSONWriter, VectorFileWriter, area_function, mask_to_polygons, temp_path

GDAL_OPTIONS = {"GDAL_PAM_ENABLED": "NO", "GDAL_CACHEMAX": 64}  # no .aux.xml beside inputs; cache in MB
STRETCH_PERCENTILES = (2.0, 98.0)
_OVERVIEW_SIDE = 1024  # longest side of the decimated read used for statistics
WHOLE_TILE_MAX = 2048  # slice_size=None: rasters up to this size are predicted as one tile ...
AUTO_SLICE = 1024  # ... larger ones in tiles of this size


@contextlib.contextmanager
def open_raster(src):
    """Open a raster read-only inside an environment that never writes beside it; clear errors as UserError."""
    import rasterio
    from rasterio.errors import NotGeoreferencedWarning, RasterioIOError

    with rasterio.Env(**GDAL_OPTIONS):
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", NotGeoreferencedWarning)
                dataset = rasterio.open(src)
        except RasterioIOError as exc:
            raise UserError(f"cannot open raster {src}: {exc}") from None
        with dataset:
            yield dataset


def is_georeferenced(dataset):
    return dataset.crs is not None and not dataset.transform.is_identity


def is_georeferenced_file(path):
    """Does ``path`` open as a raster with a CRS and a transform? (False for anything unreadable.)"""
    try:
        with open_raster(path) as dataset:
            return is_georeferenced(dataset)
    except UserError:
        return False


class RasterReader:
    """RGB uint8 tiles from a raster through windows: bands 1-3 (or band 1 repeated for 1-2 bands).

    Non-uint8 data (e.g. 1-band uint16) is stretched per band between its 2nd and 98th percentiles, taken from
    a decimated read of the valid pixels. Nodata (the dataset's mask: nodata value, alpha or internal mask) reads
    as black, and :meth:`valid` tells which pixels hold data so that all-nodata tiles are skipped.
    """

    def __init__(self, dataset):
        from rasterio.enums import MaskFlags

        self.ds = dataset
        self.height, self.width = dataset.height, dataset.width
        if dataset.count < 1:
            raise UserError(f"{dataset.name} has no raster band")
        self.bands = [1, 2, 3] if dataset.count >= 3 else [1, 1, 1]
        self.has_mask = any(MaskFlags.all_valid not in flags for flags in dataset.mask_flag_enums[:max(self.bands)])
        self.stretch = None
        if dataset.dtypes[0] != "uint8" or any(dt != "uint8" for dt in dataset.dtypes[:max(self.bands)]):
            self.stretch = self._percentiles()

    def _percentiles(self):
        scale = min(1.0, _OVERVIEW_SIDE / max(self.height, self.width))
        shape = (max(1, int(self.height * scale)), max(1, int(self.width * scale)))
        unique = sorted(set(self.bands))
        data = self.ds.read(unique, out_shape=(len(unique),) + shape, masked=True)
        limits = {}
        for band, values in zip(unique, data):
            values = values.compressed() if np.ma.isMaskedArray(values) else np.asarray(values).ravel()
            values = values[np.isfinite(values)] if values.dtype.kind == "f" else values
            if values.size == 0:
                raise UserError(f"{self.ds.name}: band {band} holds only nodata")
            lo, hi = np.percentile(values.astype(np.float64), STRETCH_PERCENTILES)
            limits[band] = (float(lo), float(hi) if hi > lo else float(lo) + 1.0)
        lo = np.array([limits[b][0] for b in self.bands])[:, None, None]
        hi = np.array([limits[b][1] for b in self.bands])[:, None, None]
        return lo, hi

    def _to_rgb(self, data):
        if self.stretch is not None:
            lo, hi = self.stretch
            data = np.clip((np.nan_to_num(data.astype(np.float32)) - lo) / (hi - lo) * 255.0 + 0.5, 0, 255)
        return np.ascontiguousarray(np.transpose(data, (1, 2, 0)).astype(np.uint8))

    def read(self, x0, y0, x1, y1):
        from rasterio.windows import Window

        window = Window(x0, y0, x1 - x0, y1 - y0)
        rgb = self._to_rgb(self.ds.read(self.bands, window=window))
        if self.has_mask:
            rgb[~self.valid(x0, y0, x1, y1)] = 0
        return rgb

    def valid(self, x0, y0, x1, y1):
        """Bool (h, w): pixels holding data (None when the raster has no nodata)."""
        if not self.has_mask:
            return None
        from rasterio.windows import Window

        window = Window(x0, y0, x1 - x0, y1 - y0)
        masks = [self.ds.read_masks(b, window=window) for b in sorted(set(self.bands))]
        return np.logical_and.reduce([m > 0 for m in masks])

    def read_scaled(self, height, width):
        from rasterio.enums import Resampling

        data = self.ds.read(self.bands, out_shape=(3, height, width), resampling=Resampling.average)
        return self._to_rgb(data)


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


def predict_geotiff(predict_fn, src, geojson_path, slice_size=512, overlap_ratio=0.2, to_epsg4326=False,
                    mask_path=None, match_iou=0.5, progress=True, *, merge_mode="GREEDYNMM", match_metric="IOU",
                    match_on="masks", match_threshold=None, full_image=False, batch_size=1, vector_path=None,
                    instance_path=None, simplify_tolerance=0.0, labels=None):
    """Sliced prediction over a GeoTIFF (or any raster rasterio opens), read by windows and written as it streams.

    Writes ``geojson_path`` (RFC 7946 lon/lat when georeferenced, else pixel coordinates), and optionally
    ``vector_path`` (.gpkg/.fgb in the raster's CRS), ``mask_path`` (class COG) and ``instance_path`` (instance
    COG). ``slice_size=None``: one tile up to ``WHOLE_TILE_MAX`` px, else ``AUTO_SLICE`` tiles. ``to_epsg4326=True``
    insists on georeferencing
    (the GeoJSON is lon/lat anyway). ``simplify_tolerance`` in pixels. ``labels``: class names by id (default:
    those the predictions carry). Returns a summary dict (instances, CRS, output paths, tiles).
    """
    threshold = match_iou if match_threshold is None else match_threshold
    with open_raster(src) as dataset:
        georeferenced = is_georeferenced(dataset)
        if to_epsg4326 and not georeferenced:
            raise UserError(f"{src} has no georeferencing; EPSG:4326 output needs a CRS (omit to_epsg4326)")
        crs = dataset.crs if georeferenced else None
        transform = dataset.transform if georeferenced else None
        area_of = area_function(crs, dataset.transform, dataset.width, dataset.height)
        if slice_size is None:
            side = max(dataset.width, dataset.height)
            slice_size = max(16, side) if side <= WHOLE_TILE_MAX else AUTO_SLICE
        run = SlicedInference(RasterReader(dataset), predict_fn, slice_size, overlap_ratio, threshold, merge_mode,
                              match_metric, match_on, full_image, batch_size, progress)
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
