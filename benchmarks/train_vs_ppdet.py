"""Training throughput of MaskRCNN-ResNet18-FPN-S: this library's trainer vs PaddleDetection's own ``Trainer``.

Both sides train the same architecture (the ``Architecture.components`` of
``tutorial_lib/configs/MaskRCNN-ResNet18-FPN-S.yaml``, written out as a paddledet YAML for ppdet), from the same
random initialisation seed, on the same generated images, with the same reader (Decode, Resize 256 keep-ratio,
RandomFlip, NormalizeImage, Permute; PadBatch stride 32; batch 2; no worker processes; by default ours is fed the
batches in the order ppdet's sampler draws them, so that iteration k sees the same two images on both sides), the same optimizer
(Momentum 0.9, L2 1e-4, global-norm clip 35) and the same schedule (lr 0.01, linear warmup 20 iterations from 0.1x,
piecewise decay x0.1 at 75 % / 90 % of the run). Each side runs in its own child process with the same
``OMP_NUM_THREADS``; the sides alternate for ``--rounds`` rounds, and each child times ``--iters`` iterations
after ``--warmup`` untimed ones (the time between the ends of consecutive iterations: data loading, forward,
backward, optimizer, hooks / callbacks all included), in wall-clock and in the process's CPU time (all threads; less
sensitive than wall clock to other jobs on a shared machine).

    OMP_NUM_THREADS=2 python benchmarks/train_vs_ppdet.py                      # 3 rounds x 2 sides, ~10 min
    OMP_NUM_THREADS=2 python benchmarks/train_vs_ppdet.py --rounds 1 --iters 10
    OMP_NUM_THREADS=2 python benchmarks/train_vs_ppdet.py --check              # same weights, lr, clip? (30 s)
    OMP_NUM_THREADS=2 python benchmarks/train_vs_ppdet.py --profile            # paddle.profiler on our step
    python benchmarks/train_vs_ppdet.py --threads 1,2 --batches 2,4 --rounds 1 # thread / batch sweep (ours)

Differences that remain (see ``ppdet_child``): ppdet's data loader (``paddle.io.DataLoader`` with 0 workers)
prefetches the next batch in a background thread, ours loads it in the loop; ppdet reads the shuffled order from
its own sampler (same images, another order); ppdet converts every loss to numpy each iteration for its
``TrainingStats``, ours does the same with ``float()``. paddledet 2.6.0 cannot train Mask R-CNN on Paddle 2.6 without
the 0-D tensor fixes (``tutorial_lib/models/paddledet_compat.py``): the ppdet child applies them too (they are the
same code on both sides). ppdet's ``Trainer`` would save a checkpoint at the end of the epoch: the run is stopped by
an exception from a timing callback after the last timed iteration instead, as ours is stopped by a
``KeyboardInterrupt`` from its training callback (our interrupt checkpoint is written after the timing ends).

Writes ``output/benchmarks/train_vs_ppdet.json`` (all per-iteration times) and prints the tables. Numbers
measured on a shared machine (other jobs running) must be read as such; compare medians of alternating rounds.
"""
import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
MODEL = "MaskRCNN-ResNet18-FPN-S"
SIZE = 256


class StopTiming(Exception):
    """Raised by the ppdet timing callback after the last timed iteration."""


# ----------------------------------------------------------------------------- shared settings
def make_data(folder, iters, warmup, batch, seed=0):
    """The ``ci`` preset with exactly ``(warmup + iters) * batch`` training images, none without objects, so that
    one epoch is exactly the measured run on both sides and both see the same images."""
    import tutorial_lib as tl

    num_train = (warmup + iters) * batch
    folder = Path(folder) / f"ci_{num_train}_s{seed}"
    if not (folder / "annotations" / "instance_train.json").exists():
        tl.generate_sample(folder, preset="ci", num_train=num_train, num_val=4, seed=seed, progress=False,
                           background_fraction=0.0, overwrite=True)
    return folder


def our_config(data, out, batch, seed, lr, warmup_steps, size=SIZE):
    from tutorial_lib.config.loader import load_config

    cfg = load_config(MODEL, {"Global.mode": "train", "Global.dataset_dir": str(data), "Global.output": str(out),
                              "Global.seed": seed, "Train.epochs_iters": 1, "Train.batch_size": batch,
                              "Train.learning_rate": lr, "Train.warmup_steps": warmup_steps,
                              "Train.log_interval": 10, "Train.export_best": False,
                              "Architecture.input_size": size})
    arch = cfg["Architecture"]
    # a fixed 256 px resize (the config's RandomResize picks 224/256/288 per batch, which would make per-iteration
    # times depend on each side's random draws); everything else is the config's reader
    arch["TrainReader"] = {"sample_transforms": [
        {"Decode": {}},
        {"Resize": {"target_size": [size, size], "keep_ratio": True, "interp": 2}},
        {"RandomFlip": {"prob": 0.5}},
        {"NormalizeImage": {"is_scale": True, "mean": [0.485, 0.456, 0.406], "std": [0.229, 0.224, 0.225]}},
        {"Permute": {}}],
        "batch_transforms": [{"PadBatch": {"pad_to_stride": 32}}]}
    arch["input_size"] = None  # the reader above is already at ``size``
    return cfg


def ppdet_yaml(cfg, data, out, batch, seed, lr, warmup_steps, total_steps):
    """A single-file paddledet YAML equivalent to ``cfg`` (our config after overrides)."""
    import yaml

    from tutorial_lib.engine.data import read_categories

    arch, t = cfg["Architecture"], cfg["Train"]
    opt, sched = arch["optimizer"], arch["schedule"]
    num_classes = len(read_categories(data, "train"))
    # our milestones are fractions of the run, rounded to iterations (engine/optim.py); ppdet's are epochs
    # (x steps per epoch, not rounded): b - 0.5 iterations decays at the same iteration b
    bounds = sorted({max(1, int(round(float(m) * total_steps))) for m in sched["milestones"]})
    milestones = [(b - 0.5) / total_steps for b in bounds if b < total_steps]
    plain = {
        "architecture": arch["architecture"], "num_classes": num_classes, "use_gpu": False, "use_xpu": False,
        "use_mlu": False, "use_npu": False, "log_iter": int(t["log_interval"]), "save_dir": str(out),
        "snapshot_epoch": 1, "epoch": 1, "metric": "COCO", "weights": str(Path(out) / "model_final"),
        "worker_num": 0, "print_flops": False, "use_vdl": False, "find_unused_parameters": False,
        **arch["components"],
        "OptimizerBuilder": {"clip_grad_by_norm": float(opt["clip_grad_norm"]),
                             "optimizer": {"type": "Momentum", "momentum": float(opt["momentum"])},
                             "regularizer": {"type": "L2", "factor": float(opt["weight_decay"])}},
        "TrainReader": {**arch["TrainReader"], "batch_size": batch, "shuffle": True, "drop_last": True,
                        "collate_batch": False, "use_shared_memory": False},
        "EvalReader": {**arch["EvalReader"], "batch_size": 1},
        "TestReader": {**arch["TestReader"], "batch_size": 1},
    }
    text = yaml.safe_dump(plain, sort_keys=False)
    fields = ["image", "gt_bbox", "gt_class", "gt_poly", "is_crowd"]
    text += f"""
LearningRate:
  base_lr: {lr}
  schedulers:
  - !PiecewiseDecay
    gamma: {float(sched['gamma'])}
    milestones: {milestones}
  - !LinearWarmup
    start_factor: {float(sched.get('warmup_start_factor', 0.1))}
    steps: {int(warmup_steps)}

TrainDataset:
  !COCODataSet
    image_dir: images
    anno_path: annotations/instance_train.json
    dataset_dir: {data}
    data_fields: {fields}

"""
    path = Path(out) / "ppdet_maskrcnn_r18_fpn_s.yml"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path


def summary(times):
    return {"n": len(times), "median_s": statistics.median(times), "mean_s": statistics.fmean(times),
            "min_s": min(times), "max_s": max(times)}


# ----------------------------------------------------------------------------- children
def ours_child(a):
    """This library's trainer (``tutorial_lib.engine.train.train``, all default hooks) with a timing callback."""
    from tutorial_lib.engine.train import train

    out = Path(a.out) / f"ours_{os.getpid()}"
    cfg = our_config(a.data, out, a.batch, a.seed, a.lr, a.warmup_steps)
    stamps, losses = [], []
    if a.same_order:
        # feed the batches in the order ppdet's sampler draws them in its first epoch (paddle's
        # DistributedBatchSampler: np.random.RandomState(epoch).shuffle), so that both sides time the same images
        import numpy as np

        from tutorial_lib.engine import data as engine_data

        def ppdet_order(num_samples, batch_size, seed, epoch, shuffle=True):
            order = list(range(num_samples))
            np.random.RandomState(epoch).shuffle(order)
            return [order[i * batch_size:(i + 1) * batch_size] for i in range(num_samples // batch_size)]

        engine_data.epoch_batches = ppdet_order

    def callback(info):
        stamps.append((time.perf_counter(), time.process_time()))
        losses.append(info["loss"])
        if len(stamps) >= a.warmup + a.iters:
            raise KeyboardInterrupt  # stop like Ctrl-C: the interrupt checkpoint is written after the timing

    start = time.perf_counter()
    try:
        train(cfg, callback=callback)
    except KeyboardInterrupt:
        pass
    return stamps, losses, start


def ppdet_child(a):
    """``ppdet.engine.Trainer`` on a generated paddledet YAML, with a timing callback."""
    from tutorial_lib.engine import seeding
    from tutorial_lib.models.ppdet_ops import import_ppdet

    import_ppdet()  # same paddle import (threads) and the same 0-D fixes paddledet 2.6.0 needs on Paddle 2.6
    from ppdet.core.workspace import load_config
    from ppdet.engine import Trainer
    from ppdet.engine.callbacks import Callback, ComposeCallback

    out = Path(a.out) / f"ppdet_{os.getpid()}"
    steps = len(json.loads((Path(a.data) / "annotations/instance_train.json").read_text())["images"]) // a.batch
    cfg = our_config(a.data, out, a.batch, a.seed, a.lr, a.warmup_steps)
    ycfg = load_config(str(ppdet_yaml(cfg, a.data, out, a.batch, a.seed, a.lr, a.warmup_steps, steps)))
    seeding.seed_all(a.seed)  # tools/train.py seeds too; no pretrain_weights: random init, nothing downloaded
    trainer = Trainer(ycfg, mode="train")
    stamps, losses = [], []

    class Timing(Callback):
        def on_step_end(self, status):
            stamps.append((time.perf_counter(), time.process_time()))
            losses.append(float(status["training_staus"].get()["loss"]))  # the smoothed (median) loss it logs
            if len(stamps) >= a.warmup + a.iters:
                raise StopTiming

    trainer._callbacks.append(Timing(trainer))
    trainer._compose_callback = ComposeCallback(trainer._callbacks)
    start = time.perf_counter()
    try:
        trainer.train()
    except StopTiming:
        pass
    return stamps, losses, start


def child(a):
    stamps, losses, start = (ours_child if a.side == "ours" else ppdet_child)(a)
    # iteration k lasts from the end of iteration k-1 to its own end; the first a.warmup iterations are dropped
    first = max(1, a.warmup)
    per_iter = [stamps[k][0] - stamps[k - 1][0] for k in range(first, len(stamps))]
    cpu_per_iter = [stamps[k][1] - stamps[k - 1][1] for k in range(first, len(stamps))]
    import paddle

    result = {"side": a.side, "per_iter_s": per_iter, "cpu_per_iter_s": cpu_per_iter, "losses": losses,
              "batch": a.batch, "omp_num_threads": os.environ.get("OMP_NUM_THREADS"), **summary(per_iter),
              "cpu_median_s": statistics.median(cpu_per_iter)}
    Path(a.result).write_text(json.dumps(result), encoding="utf-8")


# ----------------------------------------------------------------------------- equality check
def check(a):
    """Build both sides without training and compare what must be equal: parameter names and shapes, the initial
    weights (same seed), the learning rate of every iteration, gradient clipping, weight decay, momentum."""
    import numpy as np

    from tutorial_lib.engine import seeding
    from tutorial_lib.engine.optim import build_optimizer, build_schedule
    from tutorial_lib.models.adapters import get_adapter
    from tutorial_lib.models.ppdet_ops import import_ppdet

    import_ppdet()
    from ppdet.core.workspace import load_config
    from ppdet.engine import Trainer

    out = Path(a.out) / "check"
    steps = a.warmup + a.iters
    cfg = our_config(a.data, out, a.batch, a.seed, a.lr, a.warmup_steps)
    seeding.seed_all(a.seed)
    ours = get_adapter(cfg).build_model(10)
    schedule = build_schedule(cfg["Architecture"]["schedule"], a.lr, a.warmup_steps, steps)
    opt = build_optimizer(cfg["Architecture"]["optimizer"], schedule, ours)
    lrs = []
    for _ in range(steps):
        lrs.append(opt.get_lr())
        schedule.step()
    seeding.seed_all(a.seed)
    trainer = Trainer(load_config(str(ppdet_yaml(cfg, a.data, out, a.batch, a.seed, a.lr, a.warmup_steps, steps))),
                      mode="train")
    plrs = []
    for _ in range(steps):
        plrs.append(trainer.optimizer.get_lr())
        trainer.lr.step()
    popt = trainer.optimizer
    checks = {
        "parameter names and shapes": [(n, tuple(p.shape)) for n, p in ours.named_parameters()]
        == [(n, tuple(p.shape)) for n, p in trainer.model.named_parameters()],
        "initial weights": all(np.array_equal(p.numpy(), q.numpy())
                               for p, q in zip(ours.parameters(), trainer.model.parameters())),
        "lr of every iteration": bool(np.allclose(lrs, plrs, rtol=1e-9)),
        "grad clip (global norm)": (type(opt._grad_clip).__name__, opt._grad_clip.clip_norm)
        == (type(popt._grad_clip).__name__, popt._grad_clip.clip_norm),
        "weight decay": (opt._regularization_method, opt._regularization_coeff)
        == (popt._regularization_method, popt._regularization_coeff),
        "momentum": (opt._momentum, opt._use_nesterov) == (popt._momentum, popt._use_nesterov),
        "iterations per epoch": len(trainer.loader) == steps,
    }
    n_params = sum(int(p.numel()) for p in ours.parameters())
    for k, v in checks.items():
        print(f"{'OK ' if v else 'DIFFERENT'} {k}")
    print(f"{n_params:,} parameters; lr {lrs[0]:g} -> {max(lrs):g} (warmup {a.warmup_steps}) -> {lrs[-1]:g}")
    if not all(checks.values()):
        raise SystemExit("the two sides are not configured alike")


# ----------------------------------------------------------------------------- profile (ours)
def profile(a):
    """Our model, optimizer, schedule and batches (built by the library's own functions), stepped exactly like
    ``Trainer.run_step`` with wall-clock timers around forward / backward / optimizer, then ``paddle.profiler``
    (CPU) over ``--profile-steps`` steps: top operators by total CPU time."""
    import contextlib
    import io

    from tutorial_lib.engine import seeding
    from tutorial_lib.engine.data import Split, train_batches
    from tutorial_lib.engine.optim import build_optimizer, build_schedule
    from tutorial_lib.models.adapters import get_adapter
    from tutorial_lib.models.ppdet_ops import import_ppdet

    paddle = import_ppdet()
    cfg = our_config(a.data, Path(a.out) / "profile", a.batch, a.seed, a.lr, a.warmup_steps)
    adapter = get_adapter(cfg)
    split = Split(a.data, "train", allow_empty=False)
    seeding.seed_all(a.seed)
    model = adapter.build_model(10)
    total = len(split) // a.batch
    schedule = build_schedule(cfg["Architecture"]["schedule"], a.lr, a.warmup_steps, total)
    optimizer = build_optimizer(cfg["Architecture"]["optimizer"], schedule, model)
    transforms, batch_transforms = adapter.compose("train", 10)
    model.train()
    phases = {"data": [], "forward": [], "backward": [], "optimizer": [], "rest": []}
    n_time = a.warmup + a.iters
    prof_start, prof_end = n_time, n_time + a.profile_steps
    prof = paddle.profiler.Profiler(targets=[paddle.profiler.ProfilerTarget.CPU],
                                    scheduler=(prof_start, prof_end), timer_only=False,
                                    on_trace_ready=paddle.profiler.export_chrome_tracing(
                                        str(Path(a.out) / "profiler_log")))  # not ./profiler_log
    prof.start()
    tic = time.perf_counter()
    for step, batch in train_batches(split, transforms, batch_transforms, a.batch, a.seed, 0):
        if step >= prof_end:
            break
        inputs = adapter.to_inputs(batch)
        t0 = time.perf_counter()
        paddle.seed(seeding.mixed_seed(a.seed, step, 101))
        outputs = model(inputs)
        t1 = time.perf_counter()
        outputs["loss"].backward()
        t2 = time.perf_counter()
        optimizer.step()
        t3 = time.perf_counter()
        optimizer.clear_grad()
        schedule.step()
        _ = {k: float(v) for k, v in outputs.items()}
        t4 = time.perf_counter()
        if a.warmup <= step < n_time:
            for k, v in zip(phases, (t0 - tic, t1 - t0, t2 - t1, t3 - t2, t4 - t3)):
                phases[k].append(v)
        prof.step()
        tic = time.perf_counter()
    prof.stop()
    buf = io.StringIO()
    with contextlib.redirect_stdout(buf):
        prof.summary(sorted_by=paddle.profiler.SortedKeys.CPUTotal, op_detail=False, thread_sep=False,
                     time_unit="ms")
    text = buf.getvalue()
    (Path(a.out) / "profile_summary.txt").write_text(text, encoding="utf-8")
    med = {k: statistics.median(v) for k, v in phases.items()}
    step_s = sum(med.values())
    print(f"\nPhase split (wall clock, median over {a.iters} steps, OMP_NUM_THREADS="
          f"{os.environ.get('OMP_NUM_THREADS')}, batch {a.batch}, {SIZE} px): step {step_s:.3f} s")
    print(f"{'phase':<12}{'s':>9}{'share':>9}")
    for k, v in med.items():
        print(f"{k:<12}{v:>9.3f}{v / step_s:>8.1%}")
    print(f"\npaddle.profiler summary over {a.profile_steps} steps: {Path(a.out) / 'profile_summary.txt'} "
          f"(Chrome trace in {Path(a.out) / 'profiler_log'})")
    print(overview_and_top_ops(text, a.top))


def overview_and_top_ops(text, top):
    """The profiler's Overview and Model (forward / backward / optimizer) sections and the first ``top`` operator
    rows of its Operator Summary."""
    titles = ("Device Summary", "Overview Summary", "Model Summary", "Distribution Summary", "Operator Summary",
              "Kernel Summary", "Memory Manipulation Summary", "UserDefined Summary")
    keep, section, rows = [], None, 0
    for line in text.splitlines():
        title = next((t for t in titles if line.startswith("-") and t in line), None)
        if title:
            section, rows = title, 0
        if section in ("Overview Summary", "Model Summary"):
            keep.append(line)
        elif section == "Operator Summary":
            if rows < top + 6:
                keep.append(line)
            rows += 1
    return "\n".join(keep) if keep else text[:6000]


# ----------------------------------------------------------------------------- parent
def run_child(side, a, data, result, threads=None, batch=None):
    env = dict(os.environ)
    if threads:
        env["OMP_NUM_THREADS"] = str(threads)
    cmd = [sys.executable, __file__, "--child", "--side", side, "--data", str(data), "--result", str(result),
           "--out", a.out, "--iters", str(a.iters), "--warmup", str(a.warmup), "--batch", str(batch or a.batch),
           "--seed", str(a.seed), "--lr", str(a.lr), "--warmup-steps", str(a.warmup_steps)] + \
        ([] if a.same_order else ["--own-order"])
    proc = subprocess.run(cmd, env=env, cwd=str(REPO), capture_output=True, text=True)
    if proc.returncode != 0:
        raise SystemExit(f"{side} child failed ({proc.returncode}):\n{proc.stdout[-3000:]}\n{proc.stderr[-5000:]}")
    return json.loads(Path(result).read_text())


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--iters", type=int, default=30, help="timed iterations per run")
    p.add_argument("--warmup", type=int, default=5, help="untimed iterations first")
    p.add_argument("--rounds", type=int, default=3, help="alternating rounds (ours, ppdet) / (ppdet, ours) ...")
    p.add_argument("--batch", type=int, default=2)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--lr", type=float, default=0.01)
    p.add_argument("--warmup-steps", type=int, default=20)
    p.add_argument("--sides", default="ours,ppdet")
    p.add_argument("--own-order", dest="same_order", action="store_false",
                   help="ours draws batches in its own shuffled order (default: ppdet's order, same images per step)")
    p.add_argument("--threads", default=None, help="comma list of OMP_NUM_THREADS values to sweep (ours only)")
    p.add_argument("--batches", default=None, help="comma list of batch sizes to sweep (ours only)")
    p.add_argument("--profile", action="store_true", help="profile our training step instead (paddle.profiler)")
    p.add_argument("--check", action="store_true", help="only check that both sides are configured alike")
    p.add_argument("--profile-steps", type=int, default=3)
    p.add_argument("--top", type=int, default=15)
    p.add_argument("--out", default=str(REPO / "output" / "benchmarks" / "train_vs_ppdet"))
    p.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    p.add_argument("--side", help=argparse.SUPPRESS)
    p.add_argument("--data", help=argparse.SUPPRESS)
    p.add_argument("--result", help=argparse.SUPPRESS)
    a = p.parse_args()
    os.environ.setdefault("OMP_NUM_THREADS", str(max(1, min(os.cpu_count() or 1, 8))))
    if a.child:
        return child(a)
    Path(a.out).mkdir(parents=True, exist_ok=True)
    if a.profile:
        if a.iters == 30:
            a.iters = 10
        a.data = str(make_data(a.out, a.iters + a.profile_steps, a.warmup, a.batch, a.seed))
        return profile(a)
    if a.threads or a.batches:
        return sweep(a)
    data = make_data(a.out, a.iters, a.warmup, a.batch, a.seed)
    if a.check:
        a.data = str(data)
        return check(a)
    sides = a.sides.split(",")
    runs = {s: [] for s in sides}
    for r in range(a.rounds):
        order = sides if r % 2 == 0 else sides[::-1]
        for side in order:
            res = run_child(side, a, data, Path(a.out) / f"{side}_{r}.json")
            runs[side].append(res)
            print(f"round {r + 1} {side:<6} median {res['median_s']:.3f} s/it  mean {res['mean_s']:.3f} s/it  "
                  f"CPU {res['cpu_median_s']:.3f} s/it  "
                  f"(OMP_NUM_THREADS={res['omp_num_threads']}, first losses "
                  f"{[round(x, 3) for x in res['losses'][:3]]})", flush=True)
    report = {"model": MODEL, "input_px": SIZE, "batch": a.batch, "iters": a.iters, "warmup": a.warmup,
              "rounds": a.rounds, "omp_num_threads": os.environ.get("OMP_NUM_THREADS"),
              "cpu": platform.processor() or platform.machine(), "cores": os.cpu_count(),
              "shared_machine_note": "measured while other jobs used the CPU; compare medians", "runs": runs}
    print(f"\nMaskRCNN-ResNet18-FPN-S, {SIZE} px, batch {a.batch}, OMP_NUM_THREADS={os.environ['OMP_NUM_THREADS']}, "
          f"{a.iters} timed iterations after {a.warmup}, {a.rounds} rounds (s/iteration)")
    print(f"{'side':<11}{'median of round medians':>24}{'median of round means':>23}{'all iters median':>18}"
          f"{'all iters mean':>16}{'CPU s/it (median)':>19}")
    table = {}
    for side in sides:
        rm = statistics.median(r["median_s"] for r in runs[side])
        ra = statistics.median(r["mean_s"] for r in runs[side])
        every = [x for r in runs[side] for x in r["per_iter_s"]]
        cpu = statistics.median(x for r in runs[side] for x in r["cpu_per_iter_s"])
        table[side] = {"median_of_round_medians": rm, "median_of_round_means": ra,
                       "all_median": statistics.median(every), "all_mean": statistics.fmean(every),
                       "cpu_median": cpu}
        print(f"{side:<11}{rm:>24.3f}{ra:>23.3f}{statistics.median(every):>18.3f}{statistics.fmean(every):>16.3f}"
              f"{cpu:>19.3f}")
    if "ours" in table and "ppdet" in table:
        ratio = {k: table["ours"][k] / table["ppdet"][k] for k in table["ours"]}
        print(f"{'ours/ppdet':<11}" + "".join(f"{ratio[k]:>{w}.3f}" for k, w in zip(ratio, (24, 23, 18, 16, 19))))
        report["ratio_ours_over_ppdet"] = ratio
    report["table"] = table
    (Path(a.out).parent / "train_vs_ppdet.json").write_text(json.dumps(report, indent=1), encoding="utf-8")


def sweep(a):
    """Ours only: s/iteration and s/image for each OMP_NUM_THREADS x batch, alternating over rounds."""
    threads = [int(x) for x in (a.threads or os.environ["OMP_NUM_THREADS"]).split(",")]
    batches = [int(x) for x in (a.batches or str(a.batch)).split(",")]
    combos = [(t, b) for t in threads for b in batches]
    data = {b: make_data(a.out, a.iters, a.warmup, b, a.seed) for b in batches}
    res = {c: [] for c in combos}
    for r in range(a.rounds):
        for t, b in (combos if r % 2 == 0 else combos[::-1]):
            out = run_child("ours", a, data[b], Path(a.out) / f"sweep_t{t}_b{b}_{r}.json", threads=t, batch=b)
            res[(t, b)].append(out)
            print(f"round {r + 1} threads {t} batch {b}: median {out['median_s']:.3f} s/it, CPU "
                  f"{out['cpu_median_s']:.3f} s/it", flush=True)
    print(f"\n{'OMP_NUM_THREADS':>16}{'batch':>7}{'s/iteration':>13}{'s/image':>10}{'CPU s/it':>10}{'CPU s/image':>13}"
          "   (medians)")
    for t, b in combos:
        m = statistics.median(x["median_s"] for x in res[(t, b)])
        c = statistics.median(x["cpu_median_s"] for x in res[(t, b)])
        print(f"{t:>16}{b:>7}{m:>13.3f}{m / b:>10.3f}{c:>10.3f}{c / b:>13.3f}")
    (Path(a.out).parent / "train_vs_ppdet_sweep.json").write_text(json.dumps(
        {f"t{t}_b{b}": v for (t, b), v in res.items()}, indent=1), encoding="utf-8")


if __name__ == "__main__":
    main()
