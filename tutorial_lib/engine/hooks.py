"""Everything training does besides stepping the model, one hook each (Detectron2's ``engine/hooks.py``).

:func:`tutorial_lib.engine.train.train` registers, in this order (the order matters where one hook reads what an
earlier one wrote during the same stage)::

    EMAHook            average the weights after every optimizer step (Architecture.use_ema)
    LogHook            train.log every Train.log_interval iterations, progress bar
    CallbackHook       train(cfg, callback=...)
    EvalHook           COCO bbox / mask AP every Train.eval_interval epochs (EMA weights when EMA is on)
    CheckpointHook     epoch_N/ (last Train.keep_last_epochs kept) and best_model/ (highest mask AP)
    PeriodicCheckpointHook  latest/ every Train.save_interval_iters iterations (when set)
    InterruptHook      Ctrl-C, SIGTERM, or KeyboardInterrupt raised by a hook -> interrupted/ to resume from
    ExportBestHook     best_model/inference/ at the end (Train.export_best)
    TrainResultWriter  train_result.json and metrics.csv (PaddleX's layout)

Hooks given to ``train(cfg, hooks=[...])`` run after these.
"""
import contextlib
import csv
import json
import shutil
import time
from collections import OrderedDict
from pathlib import Path

from tqdm.auto import tqdm

from ..models.ppdet_ops import import_ppdet
from . import checkpoint
from .trainer import HookBase

CSV_FIELDS = ["epoch", "iters", "lr", "loss", "loss_rpn_cls", "loss_rpn_reg", "loss_bbox_cls", "loss_bbox_reg",
              "loss_mask", "bbox_AP", "bbox_AP50", "mask_AP", "mask_AP50", "mask_AP75", "epoch_time_s"]


class TrainLog:
    """``train.log`` (appended; a resumed run continues the same file) and optional echo to stdout."""

    def __init__(self, path, echo=False):
        self.path = Path(path)
        self.echo = echo

    def __call__(self, message):
        line = f"[{time.strftime('%Y-%m-%d %H:%M:%S')}] {message}"
        with self.path.open("a", encoding="utf-8") as fh:
            fh.write(line + "\n")
        if self.echo:
            print(message)


@contextlib.contextmanager
def averaged_weights(model, ema):
    """Run the block with ``ema``'s weights in ``model`` and put the training weights back afterwards (as
    PaddleDetection's trainer does around evaluation); a plain pass-through when ``ema`` is None."""
    if ema is None:
        yield model
        return
    raw = {k: v.detach().clone() for k, v in model.state_dict().items()}
    model.set_state_dict(ema.state_dict(model))
    try:
        yield model
    finally:
        model.set_state_dict(raw)


# ----------------------------------------------------------------------------- per iteration
class EMAHook(HookBase):
    """``ema.update(model)`` after every optimizer step."""

    def __init__(self, ema):
        self.ema = ema

    def after_step(self):
        self.ema.update(self.trainer.model)


class CallbackHook(HookBase):
    """``callback(info)`` after every iteration; ``info``: ``epoch``, ``step``, ``global_step`` (1-based), ``loss``,
    ``lr``. Raising ``KeyboardInterrupt`` in it stops training like Ctrl-C."""

    def __init__(self, callback):
        self.callback = callback

    def after_step(self):
        t = self.trainer
        self.callback({"epoch": t.epoch + 1, "step": t.step + 1, "global_step": t.global_step + 1,
                       "loss": t.values["loss"], "lr": t.lr})


class LogHook(HookBase):
    """A line in ``train.log`` every ``interval`` iterations (and at the last one) and a tqdm progress bar."""

    def __init__(self, log, interval=10, desc="train", progress=True):
        self.log, self.interval, self.desc, self.progress = log, max(1, int(interval)), desc, progress
        self.bar = None

    def before_train(self):
        t = self.trainer
        self.started, self.first_step = time.time(), t.global_step
        if self.progress:
            self.bar = tqdm(total=t.total_steps, initial=t.global_step, desc=self.desc, unit="it",
                            dynamic_ncols=True, mininterval=1.0)

    def after_step(self):
        t = self.trainer
        if self.bar is not None:
            self.bar.update(1)
            self.bar.set_postfix(epoch=f"{t.epoch + 1}/{t.epochs}", loss=f"{t.values['loss']:.3f}",
                                 lr=f"{t.lr:.2e}", refresh=False)
        if (t.global_step + 1) % self.interval == 0 or t.global_step + 1 == t.total_steps:
            terms = " ".join(f"{k}={v:.4f}" for k, v in t.values.items())
            done = t.global_step + 1 - self.first_step
            eta = (time.time() - self.started) / max(1, done) * (t.total_steps - t.global_step - 1)
            self.log(f"epoch {t.epoch + 1}/{t.epochs} iter {t.step + 1}/{t.steps_per_epoch} lr={t.lr:.6f} {terms} "
                     f"eta={tqdm.format_interval(eta)}")

    def after_train(self):
        if self.bar is not None:
            self.bar.close()


# ----------------------------------------------------------------------------- per epoch
class EvalHook(HookBase):
    """Every ``every_epochs`` epochs and after the last: ``evaluate(model) -> coco_metrics`` dict on the model (with
    ``ema``'s weights swapped in, when given); the epoch's row gets bbox / mask AP."""

    def __init__(self, evaluate, every_epochs=1, ema=None, log=None):
        self.evaluate, self.every, self.ema, self.log = evaluate, max(1, int(every_epochs)), ema, log

    def after_epoch(self):
        t = self.trainer
        epoch = t.epoch + 1
        if epoch % self.every and epoch != t.epochs:
            return
        with averaged_weights(t.model, self.ema) as model:
            metrics = self.evaluate(model)
        t.row.update({"bbox_AP": metrics["bbox_AP"], "bbox_AP50": metrics["bbox_AP50"], "mask_AP": metrics["AP"],
                      "mask_AP50": metrics["AP50"], "mask_AP75": metrics["AP75"]})
        if self.log is not None:
            self.log(f"eval epoch {epoch}: mask AP={metrics['AP']:.4f} AP50={metrics['AP50']:.4f} "
                     f"bbox AP={metrics['bbox_AP']:.4f} AP50={metrics['bbox_AP50']:.4f}")


def epoch_dirs(history, out):
    """The ``epoch_N`` folders of ``history`` still in ``out``, oldest first (a run resumed from another output
    folder neither lists nor prunes that folder's checkpoints)."""
    folders = [Path(r["dir"]) for r in history if r.get("dir")]
    return [f for f in folders if f.parent == Path(out) and f.exists()]


class CheckpointHook(HookBase):
    """After every epoch: ``epoch_N/`` (only the last ``keep_last`` are kept), a copy in ``best_model/`` when the
    epoch's mask AP is at least the best so far, ``epoch_N/inference/`` with ``export_every_epoch``; the
    ``interrupted/`` and ``latest/`` checkpoints, older now, are removed. ``states``: what every ``.pdstates`` holds
    besides the training progress (meta, seed, schedule length). ``best``: the best so far of a resumed run."""

    def __init__(self, out, states, optimizer_state, keep_last=1, ema=None, best=None, export_every_epoch=False):
        self.out, self.states, self.optimizer_state = Path(out), dict(states), optimizer_state
        self.keep_last, self.ema, self.export_every_epoch = max(1, int(keep_last)), ema, export_every_epoch
        self.initial_best = best

    def before_train(self):
        self.trainer.best = self.initial_best

    def after_epoch(self):
        t, out = self.trainer, self.out
        row = t.row
        row["epoch_time_s"] = round(time.time() - t.epoch_started, 2)
        name = f"epoch_{t.epoch + 1}"
        row["dir"] = str(out / name)
        score = row.get("mask_AP")
        is_best = score is not None and (t.best is None or score >= t.best["score"])
        if is_best:
            t.best = {"score": score, "epoch": t.epoch + 1}
        states = {**self.states, "epoch": t.epoch + 1, "step": 0, "history": t.history, "best": t.best,
                  "partial": None}
        paths = checkpoint.save_training(out / name, name, t.model, self.optimizer_state(t.optimizer, t.model),
                                         states, self.ema)
        if self.export_every_epoch:
            from .export import export_inference

            paddle = import_ppdet()
            export_inference(paddle.load(paths["pdparams"]), self.states["meta"], out / name / "inference")
        if is_best:
            checkpoint.copy_checkpoint(out / name, name, out / "best_model", "best_model")
        dirs = epoch_dirs(t.history, out)
        for old in dirs[:-self.keep_last]:
            shutil.rmtree(old)
        for stale in ("interrupted", "latest"):  # older than epoch_N now
            if (out / stale).exists():
                shutil.rmtree(out / stale)


def save_progress(out, name, trainer, states, optimizer_state, ema=None):
    """``out/name/name.*``: a checkpoint at the trainer's exact position (epoch, iteration, the epoch's running loss
    sums), written beside the old one and renamed over it, so that a kill during the write leaves the previous
    checkpoint whole. Returns the paths written, by extension."""
    t, folder, staging = trainer, Path(out) / name, Path(out) / f".{name}.writing"
    if staging.exists():
        shutil.rmtree(staging)
    checkpoint.save_training(staging, name, t.model, optimizer_state(t.optimizer, t.model),
                             {**states, **t.progress()}, ema)
    if folder.exists():
        shutil.rmtree(folder)
    staging.rename(folder)
    return checkpoint_files(folder, name)


class PeriodicCheckpointHook(HookBase):
    """Every ``every`` iterations (``Train.save_interval_iters``): ``latest/latest.*`` at that iteration, replacing
    the previous one, so that a run killed without warning (``SIGKILL``, a power cut) loses at most ``every``
    iterations; ``-o Train.resume_path=auto`` picks it up. Skipped at an epoch's last iteration, where
    :class:`CheckpointHook` writes ``epoch_N/``."""

    def __init__(self, out, every, states, optimizer_state, ema=None, log=None):
        self.out, self.every, self.states = Path(out), max(1, int(every)), dict(states)
        self.optimizer_state, self.ema, self.log = optimizer_state, ema, log

    def after_step(self):
        t = self.trainer
        if (t.global_step + 1) % self.every or t.steps_done == t.steps_per_epoch:
            return
        save_progress(self.out, "latest", t, self.states, self.optimizer_state, self.ema)
        if self.log is not None:
            self.log(f"checkpoint latest/ at epoch {t.epoch + 1}, iteration {t.steps_done}")


# ----------------------------------------------------------------------------- at the end
class InterruptHook(HookBase):
    """When training stops with KeyboardInterrupt (Ctrl-C, ``SIGTERM``, or raised by a hook):
    ``interrupted/interrupted.*`` at the exact iteration (with the epoch's running loss sums), so that
    ``-o Train.resume_path=.../interrupted.pdparams`` (or ``auto``) continues it."""

    def __init__(self, out, states, optimizer_state, ema=None, log=None):
        self.out, self.states, self.optimizer_state, self.ema, self.log = Path(out), dict(states), optimizer_state, \
            ema, log

    def after_train(self):
        t = self.trainer
        if not t.interrupted:
            return
        paths = save_progress(self.out, "interrupted", t, self.states, self.optimizer_state, self.ema)
        if self.log is not None:
            self.log(f"interrupted at epoch {t.epoch + 1}, iteration {t.steps_done}; resume with "
                     f"-o Train.resume_path={paths['pdparams']}")


class ExportBestHook(HookBase):
    """After a completed run: ``best_model/inference/`` from ``best_model.pdparams`` (the EMA weights with EMA)."""

    def __init__(self, out, meta):
        self.out, self.meta = Path(out), meta
        self.inference = None

    def after_train(self):
        t = self.trainer
        params = self.out / "best_model" / "best_model.pdparams"
        if not t.completed or t.best is None or not params.exists():
            return
        from .export import export_inference

        paddle = import_ppdet()
        self.inference = export_inference(paddle.load(str(params)), self.meta, self.out / "best_model" / "inference")


def model_entry(paths, score, inference=None):
    """One entry of ``train_result.json``'s ``models`` (PaddleX's keys; empty strings for files not written)."""
    entry = {"score": score, "pdparams": paths.get("pdparams", ""), "pdema": paths.get("pdema", ""),
             "pdopt": paths.get("pdopt", ""), "pdstates": paths.get("pdstates", "")}
    inference = inference or {}
    for key in ("inference_config", "pdmodel", "pdiparams", "pdiparams.info"):
        entry[key] = inference.get(key, "")
    return entry


def checkpoint_files(folder, name):
    """``{ext: path}`` of the checkpoint files ``folder/name.*`` (``.pdema`` only where it exists)."""
    folder = Path(folder)
    paths = {k: str(folder / f"{name}.{k}") for k in ("pdparams", "pdopt", "pdstates")}
    if (folder / f"{name}.pdema").exists():
        paths["pdema"] = str(folder / f"{name}.pdema")
    return paths


def model_entries(out, history, best_entry):
    """``last_1`` (newest) .. ``last_k`` for the epoch folders on disk, then ``best``."""
    models = OrderedDict()
    by_dir = {r["dir"]: r for r in history if r.get("dir")}
    for i, folder in enumerate(reversed(epoch_dirs(history, out))):
        row = by_dir.get(str(folder), {})
        inference = None
        if (folder / "inference" / "inference.yml").exists():
            inf = folder / "inference"
            inference = {"inference_config": str(inf / "inference.yml"), "pdmodel": str(inf / "inference.pdmodel"),
                         "pdiparams": str(inf / "inference.pdiparams"),
                         "pdiparams.info": str(inf / "inference.pdiparams.info")}
        models[f"last_{i + 1}"] = model_entry(checkpoint_files(folder, folder.name), row.get("mask_AP"), inference)
    if best_entry is not None:
        models["best"] = best_entry
    return models


class TrainResultWriter(HookBase):
    """``train_result.json`` and ``metrics.csv`` (one row per epoch) after every epoch; ``done_flag`` true after
    a completed run (with the exported best model from ``export``, an :class:`ExportBestHook`), false after an
    interruption. ``result`` is the file's content."""

    def __init__(self, out, result, export=None, log=None):
        self.out, self.result, self.export, self.log = Path(out), result, export, log

    def _best_entry(self, inference=None):
        best = self.trainer.best
        folder = self.out / "best_model"
        if best is None or not (folder / "best_model.pdparams").exists():
            return None
        return model_entry(checkpoint_files(folder, "best_model"), best["score"], inference)

    def write(self):
        (self.out / "train_result.json").write_text(json.dumps(self.result, indent=2, ensure_ascii=False) + "\n",
                                                    encoding="utf-8")

    def after_epoch(self):
        t = self.trainer
        self.result["models"] = model_entries(self.out, t.history, self._best_entry())
        with (self.out / "metrics.csv").open("w", newline="", encoding="utf-8") as fh:
            writer = csv.DictWriter(fh, fieldnames=CSV_FIELDS, extrasaction="ignore")
            writer.writeheader()
            for row in t.history:
                writer.writerow({k: row.get(k, "") for k in CSV_FIELDS})
        self.write()

    def after_train(self):
        t = self.trainer
        if t.interrupted:
            self.write()
        if not t.completed:
            return
        inference = self.export.inference if self.export is not None else None
        if inference is not None:
            self.result["models"] = model_entries(self.out, t.history, self._best_entry(inference))
        self.result["done_flag"] = True
        self.write()
        if self.log is not None:
            best = t.best
            self.log(f"done: best mask AP {best['score'] if best else None} (epoch {best['epoch'] if best else None}); "
                     f"model in {self.out / 'best_model'}")
