"""Reading rasters by windows as 8-bit RGB: the one place that decides bands, stretch and no-data.

Prediction (:mod:`tutorial_lib.pipeline.geo`) and chipping for training (:mod:`.geochips`) both read through
:class:`RasterReader`, so a model sees the same pixels in training as in deployment. It lives in the data layer
because chipping needs it and the data layer may not import the pipeline.

* Bands: 1-based numbers, three (R, G, B) or one (grey, repeated); by default bands 1-3, or band 1 for rasters
  with fewer than three bands.
* Stretch: non-uint8 bands (e.g. uint16 reflectances) are mapped linearly from their 2nd-98th percentile to
  0-255. The limits come from valid pixels only (no-data would pull the low percentile to the fill value), either
  given (chipping computes them once over the training windows and records them) or taken from a decimated read.
* No-data: the dataset's masks (nodata value, alpha band or internal mask) say which pixels hold data; no-data
  pixels read as black.

Reading runs with GDAL's PAM off, so no ``.aux.xml`` is ever written beside an input, and with a small block
cache, so memory stays flat however large the scene.
"""
import contextlib
import warnings
from pathlib import Path

import numpy as np

from ..errors import UserError

GDAL_OPTIONS = {"GDAL_PAM_ENABLED": "NO", "GDAL_CACHEMAX": 64}  # no .aux.xml beside inputs; cache in MB
STRETCH_PERCENTILES = (2.0, 98.0)
RASTER_SUFFIXES = (".tif", ".tiff")
_OVERVIEW_SIDE = 1024  # longest side of the decimated read used for statistics


def _short(exc, path, limit=90):
    """An exception's first line with ``path`` shortened to its name, cut to ``limit`` characters."""
    text = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
    text = text.replace(str(path), Path(str(path)).name)
    return text if len(text) <= limit else text[:limit - 3] + "..."


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
            raise UserError(f"cannot open raster {Path(str(src)).name}: {_short(exc, src)}; give a GeoTIFF "
                            "(or another raster GDAL reads)") from None
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


def select_bands(dataset, bands=None):
    """The three band numbers read as R, G, B: ``bands`` (3 numbers, or 1 repeated), else 1-3 or band 1."""
    count = dataset.count
    if count < 1:
        raise UserError(f"{Path(dataset.name).name} has no raster band")
    if bands is None:
        return [1, 2, 3] if count >= 3 else [1, 1, 1]
    bands = [bands] if isinstance(bands, int) else list(bands)
    if len(bands) not in (1, 3) or not all(isinstance(b, int) and 1 <= b <= count for b in bands):
        raise UserError(f"bands={bands} does not fit {Path(dataset.name).name} ({count} bands): give 3 band numbers "
                        f"(R, G, B) or 1 (grey), each between 1 and {count}")
    return bands * 3 if len(bands) == 1 else bands


def needs_stretch(dataset, bands):
    """True when any of ``bands`` is not uint8 (its values must be mapped to 0-255)."""
    return any(dataset.dtypes[b - 1] != "uint8" for b in bands)


def has_nodata(dataset, bands):
    """True when some pixel of ``bands`` may be no-data (a nodata value, an alpha band or an internal mask)."""
    from rasterio.enums import MaskFlags

    return any(MaskFlags.all_valid not in dataset.mask_flag_enums[b - 1] for b in set(bands))


def valid_mask(dataset, bands, window):
    """Bool (h, w): pixels of ``window`` where every band of ``bands`` holds data."""
    masks = [dataset.read_masks(b, window=window) for b in sorted(set(bands))]
    return np.logical_and.reduce([m > 0 for m in masks])


def valid_samples(dataset, bands, window=None, side=_OVERVIEW_SIDE):
    """``{band: 1-D values}``: the valid (unmasked, finite) pixels of each band in ``bands``, from a read of
    ``window`` (default: the whole raster) decimated to at most ``side`` pixels on its longer side."""
    height, width = (dataset.height, dataset.width) if window is None else (int(window.height), int(window.width))
    scale = min(1.0, side / max(height, width))
    shape = (max(1, int(height * scale)), max(1, int(width * scale)))
    unique = sorted(set(bands))
    data = dataset.read(unique, window=window, out_shape=(len(unique),) + shape, masked=True)
    samples = {}
    for band, values in zip(unique, data):
        values = values.compressed() if np.ma.isMaskedArray(values) else np.asarray(values).ravel()
        samples[band] = values[np.isfinite(values)] if values.dtype.kind == "f" else values
    return samples


def percentile_limits(samples, name):
    """``{band: (low, high)}`` at :data:`STRETCH_PERCENTILES` of each band's samples (``high > low``)."""
    limits = {}
    for band, values in samples.items():
        values = np.concatenate(values) if isinstance(values, list) else values
        if values.size == 0:
            raise UserError(f"{name}: band {band} holds only nodata")
        lo, hi = np.percentile(values.astype(np.float64), STRETCH_PERCENTILES)
        limits[band] = (float(lo), float(hi) if hi > lo else float(lo) + 1.0)
    return limits


class RasterReader:
    """RGB uint8 tiles from a raster through windows (see the module docstring for bands, stretch, no-data).

    ``bands``: see :func:`select_bands`. ``stretch``: ``{band: (low, high)}`` for the selected bands; by default
    computed here from a decimated read when a selected band is not uint8. :meth:`valid` tells which pixels hold
    data, so that all-nodata tiles are skipped.
    """

    def __init__(self, dataset, bands=None, stretch=None):
        self.ds = dataset
        self.height, self.width = dataset.height, dataset.width
        self.bands = select_bands(dataset, bands)
        self.has_mask = has_nodata(dataset, self.bands)
        if stretch is None and needs_stretch(dataset, self.bands):
            stretch = percentile_limits(valid_samples(dataset, self.bands), dataset.name)
        self.limits = stretch
        self.stretch = None
        if stretch is not None:
            lo = np.array([stretch[b][0] for b in self.bands])[:, None, None]
            hi = np.array([stretch[b][1] for b in self.bands])[:, None, None]
            self.stretch = lo, hi

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

        return valid_mask(self.ds, self.bands, Window(x0, y0, x1 - x0, y1 - y0))

    def read_scaled(self, height, width):
        from rasterio.enums import Resampling

        data = self.ds.read(self.bands, out_shape=(3, height, width), resampling=Resampling.average)
        return self._to_rgb(data)


__all__ = ["GDAL_OPTIONS", "RASTER_SUFFIXES", "STRETCH_PERCENTILES", "RasterReader", "has_nodata",
           "is_georeferenced", "is_georeferenced_file", "needs_stretch", "open_raster", "percentile_limits",
           "select_bands", "valid_mask", "valid_samples"]
