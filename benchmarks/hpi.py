"""High-performance inference on this machine: median latency per backend and its ratio to plain Paddle Inference,
with parity against it; and (``--survey``) which models paddle2onnx converts. Results go to docs/benchmarks.md.

    OMP_NUM_THREADS=2 python benchmarks/hpi.py                       # Mask-RT-DETR-S (random weights, 640 px)
    OMP_NUM_THREADS=2 python benchmarks/hpi.py --models Mask-RT-DETR-M Mask-RT-DETR-L --repeats 3
    OMP_NUM_THREADS=2 python benchmarks/hpi.py --model_dir DIR ...   # exported models of your own
    OMP_NUM_THREADS=2 python benchmarks/hpi.py --survey              # every registered model: converts or not

Backends: plain Paddle Inference, oneDNN, ONNX Runtime and OpenVINO (CPU plugin, fp32; both on the same
``inference.onnx``). Latency is per image (default data/remotesensing_demo.png): ``model`` is the backend's forward
pass alone, ``end to end`` adds reading, preprocessing and pasting masks (``Predictor.predict``). Parity: every
detection of plain Paddle Inference found again (same class, box within 0.05 px, score within 1e-4) and the mean
mask IoU of those.
"""
import argparse
import re
import shutil
import tempfile
import time
from pathlib import Path

import numpy as np

from tutorial_lib.engine.export import export_untrained
from tutorial_lib.errors import UserError
from tutorial_lib.bench import median_ms
from tutorial_lib.models.registry import list_models
from tutorial_lib.predict import Predictor, make_feed, read_image
from tutorial_lib.predict.onnx_export import UnsupportedModelError, convert_to_onnx

DEMO = Path(__file__).resolve().parents[1] / "data" / "remotesensing_demo.png"
BACKENDS = ("paddle", "mkldnn", "onnxruntime", "openvino")


def parity(reference, other):
    found, ious = 0, []
    for box, mask in zip(reference.boxes, reference.masks):
        hits = [i for i, b in enumerate(other.boxes) if b["cls_id"] == box["cls_id"]
                and np.abs(np.subtract(b["coordinate"], box["coordinate"])).max() < 0.05
                and abs(b["score"] - box["score"]) < 1e-4]
        if hits:
            found += 1
            union = [np.logical_or(other.masks[i], mask).sum() for i in hits]
            ious.append(max(np.logical_and(other.masks[i], mask).sum() / u if u else 1.0
                            for i, u in zip(hits, union)))
    return found, len(reference.boxes), float(np.mean(ious)) if ious else float("nan")


def latency(model_dir, repeats, image_path=DEMO):
    image = read_image(str(image_path))
    rows, reference = [], None
    for mode in BACKENDS:
        try:
            predictor = Predictor(model_dir, run_mode=mode, threshold=0.0)
        except UnsupportedModelError as exc:
            rows.append((mode, None, None, f"no: {', '.join(exc.ops) or str(exc).split(';')[0]}", None))
            continue
        except UserError as exc:  # a backend not installed here (pip install openvino): the others still run
            if mode == BACKENDS[0]:
                raise  # plain Paddle Inference is the reference of the whole table
            rows.append((mode, None, None, f"not run: {exc}", None))
            continue
        feed = make_feed([image], predictor.info["Preprocess"])
        model_ms = median_ms(lambda: predictor.backend.run(feed), repeats)
        e2e_ms = median_ms(lambda: next(predictor.predict(image)), repeats)
        result = next(predictor.predict(image))
        if reference is None:
            reference = result
        found, total, iou = parity(reference, result)
        rows.append((mode, model_ms, e2e_ms, f"{found}/{total} detections, mask IoU {iou:.4f}", (found, total, iou)))
    base = rows[0][1]
    print(f"\n{predictor.model_name} ({model_dir})")
    print(f"{'backend':12s} {'model ms':>9s} {'x plain':>8s} {'end-to-end ms':>14s}  parity with plain Paddle "
          "Inference")
    for mode, model_ms, e2e_ms, note, _ in rows:
        if model_ms is None:
            print(f"{mode:12s} {'-':>9s} {'-':>8s} {'-':>14s}  {note}")
        else:
            print(f"{mode:12s} {model_ms:9.1f} {base / model_ms:7.2f}x {e2e_ms:14.1f}  {note}")
    return predictor.model_name, rows


def markdown(measured):
    """docs/benchmarks.md's table: forward-pass ms per backend, the fastest, parity, PaddleX's published CPU ms."""
    published = {m["name"]: (m["cpu_ms"], m["cpu_ms_hp"]) for m in list_models()}
    lines = ["| model | " + " | ".join(f"`{mode}` ms" for mode in BACKENDS) + " | fastest (× plain) "
             "| end to end, fastest | parity (all) | published CPU ms (normal / HP) |",
             "|---" * (len(BACKENDS) + 5) + "|"]
    for name, rows in measured:
        timed = [r for r in rows if r[1] is not None]
        best = min(timed, key=lambda r: r[1])
        cells = []
        for mode in BACKENDS:
            row = next((r for r in rows if r[0] == mode), None)
            if row is None or row[1] is None:
                cells.append("does not convert" if row is not None and row[3].startswith("no") else "—")
            else:
                cells.append(f"**{row[1]:,.0f}**" if row is best else f"{row[1]:,.0f}")
        found = min((r[4][0] for r in timed[1:]), default=0)  # the worst backend's count
        total = timed[0][4][1]
        worst_iou = min((r[4][2] for r in timed[1:]), default=float("nan"))
        paddlex = published.get(name, (None, None))
        paddlex = " / ".join(f"{v:,.2f}" for v in paddlex) if paddlex[0] else "—"
        lines.append(f"| {name} | " + " | ".join(cells) + f" | {best[0]} ({timed[0][1] / best[1]:.1f}×) "
                     f"| {best[2]:,.0f} | {found}/{total}, IoU ≥ {worst_iou:.4f} | {paddlex} |")
    print("\n" + "\n".join(lines))


def survey(workdir, markdown=False):
    """Export every registered model with random weights, convert it and load it once in ONNX Runtime."""
    print(f"{'model':32s} {'ONNX':5s} {'convert s':>9s}  why not (operators paddle2onnx cannot map)")
    rows = []
    for m in list_models():
        out = Path(workdir) / m["name"]
        export_untrained(m["name"], out)
        start = time.perf_counter()
        try:
            convert_to_onnx(out)
            verdict, why = "yes", ""
        except UnsupportedModelError as exc:
            verdict = "no"
            why = (f"paddle2onnx has no mapping for {', '.join(f'`{op}`' for op in exc.ops)}" if exc.ops else
                   re.sub(r"Load model from \S+ failed:", "", str(exc).split(";")[0].replace(f"{m['name']} ", "", 1)))
        seconds = time.perf_counter() - start
        rows.append((m["name"], verdict, seconds, why))
        print(f"{m['name']:32s} {verdict:5s} {seconds:9.1f}  {why}", flush=True)
        shutil.rmtree(out)
    if markdown:
        print("\n| model | converts and loads in ONNX Runtime | seconds | why not |\n|---|---|---|---|")
        for name, verdict, seconds, why in rows:
            print(f"| {name} | {verdict} | {seconds:.0f} | {why} |")


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model_dir", nargs="+", help="exported model folders (default: --models, untrained)")
    parser.add_argument("--models", nargs="+", default=["Mask-RT-DETR-S"], help="registered models to export with "
                        "random weights and time when no --model_dir is given")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--image", default=str(DEMO), help="image to predict (default: the demo scene)")
    parser.add_argument("--survey", action="store_true", help="try paddle2onnx on every registered model")
    parser.add_argument("--markdown", action="store_true", help="end with docs/benchmarks.md's table")
    parser.add_argument("--with_quickstart", action="store_true", help="time the quick-start R-CNN model too "
                        "(exported from the shipped weights on first use)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        if args.survey:
            survey(tmp, args.markdown)
            return
        dirs = args.model_dir
        if not dirs:
            dirs = [str(Path(tmp) / name) for name in args.models]
            for name, folder in zip(args.models, dirs):
                export_untrained(name, folder)
        if args.with_quickstart:
            from tutorial_lib.quickstart import quickstart_model_dir

            dirs = list(dirs) + [str(quickstart_model_dir())]
        measured = []
        for model_dir in dirs:
            try:
                measured.append(latency(model_dir, args.repeats, args.image))
            except UserError as exc:
                print(f"{model_dir}: {exc}")
        if args.markdown:
            markdown(measured)


if __name__ == "__main__":
    main()
