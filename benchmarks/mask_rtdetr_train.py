"""Mask-RT-DETR through the engine on a tiny, easy set: does training from scratch learn at all?

Trains Mask-RT-DETR-S-Smoke (Mask-RT-DETR-S at 128 px, fewer queries) on a few synthetic images for many
epochs and evaluates on the *same* images (val = train: an overfitting check, not a generalisation number),
then reports the loss before/after and mask / box AP. The CI test (tests/engine/test_engine_mask_rtdetr.py) only
checks that the loss falls; this run shows that mask AP becomes > 0. Results go to docs/benchmarks.md.

    OMP_NUM_THREADS=2 python benchmarks/mask_rtdetr_train.py                  # ~10 min on 2 cores
    OMP_NUM_THREADS=2 python benchmarks/mask_rtdetr_train.py --epochs 100 --num_train 4

Writes ``output/benchmarks/mask_rtdetr_train.json`` and prints it.
"""
import argparse
import json
import os
import platform
import shutil
import time
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "2")

MODEL = "Mask-RT-DETR-S-Smoke"


def easy_set(folder, num_train, image_size, seed=0):
    """A sample whose val split is its train split (every image with objects)."""
    import tutorial_lib as tl

    tl.generate_sample(folder, num_train=num_train, num_val=1, image_size=image_size, seed=seed, progress=False,
                       background_fraction=0.0, overwrite=True)
    annotations = Path(folder) / "annotations"
    shutil.copyfile(annotations / "instance_train.json", annotations / "instance_val.json")
    return folder


def losses_from_log(path):
    return [float(line.rsplit(" loss=", 1)[1].split()[0]) for line in Path(path).read_text().splitlines()
            if " iter " in line and " loss=" in line]


def run(out, num_train=4, image_size=128, epochs=60, lr=4e-4, seed=0, export=False):
    """Train; ``export``: also export the best model (``<run>/best_model/inference``, used by benchmarks/int8.py)."""
    import tutorial_lib as tl

    data = easy_set(out / f"easy_{num_train}_{image_size}", num_train, image_size, seed)
    run_dir = out / f"mask_rtdetr_easy_{num_train}_{image_size}_{epochs}"
    if run_dir.exists():
        shutil.rmtree(run_dir)
    start = time.perf_counter()
    result = tl.run(MODEL, {"Global.mode": "train", "Global.dataset_dir": str(data), "Global.output": str(run_dir),
                            "Global.seed": seed, "Train.epochs_iters": epochs, "Train.batch_size": 2,
                            "Train.learning_rate": lr, "Train.warmup_steps": 10, "Train.log_interval": 1,
                            "Train.eval_interval": max(1, epochs // 6), "Train.export_best": export,
                            "Architecture.input_size": image_size})
    train_s = time.perf_counter() - start
    losses = losses_from_log(run_dir / "train.log")
    evals = [{"epoch": r["epoch"], "mask_AP": r["mask_AP"], "mask_AP50": r["mask_AP50"], "bbox_AP": r["bbox_AP"],
              "bbox_AP50": r["bbox_AP50"]} for r in result["history"] if "mask_AP" in r]
    return {"model": MODEL, "run_dir": str(run_dir), "num_train_images (val = train)": num_train, "image_size": image_size, "epochs": epochs,
            "iterations": len(losses), "lr": lr, "train_time_s (incl. evaluations)": round(train_s, 1),
            "s_per_iteration": round(train_s / max(1, len(losses)), 2),
            "loss_first_2_iterations": [round(v, 2) for v in losses[:2]],
            "loss_last_4_iterations_mean": round(sum(losses[-4:]) / max(1, len(losses[-4:])), 2),
            "evaluations": evals, "best_mask_AP": max((e["mask_AP"] for e in evals), default=None),
            "machine": {"cpu_count": os.cpu_count(), "omp_threads": os.environ.get("OMP_NUM_THREADS"),
                        "python": platform.python_version()}}


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--num_train", type=int, default=4)
    parser.add_argument("--image_size", type=int, default=128)
    parser.add_argument("--epochs", type=int, default=60)
    parser.add_argument("--lr", type=float, default=4e-4)
    parser.add_argument("--output", default="output/benchmarks")
    args = parser.parse_args()
    out = Path(args.output)
    out.mkdir(parents=True, exist_ok=True)
    summary = run(out, args.num_train, args.image_size, args.epochs, args.lr, export=True)  # int8.py reuses it
    (out / "mask_rtdetr_train.json").write_text(json.dumps(summary, indent=2) + "\n", encoding="utf-8")
    print(json.dumps(summary, indent=2))
    print(f"\n| epoch | mask AP | mask AP50 | box AP | box AP50 |\n|---|---|---|---|---|")
    for e in summary["evaluations"]:
        print(f"| {e['epoch']} | {e['mask_AP']:.3f} | {e['mask_AP50']:.3f} | {e['bbox_AP']:.3f} | {e['bbox_AP50']:.3f} |")
    print(f"| loss | {summary['loss_first_2_iterations'][0]:.0f} → {summary['loss_last_4_iterations_mean']:.0f} "
          f"in {summary['iterations']} iterations | {summary['train_time_s (incl. evaluations)']:.0f} s | | |")


if __name__ == "__main__":
    main()
