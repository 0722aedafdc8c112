"""``Instances``: the one shape of "what a model found in one image" in this library.

Every model adapter (dygraph evaluation), every inference backend (the predictor), the sliced merge, the serving
payload, the GeoJSON writers and :mod:`tutorial_lib.viz` read and write this structure (numpy only, no paddle)::

    inst = Instances((h, w), boxes=xyxy, scores=s, class_ids=c, masks=full_masks)     # masks (N, h, w) bool
    inst[inst.scores >= 0.5]                # indexing (int, slice, bool or int array) gives Instances
    inst.translate(x0, y0, (H, W))          # a tile's instances placed on the whole scene (masks become crops)
    Instances.cat([a, b], (H, W))           # instances of one image, concatenated
    inst.full_masks()                       # (N, h, w) bool whatever the storage

Masks are stored either full-size (``masks`` an (N, h, w) bool array, ``mask_offsets`` None) or box-cropped:
``masks`` a list of N 2-D bool arrays and ``mask_offsets`` (N, 2) int of each crop's top-left (x, y) in the
image. Cropped storage keeps a scene with thousands of small objects small in memory.
"""
from typing import Any, Iterable, Optional, Sequence, Tuple

import numpy as np


def _as(values: Any, dtype: Any, shape_tail: Tuple[int, ...], n: int) -> np.ndarray:
    if values is None:
        return np.zeros((n,) + shape_tail, dtype)
    arr = np.asarray(values, dtype=dtype)
    return arr.reshape((-1,) + shape_tail)


class Instances:
    """Instances of one image: ``boxes`` (N, 4) float32 x1 y1 x2 y2, ``scores`` (N,) float32, ``class_ids`` (N,)
    int64, masks (full or cropped, see the module docstring) and ``image_size`` (h, w)."""

    boxes: np.ndarray
    scores: np.ndarray
    class_ids: np.ndarray
    masks: Any  # (N, h, w) bool array, or a list of N 2-D crops when mask_offsets is set
    mask_offsets: Any  # None, or (N, 2) int64 crop corners

    def __init__(self, image_size: Sequence[int], boxes: Any = None, scores: Any = None, class_ids: Any = None,
                 masks: Any = None, mask_offsets: Any = None) -> None:
        self.image_size = (int(image_size[0]), int(image_size[1]))
        n = 0
        for value in (boxes, scores, class_ids, masks):
            if value is not None:
                n = len(value)
                break
        self.boxes = _as(boxes, np.float32, (4,), n)
        self.scores = _as(scores, np.float32, (), n)
        self.class_ids = _as(class_ids, np.int64, (), n)
        h, w = self.image_size
        if mask_offsets is None:
            self.masks = np.zeros((n, h, w), bool) if masks is None else np.asarray(masks, dtype=bool).reshape(n, h, w)
            self.mask_offsets = None
        else:
            self.masks = [np.asarray(m, dtype=bool) for m in masks]
            self.mask_offsets = np.asarray(mask_offsets, dtype=np.int64).reshape(-1, 2)
        sizes = {len(self.boxes), len(self.scores), len(self.class_ids), len(self.masks)}
        if self.mask_offsets is not None:
            sizes.add(len(self.mask_offsets))
        if len(sizes) != 1:
            raise ValueError(f"Instances fields disagree in length: boxes {len(self.boxes)}, scores "
                             f"{len(self.scores)}, class_ids {len(self.class_ids)}, masks {len(self.masks)}")

    # ------------------------------------------------------------------ basics
    @classmethod
    def empty(cls, image_size: Sequence[int]) -> "Instances":
        return cls(image_size)

    def __len__(self) -> int:
        return len(self.scores)

    def __repr__(self) -> str:
        kind = "full" if self.mask_offsets is None else "cropped"
        return f"Instances({len(self)} in {self.image_size[1]}x{self.image_size[0]}, {kind} masks)"

    @property
    def cropped(self) -> bool:
        return self.mask_offsets is not None

    def __getitem__(self, index: Any) -> "Instances":
        if isinstance(index, (int, np.integer)):
            index = [int(index)]
        index = np.asarray(np.arange(len(self))[index]).reshape(-1)
        if self.cropped:
            return Instances(self.image_size, self.boxes[index], self.scores[index], self.class_ids[index],
                             [self.masks[i] for i in index], self.mask_offsets[index])
        return Instances(self.image_size, self.boxes[index], self.scores[index], self.class_ids[index],
                         self.masks[index])

    def filter(self, min_score: float) -> "Instances":
        """The instances scoring at least ``min_score``."""
        return self[self.scores >= float(min_score)]

    def sorted(self) -> "Instances":
        """The same instances by decreasing score (stable)."""
        return self[np.argsort(-self.scores, kind="stable")]

    # ------------------------------------------------------------------ masks
    def mask(self, i: int) -> np.ndarray:
        """Instance ``i``'s mask at the image size (bool (h, w))."""
        if not self.cropped:
            return self.masks[i]
        full = np.zeros(self.image_size, bool)
        _paste(full, self.masks[i], self.mask_offsets[i])
        return full

    def full_masks(self) -> np.ndarray:
        """All masks at the image size, (N, h, w) bool."""
        if not self.cropped:
            return self.masks
        out = np.zeros((len(self),) + self.image_size, bool)
        for i in range(len(self)):
            _paste(out[i], self.masks[i], self.mask_offsets[i])
        return out

    def mask_areas(self) -> np.ndarray:
        if not self.cropped:
            return self.masks.reshape(len(self), -1).sum(1).astype(np.int64)
        return np.array([int(m.sum()) for m in self.masks], np.int64)

    def to_cropped(self) -> "Instances":
        """The same instances with each mask cropped to its own pixels' bounding box (an empty mask: 0x0 crop at
        its box's corner)."""
        if self.cropped:
            return self
        crops, offsets = [], []
        for i, mask in enumerate(self.masks):
            ys, xs = np.nonzero(mask)
            if len(xs):
                x0, y0 = int(xs.min()), int(ys.min())
                crops.append(mask[y0:int(ys.max()) + 1, x0:int(xs.max()) + 1].copy())
            else:
                x0, y0 = (int(max(0, v)) for v in self.boxes[i, :2])
                crops.append(np.zeros((0, 0), bool))
            offsets.append((x0, y0))
        return Instances(self.image_size, self.boxes, self.scores, self.class_ids, crops,
                         np.asarray(offsets, np.int64).reshape(-1, 2))

    def to_full(self) -> "Instances":
        """The same instances with full-size masks."""
        if not self.cropped:
            return self
        return Instances(self.image_size, self.boxes, self.scores, self.class_ids, self.full_masks())

    # ------------------------------------------------------------------ geometry
    def translate(self, dx: int, dy: int, image_size: Sequence[int]) -> "Instances":
        """These instances placed at (``dx``, ``dy``) on a canvas of ``image_size`` (h, w): boxes shifted, masks
        kept as crops with shifted offsets (parts outside the canvas are cut off)."""
        src = self.to_cropped()
        boxes = src.boxes + np.array([dx, dy, dx, dy], np.float32)
        h, w = int(image_size[0]), int(image_size[1])
        crops, offsets = [], []
        for mask, (x0, y0) in zip(src.masks, src.mask_offsets):
            x0, y0 = int(x0) + int(dx), int(y0) + int(dy)
            cx0, cy0 = max(x0, 0), max(y0, 0)
            cx1, cy1 = min(x0 + mask.shape[1], w), min(y0 + mask.shape[0], h)
            if cx1 <= cx0 or cy1 <= cy0:
                crops.append(np.zeros((0, 0), bool))
            else:
                crops.append(mask[cy0 - y0:cy1 - y0, cx0 - x0:cx1 - x0])
            offsets.append((cx0, cy0))
        boxes[:, [0, 2]] = np.clip(boxes[:, [0, 2]], 0, w)
        boxes[:, [1, 3]] = np.clip(boxes[:, [1, 3]], 0, h)
        return Instances((h, w), boxes, src.scores, src.class_ids, crops,
                         np.asarray(offsets, np.int64).reshape(-1, 2))

    @classmethod
    def cat(cls, items: Iterable["Instances"], image_size: Optional[Sequence[int]] = None) -> "Instances":
        """Concatenate instances of the same image (cropped storage if any part is cropped)."""
        items = list(items)
        if image_size is None:
            if not items:
                raise ValueError("Instances.cat of nothing needs image_size")
            image_size = items[0].image_size
        if any(i.image_size != tuple(image_size) for i in items):
            raise ValueError("Instances.cat: parts have different image sizes; translate them first")
        if not items:
            return cls(image_size)
        boxes = np.concatenate([i.boxes for i in items])
        scores = np.concatenate([i.scores for i in items])
        class_ids = np.concatenate([i.class_ids for i in items])
        if any(i.cropped for i in items):
            parts = [i.to_cropped() for i in items]
            return cls(image_size, boxes, scores, class_ids, [m for p in parts for m in p.masks],
                       np.concatenate([p.mask_offsets for p in parts]))
        return cls(image_size, boxes, scores, class_ids, np.concatenate([i.masks for i in items]))


def _paste(canvas: np.ndarray, crop: np.ndarray, offset: Sequence[int]) -> None:
    x0, y0 = int(offset[0]), int(offset[1])
    if crop.size == 0:
        return
    h, w = canvas.shape
    cx1, cy1 = min(x0 + crop.shape[1], w), min(y0 + crop.shape[0], h)
    if cx1 > x0 and cy1 > y0:
        canvas[y0:cy1, x0:cx1] |= crop[:cy1 - y0, :cx1 - x0]


def masks_to_boxes(masks: Any) -> np.ndarray:
    """(N, h, w) bool -> (N, 4) float32 x1 y1 x2 y2 of each mask's pixels (zeros for an empty mask)."""
    boxes = np.zeros((len(masks), 4), np.float32)
    for i, mask in enumerate(masks):
        ys, xs = np.nonzero(mask)
        if len(xs):
            boxes[i] = [xs.min(), ys.min(), xs.max() + 1, ys.max() + 1]
    return boxes
