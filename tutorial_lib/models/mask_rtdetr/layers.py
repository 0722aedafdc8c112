"""Shared building blocks: initialisers, conv+BN blocks, MLP and packed multi-head attention."""
import math

import paddle
import paddle.nn as nn
import paddle.nn.functional as F
from paddle import ParamAttr
from paddle.regularizer import L2Decay

__all__ = [
    "xavier_uniform_", "constant_", "linear_init_", "bias_init_with_prob", "no_decay_attr",
    "BaseConv", "ConvBN", "MLP", "MultiHeadAttention", "inverse_sigmoid", "silu",
]


# --------------------------------------------------------------------------- initialisers
def _fill(param, value):
    param.set_value(paddle.cast(value, param.dtype).reshape(param.shape))


def constant_(param, value=0.0):
    _fill(param, paddle.full(param.shape, value, dtype="float32"))


def _uniform(param, bound):
    _fill(param, paddle.uniform(param.shape, dtype="float32", min=-bound, max=bound))


def xavier_uniform_(param):
    """Glorot uniform for a Paddle ``[in, out]`` matrix (or conv kernel)."""
    shape = param.shape
    if len(shape) == 2:
        fan_in, fan_out = shape
    else:
        rf = int(math.prod(shape[2:]))
        fan_in, fan_out = shape[1] * rf, shape[0] * rf
    _uniform(param, math.sqrt(6.0 / float(fan_in + fan_out)))


def linear_init_(layer):
    """Uniform(-1/sqrt(fan_in), 1/sqrt(fan_in)) for weight and bias of a Linear."""
    bound = 1.0 / math.sqrt(layer.weight.shape[0])
    _uniform(layer.weight, bound)
    if getattr(layer, "bias", None) is not None:
        _uniform(layer.bias, bound)


def conv_init_(conv):
    """Kaiming-uniform style conv init (a = sqrt(5)), bias likewise."""
    fan_in = int(math.prod(conv.weight.shape[1:]))
    bound = 1.0 / math.sqrt(fan_in)
    _uniform(conv.weight, bound)
    if getattr(conv, "bias", None) is not None:
        _uniform(conv.bias, bound)


def bias_init_with_prob(prior_prob=0.01):
    return float(-math.log((1 - prior_prob) / prior_prob))


def no_decay_attr(lr=1.0, trainable=True):
    return ParamAttr(regularizer=L2Decay(0.0), learning_rate=lr, trainable=trainable)


# --------------------------------------------------------------------------- small ops
def silu(x):
    """SiLU written as ``x * sigmoid(x)`` exactly like the reference BaseConv."""
    return x * F.sigmoid(x)


def inverse_sigmoid(x, eps=1e-5):
    x = x.clip(min=0.0, max=1.0)
    return paddle.log(x.clip(min=eps) / (1 - x).clip(min=eps))


# --------------------------------------------------------------------------- layers
class BaseConv(nn.Layer):
    """Conv (no bias) + BatchNorm + SiLU; keys ``conv``, ``bn``."""

    def __init__(self, in_channels, out_channels, ksize, stride=1, groups=1, act=True):
        super().__init__()
        self.conv = nn.Conv2D(in_channels, out_channels, ksize, stride=stride,
                              padding=(ksize - 1) // 2, groups=groups, bias_attr=False)
        self.bn = nn.BatchNorm2D(out_channels, weight_attr=no_decay_attr(), bias_attr=no_decay_attr())
        self.act = act
        conv_init_(self.conv)

    def forward(self, x):
        x = self.bn(self.conv(x))
        return silu(x) if self.act else x


class ConvBN(nn.Layer):
    """Conv (no bias) + BatchNorm without activation (RepVGG branches)."""

    def __init__(self, in_channels, out_channels, ksize, stride=1, padding=0):
        super().__init__()
        self.conv = nn.Conv2D(in_channels, out_channels, ksize, stride=stride,
                              padding=padding, bias_attr=False)
        self.bn = nn.BatchNorm2D(out_channels, weight_attr=no_decay_attr(), bias_attr=no_decay_attr())

    def forward(self, x):
        return self.bn(self.conv(x))


class MLP(nn.Layer):
    """``num_layers`` Linear layers with ReLU in between; keys ``layers.{i}``."""

    def __init__(self, input_dim, hidden_dim, output_dim, num_layers):
        super().__init__()
        self.num_layers = num_layers
        hidden = [hidden_dim] * (num_layers - 1)
        self.layers = nn.LayerList(
            [nn.Linear(n, k) for n, k in zip([input_dim] + hidden, hidden + [output_dim])])
        for layer in self.layers:
            linear_init_(layer)

    def forward(self, x):
        for i, layer in enumerate(self.layers):
            x = layer(x)
            if i < self.num_layers - 1:
                x = F.relu(x)
        return x


class MultiHeadAttention(nn.Layer):
    """Multi-head attention with a packed ``in_proj_weight [d, 3d]`` (q, k, v column blocks).

    ``attn_mask`` is additive (float) or boolean (True = may attend; False adds -1e9 to the scaled logits,
    as the reference's attention does, not -inf).
    """

    def __init__(self, embed_dim, num_heads, dropout=0.0):
        super().__init__()
        self.embed_dim = embed_dim
        self.num_heads = num_heads
        self.head_dim = embed_dim // num_heads
        self.dropout = dropout
        self.in_proj_weight = self.create_parameter([embed_dim, 3 * embed_dim], dtype="float32")
        self.in_proj_bias = self.create_parameter([3 * embed_dim], dtype="float32", is_bias=True)
        self.out_proj = nn.Linear(embed_dim, embed_dim)
        xavier_uniform_(self.in_proj_weight)
        constant_(self.in_proj_bias)
        xavier_uniform_(self.out_proj.weight)
        constant_(self.out_proj.bias)

    def _project(self, x, index):
        d = self.embed_dim
        x = F.linear(x, self.in_proj_weight[:, index * d:(index + 1) * d],
                     self.in_proj_bias[index * d:(index + 1) * d])
        return x.reshape([0, 0, self.num_heads, self.head_dim]).transpose([0, 2, 1, 3])

    def forward(self, query, key, value, attn_mask=None):
        q, k, v = self._project(query, 0), self._project(key, 1), self._project(value, 2)
        product = paddle.matmul(q, k, transpose_y=True) * (float(self.head_dim) ** -0.5)
        if attn_mask is not None:
            if attn_mask.dtype == paddle.bool:
                attn_mask = paddle.where(attn_mask, paddle.zeros(attn_mask.shape, product.dtype),
                                         paddle.full(attn_mask.shape, -1e9, product.dtype))
            product = product + attn_mask
        weights = F.softmax(product)
        if self.dropout and self.training:
            weights = F.dropout(weights, self.dropout, training=True)
        out = paddle.matmul(weights, v).transpose([0, 2, 1, 3])
        out = out.reshape([0, 0, self.embed_dim])
        return self.out_proj(out)
