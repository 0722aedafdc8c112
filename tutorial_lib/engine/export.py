"""Step 5/6 bridge: ``-o Global.mode=export``: a trained checkpoint -> a static Paddle Inference model.

``Export.weight_path`` (``.pdparams``) -> ``Global.output``: ``inference.pdmodel``, ``inference.pdiparams``
and ``inference.yml`` (model name, architecture, preprocessing ops, label list, outputs, draw threshold):
everything :class:`tutorial_lib.predict.Predictor` needs, and nothing else. A model trained on GeoTIFF chips
(:mod:`tutorial_lib.data.geochips`, ``Global.dataset_dir``) also carries a ``RasterInput`` block: the bands, data
type and per-band stretch limits of its training chips, which prediction on a scene applies as they are. A
checkpoint trained with EMA exports its averaged weights: its ``.pdparams`` holds them (as in PaddleDetection and
PaddleX; see :mod:`.checkpoint`).
"""
import time
from pathlib import Path

import yaml

from . import checkpoint
from .common import build_from_meta, dataset_raster_settings, load_trained, prepare
from ..data.raster import RasterSettings
from ..models.adapters import get_adapter

DRAW_THRESHOLD = 0.5


def write_inference_config(save_dir, meta, adapter, output_names, raster=None):
    """``inference.yml``; ``raster``: the :class:`RasterSettings` of a model trained on GeoTIFF chips (written as
    ``RasterInput``), None for other models."""
    info = {
        "mode": "paddle",
        "draw_threshold": DRAW_THRESHOLD,
        "metric": "COCO",
        "use_dynamic_shape": False,
        "Global": {"model_name": meta["model_name"]},
        "arch": adapter.architecture,
        "adapter": adapter.name,
        "min_subgraph_size": 3,
        "Preprocess": adapter.preprocess_spec(),
        **({"RasterInput": raster.to_dict()} if raster is not None else {}),
        "label_list": list(meta["label_list"]),
        "outputs": list(output_names),
        "batch_size_limit": adapter.batch_size_limit,  # images per forward pass (null: any number)
        "batch_same_size": adapter.batch_same_size,  # true: a forward batch holds images of one original size
    }
    if adapter.box_mask_threshold is not None:  # `mask` holds probabilities on each box
        info["box_mask_threshold"] = adapter.box_mask_threshold
    path = Path(save_dir) / "inference.yml"
    path.write_text(yaml.safe_dump(info, sort_keys=False, allow_unicode=True), encoding="utf-8")
    return path


def export_inference(state_dict, meta, save_dir, raster=None):
    """Build a fresh model from ``meta``, load ``state_dict`` and save it as a static inference model.

    A fresh model is used because ``paddle.jit.to_static`` changes the model it converts. ``raster``: the
    :class:`RasterSettings` of a chip dataset (default: ``meta["raster_input"]`` when the training recorded one).
    """
    if raster is None and meta.get("raster_input"):
        raster = RasterSettings.from_dict(meta["raster_input"], "the checkpoint's raster_input")
    adapter, model = build_from_meta(meta)
    checkpoint.load_matching(model, state_dict, strict=True)
    model.eval()
    save_dir = Path(save_dir)
    save_dir.mkdir(parents=True, exist_ok=True)
    names = adapter.export(model, save_dir)
    write_inference_config(save_dir, meta, adapter, names, raster)
    return {"inference_config": str(save_dir / "inference.yml"), "pdmodel": str(save_dir / "inference.pdmodel"),
            "pdiparams": str(save_dir / "inference.pdiparams"),
            "pdiparams.info": str(save_dir / "inference.pdiparams.info")}


def export(cfg):
    """``-o Global.mode=export -o Export.weight_path=...``; returns the written paths and the time taken."""
    get_adapter(cfg)  # a model this engine cannot run fails here, before anything is read
    prepare(cfg)
    start = time.time()
    prefix = checkpoint.resolve(cfg["Export"]["weight_path"], "Export.weight_path")
    adapter, model, meta = load_trained(prefix, cfg)
    out = Path(cfg["Global"]["output"])
    raster = None if meta.get("raster_input") else dataset_raster_settings(cfg)  # the checkpoint's own record wins
    paths = export_inference(model.state_dict(), meta, out, raster)
    result = {"done_flag": True, "model_name": meta["model_name"], "weight_path": str(prefix) + ".pdparams",
              "save_dir": str(out), **paths, "export_time_s": round(time.time() - start, 2)}
    print(f"exported {meta['model_name']} to {out} (inference.pdmodel, inference.pdiparams, inference.yml)")
    return result


def export_untrained(model_name, save_dir, num_classes=10, seed=0, overrides=None):
    """Export ``model_name`` with seeded random weights (no training): for backend, latency and ONNX checks,
    never for predictions. ``overrides``: config values such as ``{"Architecture.input_size": 320}``."""
    from ..config import load_config
    from .common import model_meta
    from .seeding import seed_all

    cfg = load_config(model_name, dict(overrides or {}))
    prepare(cfg)
    seed_all(seed)
    meta = model_meta(cfg, num_classes, [f"class_{i}" for i in range(num_classes)])
    _, model = build_from_meta(meta)
    return export_inference(model.state_dict(), meta, save_dir)
