"""One generated georeferenced scene and its labels: a delivered satellite scene, made up, for sliced inference.

:func:`make_geoscene` writes into a folder

* ``scene.tif``: a 4-band (R, G, B, NIR) uint16 GeoTIFF in a UTM CRS (0.4 m pixels by default; tiled, deflate,
  internal overviews) with a no-data collar (value 0) along two sides, as the swath edge of a real scene has;
* ``labels.geojson``: the ground-truth polygons in longitude / latitude (EPSG:4326, RFC 7946), each with its NWPU
  ``class``.

**Districts.** The scene is a mosaic of square blocks, each drawn by :func:`.scenes.render_aerial_scene` in its
own context (:data:`DISTRICTS`: airport, harbour, sports campus, tank farm, commercial streets, river) from its own
generator, seeded with ``(seed, GEOSCENE_NAMESPACE, block)`` (a namespace no sample preset uses). One atmosphere
and sensor image them all: the style's random ranges (haze, blur, noise, JPEG quality, sun elevation) are narrowed
to one draw per scene, and there is no vignetting. An arterial road runs along every border between two blocks,
its median on the border: each block keeps its carriageway's place free before its context is drawn (nothing raised
is cut by a border) and draws it, with traffic, before imaging, so the mosaic reads as a city's road grid rather
than a patchwork. The sun's azimuth is still drawn per block.

**Seams.** Sliced inference cuts the scene into :data:`SEAM_SLICE` px tiles with overlap :data:`SEAM_OVERLAP` (the
defaults of ``predict_geotiff`` and ``TileGrid.from_raster``), and objects that a tile edge runs through are what
its merge must put together again. Besides what the districts hold (cars in lots and on roads, planes, tanks,
courts ...) and the traffic on the arterial roads, each block tries to place one object of its kind across every
seam on purpose (:data:`SEAM_OBJECTS`: ships in the harbour and on the river, tanks in the tank farm, tennis courts
on the campus, basketball courts between the stores), where there is room. A 4096 px scene has about 150 objects
that seams cross (seed 0: 146 of 1,278).

**Radiometry.** Digital numbers in a 12-bit range, linear in the rendered colour (offset + gain x value, with a
dither that fills the levels between), so a percentile stretch gives the rendered picture back; NIR is synthesised
from the colour: bright over vegetation, dark over water, near red elsewhere.

**Labels** are the renderer's annotations (visible outlines) moved into the scene, then cut to the scene and to its
valid pixels; what is left of an object less than :data:`.scenes.MIN_VISIBLE` of it, or under
:data:`.scenes.MIN_AREA_PX` pixels, is dropped, as the renderer does at its frame.

**Determinism.** Every draw comes from generators seeded as above; GDAL's creation options are fixed, compression
is single-threaded and nothing time-dependent is written, so the same arguments give byte-identical files.
"""
import json
import math
import os
from dataclasses import dataclass, replace
from functools import partial
from pathlib import Path
from typing import Dict, List, Optional, Tuple

import numpy as np

from ..errors import UserError
from . import scenes
from .categories import NWPU_CLASSES
from .geosplit import chip_windows

GENERATOR_VERSION = 1
GEOSCENE_NAMESPACE = 3003  # block generators: disjoint from the sample presets' (sample.AERIAL_NAMESPACES)
BLOCK = 1024  # pixels per district block (smaller scenes have 2 x 2 smaller blocks)
DISTRICTS = ("airport", "commercial", "sports", "tank_farm", "harbor", "commercial", "river", "sports",
             "commercial", "tank_farm", "airport", "harbor", "sports", "river", "commercial", "sports")
ORIGIN = (560000.0, 4320000.0)  # top-left corner in the UTM zone (zone 50 N: the coast at Tianjin, 117.7 E 39 N)
SEAM_SLICE, SEAM_OVERLAP = 512, 0.2
BANDS = ("red", "green", "blue", "nir")
DN_OFFSET = (180.0, 210.0, 260.0, 150.0)  # per band: path radiance and dark current
DN_GAIN = (11.5, 12.0, 11.0, 13.0)  # per band: digital numbers per rendered level (0-255 -> up to ~3,500)
MEDIAN_M, CARRIAGEWAY_M, LANE_M = 3.0, 8.0, 3.5  # the arterial roads between blocks
RASTER_NAME, LABELS_NAME = "scene.tif", "labels.geojson"
TIFF_BLOCK = 256  # the GeoTIFF's internal tiles (a 512 px window at any offset decompresses at most 768² px)
GDAL_CREATION = {"driver": "GTiff", "dtype": "uint16", "nodata": 0, "tiled": True, "blockxsize": TIFF_BLOCK,
                 "blockysize": TIFF_BLOCK, "compress": "deflate", "predictor": 2, "zlevel": 6, "interleave": "pixel"}
OVERVIEWS = (2, 4, 8)


@dataclass
class GeoScene:
    """What :func:`make_geoscene` wrote: the two files, the objects per class, and how many objects a seam of the
    default tile grid runs through."""

    raster: Path
    labels: Path
    counts: Dict[str, int]
    seam_crossing: int
    reused: bool = False

    @property
    def objects(self) -> int:
        return sum(self.counts.values())


# ----------------------------------------------------------------------------------------------- the blocks
def _layout(size: int) -> Tuple[int, int]:
    """``(n, block)``: an n x n mosaic of ``block`` px blocks covering ``size`` px (n >= 2: every scene has borders
    between districts)."""
    n = max(2, round(size / BLOCK))
    return n, math.ceil(size / n)


def _one_look(style: scenes.Style, rng: np.random.Generator) -> scenes.Style:
    """``style`` with its atmosphere and sensor drawn once (every block imaged alike) and no vignetting."""
    haze, blur, noise = rng.uniform(*style.haze), rng.uniform(*style.blur), rng.uniform(*style.noise)
    quality, sun = int(rng.integers(style.jpeg[0], style.jpeg[1] + 1)), rng.uniform(*style.sun_elevation)
    return replace(style, haze=(haze, haze), blur=(blur, blur), noise=(noise, noise), jpeg=(quality, quality),
                   sun_elevation=(sun, sun), vignette=0.0)


def _seam_lines(size: int) -> List[int]:
    """Positions (px) of the tile edges of the default grid inside the scene: the seams, on both axes."""
    windows = chip_windows(size, size, SEAM_SLICE, SEAM_OVERLAP)
    return sorted(({w[0] for w in windows} | {w[0] + w[2] for w in windows}) - {0, size})


# side -> (origin as multiples of the block size, along, inward, traffic direction along ``along``)
SIDES = {"left": ((0, 0), (0, 1), (1, 0), -1), "right": ((1, 0), (0, 1), (-1, 0), 1),
         "top": ((0, 0), (1, 0), (0, 1), 1), "bottom": ((0, 1), (1, 0), (0, -1), -1)}
CROSSING = {"left": ("top", "bottom"), "right": ("top", "bottom"), "top": ("left", "right"),
            "bottom": ("left", "right")}  # the roads met at the start and at the end of a side


def _block_sides(row: int, col: int, n: int) -> Tuple[str, ...]:
    """The sides of block (row, col) that it shares with another block."""
    return tuple(side for side, shared in (("left", col > 0), ("right", col < n - 1), ("top", row > 0),
                                           ("bottom", row < n - 1)) if shared)


class _Side:
    """A shared side of a block in the block's pixels: ``at(t, d)`` is the point ``t`` px along it and ``d`` px in
    from it; ``lo, hi`` the stretch between the crossings with the perpendicular roads."""

    def __init__(self, scene, name, sides):
        origin, along, inward, self.heading = SIDES[name]
        self.origin = np.array(origin, float) * scene.size
        self.along, self.inward = np.array(along, float), np.array(inward, float)
        reserve, pad = scene.m(MEDIAN_M / 2 + CARRIAGEWAY_M), scene.m(20)
        start, end = CROSSING[name]
        self.lo = reserve if start in sides else -pad
        self.hi = scene.size - reserve if end in sides else scene.size + pad
        self.length = scene.size

    def at(self, t, d):
        return self.origin + self.along * t + self.inward * d

    def band(self, t0, t1, d0, d1):
        return np.array([self.at(t0, d0), self.at(t1, d0), self.at(t1, d1), self.at(t0, d1)])


def _dashes(scene, side, d, color):
    """A dashed lane line ``d`` px in from ``side`` (3 m dashes every 9 m) between its crossings."""
    period, dash = scene.m(9.0), scene.m(3.0)
    starts = np.arange(side.lo + scene.uniform(0, period), side.hi - dash, period)
    if len(starts):
        scene.stroke([np.array([side.at(t, d), side.at(t + dash, d)]) for t in starts], color, 0.15, alpha=0.85)


def _traffic(scene, side, d, per_100m):
    """Cars in the lane ``d`` px in from ``side``, driving one way, ``per_100m`` on average."""
    direction = side.along * side.heading
    angle = math.atan2(direction[1], direction[0])
    spacing = scene.m(100 / per_100m)
    t = side.lo + scene.uniform(0, spacing)
    while t < side.hi - scene.m(3):
        scenes.vehicle(scene, side.at(t, d), angle)
        t += scene.m(6) + scene.rng.exponential(spacing)


def _strip(scene: scenes.Scene, side: str) -> Tuple[slice, slice]:
    """The (rows, columns) of the block that the carriageway along ``side`` takes (with the median's half)."""
    width = math.ceil(scene.m(MEDIAN_M / 2 + CARRIAGEWAY_M))
    inner = {"left": slice(0, width), "right": slice(scene.size - width, scene.size), "top": slice(0, width),
             "bottom": slice(scene.size - width, scene.size)}[side]
    return (slice(None), inner) if side in ("left", "right") else (inner, slice(None))


def _keep_roads_free(scene: scenes.Scene, sides: Tuple[str, ...]) -> None:
    """Before the context: the carriageways' places taken, so that nothing raised (buildings, tanks, courts, planes,
    cars, ships) is put where a road will run."""
    for side in sides:
        region = scene.occupied[_strip(scene, side)]
        np.maximum(region, scenes.LOW, out=region)


def _district_roads(scene: scenes.Scene, sides: Tuple[str, ...]) -> None:
    """The carriageways along the shared ``sides`` of a block (the median's half on the border), with edge and
    lane lines and one-way traffic, drawn over what the context painted there (tree crowns, bridge decks: hidden)."""
    if not sides:
        return
    frames = [_Side(scene, name, sides) for name in sides]
    half, reserve, pad = scene.m(MEDIAN_M / 2), scene.m(MEDIAN_M / 2 + CARRIAGEWAY_M), scene.m(20)
    asphalt, kerb = scene.palette.asphalt, scene.palette.concrete
    for name, side in zip(sides, frames):
        strip = side.band(-pad, side.length + pad, -2, reserve)
        scene.occlude(strip)
        scene.occupied[_strip(scene, name)] = scenes.SURFACE  # traffic may drive there now
        scene.fill(strip, asphalt, texture=0.06, grain_m=4)
    for side in frames:
        scene.fill(side.band(side.lo, side.hi, -2, half), kerb, texture=0.05, grain_m=3)
        scene.stroke(np.array([side.at(side.lo, half), side.at(side.hi, half)]), tuple(c * 0.7 for c in kerb), 0.3)
        edges = [np.array([side.at(side.lo, d), side.at(side.hi, d)]) for d in (half + scene.m(0.5),
                                                                              reserve - scene.m(0.5))]
        scene.stroke(edges, scenes.WHITE_PAINT, 0.15, alpha=0.8)
        _dashes(scene, side, half + scene.m(0.5 + LANE_M), scenes.WHITE_PAINT)
    for side in frames:
        density = scene.uniform(0.5, 3.0)
        for lane in (0.5, 1.5):
            _traffic(scene, side, half + scene.m(0.5 + lane * LANE_M), density)


# context -> (what its blocks place across the seams, its size in metres); airports have none (planes do not
# park on the grass, and their aprons already hold many)
SEAM_OBJECTS = {"harbor": ("ship", 60.0), "river": ("ship", 40.0), "tank_farm": ("storage_tank", 25.0),
                "sports": ("tennis_court", 30.0), "commercial": ("basketball_court", 30.0)}


def _seam_objects(scene: scenes.Scene, context: str, seams: Tuple[List[float], List[float]]) -> None:
    """One try per seam crossing the block (``seams``: the block's x and y of the seams) to place an object of the
    block's kind (:data:`SEAM_OBJECTS`) across it, clear of the roads; drawn only where there is room."""
    if context not in SEAM_OBJECTS:
        return
    kind, size_m = SEAM_OBJECTS[context]
    margin = scene.m(MEDIAN_M / 2 + CARRIAGEWAY_M + size_m)
    for axis, positions in enumerate(seams):
        for position in positions:
            if not margin <= position <= scene.size - margin:
                continue
            across = position + scene.uniform(-0.25, 0.25) * scene.m(size_m)
            along = scene.uniform(margin, scene.size - margin)
            center = np.array([across, along] if axis == 0 else [along, across])
            angle = scene.uniform(0, np.pi)
            if kind == "ship":
                scenes.ship(scene, center, angle, scene.uniform(size_m / 2, size_m * 1.5), moving=scene.chance(0.5))
            elif kind == "storage_tank":
                scenes.storage_tank(scene, center, scene.uniform(size_m / 2, size_m * 1.4))
            elif kind == "tennis_court":
                scenes.tennis_courts(scene, center, angle, int(scene.rng.integers(1, 3)))
            else:
                scenes.basketball_court(scene, center, angle)


def _block_extras(scene: scenes.Scene, context: str, sides: Tuple[str, ...],
                  seams: Tuple[List[float], List[float]]) -> None:
    """What a block adds to its context before imaging: its roads, then its objects across the seams."""
    _district_roads(scene, sides)
    _seam_objects(scene, context, seams)


def _render_block(seed: int, index: int, n: int, block: int, look: scenes.Style, gsd: float,
                  seams: List[int]) -> Tuple[np.ndarray, list]:
    """Block ``index`` (row-major) of an n x n mosaic: its RGB picture and ``[(class name, polygon in block
    pixels)]``. ``seams``: the scene's seam positions."""
    from shapely.geometry import Polygon
    from shapely.ops import unary_union

    row, col = divmod(index, n)
    context = DISTRICTS[index % len(DISTRICTS)]
    local = ([float(x - col * block) for x in seams if 0 < x - col * block < block],
             [float(y - row * block) for y in seams if 0 < y - row * block < block])
    sides = _block_sides(row, col, n)
    rng = np.random.default_rng((seed, GEOSCENE_NAMESPACE, index))
    image, annotations = scenes.render_aerial_scene(
        rng, block, look, gsd, context=context, reserve=partial(_keep_roads_free, sides=sides),
        extra=partial(_block_extras, context=context, sides=sides, seams=local))
    objects = [(name, unary_union([Polygon(np.reshape(ring, (-1, 2))) for ring in ann["segmentation"]]))
               for name, ann in annotations]
    return image, objects


# ----------------------------------------------------------------------------------------------- no-data, labels
def _valid_mask(rng: np.random.Generator, size: int) -> np.ndarray:
    """Bool (size, size): the pixels inside the swath. The left edge slants (a few percent of the width in at the
    top, less at the bottom) and wavers; the bottom edge cuts off the lower-left corner."""
    top, bottom = rng.uniform(0.04, 0.07), rng.uniform(0.005, 0.02)
    ys = np.arange(size) + 0.5
    waver = np.interp(ys, np.linspace(0, size, 17), rng.normal(0, 0.002, 17)) * size
    left = size * (top + (bottom - top) * ys / size) + waver
    depth, reach = rng.uniform(0.03, 0.05), rng.uniform(0.5, 0.8)
    xs = np.arange(size) + 0.5
    floor = size - size * depth * np.clip(1 - xs / (reach * size), 0, 1)
    return (xs[None, :] >= left[:, None]) & (ys[:, None] < floor[None, :])


def _mask_polygon(mask: np.ndarray):
    """The pixels of a bool mask as a (Multi)Polygon in pixel coordinates (pixel edges)."""
    import shapely
    from rasterio import features
    from shapely.geometry import shape

    return shapely.union_all([shape(g) for g, v in features.shapes(mask.view(np.uint8), mask=mask) if v])


def _cut(objects, region):
    """``objects`` ([(name, polygon)]) cut to ``region``; pieces too little of their object or too small dropped."""
    import shapely

    from .geovector import polygonal

    names = [name for name, _ in objects]
    geometries = np.array([g for _, g in objects], dtype=object)
    inside = np.array([polygonal(g) for g in shapely.intersection(geometries, region)], dtype=object)
    areas, kept = shapely.area(geometries), shapely.area(inside)
    keep = (kept >= scenes.MIN_VISIBLE * areas) & (kept >= scenes.MIN_AREA_PX)
    return [(names[i], inside[i]) for i in np.flatnonzero(keep)]


def seam_crossing(polygons, size: int) -> int:
    """How many of ``polygons`` (scene pixels) a seam of the default tile grid runs through (the line's interior
    meets the polygon's interior, as ``scene_eval`` counts them)."""
    import shapely
    from shapely.geometry import LineString

    geometries = np.asarray(list(polygons), dtype=object)
    crossing = np.zeros(len(geometries), bool)
    for e in _seam_lines(size):
        for line in (LineString([(e, 0), (e, size)]), LineString([(0, e), (size, e)])):
            crossing |= shapely.relate_pattern(line, geometries, "1********")
    return int(crossing.sum())


# ----------------------------------------------------------------------------------------------- radiometry
def _digital_numbers(rgb: np.ndarray, valid: Optional[np.ndarray], rng: np.random.Generator) -> np.ndarray:
    """(4, h, w) uint16 R, G, B, NIR of a strip of the uint8 RGB picture (module docstring); 0 outside ``valid``."""
    colour = rgb.astype(np.float32) * (1 / 255)
    r, g, b = colour[..., 0], colour[..., 1], colour[..., 2]
    brightness = (r + g + b) / 3
    green = np.clip(((g - b) / (brightness + 0.05) - 0.15) / 0.45, 0, 1)  # foliage and grass: green over blue
    wet = np.clip((b - r + 0.03) * 12, 0, 1) * np.clip((0.32 - brightness) * 8, 0, 1)  # dark and bluish: water
    nir = (0.85 * r + 0.15 * g + 0.4 * green) * (1 - 0.75 * wet)
    levels = np.concatenate([rgb.astype(np.float32), np.clip(nir * 255, 0, 255)[..., None]], axis=-1)
    gain, offset = np.asarray(DN_GAIN, np.float32), np.asarray(DN_OFFSET, np.float32)
    dn = offset + gain * (levels + rng.random(levels.shape, dtype=np.float32) - 0.5)
    dn = np.clip(np.rint(dn), 1, 4095).astype(np.uint16)
    if valid is not None:
        dn[~valid] = 0
    return np.ascontiguousarray(np.moveaxis(dn, -1, 0))


# ----------------------------------------------------------------------------------------------- files
def _params(seed, size, gsd, style, epsg, nodata_edge):
    """The arguments checked and recorded (a file made with other ones is not reused)."""
    if not isinstance(size, int) or size < 256:
        raise UserError(f"size must be an int >= 256 pixels, got {size!r}")
    if not 0.1 <= float(gsd) <= 2.0:
        raise UserError(f"gsd must be between 0.1 and 2.0 metres per pixel, got {gsd}")
    if style not in scenes.STYLES:
        raise UserError(f"style must be one of {', '.join(scenes.STYLES)}, got {style!r}")
    if not (32601 <= int(epsg) <= 32660 or 32701 <= int(epsg) <= 32760):
        raise UserError(f"epsg must be a WGS 84 UTM zone (32601-32660 north, 32701-32760 south), got {epsg}")
    return {"generator_version": GENERATOR_VERSION, "renderer_version": scenes.GENERATOR_VERSION, "seed": int(seed),
            "size": size, "gsd": float(gsd), "style": style, "epsg": int(epsg), "nodata_edge": bool(nodata_edge)}


def _recorded(labels: Path) -> Optional[dict]:
    """What an earlier run recorded in its labels file (None if there is none or it cannot be read)."""
    try:
        return json.loads(labels.read_text(encoding="utf-8"))["tutorial_lib"]
    except (OSError, ValueError, KeyError, TypeError):
        return None


def _write_raster(path: Path, rgb: np.ndarray, valid: Optional[np.ndarray], rng: np.random.Generator, transform,
                  crs, params: dict) -> None:
    """``scene.tif`` (module docstring), written strip by strip (one row of its blocks at a time)."""
    import rasterio
    from rasterio.enums import Resampling
    from rasterio.windows import Window

    size = rgb.shape[0]
    profile = dict(GDAL_CREATION, width=size, height=size, count=len(BANDS), crs=crs, transform=transform)
    with rasterio.Env(GDAL_PAM_ENABLED="NO"), rasterio.open(path, "w", **profile) as dst:
        for y0 in range(0, size, TIFF_BLOCK):
            rows = slice(y0, min(size, y0 + TIFF_BLOCK))
            strip = _digital_numbers(rgb[rows], None if valid is None else valid[rows], rng)
            dst.write(strip, window=Window(0, y0, size, strip.shape[1]))
        dst.descriptions = BANDS
        dst.update_tags(TUTORIAL_LIB_GEOSCENE=json.dumps(params, sort_keys=True))
        dst.build_overviews([f for f in OVERVIEWS if size // f >= 256], Resampling.average)


def _write_labels(path: Path, objects, transform, crs, record: dict) -> None:
    """``labels.geojson``: the polygons (scene pixels) in longitude / latitude, counter-clockwise (RFC 7946), with
    ``class``; ``record`` (parameters and counts) as the collection's ``tutorial_lib`` member."""
    import shapely
    from shapely.geometry import mapping

    from .geovector import reproject

    scale, shift = np.array([transform.a, transform.e]), np.array([transform.c, transform.f])
    geometries = shapely.transform(np.array([g for _, g in objects], dtype=object), lambda xy: xy * scale + shift)
    lonlat = shapely.orient_polygons(reproject(geometries, crs, "EPSG:4326"), exterior_cw=False)
    lonlat = shapely.transform(lonlat, lambda xy: np.round(xy, 9))
    lines = [json.dumps({"type": "Feature", "id": k + 1, "properties": {"class": name},
                         "geometry": mapping(geometry)}, separators=(",", ":"))
             for k, ((name, _), geometry) in enumerate(zip(objects, lonlat))]
    head = json.dumps({"type": "FeatureCollection", "tutorial_lib": record}, sort_keys=True)[:-1]
    path.write_text(head + ', "features": [\n' + ",\n".join(lines) + "\n]}\n", encoding="utf-8")


def make_geoscene(output_dir, *, seed: int = 0, size: int = 4096, gsd: float = 0.4, style: str = "B-autumn",
                  epsg: int = 32650, nodata_edge: bool = True, overwrite: bool = False) -> GeoScene:
    """Write ``scene.tif`` and ``labels.geojson`` into ``output_dir`` (see the module docstring) and return a
    :class:`GeoScene`.

    ``size``: pixels a side; ``gsd``: metres per pixel; ``style``: a name in :data:`.scenes.STYLES` (default one of
    the ``reader`` family); ``epsg``: the UTM zone of the raster (its top-left corner at :data:`ORIGIN`);
    ``nodata_edge``: cut a no-data collar along the left and bottom sides. Files made with the same arguments are
    reused; other ones need ``overwrite=True``.
    """
    from rasterio.crs import CRS
    from rasterio.transform import from_origin
    from shapely.affinity import translate
    from shapely.geometry import box

    params = _params(seed, size, gsd, style, epsg, nodata_edge)
    output_dir = Path(output_dir)
    raster, labels = output_dir / RASTER_NAME, output_dir / LABELS_NAME
    previous = _recorded(labels) if raster.is_file() else None
    if previous is not None and previous.get("params") == params and not overwrite:
        return GeoScene(raster, labels, previous["counts"], previous["seam_crossing"], reused=True)
    if (raster.exists() or labels.exists()) and not overwrite:
        raise UserError(f"{output_dir} already holds a scene made with other arguments; choose another folder or pass "
                        "overwrite=True (--overwrite)")
    rng = np.random.default_rng((params["seed"], GEOSCENE_NAMESPACE))
    look = _one_look(scenes.STYLES[style], rng)
    n, block = _layout(size)
    rgb = np.zeros((n * block, n * block, 3), np.uint8)
    objects = []
    for index in range(n * n):
        row, col = divmod(index, n)
        image, found = _render_block(params["seed"], index, n, block, look, params["gsd"], _seam_lines(size))
        rgb[row * block:(row + 1) * block, col * block:(col + 1) * block] = image
        objects += [(name, translate(g, col * block, row * block)) for name, g in found]
    rgb = rgb[:size, :size]
    valid = _valid_mask(rng, size) if nodata_edge else None
    objects = _cut(objects, _mask_polygon(valid) if valid is not None else box(0, 0, size, size))
    counts = {name: sum(1 for found, _ in objects if found == name) for name in NWPU_CLASSES}
    record = {"generator": "tutorial_lib.data.geoscene", "params": params, "counts": counts,
              "seam_crossing": seam_crossing([g for _, g in objects], size)}
    crs, transform = CRS.from_epsg(params["epsg"]), from_origin(*ORIGIN, params["gsd"], params["gsd"])
    output_dir.mkdir(parents=True, exist_ok=True)
    tmp_raster, tmp_labels = (path.with_name(f".{path.name}.tmp-{os.getpid()}") for path in (raster, labels))
    try:
        _write_raster(tmp_raster, rgb, valid, rng, transform, crs, params)
        _write_labels(tmp_labels, objects, transform, crs, record)
        os.replace(tmp_raster, raster)
        os.replace(tmp_labels, labels)
    finally:
        tmp_raster.unlink(missing_ok=True)
        tmp_labels.unlink(missing_ok=True)
    return GeoScene(raster, labels, counts, record["seam_crossing"])


__all__ = ["DISTRICTS", "GEOSCENE_NAMESPACE", "GeoScene", "make_geoscene", "seam_crossing"]
