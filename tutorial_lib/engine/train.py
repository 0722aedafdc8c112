"""Step 5: ``-o Global.mode=train``: fine-tune a model on a COCO instance-segmentation dataset.

Outputs in ``Global.output`` follow PaddleX's layout::

    train_result.json      model_name, label_dict, train_log, config, models{last_1.., best{...}}, done_flag
    train.log              one line per Train.log_interval iterations, plus every evaluation
    config.yaml            the resolved config that ran
    metrics.csv            one row per epoch: loss terms, lr, bbox / mask AP (what the notebooks plot)
    best_model/            best_model.pdparams/.pdopt/.pdstates + inference/ (exported at the end unless
                           Train.export_best=False, e.g. in hyper-parameter sweeps)
    epoch_N/               epoch_N.pdparams/.pdopt/.pdstates (the last Train.keep_last_epochs epochs)
    interrupted/           written when training is interrupted (Ctrl-C); resume from it

Determinism: weights are initialised after seeding paddle, numpy and random with ``Global.seed``; each
iteration re-seeds paddle from ``(seed, iteration)`` and each sample's augmentation is seeded from
``(seed, epoch, index)`` (see :mod:`.data`), so a run resumed from any checkpoint ends with the same weights
as the uninterrupted run.
"""
import csv
import json
import math
import shutil
import time
from collections import OrderedDict
from pathlib import Path

from ..config import save_config
from ..data.coco import load_coco
from ..errors import UserError
from . import checkpoint, runtime
from .common import model_meta, predict_split, prepare
from .data import Split, check_num_classes, read_categories, steps_per_epoch, train_batches
from ..models.adapters import get_adapter
from .metrics import coco_metrics
from .optim import build_optimizer, build_schedule, load_optimizer_state, optimizer_state

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


# ----------------------------------------------------------------------------- outputs
def _model_entry(paths, score, inference=None):
    entry = {"score": score, "pdparams": paths.get("pdparams", ""), "pdema": "", "pdopt": paths.get("pdopt", ""),
             "pdstates": paths.get("pdstates", "")}
    inference = inference or {}
    for key in ("inference_config", "pdmodel", "pdiparams", "pdiparams.info"):
        entry[key] = inference.get(key, "")
    return entry


def _write_csv(path, history):
    with Path(path).open("w", newline="", encoding="utf-8") as fh:
        writer = csv.DictWriter(fh, fieldnames=CSV_FIELDS, extrasaction="ignore")
        writer.writeheader()
        for row in history:
            writer.writerow({k: row.get(k, "") for k in CSV_FIELDS})


def _write_result(out, result):
    (Path(out) / "train_result.json").write_text(json.dumps(result, indent=2, ensure_ascii=False) + "\n",
                                                 encoding="utf-8")


# ----------------------------------------------------------------------------- train
def train(cfg, callback=None):
    """Train ``cfg``'s model; return the ``train_result.json`` content plus ``history`` (one dict per epoch).

    ``callback(info)``, if given, runs after every iteration with ``epoch``, ``step``, ``global_step``,
    ``loss``, ``lr``; raising ``KeyboardInterrupt`` from it stops training like Ctrl-C (a checkpoint is kept
    in ``interrupted/``).
    """
    paddle = prepare(cfg)
    g, t = cfg["Global"], cfg["Train"]
    out = Path(g["output"])
    out.mkdir(parents=True, exist_ok=True)
    adapter = get_adapter(cfg)
    categories = read_categories(g["dataset_dir"], "train")
    num_classes = check_num_classes(t["num_classes"], categories)
    val_names = [c["name"] for c in read_categories(g["dataset_dir"], "val")]
    label_list = [c["name"] for c in categories]
    if val_names != label_list:
        raise UserError("instance_train.json and instance_val.json list different categories; "
                        "both splits must share one category list")
    log = TrainLog(out / "train.log")
    train_split = Split(g["dataset_dir"], "train", allow_empty=False)
    val_split = Split(g["dataset_dir"], "val", allow_empty=True)
    coco_val = load_coco(val_split.path)
    seed = int(g["seed"])
    meta = model_meta(cfg, num_classes, label_list)

    runtime.seed_all(seed)
    model = adapter.build_model(num_classes)
    resume = t.get("resume_path")
    if t.get("pretrain_weight_path") and not resume:
        load = getattr(adapter, "load_pretrained", None) or checkpoint.load_pretrained  # an adapter may map keys
        load(model, t["pretrain_weight_path"], log=lambda m: (log(m), print(m)))

    batch_size = int(t["batch_size"])
    steps = steps_per_epoch(len(train_split), batch_size)
    epochs = int(t["epochs_iters"])
    total = epochs * steps
    arch = cfg["Architecture"]
    schedule = build_schedule(arch.get("schedule"), float(t["learning_rate"]), int(t.get("warmup_steps") or 0), total)
    optimizer = build_optimizer(arch.get("optimizer"), schedule, model)

    start_epoch, start_step, history, best, partial = 0, 0, [], None, None
    if resume:
        prefix = checkpoint.resolve(resume, "Train.resume_path")
        states = checkpoint.load_states(prefix)
        if not states or "epoch" not in states:
            raise UserError(f"Train.resume_path={resume}: {prefix}.pdstates is missing; resume needs a checkpoint "
                            "written by training (epoch_N/, best_model/ or interrupted/)")
        if states.get("total_steps") not in (None, total) or states.get("steps_per_epoch") not in (None, steps):
            raise UserError(f"Train.resume_path={resume} was trained with {states.get('total_steps')} iterations "
                            f"in all ({states.get('steps_per_epoch')} per epoch); this run has {total} "
                            f"({steps} per epoch): use the same Train.epochs_iters, batch_size and dataset")
        checkpoint.load_matching(model, checkpoint.load_params(prefix), strict=True)
        opt_path = Path(str(prefix) + ".pdopt")
        if opt_path.is_file():
            load_optimizer_state(optimizer, model, paddle.load(str(opt_path)))
        start_epoch, start_step = int(states["epoch"]), int(states.get("step", 0))
        history = list(states.get("history", []))
        best = states.get("best")
        partial = states.get("partial")
        if hasattr(schedule, "last_epoch") and schedule.last_epoch != start_epoch * steps + start_step:
            schedule.step(start_epoch * steps + start_step)
        log(f"resumed from {prefix}.pdparams at epoch {start_epoch + 1}, iteration {start_step}")

    save_config(cfg, out / "config.yaml")
    use_amp = t.get("amp") in ("O1", "O2")
    scaler = None
    if use_amp and g["device"] == "cpu":
        message = f"Train.amp={t['amp']} needs a GPU; training in float32 on the CPU"
        log(message)
        print(message)
        use_amp = False
    elif use_amp:
        scaler = paddle.amp.GradScaler(init_loss_scaling=1024)

    transforms, batch_transforms = adapter.compose("train", num_classes)
    eval_interval = max(1, int(t.get("eval_interval") or 1))
    log_interval = max(1, int(t.get("log_interval") or 10))
    keep_last = max(1, int(t.get("keep_last_epochs") or 1))
    result = {"model_name": g["model"], "label_dict": {str(i): n for i, n in enumerate(label_list)},
              "train_log": str(out / "train.log"), "visualdl_log": "", "config": str(out / "config.yaml"),
              "models": OrderedDict(), "done_flag": False}
    log(f"train {g['model']} on {g['dataset_dir']}: {len(train_split)} images, {num_classes} classes, "
        f"{epochs} epochs x {steps} iterations, batch {batch_size}, lr {t['learning_rate']}, device {g['device']}")

    from tqdm.auto import tqdm

    bar = tqdm(total=total, initial=start_epoch * steps + start_step, desc=f"train {g['model']}", unit="it",
               dynamic_ncols=True, mininterval=1.0)
    state = {"meta": meta, "seed": seed, "total_steps": total, "steps_per_epoch": steps}
    started = time.time()
    last_epoch_dirs = [Path(r["dir"]) for r in history if r.get("dir") and Path(r["dir"]).exists()]
    try:
        for epoch in range(start_epoch, epochs):
            tic = time.time()
            first = start_step if epoch == start_epoch else 0
            sums, count = ({}, 0) if not (partial and epoch == start_epoch) else (dict(partial["sums"]), partial["n"])
            model.train()
            done = first
            try:
                for step, batch in train_batches(train_split, transforms, batch_transforms, batch_size, seed, epoch,
                                                 start_step=first):
                    global_step = epoch * steps + step
                    paddle.seed(runtime.mixed_seed(seed, global_step, 101))
                    inputs = adapter.to_inputs(batch)
                    if use_amp:
                        with paddle.amp.auto_cast(level=t["amp"]):
                            outputs = model(inputs)
                        scaled = scaler.scale(outputs["loss"])
                        scaled.backward()
                        scaler.minimize(optimizer, scaled)
                    else:
                        outputs = model(inputs)
                        outputs["loss"].backward()
                        optimizer.step()
                    lr = optimizer.get_lr()
                    optimizer.clear_grad()
                    if hasattr(schedule, "step"):
                        schedule.step()
                    values = {k: float(v) for k, v in outputs.items()}
                    if not math.isfinite(values["loss"]):
                        raise UserError(f"the loss became {values['loss']} at iteration {global_step + 1}; "
                                        "lower Train.learning_rate or raise Train.warmup_steps")
                    for k, v in values.items():
                        sums[k] = sums.get(k, 0.0) + v
                    count += 1
                    done = step + 1
                    bar.update(1)
                    bar.set_postfix(epoch=f"{epoch + 1}/{epochs}", loss=f"{values['loss']:.3f}", lr=f"{lr:.2e}",
                                    refresh=False)
                    if (global_step + 1) % log_interval == 0 or global_step + 1 == total:
                        terms = " ".join(f"{k}={v:.4f}" for k, v in values.items())
                        run_steps = global_step + 1 - (start_epoch * steps + start_step)
                        eta = (time.time() - started) / max(1, run_steps) * (total - global_step - 1)
                        log(f"epoch {epoch + 1}/{epochs} iter {step + 1}/{steps} lr={lr:.6f} {terms} "
                            f"eta={bar.format_interval(eta)}")
                    if callback is not None:
                        callback({"epoch": epoch + 1, "step": step + 1, "global_step": global_step + 1,
                                  "loss": values["loss"], "lr": lr})
            except KeyboardInterrupt:
                states = {**state, "epoch": epoch, "step": done, "history": history, "best": best,
                          "partial": {"sums": sums, "n": count}}
                paths = checkpoint.save(out / "interrupted", "interrupted", model, None, states)
                paddle.save(optimizer_state(optimizer, model), str(out / "interrupted" / "interrupted.pdopt"))
                log(f"interrupted at epoch {epoch + 1}, iteration {done}; resume with "
                    f"-o Train.resume_path={paths['pdparams']}")
                _write_result(out, result)
                raise

            row = {"epoch": epoch + 1, "iters": (epoch + 1) * steps, "lr": lr,
                   **{k: round(v / max(1, count), 6) for k, v in sums.items()}}
            if (epoch + 1) % eval_interval == 0 or epoch + 1 == epochs:
                predictions = predict_split(model, adapter, val_split, num_classes)
                metrics = coco_metrics(coco_val, predictions, val_split.clsid2catid)
                row.update({"bbox_AP": metrics["bbox_AP"], "bbox_AP50": metrics["bbox_AP50"],
                            "mask_AP": metrics["AP"], "mask_AP50": metrics["AP50"], "mask_AP75": metrics["AP75"]})
                log(f"eval epoch {epoch + 1}: mask AP={metrics['AP']:.4f} AP50={metrics['AP50']:.4f} "
                    f"bbox AP={metrics['bbox_AP']:.4f} AP50={metrics['bbox_AP50']:.4f}")
                model.train()
            row["epoch_time_s"] = round(time.time() - tic, 2)
            name = f"epoch_{epoch + 1}"
            row["dir"] = str(out / name)
            history.append(row)
            score = row.get("mask_AP")
            is_best = score is not None and (best is None or score >= best["score"])
            if is_best:
                best = {"score": score, "epoch": epoch + 1}
            states = {**state, "epoch": epoch + 1, "step": 0, "history": history, "best": best, "partial": None}
            paths = checkpoint.save(out / name, name, model, None, states)
            paddle.save(optimizer_state(optimizer, model), str(out / name / f"{name}.pdopt"))
            paths["pdopt"] = str(out / name / f"{name}.pdopt")
            inference = None
            if t.get("export_every_epoch"):
                from .export import export_inference

                inference = export_inference(model.state_dict(), meta, out / name / "inference")
            if is_best:
                checkpoint.copy_checkpoint(out / name, name, out / "best_model", "best_model")
            best_entry = None
            if best is not None and (out / "best_model" / "best_model.pdparams").exists():
                best_entry = _model_entry({k: str(out / "best_model" / f"best_model.{k}")
                                           for k in ("pdparams", "pdopt", "pdstates")}, best["score"])
            last_epoch_dirs.append(out / name)
            while len(last_epoch_dirs) > keep_last:
                old = last_epoch_dirs.pop(0)
                if old.exists():
                    shutil.rmtree(old)
            result["models"] = _last_entries(out, history, last_epoch_dirs, best_entry)
            _write_csv(out / "metrics.csv", history)
            _write_result(out, result)
            if (out / "interrupted").exists():
                shutil.rmtree(out / "interrupted")
    finally:
        bar.close()

    if best is not None and t.get("export_best", True) and (out / "best_model" / "best_model.pdparams").exists():
        from .export import export_inference

        inference = export_inference(paddle.load(str(out / "best_model" / "best_model.pdparams")), meta,
                                     out / "best_model" / "inference")
        best_paths = {k: str(out / "best_model" / f"best_model.{k}") for k in ("pdparams", "pdopt", "pdstates")}
        result["models"] = _last_entries(out, history, last_epoch_dirs, _model_entry(best_paths, best["score"],
                                                                                    inference))
    result["done_flag"] = True
    _write_result(out, result)
    log(f"done: best mask AP {best['score'] if best else None} (epoch {best['epoch'] if best else None}); "
        f"model in {out / 'best_model'}")
    return {**result, "history": [{k: v for k, v in r.items() if k != "dir"} for r in history],
            "best_epoch": best["epoch"] if best else None, "output": str(out)}


def _last_entries(out, history, dirs, best_entry):
    models = OrderedDict()
    by_dir = {r["dir"]: r for r in history}
    for i, folder in enumerate(reversed(dirs)):
        name = folder.name
        row = by_dir.get(str(folder), {})
        paths = {k: str(folder / f"{name}.{k}") for k in ("pdparams", "pdopt", "pdstates")}
        inference = None
        if (folder / "inference" / "inference.yml").exists():
            inf = folder / "inference"
            inference = {"inference_config": str(inf / "inference.yml"), "pdmodel": str(inf / "inference.pdmodel"),
                         "pdiparams": str(inf / "inference.pdiparams"),
                         "pdiparams.info": str(inf / "inference.pdiparams.info")}
        models[f"last_{i + 1}"] = _model_entry(paths, row.get("mask_AP"), inference)
    if best_entry is not None:
        models["best"] = best_entry
    return models
