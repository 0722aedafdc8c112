"""Forward time per image at batch 1 and batch 4 (Mask-RT-DETR-S, 640 px), on ONNX Runtime and OpenVINO
(``--run_modes`` adds ``paddle`` / ``mkldnn``), in this process, and the ratio of the two measured in one run.

    OMP_NUM_THREADS=2 python benchmarks/batch_forward.py [--model Mask-RT-DETR-S] [--model_dir DIR]
                                                         [--run_modes onnxruntime openvino] [--repeats 5]

The model is ``--model_dir``, else ``--model`` exported once with seeded random weights into
``output/batch_forward/MODEL-untrained`` (timing only: the forward pass and the post-process cost the same
whatever the weights). The batch is four 512 x 512 crops of the same size (data/remotesensing_demo.png, flipped
and rotated), so it is one forward pass; the time is the backend's ``run`` on the prepared feed (no
preprocessing, no result reading), best of ``--repeats`` after one warm-up, batch 1 and batch 4 alternating.
"""
import argparse
import sys
import time
from pathlib import Path

import numpy as np

DEMO = Path(__file__).resolve().parents[1] / "data" / "remotesensing_demo.png"


def images():
    import cv2

    demo = cv2.cvtColor(cv2.imread(str(DEMO)), cv2.COLOR_BGR2RGB)
    return [demo, demo[:, ::-1].copy(), demo[::-1].copy(), np.rot90(demo).copy()]


def best_ms(backend, feed, repeats):
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        backend.run(feed)
        times.append(time.perf_counter() - start)
    return min(times) * 1000


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="Mask-RT-DETR-S")
    parser.add_argument("--model_dir", help="an exported model (default: --model with random weights)")
    parser.add_argument("--run_modes", nargs="+", default=["onnxruntime", "openvino"])
    parser.add_argument("--batch", type=int, default=4)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--threads", type=int, help="CPU threads (default: OMP_NUM_THREADS, else all cores)")
    args = parser.parse_args()
    from tutorial_lib.predict import Predictor
    from tutorial_lib.predict.predictor import make_feed

    model_dir = Path(args.model_dir) if args.model_dir else Path("output") / "batch_forward" / f"{args.model}-untrained"
    if not args.model_dir and not (model_dir / "inference.yml").is_file():
        from tutorial_lib.engine.export import export_untrained

        print(f"exporting {args.model} with random weights into {model_dir} (timing only)")
        export_untrained(args.model, model_dir)
    batch = images()[:args.batch]
    rows = []
    for run_mode in args.run_modes:
        predictor = Predictor(model_dir, run_mode=run_mode, cpu_threads=args.threads)
        if predictor.batch_size_limit is not None and predictor.batch_size_limit < args.batch:
            sys.exit(f"{model_dir} takes at most {predictor.batch_size_limit} image(s) per forward pass")
        ops = predictor.info["Preprocess"]
        feeds = {1: make_feed(batch[:1], ops), args.batch: make_feed(batch, ops)}
        for feed in feeds.values():
            predictor.backend.run(feed)  # warm-up (and OpenVINO's first shape)
        ms = {n: [] for n in feeds}
        for _ in range(args.repeats):  # alternate, so that a busy spell hits both
            for n, feed in feeds.items():
                ms[n].append(best_ms(predictor.backend, feed, 1) / n)
        one, many = min(ms[1]), min(ms[args.batch])
        rows.append((run_mode, one, many))
        print(f"{run_mode}: {one:.0f} ms / image at batch 1, {many:.0f} ms / image at batch {args.batch} "
              f"({many / one:.2f}x)", flush=True)
    size = feeds[1]["image"].shape[-1]
    print(f"\n{predictor.model_name} ({model_dir}), {size} px, best of {args.repeats}, ms per image")
    print(f"\n| run_mode | batch 1 | batch {args.batch} | batch {args.batch} / batch 1 |")
    print("|---|---|---|---|")
    for run_mode, one, many in rows:
        print(f"| {run_mode} | {one:.0f} | {many:.0f} | **{many / one:.2f}×** |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
