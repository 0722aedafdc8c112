"""Seeded generator of a synthetic remote-sensing instance-segmentation dataset (the embedded default).

No dataset can be downloaded here, so the library draws one: top-down scenes of land, coast or river
with the 10 NWPU VHR-10 classes (cross-shaped airplanes, round storage tanks, small vehicles, courts
with lines, stadium-shaped track fields, elongated ships, piers, bridges over rivers), rotated,
with shadows, in roughly the real class imbalance, plus some background-only images. The layout is
the tutorial's ``intseg_remote_sense_coco``::

    DIR/images/00000.jpg ...
    DIR/annotations/instance_train.json   (COCO, polygon segmentation)
    DIR/annotations/instance_val.json

Every image draws from its own ``numpy`` generator seeded with ``(seed, index)``, so the same
parameters give byte-identical files, and image *i* does not depend on how many images there are.

The presets ``ci`` and ``full`` draw this module's clip-art scenes. The presets ``pretrain``,
``reader`` and ``reader-ci`` draw realistic aerial scenes (:mod:`.scenes`) in a style family, at a
ground sampling distance drawn per image: their generators are seeded with ``(seed, namespace,
index)``, the namespace fixed per style family so that the pretraining corpus and the reader's
dataset never share an image, and a val image *j* uses index ``VAL_INDEX_OFFSET + j``, so that
``reader-ci`` is the first train and the first val images of ``reader``. Their COCO ``images``
entries also carry each image's ``gsd`` (metres per pixel) and ``style``.
"""
import json
import math
import shutil
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np
from shapely import affinity
from shapely.geometry import Point, Polygon, box
from shapely.ops import unary_union
from tqdm.auto import tqdm

from ..errors import UserError
from . import scenes
from .categories import NWPU_CLASSES, NWPU_INSTANCE_COUNTS, coco_categories
from .coco import outline_annotation, polygon_parts

PRESETS = {
    "ci": {"num_train": 64, "num_val": 16, "image_size": 256},
    "full": {"num_train": 480, "num_val": 120, "image_size": 512},
    "pretrain": {"num_train": 4000, "num_val": 256, "image_size": 256},
    "reader": {"num_train": 160, "num_val": 64, "image_size": 256},
    "reader-ci": {"num_train": 32, "num_val": 16, "image_size": 256},
}
# The presets drawn by the aerial renderer (.scenes): style family, ground sampling distance range (metres per pixel,
# drawn uniformly per image; the reader's keeps cars at least 8 px long) and default share of background-only images.
AERIAL_PRESETS = {
    "pretrain": {"style_family": "pretrain", "gsd_range": [0.3, 2.0], "background_fraction": 0.05},
    "reader": {"style_family": "reader", "gsd_range": [0.3, 0.5], "background_fraction": 0.05},
    "reader-ci": {"style_family": "reader", "gsd_range": [0.3, 0.5], "background_fraction": 0.05},
}
AERIAL_NAMESPACES = {"pretrain": 1001, "reader": 2002}  # per style family: disjoint image generators
VAL_INDEX_OFFSET = 1_000_000  # aerial presets: val image j is drawn with generator index VAL_INDEX_OFFSET + j
DEFAULT_BACKGROUND_FRACTION = 0.1  # of the clip-art presets
GENERATOR_VERSION = 1
WATER_CLASSES = ("ship",)
SHORE_CLASSES = ("harbor",)
RIVER_CLASSES = ("bridge",)


@dataclass
class Part:
    """One coloured piece of an object in its local frame (centred, unrotated, x along the length)."""

    geometry: object  # shapely geometry (Polygon or LineString)
    color: tuple
    thickness: int = 0  # 0: filled polygon, > 0: line width in pixels


@dataclass
class Design:
    outline: Polygon  # the instance mask, local frame
    parts: list = field(default_factory=list)  # drawn over the outline's fill


# ----------------------------------------------------------------------------- textures and scenes
def _noise(rng, height, width, scales=(3, 12, 48), weights=(0.25, 0.5, 1.0)):
    """Smooth multi-scale noise in about [-1, 1], from upsampled random grids (cheap and seedable)."""
    out = np.zeros((height, width), np.float32)
    for scale, weight in zip(scales, weights):
        grid = rng.standard_normal((height // scale + 2, width // scale + 2)).astype(np.float32)
        out += weight * cv2.resize(grid, (width, height), interpolation=cv2.INTER_CUBIC)
    return out / sum(weights)


def _textured(rng, shape, base, amplitude):
    h, w = shape
    noise = _noise(rng, h, w)
    img = np.asarray(base, np.float32)[None, None, :] + amplitude * noise[..., None]
    img += rng.normal(0, 3.0, (h, w, 3)).astype(np.float32)  # sensor grain
    return img


def _land(rng, size):
    palettes = [(92, 118, 64), (128, 120, 86), (110, 108, 102), (78, 100, 58)]  # grass, soil, urban, forest
    img = _textured(rng, (size, size), palettes[rng.integers(len(palettes))], 18.0)
    for _ in range(rng.integers(0, 5)):  # farm fields / lots
        x0, y0 = rng.integers(0, size, 2)
        w, h = rng.integers(size // 8, size // 3, 2)
        tint = rng.normal(0, 14, 3).astype(np.float32)
        img[y0:y0 + h, x0:x0 + w] += tint
    for _ in range(rng.integers(0, 3)):  # roads
        p0 = tuple(int(v) for v in rng.integers(0, size, 2))
        p1 = tuple(int(v) for v in rng.integers(0, size, 2))
        cv2.line(img, p0, p1, (150, 148, 142), int(max(2, size // 64)), cv2.LINE_AA)
    return img


def _water(rng, size):
    return _textured(rng, (size, size), (38, 72, 88), 6.0)


def _wavy_band(rng, size, center, angle, half_width):
    """A river: a band along ``angle`` through ``center`` with wavy banks, as a shapely Polygon."""
    length = size * 1.6
    ts = np.linspace(-length / 2, length / 2, 40)
    phase, amp = rng.uniform(0, 2 * np.pi), half_width * 0.25
    wave = amp * np.sin(ts / size * 6 + phase)
    ux, uy = math.cos(angle), math.sin(angle)
    nx, ny = -uy, ux
    left = [(center[0] + t * ux + (half_width + d) * nx, center[1] + t * uy + (half_width + d) * ny)
            for t, d in zip(ts, wave)]
    right = [(center[0] + t * ux - (half_width - d) * nx, center[1] + t * uy - (half_width - d) * ny)
             for t, d in zip(ts[::-1], wave[::-1])]
    return Polygon(left + right).buffer(0)


def _coast(rng, size):
    """Water on one side of a wavy shoreline."""
    side = rng.integers(4)
    xs = np.linspace(-size * 0.1, size * 1.1, 30)
    level = rng.uniform(0.35, 0.6) * size
    ys = level + size * 0.06 * np.sin(xs / size * rng.uniform(4, 9) + rng.uniform(0, 6.3))
    pts = list(zip(xs, ys)) + [(size * 1.1, size * 1.2), (-size * 0.1, size * 1.2)]
    water = Polygon(pts).buffer(0)
    return affinity.rotate(water, 90 * side, origin=(size / 2, size / 2))


@dataclass
class Scene:
    kind: str  # "land", "coast" or "river"
    image: np.ndarray  # float32 RGB
    water: object  # shapely geometry (may be empty)
    river_axis: tuple = None  # (center, angle) for rivers


def _make_scene(rng, size, kind):
    land = _land(rng, size)
    if kind == "land":
        return Scene(kind, land, Polygon())
    if kind == "coast":
        water = _coast(rng, size)
        axis = None
    else:
        center = tuple(rng.uniform(0.35, 0.65, 2) * size)
        angle = rng.uniform(0, np.pi)
        water = _wavy_band(rng, size, center, angle, rng.uniform(0.07, 0.11) * size)
        axis = (center, angle)
    mask = np.zeros((size, size), np.uint8)
    _fill(mask, water, 1)
    mask = cv2.GaussianBlur(mask.astype(np.float32), (0, 0), 1.2)[..., None]
    image = land * (1 - mask) + _water(rng, size) * mask
    return Scene(kind, image, water.intersection(box(0, 0, size, size)), axis)


# ----------------------------------------------------------------------------- object designs
def _rect(length, width, cx=0.0, cy=0.0):
    return box(cx - length / 2, cy - width / 2, cx + length / 2, cy + width / 2)


def _stadium(length, width):
    r = width / 2
    return unary_union([_rect(length - width, width), Point(-(length - width) / 2, 0).buffer(r, 16),
                        Point((length - width) / 2, 0).buffer(r, 16)])


def _gray(rng, lo, hi):
    v = float(rng.uniform(lo, hi))
    return (v, v, v * rng.uniform(0.97, 1.03))


def _airplane(rng, s):
    length = s * rng.uniform(0.12, 0.2)
    span = length * rng.uniform(0.9, 1.1)
    body = _rect(length, length * 0.12)
    wings = Polygon([(length * 0.12, 0), (-length * 0.12, span / 2), (-length * 0.22, span / 2),
                     (-length * 0.08, 0), (-length * 0.22, -span / 2), (-length * 0.12, -span / 2)])
    tail = Polygon([(-length * 0.36, 0), (-length * 0.5, span * 0.18), (-length * 0.5, -span * 0.18)])
    nose = Point(length / 2, 0).buffer(length * 0.06, 8)
    outline = unary_union([body, wings, tail, nose]).buffer(0.3).simplify(0.2)
    color = _gray(rng, 190, 235)
    engines = [_rect(length * 0.08, length * 0.05, -length * 0.02, y) for y in (span * 0.2, -span * 0.2)]
    return Design(outline, [Part(e, _gray(rng, 90, 120)) for e in engines]
                  + [Part(_rect(length * 0.7, length * 0.04), tuple(c * 0.9 for c in color))]), color


def _storage_tank(rng, s):
    r = s * rng.uniform(0.03, 0.06)
    outline = Point(0, 0).buffer(r, 24)
    color = _gray(rng, 200, 240)
    return Design(outline, [Part(Point(0, 0).buffer(r * 0.78, 24).exterior, _gray(rng, 150, 180), 1),
                            Part(Point(0, 0).buffer(r * 0.12, 8), _gray(rng, 120, 160))]), color


def _vehicle(rng, s):
    length, width = s * rng.uniform(0.03, 0.045), s * rng.uniform(0.015, 0.022)
    outline = _rect(length, width).buffer(width * 0.15, 4)
    palette = [(200, 30, 30), (240, 240, 240), (30, 30, 35), (40, 60, 150), (180, 180, 185), (220, 200, 40)]
    color = palette[rng.integers(len(palette))]
    return Design(outline, [Part(_rect(length * 0.22, width * 0.8, length * 0.18), (50, 60, 70))]), color


def _court_lines(length, width, basketball):
    lw = max(1, int(round(width / 24)))
    parts = [Part(_rect(length * 0.9, width * 0.84).exterior, (245, 245, 245), lw),
             Part(_rect(0.01, width * 0.84).exterior, (245, 245, 245), lw)]
    if basketball:
        parts.append(Part(Point(0, 0).buffer(width * 0.15, 16).exterior, (245, 245, 245), lw))
        for sx in (-1, 1):
            parts.append(Part(_rect(length * 0.18, width * 0.3, sx * length * 0.36).exterior, (245, 245, 245), lw))
    else:
        for sx in (-1, 1):
            parts.append(Part(_rect(length * 0.26, width * 0.64, sx * length * 0.13).exterior, (245, 245, 245), lw))
    return parts


def _tennis_court(rng, s):
    length = s * rng.uniform(0.1, 0.16)
    width = length * 0.5
    palette = [(60, 130, 80), (60, 90, 150), (170, 80, 60)]
    return Design(_rect(length, width), _court_lines(length, width, False)), palette[rng.integers(3)]


def _basketball_court(rng, s):
    length = s * rng.uniform(0.1, 0.15)
    width = length * 0.55
    palette = [(190, 140, 90), (70, 100, 160), (150, 90, 70)]
    return Design(_rect(length, width), _court_lines(length, width, True)), palette[rng.integers(3)]


def _baseball_diamond(rng, s):
    r = s * rng.uniform(0.12, 0.2)
    fan = Polygon([(0, 0)] + [(r * math.cos(a), r * math.sin(a)) for a in np.linspace(0, np.pi / 2, 16)])
    fan = affinity.translate(fan.buffer(r * 0.04), -r * 0.35, -r * 0.35)
    infield = affinity.rotate(_rect(r * 0.36, r * 0.36), 45)
    infield = affinity.translate(infield, -r * 0.35 + r * 0.26, -r * 0.35 + r * 0.26)
    return Design(fan, [Part(infield, (176, 132, 88)),
                        Part(infield.exterior, (235, 230, 220), 1)]), (80, 130, 60)


def _ground_track_field(rng, s):
    length = s * rng.uniform(0.35, 0.5)
    width = length * 0.5
    outline = _stadium(length, width)
    inner = _stadium(length * 0.8, width * 0.62)
    lanes = [Part(_stadium(length * (1 - 0.2 * t), width * (1 - 0.38 * t)).exterior, (235, 225, 215), 1)
             for t in (0.33, 0.66)]
    return Design(outline, lanes + [Part(inner, (70, 135, 65))]), (170, 70, 55)


def _ship(rng, s):
    length = s * rng.uniform(0.1, 0.22)
    width = length * rng.uniform(0.16, 0.22)
    outline = Polygon([(length / 2, 0), (length * 0.3, width / 2), (-length / 2, width / 2),
                       (-length / 2, -width / 2), (length * 0.3, -width / 2)])
    color = _gray(rng, 170, 230)
    return Design(outline, [Part(_rect(length * 0.18, width * 0.6, -length * 0.28), _gray(rng, 90, 140)),
                            Part(_rect(length * 0.3, width * 0.5, length * 0.05), tuple(c * 0.8 for c in color))]), color


def _harbor(rng, s):
    length = s * rng.uniform(0.22, 0.34)
    width = length * rng.uniform(0.12, 0.18)
    pier = _rect(length, width)
    if rng.random() < 0.5:  # T-shaped head
        pier = unary_union([pier, _rect(width, length * 0.45, length / 2 - width / 2)])
    return Design(pier, [Part(_rect(length * 0.9, width * 0.1), (120, 118, 112))]), _gray(rng, 150, 185)


def _bridge(rng, s, span):
    width = s * rng.uniform(0.035, 0.05)
    outline = _rect(span, width)
    return Design(outline, [Part(_rect(span * 0.98, 0.01).exterior, (230, 220, 120), 1)]), _gray(rng, 140, 175)


DESIGNS = {
    "airplane": _airplane, "storage_tank": _storage_tank, "vehicle": _vehicle, "tennis_court": _tennis_court,
    "baseball_diamond": _baseball_diamond, "ship": _ship, "harbor": _harbor,
    "basketball_court": _basketball_court, "ground_track_field": _ground_track_field,
}


# ----------------------------------------------------------------------------- drawing
def _to_pixels(coords):
    return np.round(np.asarray(coords, np.float64) * 16).astype(np.int32)  # 4 fractional bits (cv2 shift=4)


def _fill(image, geometry, color):
    for poly in polygon_parts(geometry):
        cv2.fillPoly(image, [_to_pixels(poly.exterior.coords)], color, cv2.LINE_AA, shift=4)
        for hole in poly.interiors:
            cv2.fillPoly(image, [_to_pixels(hole.coords)], 0, cv2.LINE_AA, shift=4)


def _draw(image, design, color, angle, center, rng):
    def place(geometry):
        return affinity.translate(affinity.rotate(geometry, angle, origin=(0, 0)), *center)

    outline = place(design.outline)
    shadow = affinity.translate(outline, *(rng.uniform(1.0, 2.5, 2)))
    _fill(image, shadow, tuple(float(c) * 0.45 for c in image[int(center[1]) % image.shape[0],
                                                               int(center[0]) % image.shape[1]]))
    _fill(image, outline, tuple(float(c) for c in color))
    for part in design.parts:
        geometry = place(part.geometry)
        part_color = tuple(float(c) for c in part.color)
        if part.thickness:
            cv2.polylines(image, [_to_pixels(geometry.coords)], False, part_color, part.thickness, cv2.LINE_AA, 4)
        else:
            _fill(image, geometry, part_color)
    return outline


# ----------------------------------------------------------------------------- scene composition
def _class_weights(names):
    weights = np.array([NWPU_INSTANCE_COUNTS[n] for n in names], np.float64)
    return weights / weights.sum()


def _choose_kind(rng):
    return ("land", "coast", "river")[rng.choice(3, p=[0.5, 0.3, 0.2])]


def _allowed(kind):
    land = [n for n in NWPU_CLASSES if n not in WATER_CLASSES + SHORE_CLASSES + RIVER_CLASSES]
    if kind == "land":
        return land
    if kind == "coast":
        return land + list(WATER_CLASSES + SHORE_CLASSES)
    return land + list(WATER_CLASSES + RIVER_CLASSES)


def _fits(name, outline, scene, size, placed):
    frame = box(1, 1, size - 1, size - 1)
    if name == "bridge":
        inside = outline.intersection(frame)
        return inside.area > 0.5 * outline.area and not any(inside.intersects(p) for p in placed)
    if not frame.contains(outline) or any(outline.buffer(2).intersects(p) for p in placed):
        return False
    wet = outline.intersection(scene.water).area / outline.area if not scene.water.is_empty else 0.0
    if name in WATER_CLASSES:
        return wet > 0.98
    if name in SHORE_CLASSES:
        return 0.35 < wet < 0.8
    return wet < 0.02


def _place(rng, name, scene, size, placed):
    """Try to put one object of class ``name`` in the scene; return (design, color, angle, center) or None."""
    for _ in range(40):
        if name == "bridge":
            if scene.river_axis is None:
                return None
            (cx, cy), river_angle = scene.river_axis
            t = rng.uniform(-0.3, 0.3) * size
            center = (cx + t * math.cos(river_angle), cy + t * math.sin(river_angle))
            span = size * rng.uniform(0.3, 0.4)
            design, color = _bridge(rng, size, span)
            angle = math.degrees(river_angle) + 90 + rng.uniform(-8, 8)
        else:
            design, color = DESIGNS[name](rng, size)
            angle = rng.uniform(0, 360)
            if name in SHORE_CLASSES and not scene.water.is_empty:  # piers start on the shoreline
                shore = scene.water.boundary.intersection(box(2, 2, size - 2, size - 2))
                point = shore.interpolate(rng.uniform(0, shore.length))
                center = (point.x, point.y)
            else:
                center = tuple(rng.uniform(0.05, 0.95, 2) * size)
        outline = affinity.translate(affinity.rotate(design.outline, angle, origin=(0, 0)), *center)
        if _fits(name, outline, scene, size, placed):
            return design, color, angle, center
    return None


def render_scene(rng, size, background_only=False, kind=None, num_objects=None):
    """Draw one scene; return ``(rgb_uint8_image, [(class_name, annotation_dict), ...])``."""
    kind = kind or _choose_kind(rng)
    scene = _make_scene(rng, size, kind)
    objects = []
    if not background_only:
        allowed = _allowed(kind)
        weights = _class_weights(allowed)
        primary = rng.choice(len(allowed), size=2, replace=False, p=weights)
        n = num_objects or int(rng.integers(2, 9))
        placed = []
        for _ in range(n):
            idx = primary[rng.integers(2)] if rng.random() < 0.7 else rng.choice(len(allowed), p=weights)
            name = allowed[idx]
            if name == "bridge" and any(o[0] == "bridge" for o in objects):
                continue
            result = _place(rng, name, scene, size, placed)
            if result is None:
                continue
            design, color, angle, center = result
            outline = _draw(scene.image, design, color, angle, center, rng)
            placed.append(outline)
            objects.append((name, outline))
    image = np.clip(scene.image, 0, 255).astype(np.uint8)
    annotations = []
    for name, outline in objects:
        ann = outline_annotation(outline, size)
        if ann is not None:
            annotations.append((name, ann))
    return image, annotations


# ----------------------------------------------------------------------------- dataset writer
def preset_params(preset, num_train=None, num_val=None, image_size=None, seed=0, background_fraction=None):
    """The parameters of a sample: the preset's, with explicit values overriding it (what the JSON records)."""
    if preset not in PRESETS:
        raise UserError(f"unknown sample preset {preset!r}; choose one of {', '.join(PRESETS)}")
    aerial = AERIAL_PRESETS.get(preset)
    if background_fraction is None:
        background_fraction = aerial["background_fraction"] if aerial else DEFAULT_BACKGROUND_FRACTION
    params = dict(PRESETS[preset])
    for key, value in (("num_train", num_train), ("num_val", num_val), ("image_size", image_size)):
        if value is not None:
            params[key] = int(value)
    if params["num_train"] < 1 or params["num_val"] < 1:
        raise UserError("the sample needs at least one train and one val image")
    if params["image_size"] < 64:
        raise UserError(f"image_size must be >= 64 pixels, got {params['image_size']}")
    if not 0 <= background_fraction < 1:
        raise UserError(f"background_fraction must be in [0, 1), got {background_fraction}")
    params.update(seed=int(seed), background_fraction=float(background_fraction),
                  generator_version=GENERATOR_VERSION)
    if aerial:
        family = aerial["style_family"]
        params.update(generator_version=scenes.GENERATOR_VERSION, renderer="aerial", style_family=family,
                      namespace=AERIAL_NAMESPACES[family], gsd_range=list(aerial["gsd_range"]))
    return params


def render_sample_image(params, index):
    """Image ``index`` (train first, then val) of the sample ``params`` describes (as :func:`generate_sample`
    resolves them): ``(rgb_uint8_image, [(class_name, annotation), ...], extra COCO image fields)``."""
    size = params["image_size"]
    if params.get("renderer") != "aerial":
        rng = np.random.default_rng((params["seed"], index))
        background_only = rng.random() < params["background_fraction"]
        image, annotations = render_scene(rng, size, background_only=background_only)
        return image, annotations, {}
    draw = index if index < params["num_train"] else VAL_INDEX_OFFSET + index - params["num_train"]
    rng = np.random.default_rng((params["seed"], params["namespace"], draw))
    background_only = rng.random() < params["background_fraction"]
    styles = scenes.FAMILIES[params["style_family"]]
    style = styles[int(rng.integers(len(styles)))]
    gsd = float(rng.uniform(*params["gsd_range"]))
    image, annotations = scenes.render_aerial_scene(rng, size, style, gsd, background_only=background_only)
    return image, annotations, {"gsd": round(gsd, 4), "style": style}


def _write_json(path, data):
    path.write_text(json.dumps(data, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")


def generate_sample(output_dir, preset="ci", num_train=None, num_val=None, image_size=None, seed=0,
                    background_fraction=None, overwrite=False, progress=True):
    """Write the synthetic sample dataset to ``output_dir`` and return a summary dict.

    Presets: clip-art scenes ``ci`` (64 train / 16 val images, 256 px) and ``full`` (480 / 120, 512 px);
    realistic aerial scenes (:mod:`.scenes`) ``pretrain`` (4000 / 256, 256 px, style family
    ``pretrain``, 0.3-2 m per pixel: a corpus to pretrain a general model), ``reader`` (160 / 64,
    256 px, style family ``reader``, 0.3-0.5 m: the same classes in another sensor's look and other
    seasons) and ``reader-ci`` (32 / 16: the first images of ``reader``). Explicit ``num_train``,
    ``num_val`` and ``image_size`` override the preset; ``background_fraction`` (share of images with
    no object) defaults to 0.1 for the clip-art presets and 0.05 for the aerial ones. If ``output_dir``
    already holds a sample made with the same parameters it is reused; a different one needs
    ``overwrite=True``.
    """
    params = preset_params(preset, num_train, num_val, image_size, seed, background_fraction)
    output_dir = Path(output_dir)
    marker = output_dir / "annotations" / "instance_train.json"
    if marker.exists():
        try:
            previous = json.loads(marker.read_text(encoding="utf-8")).get("info", {}).get("params")
        except (OSError, ValueError):
            previous = None
        if previous == params and not overwrite:
            return summarize(output_dir, reused=True)
        if not overwrite:
            raise UserError(f"{output_dir} already holds a dataset made with other parameters; "
                            "choose another folder or pass overwrite=True (--overwrite)")
    elif output_dir.exists() and any(output_dir.iterdir()) and not overwrite:
        raise UserError(f"{output_dir} exists and is not empty; choose another folder or pass overwrite=True")

    output_dir.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{output_dir.name}.", dir=output_dir.parent))
    try:
        (tmp / "images").mkdir()
        (tmp / "annotations").mkdir()
        size = params["image_size"]
        total = params["num_train"] + params["num_val"]
        categories = coco_categories()
        cat_id = {c["name"]: c["id"] for c in categories}
        splits = {"train": {"images": [], "annotations": []}, "val": {"images": [], "annotations": []}}
        ann_id = 0
        for index in tqdm(range(total), desc="generating sample", disable=not progress, unit="img"):
            image, annotations, extra = render_sample_image(params, index)
            file_name = f"{index:05d}.jpg"
            ok, buf = cv2.imencode(".jpg", cv2.cvtColor(image, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_JPEG_QUALITY, 92])
            (tmp / "images" / file_name).write_bytes(buf.tobytes())
            split = splits["train" if index < params["num_train"] else "val"]
            split["images"].append({"id": index + 1, "file_name": file_name, "width": size, "height": size, **extra})
            for name, ann in annotations:
                ann_id += 1
                split["annotations"].append({"id": ann_id, "image_id": index + 1, "category_id": cat_id[name], **ann})
        for split_name, split in splits.items():
            _write_json(tmp / "annotations" / f"instance_{split_name}.json", {
                "info": {"description": "Synthetic NWPU VHR-10-style remote-sensing sample made by tutorial_lib",
                         "split": split_name, "params": params},
                "licenses": [],
                "images": split["images"],
                "annotations": split["annotations"],
                "categories": categories,
            })
        if output_dir.exists():
            shutil.rmtree(output_dir)
        tmp.rename(output_dir)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp)
    return summarize(output_dir)


def summarize(dataset_dir, reused=False):
    """Counts of a COCO dataset in the tutorial layout: images, instances, per-class instances per split."""
    dataset_dir = Path(dataset_dir)
    summary = {"dataset_dir": str(dataset_dir), "reused": reused, "splits": {}}
    for split in ("train", "val"):
        data = json.loads((dataset_dir / "annotations" / f"instance_{split}.json").read_text(encoding="utf-8"))
        names = {c["id"]: c["name"] for c in data["categories"]}
        per_class = {name: 0 for name in names.values()}
        for ann in data["annotations"]:
            per_class[names[ann["category_id"]]] += 1
        with_objects = {ann["image_id"] for ann in data["annotations"]}
        summary["splits"][split] = {
            "images": len(data["images"]),
            "instances": len(data["annotations"]),
            "background_images": sum(1 for img in data["images"] if img["id"] not in with_objects),
            "per_class": per_class,
        }
    return summary


def render_demo_image(path, size=512, seed=2024):
    """The quick-experience scene (``data/remotesensing_demo.png``): a coast with many classes."""
    rng = np.random.default_rng((seed, 0))
    image, annotations = render_scene(rng, size, kind="coast", num_objects=14)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    ok, buf = cv2.imencode(".png", cv2.cvtColor(image, cv2.COLOR_RGB2BGR))
    path.write_bytes(buf.tobytes())
    return image, annotations
