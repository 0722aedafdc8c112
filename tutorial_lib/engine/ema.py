"""Exponential moving average of a model's weights, with PaddleDetection's ``ModelEMA`` semantics
(``ppdet/optimizer/ema.py``), which the Mask-RT-DETR recipe turns on (``use_ema``, ``ema_decay: 0.9999``,
``ema_decay_type: exponential``, ``ema_filter_no_grad: true``).

After every optimizer step (``update``), for the step's 0-based index ``t``::

    exponential:  d_t = decay * (1 - exp(-(t + 1) / 2000))       # ramps up over the first few thousand steps
    threshold:    d_t = min(decay, (1 + t) / (10 + t))
    normal:       d_t = decay
    shadow      <- d_t * shadow + (1 - d_t) * weight              # float32; shadow starts at zero

The averaged weights (``state_dict``) are the shadow itself for ``exponential`` (no bias correction: the zero start
is forgotten because ``d_0`` is about 0.0005) and ``shadow / (1 - d_last ** steps)`` for the other two types (the
correction PaddleDetection applies, with the last step's decay). Which tensors are averaged: every floating tensor
of ``model.state_dict()``, BatchNorm running mean and variance included; with ``filter_no_grad`` the frozen
parameters (``stop_gradient``, e.g. a frozen stem or frozen norm affine) are not averaged and the model's own
current value is used (PaddleDetection's develop branch; paddledet 2.6.0 filtered them only after giving them a
zero shadow, so its averaged weights had those tensors zeroed). Non-floating tensors are never averaged.

Like PaddleDetection's trainer, checkpoints store the averaged weights in ``.pdparams`` (what evaluation, export
and prediction load) and the raw training weights in ``.pdema``; see :mod:`.checkpoint`.
"""
import math

from ..errors import UserError
from ..models.ppdet_ops import import_ppdet

DECAY_TYPES = ("exponential", "threshold", "normal")


def decay_at(step, decay, decay_type):
    """The decay used by the update of 0-based step ``step``."""
    if decay_type == "exponential":
        return decay * (1.0 - math.exp(-(step + 1) / 2000.0))
    if decay_type == "threshold":
        return min(decay, (1.0 + step) / (10.0 + step))
    return decay


def bn_running_stat_names(model):
    """``state_dict`` names of BatchNorm running statistics (``<layer>._mean`` / ``<layer>._variance``).

    Paddle stores them as parameters with ``stop_gradient=True``; they change in training, so they are averaged
    even when frozen parameters are filtered out (PaddleDetection's ``get_bn_running_state_names``)."""
    paddle = import_ppdet()
    names = []
    for prefix, layer in model.named_sublayers():
        mean, var = getattr(layer, "_mean", None), getattr(layer, "_variance", None)
        if isinstance(mean, paddle.Tensor) and isinstance(var, paddle.Tensor):
            names += [f"{prefix}._mean", f"{prefix}._variance"]
    return names


def ema_settings(arch):
    """``Architecture.use_ema`` / ``ema_decay`` / ``ema_decay_type`` / ``ema_filter_no_grad`` -> kwargs or None."""
    if not arch.get("use_ema"):
        return None
    decay_type = str(arch.get("ema_decay_type") or "threshold")
    if decay_type not in DECAY_TYPES:
        raise UserError(f"Architecture.ema_decay_type={decay_type!r} is not one of {', '.join(DECAY_TYPES)}")
    decay = float(arch.get("ema_decay", 0.9998))
    if not 0.0 < decay < 1.0:
        raise UserError(f"Architecture.ema_decay={decay} must lie strictly between 0 and 1 (the recipe: 0.9999)")
    return {"decay": decay, "decay_type": decay_type, "filter_no_grad": bool(arch.get("ema_filter_no_grad", False))}


class ModelEMA:
    """The moving average of ``model``'s weights; ``update(model)`` after each optimizer step.

    Defaults are PaddleDetection's (decay 0.9998, threshold type, no filter); :func:`ema_settings` reads a config.
    """

    def __init__(self, model, decay=0.9998, decay_type="threshold", filter_no_grad=False):
        if decay_type not in DECAY_TYPES:
            raise UserError(f"EMA decay type {decay_type!r} is not one of {', '.join(DECAY_TYPES)}")
        paddle = import_ppdet()
        self.decay, self.decay_type, self.filter_no_grad = float(decay), decay_type, bool(filter_no_grad)
        self.step = 0
        self.last_decay = None
        state = model.state_dict()
        kept = set()
        if self.filter_no_grad:
            running = set(bn_running_stat_names(model))
            kept = {n for n, p in model.named_parameters() if p.stop_gradient and n not in running}
        kept |= {n for n, v in state.items() if not paddle.is_floating_point(v)}
        self.kept = kept  # names that follow the model instead of being averaged
        self.shadow = {n: paddle.zeros(v.shape, dtype="float32") for n, v in state.items() if n not in kept}

    def update(self, model):
        paddle = import_ppdet()
        d = decay_at(self.step, self.decay, self.decay_type)
        state = model.state_dict()
        with paddle.no_grad():
            for name, avg in self.shadow.items():
                value = state[name]
                if value.dtype != paddle.float32:
                    value = value.astype("float32")
                self.shadow[name] = d * avg + (1.0 - d) * value
        self.last_decay = d
        self.step += 1

    def _correction(self):
        if self.decay_type == "exponential" or not self.step:
            return 1.0
        return 1.0 - self.last_decay ** self.step

    def state_dict(self, model):
        """The averaged weights under ``model.state_dict()``'s names and dtypes (new tensors; the model is not
        changed). Before the first update these are the model's own weights (PaddleDetection would hand back the
        zero-initialised shadow)."""
        paddle = import_ppdet()
        out = {}
        scale = self._correction()
        with paddle.no_grad():
            for name, value in model.state_dict().items():
                if name in self.kept or not self.step:
                    out[name] = value.detach().clone()
                    continue
                avg = self.shadow[name] if scale == 1.0 else self.shadow[name] / scale
                out[name] = avg.astype(value.dtype) if avg.dtype != value.dtype else avg.clone()
        return out

    def states(self):
        """What :meth:`resume` needs besides the averaged weights (stored in ``.pdstates``)."""
        return {"step": self.step, "last_decay": self.last_decay, "decay": self.decay,
                "decay_type": self.decay_type, "filter_no_grad": self.filter_no_grad}

    def resume(self, averaged, states):
        """Restore from the averaged weights of :meth:`state_dict` and :meth:`states` (exact for ``exponential``;
        the other types undo the bias correction, exact up to float rounding)."""
        paddle = import_ppdet()
        self.step = int(states.get("step", 0))
        self.last_decay = states.get("last_decay")
        scale = self._correction()
        for name in self.shadow:
            if name not in averaged:
                raise UserError(f"the EMA weights being resumed have no tensor {name}; not this model's checkpoint")
            value = averaged[name]
            value = paddle.to_tensor(value) if not isinstance(value, paddle.Tensor) else value
            value = value.astype("float32")
            self.shadow[name] = value * scale if scale != 1.0 else value.clone()
