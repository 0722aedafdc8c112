"""A prediction -> PaddleX's serving ``result`` (``instances`` with RLE masks, optional overlay and polygons).

Masks are encoded one at a time (one image-sized mask alive at once, not all N), so a busy scene costs one mask's
memory here, not N.
"""
import base64

import numpy as np


def _polygon(crop, offset):
    from shapely.geometry import mapping

    from ..pipeline.vectors import mask_to_polygons

    geometry = mask_to_polygons(crop, offset=offset)
    return None if geometry.is_empty else mapping(geometry)


def result_payload(result, overlay=True, polygons=False):
    """PaddleX's ``result`` for one :class:`~tutorial_lib.predict.InstanceSegResult`.

    ``polygons``: each instance also gets ``polygon``, a GeoJSON (Multi)Polygon in pixel coordinates (x right,
    y down, on pixel edges, holes kept), traced from its mask by :func:`tutorial_lib.pipeline.vectors.
    mask_to_polygons`.
    """
    import cv2

    from ..predict import encode_rle

    inst = result.instances
    cropped = inst.to_cropped() if polygons else None
    instances = []
    for i in range(len(inst)):
        rle = encode_rle(inst.mask(i))
        item = {"bbox": [float(v) for v in inst.boxes[i]], "categoryId": int(inst.class_ids[i]),
                "categoryName": result.label(inst.class_ids[i]), "score": float(inst.scores[i]),
                "mask": {"rleResult": rle["counts"], "size": list(rle["size"])}}
        if polygons:
            item["polygon"] = _polygon(cropped.masks[i], tuple(int(v) for v in cropped.mask_offsets[i]))
        instances.append(item)
    payload = {"instances": instances, "image": None}
    if overlay:
        drawn = np.ascontiguousarray(result.visualize()[..., ::-1])
        ok, buf = cv2.imencode(".jpg", drawn, [cv2.IMWRITE_JPEG_QUALITY, 90])
        payload["image"] = base64.b64encode(buf.tobytes()).decode("ascii")
    return payload
