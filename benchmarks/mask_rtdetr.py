"""Mask-RT-DETR on this CPU: per size, parameters, dygraph forward ms, exported model through Paddle
Inference with and without oneDNN, exported size. Results go to docs/benchmarks.md.

    OMP_NUM_THREADS=2 python benchmarks/mask_rtdetr.py --sizes S M --repeats 3
"""
import argparse

from tutorial_lib.bench import measure_mask_rtdetr
from tutorial_lib.models.registry import MODELS


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", nargs="+", default=["S", "M", "L", "X", "H"])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--input_size", type=int, default=640)
    args = parser.parse_args()
    print(f"{'model':15s} {'params':>12s} {'dygraph ms':>11s} {'infer ms':>9s} {'oneDNN ms':>10s} "
          f"{'oneDNN x':>9s} {'export MB':>10s} {'PaddleX MB':>11s}")
    rows = []
    for size in args.sizes:
        r = measure_mask_rtdetr(size.upper(), input_size=args.input_size, repeats=args.repeats, export=True)
        rows.append(r)
        print(f"{r['model']:15s} {r['params']:12,d} {r['dygraph_ms']:11.1f} {r['inference_ms']:9.1f} "
              f"{r['onednn_ms']:10.1f} {r['inference_ms'] / r['onednn_ms']:9.2f} {r['export_mb']:10.1f} "
              f"{MODELS[r['model']].size_mb:11.1f}", flush=True)
    print("\n| model | params (ours, 10 classes) | dygraph ms | Paddle Inference ms | oneDNN ms | oneDNN speed-up "
          "| export MB | PaddleX size MB | PaddleX GPU ms |")
    print("|---|---|---|---|---|---|---|---|---|")
    for r in rows:
        info = MODELS[r["model"]]
        print(f"| {r['model']} | {r['params']:,} | {r['dygraph_ms']:,.0f} | {r['inference_ms']:,.0f} "
              f"| {r['onednn_ms']:,.0f} | {r['inference_ms'] / r['onednn_ms']:.2f}× | {r['export_mb']:.1f} "
              f"| {info.size_mb:g} | {info.gpu_ms:g} |")


if __name__ == "__main__":
    main()
