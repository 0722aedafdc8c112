"""Sliced inference for scenes far larger than the model input (SAHI-style), merged as it streams.

The scene is cut into overlapping tiles, predicted tile by tile (in batches where the predictor allows), and each
tile's detections are placed on the scene as :class:`~tutorial_lib.structures.Instances` with *cropped* masks, so
memory follows tile and object size, never the scene. Detections of one class are compared where both of their
tiles saw the scene (where their tiles intersect): an object cut by a tile border is seen whole in the overlap by
both tiles, so its two pieces agree there even though each is only part of the object.

The options travel as two frozen objects (:mod:`.options`): :class:`~.options.SliceOptions` (``slice_size``,
``overlap_ratio``, ``full_image``, ``batch_size``) and :class:`~.options.MergeOptions` (below).

Merging, as in SAHI (``merge_mode``):

* ``GREEDYNMM`` (default): best score first, a detection joins the first kept instance it matches (masks united,
  the highest score kept); the kept instance grows as pieces join, so the four pieces of an object at a tile
  corner all join it.
* ``NMM``: the same, but transitive: a detection matching several kept instances fuses them all.
* ``NMS``: instances are grouped as by ``GREEDYNMM``, but each comes out as its best-scoring detection alone.

Matching (``match_metric``): ``IOU`` (intersection over union) or ``IOS`` (intersection over the smaller),
computed on masks (``match_on="masks"``, default) or boxes, above ``match_threshold`` (0.5).

Streaming: tiles are visited row by row; an instance whose box ends above the next tile row can no longer meet a
new detection, so it is settled against its neighbours and handed out (see :class:`SlicedInference`), and only
instances near the current tile row stay in memory. ``full_image`` adds one prediction of the whole scene, read
downscaled, to catch objects larger than a tile.

No-data (a reader whose ``valid`` gives a data mask): mask pixels on no-data are removed and detections more than
half on no-data dropped (:func:`drop_nodata`), before merging.
"""
from collections import defaultdict

import numpy as np
from tqdm.auto import tqdm

from ..errors import UserError
from ..structures import Instances
from .options import MergeOptions, SliceOptions
NODATA_MAX = 0.5  # a detection with more than this share of its mask on no-data is dropped


def tile_grid(height, width, slice_size, overlap_ratio):
    """Tiles ``(x0, y0, x1, y1)`` covering the scene row by row; the last row/column is shifted to end at the
    border."""
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


# ---------------------------------------------------------------------------------------------------- matching
def _intersect(a, b):
    return max(a[0], b[0]), max(a[1], b[1]), min(a[2], b[2]), min(a[3], b[3])


def _window(mask, x0, y0, window):
    """The crop ``mask`` (top-left at ``x0, y0``) on the scene box ``window``, as an array of the window's shape."""
    wx0, wy0, wx1, wy1 = window
    out = np.zeros((wy1 - wy0, wx1 - wx0), bool)
    h, w = mask.shape
    cx0, cy0, cx1, cy1 = max(wx0, x0), max(wy0, y0), min(wx1, x0 + w), min(wy1, y0 + h)
    if cx1 > cx0 and cy1 > cy0:
        out[cy0 - wy0:cy1 - wy0, cx0 - wx0:cx1 - wx0] = mask[cy0 - y0:cy1 - y0, cx0 - x0:cx1 - x0]
    return out


def _fill(window, boxes):
    """Bool array of ``window``'s shape, True inside any of the scene boxes ``boxes``."""
    wx0, wy0, wx1, wy1 = window
    out = np.zeros((wy1 - wy0, wx1 - wx0), bool)
    for box in boxes:
        x0, y0, x1, y1 = _intersect(box, window)
        if x1 > x0 and y1 > y0:
            out[y0 - wy0:y1 - wy0, x0 - wx0:x1 - wx0] = True
    return out


def _bbox(mask):
    """``(x0, y0, x1, y1)`` of a bool array's pixels (an empty box when it has none)."""
    ys, xs = np.flatnonzero(mask.any(axis=1)), np.flatnonzero(mask.any(axis=0))
    if len(ys) == 0:
        return 0, 0, 0, 0
    return int(xs[0]), int(ys[0]), int(xs[-1]) + 1, int(ys[-1]) + 1


def match_value(a, b, metric="IOU", on="masks"):
    """How well two detections agree where both saw the scene: IoU or IoS of their masks inside the region both of
    them saw (the union of ``a``'s tiles intersected with the union of ``b``'s), or of the boxes of those parts.

    ``a`` and ``b`` have ``x0, y0, mask`` (a crop) and ``tiles`` (scene boxes their predictions came from).
    """
    box_a, box_b = a.box, b.box
    if not _boxes_overlap(box_a, box_b):
        return 0.0
    window = min(box_a[0], box_b[0]), min(box_a[1], box_b[1]), max(box_a[2], box_b[2]), max(box_a[3], box_b[3])
    if len(a.tiles) == 1 and len(b.tiles) == 1:
        region = _fill(window, [_intersect(a.tiles[0], b.tiles[0])])
    else:
        region = _fill(window, [_intersect(ta, tb) for ta in a.tiles for tb in b.tiles])
    in_a, in_b = _window(a.mask, a.x0, a.y0, window) & region, _window(b.mask, b.x0, b.y0, window) & region
    if on == "boxes":  # the boxes of what each saw in the shared region
        local = (0, 0, window[2] - window[0], window[3] - window[1])
        in_a, in_b = _fill(local, [_bbox(in_a)]), _fill(local, [_bbox(in_b)])
    inter = int(np.count_nonzero(in_a & in_b))
    if inter == 0:
        return 0.0
    area_a, area_b = int(np.count_nonzero(in_a)), int(np.count_nonzero(in_b))
    denom = area_a + area_b - inter if metric == "IOU" else min(area_a, area_b)
    return inter / denom if denom > 0 else 0.0


class _Group:
    """Detections merged so far: the union of their masks (what they saw, used for matching), the tiles they came
    from, and the best detection (what ``NMS`` hands out)."""

    __slots__ = ("cls", "score", "x0", "y0", "mask", "tiles", "order", "best")

    def __init__(self, cls, score, x0, y0, mask, tile, order):
        self.cls, self.score, self.x0, self.y0, self.mask = cls, score, x0, y0, mask
        self.tiles, self.order = [tile], order
        self.best = (score, x0, y0, mask)

    @property
    def box(self):
        return self.x0, self.y0, self.x0 + self.mask.shape[1], self.y0 + self.mask.shape[0]

    def absorb(self, other):
        a, b = self.box, other.box
        window = min(a[0], b[0]), min(a[1], b[1]), max(a[2], b[2]), max(a[3], b[3])
        self.mask = _window(self.mask, self.x0, self.y0, window) | _window(other.mask, other.x0, other.y0, window)
        self.x0, self.y0 = window[:2]
        self.tiles += [t for t in other.tiles if t not in self.tiles]
        if other.best[0] > self.best[0]:
            self.best = other.best
        self.score = max(self.score, other.score)
        self.order = min(self.order, other.order)


def _boxes_overlap(a, b):
    return a[0] < b[2] and b[0] < a[2] and a[1] < b[3] and b[1] < a[3]


class StreamingMerger:
    """Merges tiles' detections into instances and hands out those no later tile can touch.

    ``merging`` (:class:`~.options.MergeOptions`, default when None) says how detections are matched and merged.
    ``add(instances, tile)`` takes one tile's detections in scene coordinates (cropped masks);
    ``finalise(y)`` returns, as :class:`Instances`, every instance whose box ends at or above row ``y`` (no tile
    starting at ``y`` or below can meet it); ``flush()`` returns the rest. A grid index keeps each look-up local,
    so the cost per tile does not grow with the scene.
    """

    def __init__(self, image_size, merging=None, cell=256):
        self.image_size = (int(image_size[0]), int(image_size[1]))
        merging = MergeOptions() if merging is None else merging
        self.mode, self.metric = merging.merge_mode, merging.match_metric
        self.on, self.threshold = merging.match_on, merging.match_threshold
        self.cell = max(16, int(cell))
        self.groups = {}  # id -> _Group
        self.cells = defaultdict(set)
        self._next = 0

    def __len__(self):
        return len(self.groups)

    # -------------------------------------------------------------- spatial index
    def _cells_of(self, box):
        c = self.cell
        for cy in range(box[1] // c, (max(box[3], box[1] + 1) - 1) // c + 1):
            for cx in range(box[0] // c, (max(box[2], box[0] + 1) - 1) // c + 1):
                yield cx, cy

    def _index(self, gid):
        for key in self._cells_of(self.groups[gid].box):
            self.cells[key].add(gid)

    def _unindex(self, gid):
        for key in self._cells_of(self.groups[gid].box):
            bucket = self.cells.get(key)
            if bucket is not None:
                bucket.discard(gid)
                if not bucket:
                    del self.cells[key]

    def _candidates(self, group, exclude=None):
        """Ids of kept groups of the same class whose boxes overlap ``group``'s, oldest first."""
        seen = set()
        for key in self._cells_of(group.box):
            seen.update(self.cells.get(key, ()))
        seen.discard(exclude)
        box = group.box
        found = [gid for gid in seen
                 if self.groups[gid].cls == group.cls and _boxes_overlap(self.groups[gid].box, box)]
        return sorted(found, key=lambda gid: self.groups[gid].order)

    def _matches(self, a, b):
        return match_value(a, b, self.metric, self.on) > self.threshold

    def _fuse(self, keep, other):
        """Group ``other`` joins group ``keep`` (both ids)."""
        self._unindex(keep)
        self._unindex(other)
        self.groups[keep].absorb(self.groups.pop(other))
        self._index(keep)

    # -------------------------------------------------------------- public
    def add(self, instances, tile):
        """Merge one tile's detections (:class:`Instances` on the scene, cropped masks); ``tile`` is the scene box
        ``(x0, y0, x1, y1)`` the predictor saw. Detections with empty masks are dropped."""
        inst = instances.to_cropped()
        tile = tuple(int(v) for v in tile)
        for i in np.argsort(-inst.scores, kind="stable"):
            mask = inst.masks[i]
            ys = np.flatnonzero(mask.any(axis=1))
            if len(ys) == 0:
                continue
            xs = np.flatnonzero(mask.any(axis=0))
            x0, y0 = int(inst.mask_offsets[i][0]), int(inst.mask_offsets[i][1])
            crop = mask[ys[0]:ys[-1] + 1, xs[0]:xs[-1] + 1]
            new = _Group(int(inst.class_ids[i]), float(inst.scores[i]), x0 + int(xs[0]), y0 + int(ys[0]),
                         np.ascontiguousarray(crop), tile, self._next)
            self._next += 1
            matched = [gid for gid in self._candidates(new) if self._matches(self.groups[gid], new)]
            if not matched:
                gid = new.order
                self.groups[gid] = new
                self._index(gid)
                continue
            keep = matched[0]
            self._unindex(keep)
            self.groups[keep].absorb(new)
            self._index(keep)
            if self.mode == "NMM":
                for other in matched[1:]:
                    self._fuse(keep, other)

    def _settle(self, gid):
        """Fuse ``gid`` with any kept group it now matches (merges grow masks and tiles); returns its final id."""
        changed = True
        while changed:
            changed = False
            group = self.groups[gid]
            for other in self._candidates(group, exclude=gid):
                if self._matches(self.groups[other], group):
                    keep, drop = (gid, other) if group.order <= self.groups[other].order else (other, gid)
                    self._fuse(keep, drop)
                    gid, changed = keep, True
                    break
        return gid

    def finalise(self, below_y=None):
        """Hand out (as :class:`Instances`) the instances ending at or above row ``below_y`` (all when None)."""
        ready = [gid for gid, g in self.groups.items() if below_y is None or g.box[3] <= below_y]
        ready.sort(key=lambda gid: -self.groups[gid].score)
        for gid in ready:
            if gid in self.groups:
                self._settle(gid)
        done = sorted((gid for gid, g in self.groups.items() if below_y is None or g.box[3] <= below_y),
                      key=lambda gid: self.groups[gid].order)
        out = []
        for gid in done:
            self._unindex(gid)
            out.append(self.groups.pop(gid))
        return self._to_instances(out)

    def flush(self):
        return self.finalise(None)

    def _to_instances(self, groups):
        crops, offsets, boxes = [], [], []
        for g in groups:
            if self.mode == "NMS":
                _, x0, y0, mask = g.best
            else:
                x0, y0, mask = g.x0, g.y0, g.mask
            crops.append(mask)
            offsets.append((x0, y0))
            boxes.append((x0, y0, x0 + mask.shape[1], y0 + mask.shape[0]))
        return Instances(self.image_size, np.asarray(boxes, np.float32).reshape(-1, 4),
                         [g.best[0] if self.mode == "NMS" else g.score for g in groups], [g.cls for g in groups],
                         crops, np.asarray(offsets, np.int64).reshape(-1, 2))


# ---------------------------------------------------------------------------------------------------- readers
class ArrayReader:
    """Tile reader over an in-memory RGB array (the GeoTIFF reader reads windows from disk instead)."""

    def __init__(self, image):
        self.image = np.asarray(image)
        self.height, self.width = self.image.shape[:2]

    def read(self, x0, y0, x1, y1):
        return self.image[y0:y1, x0:x1]

    def valid(self, x0, y0, x1, y1):
        """Pixels holding data (None: all of them)."""
        return None

    def read_scaled(self, height, width):
        import cv2

        return cv2.resize(np.ascontiguousarray(self.image), (width, height), interpolation=cv2.INTER_AREA)


def tile_instances(result, tile_shape, labels=None):
    """One tile's prediction as :class:`Instances` in tile pixels.

    ``result`` is an :class:`~tutorial_lib.predict.InstanceSegResult` (or anything with ``.instances``), or has
    ``boxes`` (dicts with ``cls_id``, ``score``, optional ``label``) and ``masks`` (N, h, w). Class names met on
    the way are recorded in the dict ``labels``.
    """
    if hasattr(result, "instances"):
        if labels is not None:
            for k, name in enumerate(getattr(result, "labels", ()) or ()):
                labels.setdefault(k, name)
        return _crop(result.instances)
    boxes = list(result.boxes)
    masks = np.asarray(result.masks, bool).reshape((len(boxes),) + tuple(tile_shape))
    if labels is not None:
        for b in boxes:
            labels.setdefault(int(b["cls_id"]), b.get("label", str(b["cls_id"])))
    return _crop(Instances(tile_shape, np.zeros((len(boxes), 4), np.float32), [b["score"] for b in boxes],
                           [b["cls_id"] for b in boxes], masks))


def _crop(instances):
    """Masks (full-size or cropped) -> masks cropped to their pixels (boxes = those crops); detections without
    pixels dropped. Cheaper than ``Instances.to_cropped`` on whole-tile masks (row/column scans instead of
    ``nonzero``)."""
    origins = instances.mask_offsets if instances.cropped else np.zeros((len(instances), 2), np.int64)
    keep, crops, offsets = [], [], []
    for i, (mask, (x0, y0)) in enumerate(zip(instances.masks, origins)):
        rows = np.flatnonzero(mask.any(axis=1))
        if len(rows) == 0:
            continue
        cols = np.flatnonzero(mask[rows[0]:rows[-1] + 1].any(axis=0))
        keep.append(i)
        crops.append(mask[rows[0]:rows[-1] + 1, cols[0]:cols[-1] + 1])
        offsets.append((int(x0) + int(cols[0]), int(y0) + int(rows[0])))
    offsets = np.asarray(offsets, np.int64).reshape(-1, 2)
    boxes = np.array([(x, y, x + c.shape[1], y + c.shape[0]) for (x, y), c in zip(offsets, crops)],
                     np.float32).reshape(-1, 4)
    return Instances(instances.image_size, boxes, instances.scores[keep], instances.class_ids[keep], crops, offsets)


def _scale_instances(small, scale_y, scale_x, image_size):
    """Instances predicted on a downscaled scene -> scene pixels (each crop resized on its own, nearest)."""
    import cv2

    small = small.to_cropped()
    h, w = image_size
    crops, offsets = [], []
    for mask, (x0, y0) in zip(small.masks, small.mask_offsets):
        sx0, sy0 = int(np.floor(x0 / scale_x)), int(np.floor(y0 / scale_y))
        sx1 = min(w, int(np.ceil((x0 + mask.shape[1]) / scale_x)))
        sy1 = min(h, int(np.ceil((y0 + mask.shape[0]) / scale_y)))
        if mask.size == 0 or sx1 <= sx0 or sy1 <= sy0:
            crops.append(np.zeros((0, 0), bool))
        else:
            crops.append(cv2.resize(mask.view(np.uint8), (sx1 - sx0, sy1 - sy0),
                                    interpolation=cv2.INTER_NEAREST).astype(bool))
        offsets.append((sx0, sy0))
    boxes = small.boxes / np.array([scale_x, scale_y, scale_x, scale_y], np.float32)
    return Instances(image_size, boxes, small.scores, small.class_ids, crops,
                     np.asarray(offsets, np.int64).reshape(-1, 2))


def drop_nodata(instances, valid_of):
    """``instances`` (scene pixels, cropped masks) without their no-data pixels, and without those whose mask lies
    more than half (:data:`NODATA_MAX`) on no-data: a prediction never lies in a no-data collar.
    ``valid_of(x0, y0, x1, y1)`` gives the bool data mask of a scene box, or None where every pixel holds data."""
    keep, crops = [], []
    for i, (mask, (ox, oy)) in enumerate(zip(instances.masks, instances.mask_offsets)):
        valid = valid_of(int(ox), int(oy), int(ox) + mask.shape[1], int(oy) + mask.shape[0]) if mask.size else None
        if valid is not None:
            inside = mask & valid
            if np.count_nonzero(inside) < (1.0 - NODATA_MAX) * np.count_nonzero(mask):
                continue
            mask = inside
        keep.append(i)
        crops.append(mask)
    return Instances(instances.image_size, instances.boxes[keep], instances.scores[keep], instances.class_ids[keep],
                     crops, instances.mask_offsets[keep])


class SlicedInference:
    """Iterate over a large scene's merged instances as they become final (chunks of :class:`Instances` on the
    scene, cropped masks), predicting tile by tile; ``slicing`` and ``merging`` are
    :class:`~.options.SliceOptions` and :class:`~.options.MergeOptions` (defaults when None; ``slice_size=None``
    picks the tile size from the scene, ``batch_size=None`` is 1).

    ``reader`` is an RGB array or has ``height``, ``width``, ``read(x0, y0, x1, y1)`` (and optionally
    ``valid(...)`` -> bool data mask or None, and ``read_scaled(h, w)`` for ``full_image``).
    ``predict_fn(tile)`` returns one tile's result (see :func:`tile_instances`); with ``batch_size`` > 1 it is
    called with a list of tiles and returns a list of results. After the iteration, ``labels`` maps class ids to
    the names the results gave.
    """

    def __init__(self, reader, predict_fn, slicing=None, merging=None, progress=True):
        if not hasattr(reader, "read"):
            reader = ArrayReader(reader)
        slicing = SliceOptions() if slicing is None else slicing
        self.reader = reader
        self.predict_fn = predict_fn
        self.image_size = (int(reader.height), int(reader.width))
        self.slice_size = slicing.tile_size(reader.height, reader.width)
        self.tiles = tile_grid(reader.height, reader.width, self.slice_size, slicing.overlap_ratio)
        self.batch_size = slicing.batch_size or 1
        self.full_image = slicing.whole_scene_size(self.slice_size)
        self.merger = StreamingMerger(self.image_size, merging, cell=self.slice_size)
        self.progress = progress
        self.labels = {}
        self.tiles_predicted = 0

    def _predict(self, tiles):
        if self.batch_size == 1:
            return [self.predict_fn(tiles[0])]
        results = list(self.predict_fn(list(tiles)))
        if len(results) != len(tiles):
            raise ValueError(f"predict_fn returned {len(results)} results for {len(tiles)} tiles")
        return results

    def _place(self, result, tile, valid):
        x0, y0, x1, y1 = tile
        inst = tile_instances(result, (y1 - y0, x1 - x0), self.labels)
        if len(inst) == 0:
            return inst
        placed = inst.translate(x0, y0, self.image_size)
        if valid is not None:  # nodata pixels are never part of an object
            placed = drop_nodata(placed, lambda a, b, c, d: valid[b - y0:d - y0, a - x0:c - x0])
        return placed

    def _full_image_instances(self):
        h, w = self.image_size
        scale = min(1.0, self.full_image / max(h, w))
        sh, sw = max(1, int(round(h * scale))), max(1, int(round(w * scale)))
        if not hasattr(self.reader, "read_scaled"):
            raise UserError("full_image needs a reader that can read the scene downscaled")
        small = self.reader.read_scaled(sh, sw)
        result = self._predict([small])[0]
        inst = tile_instances(result, (sh, sw), self.labels)
        return drop_nodata(_scale_instances(inst, sh / h, sw / w, self.image_size),
                           getattr(self.reader, "valid", lambda *a: None))

    def __iter__(self):
        if self.full_image:
            self.merger.add(self._full_image_instances(), (0, 0, self.image_size[1], self.image_size[0]))
        bar = tqdm(total=len(self.tiles), desc="sliced inference", unit="tile", disable=not self.progress)
        try:
            pending = []
            for index, tile in enumerate(self.tiles):
                valid = getattr(self.reader, "valid", lambda *a: None)(*tile)
                if valid is not None and not valid.any():  # all nodata: nothing to find
                    bar.update(1)
                else:
                    pending.append((tile, valid))
                next_y = self.tiles[index + 1][1] if index + 1 < len(self.tiles) else None
                row_ends = next_y != tile[1]
                if pending and (len(pending) == self.batch_size or row_ends):
                    images = [self.reader.read(*t) for t, _ in pending]
                    for (t, valid), result in zip(pending, self._predict(images)):
                        self.merger.add(self._place(result, t, valid), t)
                    self.tiles_predicted += len(pending)
                    bar.update(len(pending))
                    pending = []
                if row_ends and next_y is not None:
                    chunk = self.merger.finalise(next_y)
                    if len(chunk):
                        yield chunk
            chunk = self.merger.flush()
            if len(chunk):
                yield chunk
        finally:
            bar.close()


def sliced_predict(reader, predict_fn, slicing=None, merging=None, progress=True):
    """Predict a large scene tile by tile and merge; returns :class:`Instances` on the whole scene (cropped
    masks), best score first. Arguments as :class:`SlicedInference`."""
    run = SlicedInference(reader, predict_fn, slicing, merging, progress)
    return Instances.cat(list(run), run.image_size).sorted()
