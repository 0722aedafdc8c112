"""The training loop and nothing else; everything around it (evaluation, checkpoints, logging, EMA, outputs)
is a hook (:mod:`.hooks`), as in Detectron2's ``engine/train_loop.py``.

The loop::

    before_train
    for each epoch:  for each iteration:  before_step, run_step, after_step
                     after_epoch            (the epoch's averaged losses are in ``trainer.row``)
    after_train                             (always; ``trainer.interrupted`` / ``trainer.completed`` say why)

Stopping: while ``train`` runs, ``SIGINT`` (Ctrl-C) and ``SIGTERM`` ask the loop to stop after the iteration in
progress (:mod:`.stop`); it raises :class:`.stop.TrainingStopped` (a ``KeyboardInterrupt``) there, and the
``after_train`` hooks see ``trainer.interrupted``. In data-parallel training the processes agree on it through the
next iteration's loss all-reduce, so all of them stop after the same iteration.

``run_step``: paddle is re-seeded from ``(seed, global iteration)``, forward, backward (loss scaled under AMP),
optimizer step (gradient clipping is the optimizer's ``grad_clip``), learning-rate schedule step. Together with
batches that are a pure function of ``(seed, epoch, step)`` (:mod:`.data`), a run resumed from any iteration ends
with the same weights as the uninterrupted run.

Data parallel: pass the ``paddle.DataParallel`` wrapper as ``train_model`` and the plain model as ``model``; the
loop runs the wrapper (gradients are averaged across processes) and reports losses averaged across processes.
"""
import math
import signal
import time
import weakref

from ..errors import UserError
from ..paddle_env import import_paddle
from . import distributed, seeding
from .stop import StopRequest, TrainingStopped, graceful_stop


class HookBase:
    """A training extension: override any of the five methods. ``self.trainer`` is set (weakly) on registration."""

    trainer = None

    def before_train(self):
        pass

    def before_step(self):
        pass

    def after_step(self):
        pass

    def after_epoch(self):
        pass

    def after_train(self):
        pass


class Trainer:
    """Steps ``model`` with ``optimizer`` over ``loader(epoch, start_step) -> iterable of (step, inputs)``.

    Attributes hooks read: ``model``, ``optimizer``, ``epoch`` (0-based), ``step`` (0-based in the epoch),
    ``global_step`` (0-based), ``steps_done`` (iterations finished in the current epoch), ``values`` (the last
    iteration's losses as floats), ``lr``, ``row`` (the epoch's record, already the last entry of ``history``
    when ``after_epoch`` runs; hooks add to it), ``best`` (set by the checkpoint hook), ``sums``/``count``
    (running loss sums of the epoch). ``partial``: the sums of a run resumed in the middle of an epoch.

        trainer = Trainer(model, optimizer, loader, epochs=2, steps_per_epoch=4, seed=0, hooks=[LogHook(print)])
        trainer.hooks.append(MyHook())
        history = trainer.train()
    """

    def __init__(self, model, optimizer, loader, *, epochs, steps_per_epoch, seed, schedule=None, amp=None,
                 train_model=None, start_epoch=0, start_step=0, history=None, partial=None, hooks=()):
        self.model = model
        self.train_model = train_model if train_model is not None else model
        self.optimizer = optimizer
        self.loader = loader
        self.schedule = schedule
        self.epochs, self.steps_per_epoch = int(epochs), int(steps_per_epoch)
        self.total_steps = self.epochs * self.steps_per_epoch
        self.seed = int(seed)
        self.amp = amp
        self.scaler = None
        if amp:
            paddle = import_paddle()
            self.scaler = paddle.amp.GradScaler(init_loss_scaling=1024)
        self.start_epoch, self.start_step = int(start_epoch), int(start_step)
        self.epoch, self.step, self.steps_done = self.start_epoch, self.start_step, self.start_step
        self.global_step = self.start_epoch * self.steps_per_epoch + self.start_step
        self.history = list(history or [])
        self.partial = partial
        self.best = None
        self.values, self.lr, self.row = {}, None, None
        self.sums, self.count = {}, 0
        self.interrupted = self.completed = self.ending_epoch = False
        self.stop_request, self.stop_agreed = StopRequest(), False
        self.hooks = []
        self.register_hooks(hooks)

    def register_hooks(self, hooks):
        for hook in hooks:
            if hook is None:
                continue
            hook.trainer = weakref.proxy(self)
            self.hooks.append(hook)

    # ------------------------------------------------------------------------- loop
    def train(self):
        """Run from ``start_epoch``/``start_step`` to the end; return ``self.history``."""
        for hook in self.hooks:  # hooks appended to ``trainer.hooks`` after construction
            hook.trainer = weakref.proxy(self)
        with graceful_stop() as self.stop_request:
            try:
                self._call("before_train")
                for self.epoch in range(self.start_epoch, self.epochs):
                    self.run_epoch()
                self.completed = True
            except KeyboardInterrupt:
                self.interrupted = True
                raise
            finally:
                self._call("after_train")
        return self.history

    def run_epoch(self):
        resumed = self.epoch == self.start_epoch
        first = self.start_step if resumed else 0
        self.sums, self.count = ({}, 0)
        if resumed and self.partial:
            self.sums, self.count = dict(self.partial["sums"]), int(self.partial["n"])
        self.steps_done = first
        self.epoch_started = time.time()
        self.train_model.train()
        for self.step, inputs in self.loader(self.epoch, first):
            self.global_step = self.epoch * self.steps_per_epoch + self.step
            self._call("before_step")
            self.run_step(inputs)
            self.steps_done = self.step + 1
            self._call("after_step")
            if self.stop_agreed or (self.stop_request.requested and distributed.world_size() == 1):
                raise TrainingStopped(self.stop_request.signum or signal.SIGTERM)
        if self.lr is None:  # resumed at the very end of an epoch: no step ran in this process yet
            self.lr = self.optimizer.get_lr()
        self.row = {"epoch": self.epoch + 1, "iters": (self.epoch + 1) * self.steps_per_epoch, "lr": self.lr,
                    **{k: round(v / max(1, self.count), 6) for k, v in self.sums.items()}}
        self.history.append(self.row)
        self.ending_epoch = True
        self._call("after_epoch")
        self.ending_epoch = False
        self.train_model.train()

    def run_step(self, inputs):
        paddle = import_paddle()
        paddle.seed(seeding.mixed_seed(self.seed, self.global_step, 101))
        if self.scaler is not None:
            with paddle.amp.auto_cast(level=self.amp):
                outputs = self.train_model(inputs)
            scaled = self.scaler.scale(outputs["loss"])
            scaled.backward()
            self.scaler.minimize(self.optimizer, scaled)
        else:
            outputs = self.train_model(inputs)
            outputs["loss"].backward()
            self.optimizer.step()
        self.lr = self.optimizer.get_lr()
        self.optimizer.clear_grad()
        if hasattr(self.schedule, "step"):
            self.schedule.step()
        values = distributed.mean_across_ranks({**{k: float(v) for k, v in outputs.items()},
                                            "_stop": float(self.stop_request.requested)})
        self.stop_agreed = values.pop("_stop") > 0  # any process asked: all stop after this iteration
        if not math.isfinite(values["loss"]):
            raise UserError(f"the loss became {values['loss']} at iteration {self.global_step + 1}; "
                            "lower Train.learning_rate or raise Train.warmup_steps")
        for k, v in values.items():
            self.sums[k] = self.sums.get(k, 0.0) + v
        self.count += 1
        self.values = values

    def progress(self):
        """Where training stands inside the current epoch, as an ``interrupted/`` checkpoint saves it; an
        interruption during ``after_epoch`` leaves the epoch's end (evaluation, checkpoint) to be redone."""
        history = self.history[:-1] if self.ending_epoch else self.history
        return {"epoch": self.epoch, "step": self.steps_done, "history": history, "best": self.best,
                "partial": {"sums": self.sums, "n": self.count}}

    def _call(self, stage):
        for hook in self.hooks:
            getattr(hook, stage)()
