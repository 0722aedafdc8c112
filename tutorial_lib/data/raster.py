"""Reading rasters by windows as 8-bit RGB: the one place that decides bands, stretch and no-data.

Prediction (:mod:`tutorial_lib.pipeline.geo`) and chipping for training (:mod:`.geochips`) both read through
:class:`RasterReader`, so a model sees the same pixels in training as in deployment. It lives in the data layer
because chipping needs it and the data layer may not import the pipeline.

* Bands: 1-based numbers, three (R, G, B) or one (grey, repeated); by default the first three colour bands, or the
  only one (grey). An alpha band is a mask, never a colour: it is skipped by default and refused when named. A
  raster with two colour bands needs ``bands=``. Complex pixels are refused.
* Stretch: non-uint8 bands (uint16 reflectances, int16, float32) are mapped linearly from their 2nd-98th
  percentile to 0-255. The limits come from valid pixels only (no-data would pull the low percentile to the fill
  value), either given (chipping computes them once over the training windows and records them; an exported model
  carries them as :class:`RasterSettings`) or taken from a decimated read.
* No-data: the dataset's masks (nodata value, alpha band or internal mask) say which pixels hold data, and in float
  bands NaN (and infinities) count as no-data too; no-data pixels read as black.

Reading runs with GDAL's PAM off, so no ``.aux.xml`` is ever written beside an input, and with a small block
cache, so memory stays flat however large the scene.
"""
import contextlib
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Dict, Optional, Tuple

import numpy as np

from ..errors import UserError

GDAL_OPTIONS = {"GDAL_PAM_ENABLED": "NO", "GDAL_CACHEMAX": 64}  # no .aux.xml beside inputs; cache in MB
STRETCH_PERCENTILES = (2.0, 98.0)
RASTER_SUFFIXES = (".tif", ".tiff")
REAL_DTYPES = ("uint", "int", "float")  # rasterio dtype names that have a brightness (complex ones do not)
_OVERVIEW_SIDE = 1024  # longest side of the decimated read used for statistics


def _short(exc, path, limit=90):
    """An exception's first line with ``path`` shortened to its name, cut to ``limit`` characters."""
    text = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
    text = text.replace(str(path), Path(str(path)).name)
    return text if len(text) <= limit else text[:limit - 3] + "..."


def _name(dataset):
    return Path(str(dataset.name)).name


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


def write_geotiff(path, image, crs, origin, pixel_size):
    """Write an (H, W) or (H, W, bands) array as a GeoTIFF whose top-left corner lies at ``origin`` (x, y in
    ``crs``, e.g. ``"EPSG:32633"``) with square pixels of ``pixel_size`` map units (north up). Returns the
    transform (``rasterio.Affine``) the file carries."""
    import rasterio
    from rasterio.transform import from_origin

    array = np.asarray(image)
    bands = array[None] if array.ndim == 2 else np.moveaxis(array, -1, 0)
    transform = from_origin(float(origin[0]), float(origin[1]), float(pixel_size), float(pixel_size))
    with rasterio.open(path, "w", driver="GTiff", height=bands.shape[1], width=bands.shape[2], count=bands.shape[0],
                       dtype=bands.dtype, crs=crs, transform=transform) as dst:
        dst.write(bands)
    return transform


def is_georeferenced(dataset):
    return dataset.crs is not None and not dataset.transform.is_identity


def is_georeferenced_file(path):
    """Does ``path`` open as a raster with a CRS and a transform? (False for anything unreadable.)"""
    try:
        with open_raster(path) as dataset:
            return is_georeferenced(dataset)
    except UserError:
        return False


def alpha_bands(dataset):
    """Band numbers whose colour interpretation is alpha (masks, never colours)."""
    from rasterio.enums import ColorInterp

    return [i + 1 for i, c in enumerate(dataset.colorinterp) if c == ColorInterp.alpha]


def colour_bands(dataset):
    """Band numbers that may be read as colours: every band but the alpha ones."""
    alpha = set(alpha_bands(dataset))
    return [b for b in range(1, dataset.count + 1) if b not in alpha]


def _check_dtypes(dataset, bands):
    for b in dict.fromkeys(bands):
        dtype = dataset.dtypes[b - 1]
        if not dtype.startswith(REAL_DTYPES):
            raise UserError(f"{_name(dataset)} band {b} holds {dtype} pixels, which have no brightness to show; "
                            "convert the raster to real values first (e.g. its amplitude, gdal_translate -ot Float32)")


def select_bands(dataset, bands=None):
    """The three band numbers read as R, G, B: ``bands`` (3 numbers, or 1 repeated), else the first three colour
    bands, or the only colour band (grey). Alpha bands, complex pixels and two colour bands without ``bands`` are
    one :class:`UserError` each."""
    count, name = dataset.count, _name(dataset)
    if count < 1:
        raise UserError(f"{name} has no raster band")
    colour = colour_bands(dataset)
    if bands is None:
        if len(colour) == 2:
            raise UserError(f"{name} has 2 colour bands, neither grey nor RGB; pass bands= with 1 band number (grey, "
                            "e.g. bands=[1]) or 3 (R, G, B)")
        if not colour:
            raise UserError(f"{name} has only an alpha band, no colour band to read")
        selected = colour[:3] if len(colour) >= 3 else colour * 3
    else:
        given = [bands] if isinstance(bands, int) else list(bands)
        if len(given) not in (1, 3) or not all(isinstance(b, int) and 1 <= b <= count for b in given):
            raise UserError(f"bands={given} does not fit {name} ({count} bands): give 3 band numbers (R, G, B) or "
                            f"1 (grey), each between 1 and {count}")
        alpha = [b for b in given if b not in colour]
        if alpha:
            raise UserError(f"band {alpha[0]} of {name} is its alpha band, a no-data mask and never a colour; choose "
                            f"bands among {colour}")
        selected = given * 3 if len(given) == 1 else given
    _check_dtypes(dataset, selected)
    return selected


def needs_stretch(dataset, bands):
    """True when any of ``bands`` is not uint8 (its values must be mapped to 0-255)."""
    return any(dataset.dtypes[b - 1] != "uint8" for b in bands)


def _float_bands(dataset, bands):
    return [b for b in sorted(set(bands)) if dataset.dtypes[b - 1].startswith("float")]


def has_nodata(dataset, bands):
    """True when some pixel of ``bands`` may be no-data (a nodata value, an alpha band, an internal mask, or a
    float band, where NaN is no-data)."""
    from rasterio.enums import MaskFlags

    return bool(_float_bands(dataset, bands)) or \
        any(MaskFlags.all_valid not in dataset.mask_flag_enums[b - 1] for b in set(bands))


def valid_mask(dataset, bands, window):
    """Bool (h, w): pixels of ``window`` where every band of ``bands`` holds data (finite, in float bands)."""
    masks = [dataset.read_masks(b, window=window) > 0 for b in sorted(set(bands))]
    masks += [np.isfinite(dataset.read(b, window=window)) for b in _float_bands(dataset, bands)]
    return np.logical_and.reduce(masks)


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


@dataclass(frozen=True)
class RasterSettings:
    """How a model's training chips were read from their rasters (``RasterInput`` in ``inference.yml``).

    ``bands``: the three band numbers read as R, G, B (one repeated for grey); ``stretch``: ``{band: (low,
    high)}`` for each of them (None: uint8, no stretch); ``dtype``: the rasters' data type (None: unknown).
    Prediction reads every scene with them (:class:`RasterReader`), never with the scene's own percentiles.
    """

    bands: Tuple[int, ...]
    stretch: Optional[Dict[int, Tuple[float, float]]] = None
    dtype: Optional[str] = None

    @property
    def grey(self):
        return len(set(self.bands)) == 1

    def describe(self):
        """``bands [4, 3, 2] of uint16 rasters`` (for messages)."""
        what = f"band {self.bands[0]} (grey)" if self.grey else f"bands {list(self.bands)}"
        return what + (f" of {self.dtype} rasters" if self.dtype else "")

    def to_dict(self):
        """The ``RasterInput`` block: plain lists, ints and floats (YAML- and JSON-safe)."""
        stretch = None if self.stretch is None else \
            {int(b): [float(lo), float(hi)] for b, (lo, hi) in self.stretch.items()}
        return {"bands": [int(b) for b in self.bands], "dtype": self.dtype, "stretch": stretch}

    @classmethod
    def from_dict(cls, block, where="RasterInput"):
        """Settings from a ``RasterInput`` block (band keys may be strings, as JSON writes them)."""
        try:
            bands = tuple(int(b) for b in block["bands"])
            raw = block.get("stretch")
            stretch = None if raw is None else {int(b): (float(v[0]), float(v[1])) for b, v in raw.items()}
            dtype = None if block.get("dtype") is None else str(block["dtype"])
        except (KeyError, TypeError, ValueError, IndexError, AttributeError):
            raise UserError(f"{where} is malformed (expected bands: [R, G, B], dtype, stretch: {{band: [low, "
                            "high]}}); export the model again") from None
        if len(bands) != 3 or min(bands) < 1 or (stretch is not None and not set(bands) <= set(stretch)):
            raise UserError(f"{where} is malformed: bands {list(bands)} need 3 numbers >= 1, each with stretch limits; "
                            "export the model again")
        return cls(bands, stretch, dtype)

    def fit(self, dataset, bands=None):
        """``(bands, positional limits or None)`` to read ``dataset`` with these settings; ``bands`` (the caller's
        choice) replaces the stored bands when it has as many numbers (1 for a grey model, else 3), each band then
        taking the limits of the stored band in its place. A raster these settings do not fit is one UserError."""
        name, n = _name(dataset), 1 if self.grey else 3
        if bands is not None:
            given = [bands] if isinstance(bands, int) else list(bands)
            if len(given) != n:
                raise UserError(f"bands={given} does not fit the model, trained on {self.describe()}; give {n} band "
                                f"number{'s' if n > 1 else ''} of {name}")
            chosen = select_bands(dataset, given)
        else:
            if max(self.bands) > dataset.count:
                raise UserError(f"{name} has {dataset.count} band{'s' if dataset.count > 1 else ''} but the model was "
                                f"trained on {self.describe()}; pass bands= with {n} of its band numbers")
            chosen = select_bands(dataset, list(self.bands))
        found = sorted({dataset.dtypes[b - 1] for b in chosen})
        if self.dtype is not None and found != [self.dtype]:
            raise UserError(f"{name} holds {'/'.join(found)} pixels but the model was trained on {self.describe()}; "
                            f"convert it to {self.dtype} (gdal_translate -ot) or retrain on such rasters")
        limits = None if self.stretch is None else [self.stretch[b] for b in self.bands]
        return chosen, limits


class RasterReader:
    """RGB uint8 tiles from a raster through windows (see the module docstring for bands, stretch, no-data).

    ``bands``: see :func:`select_bands`. ``stretch``: ``{band: (low, high)}`` for the selected bands; by default
    computed here from a decimated read when a selected band is not uint8. ``settings``: a model's
    :class:`RasterSettings`: its bands and limits are used instead of the scene's own percentiles, and a raster they
    do not fit (too few bands, another data type) is one UserError; an explicit ``bands`` still wins over the stored
    bands, but only with the same number of bands (1 for a grey model, else 3). :meth:`valid` tells which pixels
    hold data, so that all-nodata tiles are skipped.
    """

    def __init__(self, dataset, bands=None, stretch=None, settings: Optional[RasterSettings] = None):
        self.ds = dataset
        self.height, self.width = dataset.height, dataset.width
        positional = None
        if settings is not None and stretch is None:
            self.bands, positional = settings.fit(dataset, bands)
        else:
            self.bands = select_bands(dataset, bands)
            if stretch is not None:
                positional = [stretch[b] for b in self.bands]
        if positional is None and needs_stretch(dataset, self.bands):
            limits = percentile_limits(valid_samples(dataset, self.bands), _name(dataset))
            positional = [limits[b] for b in self.bands]
        self.has_mask = has_nodata(dataset, self.bands)
        self.limits = None if positional is None else dict(zip(self.bands, positional))
        self.stretch = None
        if positional is not None:
            lo = np.array([p[0] for p in positional])[:, None, None]
            hi = np.array([p[1] for p in positional])[:, None, None]
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


__all__ = ["GDAL_OPTIONS", "RASTER_SUFFIXES", "STRETCH_PERCENTILES", "RasterReader", "RasterSettings", "alpha_bands",
           "colour_bands", "has_nodata", "is_georeferenced", "is_georeferenced_file", "needs_stretch", "open_raster",
           "percentile_limits", "select_bands", "valid_mask", "valid_samples"]
