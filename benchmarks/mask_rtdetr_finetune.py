"""Mask-RT-DETR on the CPU: what one training iteration costs, and a short fine-tune from pretrained weights.

1. **Cost** (``--sizes 320 640``): Mask-RT-DETR-S with its bundled recipe (300 queries, 12,544 mask points, AdamW,
   EMA, the recipe's multi-scale resize scaled to ``input_size``: 480-800 px at 640, 240-400 px at 320) trained
   through the engine, batch 2; seconds per iteration from ``train.log``'s timestamps between the first and the
   last logged iteration (so the first iteration, which also builds the programs, is not counted).
2. **Fine-tune** (``--finetune_epochs N``): ``Mask-RT-DETR-S-Smoke`` (S at 128 px, fewer queries and mask points;
   the S weights load unchanged) from ``../shared/oracle/mask_rtdetr/s_perturbed.pdparams`` (the oracle's stand-in
   for the official COCO checkpoint: deterministic non-trivial weights, not trained ones) on the generated sample.
   Mask / box AP on the val split before (the pretrained weights, class-dependent layers re-initialised for 10
   classes, as the fine-tune starts) and after.

    OMP_NUM_THREADS=2 python benchmarks/mask_rtdetr_finetune.py        # ~15 min on 2 cores

Writes ``output/benchmarks/mask_rtdetr_finetune.json`` and prints it; the figures go in docs/benchmarks.md.
"""
import argparse
import datetime
import json
import os
import platform
import re
import shutil
import time
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "2")
REPO = Path(__file__).resolve().parents[1]
PRETRAINED = REPO.parent / "shared" / "oracle" / "mask_rtdetr" / "s_perturbed.pdparams"
STAMP = re.compile(r"^\[(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d)\] epoch \d+/\d+ iter (\d+)/")


def seconds_per_iteration(log_path):
    """Mean seconds per iteration between the first and the last logged iteration of ``train.log``."""
    stamps = [datetime.datetime.strptime(m.group(1), "%Y-%m-%d %H:%M:%S")
              for m in map(STAMP.match, Path(log_path).read_text(encoding="utf-8").splitlines()) if m]
    if len(stamps) < 2:
        raise RuntimeError(f"{log_path} logs fewer than 2 iterations")
    return (stamps[-1] - stamps[0]).total_seconds() / (len(stamps) - 1), len(stamps)


def training_cost(tl, data, out, size, iterations):
    """Train Mask-RT-DETR-S at ``size`` px for one epoch of ``iterations`` batches of 2 (no evaluation)."""
    run_dir = out / f"cost_S_{size}"
    shutil.rmtree(run_dir, ignore_errors=True)  # train.log appends: an earlier run's lines would be timed too
    start = time.perf_counter()
    tl.run("Mask-RT-DETR-S", {"Global.mode": "train", "Global.dataset_dir": str(data), "Global.output": str(run_dir),
                              "Global.seed": 0, "Train.epochs_iters": 1, "Train.batch_size": 2,
                              "Train.log_interval": 1, "Train.eval_interval": 1000, "Train.export_best": False,
                              "Architecture.input_size": size})
    per_iteration, logged = seconds_per_iteration(run_dir / "train.log")
    if logged != iterations:  # one epoch, every iteration logged: anything else is not this run's log
        raise RuntimeError(f"{run_dir / 'train.log'} logs {logged} iterations, expected {iterations}")
    return {"input_size": size, "batch_size": 2, "iterations_logged": logged,
            "s_per_iteration": round(per_iteration, 1), "wall_s": round(time.perf_counter() - start, 1)}


def finetune(tl, data, out, epochs, lr):
    """AP before (the pretrained weights as the fine-tune loads them) and after ``epochs`` epochs."""
    from tutorial_lib.engine.common import build_from_meta, model_meta, predict_split
    from tutorial_lib.engine.checkpoint import load_pretrained
    from tutorial_lib.engine.data import Split, read_categories
    from tutorial_lib.engine.metrics import coco_metrics
    from tutorial_lib.data.coco import load_coco

    cfg = tl.load_config("Mask-RT-DETR-S-Smoke")
    labels = [c["name"] for c in read_categories(data, "val")]
    adapter, model = build_from_meta(model_meta(cfg, len(labels), labels))
    load_pretrained(model, PRETRAINED)
    split = Split(data, "val", allow_empty=True)
    before = coco_metrics(load_coco(split.path), predict_split(model, adapter, split, len(labels)), split.clsid2catid)
    run_dir = out / f"finetune_smoke_{epochs}"
    shutil.rmtree(run_dir, ignore_errors=True)
    start = time.perf_counter()
    result = tl.run("Mask-RT-DETR-S-Smoke", {
        "Global.mode": "train", "Global.dataset_dir": str(data), "Global.output": str(run_dir), "Global.seed": 0,
        "Train.pretrain_weight_path": str(PRETRAINED), "Train.epochs_iters": epochs, "Train.batch_size": 2,
        "Train.learning_rate": lr, "Train.warmup_steps": 10, "Train.eval_interval": 1, "Train.log_interval": 10,
        "Train.export_best": False})
    keep = ("AP", "AP50", "bbox_AP", "bbox_AP50")
    after = [{"epoch": r["epoch"], **{k: round(r[f"mask_{k}" if not k.startswith("bbox") else k], 4)
                                      for k in keep}} for r in result["history"] if "mask_AP" in r]
    return {"model": "Mask-RT-DETR-S-Smoke", "pretrained": PRETRAINED.name, "epochs": epochs, "learning_rate": lr,
            "train_s": round(time.perf_counter() - start, 1),
            "before": {k: round(before[k], 4) for k in keep}, "after_each_epoch": after}


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", type=int, nargs="*", default=[320, 640])
    parser.add_argument("--iterations", type=int, default=6, help="training iterations timed per size")
    parser.add_argument("--finetune_epochs", type=int, default=4)
    parser.add_argument("--num_train", type=int, default=32)
    parser.add_argument("--lr", type=float, default=2e-4)
    parser.add_argument("--output", default="output/benchmarks")
    args = parser.parse_args()
    import tutorial_lib as tl

    out = Path(args.output) / "mask_rtdetr_finetune"
    out.mkdir(parents=True, exist_ok=True)
    summary = {"machine": {"cpu_count": os.cpu_count(), "omp_threads": os.environ.get("OMP_NUM_THREADS"),
                           "python": platform.python_version()}, "cost": [], "finetune": None}
    if args.sizes:
        # every training image holds objects, so an epoch is exactly `iterations` batches
        cost_data = tl.generate_sample(out / "cost_data", num_train=2 * args.iterations, num_val=2, image_size=256,
                                       seed=0, background_fraction=0.0, progress=False, overwrite=True)["dataset_dir"]
        summary["cost"] = [training_cost(tl, cost_data, out, size, args.iterations) for size in args.sizes]
    if args.finetune_epochs:
        if not PRETRAINED.is_file():
            raise SystemExit(f"{PRETRAINED} is missing: the fine-tune needs ../shared beside the project")
        data = tl.generate_sample(out / "finetune_data", preset="ci", num_train=args.num_train, num_val=16,
                                  image_size=128, seed=0, progress=False, overwrite=True)["dataset_dir"]
        summary["finetune"] = finetune(tl, data, out, args.finetune_epochs, args.lr)
    (Path(args.output) / "mask_rtdetr_finetune.json").write_text(json.dumps(summary, indent=2) + "\n")
    print(json.dumps(summary, indent=2))
    print(markdown(summary))


def markdown(summary):
    """docs/benchmarks.md's tables: the recipe's cost per input size, and AP before / after each fine-tune epoch."""
    lines = []
    if summary["cost"]:
        lines += ["", "| input size | s / iteration (batch 2) | iterations timed |", "|---|---|---|"]
        lines += [f"| {c['input_size']} px | {c['s_per_iteration']:.1f} | {c['iterations_logged'] - 1} |"
                  for c in summary["cost"]]
    tune = summary["finetune"]
    if tune:
        lines += ["", "| fine-tune epoch | mask AP | mask AP50 | box AP | box AP50 |", "|---|---|---|---|---|",
                  "| before (pretrained weights) | " + " | ".join(f"{tune['before'][k]:.4f}"
                                                         for k in ("AP", "AP50", "bbox_AP", "bbox_AP50")) + " |"]
        lines += [f"| {e['epoch']} | {e['AP']:.4f} | {e['AP50']:.4f} | {e['bbox_AP']:.4f} | {e['bbox_AP50']:.4f} |"
                  for e in tune["after_each_epoch"]]
    return "\n".join(lines)


if __name__ == "__main__":
    main()
