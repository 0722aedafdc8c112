"""The quick-start model, and :func:`create_pipeline` with it: what ``tl.create_pipeline()`` runs when no
``model_dir`` is given.

This module sits above the pipeline layer (it trains through :func:`tutorial_lib.modes.run`); the pipeline itself
only reads the cached export (:func:`tutorial_lib.pipeline.config.quickstart_export_dir`).

PaddleX downloads pretrained weights here; nothing can be downloaded on this machine, so the library trains
its small CPU model (``MaskRCNN-ResNet18-FPN-S``) on the generated sample once, seeded, and caches the
exported model (``train/best_model/inference``) with its training data (``data/``) under
``$TUTORIAL_LIB_HOME`` (default ``~/.cache/tutorial_lib``). Where a pretrained or
fine-tuned exported model is available, set ``SubModules.InstanceSegmentation.model_dir`` to it instead.
"""
import shutil
import tempfile
from pathlib import Path

from .models.registry import CPU_MODEL as MODEL
from .pipeline import config as pipeline_config
from .pipeline.config import SUBMODULE, cache_home, load_pipeline_config, quickstart_root

SEED = pipeline_config.QUICKSTART_SEED


def quickstart_model_dir(device="cpu", epochs=6, num_train=128, home=None):
    """Exported model folder of the quick-start model, trained on first use (about 10 minutes on 2 CPU cores;
    mask AP50 about 0.6 on the sample's val split, see docs/benchmarks.md)."""
    from ..data.sample import generate_sample
    from ..modes import run

    root = quickstart_root(epochs, num_train, home)
    model_dir = root / "train" / "best_model" / "inference"
    if (model_dir / "inference.yml").exists():
        return model_dir
    print(f"No model_dir given and no pretrained weights can be downloaded here: training {MODEL} on the "
          f"generated sample ({num_train} images, {epochs} epochs, seed {SEED}) once; cached in {root}")
    root.parent.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix=f".{root.name}.", dir=root.parent))
    try:
        dataset = generate_sample(work / "data", preset="ci", num_train=num_train, seed=SEED)["dataset_dir"]
        run(MODEL, {"Global.mode": "train", "Global.dataset_dir": dataset, "Global.output": str(work / "train"),
                    "Global.device": device, "Global.seed": SEED, "Train.epochs_iters": epochs,
                    "Train.eval_interval": epochs})
        if root.exists():
            shutil.rmtree(root)
        work.rename(root)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return model_dir


def training_scene(model_dir):
    """Path of the busiest training image of a quick-start model (what a barely trained model knows best)."""
    from ..data.coco import load_coco

    data = Path(model_dir).parents[2] / "data"
    coco = load_coco(data / "annotations" / "instance_train.json")
    busiest = max(sorted(coco.imgs), key=lambda i: len(coco.getAnnIds(imgIds=[i])))
    return data / "images" / coco.imgs[busiest]["file_name"]


def create_pipeline(pipeline="instance_segmentation", device="cpu", model_dir=None, run_mode=None, use_hpip=False):
    """:func:`tutorial_lib.pipeline.create_pipeline`, with the quick-start model trained on first use when neither
    ``model_dir`` nor the YAML's ``SubModules.InstanceSegmentation.model_dir`` names a model."""
    from .pipeline import create_pipeline as build

    if model_dir is None and load_pipeline_config(pipeline)["SubModules"][SUBMODULE]["model_dir"] is None:
        model_dir = quickstart_model_dir(device=device)
    return build(pipeline, device=device, model_dir=model_dir, run_mode=run_mode, use_hpip=use_hpip)
