"""Small helpers around pycocotools."""
import contextlib
import io

from pycocotools import mask as mask_utils
from pycocotools.coco import COCO
from shapely.geometry import box


def load_coco(path_or_dict):
    """A ``pycocotools.coco.COCO`` from a JSON path or an already loaded dict, without its chatter."""
    with contextlib.redirect_stdout(io.StringIO()):
        if isinstance(path_or_dict, dict):
            coco = COCO()
            coco.dataset = path_or_dict
            coco.createIndex()
        else:
            coco = COCO(str(path_or_dict))
    return coco


def polygon_parts(geometry):
    """The parts of a shapely geometry, as a list (empty for an empty geometry)."""
    if geometry.is_empty:
        return []
    return list(geometry.geoms) if hasattr(geometry, "geoms") else [geometry]


def outline_annotation(outline, size):
    """COCO polygon segmentation, bbox and area of a shapely outline in a ``size`` x ``size`` image (the part inside
    it), computed by pycocotools from the polygons; None if less than 4 pixels remain. Holes are not represented:
    pass hole-free polygons."""
    polys = [p for p in polygon_parts(outline.intersection(box(0, 0, size, size))) if p.area >= 1.0]
    segmentation = [[round(float(v), 2) for xy in p.exterior.coords[:-1] for v in xy] for p in polys]
    if not segmentation:
        return None
    rle = mask_utils.merge(mask_utils.frPyObjects(segmentation, size, size))
    area = float(mask_utils.area(rle))
    if area < 4:
        return None
    return {"segmentation": segmentation, "area": area,
            "bbox": [round(float(v), 2) for v in mask_utils.toBbox(rle)], "iscrowd": 0}
