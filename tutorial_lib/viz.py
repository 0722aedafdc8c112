"""Drawing instances (masks, boxes, labels) on images, shared by data checks, predictions and notebooks."""
import colorsys

import cv2
import numpy as np


def class_color(class_id):
    """A fixed, well separated RGB colour per class id (golden-ratio hue steps)."""
    hue = (class_id * 0.618033988749895) % 1.0
    r, g, b = colorsys.hsv_to_rgb(hue, 0.85, 1.0)
    return int(r * 255), int(g * 255), int(b * 255)


def draw_instances(image, masks=None, boxes=None, class_ids=(), labels=None, scores=None, alpha=0.45):
    """Return a copy of RGB ``image`` with each instance's mask tinted, outlined and labelled.

    ``masks``: (N, H, W) bool/0-1 array or list; ``boxes``: (N, 4) x1, y1, x2, y2; ``labels``: names;
    ``scores``: optional confidences appended to the labels.
    """
    out = np.ascontiguousarray(image[..., :3].copy())
    n = len(class_ids)
    thickness = max(1, round(max(out.shape[:2]) / 400))
    font_scale = max(0.35, max(out.shape[:2]) / 1400)
    for i in range(n):
        color = class_color(int(class_ids[i]))
        if masks is not None:
            mask = np.asarray(masks[i]).astype(bool)
            out[mask] = (out[mask] * (1 - alpha) + np.array(color) * alpha).astype(np.uint8)
            contours, _ = cv2.findContours(mask.astype(np.uint8), cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_SIMPLE)
            cv2.drawContours(out, contours, -1, color, thickness, cv2.LINE_AA)
        if boxes is not None:
            x1, y1, x2, y2 = (int(round(v)) for v in boxes[i])
            cv2.rectangle(out, (x1, y1), (x2, y2), color, thickness, cv2.LINE_AA)
        else:
            ys, xs = np.nonzero(np.asarray(masks[i])) if masks is not None else ([], [])
            if len(xs) == 0:
                continue
            x1, y1 = int(xs.min()), int(ys.min())
        text = labels[i] if labels is not None else str(int(class_ids[i]))
        if scores is not None:
            text = f"{text} {float(scores[i]):.2f}"
        (tw, th), base = cv2.getTextSize(text, cv2.FONT_HERSHEY_SIMPLEX, font_scale, 1)
        y_text = max(th + base, y1)
        cv2.rectangle(out, (x1, y_text - th - base), (x1 + tw, y_text), color, -1)
        cv2.putText(out, text, (x1, y_text - base), cv2.FONT_HERSHEY_SIMPLEX, font_scale, (0, 0, 0), 1, cv2.LINE_AA)
    return out


def draw_coco_image(coco, image_id, image):
    """Draw the ground truth of one image of a ``pycocotools.coco.COCO`` object."""
    anns = coco.loadAnns(coco.getAnnIds(imgIds=[image_id]))
    masks = [coco.annToMask(a) for a in anns]
    boxes = [[a["bbox"][0], a["bbox"][1], a["bbox"][0] + a["bbox"][2], a["bbox"][1] + a["bbox"][3]] for a in anns]
    class_ids = [a["category_id"] for a in anns]
    labels = [coco.cats[c]["name"] for c in class_ids]
    return draw_instances(image, masks if masks else None, boxes if boxes else None, class_ids, labels)
