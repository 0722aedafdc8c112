"""The training loop on a fake model (one linear layer): the order hooks are called in, a stop by a hook or by a
real SIGTERM at a whole iteration, and a resumed loop that ends with the same weights as an uninterrupted one."""
import os
import signal

import numpy as np
import pytest

from tutorial_lib.engine.stop import TrainingStopped
from tutorial_lib.engine.trainer import HookBase, Trainer
from tutorial_lib.paddle_env import import_paddle

STEPS, EPOCHS = 3, 2


class Linear:
    """A model whose forward returns the loss dict the trainer expects."""

    def __init__(self, paddle):
        paddle.seed(0)
        self.layer = paddle.nn.Linear(4, 1)
        self.paddle = paddle

    def __call__(self, inputs):
        x, y = inputs
        loss = ((self.layer(x) - y) ** 2).mean()
        return {"loss": loss, "loss_mse": loss}

    def train(self):
        self.layer.train()


def make_trainer(hooks, start_epoch=0, start_step=0, state=None):
    paddle = import_paddle()
    model = Linear(paddle)
    if state is not None:
        model.layer.set_state_dict(state)
    optimizer = paddle.optimizer.SGD(learning_rate=0.1, parameters=model.layer.parameters())  # stateless: resumes
    rng = np.random.default_rng(0)
    data = [(paddle.to_tensor(rng.standard_normal((2, 4)).astype("float32")),
             paddle.to_tensor(rng.standard_normal((2, 1)).astype("float32"))) for _ in range(EPOCHS * STEPS)]

    def loader(epoch, first):
        for step in range(first, STEPS):
            yield step, data[epoch * STEPS + step]

    return Trainer(model, optimizer, loader, epochs=EPOCHS, steps_per_epoch=STEPS, seed=0, start_epoch=start_epoch,
                   start_step=start_step, hooks=hooks)


class Recorder(HookBase):
    def __init__(self, calls, name="r", stop_at=None, signal_at=None):
        self.calls, self.name, self.stop_at, self.signal_at = calls, name, stop_at, signal_at

    def before_train(self):
        self.calls.append((self.name, "before_train"))

    def before_step(self):
        self.calls.append((self.name, "before_step", self.trainer.global_step))

    def after_step(self):
        self.calls.append((self.name, "after_step", self.trainer.global_step))
        if self.trainer.global_step == self.stop_at:
            raise KeyboardInterrupt
        if self.trainer.global_step == self.signal_at:
            os.kill(os.getpid(), signal.SIGTERM)

    def after_epoch(self):
        self.calls.append((self.name, "after_epoch", self.trainer.epoch, self.trainer.row["loss"] > 0))

    def after_train(self):
        self.calls.append((self.name, "after_train", self.trainer.completed, self.trainer.interrupted))


def test_hooks_run_in_registration_order_at_each_stage():
    calls = []
    make_trainer([Recorder(calls, "a"), Recorder(calls, "b")]).train()
    stages = [c for c in calls if c[0] == "a"]
    expected = [("a", "before_train")]
    for epoch in range(EPOCHS):
        for step in range(STEPS):
            g = epoch * STEPS + step
            expected += [("a", "before_step", g), ("a", "after_step", g)]
        expected.append(("a", "after_epoch", epoch, True))
    expected.append(("a", "after_train", True, False))
    assert stages == expected
    assert [c[0] for c in calls[:2]] == ["a", "b"] and calls[-1] == ("b", "after_train", True, False)


def test_keyboard_interrupt_from_a_hook_still_runs_after_train():
    calls = []
    trainer = make_trainer([Recorder(calls, stop_at=4)])
    with pytest.raises(KeyboardInterrupt):
        trainer.train()
    assert calls[-1] == ("r", "after_train", False, True)
    assert trainer.progress()["epoch"] == 1 and trainer.progress()["step"] == 2


def test_sigterm_stops_after_the_iteration_and_resume_gives_the_same_weights():
    reference = make_trainer([])
    reference.train()
    calls = []
    stopped = make_trainer([Recorder(calls, signal_at=1)])
    with pytest.raises(TrainingStopped) as info:
        stopped.train()
    assert info.value.signum == signal.SIGTERM and info.value.exit_code == 143
    assert [c for c in calls if c[1] == "after_step"][-1][2] == 1  # no iteration after the signal's
    progress = stopped.progress()
    assert (progress["epoch"], progress["step"]) == (0, 2)
    assert signal.getsignal(signal.SIGTERM) is not stopped.stop_request  # handler removed after training
    resumed = make_trainer([], start_epoch=0, start_step=2, state=stopped.model.layer.state_dict())
    resumed.train()
    for name, value in reference.model.layer.state_dict().items():
        np.testing.assert_allclose(resumed.model.layer.state_dict()[name].numpy(), value.numpy(), rtol=1e-6)
