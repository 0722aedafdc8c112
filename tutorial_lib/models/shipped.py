"""The weights this package ships (``tutorial_lib/assets/``): their 8-bit packing, where they unpack (the cache),
and the general pretrained weights that ``-o Train.pretrain_weight_path=general`` fine-tunes from.

In the models layer, so that training (:mod:`tutorial_lib.modes`) and the quick-start model
(:mod:`tutorial_lib.quickstart`) both read them without importing each other.
"""
import json
import os
from pathlib import Path

import numpy as np

from ..errors import UserError

ASSETS = Path(__file__).resolve().parents[1] / "assets"


def cache_home():
    """Where exported models are cached: ``$TUTORIAL_LIB_HOME``, else ``~/.cache/tutorial_lib``."""
    return Path(os.environ.get("TUTORIAL_LIB_HOME") or Path.home() / ".cache" / "tutorial_lib")


def pack_weights(state, path, info):
    """Write a state dict (name -> array) to a compressed ``.npz``: float tensors of 4,096+ values as int8 with one
    float32 scale per row (first axis), the rest as they are; ``info`` (JSON-able) rides along."""
    arrays = {"__info__": np.array(json.dumps(info))}
    for name, value in state.items():
        value = np.asarray(value)
        if value.dtype == np.float32 and value.ndim >= 2 and value.size >= 4096:
            rows = value.reshape(value.shape[0], -1)
            scale = np.abs(rows).max(1) / 127.0
            scale[scale == 0] = 1.0
            arrays["q:" + name] = np.round(rows / scale[:, None]).astype(np.int8).reshape(value.shape)
            arrays["s:" + name] = scale.astype(np.float32)
        else:
            arrays["f:" + name] = value
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    np.savez_compressed(path, **arrays)
    return Path(path)


def unpack_weights(path):
    """``(state, info)`` from :func:`pack_weights`' file (int8 rows times their scales, as float32)."""
    with np.load(path) as data:
        info = json.loads(str(data["__info__"]))
        state = {}
        for key in data.files:
            kind, _, name = key.partition(":")
            if kind == "f":
                state[name] = data[key]
            elif kind == "q":
                q = data[key]
                scale = data["s:" + name]
                state[name] = (q.reshape(q.shape[0], -1).astype(np.float32) * scale[:, None]).reshape(q.shape)
    return state, info


def general_asset(model_name, assets=ASSETS):
    """The packed general (pretrained) weights of ``model_name`` shipped in ``assets``: ``general_MODEL.npz``."""
    return Path(assets) / f"general_{model_name}.npz"


def general_weights(model_name, home=None, assets=ASSETS):
    """``-o Train.pretrain_weight_path=general``: the shipped general weights of ``model_name`` unpacked once into
    ``$TUTORIAL_LIB_HOME/general/MODEL.pdparams`` (re-unpacked when the shipped file changes); returns that path."""
    asset = general_asset(model_name, assets)
    if not asset.is_file():
        shipped = sorted(p.stem[len("general_"):] for p in Path(assets).glob("general_*.npz"))
        raise UserError(f"Train.pretrain_weight_path=general: no general model is shipped for {model_name} "
                        f"(shipped: {', '.join(shipped) or 'none'}); give a .pdparams path, official or null")
    out = Path(home or cache_home()) / "general" / f"{model_name}.pdparams"
    if not out.is_file() or out.stat().st_mtime < asset.stat().st_mtime:
        from ..paddle_env import import_paddle

        paddle = import_paddle()
        state, _ = unpack_weights(asset)
        out.parent.mkdir(parents=True, exist_ok=True)
        partial = out.with_name(out.name + ".partial")
        paddle.save({name: paddle.to_tensor(value) for name, value in state.items()}, str(partial))
        partial.replace(out)
    return out
