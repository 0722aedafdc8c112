"""Strict loading of official Mask-RT-DETR ``.pdparams`` with class-count adaptation."""
import logging

import numpy as np
import paddle
import paddle.nn as nn

from .layers import bias_init_with_prob, constant_, linear_init_

__all__ = ["load_pretrained", "CLASS_DEPENDENT_KEYS", "CheckpointMismatchError"]

logger = logging.getLogger(__name__)

# the only entries whose shape depends on num_classes
CLASS_DEPENDENT_KEYS = (
    "transformer.denoising_class_embed.weight",
    "transformer.score_head.weight",
    "transformer.score_head.bias",
)


class CheckpointMismatchError(RuntimeError):
    """Missing, unexpected or shape-mismatched checkpoint entries outside the class-dependent layers."""


def _reinit_class_layers(model):
    tr = model.transformer
    emb = tr.denoising_class_embed.weight
    emb.set_value(paddle.normal(0.0, 1.0, emb.shape).astype(emb.dtype))
    linear_init_(tr.score_head)
    constant_(tr.score_head.bias, bias_init_with_prob(0.01))


def load_pretrained(model: nn.Layer, path_or_state_dict) -> str:
    """Load an official checkpoint (path or dict) into ``model``.

    Entries listed in ``CLASS_DEPENDENT_KEYS`` whose shape differs (other class count) are skipped and
    their layers re-initialised; every other missing, unexpected or mismatched key raises
    :class:`CheckpointMismatchError`. Returns (and logs) a message naming the re-initialised keys.
    """
    state = paddle.load(path_or_state_dict) if isinstance(path_or_state_dict, str) else path_or_state_dict
    own = model.state_dict()
    missing = [k for k in own if k not in state]
    unexpected = [k for k in state if k not in own]
    mismatched, reinit = [], []
    to_load = {}
    for k, v in state.items():
        if k not in own:
            continue
        shape = list(v.shape)
        if shape != list(own[k].shape):
            (reinit if k in CLASS_DEPENDENT_KEYS else mismatched).append(
                f"{k}: checkpoint {shape} vs model {list(own[k].shape)}")
            continue
        to_load[k] = v
    if missing or unexpected or mismatched:
        raise CheckpointMismatchError(
            f"checkpoint does not fit the model: missing={missing}, unexpected={unexpected}, "
            f"shape mismatch={mismatched}")
    reinit_keys = [r.split(":")[0] for r in reinit]
    if reinit_keys:
        # the three entries go together; re-initialise all of them for a consistent head
        reinit_keys = list(CLASS_DEPENDENT_KEYS)
        for k in reinit_keys:
            to_load.pop(k, None)
        _reinit_class_layers(model)
    for k, v in to_load.items():
        arr = v.numpy() if isinstance(v, paddle.Tensor) else np.asarray(v)
        own[k].set_value(paddle.to_tensor(arr).astype(own[k].dtype))
    if reinit_keys:
        msg = "re-initialised class-dependent layers (num_classes differs): " + ", ".join(reinit_keys)
    else:
        msg = f"loaded all {len(to_load)} entries"
    logger.info(msg)
    return msg
