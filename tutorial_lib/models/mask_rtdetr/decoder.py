"""Mask RT-DETR transformer: query selection with mask-enhanced boxes, deformable decoder, shared heads."""
import math

import paddle
import paddle.nn as nn
import paddle.nn.functional as F
from paddle import ParamAttr

from .box_ops import mask_to_box_coordinate
from .denoising import get_denoising_training_group, injected_denoising_group
from .layers import (MLP, MultiHeadAttention, bias_init_with_prob, constant_, inverse_sigmoid,
                     linear_init_, no_decay_attr, xavier_uniform_)

__all__ = ["MaskRTDETRTransformer", "MSDeformableAttention", "TransformerDecoderLayer"]


def deformable_attention_core(value, spatial_shapes, sampling_locations, attention_weights):
    """Multi-scale deformable attention with ``grid_sample``.

    value ``[bs, Lv, heads, c]``; spatial_shapes list of (h, w); sampling_locations
    ``[bs, Lq, heads, levels, points, 2]`` in [0, 1]; attention_weights ``[bs, Lq, heads, levels, points]``.
    """
    bs, _, n_head, c = value.shape
    _, len_q, _, n_levels, n_points, _ = sampling_locations.shape
    value_list = value.split([h * w for h, w in spatial_shapes], axis=1)
    grids = 2 * sampling_locations - 1
    sampled = []
    for level, (h, w) in enumerate(spatial_shapes):
        value_l = value_list[level].flatten(2).transpose([0, 2, 1]).reshape([-1, c, h, w])
        grid_l = grids[:, :, :, level].transpose([0, 2, 1, 3, 4]).flatten(0, 1)
        sampled.append(F.grid_sample(value_l, grid_l, mode="bilinear", padding_mode="zeros",
                                     align_corners=False))
    attention_weights = attention_weights.transpose([0, 2, 1, 3, 4]).reshape(
        [-1, 1, len_q, n_levels * n_points])
    out = (paddle.stack(sampled, axis=-2).flatten(-2) * attention_weights).sum(-1)
    return out.reshape([-1, n_head * c, len_q]).transpose([0, 2, 1])


class MSDeformableAttention(nn.Layer):
    def __init__(self, embed_dim=256, num_heads=8, num_levels=3, num_points=4, lr_mult=1.0):
        super().__init__()
        self.embed_dim, self.num_heads = embed_dim, num_heads
        self.num_levels, self.num_points = num_levels, num_points
        self.head_dim = embed_dim // num_heads
        total = num_heads * num_levels * num_points
        self.sampling_offsets = nn.Linear(embed_dim, total * 2, weight_attr=ParamAttr(learning_rate=lr_mult),
                                          bias_attr=ParamAttr(learning_rate=lr_mult))
        self.attention_weights = nn.Linear(embed_dim, total)
        self.value_proj = nn.Linear(embed_dim, embed_dim)
        self.output_proj = nn.Linear(embed_dim, embed_dim)
        self._reset_parameters()

    def _reset_parameters(self):
        constant_(self.sampling_offsets.weight)
        thetas = paddle.arange(self.num_heads, dtype="float32") * (2.0 * math.pi / self.num_heads)
        grid = paddle.stack([thetas.cos(), thetas.sin()], -1)
        grid = grid / grid.abs().max(-1, keepdim=True)
        grid = grid.reshape([self.num_heads, 1, 1, 2]).tile([1, self.num_levels, self.num_points, 1])
        grid *= paddle.arange(1, self.num_points + 1, dtype="float32").reshape([1, 1, -1, 1])
        self.sampling_offsets.bias.set_value(grid.flatten())
        constant_(self.attention_weights.weight)
        constant_(self.attention_weights.bias)
        xavier_uniform_(self.value_proj.weight)
        constant_(self.value_proj.bias)
        xavier_uniform_(self.output_proj.weight)
        constant_(self.output_proj.bias)

    def forward(self, query, reference_points, value, spatial_shapes):
        """reference_points: ``[bs, Lq, 1, 4]`` sigmoid cxcywh boxes."""
        bs, len_q = query.shape[:2]
        len_v = value.shape[1]
        value = self.value_proj(value).reshape([0, len_v, self.num_heads, self.head_dim])
        offsets = self.sampling_offsets(query).reshape(
            [0, len_q, self.num_heads, self.num_levels, self.num_points, 2])
        weights = self.attention_weights(query).reshape(
            [0, len_q, self.num_heads, self.num_levels * self.num_points])
        weights = F.softmax(weights).reshape([-1, len_q, self.num_heads, self.num_levels, self.num_points])
        locations = (reference_points[:, :, None, :, None, :2] + offsets / self.num_points
                     * reference_points[:, :, None, :, None, 2:] * 0.5)
        out = deformable_attention_core(value, spatial_shapes, locations, weights)
        return self.output_proj(out)


class TransformerDecoderLayer(nn.Layer):
    """Self-attention, deformable cross-attention, ReLU FFN; post-norm."""

    def __init__(self, d_model=256, n_head=8, dim_feedforward=1024, dropout=0.0, n_levels=3, n_points=4):
        super().__init__()
        self.self_attn = MultiHeadAttention(d_model, n_head, dropout)
        self.norm1 = nn.LayerNorm(d_model, weight_attr=no_decay_attr(), bias_attr=no_decay_attr())
        self.cross_attn = MSDeformableAttention(d_model, n_head, n_levels, n_points, 1.0)
        self.norm2 = nn.LayerNorm(d_model, weight_attr=no_decay_attr(), bias_attr=no_decay_attr())
        self.linear1 = nn.Linear(d_model, dim_feedforward)
        self.linear2 = nn.Linear(dim_feedforward, d_model)
        self.norm3 = nn.LayerNorm(d_model, weight_attr=no_decay_attr(), bias_attr=no_decay_attr())
        self.dropout = dropout
        linear_init_(self.linear1)
        linear_init_(self.linear2)
        xavier_uniform_(self.linear1.weight)
        xavier_uniform_(self.linear2.weight)

    def _drop(self, x):
        return F.dropout(x, self.dropout, training=self.training) if self.dropout else x

    def forward(self, tgt, reference_points, memory, spatial_shapes, attn_mask=None, query_pos_embed=None):
        q = k = tgt + query_pos_embed
        tgt = self.norm1(tgt + self._drop(self.self_attn(q, k, tgt, attn_mask=attn_mask)))
        tgt2 = self.cross_attn(tgt + query_pos_embed, reference_points, memory, spatial_shapes)
        tgt = self.norm2(tgt + self._drop(tgt2))
        tgt2 = self.linear2(self._drop(F.relu(self.linear1(tgt))))
        return self.norm3(tgt + self._drop(tgt2))


class MaskTransformerDecoder(nn.Layer):
    def __init__(self, num_layers, eval_idx=-1, **layer_kwargs):
        super().__init__()
        self.layers = nn.LayerList([TransformerDecoderLayer(**layer_kwargs) for _ in range(num_layers)])
        self.num_layers = num_layers
        self.eval_idx = eval_idx if eval_idx >= 0 else num_layers + eval_idx


class MaskRTDETRTransformer(nn.Layer):
    """State-dict prefix ``transformer.``; heads are shared by the encoder stage and every decoder layer."""

    def __init__(self, num_classes=80, hidden_dim=256, num_queries=300, backbone_feat_channels=(256, 256, 256),
                 feat_strides=(8, 16, 32), num_prototypes=32, num_levels=3, num_decoder_points=4, nhead=8,
                 num_decoder_layers=6, dim_feedforward=1024, dropout=0.0, activation="relu",
                 num_denoising=100, label_noise_ratio=0.5, box_noise_scale=1.0, learnt_init_query=False,
                 query_pos_head_inv_sig=False, mask_enhanced=True, eval_size=None, eval_idx=-1, eps=1e-2,
                 position_embed_type="sine"):
        super().__init__()
        assert activation == "relu" and not learnt_init_query and len(backbone_feat_channels) == num_levels
        self.hidden_dim = hidden_dim
        self.num_classes = num_classes
        self.num_queries = num_queries
        self.feat_strides = list(feat_strides)
        self.num_levels = num_levels
        self.eps = eps
        self.mask_enhanced = mask_enhanced
        self.eval_size = eval_size
        self.query_pos_head_inv_sig = query_pos_head_inv_sig
        self.num_denoising = num_denoising
        self.label_noise_ratio = label_noise_ratio
        self.box_noise_scale = box_noise_scale

        self.input_proj = nn.LayerList([
            nn.Sequential(("conv", nn.Conv2D(c, hidden_dim, 1, bias_attr=False)),
                          ("norm", nn.BatchNorm2D(hidden_dim, weight_attr=no_decay_attr(),
                                                  bias_attr=no_decay_attr())))
            for c in backbone_feat_channels])
        self.decoder = MaskTransformerDecoder(num_decoder_layers, eval_idx, d_model=hidden_dim, n_head=nhead,
                                              dim_feedforward=dim_feedforward, dropout=dropout,
                                              n_levels=num_levels, n_points=num_decoder_points)
        self.denoising_class_embed = nn.Embedding(
            num_classes, hidden_dim, weight_attr=ParamAttr(initializer=nn.initializer.Normal()))
        self.query_pos_head = MLP(4, 2 * hidden_dim, hidden_dim, num_layers=2)
        self.mask_query_head = MLP(hidden_dim, hidden_dim, num_prototypes, num_layers=3)
        self.enc_output = nn.Sequential(
            nn.Linear(hidden_dim, hidden_dim),
            nn.LayerNorm(hidden_dim, weight_attr=no_decay_attr(), bias_attr=no_decay_attr()))
        self.dec_norm = nn.LayerNorm(hidden_dim, weight_attr=no_decay_attr(), bias_attr=no_decay_attr())
        self.score_head = nn.Linear(hidden_dim, num_classes)
        self.bbox_head = MLP(hidden_dim, hidden_dim, 4, num_layers=3)
        self._reset_parameters()
        self._anchor_cache = {}
        self.debug = None  # set to a dict to record intermediates (dygraph only)
        # replay hooks (default off; training draws randomly): a dict for injected_denoising_group, and the
        # encoder's query selection ``[b, num_queries]`` (token indices in selection order) instead of top-k
        self.injected_denoising = None
        self.injected_topk = None

    def _reset_parameters(self):
        linear_init_(self.score_head)
        constant_(self.score_head.bias, bias_init_with_prob(0.01))
        constant_(self.bbox_head.layers[-1].weight)
        constant_(self.bbox_head.layers[-1].bias)
        linear_init_(self.enc_output[0])
        xavier_uniform_(self.enc_output[0].weight)
        xavier_uniform_(self.query_pos_head.layers[0].weight)
        xavier_uniform_(self.query_pos_head.layers[1].weight)
        for proj in self.input_proj:
            xavier_uniform_(proj[0].weight)

    # ------------------------------------------------------------------ helpers
    def _record(self, name, value):
        if isinstance(self.debug, dict):
            self.debug[name] = value

    def _generate_anchors(self, spatial_shapes, grid_size=0.05):
        anchors = []
        for lvl, (h, w) in enumerate(spatial_shapes):
            grid_y, grid_x = paddle.meshgrid(paddle.arange(end=h, dtype="float32"),
                                             paddle.arange(end=w, dtype="float32"))
            grid_xy = paddle.stack([grid_x, grid_y], -1)
            valid_wh = paddle.to_tensor([h, w]).astype("float32")  # (h, w) order, as in the reference
            grid_xy = (grid_xy.unsqueeze(0) + 0.5) / valid_wh
            wh = paddle.ones_like(grid_xy) * grid_size * (2.0 ** lvl)
            anchors.append(paddle.concat([grid_xy, wh], -1).reshape([-1, h * w, 4]))
        anchors = paddle.concat(anchors, 1)
        valid_mask = ((anchors > self.eps) & (anchors < 1 - self.eps)).all(-1, keepdim=True)
        anchors = paddle.log(anchors / (1 - anchors))
        anchors = paddle.where(valid_mask, anchors, paddle.full_like(anchors, float("inf")))
        return anchors, valid_mask

    def _anchors(self, spatial_shapes):
        if self.training or not paddle.in_dynamic_mode():
            return self._generate_anchors(spatial_shapes)
        key = tuple(tuple(s) for s in spatial_shapes)
        if key not in self._anchor_cache:
            self._anchor_cache[key] = self._generate_anchors(spatial_shapes)
        return self._anchor_cache[key]

    def _pred_class_and_mask(self, query, mask_feat):
        out = self.dec_norm(query)
        logits = self.score_head(out)
        mask_embed = self.mask_query_head(out)
        n = mask_embed.shape[1]
        h, w = mask_feat.shape[2:]
        masks = paddle.bmm(mask_embed, mask_feat.flatten(2)).reshape([-1, n, h, w])
        return logits, masks

    def _encoder_input(self, feats):
        proj = [self.input_proj[i](f) for i, f in enumerate(feats)]
        flat, shapes = [], []
        for f in proj:
            h, w = f.shape[2:]
            flat.append(f.flatten(2).transpose([0, 2, 1]))
            shapes.append([int(h), int(w)])
        return paddle.concat(flat, 1), shapes

    def _decoder_input(self, memory, mask_feat, spatial_shapes, dn_class=None, dn_bbox_unact=None):
        anchors, valid_mask = self._anchors(spatial_shapes)
        memory = paddle.where(valid_mask, memory, paddle.zeros_like(memory))
        output_memory = self.enc_output(memory)
        enc_logits = self.score_head(output_memory)
        enc_bboxes_unact = self.bbox_head(output_memory) + anchors

        scores = enc_logits.max(-1)
        if self.injected_topk is not None:
            topk_ind = paddle.to_tensor(self.injected_topk).astype("int64")
            if list(topk_ind.shape) != [memory.shape[0], self.num_queries]:
                raise ValueError(f"injected_topk has shape {topk_ind.shape}; expected "
                                 f"{[memory.shape[0], self.num_queries]}")
        else:
            _, topk_ind = paddle.topk(scores, self.num_queries, axis=1)
        self._record("enc_score_max", scores)
        self._record("enc_topk_idx", topk_ind)
        topk_ind = topk_ind.unsqueeze(-1)
        target = paddle.take_along_axis(output_memory, topk_ind.tile([1, 1, output_memory.shape[-1]]), 1)
        ref_unact = paddle.take_along_axis(enc_bboxes_unact, topk_ind.tile([1, 1, 4]), 1)
        enc_logits_sel, enc_masks = self._pred_class_and_mask(target, mask_feat)
        enc_out = (enc_logits_sel, F.sigmoid(ref_unact), enc_masks)

        target = target.detach()
        if dn_class is not None:
            target = paddle.concat([dn_class, target], 1)
        if self.mask_enhanced:
            ref_boxes = mask_to_box_coordinate(enc_masks > 0, normalize=True, fmt="cxcywh")
            ref_unact = inverse_sigmoid(ref_boxes)
        if dn_bbox_unact is not None:
            ref_unact = paddle.concat([dn_bbox_unact, ref_unact], 1)

        init_out = None
        if self.training and dn_class is not None:
            init_logits, init_masks = self._pred_class_and_mask(target, mask_feat)
            init_out = (init_logits, F.sigmoid(ref_unact), init_masks)
        return target, ref_unact.detach(), enc_out, init_out

    def _decode(self, target, ref_unact, memory, spatial_shapes, mask_feat, attn_mask=None):
        out_boxes, out_logits, out_masks = [], [], []
        output = target
        ref_detach = F.sigmoid(ref_unact)
        ref_points = ref_detach
        n_run = len(self.decoder.layers) if self.training else self.decoder.eval_idx + 1
        for i in range(n_run):
            layer = self.decoder.layers[i]
            pos_in = inverse_sigmoid(ref_detach) if self.query_pos_head_inv_sig else ref_detach
            query_pos = self.query_pos_head(pos_in)
            output = layer(output, ref_detach.unsqueeze(2), memory, spatial_shapes, attn_mask, query_pos)
            self._record(f"dec_layer{i}_out", output)
            box_delta = self.bbox_head(output)
            inter_ref = F.sigmoid(box_delta + inverse_sigmoid(ref_detach))
            if self.training:
                logits, masks = self._pred_class_and_mask(output, mask_feat)
                out_logits.append(logits)
                out_masks.append(masks)
                out_boxes.append(inter_ref if i == 0 else F.sigmoid(box_delta + inverse_sigmoid(ref_points)))
            ref_points = inter_ref
            ref_detach = inter_ref.detach() if self.training else inter_ref
        if not self.training:  # only the eval_idx layer is decoded
            logits, masks = self._pred_class_and_mask(output, mask_feat)
            return inter_ref.unsqueeze(0), logits.unsqueeze(0), masks.unsqueeze(0)
        return paddle.stack(out_boxes), paddle.stack(out_logits), paddle.stack(out_masks)

    def forward(self, feats, mask_feat, gt_meta=None):
        """Returns ``(logits [L,b,q,c], boxes [L,b,q,4], masks [L,b,q,h,w], enc_out, init_out, dn_meta)``.

        In eval mode L = 1 (the ``eval_idx`` layer only).
        """
        memory, spatial_shapes = self._encoder_input(feats)
        self._record("memory", memory)
        dn_class = dn_bbox = attn_mask = dn_meta = None
        if self.training and gt_meta is not None and self.injected_denoising is not None:
            dn_class, dn_bbox, attn_mask, dn_meta = injected_denoising_group(
                self.injected_denoising, self.denoising_class_embed.weight, self.num_classes)
        elif self.training and gt_meta is not None:
            dn_class, dn_bbox, attn_mask, dn_meta = get_denoising_training_group(
                gt_meta, self.num_classes, self.num_queries, self.denoising_class_embed.weight,
                self.num_denoising, self.label_noise_ratio, self.box_noise_scale)
        target, ref_unact, enc_out, init_out = self._decoder_input(
            memory, mask_feat, spatial_shapes, dn_class, dn_bbox)
        self._record("enc_out_logits", enc_out[0])
        self._record("enc_out_boxes_sigmoid", enc_out[1])
        self._record("enc_out_masks", enc_out[2])
        self._record("decoder_in_target", target)
        self._record("decoder_in_ref_points_unact", ref_unact)
        boxes, logits, masks = self._decode(target, ref_unact, memory, spatial_shapes, mask_feat, attn_mask)
        return logits, boxes, masks, enc_out, init_out, dn_meta
