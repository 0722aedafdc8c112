"""One prediction on one image, in PaddleX's result form: print it, save it as an image or as JSON.

Used by :class:`tutorial_lib.predict.Predictor` and reusable by pipelines::

    result.instances  # tutorial_lib.structures.Instances (boxes, scores, class_ids, masks, image size)
    result.boxes      # [{"cls_id": 0, "label": "airplane", "score": 0.93, "coordinate": [x1, y1, x2, y2]}, ...]
    result.masks      # (N, H, W) bool, full image size, same order as boxes
    result.json       # {"res": {"input_path", "page_index", "boxes", "masks": [RLE, ...]}}
"""
import json
from pathlib import Path

import numpy as np

from ..viz import draw_instances


def encode_rle(mask):
    """Bool (H, W) -> COCO RLE ``{"size": [H, W], "counts": str}`` (pycocotools' compact string form)."""
    from pycocotools import mask as mask_utils

    rle = mask_utils.encode(np.asfortranarray(np.asarray(mask, dtype=np.uint8)))
    return {"size": [int(v) for v in rle["size"]], "counts": rle["counts"].decode("ascii")}


def decode_rle(rle):
    """The inverse of :func:`encode_rle` -> bool (H, W)."""
    from pycocotools import mask as mask_utils

    return mask_utils.decode({"size": list(rle["size"]), "counts": rle["counts"].encode("ascii")}).astype(bool)


class InstanceSegResult:
    """The :class:`~tutorial_lib.structures.Instances` found in one image, their class names and the image itself,
    in PaddleX's result form."""

    def __init__(self, input_path, instances, labels=(), image=None, page_index=None, model_name=None):
        self.input_path = None if input_path is None else str(input_path)
        self.model_name = model_name  # the model that produced it (PaddleX's JSON has no field for it)
        self.page_index = page_index
        self.instances = instances
        self.labels = list(labels)
        self.image = image  # RGB uint8, kept for drawing

    def label(self, class_id):
        class_id = int(class_id)
        return self.labels[class_id] if 0 <= class_id < len(self.labels) else str(class_id)

    @property
    def boxes(self):
        """PaddleX's box records: ``cls_id``, ``label``, ``score``, ``coordinate`` [x1, y1, x2, y2]."""
        inst = self.instances
        return [{"cls_id": int(c), "label": self.label(c), "score": float(s), "coordinate": [float(v) for v in b]}
                for c, s, b in zip(inst.class_ids, inst.scores, inst.boxes)]

    @property
    def masks(self):
        """(N, H, W) bool masks at the image size."""
        return self.instances.full_masks()

    def __len__(self):
        return len(self.instances)

    def __repr__(self):
        return f"InstanceSegResult({self.input_path!r}, {len(self)} instances)"

    @property
    def json(self):
        return {"res": {"input_path": self.input_path, "page_index": self.page_index,
                        "boxes": self.boxes,
                        "masks": [encode_rle(self.instances.mask(i)) for i in range(len(self))]}}

    def str(self, indent=4, max_masks=3):
        data = self.json
        shown = data["res"]["masks"][:max_masks]
        data["res"]["masks"] = [{**m, "counts": m["counts"][:24] + ("..." if len(m["counts"]) > 24 else "")}
                                for m in shown] + ([f"... {len(self) - max_masks} more"]
                                                   if len(self) > max_masks else [])
        return json.dumps(data, indent=indent, ensure_ascii=False)

    def print(self, indent=4):
        print(self.str(indent=indent))

    def visualize(self):
        """The image with masks, boxes and labels drawn (RGB uint8)."""
        if self.image is None:
            if self.input_path is None:
                raise ValueError("this result keeps no image to draw on")
            from .inputs import read_image

            self.image = read_image(self.input_path)
        return draw_instances(self.image, self.instances, self.labels)

    def _target(self, save_path, suffix):
        path = Path(save_path)
        if path.suffix.lower() != suffix and (path.is_dir() or not path.suffix):
            stem = Path(self.input_path).stem if self.input_path else "result"
            path = path / f"{stem}_res{suffix}"
        path.parent.mkdir(parents=True, exist_ok=True)
        return path

    def save_to_img(self, save_path):
        """Draw the result and save it (``save_path``: a file, or a folder -> ``<stem>_res.png``)."""
        import cv2

        path = self._target(save_path, ".png") if Path(save_path).suffix.lower() not in (".jpg", ".jpeg", ".png") \
            else Path(save_path)
        path.parent.mkdir(parents=True, exist_ok=True)
        ok, buf = cv2.imencode(path.suffix or ".png", cv2.cvtColor(self.visualize(), cv2.COLOR_RGB2BGR))
        path.write_bytes(buf.tobytes())
        return str(path)

    def save_to_json(self, save_path):
        """Save :attr:`json` (``save_path``: a file, or a folder -> ``<stem>_res.json``)."""
        path = self._target(save_path, ".json")
        path.write_text(json.dumps(self.json, ensure_ascii=False, indent=1) + "\n", encoding="utf-8")
        return str(path)
