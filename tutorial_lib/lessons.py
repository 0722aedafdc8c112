"""The lessons' helpers: what a notebook cell calls by name instead of defining it (the app layer).

Notebook 05 trains, sweeps and reads its runs; 06 and 07 find the model 05 trained; every notebook formats tables
and folds long reports::

    sweep = tl.Sweep(model, dataset_dir, out / "sweeps", device="cpu", seed=0, batch_size=2)
    lr_table = sweep.learning_rates([0.002, 0.005, 0.01], epochs=2)   # each setting trained once, then cached
    tl.plot_lr_grid(lr_table)
    tl.plot_history({"fine-tuned": tl.history_frame(run_a), "from scratch": tl.history_frame(run_b)})
    trained = tl.trained_model("../output/05_train", smoke, model)   # .model_dir, .dataset_dir (06, 07)
    tl.table(metrics_rows)                       # COCO's -1 ("no object of that size") shows as "–"

Figures live in :mod:`tutorial_lib.figures`; the interactive browsers in :mod:`tutorial_lib.widgets`.
"""
import contextlib
import hashlib
import html
import io
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Dict, List, Optional, Tuple

import numpy as np

from .errors import UserError
from .models.registry import CPU_MODEL

# The model notebooks 05-07 train / use on a GPU: the tutorial's own model, with its bundled recipe.
GPU_MODEL = "Mask-RT-DETR-H"

COCO_MISSING = "–"
COCO_FOOTNOTE = ("– : COCO reports -1, no object of that size in the val split (APs: objects under 32² px, "
                 "APm: 32²–96² px, APl: over 96² px).")

__all__ = ["COCO_FOOTNOTE", "GPU_MODEL", "Sweep", "TrainedModel", "best_epoch", "busiest_image", "capture_output",
           "coco_value", "compare_run_modes", "default_model", "error_summary", "fold", "history_frame", "run_dir",
           "table", "trained_model", "trained_model_dir", "val_examples"]


# ----------------------------------------------------------------------------- where runs are
def default_model(device="cpu"):
    """The model notebooks 05-07 use by default: the small CPU model on a CPU (it learns the sample in minutes),
    Mask-RT-DETR-H (the tutorial's model, bundled recipe) on a GPU."""
    return GPU_MODEL if str(device).lower().startswith("gpu") else CPU_MODEL


def run_dir(notebook_dir, smoke, model=None):
    """A notebook's output folder for one kind of run: ``<notebook_dir>/smoke`` or ``/full`` (then ``/<model>``),
    so that a smoke run and a full run (or two models) never share a dataset or a checkpoint."""
    path = Path(notebook_dir) / ("smoke" if smoke else "full")
    return path / model if model else path


def trained_model_dir(train_root, smoke, model):
    """Where notebook 05 leaves the exported model it trained: ``<05 root>/<smoke|full>/<model>/train/best_model/
    inference``."""
    return run_dir(train_root, smoke, model) / "train" / "best_model" / "inference"


@dataclass(frozen=True)
class TrainedModel:
    """The model notebook 05 trained: its exported folder and the data it was trained on (None where unknown)."""

    model: str
    model_dir: Path
    dataset_dir: Optional[Path]


def trained_model(train_root, smoke, model, model_dir=None):
    """The model notebook 05 trained with this ``model`` and ``smoke`` (or the exported ``model_dir`` given: its
    name is then the one its ``inference.yml`` records), and the dataset it was trained on: the sample 05 generated beside its run, else ``Global.dataset_dir`` of the
    run's ``config.yaml``. Raises :class:`UserError` (run 05 first) when there is no exported model."""
    model_dir = Path(model_dir) if model_dir else trained_model_dir(train_root, smoke, model)
    if not (model_dir / "inference.yml").is_file():
        raise UserError(f"no exported model in {model_dir}: run notebook 05 with model={model!r}, smoke={smoke} "
                        "first, or set model_dir to an exported model folder")
    from .quickstart import exported_model_name

    return TrainedModel(exported_model_name(model_dir) or str(model), model_dir, _training_data(model_dir))


def _training_data(model_dir):
    """``<run>/train/best_model/inference`` -> the dataset of ``<run>/train``: ``<run>/remote_sense_sample`` (05's
    generated sample) or the ``Global.dataset_dir`` its ``config.yaml`` records, where it exists."""
    train_dir = model_dir.parent.parent
    sample = train_dir.parent / "remote_sense_sample"
    if (sample / "annotations").is_dir():
        return sample
    config = train_dir / "config.yaml"
    if config.is_file():
        import yaml

        recorded = (yaml.safe_load(config.read_text(encoding="utf-8")) or {}).get("Global", {}).get("dataset_dir")
        if recorded and Path(recorded).is_dir():
            return Path(recorded)
    return None


# ----------------------------------------------------------------------------- training runs
def history_frame(run):
    """A run's ``metrics.csv`` (one row per epoch) as a DataFrame; ``run``: its folder, the CSV itself, or a
    ``TrainResult``."""
    import pandas as pd

    path = Path(getattr(run, "output", run))
    csv = path if path.suffix == ".csv" else path / "metrics.csv"
    if not csv.is_file():
        raise UserError(f"no metrics.csv in {csv.parent}: is it a training run's output folder?")
    return pd.read_csv(csv)


def _rows(history):
    import pandas as pd

    history = getattr(history, "history", history)
    if isinstance(history, pd.DataFrame):
        return history.to_dict("records")
    return list(history)


def _number(value):
    try:
        value = float(value)
    except (TypeError, ValueError):
        return None
    return None if np.isnan(value) else value


def best_epoch(history, metric="mask_AP"):
    """The epoch with the highest ``metric`` (the first one on a tie) of a run's history (``metrics.csv`` rows, a
    DataFrame or a ``TrainResult``): ``{"best epoch", "best mask AP", "mask AP50", "bbox AP", "final loss"}``, the
    AP values at that epoch and the last epoch's loss; None where the history has no such value."""
    rows = _rows(history)
    scored = [r for r in rows if _number(r.get(metric)) is not None]
    best = max(scored, key=lambda r: _number(r[metric])) if scored else {}
    return {"best epoch": int(best["epoch"]) if best else None,
            "best mask AP": _number(best.get(metric)),
            "mask AP50": _number(best.get("mask_AP50")),
            "bbox AP": _number(best.get("bbox_AP")),
            "final loss": _number(rows[-1].get("loss")) if rows else None}


class Sweep:
    """Training runs that differ in learning rate and epochs only, each trained once (``tl.train``, the typed
    step) and kept by its settings: asking again for a setting, from another sweep or table, reuses the run. The
    same seed and settings give the same run, so this changes no number.

    ``settings`` go to every ``tl.train`` call (``device``, ``seed``, ``batch_size``, ``pretrain_weight_path``,
    ``options={...}``); sweep runs skip exporting an inference model (``Train.export_best=False``). ``train``:
    the function that trains (default :func:`tutorial_lib.steps.train`)::

        sweep = tl.Sweep("MaskRCNN-ResNet18-FPN-S", dataset_dir, out / "sweeps", seed=0, device="cpu")
        sweep.add(main_run, lr=0.005, epochs=5)              # a run made elsewhere with the same settings
        lr_table = sweep.learning_rates([0.002, 0.005, 0.01], epochs=2)
        epoch_table = sweep.epochs([1, 2, 5], lr=sweep.best_learning_rate(lr_table))
    """

    COLUMNS = ["learning rate", "epochs", "best mask AP", "mask AP50", "best epoch", "final loss"]

    def __init__(self, model: str, dataset_dir: Any, output: Any, *, train: Optional[Callable] = None,
                 **settings: Any) -> None:
        self.model, self.dataset_dir, self.output = str(model), Path(dataset_dir), Path(output)
        self.settings = settings
        self._train = train
        self.runs: Dict[Tuple, Any] = {}

    def _key(self, lr, epochs, extra):
        return (float(lr), int(epochs), tuple(sorted((k, repr(v)) for k, v in extra.items())))

    def folder(self, lr, epochs, **extra):
        """The run folder of one setting: ``<output>/lr<lr>_epochs<epochs>`` (plus a digest of ``extra``)."""
        name = f"lr{float(lr):g}_epochs{int(epochs)}"
        if extra:
            name += "_" + hashlib.sha1(repr(self._key(lr, epochs, extra)[2]).encode()).hexdigest()[:8]
        return self.output / name

    def add(self, result, lr, epochs, **extra):
        """Keep ``result`` (a ``TrainResult`` made with the sweep's settings) as the run of this setting."""
        self.runs[self._key(lr, epochs, extra)] = result
        return result

    def run(self, lr, epochs, **extra):
        """The run with this learning rate and number of epochs (``extra``: more ``tl.train`` keywords for this
        run only), trained now unless it was already."""
        key = self._key(lr, epochs, extra)
        if key not in self.runs:
            from . import steps

            settings = {**self.settings, **extra}
            options = {**(settings.pop("options", None) or {}), "Train.export_best": False}
            train = self._train or steps.train
            self.runs[key] = train(self.model, self.dataset_dir, output=self.folder(lr, epochs, **extra),
                                   epochs=int(epochs), learning_rate=float(lr), options=options, **settings)
        return self.runs[key]

    def table(self, settings=None):
        """One row per run (``settings``: (lr, epochs) pairs, trained where not yet; default every run so far):
        learning rate, epochs, best mask AP, mask AP50 (at that epoch), best epoch, final loss."""
        import pandas as pd

        keys = [self._key(lr, n, {}) for lr, n in settings] if settings is not None else list(self.runs)
        rows = []
        for key in keys:
            run = self.runs[key] if key in self.runs else self.run(key[0], key[1])
            found = best_epoch(run.history)
            rows.append({"learning rate": key[0], "epochs": key[1], **{c: found[c] for c in self.COLUMNS[2:]}})
        return pd.DataFrame(rows, columns=self.COLUMNS)

    def learning_rates(self, values, epochs):
        """Train each learning rate of ``values`` for ``epochs`` (once); their table."""
        return self.table([(lr, epochs) for lr in values])

    def epochs(self, values, lr):
        """Train ``lr`` for each number of epochs of ``values`` (once); their table."""
        return self.table([(lr, n) for n in values])

    @staticmethod
    def best_learning_rate(table):
        """The learning rate of the best row: highest best mask AP, then lowest final loss."""
        ranked = table.sort_values(["best mask AP", "final loss"], ascending=[False, True], na_position="last")
        return float(ranked.iloc[0]["learning rate"])

    def folders(self):
        """``{"lr 0.005, 2 epochs": run folder}`` of every run (what ``tl.RunComparer`` takes)."""
        return {f"lr {key[0]:g}, {key[1]} epochs": Path(result.output) for key, result in self.runs.items()}


# ----------------------------------------------------------------------------- evaluation examples
def val_examples(dataset_dir, count=4, split="val", busiest=True):
    """``count`` images of a COCO dataset's ``split`` for the error grids: ``(paths, ground truth, labels)``, the
    ground truth as :class:`Instances` with class ids 0..N-1 (categories in id order, as the model numbers them).
    ``busiest``: the images with the most objects (ties: lowest id); else the first ones."""
    from .data.coco import load_coco
    from .viz import coco_instances

    dataset_dir = Path(dataset_dir)
    coco = load_coco(dataset_dir / "annotations" / f"instance_{split}.json")
    ids = sorted(coco.imgs)
    if busiest:
        ids = sorted(ids, key=lambda i: -len(coco.getAnnIds(imgIds=[i])))
    cat_ids = sorted(coco.cats)
    paths, truths = [], []
    for image_id in ids[:count]:
        truth = coco_instances(coco, image_id)
        truth.class_ids = np.array([cat_ids.index(int(c)) for c in truth.class_ids], np.int64)
        paths.append(dataset_dir / "images" / coco.imgs[image_id]["file_name"])
        truths.append(truth)
    return paths, truths, [coco.cats[c]["name"] for c in cat_ids]


def error_summary(errors, confusion=None):
    """The error breakdown as one paragraph, in the figures' vocabulary and with the run's numbers (so that prose
    beside :func:`tutorial_lib.figures.plot_errors` stays true when the notebook runs again)."""
    kinds = ("correct", "localisation", "confusion", "duplicate", "background")
    predictions = sum(int(errors.get(k, 0)) for k in kinds)
    threshold = (confusion or {}).get("score_threshold")
    at = f"At score ≥ {threshold:g}, " if threshold is not None else ""
    text = (f"{at}{errors['correct']} of {predictions} predictions are correct (their class, mask IoU ≥ 0.5). "
            f"The others: {errors['localisation']} localisation (own class, IoU 0.1–0.5), {errors['confusion']} "
            f"confusion (another class's object), {errors['duplicate']} duplicate (object already taken), "
            f"{errors['background']} background (no object within IoU 0.1).")
    if confusion is not None:
        objects = int(np.asarray(confusion["matrix"])[:-1].sum())
        share = f" ({errors['missed'] / objects:.0%})" if objects else ""
        return text + f" {errors['missed']} of {objects} val objects{share} were missed: no prediction took them."
    return text + f" {errors['missed']} val objects were missed: no prediction took them."


def busiest_image(dataset_dir, split="train"):
    """Path of the image with the most annotations in a COCO dataset's ``split`` (ties: the lowest image id): the
    scene a barely trained model knows best, and the richest one to look at."""
    from .data.coco import load_coco

    dataset_dir = Path(dataset_dir)
    coco = load_coco(dataset_dir / "annotations" / f"instance_{split}.json")
    busiest = max(sorted(coco.imgs), key=lambda i: len(coco.getAnnIds(imgIds=[i])))
    return dataset_dir / "images" / coco.imgs[busiest]["file_name"]


# ----------------------------------------------------------------------------- deployment
RUN_MODES = ("paddle", "mkldnn", "onnxruntime", "openvino")


def compare_run_modes(models, image, run_modes=RUN_MODES, device="cpu", repeats=5, threshold=0.0,
                      predictor=None, timer=None) -> List[dict]:
    """Time each exported model of ``models`` ({name: model folder}) on ``image`` with each run mode: one row per
    (model, run mode) with ``ms per image`` (the median of ``repeats``) and ``instances``, or a ``note`` where the
    model does not convert to ONNX (the operators paddle2onnx lacks). ``predictor``: the predictor class (default
    :class:`tutorial_lib.predict.Predictor`); ``timer``: ``timer(fn, repeats=)`` -> ms (default
    :func:`tutorial_lib.bench.median_ms`)."""
    from .predict.onnx_export import UnsupportedModelError

    if predictor is None:
        from .predict import Predictor as predictor
    if timer is None:
        from .paddle_env import import_paddle

        import_paddle()
        from .bench import median_ms as timer

    rows = []
    for name, folder in models.items():
        for run_mode in run_modes:
            try:
                model = predictor(folder, device=device, run_mode=run_mode, threshold=threshold)
            except UnsupportedModelError as exc:
                rows.append({"model": name, "run_mode": run_mode, "note": "no ONNX: " + ", ".join(exc.ops)})
                continue
            found = len(next(model.predict(image)))
            rows.append({"model": name, "run_mode": run_mode,
                         "ms per image": timer(lambda: next(model.predict(image)), repeats=repeats),
                         "instances": found})
    return rows


# ----------------------------------------------------------------------------- showing results
def capture_output(fn, *args, **kwargs):
    """Call ``fn`` with its printed output captured; return ``(its result, the text it printed)``."""
    buffer = io.StringIO()
    with contextlib.redirect_stdout(buffer):
        result = fn(*args, **kwargs)
    return result, buffer.getvalue()


def fold(summary, text, max_lines=None):
    """A one-line ``summary`` with ``text`` (a long report, a YAML, a dict) folded under it: the reader clicks to
    see the rest. Returns an object the notebook displays (HTML ``<details>``; plain text without a front end)."""
    if not isinstance(text, str):
        import json

        text = json.dumps(text, indent=2, ensure_ascii=False, default=str)
    lines = text.rstrip("\n").splitlines()
    if max_lines is not None and len(lines) > max_lines:
        lines = lines[:max_lines] + [f"... {len(lines) - max_lines} more lines"]
    body = html.escape("\n".join(lines))
    count = f" ({len(lines)} lines)" if len(lines) > 1 else ""
    return _Folded(f"<details><summary>{html.escape(summary)}{count}</summary><pre>{body}</pre></details>",
                   f"{summary}{count}")


class _Folded:
    def __init__(self, html_text, plain):
        self._html, self._plain = html_text, plain

    def _repr_html_(self):
        return self._html

    def __repr__(self):
        return self._plain


def _is_coco_column(name):
    """A COCO AP column (``AP``, ``AP50``, ``APs``, ``mask_AP``, ``bbox AP``...): there -1 means "no object"."""
    return "AP" in str(name)


def coco_value(value):
    """COCO's -1 ("no object of that size in this split") as ``"–"``; any other value unchanged."""
    number = _number(value) if not isinstance(value, (bool, np.bool_, str)) else None
    return COCO_MISSING if number == -1 else value


def table(data, digits=3, missing="-", drop_empty=True, index=True):
    """A readable table: ``data`` (a DataFrame, a list of dicts or a dict of columns) with empty columns dropped,
    each number column rounded to one precision (``digits`` significant digits for its largest value, thousands
    separators past 1,000), ``missing`` for NaN / None, text left-aligned and never cut. In COCO AP columns
    (names holding ``AP``) -1 shows as "–", with :data:`COCO_FOOTNOTE` under the table. Returns a pandas Styler
    (HTML in a notebook)."""
    import pandas as pd

    df = data.copy() if isinstance(data, pd.DataFrame) else pd.DataFrame(data)
    if df.empty:
        df = pd.DataFrame({"": ["(no rows)"]})
        index = False

    def is_missing(value):
        return value is None or (isinstance(value, (float, np.floating)) and np.isnan(value)) or value == ""

    if drop_empty:
        df = df.drop(columns=[c for c in df.columns if df[c].map(is_missing).all()])
    sentinel = False

    def column_format(name, values):
        nonlocal sentinel
        coco = _is_coco_column(name)
        if coco and any(coco_value(v) == COCO_MISSING for v in values):
            sentinel = True
        numbers = [float(v) for v in values if isinstance(v, (int, float, np.integer, np.floating))
                   and not isinstance(v, (bool, np.bool_)) and not is_missing(v)
                   and not (coco and coco_value(v) == COCO_MISSING)]
        if numbers and all(v == int(v) for v in numbers):
            decimals = 0
        else:
            largest = max((abs(v) for v in numbers), default=0.0)
            decimals = max(0, digits - 1 - int(np.floor(np.log10(largest)))) if largest > 0 else digits
            decimals = 0 if largest >= 1000 else decimals

        def fmt(value):
            if is_missing(value):
                return missing
            if coco and coco_value(value) == COCO_MISSING:
                return COCO_MISSING
            if isinstance(value, (bool, np.bool_)):
                return str(bool(value))
            if isinstance(value, (int, float, np.integer, np.floating)):
                return f"{float(value):,.{decimals}f}"
            if isinstance(value, (list, tuple)):
                return ", ".join(str(v) for v in value) or missing
            return str(value)

        return fmt

    styler = df.style.format({c: column_format(c, df[c].tolist()) for c in df.columns}, escape="html")
    if not isinstance(df.index, pd.RangeIndex):
        styler = styler.format_index(lambda v: missing if is_missing(v) else str(v), escape="html")
    text_cols = [c for c in df.columns if df[c].dtype == object]
    styler = styler.set_properties(subset=text_cols, **{"text-align": "left", "white-space": "pre-wrap"})
    styles = [{"selector": "th", "props": [("text-align", "left")]}]
    if sentinel:
        styler = styler.set_caption(html.escape(COCO_FOOTNOTE))
        styles.append({"selector": "caption", "props": [("caption-side", "bottom"), ("text-align", "left"),
                                                        ("font-size", "90%")]})
    styler = styler.set_table_styles(styles)
    if not index:
        styler = styler.hide(axis="index")
    return styler
