"""Sliced inference for scenes far larger than the model input (SAHI-style), with mask-aware merging.

The scene is cut into overlapping tiles; each tile is predicted on its own; detections are moved to
scene coordinates and kept as *cropped* masks (box-sized), so memory is bounded by tile and object size,
never by the scene. Two detections of one class are the same object when their masks agree where both
tiles saw the scene (IoU inside the intersection of the two tiles above ``match_iou``): they are merged
into one (mask union, highest score). An object cut by a tile border therefore comes out once, whole.
Inside one tile, duplicates are removed by mask NMS with the same threshold.
"""
from dataclasses import dataclass

import numpy as np
from tqdm.auto import tqdm

from ..errors import UserError


@dataclass
class Instance:
    """One detection in scene pixels: class, score, and a mask cropped to its box ``[x0, y0, x1, y1)``."""

    cls_id: int
    score: float
    label: str
    x0: int
    y0: int
    mask: np.ndarray  # bool, shape (y1 - y0, x1 - x0)
    tile: tuple  # (x0, y0, x1, y1) of the tile that saw it; the union of tiles after a merge

    @property
    def box(self):
        return self.x0, self.y0, self.x0 + self.mask.shape[1], self.y0 + self.mask.shape[0]

    @property
    def area(self):
        return int(self.mask.sum())


def tile_grid(height, width, slice_size, overlap_ratio):
    """Tiles ``(x0, y0, x1, y1)`` covering the scene; the last row/column is shifted to end at the border."""
    if slice_size < 16:
        raise UserError(f"slice_size must be >= 16 pixels, got {slice_size}")
    if not 0 <= overlap_ratio < 1:
        raise UserError(f"overlap_ratio must be in [0, 1), got {overlap_ratio}")
    step = max(1, int(round(slice_size * (1 - overlap_ratio))))

    def starts(length):
        if length <= slice_size:
            return [0]
        points = list(range(0, length - slice_size, step)) + [length - slice_size]
        return sorted(set(points))

    return [(x, y, min(x + slice_size, width), min(y + slice_size, height))
            for y in starts(height) for x in starts(width)]


def _crop_instance(mask, offset, tile, cls_id, score, label):
    ys, xs = np.nonzero(mask)
    if len(xs) == 0:
        return None
    y0, y1, x0, x1 = ys.min(), ys.max() + 1, xs.min(), xs.max() + 1
    return Instance(int(cls_id), float(score), label, int(x0 + offset[0]), int(y0 + offset[1]),
                    mask[y0:y1, x0:x1].copy(), tile)


def _window(inst, box):
    """The part of ``inst.mask`` inside scene box ``(x0, y0, x1, y1)``, as an array of the box's shape."""
    x0, y0, x1, y1 = box
    out = np.zeros((max(0, y1 - y0), max(0, x1 - x0)), bool)
    ix0, iy0, ix1, iy1 = inst.box
    cx0, cy0, cx1, cy1 = max(x0, ix0), max(y0, iy0), min(x1, ix1), min(y1, iy1)
    if cx1 > cx0 and cy1 > cy0:
        out[cy0 - y0:cy1 - y0, cx0 - x0:cx1 - x0] = inst.mask[cy0 - iy0:cy1 - iy0, cx0 - ix0:cx1 - ix0]
    return out


def _intersect(a, b):
    return max(a[0], b[0]), max(a[1], b[1]), min(a[2], b[2]), min(a[3], b[3])


def _same_object(a, b, match_iou):
    """Do two detections of one class show the same object, judged where both of their tiles saw it?"""
    both_boxes = (min(a.x0, b.x0), min(a.y0, b.y0), max(a.box[2], b.box[2]), max(a.box[3], b.box[3]))
    region = _intersect(_intersect(a.tile, b.tile), both_boxes)
    if region[2] <= region[0] or region[3] <= region[1]:
        return False
    ma, mb = _window(a, region), _window(b, region)
    union = np.logical_or(ma, mb).sum()
    return union > 0 and np.logical_and(ma, mb).sum() / union > match_iou


def _union(a, b):
    x0, y0 = min(a.x0, b.x0), min(a.y0, b.y0)
    x1, y1 = max(a.box[2], b.box[2]), max(a.box[3], b.box[3])
    mask = _window(a, (x0, y0, x1, y1)) | _window(b, (x0, y0, x1, y1))
    tile = (min(a.tile[0], b.tile[0]), min(a.tile[1], b.tile[1]), max(a.tile[2], b.tile[2]), max(a.tile[3], b.tile[3]))
    best = a if a.score >= b.score else b
    return Instance(best.cls_id, best.score, best.label, x0, y0, mask, tile)


def _boxes_touch(a, b):
    return not (a.box[2] <= b.x0 or b.box[2] <= a.x0 or a.box[3] <= b.y0 or b.box[3] <= a.y0)


def merge_instances(instances, match_iou=0.5, into=()):
    """Merge detections (highest score first) into the already merged list ``into``; returns the new list."""
    merged = list(into)
    for inst in sorted(instances, key=lambda i: -i.score):
        for k, kept in enumerate(merged):
            if kept.cls_id == inst.cls_id and _boxes_touch(kept, inst) and _same_object(kept, inst, match_iou):
                merged[k] = _union(kept, inst)
                break
        else:
            merged.append(inst)
    return merged


class ArrayReader:
    """Tile reader over an in-memory RGB array (the GeoTIFF reader reads windows from disk instead)."""

    def __init__(self, image):
        self.image = np.asarray(image)
        self.height, self.width = self.image.shape[:2]

    def read(self, x0, y0, x1, y1):
        return self.image[y0:y1, x0:x1]


def sliced_predict(reader, predict_fn, slice_size=512, overlap_ratio=0.2, match_iou=0.5, progress=True):
    """Predict a large scene tile by tile and merge; ``reader`` is an array or has ``height/width/read``.

    ``predict_fn(tile_rgb)`` returns an object with ``boxes`` (dicts with ``cls_id``, ``score``, ``label``)
    and ``masks`` (N, h, w) for that tile, e.g. a :class:`tutorial_lib.predict` result.
    Returns the merged :class:`Instance` list, sorted by score.
    """
    if not hasattr(reader, "read"):
        reader = ArrayReader(reader)
    tiles = tile_grid(reader.height, reader.width, slice_size, overlap_ratio)
    found = []
    for tile in tqdm(tiles, desc="sliced inference", unit="tile", disable=not progress):
        result = predict_fn(reader.read(*tile))
        new = [_crop_instance(np.asarray(mask, bool), tile[:2], tile, box["cls_id"], box["score"],
                              box.get("label", str(box["cls_id"]))) for box, mask in zip(result.boxes, result.masks)]
        found = merge_instances([i for i in new if i is not None], match_iou, into=found)
    # a merge grows a mask, which can make it match another kept instance: settle once more over the result
    return sorted(merge_instances(found, match_iou), key=lambda i: -i.score)


def to_instances(instances, image_size):
    """Merged :class:`Instance` list -> :class:`tutorial_lib.structures.Instances` with cropped masks."""
    from ..structures import Instances

    return Instances(image_size, [i.box for i in instances], [i.score for i in instances],
                     [i.cls_id for i in instances], [i.mask for i in instances], [(i.x0, i.y0) for i in instances])
