"""The geometry of one annotation in a dataset check: RLE strings decoded here (bad strings never reach C),
polygons measured (shoelace), segmentations checked against the image, and a bbox against its mask's box."""
import json
import math

from pycocotools import mask as mask_utils

COORD_TOLERANCE = 1.0  # pixels a polygon may reach beyond the image border
BBOX_TOLERANCE = 2.0  # pixels (plus 5 % of the box size) between a bbox and its mask's box
NUMBER_TYPES = {int, float}
IS_KIND = {
    "int": lambda v: isinstance(v, int) and not isinstance(v, bool),
    "number": lambda v: isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v),
    "text": lambda v: isinstance(v, str) and v.strip() != "",
    "list": lambda v: isinstance(v, list),
    "polygon list or RLE object": lambda v: isinstance(v, (list, dict)),
}
def _rle_total(counts):
    """Sum of the runs of a compressed COCO RLE string (decoded here, so that bad strings never reach C)."""
    runs, index, total = [], 0, 0
    while index < len(counts):
        value, shift, more = 0, 0, True
        while more:
            if index >= len(counts):
                raise ValueError("ends in the middle of a number")
            code = ord(counts[index]) - 48
            if not 0 <= code < 64:
                raise ValueError(f"contains the invalid character {counts[index]!r}")
            value |= (code & 0x1F) << (5 * shift)
            more = bool(code & 0x20)
            shift += 1
            index += 1
            if not more and code & 0x10:
                value |= -1 << (5 * shift)
        if len(runs) > 2:
            value += runs[-2]
        if value < 0:
            raise ValueError("decodes to a negative run length")
        runs.append(value)
        total += value
    return total


def _numbers(values):
    """True if ``values`` is a list of finite ints/floats (not bools), checked at C speed where possible."""
    if not isinstance(values, list) or not set(map(type, values)) <= NUMBER_TYPES:
        return False
    try:
        return math.isfinite(sum(values))
    except OverflowError:  # huge ints
        return all(IS_KIND["number"](v) for v in values)


def _shoelace(xs, ys):
    area, px, py = 0.0, xs[-1], ys[-1]
    for x, y in zip(xs, ys):
        area += px * y - py * x
        px, py = x, y
    return abs(area) / 2


_REDRAW = "redraw it or delete the annotation"
_REENCODE = "re-encode the mask (pycocotools.mask.encode)"


def check_segmentation(segm, width, height):
    """``(mask box, [(kind, message, fix), ...])`` for one segmentation; the box ([x, y, w, h] of the mask's
    pixels) is None when there are problems."""
    if isinstance(segm, list):
        if not segm:
            return None, [("degenerate_segmentation", "the segmentation is an empty list",
                           "draw the outline or delete the annotation")]
        found, polygons = [], []
        for k, poly in enumerate(segm):
            if not _numbers(poly):
                found.append(("wrong_type", f"polygon {k} must be a flat list of numbers [x1, y1, x2, y2, ...]", ""))
            elif len(poly) % 2:
                found.append(("degenerate_segmentation", f"polygon {k} has an odd number of coordinates "
                                                         f"({len(poly)})", "write x, y pairs"))
            elif len(poly) < 6:
                found.append(("degenerate_segmentation", f"polygon {k} has {len(poly) // 2} point(s), a polygon "
                                                         "needs at least 3", _REDRAW))
            else:
                xs, ys = poly[0::2], poly[1::2]
                x0, x1, y0, y1 = min(xs), max(xs), min(ys), max(ys)
                if _shoelace(xs, ys) == 0:
                    found.append(("degenerate_segmentation", f"polygon {k} has zero area (its points lie on a "
                                                             "line)", _REDRAW))
                elif (x0 < -COORD_TOLERANCE or y0 < -COORD_TOLERANCE
                      or x1 > width + COORD_TOLERANCE or y1 > height + COORD_TOLERANCE):
                    found.append(("out_of_bounds", f"polygon {k} spans x {x0:g}..{x1:g}, y {y0:g}..{y1:g}, outside "
                                                   f"the {width}x{height} image",
                                  "clip the points to the image (or check the image id)"))
                else:
                    polygons.append(poly)
        if found:
            return None, found
        rles = mask_utils.frPyObjects(polygons, height, width)
        rle = rles[0] if len(rles) == 1 else mask_utils.merge(rles)
    else:
        size, counts = segm.get("size"), segm.get("counts")
        if size != [height, width]:
            return None, [("rle_size_mismatch", f"the RLE size {size} is not the image's [height, width] = "
                                                f"[{height}, {width}]", "re-encode the mask at the image size")]
        if isinstance(counts, list) and all(IS_KIND["int"](c) and c >= 0 for c in counts):
            total = sum(counts)
            rle = mask_utils.frPyObjects(segm, height, width) if total == height * width else None
        elif isinstance(counts, str):
            try:
                total = _rle_total(counts)
            except ValueError as exc:
                return None, [("invalid_rle", f"the compressed RLE string {exc}", _REENCODE)]
            rle = {"size": size, "counts": counts.encode("ascii")} if total == height * width else None
        else:
            return None, [("invalid_rle", "RLE 'counts' must be a list of non-negative ints or a compressed string",
                           _REENCODE)]
        if rle is None:
            return None, [("invalid_rle", f"the RLE runs cover {total} pixels, not height x width = "
                                          f"{height * width}", "re-encode the mask at the image size")]
    box = mask_utils.toBbox(rle).tolist()
    if box[2] == 0:  # an empty mask has a zero box; any pixel makes it at least 1 wide
        return None, [("degenerate_segmentation", "the mask covers no pixel (zero area)", _REDRAW)]
    return box, []


def bbox_problem(bbox, box):
    if len(bbox) != 4 or not _numbers(bbox):
        return "wrong_type", f"bbox must be 4 numbers [x, y, width, height], got {json.dumps(bbox)[:60]}", ""
    x, y, w, h = bbox
    if w <= 0 or h <= 0:
        return "degenerate_bbox", f"bbox {bbox} has a width or height <= 0", "recompute it from the mask"
    mx, my, mw, mh = box
    tolerance = BBOX_TOLERANCE + 0.05 * max(mw, mh)
    if max(abs(x - mx), abs(y - my), abs(x + w - mx - mw), abs(y + h - my - mh)) > tolerance:
        return "bbox_mismatch", (f"bbox {[round(v, 1) for v in bbox]} does not match the mask's box "
                                 f"{[round(v, 1) for v in (mx, my, mw, mh)]}"), \
            "recompute the bbox from the mask (pycocotools.mask.toBbox)"
    return None
