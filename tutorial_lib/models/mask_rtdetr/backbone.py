"""PPHGNetV2 backbone (no learnable-affine blocks), frozen stem and frozen BatchNorm."""
import numpy as np
import paddle
import paddle.nn as nn
from paddle import ParamAttr
from paddle.nn.initializer import KaimingNormal
from paddle.regularizer import L2Decay

from .configs import HGNETV2_ARCHS

__all__ = ["PPHGNetV2"]


def _frozen_bn(channels):
    attr = ParamAttr(learning_rate=0.0, regularizer=L2Decay(0.0), trainable=False)
    bn = nn.BatchNorm2D(channels, weight_attr=attr, bias_attr=attr, use_global_stats=True)
    for p in bn.parameters():
        p.stop_gradient = True
    return bn


class ConvBNAct(nn.Layer):
    """Conv (no bias) + frozen BN + optional ReLU; ``padding`` may be ``"SAME"``."""

    def __init__(self, in_channels, out_channels, kernel_size=3, stride=1, padding=None,
                 groups=1, use_act=True):
        super().__init__()
        self.conv = nn.Conv2D(in_channels, out_channels, kernel_size, stride,
                              padding=(kernel_size - 1) // 2 if padding is None else padding,
                              groups=groups, bias_attr=False)
        self.bn = _frozen_bn(out_channels)
        self.use_act = use_act
        if use_act:
            self.act = nn.ReLU()
        # replay hook (default off): element indices ``[k, 4]`` (n, c, y, x) whose ReLU counts as active, for
        # replaying a reference run whose float32 rounding put a near-zero pre-activation on the other side of 0
        self.force_active = None

    def forward(self, x):
        x = self.bn(self.conv(x))
        if not self.use_act:
            return x
        if self.force_active is None:
            return self.act(x)
        mask = np.zeros(x.shape, bool)
        mask[tuple(np.asarray(self.force_active, "int64").reshape([-1, 4]).T)] = True
        return paddle.where(paddle.to_tensor(mask), x, self.act(x))


class LightConvBNAct(nn.Layer):
    """1x1 conv without activation, then depthwise kxk conv with ReLU."""

    def __init__(self, in_channels, out_channels, kernel_size):
        super().__init__()
        self.conv1 = ConvBNAct(in_channels, out_channels, 1, use_act=False)
        self.conv2 = ConvBNAct(out_channels, out_channels, kernel_size, groups=out_channels)

    def forward(self, x):
        return self.conv2(self.conv1(x))


class StemBlock(nn.Layer):
    def __init__(self, in_channels, mid_channels, out_channels):
        super().__init__()
        self.stem1 = ConvBNAct(in_channels, mid_channels, 3, stride=2)
        self.stem2a = ConvBNAct(mid_channels, mid_channels // 2, 2, padding="SAME")
        self.stem2b = ConvBNAct(mid_channels // 2, mid_channels, 2, padding="SAME")
        self.stem3 = ConvBNAct(mid_channels * 2, mid_channels, 3, stride=2)
        self.stem4 = ConvBNAct(mid_channels, out_channels, 1)
        self.pool = nn.MaxPool2D(kernel_size=2, stride=1, ceil_mode=True, padding="SAME")

    def forward(self, x):
        x = self.stem1(x)
        x2 = self.stem2b(self.stem2a(x))
        x1 = self.pool(x)
        x = paddle.concat([x1, x2], 1)
        return self.stem4(self.stem3(x))


class HGBlock(nn.Layer):
    """``layer_num`` convs whose outputs (and the input) are concatenated, squeezed, excited."""

    def __init__(self, in_channels, mid_channels, out_channels, kernel_size, layer_num,
                 identity, light_block):
        super().__init__()
        self.identity = identity
        self.layers = nn.LayerList()
        for i in range(layer_num):
            c_in = in_channels if i == 0 else mid_channels
            if light_block:
                self.layers.append(LightConvBNAct(c_in, mid_channels, kernel_size))
            else:
                self.layers.append(ConvBNAct(c_in, mid_channels, kernel_size))
        total = in_channels + layer_num * mid_channels
        self.aggregation_squeeze_conv = ConvBNAct(total, out_channels // 2, 1)
        self.aggregation_excitation_conv = ConvBNAct(out_channels // 2, out_channels, 1)

    def forward(self, x):
        outputs = [x]
        y = x
        for layer in self.layers:
            y = layer(y)
            outputs.append(y)
        y = paddle.concat(outputs, axis=1)
        y = self.aggregation_excitation_conv(self.aggregation_squeeze_conv(y))
        return y + x if self.identity else y


class HGStage(nn.Layer):
    def __init__(self, in_channels, mid_channels, out_channels, num_blocks, downsample,
                 light_block, kernel_size, layer_num):
        super().__init__()
        self.has_downsample = downsample
        if downsample:
            self.downsample = ConvBNAct(in_channels, in_channels, 3, stride=2,
                                        groups=in_channels, use_act=False)
        self.blocks = nn.Sequential(*[
            HGBlock(in_channels if i == 0 else out_channels, mid_channels, out_channels,
                    kernel_size, layer_num, identity=i > 0, light_block=light_block)
            for i in range(num_blocks)])

    def forward(self, x):
        if self.has_downsample:
            x = self.downsample(x)
        return self.blocks(x)


class PPHGNetV2(nn.Layer):
    """Returns the stride 4/8/16/32 feature maps for ``return_idx=[0, 1, 2, 3]``."""

    def __init__(self, arch="S", return_idx=(0, 1, 2, 3), freeze_stem=True):
        super().__init__()
        cfg = HGNETV2_ARCHS[arch]
        self.return_idx = list(return_idx)
        self.out_channels = [row[2] for row in cfg["stage_config"]]
        self.out_strides = [4, 8, 16, 32]
        self.stem = StemBlock(*cfg["stem_channels"])
        self.stages = nn.LayerList([HGStage(*row) for row in cfg["stage_config"]])
        init = KaimingNormal()
        for m in self.sublayers():
            if isinstance(m, nn.Conv2D):
                init(m.weight)
        if freeze_stem:
            for p in self.stem.parameters():
                p.stop_gradient = True

    def forward(self, x):
        x = self.stem(x)
        outs = []
        for idx, stage in enumerate(self.stages):
            x = stage(x)
            if idx in self.return_idx:
                outs.append(x)
        return outs
