"""Training losses: Hungarian matching, varifocal class loss, L1 + GIoU, point-sampled mask BCE + dice,
denoising groups and auxiliary (encoder, initial and intermediate decoder) losses."""
import numpy as np
import paddle
import paddle.nn as nn
import paddle.nn.functional as F
from scipy.optimize import linear_sum_assignment

from .box_ops import box_cxcywh_to_xyxy, generalized_box_iou
from .configs import LOSS_CONFIG

__all__ = ["HungarianMatcher", "MaskDINOLoss", "paired_box_iou", "varifocal_loss_with_logits"]


def varifocal_loss_with_logits(logits, gt_score, label, normalizer=1.0, alpha=0.75, gamma=2.0):
    score = F.sigmoid(logits)
    weight = alpha * score.pow(gamma) * (1 - label) + gt_score * label
    loss = F.binary_cross_entropy_with_logits(logits, gt_score, weight=weight, reduction="none")
    return loss.mean(1).sum() / normalizer


def paired_box_iou(boxes1, boxes2, eps=1e-9):
    """IoU of matching rows of two xyxy box sets ``[N, 4]`` (the reference's ``bbox_iou``: areas clipped at 0,
    ``eps`` added to the union); the varifocal target of the box-IoU sets."""
    x1 = paddle.maximum(boxes1[:, 0], boxes2[:, 0])
    y1 = paddle.maximum(boxes1[:, 1], boxes2[:, 1])
    x2 = paddle.minimum(boxes1[:, 2], boxes2[:, 2])
    y2 = paddle.minimum(boxes1[:, 3], boxes2[:, 3])
    overlap = (x2 - x1).clip(min=0) * (y2 - y1).clip(min=0)
    area1 = ((boxes1[:, 2] - boxes1[:, 0]) * (boxes1[:, 3] - boxes1[:, 1])).clip(min=0)
    area2 = ((boxes2[:, 2] - boxes2[:, 0]) * (boxes2[:, 3] - boxes2[:, 1])).clip(min=0)
    return overlap / (area1 + area2 - overlap + eps)


def _sample(masks, points):
    """Bilinear values of ``masks [n, h, w]`` at ``points [n|1, p, 2]`` in [0, 1] -> ``[n, p]``."""
    grid = (2.0 * points - 1.0).unsqueeze(1)
    if grid.shape[0] != masks.shape[0]:
        grid = grid.tile([masks.shape[0], 1, 1, 1])
    return F.grid_sample(masks.unsqueeze(1), grid, align_corners=False).squeeze([1, 2])


def _dice(inputs, targets, num_gts):
    inputs = F.sigmoid(inputs).flatten(1)
    targets = targets.flatten(1)
    num = 2 * (inputs * targets).sum(1)
    den = inputs.sum(-1) + targets.sum(-1)
    return (1 - (num + 1) / (den + 1)).sum() / num_gts


class HungarianMatcher(nn.Layer):
    """One-to-one assignment minimising focal class + L1 + GIoU (+ mask BCE + dice on random points)."""

    def __init__(self, coeff=None, num_sample_points=12544, alpha=0.25, gamma=2.0):
        super().__init__()
        self.coeff = dict(coeff or LOSS_CONFIG["matcher_coeff"])
        self.num_sample_points = num_sample_points
        self.alpha, self.gamma = alpha, gamma

    @paddle.no_grad()
    def forward(self, boxes, logits, gt_bbox, gt_class, masks=None, gt_mask=None, points=None, costs=None):
        """Per image ``(query indices, gt indices)``. ``points`` ``[b, 1, P, 2]`` in [0, 1) replaces the random
        mask-cost points (replay hook); a list ``costs`` receives each image's cost matrix (numpy)."""
        indices = []
        for b in range(boxes.shape[0]):
            n = int(gt_class[b].shape[0])
            if n == 0:
                indices.append((np.zeros([0], "int64"), np.zeros([0], "int64")))
                if costs is not None:
                    costs.append(np.zeros([boxes.shape[1], 0], "float32"))
                continue
            prob = F.sigmoid(logits[b])
            labels = gt_class[b].reshape([-1]).astype("int64")
            p = paddle.gather(prob, labels, axis=1)
            neg = (1 - self.alpha) * p.pow(self.gamma) * (-(1 - p + 1e-8).log())
            pos = self.alpha * (1 - p).pow(self.gamma) * (-(p + 1e-8).log())
            cost = self.coeff["class"] * (pos - neg)
            tgt = gt_bbox[b].astype("float32")
            cost += self.coeff["bbox"] * (boxes[b].unsqueeze(1) - tgt.unsqueeze(0)).abs().sum(-1)
            cost -= self.coeff["giou"] * generalized_box_iou(box_cxcywh_to_xyxy(boxes[b]), box_cxcywh_to_xyxy(tgt))
            if masks is not None and gt_mask is not None:
                if points is None:
                    pts = paddle.rand([1, self.num_sample_points, 2])
                else:
                    pts = paddle.to_tensor(np.asarray(points[b], "float32")).reshape([1, -1, 2])
                out_m = _sample(masks[b], pts)
                tgt_m = _sample(gt_mask[b].astype("float32"), pts)
                pos_m = F.binary_cross_entropy_with_logits(out_m, paddle.ones_like(out_m), reduction="none")
                neg_m = F.binary_cross_entropy_with_logits(out_m, paddle.zeros_like(out_m), reduction="none")
                cost_mask = (pos_m @ tgt_m.t() + neg_m @ (1 - tgt_m).t()) / self.num_sample_points
                sig = F.sigmoid(out_m)
                cost_dice = 1 - (2 * sig @ tgt_m.t() + 1) / (sig.sum(-1, keepdim=True) + tgt_m.sum(-1).unsqueeze(0) + 1)
                cost += self.coeff["mask"] * cost_mask + self.coeff["dice"] * cost_dice
            cost = cost.numpy()
            if costs is not None:
                costs.append(cost)
            row, col = linear_sum_assignment(cost)
            indices.append((row.astype("int64"), col.astype("int64")))
        return indices


class MaskDINOLoss(nn.Layer):
    """Loss of MaskRTDETR's training outputs; returns a dict of named terms plus their sum as ``loss``."""

    def __init__(self, num_classes=80, loss_coeff=None, aux_loss=True, num_sample_points=12544,
                 oversample_ratio=3.0, important_sample_ratio=0.75, matcher=None):
        super().__init__()
        self.num_classes = num_classes
        self.coeff = dict(loss_coeff or LOSS_CONFIG["loss_coeff"])
        self.aux_loss = aux_loss
        self.matcher = matcher or HungarianMatcher(num_sample_points=num_sample_points)
        self.num_sample_points = num_sample_points
        self.num_oversample = int(num_sample_points * oversample_ratio)
        self.num_important = int(num_sample_points * important_sample_ratio)
        # replay hooks (default off: points are drawn at random). ``matcher_points(k)`` -> ``[b, 1, P, 2]`` for
        # the k-th matcher call of a forward, ``loss_points(c)`` -> ``[n_pairs, P, 2]`` for the c-th mask-loss
        # call (calls in loss order: main set, auxiliary sets, then the same for the denoising part).
        self.matcher_points = None
        self.loss_points = None
        self.trace = None  # set to a list to record one dict per loss call (numpy; for parity tests)
        self._calls = {"match": 0, "mask": 0}

    # ---------------------------------------------------------------- terms
    @staticmethod
    def _gather(src, idx):
        parts = [paddle.gather(src[b], paddle.to_tensor(i), axis=0) for b, (i, _) in enumerate(idx) if len(i)]
        return paddle.concat(parts) if parts else None

    @staticmethod
    def _gather_gt(gts, idx):
        parts = [paddle.gather(gts[b], paddle.to_tensor(j), axis=0) for b, (_, j) in enumerate(idx) if len(j)]
        return paddle.concat(parts) if parts else None

    def _class_loss(self, logits, gt_class, idx, num_gts, iou):
        bs, nq = logits.shape[:2]
        label = np.full([bs, nq], self.num_classes, "int64")
        score = np.zeros([bs, nq], "float32")
        iou_np = iou.numpy().reshape([-1]) if iou is not None else None
        k = 0
        for b, (i, j) in enumerate(idx):
            label[b, i] = gt_class[b].numpy().reshape([-1])[j]
            if iou_np is not None:
                score[b, i] = iou_np[k:k + len(i)]
            k += len(i)
        onehot = F.one_hot(paddle.to_tensor(label), self.num_classes + 1)[..., :-1]
        target = paddle.to_tensor(score).unsqueeze(-1) * onehot
        return self.coeff["class"] * varifocal_loss_with_logits(logits, target, onehot, num_gts / nq)

    def _box_loss(self, src, tgt, num_gts):
        l1 = self.coeff["bbox"] * (src - tgt).abs().sum() / num_gts
        giou = paddle.diag(generalized_box_iou(box_cxcywh_to_xyxy(src), box_cxcywh_to_xyxy(tgt)))
        return l1, self.coeff["giou"] * (1 - giou).sum() / num_gts

    def _uncertain_points(self, masks):
        pts = paddle.rand([masks.shape[0], self.num_oversample, 2])
        unc = -_sample(masks.detach(), pts).abs()
        _, ind = paddle.topk(unc, self.num_important, axis=1)
        pts = paddle.take_along_axis(pts, ind.unsqueeze(-1).tile([1, 1, 2]), 1)
        n_rand = self.num_sample_points - self.num_important
        if n_rand > 0:
            pts = paddle.concat([pts, paddle.rand([masks.shape[0], n_rand, 2])], 1)
        return pts

    def _mask_loss(self, src_m, tgt_m, num_gts):
        call = self._calls["mask"]
        self._calls["mask"] += 1
        if self.loss_points is None:
            pts = self._uncertain_points(src_m)
        else:
            pts = paddle.to_tensor(np.asarray(self.loss_points(call), "float32"))
            if list(pts.shape[:1]) != [src_m.shape[0]] or pts.shape[-1] != 2:
                raise ValueError(f"loss_points({call}) has shape {pts.shape}; expected [{src_m.shape[0]}, P, 2]")
        src = _sample(src_m, pts)
        tgt = _sample(tgt_m, pts).detach()
        bce = F.binary_cross_entropy_with_logits(src, tgt, reduction="none").mean(1).sum() / num_gts
        return self.coeff["mask"] * bce, self.coeff["dice"] * _dice(src, tgt, num_gts)

    @staticmethod
    def _mask_iou(src_m, tgt_m):
        src = F.interpolate(src_m.unsqueeze(0), scale_factor=2, mode="bilinear", align_corners=False)[0]
        tgt = F.interpolate(tgt_m.unsqueeze(0), size=src.shape[-2:], mode="bilinear", align_corners=False)[0]
        src = (F.sigmoid(src.flatten(1)) > 0.5).astype("float32")
        tgt = (tgt.flatten(1) > 0.5).astype("float32")
        inter = (src * tgt).sum(1)
        union = src.sum(1) + tgt.sum(1) - inter
        return ((inter + 1e-2) / (union + 1e-2)).unsqueeze(-1)

    def _layer_loss(self, boxes, logits, masks, gts, num_gts, idx=None, iou_type="bbox"):
        gt_class, gt_bbox, gt_mask = gts
        record = {} if isinstance(self.trace, list) else None
        if idx is None:
            call = self._calls["match"]
            self._calls["match"] += 1
            points = None if self.matcher_points is None else self.matcher_points(call)
            costs = [] if record is not None else None
            idx = self.matcher(boxes, logits, gt_bbox, gt_class, masks, gt_mask, points=points, costs=costs)
            if record is not None:
                record["cost"] = costs
        src_b = self._gather(boxes, idx)
        zero = paddle.zeros([1])
        if src_b is None:  # no ground truth in the batch
            return {"class": self._class_loss(logits, gt_class, idx, num_gts, None),
                    "bbox": zero, "giou": zero, "mask": zero, "dice": zero}
        tgt_b = self._gather_gt([g.astype("float32") for g in gt_bbox], idx)
        src_m = self._gather(masks, idx)
        tgt_m = self._gather_gt(gt_mask, idx)
        if iou_type == "mask":
            iou = self._mask_iou(src_m.detach(), tgt_m)
        else:
            iou = paired_box_iou(box_cxcywh_to_xyxy(src_b.detach()), box_cxcywh_to_xyxy(tgt_b)).unsqueeze(-1)
        out = {"class": self._class_loss(logits, gt_class, idx, num_gts, iou)}
        out["bbox"], out["giou"] = self._box_loss(src_b, tgt_b, num_gts)
        out["mask"], out["dice"] = self._mask_loss(src_m, tgt_m, num_gts)
        if record is not None:
            flat = masks.detach().flatten(2)
            record.update(
                logits=logits.numpy(), boxes=boxes.numpy(), num_gts=num_gts, iou_type=iou_type,
                mask_stats=paddle.stack([flat.mean(-1), flat.std(-1, unbiased=False), flat.min(-1),
                                         flat.max(-1)], -1).numpy(),
                src=np.concatenate([i for i, _ in idx]), tgt=np.concatenate([j for _, j in idx]),
                matched_masks=src_m.numpy(), vfl_iou=iou.numpy().reshape([-1]),
                terms={k: float(v) for k, v in out.items()})
            self.trace.append(record)
        return out

    def _stack_loss(self, boxes, logits, masks, gts, num_gts, postfix, idx=None):
        """Last layer with mask-IoU VFL targets, earlier layers as auxiliary terms (box-IoU targets)."""
        losses = {}
        main = self._layer_loss(boxes[-1], logits[-1], masks[-1], gts, num_gts, idx, iou_type="mask")
        losses.update({f"loss_{k}{postfix}": v for k, v in main.items()})
        if self.aux_loss:
            aux = {}
            for layer in range(boxes.shape[0] - 1):
                part = self._layer_loss(boxes[layer], logits[layer], masks[layer], gts, num_gts, idx)
                for k, v in part.items():
                    aux[k] = aux[k] + v if k in aux else v
            losses.update({f"loss_{k}_aux{postfix}": v for k, v in aux.items()})
        return losses

    # ---------------------------------------------------------------- entry point
    def forward(self, transformer_out, inputs):
        logits, boxes, masks, enc_out, init_out, dn_meta = transformer_out
        self._calls = {"match": 0, "mask": 0}
        gt_class = [paddle.to_tensor(g).astype("int64") for g in inputs["gt_class"]]
        gt_bbox = [paddle.to_tensor(g).astype("float32") for g in inputs["gt_bbox"]]
        gt_mask = [paddle.to_tensor(g).astype("float32") for g in inputs["gt_segm"]]
        gts = (gt_class, gt_bbox, gt_mask)
        num_gts = float(max(sum(int(g.shape[0]) for g in gt_class), 1))

        if dn_meta is not None:
            split = dn_meta["dn_num_split"]
            dn_logits, logits = paddle.split(logits, split, axis=2)
            dn_boxes, boxes = paddle.split(boxes, split, axis=2)
            dn_masks, masks = paddle.split(masks, split, axis=2)
            if init_out is not None:
                il, ib, im = init_out
                il_dn, il = paddle.split(il, split, axis=1)
                ib_dn, ib = paddle.split(ib, split, axis=1)
                im_dn, im = paddle.split(im, split, axis=1)
                logits, boxes, masks = (paddle.concat([il.unsqueeze(0), logits]),
                                        paddle.concat([ib.unsqueeze(0), boxes]),
                                        paddle.concat([im.unsqueeze(0), masks]))
                dn_logits, dn_boxes, dn_masks = (paddle.concat([il_dn.unsqueeze(0), dn_logits]),
                                                 paddle.concat([ib_dn.unsqueeze(0), dn_boxes]),
                                                 paddle.concat([im_dn.unsqueeze(0), dn_masks]))
        el, eb, em = enc_out
        logits = paddle.concat([el.unsqueeze(0), logits])
        boxes = paddle.concat([eb.unsqueeze(0), boxes])
        masks = paddle.concat([em.unsqueeze(0), masks])

        losses = self._stack_loss(boxes, logits, masks, gts, num_gts, "")
        if dn_meta is not None:
            groups = dn_meta["dn_num_group"]
            dn_idx = []
            for b, g in enumerate(gt_class):
                n = int(g.shape[0])
                src = dn_meta["dn_positive_idx"][b].numpy().astype("int64")
                dn_idx.append((src, np.tile(np.arange(n, dtype="int64"), groups)) if n else
                              (np.zeros([0], "int64"), np.zeros([0], "int64")))
            losses.update(self._stack_loss(dn_boxes, dn_logits, dn_masks, gts, num_gts * groups, "_dn", dn_idx))
        losses["loss"] = paddle.add_n([v.reshape([-1])[0:1] for v in losses.values()])
        return losses
