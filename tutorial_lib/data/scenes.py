"""Realistic synthetic aerial scenes: the renderer behind the ``pretrain`` and ``reader`` sample presets.

:mod:`.sample` draws clip-art scenes (flat courts and cartoon planes on noise) that a model learns quickly but that
teach it little about real imagery. This module draws scenes a remote-sensing person would recognise, so that a model
pretrained on a few thousand of them is a useful *general model*, and it draws them in named *styles*, so that a model
pretrained on one family of styles visibly falls short on another (a domain shift) until it is fine-tuned.

Design
------
* **Metric layout.** Every size is in metres (an airliner spans 20-70 m, a car is 4-5 m long, a tennis court's playing
  area is 23.77 x 10.97 m) and becomes pixels through the image's ground sampling distance ``gsd`` (metres per pixel):
  the same code draws a 0.3 m close-up of a few cars or a 2 m overview of an airport.
* **Contexts.** An image shows one context (:data:`CONTEXTS`): an airport (runway, taxiway, apron with a row of
  parked airliners), a harbour (quay, piers, moored and sailing ships), a sports campus in a suburb (rows of tennis
  courts, basketball courts, baseball diamonds, a 400 m track), an industrial tank farm, a commercial district with
  roads and parking lots, or a river crossed by a bridge. Their weights are set so that the class counts come out
  roughly in NWPU VHR-10's proportions, adjusted by gsd (no car parks when cars are specks; in small frames more of
  the contexts with few big objects). Background-only images draw the same contexts with no target, or farmland.
* **Painting in layers** on a uint8 canvas (OpenCV anti-aliased polygons at 1/16 px), in the order things lie on the
  ground: terrain, water, surfaces (roads, aprons, courts), objects, trees. Raised things (buildings, tanks, planes,
  vehicles, ships, trees) add their shadow - the footprint swept away from the sun by their height, or the lifted
  silhouette moved, for planes and bridge decks - to a shadow mask, and their top to a "raised" mask; at the end the
  shadows darken every pixel that is not the top of something raised. One sun per image. A fine noise gives
  every surface some grain.
* **Annotations** are the outlines of the *targets* (instances of the 10 classes) minus the opaque things painted
  over them later (a tree crown, a car on a bridge) and minus what lies outside the frame. A target less than
  :data:`MIN_VISIBLE` inside the frame is not drawn at all; one that ends up less visible than that (under trees), or
  too small to make out, is drawn but not annotated. COCO polygons cannot have holes, so a mask with holes is cut
  into hole-free pieces; :func:`.coco.outline_annotation` computes the COCO fields.
* **Layout bookkeeping** is raster: an occupancy image (:data:`SURFACE`, :data:`LOW`, :data:`SOLID`: what may stand
  on or overhang what) and a water mask answer "is this place free?" and "is it land or water?".
* **Imaging**, per image, after the shadows: patchy haze (airlight plus contrast loss), optical blur, the sensor's
  white balance, saturation and contrast, vignetting, Gaussian read noise plus shot noise, and a JPEG round trip at a
  quality drawn from the style.
* **Styles** (:data:`STYLES`) are frozen :class:`Style` records: a palette (biome and season), a sensor's colour cast,
  saturation and contrast, and ranges for haze, blur, noise, JPEG quality and sun elevation. :data:`FAMILIES` groups
  them: ``pretrain`` (sensor A over temperate land in spring and summer) and ``reader`` (sensor B - warmer cast,
  flatter colours, more haze, blur, noise and compression, lower sun - over arid, autumn and winter land). The
  families differ in colour, season, sensor and atmosphere only; the same object geometry draws both.
* **Determinism.** Every random draw comes from the ``numpy`` generator passed in, in a fixed order: the same seed
  gives byte-identical images and annotations.
"""
import math
from dataclasses import dataclass, field

import cv2
import numpy as np
from shapely.geometry import LineString, MultiPolygon, Point, Polygon, box
from shapely.geometry.base import BaseGeometry
from shapely.ops import unary_union

from .coco import outline_annotation

GENERATOR_VERSION = 1
MIN_VISIBLE = 0.3  # instances less visible than this (cut by the border, hidden by trees) are not annotated
MIN_EXTENT_PX = 6.0  # instances shorter than this in the image are drawn but not annotated (specks)
MIN_AREA_PX = 12.0  # nor are visible parts smaller than this
# Occupancy levels of the layout raster: what may go where.
SURFACE = 1  # roads, lots, courts: cars may stand on it, trees may overhang it, nothing else may be built on it
LOW = 2  # cars: trees may overhang them
SOLID = 3  # buildings, tanks, planes, ships, piers: nothing overlaps them
WHITE_PAINT = (0.9, 0.9, 0.88)  # road and court markings
YELLOW_PAINT = (0.85, 0.7, 0.15)
ARTIFICIAL_TURF = (0.22, 0.48, 0.25)


# ----------------------------------------------------------------------------- styles
@dataclass(frozen=True)
class Palette:
    """Colours (RGB in [0, 1]) of a biome in a season; tuples of colours are alternatives drawn per use."""

    grass: tuple
    crops: tuple
    soil: tuple
    canopy: tuple
    forest: tuple
    water: tuple
    river: tuple
    shore: tuple
    asphalt: tuple
    concrete: tuple
    pavement: tuple
    roofs: tuple
    turf: tuple  # natural grass of sports fields: green in summer, dormant or under snow in winter
    pool: tuple
    bare_trees: float = 0.0  # probability that a deciduous tree has no leaves


PALETTES = {
    "temperate_summer": Palette(
        grass=((0.33, 0.43, 0.21), (0.38, 0.47, 0.25), (0.30, 0.40, 0.20)),
        crops=((0.40, 0.50, 0.22), (0.62, 0.57, 0.35), (0.33, 0.44, 0.18), (0.52, 0.46, 0.33), (0.47, 0.52, 0.27),
               (0.70, 0.63, 0.42)),
        soil=((0.50, 0.42, 0.33), (0.45, 0.39, 0.31)),
        canopy=((0.19, 0.31, 0.13), (0.23, 0.35, 0.15), (0.16, 0.27, 0.14), (0.25, 0.34, 0.17)),
        forest=(0.13, 0.22, 0.11), water=(0.10, 0.20, 0.26), river=(0.16, 0.25, 0.23), shore=(0.73, 0.69, 0.57),
        asphalt=(0.28, 0.28, 0.29), concrete=(0.68, 0.67, 0.64), pavement=(0.55, 0.53, 0.50),
        roofs=((0.58, 0.30, 0.22), (0.45, 0.32, 0.26), (0.46, 0.46, 0.48), (0.30, 0.30, 0.32), (0.72, 0.72, 0.70),
               (0.62, 0.40, 0.30)),
        turf=((0.30, 0.50, 0.22), (0.26, 0.47, 0.21)), pool=(0.30, 0.66, 0.80)),
    "temperate_spring": Palette(
        grass=((0.35, 0.50, 0.21), (0.40, 0.54, 0.25), (0.32, 0.46, 0.20)),
        crops=((0.38, 0.55, 0.22), (0.45, 0.36, 0.27), (0.78, 0.74, 0.26), (0.48, 0.58, 0.28), (0.50, 0.41, 0.31)),
        soil=((0.47, 0.38, 0.29), (0.52, 0.43, 0.33)),
        canopy=((0.27, 0.42, 0.17), (0.31, 0.46, 0.20), (0.20, 0.33, 0.15), (0.36, 0.47, 0.22)),
        forest=(0.17, 0.29, 0.13), water=(0.11, 0.22, 0.27), river=(0.18, 0.28, 0.24), shore=(0.72, 0.68, 0.56),
        asphalt=(0.29, 0.29, 0.30), concrete=(0.69, 0.68, 0.65), pavement=(0.56, 0.54, 0.51),
        roofs=((0.58, 0.30, 0.22), (0.45, 0.32, 0.26), (0.46, 0.46, 0.48), (0.30, 0.30, 0.32), (0.72, 0.72, 0.70),
               (0.62, 0.40, 0.30)),
        turf=((0.30, 0.53, 0.22), (0.33, 0.55, 0.24)), pool=(0.32, 0.66, 0.78)),
    "temperate_late_summer": Palette(
        grass=((0.42, 0.46, 0.27), (0.47, 0.49, 0.30), (0.38, 0.43, 0.24)),
        crops=((0.74, 0.66, 0.44), (0.68, 0.58, 0.38), (0.31, 0.42, 0.17), (0.55, 0.47, 0.35), (0.78, 0.71, 0.50)),
        soil=((0.55, 0.46, 0.35), (0.50, 0.43, 0.34)),
        canopy=((0.20, 0.30, 0.13), (0.24, 0.33, 0.15), (0.18, 0.26, 0.13), (0.28, 0.34, 0.17)),
        forest=(0.14, 0.21, 0.11), water=(0.10, 0.21, 0.25), river=(0.18, 0.27, 0.22), shore=(0.75, 0.70, 0.58),
        asphalt=(0.30, 0.30, 0.30), concrete=(0.70, 0.69, 0.65), pavement=(0.57, 0.55, 0.51),
        roofs=((0.58, 0.30, 0.22), (0.45, 0.32, 0.26), (0.46, 0.46, 0.48), (0.30, 0.30, 0.32), (0.72, 0.72, 0.70),
               (0.62, 0.40, 0.30)),
        turf=((0.30, 0.50, 0.22), (0.26, 0.47, 0.21)), pool=(0.30, 0.66, 0.80)),
    "arid": Palette(
        grass=((0.60, 0.55, 0.39), (0.66, 0.59, 0.43), (0.55, 0.52, 0.36)),
        crops=((0.36, 0.46, 0.22), (0.55, 0.52, 0.33), (0.77, 0.67, 0.51), (0.70, 0.60, 0.45)),
        soil=((0.79, 0.68, 0.53), (0.73, 0.61, 0.47)),
        canopy=((0.36, 0.40, 0.24), (0.31, 0.35, 0.21), (0.42, 0.43, 0.28)),
        forest=(0.45, 0.43, 0.31), water=(0.13, 0.31, 0.35), river=(0.30, 0.37, 0.31), shore=(0.85, 0.79, 0.65),
        asphalt=(0.35, 0.34, 0.33), concrete=(0.79, 0.75, 0.68), pavement=(0.72, 0.66, 0.56),
        roofs=((0.81, 0.76, 0.67), (0.73, 0.65, 0.53), (0.67, 0.53, 0.41), (0.86, 0.85, 0.81), (0.61, 0.59, 0.56)),
        turf=((0.45, 0.52, 0.28), (0.58, 0.56, 0.36)), pool=(0.35, 0.70, 0.80)),
    "autumn": Palette(
        grass=((0.45, 0.43, 0.28), (0.50, 0.46, 0.31), (0.41, 0.41, 0.27)),
        crops=((0.38, 0.30, 0.23), (0.44, 0.35, 0.27), (0.64, 0.56, 0.40), (0.40, 0.46, 0.27), (0.33, 0.27, 0.21)),
        soil=((0.42, 0.34, 0.26), (0.37, 0.30, 0.24)),
        canopy=((0.62, 0.36, 0.14), (0.72, 0.55, 0.20), (0.50, 0.28, 0.16), (0.42, 0.37, 0.20), (0.24, 0.29, 0.17)),
        forest=(0.33, 0.26, 0.15), water=(0.12, 0.16, 0.18), river=(0.20, 0.22, 0.20), shore=(0.58, 0.53, 0.44),
        asphalt=(0.25, 0.25, 0.26), concrete=(0.60, 0.59, 0.57), pavement=(0.48, 0.46, 0.44),
        roofs=((0.48, 0.25, 0.19), (0.38, 0.28, 0.23), (0.40, 0.40, 0.42), (0.25, 0.25, 0.27), (0.62, 0.62, 0.61)),
        turf=((0.40, 0.44, 0.26), (0.47, 0.46, 0.30)), pool=(0.25, 0.33, 0.31), bare_trees=0.35),
    "winter": Palette(
        grass=((0.86, 0.88, 0.91), (0.81, 0.84, 0.87), (0.90, 0.91, 0.93)),
        crops=((0.79, 0.80, 0.82), (0.71, 0.72, 0.73), (0.84, 0.86, 0.88), (0.66, 0.65, 0.64)),
        soil=((0.62, 0.62, 0.63), (0.70, 0.71, 0.72)),
        canopy=((0.10, 0.15, 0.12), (0.14, 0.18, 0.15), (0.12, 0.16, 0.14)),
        forest=(0.30, 0.33, 0.33), water=(0.07, 0.10, 0.13), river=(0.10, 0.13, 0.15), shore=(0.76, 0.78, 0.81),
        asphalt=(0.23, 0.23, 0.24), concrete=(0.71, 0.72, 0.74), pavement=(0.79, 0.81, 0.84),
        roofs=((0.88, 0.89, 0.91), (0.84, 0.86, 0.89), (0.36, 0.33, 0.33), (0.80, 0.81, 0.84)),
        turf=((0.80, 0.82, 0.85), (0.62, 0.58, 0.45)), pool=(0.55, 0.58, 0.60), bare_trees=0.7),
}


@dataclass(frozen=True)
class Style:
    """How one image family looks: the land (``palette``) and the sensor and atmosphere that image it."""

    name: str
    sensor: str  # the imaginary sensor ("A" or "B")
    palette: str  # key of PALETTES: biome and season
    cast: tuple  # white-balance gains (R, G, B) of the sensor
    saturation: float  # 1: colours as painted
    contrast: float  # 1: as painted; applied around mid-grey
    haze: tuple  # (lo, hi) fraction of airlight mixed in
    haze_color: tuple
    blur: tuple  # (lo, hi) optical blur, Gaussian sigma in pixels
    noise: tuple  # (lo, hi) read noise, standard deviation on [0, 1]
    shot_noise: float  # shot-noise variance per unit of signal
    jpeg: tuple  # (lo, hi) JPEG quality of the delivered image
    sun_elevation: tuple  # (lo, hi) degrees
    vignette: float = 0.0  # light lost in the corners


def _sensor_a(name, palette, **changes):
    """A style of imaginary sensor A: neutral colour, crisp, little haze, high JPEG quality, a high sun."""
    base = dict(sensor="A", cast=(1.0, 1.0, 1.0), saturation=1.05, contrast=1.05, haze=(0.0, 0.12),
                haze_color=(0.74, 0.78, 0.84), blur=(0.3, 0.7), noise=(0.004, 0.012), shot_noise=1e-4,
                jpeg=(75, 95), sun_elevation=(35.0, 68.0))
    return Style(name=name, palette=palette, **{**base, **changes})


def _sensor_b(name, palette, **changes):
    """A style of imaginary sensor B: a warm cast, flat colours and contrast, hazier, softer, noisier, more
    compressed, a lower sun (longer shadows) and vignetting."""
    base = dict(sensor="B", cast=(1.10, 0.98, 0.84), saturation=0.72, contrast=0.9, haze=(0.14, 0.32),
                haze_color=(0.80, 0.77, 0.72), blur=(0.7, 1.3), noise=(0.012, 0.024), shot_noise=3e-4,
                jpeg=(40, 70), sun_elevation=(25.0, 45.0), vignette=0.25)
    return Style(name=name, palette=palette, **{**base, **changes})


STYLES = {style.name: style for style in (
    _sensor_a("A-summer", "temperate_summer"),
    _sensor_a("A-spring", "temperate_spring", cast=(0.98, 1.0, 1.03)),
    _sensor_a("A-late-summer", "temperate_late_summer", cast=(1.02, 1.0, 0.97)),
    _sensor_a("A-summer-hazy", "temperate_summer", haze=(0.08, 0.18), blur=(0.5, 0.9)),
    _sensor_b("B-arid", "arid", haze=(0.2, 0.38)),
    _sensor_b("B-autumn", "autumn"),
    _sensor_b("B-winter", "winter", cast=(1.02, 0.99, 0.95), sun_elevation=(20.0, 32.0)),
)}
FAMILIES = {
    "pretrain": ("A-summer", "A-spring", "A-late-summer", "A-summer-hazy"),
    "reader": ("B-arid", "B-autumn", "B-winter"),
}


# ----------------------------------------------------------------------------- geometry (numpy polygons)
def _rot(angle):
    c, s = math.cos(angle), math.sin(angle)
    return np.array([[c, -s], [s, c]])


def _unit(angle):
    return np.array([math.cos(angle), math.sin(angle)])


def _box(length, width, cx=0.0, cy=0.0):
    """A rectangle ``length`` along x and ``width`` along y around (cx, cy), as (4, 2) points."""
    hl, hw = length / 2, width / 2
    return np.array([[cx - hl, cy - hw], [cx + hl, cy - hw], [cx + hl, cy + hw], [cx - hl, cy + hw]])


def _arc(radius, a0, a1, n, cx=0.0, cy=0.0):
    t = np.linspace(a0, a1, n)
    return np.stack([cx + radius * np.cos(t), cy + radius * np.sin(t)], 1)


_UNIT_CIRCLES = {}  # vertices of the unit circle, by vertex count
_VIGNETTES = {}  # vignetting maps, by (size, strength)
_SAMPLES = np.linspace(0.05, 0.95, 7)  # where along a segment the colour under a line is sampled


def _circle(radius, n=24, cx=0.0, cy=0.0):
    unit = _UNIT_CIRCLES.get(n)
    if unit is None:
        t = np.linspace(0, 2 * np.pi, n, endpoint=False)
        unit = _UNIT_CIRCLES[n] = np.stack([np.cos(t), np.sin(t)], 1)
    return unit * radius + (cx, cy)


def _stadium(straight, radius, n=16):
    """Two semicircles of ``radius`` joined by straights of length ``straight`` (a running track's shape)."""
    return np.concatenate([_arc(radius, -np.pi / 2, np.pi / 2, n, straight / 2),
                           _arc(radius, np.pi / 2, 3 * np.pi / 2, n, -straight / 2)])


def _fixed(points):
    return np.rint(points * 16).astype(np.int32)  # 4 fractional bits (cv2 shift=4)


def _bytes(color):
    return tuple(255 * c for c in color)


def _as_list(polys):
    return polys if isinstance(polys, (list, tuple)) else [polys]


def _polygon_parts(geometry):
    """The polygons in a shapely geometry (lines and points dropped)."""
    if geometry.is_empty:
        return []
    if isinstance(geometry, Polygon):
        return [geometry]
    return [p for g in getattr(geometry, "geoms", []) for p in _polygon_parts(g)]


def _hole_free(geometry):
    """Polygons without holes covering ``geometry`` (COCO polygons have none): a polygon with a hole is cut in two
    along a vertical line through the hole. The line lies on a pixel boundary and the halves keep 0.002 px apart,
    so no pixel centre is lost and geometry operations do not join them again. Holes under a pixel are filled."""
    done, todo = [], _polygon_parts(geometry)
    while todo:
        poly = todo.pop()
        holes = [hole for hole in poly.interiors if Polygon(hole).area >= 1.0]
        if not holes:
            done.append(Polygon(poly.exterior))
            continue
        hx0, _, hx1, _ = holes[0].bounds
        inside = np.arange(math.ceil(hx0 + 1e-3), math.floor(hx1 - 1e-3) + 1)
        cut = float(inside[len(inside) // 2]) if len(inside) else (hx0 + hx1) / 2
        x0, y0, x1, y1 = poly.bounds
        for half in (box(x0 - 1, y0 - 1, cut - 1e-3, y1 + 1), box(cut + 1e-3, y0 - 1, x1 + 1, y1 + 1)):
            todo.extend(_polygon_parts(poly.intersection(half)))
    return [p for p in done if p.area > 0.25]


def _exterior(geometry):
    """The outer rings of a shapely geometry as (N, 2) arrays."""
    return [np.asarray(p.exterior.coords)[:-1] for p in _polygon_parts(geometry)]


def _noise(rng, height, width, scale_px, octaves=3):
    """Smooth noise of about unit spread whose coarsest features are ``scale_px`` wide (upsampled random grids)."""
    out = np.zeros((height, width), np.float32)
    scale, weight, total = max(scale_px, 1.0), 1.0, 0.0
    for _ in range(octaves):
        grid = rng.standard_normal((int(height / scale) + 2, int(width / scale) + 2), dtype=np.float32)
        interpolation = cv2.INTER_CUBIC if scale > 2 else cv2.INTER_LINEAR
        out += weight * cv2.resize(grid, (width, height), interpolation=interpolation)
        total += weight
        if scale <= 1:
            break
        scale, weight = max(scale / 3, 1.0), weight * 0.6
    return out / total


# ----------------------------------------------------------------------------- the canvas and its bookkeeping
@dataclass
class _Target:
    name: str
    outline: BaseGeometry  # pixels
    bounds: tuple
    occluders: list = field(default_factory=list)  # (N, 2) polygons painted over it later


class Scene:
    """One image being drawn: a uint8 canvas with metric helpers, shadows, layout reservations and the targets."""

    def __init__(self, rng, size, style, gsd, budget=None):
        self.rng, self.size, self.style, self.gsd = rng, size, style, gsd
        self.palette = PALETTES[style.palette]
        self.budget = budget  # targets still allowed (None: no limit)
        self.center = np.array([size / 2, size / 2])
        self.extent = size * gsd  # metres across the frame
        self.image = np.zeros((size, size, 3), np.uint8)
        self.shadow = np.zeros((size, size), np.uint8)
        self.raised = np.zeros((size, size), np.uint8)
        self.occupied = np.zeros((size, size), np.uint8)
        self.water = np.zeros((size, size), np.uint8)
        self.targets = []
        self.frame = box(0, 0, size, size)
        self._grains = {}
        self.sun = _unit(rng.uniform(0, 2 * np.pi))  # towards the sun, in image axes
        elevation = math.radians(rng.uniform(*style.sun_elevation))
        self.shadow_step = -self.sun / math.tan(elevation) / gsd  # shadow displacement in pixels per metre of height

    # -- units and draws
    def m(self, metres):
        """Metres to pixels."""
        return metres / self.gsd

    def place(self, local, center, angle):
        """Points in an object's frame (metres, x along its length) to image pixels."""
        return np.asarray(local, np.float64) @ _rot(angle).T / self.gsd + center

    def uniform(self, lo, hi):
        """A uniform draw in [lo, hi) (all draws come from the scene's generator)."""
        return float(self.rng.uniform(lo, hi))

    def chance(self, p):
        return self.rng.random() < p

    def pick(self, options, p=None):
        """One of ``options``, uniformly or with weights ``p``."""
        if p is None:
            return options[int(self.rng.integers(len(options)))]
        cumulative = np.cumsum(p)
        return options[min(int(np.searchsorted(cumulative, self.rng.random() * cumulative[-1], "right")),
                           len(options) - 1)]

    def tone(self, color, spread=0.06):
        """``color`` with a random brightness and a slight random tint."""
        gain = math.exp(self.rng.normal(0, spread)) * (1 + self.rng.normal(0, spread / 3, 3))
        return tuple(float(c) for c in np.clip(np.asarray(color) * gain, 0, 1))

    def random_point(self, margin=0.0):
        """A uniform point in the frame grown by ``margin`` pixels (shrunk, if negative)."""
        return self.rng.uniform(-margin, self.size + margin, 2)

    def grain(self, grain_m):
        """A frame-sized noise field with features about ``grain_m`` metres wide (made once per scene and grain)."""
        key = max(1, int(round(self.m(grain_m))))
        if key not in self._grains:
            self._grains[key] = _noise(self.rng, self.size, self.size, key)
        return self._grains[key]

    # -- painting
    def _roi(self, fixed, pad):
        """The bounding box (x0, y0, x1, y1) in the frame of fixed-point polygons, padded; None if off the frame."""
        x, y, w, h = cv2.boundingRect(np.concatenate(fixed) if len(fixed) > 1 else fixed[0])
        x0, y0 = max((x >> 4) - pad, 0), max((y >> 4) - pad, 0)
        x1, y1 = min(((x + w) >> 4) + pad + 1, self.size), min(((y + h) >> 4) + pad + 1, self.size)
        return (x0, y0, x1, y1) if x1 > x0 and y1 > y0 else None

    def _mask(self, roi, fixed, holes=(), value=255, line_type=cv2.LINE_AA):
        """A uint8 mask of the region ``roi`` with fixed-point polygons filled with ``value`` and holes cleared."""
        x0, y0, x1, y1 = roi
        mask = np.zeros((y1 - y0, x1 - x0), np.uint8)
        offset = np.array([x0 * 16, y0 * 16], np.int32)
        for poly in fixed:
            cv2.fillPoly(mask, [poly - offset], value, line_type, 4)
        for hole in holes:
            cv2.fillPoly(mask, [hole - offset], 0, line_type, 4)
        return mask

    def _blend(self, roi, mask, paint, alpha):
        """Mix ``paint`` (a colour or an image of the region) into the canvas region ``roi`` through ``mask``."""
        x0, y0, x1, y1 = roi
        region = self.image[y0:y1, x0:x1].astype(np.float32)
        weight = mask.astype(np.float32)[..., None] * (alpha / 255)
        self.image[y0:y1, x0:x1] = np.clip(region + (paint - region) * weight + 0.5, 0, 255).astype(np.uint8)

    def fill(self, polys, color, alpha=1.0, texture=0.0, grain_m=2.0, holes=()):
        """Paint polygons (pixels) in ``color``; ``texture`` modulates it with noise of ``grain_m`` metres."""
        fixed = [_fixed(p) for p in _as_list(polys)]
        if alpha >= 1 and not texture and not holes:
            for poly in fixed:
                cv2.fillPoly(self.image, [poly], _bytes(color), cv2.LINE_AA, 4)
            return
        roi = self._roi(fixed, 1)
        if roi is None:
            return
        paint = np.asarray(color, np.float32) * 255
        if texture:
            x0, y0, x1, y1 = roi
            paint = paint * (1 + texture * self.grain(grain_m)[y0:y1, x0:x1, None])
        self._blend(roi, self._mask(roi, fixed, [_fixed(h) for h in holes]), paint, alpha)

    def fill_geometry(self, geometry, color, alpha=1.0, texture=0.0, grain_m=2.0):
        """Paint a shapely geometry (holes respected)."""
        for poly in _polygon_parts(geometry):
            holes = [np.asarray(h.coords)[:-1] for h in poly.interiors]
            self.fill(np.asarray(poly.exterior.coords)[:-1], color, alpha, texture, grain_m, holes)

    def stroke(self, lines, color, width_m, alpha=1.0, closed=False):
        """Draw polylines ``width_m`` wide at opacity ``alpha``; a line thinner than a pixel is drawn one pixel wide
        and correspondingly fainter. A translucent line is drawn in its colour mixed with the colour found under it
        (lines lie on even surfaces: roads, courts, water)."""
        lines = _as_list(lines)
        width = self.m(width_m)
        alpha *= min(1.0, width)
        if alpha < 0.03:
            return
        if alpha < 0.98:
            color = self._over(lines, color, alpha, closed)
        cv2.polylines(self.image, [_fixed(p) for p in lines], closed, _bytes(color), max(1, int(round(width))),
                      cv2.LINE_AA, 4)

    def _over(self, lines, color, alpha, closed):
        """``color`` at opacity ``alpha`` over the mean image colour sampled along ``lines``."""
        samples = []
        for line in lines:
            ends = np.concatenate([line, line[:1]]) if closed else line
            a, b = ends[:-1], ends[1:]
            samples.append((a[:, None] + (b - a)[:, None] * _SAMPLES[None, :, None]).reshape(-1, 2))
        xy = np.floor(np.concatenate(samples)).astype(int)
        keep = (xy >= 0).all(1) & (xy < self.size).all(1)
        if not keep.any():
            return color
        under = self.image[xy[keep, 1], xy[keep, 0]].mean(0) / 255
        return tuple(under + (np.asarray(color) - under) * alpha)

    def stripes(self, polys, period_m, angle, amplitude):
        """Modulate the brightness inside polygons with parallel stripes (crop rows, mowing patterns)."""
        period = self.m(period_m)
        fixed = [_fixed(p) for p in _as_list(polys)]
        roi = self._roi(fixed, 1)
        if period < 3 or roi is None:
            return
        x0, y0, x1, y1 = roi
        xs = np.arange(x0, x1, dtype=np.float32)[None, :] * (2 * math.cos(angle) / period)
        ys = np.arange(y0, y1, dtype=np.float32)[:, None] * (2 * math.sin(angle) / period)
        wave = (np.floor(xs + ys).astype(np.int32) & 1) * 2 - 1
        weight = self._mask(roi, fixed).astype(np.float32) * (amplitude / 255)
        region = self.image[y0:y1, x0:x1].astype(np.float32)
        self.image[y0:y1, x0:x1] = np.clip(region * (1 + wave * weight)[..., None] + 0.5, 0, 255).astype(np.uint8)

    def modulate(self, amplitude, grain_m):
        """Vary the brightness of the whole canvas with noise of ``grain_m`` metres (texture of large surfaces)."""
        gain = 1 + amplitude * self.grain(grain_m)[..., None]
        self.image[:] = np.clip(self.image * gain + 0.5, 0, 255).astype(np.uint8)

    # -- bookkeeping of raised things, layout and targets
    def cast(self, pts, height_m, lifted=False):
        """Add the shadow of a raised thing: its footprint swept away from the sun by ``height_m``, or (``lifted``)
        its silhouette moved that far."""
        offset = self.shadow_step * height_m
        if lifted:
            self.add_shadow(pts + offset)
        else:
            self.add_shadow(cv2.convexHull(np.concatenate([pts, pts + offset]).astype(np.float32))[:, 0])

    def add_shadow(self, pts):
        """Add a polygon to the shadow mask."""
        cv2.fillPoly(self.shadow, [_fixed(pts)], 255, cv2.LINE_AA, 4)

    def solid(self, pts, height_m=0.0, lifted=False, occupy=SOLID):
        """Book a raised opaque thing about to be painted at ``pts``: it hides the targets under it, casts a shadow,
        is never in shadow itself and (``occupy``) reserves its place."""
        self.occlude(pts)
        if height_m:
            self.cast(pts, height_m, lifted)
        cv2.fillPoly(self.raised, [_fixed(pts)], 255, cv2.LINE_AA, 4)
        if occupy:
            self.occupy(pts, occupy)

    def occupy(self, pts, level=SOLID):
        """Reserve the place under polygon ``pts`` at occupancy ``level`` (a higher level already there stays)."""
        fixed = [_fixed(pts)]
        roi = self._roi(fixed, 1)
        if roi is not None:
            x0, y0, x1, y1 = roi
            region = self.occupied[y0:y1, x0:x1]
            np.maximum(region, self._mask(roi, fixed, value=level, line_type=cv2.LINE_8), out=region)

    def _under(self, pts):
        """The occupancy and water values of the frame pixels under polygon ``pts`` (None if it is off the frame)."""
        fixed = [_fixed(pts)]
        roi = self._roi(fixed, 0)
        if roi is None:
            return None
        x0, y0, x1, y1 = roi
        inside = self._mask(roi, fixed, value=1, line_type=cv2.LINE_8) > 0
        return self.occupied[y0:y1, x0:x1][inside], self.water[y0:y1, x0:x1][inside]

    def is_free(self, pts, level=SURFACE, surface="land"):
        """Whether nothing of occupancy ``level`` or more lies under ``pts`` and it lies on ``surface``: "land"
        (under 3 % water), "water" (over 97 %) or "any". Only what lies in the frame counts."""
        under = self._under(pts)
        if under is None or under[0].size == 0:
            return True
        occupied, water = under
        if occupied.max() >= level:
            return False
        if surface == "any":
            return True
        wet = np.count_nonzero(water) / water.size
        return wet > 0.97 if surface == "water" else wet < 0.03

    def dry(self, point):
        """Whether ``point`` is in the frame and on land."""
        x, y = int(point[0]), int(point[1])
        return 0 <= x < self.size and 0 <= y < self.size and self.water[y, x] == 0

    def add_water(self, geometry):
        """Mark a shapely geometry as water."""
        for poly in _polygon_parts(geometry):
            holes = [_fixed(np.asarray(h.coords)) for h in poly.interiors]
            cv2.fillPoly(self.water, [_fixed(np.asarray(poly.exterior.coords))], 255, cv2.LINE_8, 4)
            for hole in holes:
                cv2.fillPoly(self.water, [hole], 0, cv2.LINE_8, 4)

    def wants(self, outline=None):
        """Whether to draw a target: the budget allows another (background-only images allow none, ``num_objects``
        a few) and at least MIN_VISIBLE of its ``outline`` (pixels, or shapely) lies in the frame - a target mostly
        outside would be drawn but not annotated."""
        if self.budget is not None and self.budget <= 0:
            return False
        return outline is None or self.in_frame(outline) >= MIN_VISIBLE

    def in_frame(self, outline):
        """The share of an outline's area inside the frame."""
        if not isinstance(outline, BaseGeometry):
            lo, hi = outline.min(0), outline.max(0)
            if np.all(lo >= 0) and np.all(hi <= self.size):
                return 1.0
            if np.any(hi <= 0) or np.any(lo >= self.size):
                return 0.0
            outline = Polygon(outline)
        return outline.intersection(self.frame).area / max(outline.area, 1e-9)

    def add_target(self, name, outline):
        """Register an instance of class ``name`` whose full outline (pixels) is ``outline``."""
        if self.budget is not None:
            self.budget -= 1
        geometry = outline if isinstance(outline, BaseGeometry) else Polygon(outline)
        if not geometry.is_valid:
            geometry = geometry.buffer(0)
        self.targets.append(_Target(name, geometry, geometry.bounds))

    def occlude(self, pts):
        """An opaque polygon is painted now: it hides what it covers of the targets registered so far."""
        x0, y0 = pts.min(0)
        x1, y1 = pts.max(0)
        for target in self.targets:
            bx0, by0, bx1, by1 = target.bounds
            if x0 < bx1 and x1 > bx0 and y0 < by1 and y1 > by0:
                target.occluders.append(pts)

    # -- the end
    def annotations(self):
        """``[(class_name, coco_annotation), ...]`` of the targets visible enough, with their visible masks."""
        out = []
        for target in self.targets:
            full = target.outline
            x0, y0, x1, y1 = target.bounds
            if full.area <= 0 or max(x1 - x0, y1 - y0) < MIN_EXTENT_PX:
                continue
            visible = full.intersection(self.frame)
            if target.occluders:
                hidden = unary_union([Polygon(p).buffer(0) for p in target.occluders])
                visible = visible.difference(hidden)
            if visible.area < MIN_VISIBLE * full.area or visible.area < MIN_AREA_PX:
                continue
            parts = _hole_free(visible)
            annotation = outline_annotation(MultiPolygon(parts), self.size) if parts else None
            if annotation is not None and annotation["area"] >= MIN_AREA_PX:
                out.append((target.name, annotation))
        return out

    def finish(self):
        """The imaged RGB uint8 picture (shadows, fine ground texture, atmosphere, sensor, JPEG) and the
        annotations."""
        image = self.image.astype(np.float32) * (1 / 255)
        shade = self.shadow.astype(np.float32) * (255 - self.raised.astype(np.float32)) * (1 / 255 ** 2)
        shade = cv2.GaussianBlur(shade, (0, 0), max(0.5, self.m(0.3)))  # penumbra
        depth = self.uniform(0.5, 0.62) * np.array([1.0, 0.97, 0.86], np.float32)  # skylight keeps shadows bluish
        image *= 1 - shade[..., None] * depth
        image *= 1 + 0.05 * self.grain(0.8)[..., None]
        return _camera(self.rng, image, self.style), self.annotations()


# ----------------------------------------------------------------------------- imaging
def _camera(rng, image, style):
    """Atmosphere, optics and sensor applied to an RGB float image in [0, 1]; uint8 after a JPEG round trip."""
    size = image.shape[0]
    haze = rng.uniform(*style.haze)
    if haze > 0:
        patchy = np.clip(haze * (1 + 0.35 * _noise(rng, size, size, size / 3, octaves=2)), 0, 0.9)[..., None]
        image = image * (1 - patchy) + np.asarray(style.haze_color, np.float32) * patchy
    image = cv2.GaussianBlur(image, (0, 0), rng.uniform(*style.blur))
    image = cv2.transform(image, _sensor_matrix(style))
    if style.vignette:
        image *= _vignette(size, style.vignette)[..., None]
    read = rng.uniform(*style.noise)
    sigma = np.sqrt(read ** 2 + style.shot_noise * np.clip(image, 0, 1))
    image += sigma * rng.standard_normal(image.shape, dtype=np.float32)
    pixels = np.clip(image * 255 + 0.5, 0, 255).astype(np.uint8)
    quality = int(rng.integers(style.jpeg[0], style.jpeg[1] + 1))
    ok, buffer = cv2.imencode(".jpg", cv2.cvtColor(pixels, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_JPEG_QUALITY, quality])
    return cv2.cvtColor(cv2.imdecode(buffer, cv2.IMREAD_COLOR), cv2.COLOR_BGR2RGB)


def _sensor_matrix(style):
    """The sensor's colour response as one affine map (3 x 4): white balance, then saturation (mixing each channel
    with the mean), then contrast around a mid grey."""
    pivot = 0.45
    saturation = style.saturation * np.eye(3) + (1 - style.saturation) / 3 * np.ones((3, 3))
    linear = style.contrast * saturation @ np.diag(style.cast)
    return np.hstack([linear, np.full((3, 1), pivot * (1 - style.contrast))]).astype(np.float32)


def _vignette(size, strength):
    """Light reaching each pixel relative to the centre: 1 - strength * r^2 / 2, r = 1 at the edge midpoints."""
    key = (size, strength)
    if key not in _VIGNETTES:
        r2 = (np.arange(size, dtype=np.float32) / (size / 2) - 1) ** 2
        _VIGNETTES[key] = 1 - strength * (r2[:, None] + r2[None, :]) / 2
    return _VIGNETTES[key]


# ----------------------------------------------------------------------------- terrain
def _frame_box(scene, margin=2):
    """The frame, a little enlarged, as a polygon."""
    return _box(scene.size + 2 * margin, scene.size + 2 * margin, scene.size / 2, scene.size / 2)


def _long_line(scene, point, angle):
    """A segment through ``point`` along ``angle`` that crosses the whole frame."""
    u = _unit(angle) * scene.size * 2
    return np.array([point - u, point + u])


def _ground(scene, color, texture=0.12, grain_m=30.0):
    """Cover the frame with a mottled ground colour."""
    scene.fill(_frame_box(scene), scene.tone(color, 0.04), texture=texture, grain_m=grain_m)


def _parcels(scene, angle, sizes_m):
    """Rectangles tiling the frame on a grid rotated by ``angle``: columns of random widths, each cut into rows of
    random lengths (a field pattern). Corners in order, as (4, 2) pixel arrays."""
    half = scene.size * 0.75 + scene.m(sizes_m[1])
    u, v = _unit(angle), _unit(angle + np.pi / 2)
    cells = []
    a = -half + scene.m(scene.uniform(0, sizes_m[1]))
    while a < half:
        a1 = a + scene.m(scene.uniform(*sizes_m))
        b = -half + scene.m(scene.uniform(0, sizes_m[1]))
        while b < half:
            b1 = b + scene.m(scene.uniform(*sizes_m))
            cells.append(np.array([scene.center + x * u + y * v for x, y in ((a, b), (a1, b), (a1, b1), (a, b1))]))
            b = b1
        a = a1
    return cells


def _shrink(cell, inset):
    """A rectangle (corners in order) moved in by ``inset`` pixels on every side, or None if nothing is left."""
    e1, e2 = cell[1] - cell[0], cell[3] - cell[0]
    l1, l2 = np.linalg.norm(e1), np.linalg.norm(e2)
    if min(l1, l2) <= 2 * inset + 2:
        return None
    u1, u2 = e1 / l1, e2 / l2
    c0 = cell[0] + (u1 + u2) * inset
    e1, e2 = u1 * (l1 - 2 * inset), u2 * (l2 - 2 * inset)
    return np.array([c0, c0 + e1, c0 + e1 + e2, c0 + e2])


def _in_frame(scene, pts, margin=0.0):
    """Whether the bounding box of ``pts`` overlaps the frame grown by ``margin`` pixels."""
    lo, hi = pts.min(0), pts.max(0)
    return bool(np.all(hi > -margin) and np.all(lo < scene.size + margin))


def _fields(scene):
    """Farmland: parcels of crops, ploughed soil and meadow with crop rows, tracks and hedgerows between them."""
    palette = scene.palette
    angle = scene.uniform(0, np.pi)
    _ground(scene, scene.pick(palette.grass))
    for cell in _parcels(scene, angle, (60, 240)):
        if not _in_frame(scene, cell):
            continue
        scene.fill(cell, scene.tone(scene.pick(palette.crops + palette.soil + palette.grass[:1]), 0.05))
        if scene.chance(0.6):
            scene.stripes(cell, scene.uniform(2.5, 12), angle + scene.pick((0, np.pi / 2)), scene.uniform(0.03, 0.08))
        if scene.chance(0.3):
            scene.stroke(cell, scene.tone(palette.soil[0]), scene.uniform(2, 4), alpha=0.6, closed=True)
        if scene.chance(0.2):
            edge = int(scene.rng.integers(4))
            _tree_line(scene, cell[edge], cell[(edge + 1) % 4])
    scene.modulate(0.07, 25)


def _grass(scene, stripes=True):
    """Mown grass (airfields, parks), with mowing bands."""
    _ground(scene, scene.pick(scene.palette.grass), texture=0.1, grain_m=20)
    if stripes:
        scene.stripes(_frame_box(scene), scene.uniform(6, 14), scene.uniform(0, np.pi), 0.03)


def _yard(scene):
    """Industrial ground: gravel and packed soil with patches."""
    _ground(scene, scene.palette.pavement, texture=0.16, grain_m=15)
    for _ in range(int(scene.rng.integers(2, 6))):
        patch = scene.place(_box(scene.uniform(30, 120), scene.uniform(20, 80)), scene.random_point(),
                            scene.uniform(0, np.pi))
        scene.fill(patch, scene.tone(scene.pick(scene.palette.soil + scene.palette.grass[:1])), alpha=0.5,
                   texture=0.2, grain_m=10)


def _forest(scene, pts):
    """A patch of forest: dark floor and, where crowns are big enough to see, individual lit crowns."""
    palette = scene.palette
    scene.fill(pts, scene.tone(palette.forest), texture=0.3, grain_m=5)
    radius = scene.uniform(2.5, 4.5)
    if scene.m(radius) < 1.5:
        return
    area = Polygon(pts).intersection(box(0, 0, scene.size, scene.size)).area
    count = min(int(area / (math.pi * scene.m(radius * 1.3) ** 2)), 300)
    candidates = scene.rng.uniform(pts.min(0), pts.max(0), (count * 2, 2))
    contour = pts.astype(np.float32)
    inside = [c for c in candidates if cv2.pointPolygonTest(contour, (float(c[0]), float(c[1])), False) > 0]
    for center in inside[:count]:
        if scene.dry(center):
            _crown(scene, center, radius * scene.uniform(0.7, 1.3))


def _tree_line(scene, p0, p1):
    """A hedgerow: trees every few metres along a segment."""
    length = np.linalg.norm(p1 - p0)
    step = scene.m(scene.uniform(5, 9))
    for t in np.arange(0, 1, step / max(length, 1)):
        center = p0 + (p1 - p0) * t + scene.rng.normal(0, scene.m(1.0), 2)
        if scene.dry(center):
            _crown(scene, center, scene.uniform(2.5, 4.5))


def _sea_polygon(scene, point, normal_angle, wavy):
    """Water on the side ``normal_angle`` points to of a shoreline through ``point`` (straight, or wavy)."""
    big = scene.size * 3
    u, n = _unit(normal_angle - np.pi / 2), _unit(normal_angle)
    ts = np.linspace(-big, big, 60)
    offsets = np.zeros_like(ts)
    if wavy:
        for _ in range(3):
            wavelength = scene.m(scene.uniform(150, 900))
            offsets += scene.m(scene.uniform(5, 40)) * np.sin(ts / wavelength * 2 * np.pi + scene.uniform(0, 6.3))
    shore = point + ts[:, None] * u + offsets[:, None] * n
    return Polygon(np.concatenate([shore, [shore[-1] + big * n, shore[0] + big * n]])).buffer(0)


def _river_polygon(scene, point, angle, width_m):
    """A meandering band of water ``width_m`` wide along ``angle`` through ``point``: (polygon, centreline points)."""
    big = scene.size * 1.5
    u, n = _unit(angle), _unit(angle + np.pi / 2)
    ts = np.linspace(-big, big, 60)
    wavelength = scene.m(scene.uniform(400, 1500))
    phase = scene.uniform(0, 6.3)
    middle = point + ts[:, None] * u + (scene.m(scene.uniform(0, 0.4) * width_m) *
                                        np.sin(ts / wavelength * 2 * np.pi + phase))[:, None] * n
    half = scene.m(width_m / 2) * (1 + 0.08 * np.sin(ts / wavelength * 7 + phase))
    left, right = middle + half[:, None] * n, middle - half[:, None] * n
    return Polygon(np.concatenate([left, right[::-1]])).buffer(0), middle


def _along(middle, target):
    """The centreline point nearest ``target`` and the direction of the line there."""
    k = int(np.argmin(np.linalg.norm(middle - target, axis=1)))
    k = min(max(k, 1), len(middle) - 2)
    tangent = middle[k + 1] - middle[k - 1]
    return middle[k], math.atan2(tangent[1], tangent[0])


def _water(scene, geometry, color, bank=None):
    """Paint water - a bank strip along the shore, the water with ripples, a lighter shallow band - and register it
    (callers register it before drawing the land too, so that nothing is built where it will be)."""
    if bank is not None:
        scene.fill_geometry(geometry.buffer(scene.m(scene.uniform(3, 12))), scene.tone(bank), texture=0.15, grain_m=6)
    scene.fill_geometry(geometry, scene.tone(color, 0.04), texture=0.08, grain_m=40)
    shallow = geometry.difference(geometry.buffer(-scene.m(scene.uniform(4, 15))))
    scene.fill_geometry(shallow, scene.tone(np.asarray(color) * 1.35 + 0.03), alpha=0.45)
    scene.add_water(geometry)
    scene.occupied[scene.water > 0] = 0  # whatever was laid out there is under water now


# ----------------------------------------------------------------------------- distractors
def _crown(scene, center, radius_m, bare=None):
    """A tree seen from above: an irregular crown lit from the sun's side, its shadow (the crown's, cast from its
    height, and the trunk's); returns the crown. A bare deciduous tree (autumn, winter) is a faint tangle that hides
    nothing (returns None)."""
    r = scene.m(radius_m)
    crown = _circle(1.0, 9) * (r * (1 + 0.12 * scene.rng.standard_normal((9, 1)))) + center
    if scene.chance(scene.palette.bare_trees) if bare is None else bare:
        scene.fill(crown, (0.32, 0.27, 0.22), alpha=0.45)
        return None
    color = scene.tone(scene.pick(scene.palette.canopy), 0.08)
    height = radius_m * scene.uniform(1.6, 2.4)
    scene.solid(crown, height, lifted=True, occupy=0)
    trunk = np.array([center, center + scene.shadow_step * height])
    scene.add_shadow(_segment_box(scene, trunk, 0.5))
    scene.fill(crown, tuple(c * 0.7 for c in color))
    lit = scene.sun * r * 0.25 + center
    scene.fill(_circle(r * 0.72, 8) + lit, color)
    if r > 2.5:
        scene.fill(_circle(r * 0.35, 6) + lit + scene.sun * r * 0.15, tuple(min(1.0, c * 1.3) for c in color))
    return crown


def _tree(scene, center, radius_m=None):
    """A single tree if it has room: rooted on free land (or outside the frame), its crown may overhang roads, lots,
    courts and cars (not buildings, tanks, planes, ships)."""
    radius_m = radius_m or scene.uniform(2.5, 6.0)
    r = scene.m(radius_m)
    x, y = int(center[0]), int(center[1])
    rooted = not (0 <= x < scene.size and 0 <= y < scene.size) or (scene.occupied[y, x] == 0 and scene.dry(center))
    if not (rooted and scene.is_free(_circle(r, 8) + center, SOLID)):
        return False
    crown = _crown(scene, center, radius_m)
    if crown is not None:
        scene.occupy(crown, LOW)
    return True


def _scatter_trees(scene, count, center=None, spread_m=None):
    """Up to ``count`` trees, uniformly over the frame or in a cluster around ``center``."""
    for _ in range(count):
        point = scene.random_point(5) if center is None else center + scene.rng.normal(0, scene.m(spread_m), 2)
        _tree(scene, point)


def _roof(scene, pts, color, kind):
    """Paint a roof on a rectangular footprint ``pts`` (corners in order, long side first): flat with a parapet and
    rooftop units, gabled (two slopes shaded by the sun) or hipped (four)."""
    along, across = pts[1] - pts[0], pts[3] - pts[0]
    center = pts.mean(0)
    detailed = np.linalg.norm(across) >= 8  # pixels: big enough to show a parapet, rooftop units, a ridge line
    if kind == "flat":
        scene.fill(pts, color)
        if not detailed:
            return
        scene.fill(center + (pts - center) * 0.9, tuple(c * 0.93 for c in color))
        for _ in range(int(scene.rng.integers(0, 4))):
            spot = center + scene.uniform(-0.35, 0.35) * along + scene.uniform(-0.35, 0.35) * across
            scene.fill(_circle(scene.m(scene.uniform(1, 2.5)), 4) + spot, tuple(min(1.0, c * 1.2) for c in color))
        return
    u_along = along / (np.linalg.norm(along) + 1e-9)
    u_across = across / (np.linalg.norm(across) + 1e-9)
    shade = 0.25 * float(u_across @ scene.sun)
    ridge = [pts[0] + across / 2, pts[1] + across / 2]
    if kind == "hipped":
        inset = u_along * min(np.linalg.norm(across) / 2, np.linalg.norm(along) / 2.2)
        ridge = [ridge[0] + inset, ridge[1] - inset]
    scene.fill(np.array([pts[0], pts[1], ridge[1], ridge[0]]), tuple(c * (1 - shade) for c in color))
    scene.fill(np.array([pts[3], pts[2], ridge[1], ridge[0]]), tuple(min(1.0, c * (1 + shade)) for c in color))
    if kind == "hipped":
        end_shade = 0.25 * float(u_along @ scene.sun)
        scene.fill(np.array([pts[1], pts[2], ridge[1]]), tuple(min(1.0, c * (1 + end_shade)) for c in color))
        scene.fill(np.array([pts[0], pts[3], ridge[0]]), tuple(min(1.0, c * (1 - end_shade)) for c in color))
    if detailed:
        scene.stroke(np.array(ridge), tuple(c * 0.8 for c in color), 0.3)


def _building(scene, center, angle, length, width, height, kind=None, color=None):
    """A building of ``length`` x ``width`` x ``height`` metres if its place is free; returns its footprint."""
    pts = scene.place(_box(length, width), center, angle)
    if not scene.is_free(pts):
        return None
    kind = kind or scene.pick(("flat", "gabled", "hipped"), p=(0.3, 0.4, 0.3))
    scene.solid(pts, height)
    _roof(scene, pts, color or scene.tone(scene.pick(scene.palette.roofs)), kind)
    return pts


def _road(scene, segment, lanes=2, cars=0.0, center_color=WHITE_PAINT):
    """A straight road along a pixel segment: asphalt, edge lines, dashed lane lines, and ``cars`` vehicles per 100 m
    of lane, driving on the right."""
    lane = 3.5
    width = lanes * lane + 1.0
    surface = _segment_box(scene, segment, width)
    scene.occupy(surface, SURFACE)
    scene.fill(surface, scene.tone(scene.palette.asphalt, 0.05))
    normal = _normal(segment)
    edges = [segment + normal * side * scene.m(width / 2 - 0.5) for side in (-1, 1)]
    scene.stroke(edges, WHITE_PAINT, 0.15, alpha=0.8)
    for k in range(1, lanes):
        offset = (k - lanes / 2) * lane
        _dashes(scene, segment + normal * scene.m(offset), center_color if 2 * k == lanes else WHITE_PAINT, 0.15, 3, 6)
    if cars > 0:
        for k in range(lanes):
            offset = (k + 0.5 - lanes / 2) * lane
            lane_line = segment + normal * scene.m(offset)
            _cars_along(scene, lane_line if offset > 0 else lane_line[::-1], cars)


def _normal(segment):
    """The unit normal of a segment (its direction turned by +90 degrees)."""
    axis = segment[1] - segment[0]
    return np.array([-axis[1], axis[0]]) / (np.linalg.norm(axis) + 1e-9)


def _dashes(scene, segment, color, width_m, dash_m, gap_m):
    """A dashed line along a pixel segment (the dashes in or near the frame)."""
    a, b = segment
    length = np.linalg.norm(b - a)
    direction = (b - a) / max(length, 1e-9)
    period, dash = scene.m(dash_m + gap_m), scene.m(dash_m)
    starts = np.arange(scene.uniform(0, period), length, period)
    p0 = a + starts[:, None] * direction
    p1 = a + np.minimum(starts + dash, length)[:, None] * direction
    near = ((np.minimum(p0, p1) < scene.size + 2) & (np.maximum(p0, p1) > -2)).all(1)
    if near.any():
        scene.stroke(list(np.stack([p0[near], p1[near]], 1)), color, width_m, alpha=0.85)


def _cars_along(scene, segment, per_100m, surface="land"):
    """Vehicles driving along a lane (a pixel segment, in its direction), ``per_100m`` on average."""
    a, b = segment
    length = np.linalg.norm(b - a)
    direction = (b - a) / max(length, 1e-9)
    angle = math.atan2(direction[1], direction[0])
    spacing = scene.m(100 / per_100m)
    t = scene.uniform(0, spacing)
    while t < length:
        point = a + direction * t
        if -10 < point[0] < scene.size + 10 and -10 < point[1] < scene.size + 10:
            vehicle(scene, point, angle, surface)
        t += scene.m(6) + scene.rng.exponential(spacing)


def _parking_lot(scene, center, angle, stall_rows, stalls, occupancy):
    """A parking lot of ``stall_rows`` double rows of ``stalls`` stalls, ``occupancy`` of them taken by cars; returns
    its polygon, or None if the place is taken."""
    stall_w, stall_l, aisle = 2.6, 5.2, 6.5
    length = stalls * stall_w + 2 * aisle
    depth = stall_rows * 2 * stall_l + (stall_rows + 1) * aisle
    lot = scene.place(_box(length, depth), center, angle)
    if not scene.is_free(lot):
        return None
    scene.occupy(lot, SURFACE)
    scene.fill(lot, scene.tone(scene.palette.asphalt, 0.06), texture=0.08, grain_m=4)
    for row in range(stall_rows):
        y_mid = -depth / 2 + aisle + stall_l + row * (2 * stall_l + aisle)
        xs = -length / 2 + aisle + np.arange(stalls + 1) * stall_w
        lines = [scene.place(np.array([[x, y_mid - stall_l], [x, y_mid + stall_l]]), center, angle) for x in xs]
        lines.append(scene.place(np.array([[xs[0], y_mid], [xs[-1], y_mid]]), center, angle))
        scene.stroke(lines, WHITE_PAINT, 0.12, alpha=0.8)
        for side in (-1, 1):
            for x in xs[:-1] + stall_w / 2:
                if scene.chance(occupancy):
                    local = np.array([[x + scene.uniform(-0.3, 0.3), y_mid + side * stall_l / 2]])
                    heading = angle + side * np.pi / 2 + scene.pick((0, np.pi)) + scene.uniform(-0.06, 0.06)
                    vehicle(scene, scene.place(local, center, angle)[0], heading)
    return lot


def _pool(scene, center, angle):
    """A backyard pool with its paved surround (a bright-rectangle distractor); returns it, or None if the place is
    taken."""
    surround = scene.place(_box(scene.uniform(8, 14), scene.uniform(5, 8)), center, angle)
    if not scene.is_free(surround):
        return None
    scene.occupy(surround, SURFACE)
    scene.fill(surround, (0.82, 0.80, 0.76))
    scene.fill(center + (surround - center) * 0.7, scene.tone(scene.palette.pool, 0.05))
    return surround


def _greenhouses(scene, center, angle, count):
    """Rows of long greenhouses or solar-panel strips (bright or dark rectangles: distractors)."""
    bright = scene.chance(0.5)
    color = (0.86, 0.87, 0.88) if bright else (0.12, 0.15, 0.25)
    length, width = scene.uniform(30, 80), scene.uniform(6, 10)
    for k in range(count):
        pts = scene.place(_box(length, width, 0, k * (width + 2)), center, angle)
        if scene.is_free(pts):
            scene.solid(pts, 3 if bright else 0.5)
            scene.fill(pts, scene.tone(color, 0.03))
            scene.stripes(pts, 2.0, angle + np.pi / 2, 0.06)


def _soccer_pitch(scene, center, angle):
    """A lone football pitch (grass with lines, no track): a distractor for ground track fields."""
    area = scene.place(_box(115, 78), center, angle)
    if not scene.is_free(area):
        return
    scene.occupy(area, SURFACE)
    pitch = scene.place(_box(105, 68), center, angle)
    scene.fill(pitch, scene.tone(scene.pick(scene.palette.turf + (ARTIFICIAL_TURF,))))
    scene.stripes(pitch, 10, angle, 0.05)
    _pitch_lines(scene, center, angle)


def _pitch_lines(scene, center, angle):
    """Football markings: touch and goal lines, halfway line, centre circle, penalty and goal areas."""
    closed = [_box(105, 68), _circle(9.15, 24)]
    for sx in (-1, 1):
        closed += [_box(16.5, 40.3, sx * (52.5 - 8.25)), _box(5.5, 18.3, sx * (52.5 - 2.75))]
    scene.stroke([scene.place(p, center, angle) for p in closed], WHITE_PAINT, 0.12, closed=True)
    scene.stroke(scene.place(np.array([[0, -34], [0, 34]]), center, angle), WHITE_PAINT, 0.12)


# ----------------------------------------------------------------------------- the 10 classes
VEHICLE_COLORS = ((0.88, 0.88, 0.87), (0.10, 0.10, 0.11), (0.66, 0.67, 0.69), (0.42, 0.43, 0.45),
                  (0.15, 0.24, 0.50), (0.62, 0.12, 0.10), (0.22, 0.34, 0.25), (0.70, 0.62, 0.48), (0.85, 0.72, 0.20))
VEHICLE_COLOR_WEIGHTS = (0.26, 0.2, 0.2, 0.12, 0.07, 0.07, 0.03, 0.03, 0.02)


def vehicle(scene, center, angle, surface="land"):
    """A car (4-5 x 1.8-2 m) heading ``angle`` at ``center`` (pixels), if a target is wanted and the place is free
    (roads and lots are; buildings and other cars are not). Returns whether it was drawn."""
    length, width = scene.uniform(4.0, 5.0), scene.uniform(1.8, 2.0)
    c = 0.35
    body = np.array([[length / 2 - c, -width / 2], [length / 2, -width / 2 + c], [length / 2, width / 2 - c],
                     [length / 2 - c, width / 2], [-length / 2 + c, width / 2], [-length / 2, width / 2 - c],
                     [-length / 2, -width / 2 + c], [-length / 2 + c, -width / 2]])
    pts = scene.place(body, center, angle)
    if not scene.wants(pts) or not scene.is_free(pts, LOW, surface):
        return False
    scene.solid(pts, 1.5, occupy=LOW)
    paint = scene.tone(scene.pick(VEHICLE_COLORS, p=VEHICLE_COLOR_WEIGHTS), 0.05)
    scene.fill(pts, paint)
    glass = tuple(0.08 + 0.2 * c for c in paint)  # dark, with a little of the body colour
    windshield = np.array([[length * 0.3, -width * 0.4], [length * 0.12, -width * 0.36],
                           [length * 0.12, width * 0.36], [length * 0.3, width * 0.4]])
    scene.fill(scene.place(windshield, center, angle), glass)
    scene.fill(scene.place(_box(length * 0.1, width * 0.7, -length * 0.33), center, angle), glass)
    scene.add_target("vehicle", pts)
    return True


def _airplane_parts(span, length):
    """An airliner in its frame (metres, nose at +x): the fuselage, the lifting surfaces (two wings, two tailplane
    halves), the engine pods and the cockpit windows (a line)."""
    radius = max(1.8, length * 0.045)
    nose = _arc(radius, -np.pi / 2, np.pi / 2, 9, length / 2 - radius)
    fuselage = np.concatenate([nose, [[-length * 0.3, radius], [-length / 2, radius * 0.25],
                                      [-length / 2, -radius * 0.25], [-length * 0.3, -radius]]])
    root_x, root_chord = length * 0.08, length * 0.2
    sweep = math.tan(math.radians(28))
    tip_x = root_x - span / 2 * sweep
    wing = np.array([[root_x, radius * 0.5], [tip_x, span / 2], [tip_x - root_chord * 0.25, span / 2],
                     [root_x - root_chord, radius * 0.5]])
    tail_span, tail_chord = span * 0.33, length * 0.09
    tail_root = -length / 2 + length * 0.14
    stab = np.array([[tail_root, 0.0], [tail_root - tail_span / 2 * 0.6, tail_span / 2],
                     [tail_root - tail_span / 2 * 0.6 - tail_chord * 0.35, tail_span / 2],
                     [tail_root - tail_chord, 0.0]])
    mirror = np.array([1, -1])
    engines = []
    for station in ((0.34,) if span < 55 else (0.3, 0.6)):
        y = station * span / 2
        x = root_x - y * sweep + length * 0.05
        engines += [_box(length * 0.09, max(1.2, span * 0.045), x, sign * y) for sign in (-1, 1)]
    cockpit = _arc(radius * 0.8, -1.0, 1.0, 6, length / 2 - radius * 1.2)
    return fuselage, [wing, wing * mirror, stab, stab * mirror], engines, cockpit


LIVERIES = ((0.15, 0.25, 0.55), (0.62, 0.12, 0.12), (0.12, 0.40, 0.30), (0.85, 0.65, 0.10), (0.25, 0.25, 0.28))


def airplane(scene, center, angle, span=None):
    """An airliner (20-70 m span) with its nose along ``angle``, if a target is wanted and its place is free; its
    shadow is its silhouette moved (it stands on its gear). Returns whether it was drawn."""
    span = span or scene.uniform(20, 70)
    length = span * scene.uniform(0.9, 1.12)
    fuselage, surfaces, engines, cockpit = _airplane_parts(span, length)
    fuselage, cockpit = scene.place(fuselage, center, angle), scene.place(cockpit, center, angle)
    surfaces = [scene.place(p, center, angle) for p in surfaces]
    engines = [scene.place(p, center, angle) for p in engines]
    outline = unary_union([Polygon(p).buffer(0) for p in [fuselage] + surfaces + engines])
    hull = _exterior(outline.convex_hull)[0]
    if not scene.wants(outline) or not scene.is_free(hull, LOW):
        return False
    scene.occupy(hull, SOLID)
    height = scene.uniform(3.5, 5.5)
    for part in [fuselage] + surfaces + engines:
        scene.solid(part, height, lifted=True, occupy=0)
    scene.fill(surfaces, scene.tone((0.74, 0.75, 0.77), 0.04))
    scene.fill(engines, (0.55, 0.56, 0.58))
    scene.fill(fuselage, scene.tone((0.92, 0.92, 0.92), 0.03))
    if scene.chance(0.5):
        livery = _box(length * 0.3, max(0.6, length * 0.02), -length * 0.33)
        scene.fill(scene.place(livery, center, angle), scene.pick(LIVERIES))
    scene.stroke(cockpit, (0.1, 0.1, 0.12), 0.6)
    scene.add_target("airplane", outline)
    return True


TANK_COLORS = ((0.9, 0.9, 0.89), (0.82, 0.83, 0.84), (0.74, 0.75, 0.73), (0.55, 0.62, 0.52))


def storage_tank(scene, center, diameter):
    """A cylindrical tank of ``diameter`` metres seen from above: a floating roof (with the rim's crescent shadow)
    or a domed fixed roof. Returns whether it was drawn."""
    r = scene.m(diameter / 2)
    outline = _circle(r, 32) + center
    if not scene.wants(outline) or not scene.is_free(outline):
        return False
    scene.solid(outline, min(diameter * scene.uniform(0.4, 0.8), 22))
    shell = scene.tone(scene.pick(TANK_COLORS, p=(0.45, 0.3, 0.15, 0.1)), 0.03)
    scene.fill(outline, shell)
    if scene.chance(0.6):  # floating roof, below the rim: the rim shades the side facing the sun
        roof = _circle(r * 0.93, 32) + center
        scene.fill(roof, tuple(c * 0.6 for c in shell))
        lit = Polygon(roof).intersection(Polygon(roof + scene.shadow_step * scene.uniform(1.5, 3)))
        for part in _exterior(lit):
            scene.fill(part, tuple(c * 0.9 for c in shell))
        scene.stroke(_circle(r * 0.35, 16) + center, tuple(c * 0.7 for c in shell), 0.5, closed=True)
    else:  # fixed dome: brighter towards the sun, a vent on top
        scene.fill(_circle(r * 0.8, 24) + center + scene.sun * r * 0.12, tuple(min(1, c * 1.07) for c in shell))
        scene.fill(_circle(r * 0.85, 24) + center - scene.sun * r * 0.3, tuple(c * 0.88 for c in shell), alpha=0.5)
        scene.fill(_circle(max(r * 0.08, 0.6), 8) + center, tuple(c * 0.6 for c in shell))
    scene.add_target("storage_tank", outline)
    return True


def _hull(length, beam):
    """A ship's hull in its frame (metres, bow at +x): a pointed bow and a rounded stern."""
    b = beam / 2
    bow_start = length / 2 - min(length * 0.18, beam * 2)
    xs = np.linspace(bow_start, length / 2, 8)
    ys = b * np.sqrt(np.clip(1 - ((xs - bow_start) / (length / 2 - bow_start)) ** 2, 0, 1))
    a = min(beam * 0.3, length * 0.1)
    t = np.linspace(-np.pi / 2, -3 * np.pi / 2, 7)
    stern = np.stack([-length / 2 + a + a * np.cos(t), b * np.sin(t)], 1)
    return np.concatenate([np.stack([xs, ys], 1), np.stack([xs[::-1], -ys[::-1]], 1)[1:], stern])


CONTAINER_COLORS = ((0.65, 0.18, 0.12), (0.15, 0.30, 0.55), (0.20, 0.45, 0.30), (0.85, 0.50, 0.15),
                    (0.60, 0.60, 0.60), (0.88, 0.88, 0.86), (0.45, 0.30, 0.20))
DECK_COLORS = {"container": (0.45, 0.42, 0.38), "tanker": (0.45, 0.22, 0.18), "bulk": (0.35, 0.33, 0.32),
               "general": (0.55, 0.55, 0.53), "small": (0.88, 0.88, 0.86)}
HULL_COLORS = ((0.25, 0.25, 0.28), (0.55, 0.15, 0.12), (0.15, 0.22, 0.35), (0.85, 0.85, 0.84))


def ship(scene, center, angle, length=None, moving=False):
    """A ship (20-200 m) on water: hull, deck cargo by type (containers, tanker pipes, bulk hatches, a small ship's
    cabin) and the superstructure; a wake when ``moving``. Returns whether it was drawn."""
    length = length or scene.uniform(20, 200)
    beam = length / scene.uniform(5.5, 7.5) if length > 40 else length / scene.uniform(3.2, 4.5)
    outline = scene.place(_hull(length, beam), center, angle)
    if not scene.wants(outline) or not scene.is_free(outline, surface="water"):
        return False
    if moving:
        _wake(scene, center, angle, length, beam)
    scene.solid(outline, scene.uniform(2, 5))
    kind = "small" if length < 40 else scene.pick(("container", "tanker", "bulk", "general"))
    scene.fill(outline, scene.tone(scene.pick(HULL_COLORS)))
    scene.fill(scene.place(_hull(length * 0.94, beam * 0.82), center, angle), scene.tone(DECK_COLORS[kind]))
    _deck_cargo(scene, center, angle, length, beam, kind)
    house = _box(length * 0.3, beam * 0.7, length * 0.05) if kind == "small" else \
        _box(length * 0.09, beam * 0.8, -length / 2 + length * 0.12)
    house = scene.place(house, center, angle)
    scene.cast(house, scene.uniform(6, 18) if kind != "small" else 2.5)
    scene.fill(house, scene.tone((0.9, 0.9, 0.88), 0.03))
    scene.add_target("ship", outline)
    return True


def _deck_cargo(scene, center, angle, length, beam, kind):
    """What a ship's deck shows, by ship type: container bays, a tanker's pipes, bulk hatches, general cargo."""
    if kind == "container":
        stacks = max(1, int(beam * 0.8 / 2.5))
        for x in np.arange(-length * 0.33, length * 0.38, 6.5):
            for k in range(stacks):
                if scene.chance(0.85):
                    container = _box(6.0, 2.3, x, (k - (stacks - 1) / 2) * 2.5)
                    scene.fill(scene.place(container, center, angle), scene.tone(scene.pick(CONTAINER_COLORS)))
    elif kind == "tanker":
        pipes = [np.array([[-length * 0.35, 0], [length * 0.4, 0]]), np.array([[0, -beam * 0.35], [0, beam * 0.35]])]
        scene.stroke([scene.place(p, center, angle) for p in pipes], (0.8, 0.8, 0.75), 1.0)
    elif kind == "bulk":
        for x in np.linspace(-length * 0.3, length * 0.33, int(scene.rng.integers(5, 9))):
            scene.fill(scene.place(_box(length * 0.06, beam * 0.55, x), center, angle), scene.tone((0.25, 0.3, 0.38)))
    elif kind == "general":
        for _ in range(int(scene.rng.integers(2, 6))):
            hatch = _box(length * 0.07, beam * 0.5, scene.uniform(-length * 0.25, length * 0.35))
            scene.fill(scene.place(hatch, center, angle), scene.tone((0.6, 0.45, 0.3)))


def _wake(scene, center, angle, length, beam):
    """Foam behind a moving ship: a turbulent trail widening and fading behind the stern, and the two faint arms of
    the Kelvin wedge."""
    trail = length * scene.uniform(1.5, 4)
    foam = (0.82, 0.86, 0.88)
    for k, alpha in enumerate((0.45, 0.25, 0.1)):
        x0, x1 = -length / 2 - trail * k / 3, -length / 2 - trail * (k + 1) / 3
        w0, w1 = beam * (0.7 + 0.6 * k), beam * (1.3 + 0.6 * k)
        band = np.array([[x0, -w0 / 2], [x1, -w1 / 2], [x1, w1 / 2], [x0, w0 / 2]])
        scene.fill(scene.place(band, center, angle), foam, alpha=alpha, texture=0.6, grain_m=beam / 2)
    stern = scene.place(np.array([[-length / 2, 0]]), center, angle)[0]
    arms = [np.array([stern, stern + _unit(angle + np.pi + side * math.radians(19.5)) * scene.m(trail * 0.6)])
            for side in (-1, 1)]
    scene.stroke(arms, foam, max(0.5, beam * 0.06), alpha=0.3)


def harbor(scene, quay_point, normal_angle, length, width):
    """A pier ``length`` x ``width`` metres from the quay at ``quay_point`` out into the water along
    ``normal_angle``, sometimes T-headed; returns its polygon (pixels) or None."""
    parts = [_box(length + 4, width, (length - 4) / 2)]
    if scene.chance(0.35):
        parts.append(_box(width, scene.uniform(1.5, 3) * width, length - width / 2))
    parts = [scene.place(p, quay_point, normal_angle) for p in parts]
    outline = unary_union([Polygon(p) for p in parts])
    hull = _exterior(outline.convex_hull)[0]
    if not scene.wants(outline) or not scene.is_free(hull, SOLID, surface="any"):
        return None
    scene.occupy(hull, SOLID)
    color = scene.tone(scene.palette.concrete, 0.05)
    for part in parts:
        scene.solid(part, 1.5, occupy=0)
        scene.fill(part, color, texture=0.06, grain_m=5)
    scene.stroke(parts, tuple(c * 0.8 for c in color), 0.6, closed=True)
    scene.add_target("harbor", outline)
    return outline


TENNIS_COLORS = (((0.30, 0.50, 0.36), (0.22, 0.40, 0.55)), ((0.70, 0.42, 0.28), (0.68, 0.40, 0.27)),
                 ((0.33, 0.52, 0.38), (0.62, 0.32, 0.26)), ((0.45, 0.48, 0.46), (0.28, 0.45, 0.38)),
                 ((0.32, 0.52, 0.34), (0.27, 0.46, 0.30)))  # (surround, playing area)


def tennis_courts(scene, center, angle, count):
    """``count`` tennis courts side by side on one fenced pad (36.6 x 18.3 m per court); returns the pad or None."""
    cell_l, cell_w = 36.6, 18.3
    pad = scene.place(_box(cell_l, cell_w * count), center, angle)
    if not scene.wants(pad) or not scene.is_free(pad):
        return None
    scene.occupy(pad, SURFACE)
    surround, court = (scene.tone(c, 0.04) for c in scene.pick(TENNIS_COLORS))
    scene.fill(pad, surround, texture=0.03)
    for k in range(count):
        if not scene.wants():
            break
        c = scene.place(np.array([[0, (k - (count - 1) / 2) * cell_w]]), center, angle)[0]
        area = scene.place(_box(23.77, 10.97), c, angle)
        scene.fill(area, court)
        closed = [_box(23.77, 10.97), _box(23.77, 8.23), _box(12.8, 8.23)]
        scene.stroke([scene.place(p, c, angle) for p in closed], WHITE_PAINT, 0.1, closed=True)
        scene.stroke(scene.place(np.array([[-6.4, 0], [6.4, 0]]), c, angle), WHITE_PAINT, 0.1)
        scene.stroke(scene.place(np.array([[0, -6.4], [0, 6.4]]), c, angle), (0.15, 0.15, 0.15), 0.25)
        scene.add_target("tennis_court", area)
    scene.stroke(pad, (0.2, 0.22, 0.2), 0.3, alpha=0.7, closed=True)
    return pad


BASKETBALL_COLORS = ((0.72, 0.45, 0.28), (0.25, 0.40, 0.60), (0.30, 0.50, 0.35), (0.62, 0.25, 0.22), (0.50, 0.50, 0.52))


def basketball_court(scene, center, angle):
    """A 28 x 15 m court with keys, centre circle and three-point arcs on a paved pad; returns the pad or None."""
    pad = scene.place(_box(32, 19), center, angle)
    if not scene.wants(pad) or not scene.is_free(pad):
        return None
    scene.occupy(pad, SURFACE)
    scene.fill(pad, scene.tone(scene.pick(((0.55, 0.54, 0.50), (0.35, 0.35, 0.36), (0.30, 0.48, 0.35)))), texture=0.04)
    area = scene.place(_box(28, 15), center, angle)
    scene.fill(area, scene.tone(scene.pick(BASKETBALL_COLORS)))
    key_color = scene.tone(scene.pick(((0.75, 0.30, 0.20), (0.20, 0.30, 0.55), (0.85, 0.65, 0.30))))
    closed, arcs = [_box(28, 15), _circle(1.8, 20)], [np.array([[0, -7.5], [0, 7.5]])]
    for sx in (-1, 1):
        key = _box(5.8, 4.9, sx * (14 - 2.9))
        scene.fill(scene.place(key, center, angle), key_color)
        closed.append(key)
        start = np.pi / 2 + 0.2 if sx > 0 else -np.pi / 2 + 0.2
        arcs.append(_arc(6.75, start, start + np.pi - 0.4, 16, sx * (14 - 1.575)))
    scene.stroke([scene.place(p, center, angle) for p in closed], WHITE_PAINT, 0.1, closed=True)
    scene.stroke([scene.place(p, center, angle) for p in arcs], WHITE_PAINT, 0.1)
    scene.add_target("basketball_court", area)
    return pad


def baseball_diamond(scene, home, angle, radius=None):
    """A baseball field: a fan-shaped outfield ``radius`` (90-120 m) from home plate, dirt infield arc, grass
    diamond, pitcher's mound, foul lines. ``angle`` points from home plate to centre field. Returns the outline."""
    radius = radius or scene.uniform(90, 120)
    fan = np.concatenate([_arc(6, 3 * np.pi / 4, 5 * np.pi / 4, 6), _arc(radius, -np.pi / 4, np.pi / 4, 24)])
    outline = scene.place(fan, home, angle)
    if not scene.wants(outline) or not scene.is_free(outline):
        return None
    scene.occupy(outline, SURFACE)
    grass = scene.tone(scene.pick(scene.palette.turf), 0.05)
    scene.fill(outline, grass, texture=0.04)
    scene.stripes(outline, 8, angle + np.pi / 4, 0.04)
    dirt = scene.tone((0.68, 0.50, 0.36), 0.05)
    wedge = Polygon(np.concatenate([[[0, 0]], _arc(60, -np.pi / 4, np.pi / 4, 12)]))
    infield = Polygon(_circle(29, 32, 18.44)).intersection(wedge).union(Polygon(_circle(4, 12)))
    for part in _exterior(infield):
        scene.fill(scene.place(part, home, angle), dirt)
    diamond = np.array([[1.5, 0], [19.4, -17.9], [37.3, 0], [19.4, 17.9]])
    scene.fill(scene.place(diamond, home, angle), tuple(c * 1.05 for c in grass))
    scene.fill(scene.place(_circle(2.7, 12, 18.44), home, angle), dirt)
    foul_lines = [np.array([[0, 0], _unit(sign * np.pi / 4) * radius]) for sign in (-1, 1)]
    scene.stroke([scene.place(p, home, angle) for p in foul_lines], WHITE_PAINT, 0.15)
    scene.stroke(scene.place(_arc(radius, -np.pi / 4, np.pi / 4, 24), home, angle), (0.2, 0.22, 0.2), 0.4, alpha=0.8)
    scene.add_target("baseball_diamond", outline)
    return outline


TRACK_COLORS = ((0.62, 0.30, 0.24), (0.55, 0.28, 0.25), (0.30, 0.45, 0.60), (0.35, 0.50, 0.38))


def ground_track_field(scene, center, angle):
    """A 400 m running track (8 lanes; 176.9 x 92.5 m overall) around a football pitch; returns the outline."""
    inner_r, straight, lanes = 36.5, 84.39, 8
    outer_r = inner_r + lanes * 1.22 + 0.5
    outline = scene.place(_stadium(straight, outer_r, 20), center, angle)
    if not scene.wants(outline) or not scene.is_free(outline):
        return None
    scene.occupy(outline, SURFACE)
    scene.fill(outline, scene.tone(scene.pick(TRACK_COLORS, p=(0.4, 0.3, 0.15, 0.15)), 0.05), texture=0.03)
    infield = scene.pick(scene.palette.turf + (ARTIFICIAL_TURF,))
    scene.fill(scene.place(_stadium(straight, inner_r, 20), center, angle), scene.tone(infield, 0.05))
    scene.stripes(scene.place(_box(105, 68), center, angle), 10, angle, 0.05)
    lane_lines = [scene.place(_stadium(straight, inner_r + k * 1.22, 20), center, angle) for k in range(1, lanes + 1)]
    scene.stroke(lane_lines, WHITE_PAINT, 0.08, alpha=0.8, closed=True)
    _pitch_lines(scene, center, angle)
    scene.add_target("ground_track_field", outline)
    return outline


def bridge(scene, start, end, width_m, height_m, water):
    """A road bridge deck from ``start`` to ``end`` (pixels), ``height_m`` above the ``water`` it spans (its shadow
    falls there), with lanes, parapets and traffic. Returns the deck or None."""
    axis = end - start
    angle = math.atan2(axis[1], axis[0])
    length_m = np.linalg.norm(axis) * scene.gsd
    center = (start + end) / 2
    deck = scene.place(_box(length_m, width_m), center, angle)
    if not scene.wants(deck):
        return None
    scene.occlude(deck)
    for part in _exterior(Polygon(deck + scene.shadow_step * height_m).intersection(water)):
        scene.add_shadow(part)
    cv2.fillPoly(scene.raised, [_fixed(deck)], 255, cv2.LINE_AA, 4)
    scene.occupy(deck, SURFACE)
    scene.fill(deck, scene.tone(scene.palette.concrete, 0.05))
    scene.fill(scene.place(_box(length_m, width_m - 3), center, angle), scene.tone(scene.palette.asphalt, 0.05))
    parapets = [np.array([[-length_m / 2, s * (width_m / 2 - 0.3)], [length_m / 2, s * (width_m / 2 - 0.3)]])
                for s in (-1, 1)]
    scene.stroke([scene.place(p, center, angle) for p in parapets], (0.85, 0.85, 0.83), 0.5)
    _dashes(scene, np.array([start, end]), WHITE_PAINT, 0.15, 3, 6)
    scene.add_target("bridge", deck)
    lanes = max(1, int((width_m - 3) // 3.5))
    for k in range(lanes):
        offset = (k + 0.5 - lanes / 2) * 3.5
        lane = scene.place(np.array([[-length_m / 2, offset], [length_m / 2, offset]]), center, angle)
        _cars_along(scene, lane if offset > 0 else lane[::-1], scene.uniform(0.2, 1.0), surface="any")
    return deck


# ----------------------------------------------------------------------------- contexts
def _town(scene, angle, skip=None, cars=0.5):
    """A street grid rotated by ``angle`` (blocks 90-200 x 50-110 m): streets with traffic and blocks of houses.
    Streets and blocks near ``skip`` (a pixel polygon) are left out."""
    street_m = 8.0
    keep_out = Polygon(skip).buffer(scene.m(street_m)) if skip is not None else Polygon()
    streets, blocks = _street_grid(scene, angle, (90, 200), (50, 110))
    for street in streets:
        for piece in _line_parts(street.difference(keep_out)):
            segment = np.asarray(piece.coords)[[0, -1]]
            if _in_frame(scene, segment, scene.m(street_m)):
                _road(scene, segment, 2, cars=cars * scene.uniform(0, 3))
    for block in blocks:
        if not _in_frame(scene, block) or keep_out.intersects(Polygon(block)):
            continue
        inner = _shrink(block, scene.m(street_m / 2 + 1.5))
        if inner is not None:
            scene.fill(inner, scene.tone(scene.pick(scene.palette.grass)), texture=0.1, grain_m=6)
            _houses(scene, inner, cars)


def _street_grid(scene, angle, spacing_along_m, spacing_across_m):
    """A street grid rotated by ``angle`` covering the frame: (streets as shapely lines, blocks as rectangles with
    their corners in order)."""
    u, v = _unit(angle), _unit(angle + np.pi / 2)
    us, vs = _grid_lines(scene, spacing_along_m), _grid_lines(scene, spacing_across_m)
    reach = scene.size * 1.5
    streets = [LineString([scene.center + u * x - v * reach, scene.center + u * x + v * reach]) for x in us] + \
        [LineString([scene.center + v * y - u * reach, scene.center + v * y + u * reach]) for y in vs]
    blocks = [np.array([scene.center + u * x + v * y for x, y in ((x0, y0), (x1, y0), (x1, y1), (x0, y1))])
              for x0, x1 in zip(us[:-1], us[1:]) for y0, y1 in zip(vs[:-1], vs[1:])]
    return streets, blocks


def _grid_lines(scene, spacing_m):
    """Offsets (pixels from the frame centre) of parallel street lines covering the frame."""
    half = scene.size * 0.75 + scene.m(spacing_m[1])
    lines, x = [], -half + scene.m(scene.uniform(0, spacing_m[1]))
    while x < half:
        lines.append(x)
        x += scene.m(scene.uniform(*spacing_m))
    return lines


def _line_parts(geometry):
    """The lines in a shapely geometry."""
    if geometry.is_empty:
        return []
    return [geometry] if isinstance(geometry, LineString) else [g for g in geometry.geoms if isinstance(g, LineString)]


def _houses(scene, block, cars):
    """Houses facing the streets along a block's two long sides, each with a car in front now and then and a garden
    with trees and maybe a pool behind; one block in seven holds a few large flat-roofed buildings instead."""
    if np.linalg.norm(block[1] - block[0]) < np.linalg.norm(block[3] - block[0]):
        block = np.roll(block, -1, axis=0)
    along, inward = block[1] - block[0], block[3] - block[0]
    length, depth = np.linalg.norm(along), np.linalg.norm(inward)
    along, inward = along / length, inward / depth
    angle = math.atan2(along[1], along[0])
    commercial = scene.chance(0.15)
    for origin, side in ((block[0], 1), (block[3], -1)):
        t = scene.m(scene.uniform(0, 8))
        while t < length:
            house_l, house_w = (scene.uniform(25, 50), scene.uniform(15, 25)) if commercial else \
                (scene.uniform(9, 14), scene.uniform(8, 11))
            lot = scene.m(house_l + scene.uniform(25, 40) if commercial else house_l + scene.uniform(5, 10))
            setback = scene.m(scene.uniform(4, 9))
            front = origin + along * (t + lot / 2)
            house = front + inward * side * (setback + scene.m(house_w) / 2)
            if 2 * (setback + scene.m(house_w)) < depth and t + lot <= length and _in_frame(scene, house[None], lot):
                _building(scene, house, angle, house_l, house_w, 8 if commercial else scene.uniform(4, 9),
                          kind="flat" if commercial else None)
                if scene.chance(0.25 * cars + 0.05):
                    spot = front + inward * side * setback / 2 + along * scene.m(scene.uniform(-0.3, 0.3) * house_l)
                    vehicle(scene, spot, angle + side * np.pi / 2 + scene.uniform(-0.1, 0.1))
                back = house + inward * side * scene.m(house_w / 2 + scene.uniform(5, 10))
                if scene.chance(0.12):
                    _pool(scene, back, angle)
                for _ in range(int(scene.rng.integers(0, 3))):
                    _tree(scene, back + scene.rng.normal(0, scene.m(4), 2))
            t += lot


def _airport(scene):
    """Runway, parallel taxiway and links, an apron with airliners parked nose-in at the terminal with jet bridges,
    planes taxiing, service cars, sometimes a fuel farm."""
    _grass(scene)
    angle = scene.uniform(0, 2 * np.pi)
    u, n = _unit(angle), _unit(angle + np.pi / 2)  # along the terminal; towards it
    row = scene.center + n * scene.m(scene.uniform(-0.3, 0.3) * scene.extent)
    front = row + n * scene.m(75 / 2 + 8)  # the terminal's front; the longest airliner fits before it
    apron_depth = 120.0
    big = scene.size * 2
    apron = np.array([front - u * big, front + u * big, front + u * big - n * scene.m(apron_depth),
                      front - u * big - n * scene.m(apron_depth)])
    concrete = scene.tone(scene.palette.concrete, 0.05)
    scene.fill(apron, concrete, texture=0.05, grain_m=15)
    _slab_joints(scene, apron, angle, concrete)
    taxiway = front - n * scene.m(apron_depth + 18)
    _paved_strip(scene, taxiway, angle, 23, scene.tone(scene.palette.asphalt), YELLOW_PAINT)
    runway = taxiway - n * scene.m(scene.uniform(150, 200))
    _runway(scene, runway, angle)
    spacing = scene.uniform(350, 600)
    for x in (np.arange(-3, 4) + scene.uniform(0, 1)) * scene.m(spacing):
        link = np.array([runway + u * x, taxiway + u * x])
        if _in_frame(scene, link, scene.m(20)):
            scene.fill(_segment_box(scene, link, 23), scene.tone(scene.palette.asphalt))
            scene.stroke(link, YELLOW_PAINT, 0.3)
    depth = scene.uniform(30, 60)
    terminal = np.array([front - u * big, front + u * big, front + u * big + n * scene.m(depth),
                         front - u * big + n * scene.m(depth)])
    scene.solid(terminal, scene.uniform(10, 18))
    _roof(scene, terminal, scene.tone(scene.pick(((0.75, 0.76, 0.77), (0.55, 0.56, 0.58), (0.82, 0.82, 0.8)))), "flat")
    _landside(scene, front + n * scene.m(depth), angle)
    _parked_airliners(scene, front, angle)
    for line, p in ((taxiway, 0.35), (runway, 0.15)):
        if scene.chance(p):
            spot = line + u * scene.m(scene.uniform(-0.4, 0.4) * scene.extent)
            airplane(scene, spot, angle + scene.pick((0, np.pi)))
    for _ in range(int(scene.rng.integers(0, 5))):
        spot = front - n * scene.m(scene.uniform(5, apron_depth - 5))
        vehicle(scene, spot + u * scene.m(scene.uniform(-0.5, 0.5) * scene.extent), scene.uniform(0, 2 * np.pi))
    if scene.chance(0.3):
        fuel_farm = front + n * scene.m(depth + 60) + u * scene.m(scene.uniform(-100, 100))
        _tank_group(scene, fuel_farm, angle, max_count=4)


def _landside(scene, back, angle):
    """Behind a terminal whose back wall runs along ``back``: the access road and often a car park."""
    u, n = _unit(angle), _unit(angle + np.pi / 2)
    road = back + n * scene.m(scene.uniform(15, 30))
    _road(scene, _long_line(scene, road, angle), 4, cars=scene.uniform(0.5, 2))
    if scene.chance(0.6):
        spot = road + n * scene.m(scene.uniform(45, 90)) + u * scene.m(scene.uniform(-0.5, 0.5) * scene.extent)
        _parking_lot(scene, spot, angle, int(scene.rng.integers(2, 5)), int(scene.rng.integers(10, 30)),
                     scene.uniform(0.3, 0.8))


def _segment_box(scene, segment, width_m):
    """The rectangle ``width_m`` wide around a pixel segment."""
    a, b = segment
    axis = b - a
    return scene.place(_box(np.linalg.norm(axis) * scene.gsd, width_m), (a + b) / 2, math.atan2(axis[1], axis[0]))


def _paved_strip(scene, center, angle, width_m, color, line_color):
    """A paved strip across the frame (a taxiway) with a centreline."""
    line = _long_line(scene, center, angle)
    scene.fill(_segment_box(scene, line, width_m), color, texture=0.05, grain_m=8)
    scene.stroke(line, line_color, 0.3)


def _slab_joints(scene, area, angle, color):
    """The joints between the concrete slabs of an apron: a faint grid every 5-7.5 m."""
    step = scene.m(scene.uniform(5, 7.5))
    if step < 4:
        return
    u, n = _unit(angle), _unit(angle + np.pi / 2)
    center, big = area.mean(0), scene.size * 1.5
    lines = []
    for k in np.arange(-big, big, step):
        lines += [np.array([center + u * k - n * big, center + u * k + n * big]),
                  np.array([center + n * k - u * big, center + n * k + u * big])]
    grid = np.zeros((scene.size, scene.size), np.uint8)
    cv2.polylines(grid, [_fixed(p) for p in lines], False, 255, 1, cv2.LINE_AA, 4)
    inside = np.zeros_like(grid)
    cv2.fillPoly(inside, [_fixed(area)], 1, cv2.LINE_8, 4)
    scene._blend((0, 0, scene.size, scene.size), grid * inside, np.asarray(color, np.float32) * 255 * 0.8, 0.6)


def _runway(scene, center, angle):
    """A 45-60 m runway across the frame: edge stripes, dashed centreline, darker rubber deposits in the middle."""
    width = scene.uniform(45, 60)
    color = scene.tone(scene.pick((scene.palette.asphalt, scene.palette.concrete)), 0.04)
    line = _long_line(scene, center, angle)
    scene.fill(_segment_box(scene, line, width), color, texture=0.06, grain_m=10)
    scene.fill(_segment_box(scene, line, width * 0.3), tuple(c * 0.7 for c in color), alpha=0.3, texture=0.3,
               grain_m=20)
    n = _unit(angle + np.pi / 2)
    scene.stroke([line + n * side * scene.m(width / 2 - 1.5) for side in (-1, 1)], WHITE_PAINT, 0.9)
    _dashes(scene, line, WHITE_PAINT, 0.9, 30, 20)


def _parked_airliners(scene, front, angle):
    """Airliners parked nose-in along the terminal's ``front``, each on a yellow stand line with a jet bridge."""
    u, n = _unit(angle), _unit(angle + np.pi / 2)
    half = scene.extent * 0.75
    s = -half + scene.uniform(0, 40)
    while s < half:
        span = scene.uniform(20, 70)
        length = span * scene.uniform(0.9, 1.1)
        stand = front + u * scene.m(s + span / 2)
        scene.stroke(np.array([stand, stand - n * scene.m(length + 25)]), YELLOW_PAINT, 0.3, alpha=0.9)
        if scene.chance(0.85) and airplane(scene, stand - n * scene.m(length / 2 + 6), angle + np.pi / 2, span):
            door = stand - n * scene.m(6 + length * 0.12) - u * scene.m(5)
            jet_bridge = _segment_box(scene, np.array([stand + n * scene.m(1), door]), 3.5)
            scene.solid(jet_bridge, 5, occupy=0)
            scene.fill(jet_bridge, (0.7, 0.7, 0.72))
        s += span + scene.uniform(8, 20)


def _tank_group(scene, center, angle, room_m=(400.0, 300.0), max_count=16, focus=None):
    """Tanks of one diameter on a grid inside an earthen bund, with pipes, fitted into ``room_m`` (metres along and
    across ``angle``) around ``center`` and moved within that room as close to ``focus`` (pixels) as it allows;
    returns how many were drawn, or None if the place is taken."""
    largest = min(60.0, min(room_m) / 2.4)
    if largest < 10:
        return None
    diameter = scene.uniform(10, largest) if scene.chance(0.7) else scene.uniform(10, min(25.0, largest))
    gap = diameter * scene.uniform(0.3, 0.7)
    pitch = diameter + gap
    nx = int(scene.rng.integers(1, min(6, int((room_m[0] - gap) // pitch)) + 1))
    ny = int(scene.rng.integers(1, min(4, int((room_m[1] - gap) // pitch)) + 1))
    while nx * ny > max_count:
        nx, ny = (nx - 1, ny) if nx >= ny else (nx, ny - 1)
    size = np.array([nx * pitch + gap, ny * pitch + gap])
    if focus is not None:
        slack = np.maximum(np.array(room_m) - size, 0) / 2
        wanted = (np.asarray(focus) - center) @ _rot(angle) * scene.gsd  # the focus in the room's frame, metres
        center = scene.place(np.clip(wanted, -slack, slack)[None], center, angle)[0]
    bund = scene.place(_box(*size), center, angle)
    if not scene.wants() or not scene.is_free(bund):  # each tank is checked for visibility itself
        return None
    scene.fill(bund, scene.tone(scene.pick(scene.palette.soil + scene.palette.grass[:1])), texture=0.1, grain_m=8)
    scene.stroke(bund, scene.tone(scene.pick(scene.palette.grass)), 3.0, closed=True)
    drawn = 0
    for i in range(nx):
        for j in range(ny):
            local = np.array([(i - (nx - 1) / 2) * pitch, (j - (ny - 1) / 2) * pitch])
            pipe = np.array([local, [local[0], (ny * pitch + gap) / 2]])
            scene.stroke(scene.place(pipe, center, angle), (0.6, 0.6, 0.6), 0.6)
            drawn += storage_tank(scene, scene.place(local[None], center, angle)[0], diameter * scene.uniform(0.97, 1))
    scene.occupy(bund, SOLID)
    return drawn


def _tank_farm(scene):
    """An industrial tank farm on a grid of plant roads: most blocks hold a bunded group of tanks, the others sheds
    or a car park; a few trees."""
    _yard(scene)
    angle = scene.uniform(0, np.pi)
    streets, blocks = _street_grid(scene, angle, (110, 260), (90, 200))
    for street in streets:
        segment = np.asarray(street.coords)
        if _in_frame(scene, segment, scene.m(10)):
            _road(scene, segment, 2, cars=scene.uniform(0, 0.5))
    sheds = ((0.7, 0.7, 0.72), (0.5, 0.52, 0.55), (0.35, 0.45, 0.6))
    for block in blocks:
        inner = _shrink(block, scene.m(10))
        if inner is None or not _in_frame(scene, inner):
            continue
        middle = inner.mean(0)
        room = (np.linalg.norm(inner[1] - inner[0]) * scene.gsd, np.linalg.norm(inner[3] - inner[0]) * scene.gsd)
        central = cv2.pointPolygonTest(inner.astype(np.float32), tuple(scene.center), False) >= 0
        use = scene.pick(("tanks", "sheds", "car park"), p=(0.7, 0.2, 0.1))
        if use == "tanks" or central:  # the block under the frame's centre always holds tanks, as near as can be
            _tank_group(scene, middle, angle, room, focus=scene.center if central else None)
        elif use == "sheds":
            along, across = inner[1] - inner[0], inner[3] - inner[0]
            for _ in range(int(scene.rng.integers(1, 4))):
                spot = middle + along * scene.uniform(-0.3, 0.3) + across * scene.uniform(-0.3, 0.3)
                length, width = scene.uniform(20, 0.6 * room[0] + 20), scene.uniform(12, 0.5 * room[1] + 12)
                _building(scene, spot, angle, length, width, scene.uniform(6, 15), kind="flat",
                          color=scene.tone(scene.pick(sheds)))
        else:
            _parking_lot(scene, middle, angle, int(min(3, room[1] // 25)) or 1, int(min(30, (room[0] - 15) // 2.6)),
                         scene.uniform(0.2, 0.8))
    _scatter_trees(scene, int(scene.rng.integers(0, 25)))


def _harbor(scene):
    """A port (three times in four): a straight quay with piers, ships moored along them, ships at anchor or under
    way, sheds, container stacks and a road ashore. Otherwise a natural coast with a beach and ships offshore."""
    normal = scene.uniform(0, 2 * np.pi)
    u, n = _unit(normal - np.pi / 2), _unit(normal)  # along the shore; out to sea
    shore = scene.center + n * scene.m(scene.uniform(-0.35, 0.1) * scene.extent)
    port = scene.chance(0.75)
    sea = _sea_polygon(scene, shore, normal, wavy=not port)
    scene.add_water(sea)
    if port:
        _yard(scene)
    else:
        _fields(scene)
    _water(scene, sea, scene.palette.water, bank=None if port else scene.palette.shore)
    if port:
        scene.stroke(_long_line(scene, shore, normal - np.pi / 2), (0.8, 0.8, 0.78), 1.0)
        _quay_side(scene, shore, normal)
        s = scene.uniform(-0.5, -0.1) * scene.extent
        for _ in range(int(scene.rng.integers(2, 5))):
            length = min(scene.uniform(80, 300), max(40, scene.extent * scene.uniform(0.5, 1.3)))
            width = scene.uniform(12, 35)
            quay = shore + u * scene.m(s)
            if harbor(scene, quay, normal, length, width) is not None:
                _moored_ships(scene, quay, normal, length, width)
            s += scene.uniform(80, 220)
    for _ in range(int(scene.rng.integers(2, 7))):
        spot = shore + n * scene.m(scene.uniform(0.1, 0.8) * max(scene.extent, 50)) + \
            u * scene.m(scene.uniform(-0.6, 0.6) * scene.extent)
        length = scene.uniform(20, min(200, max(30, scene.extent * 1.2)))
        ship(scene, spot, scene.uniform(0, 2 * np.pi), length, moving=scene.chance(0.6))
    if not port:
        inland = shore - n * scene.m(scene.extent * 0.5)
        _scatter_trees(scene, int(scene.rng.integers(0, 30)), inland, scene.extent * 0.3)


def _quay_side(scene, shore, normal):
    """What stands ashore in a port: a road along the quay, sheds, container stacks, sometimes a few tanks."""
    u, n = _unit(normal - np.pi / 2), _unit(normal)
    along = normal - np.pi / 2
    _road(scene, _long_line(scene, shore - n * scene.m(scene.uniform(25, 45)), along), 2, cars=scene.uniform(0, 2))
    sheds = ((0.7, 0.7, 0.72), (0.45, 0.5, 0.58), (0.6, 0.35, 0.3))
    for _ in range(int(scene.rng.integers(3, 10))):
        spot = shore - n * scene.m(scene.uniform(70, 400)) + u * scene.m(scene.uniform(-0.6, 0.6) * scene.extent)
        if scene.chance(0.5):
            _building(scene, spot, along, scene.uniform(40, 120), scene.uniform(20, 50), scene.uniform(8, 15),
                      kind="flat", color=scene.tone(scene.pick(sheds)))
        else:
            _container_stack(scene, spot, along)
    if scene.chance(0.3):
        _tank_group(scene, shore - n * scene.m(scene.uniform(150, 300)), along, max_count=6)


def _container_stack(scene, center, angle):
    """A block of shipping containers in a port yard."""
    rows, cols = int(scene.rng.integers(3, 8)), int(scene.rng.integers(2, 6))
    area = scene.place(_box(cols * 12.5, rows * 2.6), center, angle)
    if not scene.is_free(area):
        return
    scene.solid(area, 5)
    for i in range(cols):
        for j in range(rows):
            container = _box(12.0, 2.4, (i - (cols - 1) / 2) * 12.5, (j - (rows - 1) / 2) * 2.6)
            scene.fill(scene.place(container, center, angle), scene.tone(scene.pick(CONTAINER_COLORS)))


def _moored_ships(scene, quay, normal, pier_length, pier_width):
    """Ships alongside a pier (pier frame: x out to sea), bow out or in."""
    for side in (-1, 1):
        if scene.chance(0.8):
            length = min(scene.uniform(30, 200), pier_length * 0.95)
            beam = length / 6.5 if length > 40 else length / 3.8
            along = scene.uniform(length / 2 + 5, max(length / 2 + 5, pier_length - length / 2))
            local = np.array([[along, side * (pier_width / 2 + beam / 2 + scene.uniform(1.5, 3))]])
            ship(scene, scene.place(local, quay, normal)[0], normal + scene.pick((0, np.pi)), length)


def _sports(scene):
    """A suburb around a sports campus: rows of tennis courts, basketball courts, baseball diamonds (alone or 2-4
    in a cloverleaf), a 400 m track, a football pitch, a school, a car park, paths and trees."""
    angle = scene.uniform(0, np.pi)
    _grass(scene, stripes=False)
    size_l, size_w = scene.uniform(220, 420), scene.uniform(160, 320)
    middle = scene.center + scene.rng.uniform(-0.25, 0.25, 2) * scene.size
    campus = scene.place(_box(size_l, size_w), middle, angle)
    _town(scene, angle, skip=campus, cars=scene.uniform(0.1, 0.8))
    scene.fill(campus, scene.tone(scene.pick(scene.palette.grass)), texture=0.08, grain_m=10)
    _campus_paths(scene, campus)
    if scene.chance(0.55):
        _cloverleaf(scene, middle + scene.rng.uniform(-0.2, 0.2, 2) * scene.size, angle)
    for name, p in (("track", 0.6), ("baseball", 0.5), ("tennis", 0.85), ("basketball", 0.6), ("tennis", 0.25),
                    ("baseball", 0.3), ("basketball", 0.35)):
        if scene.chance(p):
            _place_facility(scene, name, campus, angle)
    if scene.chance(0.3):
        _soccer_pitch(scene, middle + scene.rng.uniform(-1, 1, 2) * scene.m(80), angle)
    if scene.chance(0.4):
        _parking_lot(scene, middle + scene.rng.uniform(-1, 1, 2) * scene.m(100), angle, int(scene.rng.integers(1, 3)),
                     int(scene.rng.integers(5, 16)), scene.uniform(0.2, 0.8))
    _building(scene, middle + scene.rng.uniform(-1, 1, 2) * scene.m(100), angle, scene.uniform(40, 90),
              scene.uniform(20, 40), 10, kind="flat")
    _scatter_trees(scene, int(scene.rng.integers(10, 60)), middle, max(size_l, size_w) / 2)


def _cloverleaf(scene, center, angle):
    """Two to four baseball diamonds with their home plates together, facing out in four directions."""
    for k in range(int(scene.rng.integers(2, 5))):
        direction = angle + np.pi / 4 + k * np.pi / 2
        home = center + _unit(direction) * scene.m(15)
        baseball_diamond(scene, home, direction, scene.uniform(80, 110))


def _campus_paths(scene, campus):
    """Footpaths across the campus lawn."""
    color = scene.tone(scene.palette.pavement)
    for _ in range(int(scene.rng.integers(1, 4))):
        a, b = campus[int(scene.rng.integers(4))], campus[int(scene.rng.integers(4))]
        middle = (a + b) / 2 + scene.rng.normal(0, scene.m(30), 2)
        scene.stroke(np.array([a, middle, b]), color, 2.5, alpha=0.8)


def _place_facility(scene, name, campus, angle):
    """Try places in the campus (and the frame) for one facility, aligned with the street grid or turned by 90
    degrees; sometimes trees grow along one of its edges."""
    contour = campus.astype(np.float32)
    for _ in range(20):
        spot = scene.random_point(-0.1 * scene.size)
        if cv2.pointPolygonTest(contour, (float(spot[0]), float(spot[1])), False) <= 0:
            continue
        turn = angle + scene.pick((0, np.pi / 2)) + scene.uniform(-0.03, 0.03)
        if name == "tennis":
            drawn = tennis_courts(scene, spot, turn, int(scene.pick((1, 1, 2, 2, 2, 3, 3, 4, 5, 6))))
        elif name == "basketball":
            drawn = basketball_court(scene, spot, turn)
        elif name == "baseball":
            drawn = baseball_diamond(scene, spot, turn + scene.pick((0, np.pi)))
        else:
            drawn = ground_track_field(scene, spot, turn)
        if drawn is not None:
            _edge_trees(scene, drawn)
            return


def _edge_trees(scene, outline):
    """Sometimes a few trees along one edge of a facility; their crowns may overhang it (partial occlusion)."""
    if not scene.chance(0.4):
        return
    k = int(scene.rng.integers(len(outline)))
    a, b = outline[k], outline[(k + 1) % len(outline)]
    edge = (b - a) / (np.linalg.norm(b - a) + 1e-9)
    outward = np.array([edge[1], -edge[0]])
    if outward @ ((a + b) / 2 - outline.mean(0)) < 0:
        outward = -outward
    for t in np.linspace(0.1, 0.9, int(scene.rng.integers(2, 6))):
        radius = scene.uniform(3, 6)
        _tree(scene, a + (b - a) * t + outward * scene.m(radius * scene.uniform(0.45, 0.9)), radius)


def _commercial(scene):
    """A commercial district: an arterial road and a side road with traffic, parking lots, big flat-roofed stores,
    a few houses and landscaping trees."""
    angle = scene.uniform(0, np.pi)
    _ground(scene, scene.palette.pavement, texture=0.1, grain_m=10)
    u, n = _unit(angle), _unit(angle + np.pi / 2)
    main = scene.center + n * scene.m(scene.uniform(-0.3, 0.3) * scene.extent)
    _road(scene, _long_line(scene, main, angle), 4, cars=scene.uniform(0.5, 4), center_color=YELLOW_PAINT)
    side = scene.center + u * scene.m(scene.uniform(-0.3, 0.3) * scene.extent)
    _road(scene, _long_line(scene, side, angle + np.pi / 2), 2, cars=scene.uniform(0, 4))
    _several(int(scene.rng.integers(1, 3)), lambda: _parking_lot(
        scene, scene.random_point(), angle + scene.pick((0, np.pi / 2)), int(scene.rng.integers(1, 4)),
        int(scene.rng.integers(6, 24)), scene.uniform(0.2, 0.8)))
    _several(int(scene.rng.integers(2, 7)), lambda: _building(
        scene, scene.random_point(), angle, scene.uniform(30, 120), scene.uniform(20, 70), scene.uniform(6, 20),
        kind="flat"))
    _several(int(scene.rng.integers(0, 4)), lambda: _building(
        scene, scene.random_point(), angle, scene.uniform(10, 16), scene.uniform(8, 12), 6))
    _several(int(scene.rng.integers(0, 3)), lambda: _pool(scene, scene.random_point(), angle))
    _scatter_trees(scene, int(scene.rng.integers(10, 60)))


def _several(count, make, tries=3):
    """Call ``make()`` until it has returned something ``count`` times, or ``tries`` times as many calls were made."""
    done = 0
    for _ in range(count * tries):
        if done >= count:
            break
        done += make() is not None
    return done


def _river(scene):
    """A river between fields or a town with barges and boats, crossed by a road bridge (sometimes two) that may
    pass over a boat."""
    angle = scene.uniform(0, np.pi)
    width = min(scene.uniform(40, 220), scene.extent * 0.55)
    point = scene.center + scene.rng.uniform(-0.15, 0.15, 2) * scene.size
    water, middle = _river_polygon(scene, point, angle, width)
    scene.add_water(water)
    if scene.chance(0.5):
        _fields(scene)
    else:
        _town(scene, angle + scene.uniform(-0.3, 0.3), cars=0.15)
    _water(scene, water, scene.palette.river, bank=scene.pick(scene.palette.grass + scene.palette.soil))
    u = _unit(angle)
    for _ in range(int(scene.rng.integers(0, 4))):
        spot, direction = _along(middle, point + u * scene.uniform(-0.5, 0.5) * scene.size)
        spot = spot + _unit(direction + np.pi / 2) * scene.m(scene.uniform(-0.25, 0.25) * width)
        ship(scene, spot, direction + scene.pick((0, np.pi)), scene.uniform(20, max(25, min(110, width * 2))),
             scene.chance(0.5))
    crossings = [0.0] + ([scene.m(scene.uniform(120, 400)) * scene.pick((-1, 1))] if scene.chance(0.3) else [])
    for position in crossings:
        at, direction = _along(middle, point + u * position)
        _river_crossing(scene, water, at, direction + np.pi / 2 + scene.uniform(-0.15, 0.15), width)
    _scatter_trees(scene, int(scene.rng.integers(5, 40)))


def _river_crossing(scene, water, at, road_angle, river_width):
    """A road across the river at ``at``: a bridge deck over the water and the road on both banks."""
    u = _unit(road_angle)
    far = scene.size * 2
    wet = LineString([at - u * far, at + u * far]).intersection(water)
    pieces = [piece for piece in _line_parts(wet) if piece.distance(Point(at)) < 1]
    if not pieces:
        return
    ends = np.asarray(pieces[0].coords)[[0, -1]]
    direction = (ends[1] - ends[0]) / (np.linalg.norm(ends[1] - ends[0]) + 1e-9)
    approach = scene.m(scene.uniform(10, 30))
    start, end = ends[0] - direction * approach, ends[1] + direction * approach
    lanes = int(scene.pick((2, 2, 4)))
    if not scene.wants(_segment_box(scene, np.array([start, end]), lanes * 3.5 + 3)):
        return  # no bridge here: no road to it either
    for segment in (np.array([start - direction * far, start]), np.array([end, end + direction * far])):
        _road(scene, segment, lanes, cars=scene.uniform(0, 0.6))
    bridge(scene, start, end, lanes * 3.5 + 3, scene.uniform(8, 25), water)


def _farmland(scene):
    """Fields, country roads, woods, a farmstead, sometimes greenhouses or solar panels (no target class)."""
    _fields(scene)
    for _ in range(int(scene.rng.integers(0, 3))):
        _road(scene, np.array([scene.random_point(scene.size), scene.random_point(scene.size)]), 2)
    for _ in range(int(scene.rng.integers(0, 3))):
        wood = scene.place(_box(scene.uniform(80, 300), scene.uniform(60, 200)), scene.random_point(),
                           scene.uniform(0, np.pi))
        if scene.is_free(wood):
            _forest(scene, wood)
            scene.occupy(wood, SOLID)
    if scene.chance(0.6):
        farm, farm_angle = scene.random_point(), scene.uniform(0, np.pi)
        for _ in range(int(scene.rng.integers(2, 6))):
            _building(scene, farm + scene.rng.normal(0, scene.m(25), 2), farm_angle, scene.uniform(12, 40),
                      scene.uniform(8, 20), scene.uniform(5, 10))
        _scatter_trees(scene, 15, farm, 30)
    if scene.chance(0.25):
        _greenhouses(scene, scene.random_point(), scene.uniform(0, np.pi), int(scene.rng.integers(3, 10)))


CONTEXTS = {"airport": _airport, "harbor": _harbor, "sports": _sports, "tank_farm": _tank_farm,
            "commercial": _commercial, "river": _river, "farmland": _farmland}
# How often each context is drawn for an image with objects, chosen so that the class counts come out roughly in
# NWPU VHR-10's proportions (airplanes and storage tanks most common, bridges rarest); and for background images.
CONTEXT_WEIGHTS = {"airport": 0.25, "harbor": 0.16, "sports": 0.34, "tank_farm": 0.07, "commercial": 0.04,
                   "river": 0.14, "farmland": 0.0}
BACKGROUND_WEIGHTS = {"airport": 0.1, "harbor": 0.15, "sports": 0.15, "tank_farm": 0.05, "commercial": 0.15,
                      "river": 0.1, "farmland": 0.3}


def _choose_context(rng, gsd, background_only):
    """Draw the context of an image (weights adjusted to the ground sampling distance)."""
    weights = dict(BACKGROUND_WEIGHTS if background_only else CONTEXT_WEIGHTS)
    if not background_only and gsd > 0.8:  # cars are specks: streets and parking lots hold nothing to find
        weights["commercial"] *= 0.1
    elif not background_only and gsd < 0.6:  # a small frame: few big objects, many cars; rebalance
        weights.update(commercial=weights["commercial"] * 0.25, airport=weights["airport"] * 1.5,
                       harbor=weights["harbor"] * 1.3, tank_farm=weights["tank_farm"] * 1.8)
    names = list(weights)
    p = np.array([weights[name] for name in names])
    return names[int(rng.choice(len(names), p=p / p.sum()))]


def render_aerial_scene(rng, size, style, gsd, num_objects=None, background_only=False, context=None, reserve=None,
                        extra=None):
    """Draw one aerial image; return ``(rgb_uint8_image, [(class_name, coco_annotation), ...])``.

    ``rng``: a ``numpy`` Generator, the only source of randomness. ``size``: pixels (square). ``style``: a
    :class:`Style` or a name in :data:`STYLES`. ``gsd``: metres per pixel. ``num_objects``: at most this many target
    objects are drawn (None: as many as the context holds). ``background_only``: none at all. ``context``: a key of
    :data:`CONTEXTS` (None: drawn, weighted by :data:`CONTEXT_WEIGHTS` or, for backgrounds, :data:`BACKGROUND_WEIGHTS`).
    ``reserve`` and ``extra``: called with the :class:`Scene` before the context is drawn (to keep places free in
    its ``occupied`` raster) and once it is drawn, before the imaging (to draw more on the ground); :mod:`.geoscene`
    keeps and then draws the roads that images of a mosaic share this way.
    """
    style = STYLES[style] if isinstance(style, str) else style
    context = context or _choose_context(rng, gsd, background_only)
    scene = Scene(rng, int(size), style, float(gsd), 0 if background_only else num_objects)
    if reserve is not None:
        reserve(scene)
    CONTEXTS[context](scene)
    if extra is not None:
        extra(scene)
    return scene.finish()
