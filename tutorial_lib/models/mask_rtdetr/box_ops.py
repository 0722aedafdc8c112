"""Box and mask geometry helpers (paddle tensors)."""
import paddle

__all__ = ["box_cxcywh_to_xyxy", "box_xyxy_to_cxcywh", "mask_to_box_coordinate", "generalized_box_iou", "box_iou"]


def box_cxcywh_to_xyxy(x):
    cxcy, wh = paddle.split(x, 2, axis=-1)
    return paddle.concat([cxcy - 0.5 * wh, cxcy + 0.5 * wh], axis=-1)


def box_xyxy_to_cxcywh(x):
    x1, y1, x2, y2 = x.split(4, axis=-1)
    return paddle.concat([(x1 + x2) / 2, (y1 + y2) / 2, x2 - x1, y2 - y1], axis=-1)


def mask_to_box_coordinate(mask, normalize=False, fmt="xyxy"):
    """Tight box around each boolean mask ``[b, n, h, w]`` -> ``[b, n, 4]`` (0 for empty masks).

    ``fmt="cxcywh"`` converts the box; coordinates are pixel edges (max index + 1).
    """
    h, w = mask.shape[-2:]
    y, x = paddle.meshgrid(paddle.arange(end=h, dtype="float32"), paddle.arange(end=w, dtype="float32"))
    maskf = mask.astype("float32")
    big = paddle.full([1], 1e8, dtype="float32")
    x_mask = x * maskf
    x_max = x_mask.flatten(-2).max(-1) + 1
    x_min = paddle.where(mask, x_mask, big).flatten(-2).min(-1)
    y_mask = y * maskf
    y_max = y_mask.flatten(-2).max(-1) + 1
    y_min = paddle.where(mask, y_mask, big).flatten(-2).min(-1)
    box = paddle.stack([x_min, y_min, x_max, y_max], axis=-1)
    nonempty = mask.any(axis=[2, 3]).unsqueeze(2).astype("float32")
    box = box * nonempty
    if normalize:
        box = box / paddle.to_tensor([w, h, w, h], dtype="float32")
    return box if fmt == "xyxy" else box_xyxy_to_cxcywh(box)


def box_iou(boxes1, boxes2):
    """Pairwise IoU of xyxy boxes ``[N, 4]`` x ``[M, 4]``; returns (iou, union)."""
    area1 = (boxes1[:, 2] - boxes1[:, 0]) * (boxes1[:, 3] - boxes1[:, 1])
    area2 = (boxes2[:, 2] - boxes2[:, 0]) * (boxes2[:, 3] - boxes2[:, 1])
    lt = paddle.maximum(boxes1[:, None, :2], boxes2[None, :, :2])
    rb = paddle.minimum(boxes1[:, None, 2:], boxes2[None, :, 2:])
    wh = (rb - lt).clip(min=0)
    inter = wh[..., 0] * wh[..., 1]
    union = area1[:, None] + area2[None, :] - inter
    return inter / (union + 1e-10), union


def generalized_box_iou(boxes1, boxes2):
    """Pairwise GIoU of xyxy boxes ``[N, 4]`` x ``[M, 4]``."""
    iou, union = box_iou(boxes1, boxes2)
    lt = paddle.minimum(boxes1[:, None, :2], boxes2[None, :, :2])
    rb = paddle.maximum(boxes1[:, None, 2:], boxes2[None, :, 2:])
    wh = (rb - lt).clip(min=0)
    area = wh[..., 0] * wh[..., 1]
    return iou - (area - union) / (area + 1e-10)
