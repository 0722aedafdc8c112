"""INT8 for edge deployment: model size, latency and mask AP of post-training INT8 against FP32.

Two models, because no trained Mask-RT-DETR can be downloaded here:

* **accuracy** -- Mask-RT-DETR-S-Smoke (S at 128 px, fewer queries) trained from scratch on a small easy set by
  ``benchmarks/mask_rtdetr_train.py`` (4 generated images, 60 epochs, val = train: the only Mask-RT-DETR that
  reaches a real mask AP on 2 CPU cores), quantized calibrated on those images; mask / box AP of FP32 and of
  INT8 on both runtimes, on the same images.
* **latency** -- Mask-RT-DETR-S at its 640 px, random weights (timings are real, detections are not), quantized
  calibrated on 32 images of the generated sample.

Size is the ONNX file (FP32 ``inference.onnx`` vs ``inference_int8.onnx``); latency is the runtime's forward pass
alone on the demo scene, median of ``--repeats`` after a warm-up. Prints a markdown table and writes
``output/benchmarks/int8.json``.

    OMP_NUM_THREADS=2 python benchmarks/int8.py                          # ~9 min on 2 cores (training ~6)
    OMP_NUM_THREADS=2 python benchmarks/int8.py --trained_dir RUN_DIR    # reuse a mask_rtdetr_train.py run
"""
import argparse
import json
import os
import sys
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "2")
sys.path.insert(0, str(Path(__file__).resolve().parent))

DEMO = Path(__file__).resolve().parents[1] / "data" / "remotesensing_demo.png"
MODES = ("onnxruntime", "onnxruntime_int8", "openvino", "openvino_int8")


def forward_ms(model_dir, run_mode, repeats, image_path=DEMO):
    from tutorial_lib.bench import median_ms
    from tutorial_lib.predict import Predictor, make_feed, read_image

    predictor = Predictor(model_dir, run_mode=run_mode, threshold=0.0)
    feed = make_feed([read_image(str(image_path))], predictor.info["Preprocess"])
    predictor.backend.run(feed)  # warm-up
    return median_ms(lambda: predictor.backend.run(feed), repeats)


def measure(label, model_dir, calibration, repeats, dataset_dir=None):
    from tutorial_lib.predict.onnx_export import onnx_path
    from tutorial_lib.predict.quantize import model_size_mb, quantize_int8
    from tutorial_lib.quickstart import evaluate_exported

    int8 = quantize_int8(model_dir, calibration, progress=False)
    row = {"model": label, "fp32_mb": round(model_size_mb(onnx_path(model_dir)), 1),
           "int8_mb": round(model_size_mb(int8), 1)}
    for mode in MODES:
        row[f"{mode}_ms"] = round(forward_ms(model_dir, mode, repeats), 1)
        if dataset_dir is not None:
            metrics = evaluate_exported(model_dir, dataset_dir, split="val", run_mode=mode)
            row[f"{mode}_mask_AP"], row[f"{mode}_bbox_AP"] = metrics["AP"], metrics["bbox_AP"]
    print(json.dumps(row), flush=True)
    return row


def table(rows):
    def ap(row, mode, key="mask_AP"):
        value = row.get(f"{mode}_{key}")
        return "—" if value is None else f"{value:.3f}"

    lines = ["| model | ONNX MB FP32 → INT8 | ONNX Runtime ms FP32 → INT8 | OpenVINO ms FP32 → INT8 "
             "| mask AP FP32 → INT8 (ORT / OpenVINO) | box AP FP32 → INT8 (ORT / OpenVINO) |",
             "|---|---|---|---|---|---|"]
    for r in rows:
        lines.append(
            f"| {r['model']} | {r['fp32_mb']:.1f} → {r['int8_mb']:.1f} ({r['fp32_mb'] / r['int8_mb']:.1f}× smaller) "
            f"| {r['onnxruntime_ms']:,.0f} → {r['onnxruntime_int8_ms']:,.0f} "
            f"({r['onnxruntime_ms'] / r['onnxruntime_int8_ms']:.2f}×) "
            f"| {r['openvino_ms']:,.0f} → {r['openvino_int8_ms']:,.0f} ({r['openvino_ms'] / r['openvino_int8_ms']:.2f}×) "
            f"| {ap(r, 'onnxruntime')} → {ap(r, 'onnxruntime_int8')} / {ap(r, 'openvino_int8')} "
            f"| {ap(r, 'onnxruntime', 'bbox_AP')} → {ap(r, 'onnxruntime_int8', 'bbox_AP')} / "
            f"{ap(r, 'openvino_int8', 'bbox_AP')} |")
    return "\n".join(lines)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trained_dir", help="a benchmarks/mask_rtdetr_train.py run folder to reuse (default: "
                        "train one, ~6 min)")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--output", default="output/benchmarks")
    args = parser.parse_args()
    import tempfile

    import mask_rtdetr_train
    import yaml
    import tutorial_lib as tl
    from tutorial_lib.engine.export import export_untrained

    out = Path(args.output)
    out.mkdir(parents=True, exist_ok=True)
    run_dir = Path(args.trained_dir) if args.trained_dir else Path(mask_rtdetr_train.run(out, export=True)["run_dir"])
    data = Path(yaml.safe_load((run_dir / "config.yaml").read_text(encoding="utf-8"))["Global"]["dataset_dir"])
    rows = [measure("Mask-RT-DETR-S-Smoke, trained on 4 easy images (128 px; AP on the same images)",
                    run_dir / "best_model" / "inference", data / "images", args.repeats, dataset_dir=data)]
    with tempfile.TemporaryDirectory() as tmp:
        sample = Path(tmp) / "sample"
        tl.generate_sample(sample, progress=False)
        export_untrained("Mask-RT-DETR-S", Path(tmp) / "s640")
        rows.append(measure("Mask-RT-DETR-S, 640 px, random weights (latency only)", Path(tmp) / "s640",
                            Path(sample) / "images", args.repeats))
    (out / "int8.json").write_text(json.dumps(rows, indent=2) + "\n", encoding="utf-8")
    print(table(rows))


if __name__ == "__main__":
    main()
