"""Data-parallel training processes: the devices a run spreads over, this process's rank and the world size
(set by ``paddle.distributed.spawn`` / ``python -m paddle.distributed.launch`` as ``PADDLE_TRAINER_ID`` /
``PADDLE_TRAINERS_NUM``), joining the process group, starting local processes (:func:`spawn`, which passes
``SIGTERM`` on to them) and averaging the losses across them."""
import os
import signal
import time

from ..errors import UserError
from ..models.ppdet_ops import import_ppdet
from ..paddle_env import import_paddle
from .stop import TrainingStopped, graceful_stop


def set_device(device):
    """``cpu`` / ``gpu:0`` / ``xpu:0,1`` ... (already validated by :func:`tutorial_lib.config.validate_device`):
    this process runs on the first id, or, in a data-parallel run (:mod:`.train`), on the card its launcher gave
    it."""
    from ..config.device import paddle_device

    paddle = import_ppdet()
    target = paddle_device(device)
    if world_size() > 1 and target != "cpu":
        target = f"{target.split(':')[0]}:{paddle.distributed.ParallelEnv().device_id}"
    paddle.set_device(target)
    return device


def device_ids(device):
    """``gpu:0,2`` -> ``[0, 2]``; ``gpu`` -> ``[0]``; ``cpu`` -> ``[]`` (the cards training spreads over)."""
    from ..config.device import parse_device

    return parse_device(device)[1]


def world_size():
    """Number of training processes (1 unless started by paddle.distributed's spawn or launch)."""
    return int(os.environ.get("PADDLE_TRAINERS_NUM", "1") or 1)


def rank():
    """This process's rank (rank 0 writes every output)."""
    return int(os.environ.get("PADDLE_TRAINER_ID", "0") or 0)


def init_distributed():
    """Join the process group once (no-op for a single process)."""
    paddle = import_paddle()
    if world_size() > 1 and not paddle.distributed.is_initialized():
        paddle.distributed.init_parallel_env()


def _free_ports(count):
    import socket

    sockets = [socket.socket(socket.AF_INET, socket.SOCK_STREAM) for _ in range(count)]
    try:
        for sock in sockets:
            sock.bind(("127.0.0.1", 0))
        return [sock.getsockname()[1] for sock in sockets]
    finally:
        for sock in sockets:
            sock.close()


def process_envs(nprocs, device="cpu"):
    """The environment of each of ``nprocs`` local training processes, as paddle.distributed's launchers set it:
    rank, world size, endpoints, and the card (``FLAGS_selected_gpus`` / ``xpus``) or the gloo backend (CPU)."""
    from ..config.device import parse_device

    kind, ids = parse_device(device)
    endpoints = [f"127.0.0.1:{port}" for port in _free_ports(nprocs)]
    envs = []
    for rank_ in range(nprocs):
        env = {"PADDLE_TRAINER_ID": str(rank_), "PADDLE_TRAINERS_NUM": str(nprocs),
               "PADDLE_CURRENT_ENDPOINT": endpoints[rank_], "PADDLE_TRAINER_ENDPOINTS": ",".join(endpoints)}
        if kind == "cpu":
            env["PADDLE_DISTRI_BACKEND"] = "gloo"
        else:
            if len(ids) < nprocs:
                raise UserError(f"Global.device={device} lists {len(ids)} card(s) for {nprocs} processes")
            env["FLAGS_selected_xpus" if kind == "xpu" else "FLAGS_selected_gpus"] = str(ids[rank_])
        envs.append(env)
    return envs


def _spawned(func, args, env, queue):
    """Body of a spawned training process: its environment first, then paddle imported the project's way (scipy
    and pycocotools before paddle: ``paddle.distributed.spawn`` imports paddle first in its children, and the zlib
    clash that order causes crashes them), then ``func(*args)``; the outcome goes back through ``queue``."""
    os.environ.update(env)
    rank_ = int(env["PADDLE_TRAINER_ID"])
    try:
        import_paddle()
        outcome = ("ok", func(*args))
    except KeyboardInterrupt:
        outcome = ("interrupted", None)
    except UserError as exc:
        outcome = ("user_error", str(exc))
    except BaseException:  # reported to the parent, which raises it
        import traceback

        outcome = ("error", traceback.format_exc())
    queue.put((rank_, *outcome))


def spawn(func, args=(), nprocs=2, device="cpu", grace_s=20.0):
    """Run ``func(*args)`` in ``nprocs`` new local processes that form one data-parallel group (one per card of
    ``device``, or gloo CPU processes for ``cpu``); return their return values by rank.

    A UserError in any process is raised here as a UserError, any other error as a RuntimeError with the
    process's traceback. ``SIGTERM`` sent to this process is passed on to the training processes, which stop
    after the same iteration (:mod:`.stop`). When process 0 stops with KeyboardInterrupt (Ctrl-C, ``SIGTERM``, or
    raised by a hook), the others, left waiting on a collective, are ended after ``grace_s`` seconds and
    :class:`.stop.TrainingStopped` is raised here.
    ``func`` and ``args`` must be picklable (module-level functions)."""
    import multiprocessing

    context = multiprocessing.get_context("spawn")
    outcomes = context.Queue()
    processes = [context.Process(target=_spawned, args=(func, args, env, outcomes), name=f"train-rank-{r}")
                 for r, env in enumerate(process_envs(nprocs, device))]
    for process in processes:
        process.start()

    def stop_all():
        for process in processes:
            if process.is_alive():
                process.terminate()
            process.join()

    def forward(signum):  # SIGTERM may reach only the launcher (Kubernetes, systemd): pass it on; Ctrl-C reaches all
        if signum != signal.SIGTERM:
            return
        for process in processes:
            if process.is_alive() and process.pid is not None:
                os.kill(process.pid, signum)

    with graceful_stop(forward=forward) as request:
        return _collect(processes, outcomes, nprocs, grace_s, stop_all, request)


def _collect(processes, outcomes, nprocs, grace_s, stop_all, request):
    import queue as queue_module

    results, deadline = {}, None
    try:
        while len(results) < nprocs:
            try:
                rank_, status, value = outcomes.get(timeout=1.0)
            except queue_module.Empty:
                silent = [r for r, p in enumerate(processes) if r not in results and not p.is_alive()]
                if silent and outcomes.empty():
                    stop_all()
                    raise RuntimeError(f"training process {silent[0]} ended with exit code "
                                       f"{processes[silent[0]].exitcode} without a result") from None
                if deadline is not None and time.time() > deadline:
                    break
                continue
            results[rank_] = (status, value)
            if status in ("user_error", "error"):
                stop_all()
                if status == "user_error":
                    raise UserError(value)
                raise RuntimeError(f"training process {rank_} failed:\n{value}")
            if rank_ == 0 and deadline is None:
                deadline = time.time() + grace_s  # the others end with it, or hang on a collective
    except KeyboardInterrupt:  # Ctrl-C reached every process: let process 0 write its checkpoint
        for process in processes:
            process.join(timeout=grace_s)
        stop_all()
        raise
    stop_all()
    if results.get(0, ("interrupted",))[0] == "interrupted":
        raise TrainingStopped(request.signum or signal.SIGINT)
    return [results[r][1] if r in results else None for r in range(nprocs)]


def mean_across_ranks(values):
    """``{name: float}`` averaged over the training processes (unchanged for one process): the loss of the whole
    global batch, of which each process saw a shard."""
    if world_size() < 2 or not values:
        return values
    paddle = import_paddle()
    names = list(values)
    total = paddle.to_tensor([float(values[n]) for n in names], dtype="float64")
    paddle.distributed.all_reduce(total)
    return {n: float(v) / world_size() for n, v in zip(names, total.numpy().tolist())}
