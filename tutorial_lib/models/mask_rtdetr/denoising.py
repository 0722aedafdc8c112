"""Denoising query groups (noised ground-truth labels and boxes) for training."""
import numpy as np
import paddle

from .layers import inverse_sigmoid

__all__ = ["get_denoising_training_group"]


def get_denoising_training_group(targets, num_classes, num_queries, class_embed, num_denoising=100,
                                 label_noise_ratio=0.5, box_noise_scale=1.0):
    """Build noised GT queries.

    targets: dict with lists ``gt_class`` (``[n_i, 1]`` int) and ``gt_bbox`` (``[n_i, 4]`` cxcywh in [0, 1]).
    Returns ``(dn_class_embed [b, n_dn, d], dn_bbox_unact [b, n_dn, 4], attn_mask [T, T] bool
    (True = may attend), dn_meta)`` or four ``None`` when there is nothing to denoise.
    """
    if num_denoising <= 0:
        return None, None, None, None
    num_gts = [int(t.shape[0]) for t in targets["gt_class"]]
    max_gt = max(num_gts) if num_gts else 0
    if max_gt == 0:
        return None, None, None, None
    num_group = max(1, num_denoising // max_gt)
    bs = len(num_gts)

    cls_np = np.full([bs, max_gt], num_classes, dtype="int64")
    pad_np = np.zeros([bs, max_gt], dtype="float32")
    boxes = []
    for i, n in enumerate(num_gts):
        if n > 0:
            cls_np[i, :n] = np.asarray(targets["gt_class"][i]).reshape([-1])
            pad_np[i, :n] = 1.0
        box = targets["gt_bbox"][i].astype("float32").reshape([-1, 4])
        if n < max_gt:
            box = paddle.concat([box, paddle.zeros([max_gt - n, 4], "float32")], 0)
        boxes.append(box)
    query_bbox = paddle.stack(boxes).tile([1, num_group, 1])
    cls_np = np.tile(cls_np, [1, num_group])
    pad_np = np.tile(pad_np, [1, num_group])
    # indices (within the dn block) of the positive queries of each image
    dn_positive_idx = [paddle.to_tensor(np.nonzero(pad_np[i])[0].astype("int64")) for i in range(bs)]
    n_dn = max_gt * num_group

    query_class = paddle.to_tensor(cls_np)
    if label_noise_ratio > 0:
        noise = (paddle.rand(query_class.shape) < label_noise_ratio * 0.5).astype("float32")
        noise = noise * paddle.to_tensor(pad_np)
        new_label = paddle.randint(0, num_classes, query_class.shape, dtype="int64")
        query_class = paddle.where(noise > 0, new_label, query_class)
    if box_noise_scale > 0:
        diff = paddle.concat([query_bbox[..., 2:] * 0.5, query_bbox[..., 2:]], axis=-1) * box_noise_scale
        diff = diff * (paddle.rand(query_bbox.shape) * 2.0 - 1.0)
        query_bbox = query_bbox + diff
    query_bbox_unact = inverse_sigmoid(query_bbox)

    embed = paddle.concat([class_embed, paddle.zeros([1, class_embed.shape[-1]], class_embed.dtype)])
    dn_class = paddle.gather(embed, query_class.flatten(), axis=0).reshape([bs, n_dn, -1])

    size = n_dn + num_queries
    blocked = np.zeros([size, size], dtype=bool)
    blocked[n_dn:, :n_dn] = True  # matching queries cannot see the denoising ones
    for g in range(num_group):  # denoising groups cannot see each other
        lo, hi = max_gt * g, max_gt * (g + 1)
        blocked[lo:hi, hi:n_dn] = True
        blocked[lo:hi, :lo] = True
    attn_mask = paddle.to_tensor(~blocked)
    dn_meta = {"dn_positive_idx": dn_positive_idx, "dn_num_group": num_group,
               "dn_num_split": [n_dn, num_queries]}
    return dn_class, query_bbox_unact, attn_mask, dn_meta


def injected_denoising_group(injected, class_embed, num_classes):
    """The denoising group from recorded draws instead of random ones (replaying a reference step).

    ``injected``: ``dn_labels [b, n_dn]`` (``num_classes`` = padding), ``dn_bbox_unact [b, n_dn, 4]``,
    ``dn_attn_mask [T, T]`` bool (True = may attend), ``dn_positive_idx`` (one index array per image),
    ``dn_num_group`` and ``dn_num_split`` ``[n_dn, num_queries]``. Returns what
    :func:`get_denoising_training_group` returns; the embedding lookup keeps its gradient.
    """
    labels = np.asarray(injected["dn_labels"]).astype("int64")
    if labels.min() < 0 or labels.max() > num_classes:
        raise ValueError(f"injected dn_labels must lie in [0, {num_classes}]")
    bs, n_dn = labels.shape
    embed = paddle.concat([class_embed, paddle.zeros([1, class_embed.shape[-1]], class_embed.dtype)])
    dn_class = paddle.gather(embed, paddle.to_tensor(labels.reshape([-1])), axis=0).reshape([bs, n_dn, -1])
    bbox = paddle.to_tensor(np.asarray(injected["dn_bbox_unact"], "float32"))
    attn_mask = paddle.to_tensor(np.asarray(injected["dn_attn_mask"], bool))
    split = [int(v) for v in injected["dn_num_split"]]
    if split[0] != n_dn or list(attn_mask.shape) != [sum(split)] * 2:
        raise ValueError(f"injected denoising group: dn_num_split {split} does not fit dn_labels {labels.shape} "
                         f"and dn_attn_mask {attn_mask.shape}")
    dn_meta = {"dn_positive_idx": [paddle.to_tensor(np.asarray(i, "int64")) for i in injected["dn_positive_idx"]],
               "dn_num_group": int(injected["dn_num_group"]), "dn_num_split": split}
    return dn_class, bbox, attn_mask, dn_meta
