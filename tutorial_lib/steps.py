"""The tutorial's steps as typed functions: ``check_dataset``, ``train``, ``evaluate``, ``export``, ``predict``.

Each one is the Python twin of one command line, and is built *from* that command line: the keyword arguments
become PaddleX ``-o Section.key=value`` strings, which go through the same parser as the CLI's, so a step and its
``.command`` run the same config and write the same files::

    result = tl.steps.train("MaskRCNN-ResNet18-FPN-S", "data/remote_sense_sample", epochs=10, learning_rate=0.01)
    print(result.command)      # python -m tutorial_lib -c MaskRCNN-ResNet18-FPN-S -o Global.mode=train -o ...
    result.best_mask_ap, result.model_dir, result.history
    result.to_paddlex_json()   # PaddleX's train_result.json

Every result is a dataclass with named fields, ``.command`` (the CLI twin, which the notebooks print once per step)
and ``.to_paddlex_json()`` (the JSON PaddleX writes for that mode). Settings that have no keyword here go in
``options={"Train.log_interval": 5, ...}`` under their PaddleX names.
"""
import shlex
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Dict, List, Optional, Tuple, Union

from .data.report import DatasetReport
from .modes import run
from .quickstart import exported_model_name

__all__ = ["check_dataset", "train", "evaluate", "export", "predict", "cli_command", "CheckResult", "TrainResult",
           "EvalResult", "ExportResult", "PredictResult"]

Options = Optional[Dict[str, Any]]
PathLike = Union[str, Path]


def override_text(value: Any) -> str:
    """A value as the CLI's YAML-scalar parser reads it back (``True``, ``None``, ``0.001``, ``[a, b]``)."""
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(override_text(v) for v in value) + "]"
    return str(value)


def overrides_for(mode: str, settings: Dict[str, Any], options: Options = None) -> List[str]:
    """``["Global.mode=MODE", "Key=value", ...]`` for the settings, then the ``options``, that are not None (None
    keeps the config's value)."""
    items = {"Global.mode": mode, **settings, **(options or {})}
    items = {k: v for k, v in items.items() if v is not None}
    return [f"{key}={override_text(value)}" for key, value in items.items()]


def cli_command(model: str, overrides: List[str]) -> str:
    """The shell command that runs ``model`` with ``overrides`` (quoted where the shell needs it)."""
    return " ".join(["python -m tutorial_lib -c", shlex.quote(str(model))]
                    + [f"-o {shlex.quote(item)}" for item in overrides])


def _run(model: str, mode: str, settings: Dict[str, Any], options: Options) -> Tuple[Any, str]:
    overrides = overrides_for(mode, settings, options)
    return run(str(model), overrides), cli_command(model, overrides)


@dataclass(kw_only=True)
class StepResult:
    """What every step returns: the CLI twin and PaddleX's JSON of the mode."""

    command: str
    raw: Any = field(repr=False)

    def to_paddlex_json(self) -> Any:
        return self.raw


# ----------------------------------------------------------------------------- step 4
@dataclass(kw_only=True)
class CheckResult(StepResult):
    """``check_dataset``: the verdict, PaddleX's ``attributes`` / ``analysis``, and the full :class:`DatasetReport`
    (problems with their fixes)."""

    check_pass: bool
    dataset_dir: str
    attributes: dict
    report: DatasetReport = field(repr=False)

    def summary(self) -> str:
        return self.report.summary()


def check_dataset(model: str, dataset_dir: PathLike, *, output: PathLike = "output/check_dataset", convert_from: Optional[str] = None,
                  split: Optional[Tuple[float, float]] = None, seed: Optional[int] = None, options: Options = None) -> CheckResult:
    """``-o Global.mode=check_dataset``: check (after converting from ``convert_from``, e.g. ``"LabelMe"``, and
    re-splitting into ``split=(train_percent, val_percent)`` when given) and return the report."""
    settings: Dict[str, Any] = {"Global.dataset_dir": dataset_dir, "Global.output": output, "Global.seed": seed}
    if convert_from:
        settings.update({"CheckDataset.convert.enable": True, "CheckDataset.convert.src_dataset_type": convert_from})
    if split:
        settings.update({"CheckDataset.split.enable": True, "CheckDataset.split.train_percent": split[0],
                         "CheckDataset.split.val_percent": split[1]})
    raw, command = _run(model, "check_dataset", settings, options)
    report = DatasetReport.from_json(raw, output_dir=output)
    return CheckResult(command=command, raw=raw, check_pass=bool(raw["check_pass"]), dataset_dir=raw["dataset_path"],
                       attributes=raw["attributes"], report=report)


# ----------------------------------------------------------------------------- step 5
@dataclass(kw_only=True)
class TrainResult(StepResult):
    """``train``: where the run is, its per-epoch history (loss terms, lr, bbox / mask AP) and its best epoch."""

    output: Path
    done: bool
    history: List[dict]
    best_epoch: Optional[int]
    labels: List[str]

    @property
    def best_mask_ap(self) -> Optional[float]:
        return next((r.get("mask_AP") for r in self.history if r["epoch"] == self.best_epoch), None)

    @property
    def best_weights(self) -> Path:
        """``best_model/best_model.pdparams``: what evaluate and export read."""
        return self.output / "best_model" / "best_model.pdparams"

    @property
    def model_dir(self) -> Path:
        """``best_model/inference``: the exported best model (what predict and the pipeline read)."""
        return self.output / "best_model" / "inference"

    def to_paddlex_json(self) -> dict:
        return {k: v for k, v in self.raw.items() if k not in ("history", "best_epoch", "output")}


def train(model: str, dataset_dir: PathLike, *, output: PathLike = "output/train", epochs: Optional[int] = None,
          learning_rate: Optional[float] = None, batch_size: Optional[int] = None,
          pretrain_weight_path: Optional[PathLike] = None, resume_path: Optional[PathLike] = None, device: Optional[str] = None, seed: Optional[int] = None,
          options: Options = None) -> TrainResult:
    """``-o Global.mode=train``: train (or fine-tune from ``pretrain_weight_path``; ``resume_path="auto"``
    continues an interrupted run) and return the run's record. ``None`` keeps the model config's value."""
    raw, command = _run(model, "train", {
        "Global.dataset_dir": dataset_dir, "Global.output": output, "Global.device": device, "Global.seed": seed,
        "Train.epochs_iters": epochs, "Train.learning_rate": learning_rate, "Train.batch_size": batch_size,
        "Train.pretrain_weight_path": pretrain_weight_path, "Train.resume_path": resume_path}, options)
    return TrainResult(command=command, raw=raw, output=Path(raw["output"]), done=bool(raw["done_flag"]),
                       history=list(raw["history"]), best_epoch=raw["best_epoch"],
                       labels=[raw["label_dict"][k] for k in sorted(raw["label_dict"], key=int)])


@dataclass(kw_only=True)
class EvalResult(StepResult):
    """``evaluate``: COCO metrics (mask ``AP``, ``AP50``, ``AP75``, ``bbox_AP``, ...; -1 where COCO has no object of
    that size), the confusion matrix and error counts at ``score_threshold``, and the figures' paths."""

    metrics: dict
    confusion: dict
    errors: dict
    figures: dict
    num_images: int

    @property
    def mask_ap(self) -> float:
        return self.metrics["AP"]

    @property
    def mask_ap50(self) -> float:
        return self.metrics["AP50"]


def evaluate(model: str, dataset_dir: PathLike, weight_path: PathLike, *, output: PathLike = "output/evaluate", device: Optional[str] = None,
             score_threshold: Optional[float] = None, options: Options = None) -> EvalResult:
    """``-o Global.mode=evaluate``: the val split of ``dataset_dir`` with ``weight_path`` (a ``.pdparams``)."""
    raw, command = _run(model, "evaluate", {
        "Global.dataset_dir": dataset_dir, "Global.output": output, "Global.device": device,
        "Evaluate.weight_path": weight_path, "Evaluate.score_threshold": score_threshold}, options)
    return EvalResult(command=command, raw=raw, metrics=raw["metrics"], confusion=raw["confusion_matrix"], errors=raw["errors"],
                      figures=raw["figures"], num_images=raw["num_images"])


@dataclass(kw_only=True)
class ExportResult(StepResult):
    """``export``: the inference model folder (``inference.pdmodel`` / ``.pdiparams`` / ``inference.yml``)."""

    model_dir: Path


def export(model: str, weight_path: PathLike, *, output: PathLike = "output/export", options: Options = None) -> ExportResult:
    """``-o Global.mode=export``: ``weight_path`` (a ``.pdparams``) -> a static inference model in ``output``."""
    raw, command = _run(model, "export", {"Global.output": output, "Export.weight_path": weight_path}, options)
    return ExportResult(command=command, raw=raw, model_dir=Path(raw["save_dir"]))


# ----------------------------------------------------------------------------- step 6
@dataclass(kw_only=True)
class PredictResult(StepResult):
    """``predict``: one PaddleX result dict per input (boxes, classes, scores, masks), with the saved files."""

    results: List[dict]

    @property
    def images(self) -> List[str]:
        return [r["save_img"] for r in self.results]

    @property
    def num_instances(self) -> List[int]:
        return [r["num_instances"] for r in self.results]


def predict(model_dir: PathLike, input: Union[PathLike, List[PathLike]], *, output: PathLike = "output/predict", threshold: Optional[float] = None,
            run_mode: Optional[str] = None, device: Optional[str] = None, options: Options = None) -> PredictResult:
    """``-o Global.mode=predict``: the exported model in ``model_dir`` on ``input`` (a file, folder or list)."""
    raw, command = _run(exported_model_name(model_dir), "predict", {
        "Global.output": output, "Global.device": device, "Predict.model_dir": model_dir, "Predict.input": input,
        "Predict.threshold": threshold, "Predict.kernel_option.run_mode": run_mode}, options)
    return PredictResult(command=command, raw=raw, results=list(raw))
