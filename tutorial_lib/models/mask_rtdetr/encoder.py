"""MaskHybridEncoder: AIFI transformer on one level, CCFF (FPN + PAN) fusion, stride-4 mask prototypes."""
import numpy as np
import paddle
import paddle.nn as nn
import paddle.nn.functional as F

from .layers import BaseConv, ConvBN, MultiHeadAttention, linear_init_, no_decay_attr, silu, xavier_uniform_

__all__ = ["MaskHybridEncoder", "build_2d_sincos_position_embedding"]


def build_2d_sincos_position_embedding(w, h, embed_dim=256, temperature=10000.0):
    """Fixed 2-D sin-cos embedding ``[1, w*h, embed_dim]`` (PaddleDetection ordering: ij meshgrid of (w, h))."""
    grid_w = paddle.arange(int(w), dtype="float32")
    grid_h = paddle.arange(int(h), dtype="float32")
    grid_w, grid_h = paddle.meshgrid(grid_w, grid_h)
    pos_dim = embed_dim // 4
    omega = paddle.arange(pos_dim, dtype="float32") / pos_dim
    omega = 1.0 / (temperature ** omega)
    out_w = grid_w.flatten()[..., None] @ omega[None]
    out_h = grid_h.flatten()[..., None] @ omega[None]
    return paddle.concat([paddle.sin(out_w), paddle.cos(out_w),
                          paddle.sin(out_h), paddle.cos(out_h)], axis=1)[None, :, :]


class RepVggBlock(nn.Layer):
    """Unfused RepVGG block: 3x3 conv-BN + 1x1 conv-BN, summed, SiLU."""

    def __init__(self, channels):
        super().__init__()
        self.conv1 = ConvBN(channels, channels, 3, padding=1)
        self.conv2 = ConvBN(channels, channels, 1, padding=0)

    def forward(self, x):
        return silu(self.conv1(x) + self.conv2(x))


class CSPRepLayer(nn.Layer):
    def __init__(self, in_channels, out_channels, num_blocks=3, expansion=1.0):
        super().__init__()
        hidden = int(out_channels * expansion)
        self.conv1 = BaseConv(in_channels, hidden, 1)
        self.conv2 = BaseConv(in_channels, hidden, 1)
        self.bottlenecks = nn.Sequential(*[RepVggBlock(hidden) for _ in range(num_blocks)])
        self.conv3 = BaseConv(hidden, out_channels, 1) if hidden != out_channels else nn.Identity()

    def forward(self, x):
        return self.conv3(self.bottlenecks(self.conv1(x)) + self.conv2(x))


class TransformerLayer(nn.Layer):
    """Post-norm encoder layer (GELU FFN); keys self_attn, linear1, linear2, norm1, norm2."""

    def __init__(self, d_model, nhead, dim_feedforward=1024, dropout=0.0):
        super().__init__()
        self.self_attn = MultiHeadAttention(d_model, nhead, dropout)
        self.linear1 = nn.Linear(d_model, dim_feedforward)
        self.linear2 = nn.Linear(dim_feedforward, d_model)
        self.norm1 = nn.LayerNorm(d_model)
        self.norm2 = nn.LayerNorm(d_model)
        self.dropout = dropout
        linear_init_(self.linear1)
        linear_init_(self.linear2)

    def _drop(self, x):
        return F.dropout(x, self.dropout, training=self.training) if self.dropout else x

    def forward(self, src, pos_embed=None):
        q = k = src if pos_embed is None else src + pos_embed
        src = self.norm1(src + self._drop(self.self_attn(q, k, src)))
        ffn = self.linear2(self._drop(F.gelu(self.linear1(src))))
        return self.norm2(src + self._drop(ffn))


class TransformerEncoder(nn.Layer):
    def __init__(self, num_layers, d_model, nhead, dim_feedforward, dropout=0.0):
        super().__init__()
        self.layers = nn.LayerList([TransformerLayer(d_model, nhead, dim_feedforward, dropout)
                                    for _ in range(num_layers)])

    def forward(self, src, pos_embed=None):
        for layer in self.layers:
            src = layer(src, pos_embed=pos_embed)
        return src


class MaskFeatFPN(nn.Layer):
    """Sums per-level conv heads (upsampled to the finest level), then one output conv."""

    def __init__(self, in_channels, fpn_strides, feat_channels, out_channels):
        super().__init__()
        order = np.argsort(fpn_strides, axis=0)
        self.reorder_index = [int(i) for i in order]
        in_channels = [in_channels[i] for i in order]
        fpn_strides = [fpn_strides[i] for i in order]
        self.fpn_strides = fpn_strides
        self.scale_heads = nn.LayerList()
        for i, stride in enumerate(fpn_strides):
            head_length = max(1, int(np.log2(stride) - np.log2(fpn_strides[0])))
            head = []
            for k in range(head_length):
                c_in = in_channels[i] if k == 0 else feat_channels
                head.append(nn.Sequential(BaseConv(c_in, feat_channels, 3, 1)))
                if stride != fpn_strides[0]:
                    head.append(nn.Upsample(scale_factor=2, mode="bilinear", align_corners=False))
            self.scale_heads.append(nn.Sequential(*head))
        self.output_conv = BaseConv(feat_channels, out_channels, 3, 1)

    def forward(self, inputs):
        x = [inputs[i] for i in self.reorder_index]
        out = self.scale_heads[0](x[0])
        for i in range(1, len(self.fpn_strides)):
            out = out + F.interpolate(self.scale_heads[i](x[i]), size=out.shape[2:],
                                      mode="bilinear", align_corners=False)
        return self.output_conv(out)


class MaskHybridEncoder(nn.Layer):
    """Input: backbone maps at strides 4/8/16/32. Output: ([3 fused maps], mask prototypes at stride 4)."""

    def __init__(self, in_channels, feat_strides=(4, 8, 16, 32), hidden_dim=256, use_encoder_idx=(2,),
                 num_encoder_layers=1, nhead=8, dim_feedforward=1024, dropout=0.0,
                 num_prototypes=128, pe_temperature=10000, expansion=1.0, depth_mult=1.0,
                 mask_feat_channels=(64, 64), eval_size=None):
        super().__init__()
        in_channels = list(in_channels)
        feat_strides = list(feat_strides)
        x4_channels = in_channels.pop(0)
        assert feat_strides.pop(0) == 4
        self.in_channels = in_channels
        self.feat_strides = feat_strides
        self.hidden_dim = hidden_dim
        self.use_encoder_idx = list(use_encoder_idx)  # indexes the 3 maps without stride 4
        self.num_encoder_layers = num_encoder_layers
        self.pe_temperature = pe_temperature
        self.eval_size = eval_size

        self.input_proj = nn.LayerList([
            nn.Sequential(nn.Conv2D(c, hidden_dim, 1, bias_attr=False),
                          nn.BatchNorm2D(hidden_dim, weight_attr=no_decay_attr(), bias_attr=no_decay_attr()))
            for c in in_channels])
        for proj in self.input_proj:
            xavier_uniform_(proj[0].weight)
        self.encoder = nn.LayerList([
            TransformerEncoder(num_encoder_layers, hidden_dim, nhead, dim_feedforward, dropout)
            for _ in self.use_encoder_idx])

        n_blocks = round(3 * depth_mult)
        self.lateral_convs = nn.LayerList()
        self.fpn_blocks = nn.LayerList()
        for _ in range(len(in_channels) - 1, 0, -1):
            self.lateral_convs.append(BaseConv(hidden_dim, hidden_dim, 1, 1))
            self.fpn_blocks.append(CSPRepLayer(hidden_dim * 2, hidden_dim, n_blocks, expansion))
        self.downsample_convs = nn.LayerList()
        self.pan_blocks = nn.LayerList()
        for _ in range(len(in_channels) - 1):
            self.downsample_convs.append(BaseConv(hidden_dim, hidden_dim, 3, stride=2))
            self.pan_blocks.append(CSPRepLayer(hidden_dim * 2, hidden_dim, n_blocks, expansion))

        self.mask_feat_head = MaskFeatFPN([hidden_dim] * len(feat_strides), feat_strides,
                                          mask_feat_channels[0], mask_feat_channels[1])
        self.enc_mask_lateral = BaseConv(x4_channels, mask_feat_channels[1], 3, 1)
        self.enc_mask_output = nn.Sequential(
            BaseConv(mask_feat_channels[1], mask_feat_channels[1], 3, 1),
            nn.Conv2D(mask_feat_channels[1], num_prototypes, 1))
        self._pos_cache = {}

    def _pos_embed(self, w, h):
        if self.training or not paddle.in_dynamic_mode():
            return build_2d_sincos_position_embedding(w, h, self.hidden_dim, self.pe_temperature)
        key = (int(w), int(h))
        if key not in self._pos_cache:
            self._pos_cache[key] = build_2d_sincos_position_embedding(
                w, h, self.hidden_dim, self.pe_temperature)
        return self._pos_cache[key]

    def forward(self, feats):
        x4_feat, feats = feats[0], feats[1:]
        proj = [self.input_proj[i](f) for i, f in enumerate(feats)]
        for i, enc_ind in enumerate(self.use_encoder_idx):
            h, w = proj[enc_ind].shape[2:]
            src = proj[enc_ind].flatten(2).transpose([0, 2, 1])
            memory = self.encoder[i](src, pos_embed=self._pos_embed(w, h))
            proj[enc_ind] = memory.transpose([0, 2, 1]).reshape([-1, self.hidden_dim, h, w])

        n = len(self.in_channels)
        inner_outs = [proj[-1]]  # top-down FPN
        for idx in range(n - 1, 0, -1):
            high = self.lateral_convs[n - 1 - idx](inner_outs[0])
            inner_outs[0] = high
            up = F.interpolate(high, scale_factor=2.0, mode="nearest")
            inner_outs.insert(0, self.fpn_blocks[n - 1 - idx](paddle.concat([up, proj[idx - 1]], axis=1)))
        outs = [inner_outs[0]]  # bottom-up PAN
        for idx in range(n - 1):
            down = self.downsample_convs[idx](outs[-1])
            outs.append(self.pan_blocks[idx](paddle.concat([down, inner_outs[idx + 1]], axis=1)))

        mask_feat = self.mask_feat_head(outs)
        mask_feat = F.interpolate(mask_feat, scale_factor=2, mode="bilinear", align_corners=False)
        mask_feat = mask_feat + self.enc_mask_lateral(x4_feat)
        mask_feat = self.enc_mask_output(mask_feat)
        return outs, mask_feat
