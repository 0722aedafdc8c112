"""Checkpoints in PaddleX's layout: ``NAME/NAME.pdparams`` (weights), ``.pdopt`` (optimizer), ``.pdstates``
(where training stands: epoch, step, random seeds' position, metric history, and the model's architecture,
classes and name, so that evaluate / export / resume rebuild exactly what was trained).

With weight EMA (``Architecture.use_ema``) PaddleDetection's trainer swaps the two sets of weights when it saves
(``ppdet.utils.checkpoint.save_model(..., ema_model=...)``): ``.pdparams`` holds the averaged weights (so that
evaluation, export and prediction, which read ``.pdparams``, use them) and ``.pdema`` the raw training weights;
resuming loads ``.pdema`` into the model and ``.pdparams`` into the average. This module does the same."""
import shutil
from dataclasses import dataclass, field
from pathlib import Path

from ..errors import UserError
from ..models.ppdet_ops import import_ppdet
from ..models.weights import load_matching, load_pretrained
from .optim import load_optimizer_state

__all__ = ["save", "save_training", "load_training", "copy_checkpoint", "resolve", "load_states", "load_params",
           "load_matching", "load_pretrained", "newest", "Progress", "resume_or_load"]
RESUMABLE = ("interrupted", "latest")  # plus epoch_N: the folders Train.resume_path=auto looks in


def save(folder, name, model, optimizer=None, states=None):
    """Write ``folder/name.pdparams`` (+ ``.pdopt``, ``.pdstates``); return the paths written."""
    paddle = import_ppdet()
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    paths = {"pdparams": folder / f"{name}.pdparams"}
    paddle.save(model.state_dict(), str(paths["pdparams"]))
    if optimizer is not None:
        paths["pdopt"] = folder / f"{name}.pdopt"
        paddle.save(optimizer.state_dict(), str(paths["pdopt"]))
    if states is not None:
        paths["pdstates"] = folder / f"{name}.pdstates"
        paddle.save(states, str(paths["pdstates"]))
    return {k: str(v) for k, v in paths.items()}


def save_training(folder, name, model, optimizer_state, states, ema=None):
    """A training checkpoint: ``.pdparams`` (the EMA weights when ``ema`` is given, else the model's), ``.pdema``
    (the raw weights, with ``ema`` only), ``.pdopt`` (``optimizer_state``) and ``.pdstates`` (``states``, plus the
    EMA's step counter under ``"ema"``). Returns the paths written, by extension."""
    paddle = import_ppdet()
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    paths = {}
    if ema is None:
        paths.update(save(folder, name, model, None, states))
    else:
        paths["pdparams"] = str(folder / f"{name}.pdparams")
        paddle.save(ema.state_dict(model), paths["pdparams"])
        paths["pdema"] = str(folder / f"{name}.pdema")
        paddle.save(model.state_dict(), paths["pdema"])
        paths["pdstates"] = str(folder / f"{name}.pdstates")
        paddle.save({**states, "ema": ema.states()}, paths["pdstates"])
    paths["pdopt"] = str(folder / f"{name}.pdopt")
    paddle.save(optimizer_state, paths["pdopt"])
    return paths


def load_training(prefix):
    """``(raw weights, EMA weights or None)`` of a checkpoint: ``.pdema`` + ``.pdparams`` when it was saved with
    EMA, else ``.pdparams`` + None."""
    paddle = import_ppdet()
    ema_file = Path(str(prefix) + ".pdema")
    if ema_file.is_file():
        return paddle.load(str(ema_file)), load_params(prefix)
    return load_params(prefix), None


def copy_checkpoint(src_folder, src_name, dst_folder, dst_name):
    dst_folder = Path(dst_folder)
    if dst_folder.exists():
        shutil.rmtree(dst_folder)
    dst_folder.mkdir(parents=True)
    out = {}
    for ext in ("pdparams", "pdema", "pdopt", "pdstates"):
        src = Path(src_folder) / f"{src_name}.{ext}"
        if src.exists():
            shutil.copyfile(src, dst_folder / f"{dst_name}.{ext}")
            out[ext] = str(dst_folder / f"{dst_name}.{ext}")
    return out


def resolve(path, key):
    """A ``.pdparams`` file, its prefix, or a folder holding one .pdparams -> the prefix ``Path`` (no suffix)."""
    if path is None:
        raise UserError(f"{key} is not set; pass -o {key}=output/best_model/best_model.pdparams")
    p = Path(str(path))
    if p.is_dir():
        found = sorted(p.glob("*.pdparams"))
        if len(found) != 1:
            raise UserError(f"{key}={path} is a folder with {len(found)} .pdparams files; name the file")
        return found[0].with_suffix("")
    if p.suffix == ".pdema":
        raise UserError(f"{key}={path}: a .pdema file holds the raw training weights of an EMA run; pass the "
                        ".pdparams next to it (the EMA weights, which PaddleDetection and PaddleX evaluate and export)")
    if p.suffix in (".pdparams", ".pdopt", ".pdstates"):
        p = p.with_suffix("")
    if not p.with_suffix(".pdparams").is_file():
        raise UserError(f"{key}={path}: no such weights file ({p.with_suffix('.pdparams')})")
    return p


def load_states(prefix):
    paddle = import_ppdet()
    path = Path(str(prefix) + ".pdstates")
    return paddle.load(str(path)) if path.is_file() else {}


def load_params(prefix):
    paddle = import_ppdet()
    return paddle.load(str(prefix) + ".pdparams")


def newest(out):
    """The prefix of the checkpoint in ``out`` that is furthest into training (``interrupted/``, ``latest/`` or
    ``epoch_N/``, by the epoch and iteration their ``.pdstates`` record), or None when there is none."""
    out = Path(out)
    candidates = [out / name / name for name in RESUMABLE] + [d / d.name for d in out.glob("epoch_*") if d.is_dir()]
    positions = []
    for prefix in candidates:
        states = load_states(prefix) if Path(str(prefix) + ".pdparams").is_file() else {}
        if "epoch" in states:
            positions.append(((int(states["epoch"]), int(states.get("step", 0))), str(prefix)))
    return Path(max(positions)[1]) if positions else None


@dataclass
class Progress:
    """Where a run starts: epoch and iteration (0-based), the metric history, the best epoch so far and the running
    loss sums of a half-done epoch (all empty for a new run)."""

    epoch: int = 0
    step: int = 0
    history: list = field(default_factory=list)
    best: dict = None
    partial: dict = None


def resume_or_load(train_cfg, out, model, optimizer, schedule, ema, total_steps, steps_per_epoch, adapter, log):
    """Detectron2's ``resume_or_load``: with ``Train.resume_path`` (a checkpoint, or ``auto`` for the newest in
    ``out``), restore the weights, optimizer, learning-rate schedule, weight average and progress of a training
    run; otherwise load ``Train.pretrain_weight_path`` (if set) into ``model`` through the adapter, and start at 0.
    Returns a :class:`Progress`."""
    resume = train_cfg.get("resume_path")
    if resume == "auto":
        resume = newest(out)
        log(f"Train.resume_path=auto: {'resuming from ' + str(resume) if resume else 'no checkpoint in ' + str(out)}")
    if not resume:
        if train_cfg.get("pretrain_weight_path"):
            adapter.load_pretrained(model, train_cfg["pretrain_weight_path"], log=log)
        return Progress()
    paddle = import_ppdet()
    prefix = resolve(resume, "Train.resume_path")
    states = load_states(prefix)
    if not states or "epoch" not in states:
        raise UserError(f"Train.resume_path={resume}: {prefix}.pdstates is missing; resume needs a checkpoint "
                        "written by training (epoch_N/, best_model/, latest/ or interrupted/)")
    position = int(states["epoch"]) * steps_per_epoch + int(states.get("step", 0))
    if states.get("steps_per_epoch") not in (None, steps_per_epoch):
        raise UserError(f"Train.resume_path={resume} ran {states.get('steps_per_epoch')} iterations per epoch, this run "
                        f"{steps_per_epoch}: resume with the same Train.batch_size, dataset and devices")
    if position >= total_steps:
        raise UserError(f"Train.resume_path={resume} is at iteration {position}, past this run's {total_steps}: "
                        "raise Train.epochs_iters to train on")
    if states.get("total_steps") not in (None, total_steps):
        log(f"the checkpoint was planned for {states['total_steps']} iterations, this run for {total_steps}: "
            f"the learning-rate schedule is re-planned from iteration {position} on")
    raw, averaged = load_training(prefix)
    load_matching(model, raw, strict=True)
    opt_path = Path(str(prefix) + ".pdopt")
    if opt_path.is_file():
        load_optimizer_state(optimizer, model, paddle.load(str(opt_path)))
    if ema is not None:
        if averaged is not None and states.get("ema"):
            ema.resume(averaged, states["ema"])
        else:
            log(f"{prefix}.pdparams was trained without EMA (no .pdema); the weight average starts now")
    progress = Progress(int(states["epoch"]), int(states.get("step", 0)), list(states.get("history", [])),
                        states.get("best"), states.get("partial"))
    if hasattr(schedule, "last_epoch") and schedule.last_epoch != position:
        schedule.step(position)
    log(f"resumed from {prefix}.pdparams at epoch {progress.epoch + 1}, iteration {progress.step}")
    return progress
