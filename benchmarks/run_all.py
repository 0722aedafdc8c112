"""Rerun the benchmarks and write their tables into docs/benchmarks.md, so that the figures there come from the code.

    python benchmarks/run_all.py                    # every benchmark (`make bench`; about an hour on 2 cores)
    python benchmarks/run_all.py --only coco_eval int8
    python benchmarks/run_all.py --list             # names, commands, rough minutes on 2 cores

The contract is small: a benchmark prints its results as markdown tables (runs of lines that start with ``|``).
Each one runs in a fresh process with ``OMP_NUM_THREADS=2``; its whole output is kept in
``output/benchmarks/logs/NAME.log``, and its tables replace what stands between the markers

    <!-- bench:NAME -->
    ...
    <!-- /bench:NAME -->

in docs/benchmarks.md, under one line saying when, where and with which command they were made. Text outside the
markers (what the numbers mean, what was changed because of them) is written by hand and never touched. A
benchmark that fails leaves its block as it was and makes the run exit non-zero; the others still run. Timings need
a quiet machine: run nothing else meanwhile.
"""
import argparse
import datetime
import os
import platform
import re
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DOC = ROOT / "docs" / "benchmarks.md"
LOGS = ROOT / "output" / "benchmarks" / "logs"

SERVING_HOME = "output/benchmarks/serving_home"

# name -> (arguments after `python`, minutes measured on 2 quiet cores, AMD EPYC, 2026-12-05)
BENCHMARKS = {
    "coco_eval": (["benchmarks/coco_eval.py", "--warm"], 2),
    "check_dataset": (["benchmarks/check_dataset.py", "--sizes", "1000", "10000"], 1),
    "hpi": (["benchmarks/hpi.py", "--models", "Mask-RT-DETR-S", "Mask-RT-DETR-M", "Mask-RT-DETR-L",
             "Mask-RT-DETR-X", "Mask-RT-DETR-H", "--repeats", "3", "--with_quickstart", "--markdown"], 9),
    "onnx_survey": (["benchmarks/hpi.py", "--survey", "--markdown"], 3),
    "sliced": (["benchmarks/sliced.py", "--threshold", "0.05"], 1),
    "large_scene": (["benchmarks/large_scene.py"], 2),
    "merge_modes": (["benchmarks/merge_modes.py"], 5),
    "mask_rtdetr": (["benchmarks/mask_rtdetr.py", "--sizes", "S", "M", "L", "X", "H", "--repeats", "3"], 6),
    "mask_rtdetr_train": (["benchmarks/mask_rtdetr_train.py"], 4),
    # INT8 of the model mask_rtdetr_train.py trained (run that first; int8.py alone trains its own)
    "int8": (["benchmarks/int8.py", "--trained_dir", "output/benchmarks/mask_rtdetr_easy_4_128_60"], 2),
    "mask_rtdetr_finetune": (["benchmarks/mask_rtdetr_finetune.py"], 8),
    "engine_speed": (["benchmarks/engine.py", "speed"], 1),
    "engine_accuracy": (["benchmarks/engine.py", "accuracy", "--num_train", "128", "--epochs", "10"], 19),
    # the serving benchmarks share one 4-epoch quick-start model, trained by the first of them that runs
    "serving_load": (["benchmarks/serving_load.py", "--home", SERVING_HOME, "--images", "training", "demo",
                      "--threshold", "0.05"], 4),
    "serving_batching": (["benchmarks/serving_load.py", "--home", SERVING_HOME, "--images", "training",
                          "--threshold", "0.05", "--clients", "8", "--requests", "16", "--max_batch_size", "4"], 1),
    "serving_soak": (["benchmarks/serving_soak.py", "--home", SERVING_HOME, "--compare_untuned"], 6),
}


def tables(text):
    """The markdown tables in ``text``: maximal runs of lines starting with ``|``, joined by blank lines."""
    blocks, current = [], []
    for line in text.splitlines() + [""]:
        if line.startswith("|"):
            current.append(line.rstrip())
        elif current:
            blocks.append("\n".join(current))
            current = []
    return "\n\n".join(blocks)


def machine():
    cpu = "unknown CPU"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return f"{cpu}, {os.cpu_count()} cores, Python {platform.python_version()}"


def replace_block(doc, name, body):
    """``doc`` with the text between ``name``'s markers replaced by ``body``; a missing marker is an error."""
    pattern = re.compile(rf"(<!-- bench:{re.escape(name)} -->\n)(.*?)(<!-- /bench:{re.escape(name)} -->)", re.S)
    if not pattern.search(doc):
        raise SystemExit(f"docs/benchmarks.md has no <!-- bench:{name} --> ... <!-- /bench:{name} --> block")
    return pattern.sub(lambda m: m.group(1) + body.rstrip() + "\n" + m.group(3), doc, count=1)


def run_one(name):
    """Run benchmark ``name``; return (ok, the block's new body)."""
    argv, _ = BENCHMARKS[name]
    LOGS.mkdir(parents=True, exist_ok=True)
    env = {**os.environ, "OMP_NUM_THREADS": "2", "PYTHONUNBUFFERED": "1"}
    start = time.perf_counter()
    with open(LOGS / f"{name}.log", "w", encoding="utf-8") as log:
        proc = subprocess.run([sys.executable, *argv], cwd=ROOT, env=env, stdout=subprocess.PIPE,
                              stderr=log, text=True, check=False)
        log.write(proc.stdout)
    minutes = (time.perf_counter() - start) / 60
    found = tables(proc.stdout)
    if proc.returncode or not found:
        why = f"exit status {proc.returncode}" if proc.returncode else "no markdown table in its output"
        print(f"{name}: FAILED ({why}); see {LOGS / (name + '.log')}", flush=True)
        return False, None
    stamp = (f"*Generated by `benchmarks/run_all.py` on {datetime.date.today().isoformat()} "
             f"({machine()}; {minutes:.1f} min): `OMP_NUM_THREADS=2 python {' '.join(argv)}`*")
    print(f"{name}: done in {minutes:.1f} min", flush=True)
    return True, f"{stamp}\n\n{found}\n"


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", nargs="+", choices=sorted(BENCHMARKS), help="run only these")
    parser.add_argument("--list", action="store_true", help="print the benchmarks and exit")
    args = parser.parse_args()
    if args.list:
        for name, (argv, minutes) in BENCHMARKS.items():
            print(f"{name:20s} ~{minutes:3d} min  python {' '.join(argv)}")
        return 0
    names = args.only or list(BENCHMARKS)
    doc = DOC.read_text(encoding="utf-8")
    for name in names:  # every block must exist before an hour is spent
        replace_block(doc, name, "")
    failed = []
    for name in names:
        ok, body = run_one(name)
        if not ok:
            failed.append(name)
            continue
        doc = replace_block(DOC.read_text(encoding="utf-8"), name, body)  # re-read: edits made meanwhile survive
        DOC.write_text(doc, encoding="utf-8")
    if failed:
        print(f"failed: {', '.join(failed)}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
