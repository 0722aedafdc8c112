"""One function per ``Global.mode``; the CLI, the notebooks and the Python API all call :func:`run`.

Each mode lives in the module of the tutorial step it belongs to and is imported (with a plain import) only when
used, so that ``check_dataset`` never pays for importing the training engine.
"""
import os

from .config import load_config, validate_device
from .config.loader import normalize_overrides


def prepare_dataset(cfg):
    """What PaddleX does before a check: convert (``CheckDataset.convert``), then re-split (``CheckDataset.split``).

    Returns ``(dataset_dir, {"convert": summary or None, "split": summary or None})``. A conversion never touches
    the originals: the COCO result goes to ``{Global.output}/converted_dataset`` and is what gets split and checked.
    """
    from pathlib import Path

    from .data.check import dataset_dir_of

    dataset_dir = dataset_dir_of(cfg)
    output_dir, seed = Path(cfg["Global"]["output"]), cfg["Global"]["seed"]
    convert, split = cfg["CheckDataset"]["convert"], cfg["CheckDataset"]["split"]
    done = {"convert": None, "split": None}
    if convert["enable"]:
        from .data.convert import convert_dataset

        done["convert"] = convert_dataset(convert["src_dataset_type"], dataset_dir, output_dir / "converted_dataset",
                                          seed=seed, options=convert)
        dataset_dir = Path(done["convert"]["dataset_dir"])
    if split["enable"]:
        from .data.split import split_dataset

        done["split"] = split_dataset(dataset_dir, split["train_percent"], split["val_percent"], seed=seed)
    return dataset_dir, done


def check_dataset(cfg):
    from .data.check import check_dataset

    dataset_dir, done = prepare_dataset(cfg)
    return check_dataset(cfg, dataset_dir=dataset_dir, extra=done)


def train(cfg):
    from .engine.train import train
    from .models.registry import GENERAL, resolve_pretrain_weight

    t, model = cfg["Train"], cfg["Global"]["model"]
    if str(t["pretrain_weight_path"]).strip().lower() == GENERAL:
        from .models.shipped import general_weights

        t["pretrain_weight_path"] = str(general_weights(model))
    t["pretrain_weight_path"] = resolve_pretrain_weight(t["pretrain_weight_path"], model)
    return train(cfg)


def evaluate(cfg):
    from .engine.evaluate import evaluate

    return evaluate(cfg)


def export(cfg):
    from .engine.export import export

    return export(cfg)


def predict(cfg):
    from .predict import predict

    return predict(cfg)


MODE_FUNCTIONS = {"check_dataset": check_dataset, "train": train, "evaluate": evaluate, "export": export,
                  "predict": predict}


def mode_function(mode):
    return MODE_FUNCTIONS[mode]


def run(config=None, overrides=None, **kwargs):
    """Load ``config`` (YAML path or model name) with overrides and run its ``Global.mode``.

    ``overrides`` is a list of ``"Section.key=value"`` strings or a dict; keyword arguments are more
    overrides with ``__`` for dots, e.g. ``run("Mask-RT-DETR-S", Global__mode="check_dataset")``.
    Returns the mode's result dict.
    """
    extra = {key.replace("__", "."): value for key, value in kwargs.items()}
    cfg = load_config(config, normalize_overrides(overrides) + normalize_overrides(extra))
    cfg["Global"]["device"] = validate_device(cfg["Global"]["device"])
    os.makedirs(cfg["Global"]["output"], exist_ok=True)
    return mode_function(cfg["Global"]["mode"])(cfg)
