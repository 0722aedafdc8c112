"""One function per ``Global.mode``; the CLI, the notebooks and the Python API all call :func:`run`.

Each mode lives in the module of the tutorial step it belongs to and is imported only when used,
so that ``check_dataset`` never pays for importing the training engine.
"""
import importlib
import os

from .config import load_config, validate_device
from .config.loader import normalize_overrides

# mode -> "module:function", imported on first use
MODE_FUNCTIONS = {
    "check_dataset": "tutorial_lib.data.check:check_dataset",
    "train": "tutorial_lib.engine.train:train",
    "evaluate": "tutorial_lib.engine.evaluate:evaluate",
    "export": "tutorial_lib.engine.export:export",
    "predict": "tutorial_lib.predict:predict",
}


def mode_function(mode):
    module_name, _, func_name = MODE_FUNCTIONS[mode].partition(":")
    return getattr(importlib.import_module(module_name), func_name)


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
