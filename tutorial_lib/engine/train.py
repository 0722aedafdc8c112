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
from . import checkpoint, runtime
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
    devices = runtime.device_ids(cfg["Global"]["device"])
    if runtime.world_size() == 1 and len(devices) > 1:
        return spawn_train(cfg, callback=callback, hooks=hooks)
    return _train(cfg, callback, hooks)


# ----------------------------------------------------------------------------- several processes
def _worker(cfg, callback, hooks):
    result = _train(cfg, callback, hooks)
    return result if runtime.rank() == 0 else None


def spawn_train(cfg, nprocs=None, device=None, callback=None, hooks=None):
    """Train data-parallel in new local processes (:func:`.runtime.spawn`); return process 0's result.

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
    return runtime.spawn(_worker, (cfg, callback, hooks), nprocs, device)[0]


# ----------------------------------------------------------------------------- one process
def _train(cfg, callback=None, hooks=None):
    paddle = prepare(cfg)
    runtime.init_distributed()
    rank, world = runtime.rank(), runtime.world_size()
    main = rank == 0
    g, t = cfg["Global"], cfg["Train"]
    out = Path(g["output"])
    if main:
        out.mkdir(parents=True, exist_ok=True)
    adapter = get_adapter(cfg)
    categories = read_categories(g["dataset_dir"], "train")
    num_classes = check_num_classes(t["num_classes"], categories)
    val_names = [c["name"] for c in read_categories(g["dataset_dir"], "val")]
    label_list = [c["name"] for c in categories]
    if val_names != label_list:
        raise UserError("instance_train.json and instance_val.json list different categories; "
                        "both splits must share one category list")
    log = TrainLog(out / "train.log") if main else (lambda message: None)
    say = print if main else (lambda message: None)
    train_split = Split(g["dataset_dir"], "train", allow_empty=False)
    val_split = Split(g["dataset_dir"], "val", allow_empty=True) if main else None
    seed = int(g["seed"])
    meta = model_meta(cfg, num_classes, label_list)

    runtime.seed_all(seed)
    model = adapter.build_model(num_classes)

    batch_size = int(t["batch_size"])
    if world > 1 and len(train_split) < batch_size * world:
        raise UserError(f"{len(train_split)} training images are fewer than one global batch "
                        f"({world} processes x Train.batch_size={batch_size}); lower Train.batch_size")
    steps = steps_per_epoch(len(train_split), batch_size * world)
    epochs = int(t["epochs_iters"])
    total = epochs * steps
    arch = cfg["Architecture"]
    schedule = build_schedule(arch.get("schedule"), float(t["learning_rate"]), int(t.get("warmup_steps") or 0), total)
    optimizer = build_optimizer(arch.get("optimizer"), schedule, model)
    ema_kwargs = ema_settings(arch)
    ema = ModelEMA(model, **ema_kwargs) if ema_kwargs and main else None  # the weights are the same everywhere
    start = checkpoint.resume_or_load(t, out, model, optimizer, schedule, ema, total, steps, adapter,
                                      log=lambda m: (log(m), say(m)))

    if main:
        save_config(cfg, out / "config.yaml")
    amp = t.get("amp") if t.get("amp") in ("O1", "O2") else None
    if amp and g["device"] == "cpu":
        message = f"Train.amp={t['amp']} needs a GPU; training in float32 on the CPU"
        log(message)
        say(message)
        amp = None

    transforms, batch_transforms = adapter.compose("train", num_classes)

    def loader(epoch, start_step):
        for step, batch in train_batches(train_split, transforms, batch_transforms, batch_size, seed, epoch,
                                         start_step=start_step, rank=rank, world_size=world):
            yield step, adapter.to_inputs(batch)

    result = {"model_name": g["model"], "label_dict": {str(i): n for i, n in enumerate(label_list)},
              "train_log": str(out / "train.log"), "visualdl_log": "", "config": str(out / "config.yaml"),
              "models": OrderedDict(), "done_flag": False}
    processes = f" in {world} processes" if world > 1 else ""
    log(f"train {g['model']} on {g['dataset_dir']}: {len(train_split)} images, {num_classes} classes, "
        f"{epochs} epochs x {steps} iterations, batch {batch_size}{processes}, lr {t['learning_rate']}, "
        f"device {g['device']}" + (f", EMA decay {ema.decay} ({ema.decay_type})" if ema is not None else ""))

    default_hooks = []
    if main:
        coco_val = load_coco(val_split.path)

        def evaluate(eval_model):
            predictions = predict_split(eval_model, adapter, val_split, num_classes)
            return coco_metrics(coco_val, predictions, val_split.clsid2catid)

        states = {"meta": meta, "seed": seed, "total_steps": total, "steps_per_epoch": steps}
        every = t.get("save_interval_iters")
        export = ExportBestHook(out, meta) if t.get("export_best", True) else None
        default_hooks = [
            EMAHook(ema) if ema is not None else None,
            LogHook(log, t.get("log_interval") or 10, desc=f"train {g['model']}"),
            CallbackHook(callback) if callback is not None else None,
            EvalHook(evaluate, t.get("eval_interval") or 1, ema=ema, log=log),
            CheckpointHook(out, states, optimizer_state, keep_last=t.get("keep_last_epochs") or 1, ema=ema,
                           best=start.best, export_every_epoch=bool(t.get("export_every_epoch"))),
            PeriodicCheckpointHook(out, every, states, optimizer_state, ema=ema, log=log) if every else None,
            InterruptHook(out, states, optimizer_state, ema=ema, log=log),
            export,
            TrainResultWriter(out, result, export=export, log=log),
            *(hooks or []),
        ]
    train_model = paddle.DataParallel(model, find_unused_parameters=True) if world > 1 else model
    trainer = Trainer(model, optimizer, loader, epochs=epochs, steps_per_epoch=steps, seed=seed, schedule=schedule,
                      amp=amp, train_model=train_model, start_epoch=start.epoch, start_step=start.step,
                      history=start.history, partial=start.partial, hooks=default_hooks)
    trainer.train()
    best = trainer.best
    return {**result, "history": [{k: v for k, v in r.items() if k != "dir"} for r in trainer.history],
            "best_epoch": best["epoch"] if best else None, "output": str(out)}
