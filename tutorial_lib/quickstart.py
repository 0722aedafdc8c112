"""The models this library makes itself: the shipped quick-start weights, the quick-start training, and official
weights exported for inference. :mod:`tutorial_lib.providers` turns them into model providers for
:func:`tutorial_lib.create_pipeline`.

The quick-start model is this library's small CPU model trained on the generated sample (seeded). Its weights ship
with the package (:data:`SHIPPED`, 8-bit per-row quantised to stay small; provenance and metrics inside), so the
first quick experience only exports them (well under a minute). Without that file, or with other training
settings, it is trained once into ``$TUTORIAL_LIB_HOME/quickstart/`` (about 10 minutes on 2 CPU cores); an
interrupted run resumes from its last checkpoint and leaves no temporary folders behind.

Official weights (the registry's PaddleDetection URL) are downloaded once into the weights cache, built, exported
and cached under ``$TUTORIAL_LIB_HOME/official/``.

This module sits above the pipeline layer (it trains and exports through :func:`tutorial_lib.modes.run` and the
engine, imported only where needed); the pipeline itself only reads exported models.
"""
import json
import shutil
from pathlib import Path

import yaml

from .errors import UserError
from .models.registry import CPU_MODEL as MODEL
from .models.shipped import (ASSETS, cache_home, general_asset, general_weights, pack_weights,  # noqa: F401
                             unpack_weights)

SEED = 0
DEFAULT_EPOCHS, DEFAULT_TRAIN = 6, 128
SHIPPED_ASSET = f"quickstart_{MODEL}.npz"  # the one name of the shipped weights (in tutorial_lib/assets/)
SHIPPED = ASSETS / SHIPPED_ASSET


def quickstart_root(epochs=DEFAULT_EPOCHS, num_train=DEFAULT_TRAIN, home=None):
    """Folder of a cached quick-start model (made by :func:`quickstart_model_dir`)."""
    name = f"{MODEL}_seed{SEED}_train{num_train}_ep{epochs}"
    return Path(home or cache_home()) / "quickstart" / name


def quickstart_export_dir(home=None):
    """The default quick-start model's exported folder (it may not exist yet)."""
    return quickstart_root(home=home) / "train" / "best_model" / "inference"


# ----------------------------------------------------------------------------- the shipped weights
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


def quickstart_model_dir(device="cpu", epochs=DEFAULT_EPOCHS, num_train=DEFAULT_TRAIN, home=None, shipped=SHIPPED):
    """Exported model folder of the quick-start model: exported from the shipped weights (``shipped``) on first use
    (default settings), otherwise trained once (about 10 minutes on 2 CPU cores for the defaults)."""
    from .data.sample import generate_sample
    from .engine import checkpoint
    from .modes import run

    root = quickstart_root(epochs, num_train, home)
    train_dir = root / "train"
    model_dir = train_dir / "best_model" / "inference"
    if (model_dir / "inference.yml").exists():
        return model_dir
    if (epochs, num_train) == (DEFAULT_EPOCHS, DEFAULT_TRAIN) and Path(shipped).is_file():
        print(f"No model_dir given: exporting the shipped quick-start model {MODEL} (trained on the generated "
              f"sample, seed {SEED}) once; cached in {root}")
        return export_shipped(model_dir, shipped)
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


# ----------------------------------------------------------------------------- exported models
def exported_model_name(model_dir):
    """The model name an exported folder's ``inference.yml`` records (None when it records none)."""
    info = yaml.safe_load((Path(model_dir) / "inference.yml").read_text(encoding="utf-8")) or {}
    return (info.get("Global") or {}).get("model_name")
