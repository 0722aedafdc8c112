"""Step 5: ``-o Global.mode=train``: fine-tune a model on a COCO instance-segmentation dataset.

Outputs in ``Global.output`` follow PaddleX's layout::

    train_result.json      model_name, label_dict, train_log, config, models{last_1.., best{...}}, done_flag
    train.log              one line per Train.log_interval iterations, plus every evaluation
    config.yaml            the resolved config that ran
    metrics.csv            one row per epoch: loss terms, lr, bbox / mask AP (what the notebooks plot)
    best_model/            best_model.pdparams/.pdopt/.pdstates + inference/ (exported at the end unless
                           Train.export_best=False, e.g. in hyper-parameter sweeps)
    epoch_N/               epoch_N.pdparams/.pdopt/.pdstates (the last Train.keep_last_epochs epochs)
    latest/                every Train.save_interval_iters iterations (when set), replaced each time
    interrupted/           written when training is stopped (Ctrl-C, SIGTERM: engine/stop.py); resume from it
                           (-o Train.resume_path=output/interrupted/interrupted.pdparams, or =auto for the newest)

With ``Architecture.use_ema`` (the Mask-RT-DETR recipe) every checkpoint also has ``NAME.pdema``: as in
PaddleDetection, ``.pdparams`` then holds the moving average of the weights (what evaluation during training, the
choice of the best model, ``best_model/inference``, and the evaluate / export / predict modes use) and ``.pdema``
the raw training weights; see :mod:`.ema`.

The loop is :class:`.trainer.Trainer`; everything else is a hook (:mod:`.hooks`). ``train(cfg, hooks=[...])``
adds hooks after the default ones.

Determinism: weights are initialised after seeding paddle, numpy and random with ``Global.seed``; each
iteration re-seeds paddle from ``(seed, iteration)`` and each sample's augmentation is seeded from
``(seed, epoch, index)`` (see :mod:`.data`), so a run resumed from any checkpoint ends with the same weights
(and the same EMA) as the uninterrupted run.

Several devices (``Global.device=gpu:0,1,2,3``): one training process per card, data parallel
(``paddle.DataParallel``; ``Train.batch_size`` is per card, as in PaddleX), started here (:func:`spawn_train`)
or from outside with ``python -m paddle.distributed.launch`` (several machines: docs/distributed.md). Process 0
evaluates and writes every output.
"""
import pickle
from collections import OrderedDict
from pathlib import Path

from ..config import save_config
from ..data.coco import load_coco
from ..errors import UserError
from . import checkpoint, distributed, seeding
from .common import model_meta, predict_split, prepare
from .data import Split, check_num_classes, read_categories, steps_per_epoch, train_batches
from .ema import ModelEMA, ema_settings
from .hooks import (CSV_FIELDS, CallbackHook, CheckpointHook, EMAHook, EvalHook, ExportBestHook, InterruptHook,
                    LogHook, PeriodicCheckpointHook, TrainLog, TrainResultWriter)
from ..models.adapters import get_adapter
from .metrics import coco_metrics
from .optim import build_optimizer, build_schedule, optimizer_state
from .trainer import Trainer

__all__ = ["train", "spawn_train", "CSV_FIELDS", "TrainLog"]


def train(cfg, callback=None, hooks=None):
    """Train ``cfg``'s model; return the ``train_result.json`` content plus ``history`` (one dict per epoch).

    ``callback(info)``, if given, runs after every iteration with ``epoch``, ``step``, ``global_step``,
    ``loss``, ``lr``; raising ``KeyboardInterrupt`` from it stops training like Ctrl-C (a checkpoint is kept
    in ``interrupted/``). ``hooks``: more :class:`.trainer.HookBase` objects, run after the default ones.
    With several devices, callback and hooks run in process 0 only and must be picklable.
    """
    devices = distributed.device_ids(cfg["Global"]["device"])
    if distributed.world_size() == 1 and len(devices) > 1:
        return spawn_train(cfg, callback=callback, hooks=hooks)
    return _train(cfg, callback, hooks)


# ----------------------------------------------------------------------------- several processes
def _worker(cfg, callback, hooks):
    result = _train(cfg, callback, hooks)
    return result if distributed.rank() == 0 else None


def spawn_train(cfg, nprocs=None, device=None, callback=None, hooks=None):
    """Train data-parallel in new local processes (:func:`.distributed.spawn`); return process 0's result.

    ``device``: ``Global.device`` by default; ``gpu:0,1`` (or ``dcu``/``xpu`` ids) starts one process per card,
    ``cpu`` starts ``nprocs`` CPU processes over gloo (tests). NPUs and MLUs are started with
    ``python -m paddle.distributed.launch`` instead (docs/distributed.md).
    """
    from ..config.device import parse_device

    device = device or cfg["Global"]["device"]
    kind, ids = parse_device(device)
    if kind not in ("cpu", "gpu", "dcu", "xpu"):
        raise UserError(f"Global.device={device}: several {kind.upper()}s are trained with "
                        f"python -m paddle.distributed.launch --devices {','.join(map(str, ids))} tutorial-lib ... "
                        "(see docs/distributed.md)")
    nprocs = int(nprocs or len(ids))
    for name, obj in (("callback", callback), ("hooks", hooks)):
        try:
            pickle.dumps(obj)
        except Exception as exc:  # pickling raises several types
            raise UserError(f"with several training processes the {name} is sent to each of them and must be "
                            f"picklable (a module-level function or class): {exc}") from None
    return distributed.spawn(_worker, (cfg, callback, hooks), nprocs, device)[0]


# ----------------------------------------------------------------------------- one process
def _train(cfg, callback=None, hooks=None):
    paddle = prepare(cfg)
    distributed.init_distributed()
    rank, world = distributed.rank(), distributed.world_size()
    main = rank == 0
    g, t, arch = cfg["Global"], cfg["Train"], cfg["Architecture"]
    out = Path(g["output"])
    log, say = (TrainLog(out / "train.log"), print) if main else (_quiet, _quiet)
    if main:
        out.mkdir(parents=True, exist_ok=True)
    adapter = get_adapter(cfg)
    data = TrainData.read(g["dataset_dir"], t["num_classes"], with_val=main)
    seed, batch_size, epochs = int(g["seed"]), int(t["batch_size"]), int(t["epochs_iters"])
    steps = _steps_per_epoch(len(data.train), batch_size, world)
    total = epochs * steps

    seeding.seed_all(seed)
    model = adapter.build_model(data.num_classes)
    schedule = build_schedule(arch.get("schedule"), float(t["learning_rate"]), int(t.get("warmup_steps") or 0), total)
    optimizer = build_optimizer(arch.get("optimizer"), schedule, model)
    ema_kwargs = ema_settings(arch)
    ema = ModelEMA(model, **ema_kwargs) if ema_kwargs and main else None  # the weights are the same everywhere
    start = checkpoint.resume_or_load(t, out, model, optimizer, schedule, ema, total, steps, adapter,
                                      log=lambda m: (log(m), say(m)))
    amp = _amp_level(t, g["device"], lambda m: (log(m), say(m)))
    if main:
        save_config(cfg, out / "config.yaml")
    log(f"train {g['model']} on {g['dataset_dir']}: {len(data.train)} images, {data.num_classes} classes, "
        f"{epochs} epochs x {steps} iterations, batch {batch_size}{f' in {world} processes' if world > 1 else ''}, "
        f"lr {t['learning_rate']}, device {g['device']}"
        + (f", EMA decay {ema.decay} ({ema.decay_type})" if ema is not None else ""))

    result = _result_stub(g["model"], out, data.labels)
    states = {"meta": model_meta(cfg, data.num_classes, data.labels), "seed": seed, "total_steps": total,
              "steps_per_epoch": steps}
    trainer = Trainer(model, optimizer, _loader(adapter, data, batch_size, seed, rank, world), epochs=epochs,
                      steps_per_epoch=steps, seed=seed, schedule=schedule, amp=amp,
                      train_model=paddle.DataParallel(model, find_unused_parameters=True) if world > 1 else model,
                      start_epoch=start.epoch, start_step=start.step, history=start.history, partial=start.partial,
                      hooks=build_hooks(cfg, adapter, data, states, ema, start.best, result, log, callback, hooks)
                      if main else [])
    trainer.train()
    best = trainer.best
    return {**result, "history": [{k: v for k, v in r.items() if k != "dir"} for r in trainer.history],
            "best_epoch": best["epoch"] if best else None, "output": str(out)}


def _quiet(message):
    pass


class TrainData:
    """The training split, the val split (process 0 only: it evaluates), the label list and class count."""

    def __init__(self, train, val, labels, num_classes):
        self.train, self.val, self.labels, self.num_classes = train, val, labels, num_classes

    @classmethod
    def read(cls, dataset_dir, num_classes, with_val=True):
        categories = read_categories(dataset_dir, "train")
        num_classes = check_num_classes(num_classes, categories)
        labels = [c["name"] for c in categories]
        if [c["name"] for c in read_categories(dataset_dir, "val")] != labels:
            raise UserError("instance_train.json and instance_val.json list different categories; "
                            "both splits must share one category list")
        return cls(Split(dataset_dir, "train", allow_empty=False),
                   Split(dataset_dir, "val", allow_empty=True) if with_val else None, labels, num_classes)


def _steps_per_epoch(num_images, batch_size, world):
    if world > 1 and num_images < batch_size * world:
        raise UserError(f"{num_images} training images are fewer than one global batch "
                        f"({world} processes x Train.batch_size={batch_size}); lower Train.batch_size")
    return steps_per_epoch(num_images, batch_size * world)


def _amp_level(t, device, announce):
    """``O1`` / ``O2`` on a GPU; None (float32) otherwise, said once when AMP was asked for on the CPU."""
    amp = t.get("amp") if t.get("amp") in ("O1", "O2") else None
    if amp and device == "cpu":
        announce(f"Train.amp={t['amp']} needs a GPU; training in float32 on the CPU")
        return None
    return amp


def _loader(adapter, data, batch_size, seed, rank, world):
    """``loader(epoch, start_step)`` for the trainer: this process's shard of each batch, as model inputs."""
    transforms, batch_transforms = adapter.compose("train", data.num_classes)

    def loader(epoch, start_step):
        for step, batch in train_batches(data.train, transforms, batch_transforms, batch_size, seed, epoch,
                                         start_step=start_step, rank=rank, world_size=world):
            yield step, adapter.to_inputs(batch)
    return loader


def _result_stub(model_name, out, labels):
    """``train_result.json`` before the first epoch (PaddleX's keys; the hooks fill ``models`` and ``done_flag``)."""
    return {"model_name": model_name, "label_dict": {str(i): n for i, n in enumerate(labels)},
            "train_log": str(out / "train.log"), "visualdl_log": "", "config": str(out / "config.yaml"),
            "models": OrderedDict(), "done_flag": False}


def build_hooks(cfg, adapter, data, states, ema, best, result, log, callback=None, hooks=None):
    """The default hooks of process 0, in the order :mod:`.hooks` documents, then ``hooks``."""
    g, t = cfg["Global"], cfg["Train"]
    out = Path(g["output"])
    coco_val = load_coco(data.val.path)

    def evaluate(eval_model):
        predictions = predict_split(eval_model, adapter, data.val, data.num_classes)
        return coco_metrics(coco_val, predictions, data.val.clsid2catid)

    every = t.get("save_interval_iters")
    export = ExportBestHook(out, states["meta"]) if t.get("export_best", True) else None
    return [
        EMAHook(ema) if ema is not None else None,
        LogHook(log, t.get("log_interval") or 10, desc=f"train {g['model']}"),
        CallbackHook(callback) if callback is not None else None,
        EvalHook(evaluate, t.get("eval_interval") or 1, ema=ema, log=log),
        CheckpointHook(out, states, optimizer_state, keep_last=t.get("keep_last_epochs") or 1, ema=ema, best=best,
                       export_every_epoch=bool(t.get("export_every_epoch"))),
        PeriodicCheckpointHook(out, every, states, optimizer_state, ema=ema, log=log) if every else None,
        InterruptHook(out, states, optimizer_state, ema=ema, log=log),
        export,
        TrainResultWriter(out, result, export=export, log=log),
        *(hooks or []),
    ]
