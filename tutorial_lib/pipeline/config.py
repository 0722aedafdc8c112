"""Pipeline YAML (PaddleX layout): write the default with ``--get_pipeline_config``, read and validate an edited one.

    pipeline_name: instance_segmentation
    SubModules:
      InstanceSegmentation:
        module_name: instance_segmentation
        model_name: Mask-RT-DETR-S
        model_dir: null        # an exported model folder (inference.pdmodel + inference.yml)
        batch_size: 1
        threshold: 0.5
"""
import copy
import difflib
from pathlib import Path

import yaml

from ..errors import UserError
from .registry import PIPELINES

SUBMODULE = "InstanceSegmentation"
SUBMODULE_KEYS = {"module_name", "model_name", "model_dir", "batch_size", "threshold"}


def default_pipeline_config(name="instance_segmentation"):
    if name not in PIPELINES:
        close = difflib.get_close_matches(name, list(PIPELINES), n=1)
        hint = f"; did you mean {close[0]!r}?" if close else f"; known pipelines: {', '.join(PIPELINES)}"
        raise UserError(f"unknown pipeline {name!r}{hint}")
    info = PIPELINES[name]
    return {"pipeline_name": name,
            "SubModules": {info["module"]: {"module_name": name, "model_name": info["default_model"],
                                            "model_dir": None, "batch_size": 1, "threshold": 0.5}}}


def get_pipeline_config(name="instance_segmentation", save_path=None):
    """The default pipeline config as a dict; with ``save_path`` (a folder) also written to ``{save_path}/{name}.yaml``."""
    cfg = default_pipeline_config(name)
    if save_path is not None:
        path = Path(save_path) / f"{name}.yaml"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(yaml.safe_dump(cfg, sort_keys=False), encoding="utf-8")
        return path
    return cfg


def _check(cfg, source):
    if not isinstance(cfg, dict):
        raise UserError(f"pipeline config {source} must be a mapping, got {type(cfg).__name__}")
    unknown = sorted(set(cfg) - {"pipeline_name", "SubModules"})
    if unknown:
        raise UserError(f"unknown key(s) {unknown} in pipeline config {source}; allowed: pipeline_name, SubModules")
    name = cfg.get("pipeline_name")
    default_pipeline_config(name if isinstance(name, str) else str(name))
    sub = (cfg.get("SubModules") or {}).get(SUBMODULE)
    if not isinstance(sub, dict):
        raise UserError(f"pipeline config {source} needs SubModules.{SUBMODULE} (a mapping)")
    unknown = sorted(set(sub) - SUBMODULE_KEYS)
    if unknown:
        close = [m for key in unknown for m in difflib.get_close_matches(key, SUBMODULE_KEYS, n=1)]
        hint = f"; did you mean {', '.join(close)}?" if close else f"; allowed: {', '.join(sorted(SUBMODULE_KEYS))}"
        raise UserError(f"unknown key(s) {unknown} in SubModules.{SUBMODULE} of {source}{hint}")
    merged = {**default_pipeline_config(name)["SubModules"][SUBMODULE], **sub}
    batch_size, threshold = merged["batch_size"], merged["threshold"]
    if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
        raise UserError(f"SubModules.{SUBMODULE}.batch_size in {source} must be an integer >= 1, got {batch_size!r}")
    if threshold is not None and (isinstance(threshold, bool) or not isinstance(threshold, (int, float))
                                  or not 0 <= threshold <= 1):
        raise UserError(f"SubModules.{SUBMODULE}.threshold in {source} must be a number in [0, 1], got {threshold!r}")
    model_dir = merged["model_dir"]
    if model_dir is not None:
        model_dir = Path(model_dir)
        if not model_dir.is_absolute() and source.endswith((".yaml", ".yml")):
            model_dir = Path(source).parent / model_dir
        if not (model_dir / "inference.yml").exists():
            raise UserError(f"SubModules.{SUBMODULE}.model_dir {model_dir} in {source} is not an exported model "
                            "(no inference.yml); export one with -o Global.mode=export")
        merged["model_dir"] = str(model_dir)
    cfg = copy.deepcopy(cfg)
    cfg["SubModules"][SUBMODULE] = merged
    return cfg


def load_pipeline_config(pipeline):
    """A registered pipeline name, a YAML path or a dict -> validated config dict."""
    if isinstance(pipeline, dict):
        return _check(pipeline, "<dict>")
    text = str(pipeline)
    if text in PIPELINES:
        return default_pipeline_config(text)
    path = Path(text)
    if not path.exists():
        if path.suffix in (".yaml", ".yml"):
            raise UserError(f"pipeline config {path} does not exist")
        default_pipeline_config(text)  # raises with suggestions
    try:
        cfg = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as exc:
        raise UserError(f"pipeline config {path} is not valid YAML: {str(exc).splitlines()[0]}") from None
    return _check(cfg, str(path))
