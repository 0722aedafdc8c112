"""Drawing instances (masks, boxes, labels) on images, shared by data checks, predictions and notebooks."""
import colorsys

import cv2
import numpy as np

from .structures import Instances


def class_color(class_id):
    """A fixed, well separated RGB colour per class id (golden-ratio hue steps)."""
    hue = (class_id * 0.618033988749895) % 1.0
    r, g, b = colorsys.hsv_to_rgb(hue, 0.85, 1.0)
    return int(r * 255), int(g * 255), int(b * 255)


def draw_instances(image, instances, labels=None, show_scores=True, show_masks=True, show_boxes=True, alpha=0.45,
                   show_labels=True):
    """Return a copy of RGB ``image`` with each of ``instances`` (:class:`tutorial_lib.structures.Instances`)
    tinted, outlined, boxed and labelled.

    ``labels``: class names by class id (a list or dict; the id itself where missing); ``show_scores`` appends each
    score to its label; ``show_labels=False`` draws no label tags (crowded scenes).
    """
    out = np.ascontiguousarray(image[..., :3].copy())
    thickness = max(1, round(max(out.shape[:2]) / 400))
    font_scale = max(0.35, max(out.shape[:2]) / 1400)
    for i in range(len(instances)):
        class_id = int(instances.class_ids[i])
        color = class_color(class_id)
        if show_masks:
            crop, (x0, y0) = _mask_crop(instances, i)
            if crop.any():
                region = out[y0:y0 + crop.shape[0], x0:x0 + crop.shape[1]]  # a view: only the mask's box is touched
                region[crop] = (region[crop] * (1 - alpha) + np.array(color) * alpha).astype(np.uint8)
                contours, _ = cv2.findContours(crop.astype(np.uint8), cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_SIMPLE,
                                               offset=(int(x0), int(y0)))
                cv2.drawContours(out, contours, -1, color, thickness, cv2.LINE_AA)
        x1, y1, x2, y2 = (int(round(v)) for v in instances.boxes[i])
        if show_boxes:
            cv2.rectangle(out, (x1, y1), (x2, y2), color, thickness, cv2.LINE_AA)
        if not show_labels:
            continue
        text = _label(labels, class_id)
        if show_scores:
            text = f"{text} {float(instances.scores[i]):.2f}"
        (tw, th), base = cv2.getTextSize(text, cv2.FONT_HERSHEY_SIMPLEX, font_scale, 1)
        y_text = max(th + base, y1)
        cv2.rectangle(out, (x1, y_text - th - base), (x1 + tw, y_text), color, -1)
        cv2.putText(out, text, (x1, y_text - base), cv2.FONT_HERSHEY_SIMPLEX, font_scale, (0, 0, 0), 1, cv2.LINE_AA)
    return out


def _mask_crop(instances, i):
    """Instance ``i``'s mask cut to its pixels' bounding box, and the box's top-left corner (x, y): drawing then
    costs the object's area, not the image's (a full mask is scanned once, by rows and columns)."""
    if instances.cropped:
        crop, offset = instances.masks[i], instances.mask_offsets[i]
        h, w = instances.image_size
        x0, y0 = int(offset[0]), int(offset[1])
        crop = crop[max(0, -y0):max(0, h - y0), max(0, -x0):max(0, w - x0)]  # the part inside the image
        return crop, (max(0, x0), max(0, y0))
    mask = instances.masks[i]
    rows, cols = np.flatnonzero(mask.any(1)), np.flatnonzero(mask.any(0))
    if not len(rows):
        return np.zeros((0, 0), bool), (0, 0)
    return mask[rows[0]:rows[-1] + 1, cols[0]:cols[-1] + 1], (int(cols[0]), int(rows[0]))


def _label(labels, class_id):
    if isinstance(labels, dict):
        return str(labels.get(class_id, class_id))
    if labels is not None and 0 <= class_id < len(labels):
        return str(labels[class_id])
    return str(class_id)


def coco_instances(coco, image_id):
    """The ground truth of one image of a ``pycocotools.coco.COCO`` object as :class:`Instances` (class ids are
    the COCO category ids; scores 1)."""
    info = coco.imgs[image_id]
    anns = coco.loadAnns(coco.getAnnIds(imgIds=[image_id]))
    size = (int(info["height"]), int(info["width"]))
    masks = np.array([coco.annToMask(a) for a in anns], bool).reshape(len(anns), *size)
    boxes = [[a["bbox"][0], a["bbox"][1], a["bbox"][0] + a["bbox"][2], a["bbox"][1] + a["bbox"][3]] for a in anns]
    return Instances(size, boxes, np.ones(len(anns)), [a["category_id"] for a in anns], masks)


def draw_coco_image(coco, image_id, image):
    """Draw the ground truth of one image of a ``pycocotools.coco.COCO`` object."""
    names = {cat_id: cat["name"] for cat_id, cat in coco.cats.items()}
    return draw_instances(image, coco_instances(coco, image_id), names, show_scores=False)
