"""Engine benchmarks (not timed unit tests): training speed, the smoke model's accuracy, predictor latency.

    OMP_NUM_THREADS=2 python benchmarks/engine.py speed     # s/iteration of train, eval and predict (a few minutes)
    OMP_NUM_THREADS=2 python benchmarks/engine.py accuracy  # train the smoke model on a mid-size sample (long)

Each writes a JSON summary to ``output/benchmarks/`` and prints it; docs/benchmarks.md records the numbers.
"""
import argparse
import json
import os
import platform
import time
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "2")

MODEL = "MaskRCNN-ResNet18-FPN-S"


def _machine():
    return {"cpu_count": os.cpu_count(), "omp_threads": os.environ.get("OMP_NUM_THREADS"),
            "python": platform.python_version()}


def speed(out, image_size=256, iters=12):
    """Seconds per training iteration (batch 2), evaluation per image, and predictor latency (paddle / mkldnn)."""
    import tutorial_lib as tl
    from tutorial_lib.predict import Predictor, read_image

    data = out / "speed_sample"
    tl.generate_sample(data, num_train=2 * iters, num_val=8, image_size=image_size, seed=0, progress=False,
                       background_fraction=0.0, overwrite=True)
    start = time.perf_counter()
    result = tl.run(MODEL, {"Global.mode": "train", "Global.dataset_dir": str(data), "Global.output": str(out / "speed_run"),
                            "Train.epochs_iters": 1, "Train.batch_size": 2, "Train.warmup_steps": 2,
                            "Architecture.input_size": image_size})
    cycle = time.perf_counter() - start
    row = result["history"][0]
    demo = Path(__file__).resolve().parents[1] / "data" / "remotesensing_demo.png"
    image = read_image(demo)
    latency = {}
    for mode in ("paddle", "mkldnn"):
        predictor = Predictor(out / "speed_run" / "best_model" / "inference", run_mode=mode, threshold=0.0)
        next(predictor.predict(image))
        times = []
        for _ in range(5):
            t = time.perf_counter()
            next(predictor.predict(image))
            times.append(time.perf_counter() - t)
        latency[mode] = round(sorted(times)[len(times) // 2], 3)
    return {"model": MODEL, "image_size": image_size, "train_iterations": row["iters"],
            "epoch_time_s (train + eval of 8 val images)": row["epoch_time_s"],
            "cycle_s (build + train + eval + export)": round(cycle, 1),
            "predict_512px_s_median": latency, "machine": _machine()}


def accuracy(out, num_train=160, num_val=40, image_size=256, epochs=12, lr=0.01):
    """Train the smoke model from scratch on a mid-size sample and evaluate it (mask / box AP, AP50)."""
    import tutorial_lib as tl

    data = out / f"acc_sample_{num_train}_{image_size}"
    tl.generate_sample(data, num_train=num_train, num_val=num_val, image_size=image_size, seed=0, progress=False)
    run_dir = out / f"acc_run_{num_train}_{image_size}_{epochs}"
    start = time.perf_counter()
    result = tl.run(MODEL, {"Global.mode": "train", "Global.dataset_dir": str(data), "Global.output": str(run_dir),
                   "Train.epochs_iters": epochs, "Train.batch_size": 2, "Train.learning_rate": lr,
                   "Train.warmup_steps": 50, "Train.eval_interval": max(1, epochs // 4),
                   "Architecture.input_size": image_size})
    train_s = time.perf_counter() - start
    ev = tl.run(MODEL, {"Global.mode": "evaluate", "Global.dataset_dir": str(data), "Global.output": str(run_dir / "eval"),
                        "Evaluate.weight_path": str(run_dir / "best_model" / "best_model.pdparams")})
    m = ev["metrics"]
    history = [{"epoch": r["epoch"], "iterations": r.get("iters"), "mask_AP": r["mask_AP"],
                "mask_AP50": r["mask_AP50"], "bbox_AP": r["bbox_AP"], "bbox_AP50": r["bbox_AP50"]}
               for r in result["history"] if "mask_AP" in r]
    return {"model": MODEL, "num_train": num_train, "num_val": num_val, "image_size": image_size, "epochs": epochs,
            "lr": lr, "train_time_s": round(train_s, 1), "evaluations": history,
            "mask_AP": m["AP"], "mask_AP50": m["AP50"], "bbox_AP": m["bbox_AP"], "bbox_AP50": m["bbox_AP50"],
            "machine": _machine()}


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("what", choices=("speed", "accuracy"))
    parser.add_argument("--output", default="output/benchmarks")
    parser.add_argument("--num_train", type=int, default=160)
    parser.add_argument("--image_size", type=int, default=256)
    parser.add_argument("--epochs", type=int, default=12)
    parser.add_argument("--lr", type=float, default=0.01)
    args = parser.parse_args()
    out = Path(args.output)
    out.mkdir(parents=True, exist_ok=True)
    if args.what == "speed":
        summary = speed(out, image_size=args.image_size)
    else:
        summary = accuracy(out, num_train=args.num_train, num_val=max(8, args.num_train // 4),
                           image_size=args.image_size, epochs=args.epochs, lr=args.lr)
    (out / f"engine_{args.what}.json").write_text(json.dumps(summary, indent=2) + "\n")
    print(json.dumps(summary, indent=2))
    print()
    print(markdown(args.what, summary))


def markdown(what, summary):
    """docs/benchmarks.md's table of a summary."""
    if what == "speed":
        latency = summary["predict_512px_s_median"]
        return "\n".join([
            "| what | measured |", "|---|---|",
            f"| one epoch of {summary['train_iterations']} iterations at {summary['image_size']} px, batch 2, "
            f"+ evaluation of 8 val images | {summary['epoch_time_s (train + eval of 8 val images)']:.1f} s |",
            f"| whole cycle in one process: build, train, COCO eval, export | "
            f"{summary['cycle_s (build + train + eval + export)']:.1f} s |",
            f"| exported predictor, 512 × 512 demo image, `run_mode=paddle` (plain kernels) | {latency['paddle']:.2f} s |",
            f"| exported predictor, same, `run_mode=mkldnn` | {latency['mkldnn']:.2f} s |"])
    lines = ["| epoch | mask AP | mask AP50 | box AP | box AP50 |", "|---|---|---|---|---|"]
    best = max(e["mask_AP"] for e in summary["evaluations"])
    for e in summary["evaluations"]:
        ap = f"**{e['mask_AP']:.3f}**" if e["mask_AP"] == best else f"{e['mask_AP']:.3f}"
        lines.append(f"| {e['epoch']} | {ap} | {e['mask_AP50']:.3f} | {e['bbox_AP']:.3f} | {e['bbox_AP50']:.3f} |")
    lines.append(f"| training time | {summary['train_time_s'] / 60:.1f} min | | | |")
    return "\n".join(lines)


if __name__ == "__main__":
    main()
