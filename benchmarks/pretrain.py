"""Pretrain the tutorial's *general* model on the generated pretraining corpus — resumable, for runs of hours.

    .venv/bin/python benchmarks/pretrain.py                 # start, or continue where the last run stopped
    nohup .venv/bin/python benchmarks/pretrain.py > pretrain.log 2>&1 &   # in the background
    kill -TERM PID                                          # stop: finishes the iteration, writes interrupted/
    kill -STOP PID / kill -CONT PID                         # pause around anything timed or tested in full
    .venv/bin/python benchmarks/pretrain.py --status        # where it stands (iterations, per-epoch mask AP)
    .venv/bin/python benchmarks/pretrain.py --pack          # ship the best weights so far, with provenance

No pretrained weight can be downloaded here, so the step-2 "general model" is made here: the CPU model trained on
the ``pretrain`` corpus (``generate_sample(preset="pretrain")``: thousands of scenes of one style family, in a
seed / index namespace disjoint from the reader's dataset, so the reader's images are never among them). Every
rerun of this script continues from the newest checkpoint in ``--home`` (``Train.resume_path=auto``); a checkpoint
is written every ``--save_every`` iterations (``Train.save_interval_iters``), and ``SIGTERM`` (a session's end,
``kill``) writes one at the iteration in progress, so a run survives being stopped at any time. ``--home``
lies outside the repository (a new checkout of the repository does not lose it).

``--pack`` writes ``tutorial_lib/assets/general_MODEL.npz`` (weights 8-bit per row, as the quick-start model) and
``general_MODEL.json``: the command, seed, corpus parameters, iterations trained, the mask / box AP of the packed
model on the corpus's own val split, and the sha256 of every corpus image (the test that the reader's images are
absent reads it).
"""
import argparse
import hashlib
import json
import os
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import tutorial_lib as tl  # noqa: E402
from tutorial_lib import quickstart  # noqa: E402
from tutorial_lib.models.registry import CPU_MODEL  # noqa: E402

DEFAULT_HOME = Path(os.environ.get("TUTORIAL_LIB_PRETRAIN_HOME", Path.home() / ".cache" / "tutorial_lib" / "pretrain"))
RECIPE = {"Train.epochs_iters": 3, "Train.batch_size": 2, "Train.learning_rate": 0.01, "Train.warmup_steps": 200,
          "Train.log_interval": 50, "Train.keep_last_epochs": 2, "Global.seed": 0}


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--home", type=Path, default=DEFAULT_HOME, help="corpus and training output (resumed)")
    parser.add_argument("--model", default=CPU_MODEL)
    parser.add_argument("--preset", default="pretrain", help="the corpus: a generate_sample preset")
    parser.add_argument("--seed", type=int, default=0, help="the corpus seed")
    parser.add_argument("--save_every", type=int, default=200, help="Train.save_interval_iters")
    parser.add_argument("-o", "--override", action="append", default=[], help="more -o Section.key=value")
    parser.add_argument("--status", action="store_true", help="print where the run stands and exit")
    parser.add_argument("--pack", action="store_true", help="pack the best weights so far into tutorial_lib/assets")
    return parser.parse_args(argv)


def paths(args):
    run = args.home / args.model
    return run / "corpus", run / "train"


def overrides(args, corpus, out):
    extra = dict(item.split("=", 1) for item in args.override)
    return {"Global.mode": "train", "Global.dataset_dir": str(corpus), "Global.output": str(out), **RECIPE,
            "Train.save_interval_iters": args.save_every, "Train.resume_path": "auto", **extra}


def status(out):
    """Iterations done, and the per-epoch record so far (from the newest checkpoint)."""
    from tutorial_lib.engine import checkpoint

    newest = checkpoint.newest(out) if out.exists() else None
    if newest is None:
        return {"checkpoint": None}
    states = checkpoint.load_states(newest)
    steps = int(states["steps_per_epoch"])
    done = int(states["epoch"]) * steps + int(states.get("step", 0))
    return {"checkpoint": str(newest), "iterations": done, "total": int(states["total_steps"]),
            "epochs": [{k: r.get(k) for k in ("epoch", "loss", "mask_AP", "mask_AP50", "bbox_AP", "epoch_time_s")}
                       for r in states.get("history", [])], "best": states.get("best")}


def manifest(corpus):
    """``{file_name: sha256}`` of every corpus image, both splits."""
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted((corpus / "images").iterdir())}


def pack(args, corpus, out):
    from tutorial_lib.paddle_env import import_paddle

    paddle = import_paddle()
    best = out / "best_model" / "best_model"
    if not Path(str(best) + ".pdparams").is_file():
        raise SystemExit(f"no best_model in {out} yet: let at least one epoch finish")
    state = {k: v.numpy() for k, v in paddle.load(str(best) + ".pdparams").items()}
    states = paddle.load(str(best) + ".pdstates")
    progress = status(out)
    corpus_params = json.loads((corpus / "annotations" / "instance_train.json").read_text())["info"]["params"]
    target = quickstart.general_asset(args.model)
    info = {"meta": states["meta"], "model": args.model,
            "command": "python benchmarks/pretrain.py " + " ".join(f"-o {k}={v}" for k, v in overrides(
                args, "CORPUS", "OUT").items() if k not in ("Global.dataset_dir", "Global.output")),
            "corpus": {"generator": "tutorial_lib.generate_sample", **corpus_params},
            "best_epoch": states["best"], "iterations_trained": progress["iterations"],
            "total_iterations": progress["total"], "complete": progress["iterations"] >= progress["total"],
            "history": progress["epochs"],
            "packing": "float tensors >= 4096 values: int8 per first-axis row, symmetric, scale = max|row| / 127"}
    quickstart.pack_weights(state, target, info)
    with tempfile.TemporaryDirectory() as tmp:
        info["metrics_corpus_val"] = quickstart.evaluate_exported(
            quickstart.export_shipped(Path(tmp) / "inference", path=target), corpus)
    quickstart.pack_weights(state, target, info)
    target.with_suffix(".json").write_text(json.dumps({**info, "manifest": manifest(corpus)}, indent=1) + "\n")
    print(json.dumps({"file": str(target), "MB": round(target.stat().st_size / 2 ** 20, 2),
                      "metrics_corpus_val": info["metrics_corpus_val"], "iterations": progress["iterations"]}, indent=2))


def main(argv=None):
    args = parse_args(argv)
    corpus, out = paths(args)
    if args.status:
        print(json.dumps(status(out), indent=2))
        return 0
    if args.pack:
        pack(args, corpus, out)
        return 0
    summary = tl.generate_sample(corpus, preset=args.preset, seed=args.seed)
    print(f"corpus {corpus}: {summary['splits']['train']['images']} train / {summary['splits']['val']['images']} val "
          f"images{' (reused)' if summary['reused'] else ''}", flush=True)
    from tutorial_lib.cli import main as cli

    args_cli = ["-c", args.model] + [a for k, v in overrides(args, corpus, out).items() for a in ("-o", f"{k}={v}")]
    return cli(args_cli)  # 143 after SIGTERM, with interrupted/ written: rerun to continue


if __name__ == "__main__":
    sys.exit(main())
