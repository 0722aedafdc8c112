"""Which model a pipeline runs, and :func:`create_pipeline` (``tl.create_pipeline``) that resolves it.

A pipeline YAML names a model two ways (``SubModules.InstanceSegmentation``):

* ``model_dir``: an exported model folder -> that model. If the YAML also sets ``model_name``, it must be the model
  the folder's ``inference.yml`` says it is.
* ``model_name`` only -> the official weights of that model (the registry's PaddleDetection URL, downloaded once
  into the weights cache), built, exported and cached under ``$TUTORIAL_LIB_HOME/official/``. Where they cannot be
  downloaded (as on a machine without internet) a one-line notice says so and the embedded quick-start model runs
  instead; ``pipeline.model_name`` and ``pipeline.model_source`` say what ran.

The quick-start model is this library's small CPU model trained on the generated sample (seeded). Its weights ship
with the package (:data:`SHIPPED`, 8-bit per-row quantised to stay small; provenance and metrics inside), so the
first quick experience only exports them (well under a minute). Without that file, or with other training
settings, it is trained once into ``$TUTORIAL_LIB_HOME/quickstart/`` (about 10 minutes on 2 CPU cores); an
interrupted run resumes from its last checkpoint and leaves no temporary folders behind.

This module sits above the pipeline layer (it trains and exports through :func:`tutorial_lib.modes.run` and the
engine); the pipeline itself only reads exported models.
"""
import json
import shutil
from pathlib import Path

import numpy as np
import yaml

from .errors import UserError
from .models.registry import CPU_MODEL as MODEL
from .pipeline import config as pipeline_config
from .pipeline.config import SUBMODULE, cache_home, load_pipeline_config, quickstart_root

SEED = pipeline_config.QUICKSTART_SEED
DEFAULT_EPOCHS, DEFAULT_TRAIN = 6, 128
SHIPPED = Path(__file__).resolve().parent / "assets" / f"quickstart_{MODEL}.npz"


# ----------------------------------------------------------------------------- the shipped weights
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


def export_shipped(out, path=SHIPPED):
    """Export the shipped quick-start weights into ``out`` (an ``inference`` folder) with their provenance."""
    from .engine.common import prepare
    from .engine.export import export_inference

    state, info = unpack_weights(path)
    meta = info["meta"]
    prepare({"Global": {"device": "cpu"}})
    tmp = Path(out).with_name(Path(out).name + ".partial")
    shutil.rmtree(tmp, ignore_errors=True)
    export_inference(state, meta, tmp)
    (tmp / "provenance.json").write_text(json.dumps({k: v for k, v in info.items() if k != "meta"}, indent=2) + "\n",
                                         encoding="utf-8")
    shutil.rmtree(out, ignore_errors=True)
    tmp.rename(out)
    return Path(out)


def evaluate_exported(model_dir, dataset_dir, split="val", run_mode=None):
    """COCO mask/box AP of an exported model on a split (threshold 0): how the shipped model's metrics are
    recorded and tested, and how an INT8 model is compared with its FP32 original (``run_mode``)."""
    from .data.coco import load_coco
    from .engine.metrics import coco_metrics
    from .predict import Predictor

    coco = load_coco(Path(dataset_dir) / "annotations" / f"instance_{split}.json")
    predictor = Predictor(model_dir, run_mode=run_mode, threshold=0.0)
    cat_ids = sorted(coco.cats)
    predictions = {}
    for image_id in sorted(coco.imgs):
        path = Path(dataset_dir) / "images" / coco.imgs[image_id]["file_name"]
        predictions[image_id] = next(predictor.predict(str(path))).instances
    metrics = coco_metrics(coco, predictions, dict(enumerate(cat_ids)))
    return {k: metrics[k] for k in ("AP", "AP50", "AP75", "bbox_AP", "bbox_AP50")}


def quickstart_model_dir(device="cpu", epochs=DEFAULT_EPOCHS, num_train=DEFAULT_TRAIN, home=None):
    """Exported model folder of the quick-start model: exported from the shipped weights on first use (default
    settings), otherwise trained once (about 10 minutes on 2 CPU cores for the defaults)."""
    from .data.sample import generate_sample
    from .engine import checkpoint
    from .modes import run

    root = quickstart_root(epochs, num_train, home)
    train_dir = root / "train"
    model_dir = train_dir / "best_model" / "inference"
    if (model_dir / "inference.yml").exists():
        return model_dir
    if (epochs, num_train) == (DEFAULT_EPOCHS, DEFAULT_TRAIN) and SHIPPED.is_file():
        print(f"No model_dir given: exporting the shipped quick-start model {MODEL} (trained on the generated "
              f"sample, seed {SEED}) once; cached in {root}")
        return export_shipped(model_dir)
    for stale in root.parent.glob(f".{root.name}.*"):  # temp folders of an older, interrupted version
        shutil.rmtree(stale, ignore_errors=True)
    for stale in root.glob(".data.*"):  # an interrupted sample generation
        shutil.rmtree(stale, ignore_errors=True)
    resume = checkpoint.newest(train_dir)
    print(f"No model_dir given: {'resuming' if resume else 'training'} {MODEL} on the generated sample "
          f"({num_train} images, {epochs} epochs, seed {SEED}) once; cached in {root}")
    dataset = generate_sample(root / "data", preset="ci", num_train=num_train, seed=SEED, progress=False)["dataset_dir"]
    overrides = {"Global.mode": "train", "Global.dataset_dir": dataset, "Global.output": str(train_dir),
                 "Global.device": device, "Global.seed": SEED, "Train.epochs_iters": epochs,
                 "Train.eval_interval": epochs, "Train.resume_path": "auto"}
    run(MODEL, overrides)
    return model_dir


def training_scene(model_dir):
    """Path of the busiest training image of a quick-start model (what a barely trained model knows best)."""
    from .data.coco import load_coco

    data = Path(model_dir).parents[2] / "data"
    coco = load_coco(data / "annotations" / "instance_train.json")
    busiest = max(sorted(coco.imgs), key=lambda i: len(coco.getAnnIds(imgIds=[i])))
    return data / "images" / coco.imgs[busiest]["file_name"]


# ----------------------------------------------------------------------------- official weights
def official_model_dir(model_name, home=None, retries=1):
    """Exported folder of ``model_name`` with its official (COCO, 80 classes) weights: downloaded once, built,
    exported and cached. Raises a :class:`UserError` when the weights cannot be downloaded."""
    from .models.registry import official_weights_url
    from .models.weights import weights_file

    url = official_weights_url(model_name)
    if not url:
        raise UserError(f"{model_name} has no official weights URL in the registry")
    out = Path(home or cache_home()) / "official" / model_name / "inference"
    if (out / "inference.yml").is_file():
        return out
    file = weights_file(url, retries=retries)
    export_weights(model_name, file, out)
    return out


def export_weights(model_name, weights, out):
    """Export ``model_name`` with the weights in ``weights`` (an 80-class COCO checkpoint) into ``out``."""
    from .config import load_config
    from .data.categories import COCO_CLASSES
    from .engine.common import model_meta, prepare
    from .engine.export import export_inference
    from .paddle_env import import_paddle

    cfg = load_config(model_name)
    prepare(cfg)
    state = import_paddle().load(str(weights))
    tmp = out.with_name(out.name + ".partial")
    shutil.rmtree(tmp, ignore_errors=True)
    export_inference(state, model_meta(cfg, len(COCO_CLASSES), COCO_CLASSES), tmp)
    shutil.rmtree(out, ignore_errors=True)
    tmp.rename(out)
    return out


# ----------------------------------------------------------------------------- the pipeline's model
def exported_model_name(model_dir):
    info = yaml.safe_load((Path(model_dir) / "inference.yml").read_text(encoding="utf-8")) or {}
    return (info.get("Global") or {}).get("model_name")


def resolve_model(config, device="cpu", model_dir=None, notice=print):
    """``(model_dir, model_name, source)`` for a pipeline config (see the module docstring); ``source`` is
    ``model_dir``, ``official weights`` or ``quick-start model``."""
    sub = config["SubModules"][SUBMODULE]
    if model_dir is not None:  # an explicit argument names the model; the YAML's model_name does not apply
        return Path(model_dir), exported_model_name(model_dir), "model_dir"
    if sub.get("model_dir"):
        exported = exported_model_name(sub["model_dir"])
        if sub.get("model_name") and exported and sub["model_name"] != exported:
            raise UserError(f"SubModules.{SUBMODULE}.model_name is {sub['model_name']} but model_dir "
                            f"{sub['model_dir']} holds {exported} (its inference.yml); fix one of them")
        return Path(sub["model_dir"]), exported, "model_dir"
    name = sub.get("model_name")
    if name and name != MODEL:
        try:
            return official_model_dir(name), name, "official weights"
        except UserError as exc:
            notice(f"notice: official weights of {name} are not available ({_short(exc)}); running the embedded "
                   f"quick-start model {MODEL} instead")
    return quickstart_model_dir(device=device), MODEL, "quick-start model"


def model_plan(config, home=None):
    """One line saying which model a pipeline config will run (without downloading anything)."""
    sub = load_pipeline_config(config)["SubModules"][SUBMODULE]
    if sub.get("model_dir"):
        return f"model: {exported_model_name(sub['model_dir'])} from model_dir {sub['model_dir']}"
    name = sub.get("model_name")
    if not name or name == MODEL:
        return f"model: the quick-start model {MODEL} (trained once on the generated sample)"
    if (Path(home or cache_home()) / "official" / name / "inference" / "inference.yml").is_file():
        return f"model: {name} with its official weights (cached)"
    return (f"model: {name} with its official weights, downloaded on first use; where they cannot be downloaded, "
            f"the quick-start model {MODEL} runs instead")


def _short(exc, limit=160):
    text = str(exc).split("; ")[0]
    return text if len(text) <= limit else text[:limit - 3] + "..."


def create_pipeline(pipeline="instance_segmentation", device="cpu", model_dir=None, run_mode=None, use_hpip=False):
    """Build a pipeline (a registered name, a pipeline YAML or a dict) running the model its config names.

    ``model_dir`` (an exported model folder) overrides the YAML. ``run_mode``: ``paddle``, ``mkldnn`` (oneDNN; the
    CPU default), ``onnxruntime``, ``trt_fp32``/``trt_fp16`` (GPU); ``use_hpip=True`` picks the backend instead.
    The returned pipeline's ``model_name`` and ``model_source`` say which model runs and where it came from.
    """
    from .pipeline import create_pipeline as build

    config = load_pipeline_config(pipeline)
    resolved_dir, name, source = resolve_model(config, device=device, model_dir=model_dir)
    result = build(config, device=device, model_dir=resolved_dir, run_mode=run_mode, use_hpip=use_hpip)
    result.model_source = source
    return result
