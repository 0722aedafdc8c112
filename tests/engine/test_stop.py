"""Stopping training with real signals on real processes: SIGTERM behaves like Ctrl-C (a checkpoint at a whole
iteration, exit 128 + signal, no C++ fatal-signal trace), ``latest/`` every ``Train.save_interval_iters``
iterations, and ``Train.resume_path=auto`` continues from the newest checkpoint to the same weights as a run that
was never stopped."""
import os
import signal
import subprocess
import sys
import time

import numpy as np
import pytest

import tutorial_lib as tl
from tutorial_lib.engine.stop import StopRequest, TrainingStopped, graceful_stop

MODEL = "MaskRCNN-ResNet18-FPN-S"


def overrides(dataset, out, **extra):
    base = {"Global.mode": "train", "Global.dataset_dir": str(dataset), "Global.output": str(out), "Global.seed": 0,
            "Train.epochs_iters": 2, "Train.batch_size": 2, "Train.learning_rate": 0.01, "Train.warmup_steps": 2,
            "Train.log_interval": 1, "Train.save_interval_iters": 2, "Train.export_best": False,
            "Architecture.input_size": 128}
    base.update(extra)
    return base


@pytest.fixture
def dataset(tiny_dataset):
    return tiny_dataset


def wait_for(path, text, process, timeout=240):
    deadline = time.time() + timeout
    while time.time() < deadline:
        if path.is_file() and text in path.read_text():
            return
        if process.poll() is not None:
            raise AssertionError(f"training ended (rc {process.returncode}) before {text!r}: "
                                 f"{process.stderr.read()[-2000:]}")
        time.sleep(0.2)
    process.kill()
    raise AssertionError(f"no {text!r} in {path} after {timeout} s")


def test_sigterm_checkpoints_and_auto_resume_matches_uninterrupted_run(dataset, tmp_path):
    import paddle

    out = tmp_path / "stopped"
    args = [a for k, v in overrides(dataset, out).items() for a in ("-o", f"{k}={v}")]
    env = {**os.environ, "OMP_NUM_THREADS": os.environ.get("OMP_NUM_THREADS", "2")}
    process = subprocess.Popen([sys.executable, "-m", "tutorial_lib", "-c", MODEL, *args], env=env, text=True,
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    wait_for(out / "train.log", "checkpoint latest/ at epoch 1, iteration 2", process)
    process.send_signal(signal.SIGTERM)
    stdout, stderr = process.communicate(timeout=120)
    assert process.returncode == 128 + signal.SIGTERM, stderr[-2000:]
    assert "FatalError" not in stderr and "Termination signal" not in stderr
    assert "SIGTERM: stopping after this iteration" in stderr
    states = paddle.load(str(out / "interrupted" / "interrupted.pdstates"))
    assert states["epoch"] == 0 and 2 <= states["step"] <= 4  # a whole iteration, after latest/ at 2
    assert "interrupted at epoch 1" in (out / "train.log").read_text()
    assert not list(out.glob(".*.writing"))  # no half-written checkpoint folder left

    resumed = tl.run(MODEL, overrides(dataset, out, **{"Train.resume_path": "auto"}))
    assert resumed["done_flag"] is True
    assert not (out / "interrupted").exists() and not (out / "latest").exists()  # older than epoch_2 now
    reference = tmp_path / "reference"
    tl.run(MODEL, overrides(dataset, reference))
    a = paddle.load(str(reference / "epoch_2" / "epoch_2.pdparams"))
    b = paddle.load(str(out / "epoch_2" / "epoch_2.pdparams"))
    assert set(a) == set(b)
    for name in a:
        np.testing.assert_allclose(b[name].numpy(), a[name].numpy(), rtol=1e-5, atol=1e-6, err_msg=name)


def test_auto_resume_without_a_checkpoint_starts_a_new_run(dataset, tmp_path):
    from tutorial_lib.engine import checkpoint

    assert checkpoint.newest(tmp_path) is None
    result = tl.run(MODEL, overrides(dataset, tmp_path / "new", **{"Train.resume_path": "auto",
                                                                     "Train.epochs_iters": 1}))
    assert result["done_flag"] is True
    assert "no checkpoint in" in (tmp_path / "new" / "train.log").read_text()


def test_first_signal_is_a_request_a_second_stops_at_once():
    # a known SIGINT handler first: a pytest-xdist worker may have set SIG_IGN, which must come back too
    outer = signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        with graceful_stop() as request:
            os.kill(os.getpid(), signal.SIGTERM)
            assert request.requested and request.signum == signal.SIGTERM
            os.kill(os.getpid(), signal.SIGTERM)  # within a second: the same request (a launcher forwarding it)
            request.at -= StopRequest.SAME_REQUEST_S
            with pytest.raises(KeyboardInterrupt):
                os.kill(os.getpid(), signal.SIGINT)
        assert signal.getsignal(signal.SIGINT) is signal.default_int_handler  # the previous handlers are back
    finally:
        signal.signal(signal.SIGINT, outer)
    assert TrainingStopped(signal.SIGTERM).exit_code == 143 and TrainingStopped().exit_code == 130
