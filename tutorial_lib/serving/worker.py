"""One thread owns the model: it loads and warms it, then runs queued predictions, optionally in micro-batches.

Paddle Inference runs one forward pass at a time anyway; a single worker thread fed by a queue makes that
explicit, gives the queue depth for free and lets requests that arrive together share one ``predict`` call
(:class:`Batching`). A batch is predicted in one call per distinct threshold -- and, for a model whose forward
pass takes images of one size only (``batch_same_size`` in ``inference.yml``: Mask-RT-DETR), per distinct image
size -- and the predictor splits each call into forward passes of at most the model's ``batch_size_limit``
images, so every request gets exactly the result it would get alone. Mask-RT-DETR models run such a group in
one forward pass; the paddledet models (Mask R-CNN, SOLOv2: ``batch_size_limit: 1``) still run image by image,
and there a batch only saves the hand-over between requests.
"""
import queue
import threading
import time
from concurrent.futures import Future
from dataclasses import dataclass

import numpy as np

from . import memory


@dataclass
class Batching:
    """Micro-batching: wait up to ``max_wait_ms`` after a request for up to ``max_batch_size - 1`` more."""

    max_batch_size: int = 4
    max_wait_ms: float = 10.0

    def __post_init__(self):
        if self.max_batch_size < 1 or self.max_wait_ms < 0:
            raise ValueError(f"Batching needs max_batch_size >= 1 and max_wait_ms >= 0, got {self}")


_EMPTY = object()


class _Job:
    __slots__ = ("image", "threshold", "call", "future")

    def __init__(self, image=None, threshold=None, call=None):
        self.image, self.threshold, self.call, self.future = image, threshold, call, Future()


def _model_info(pipeline):
    predictor = getattr(pipeline, "predictor", None)
    return getattr(predictor, "info", None) or {}


def forward_batch_limit(pipeline):
    """Images the model's forward pass takes at once (``None``: no limit known)."""
    limit = _model_info(pipeline).get("batch_size_limit")
    return int(limit) if limit else None


def forward_batch_same_size(pipeline):
    """True when the model's forward pass takes images of one size only (``batch_same_size`` of inference.yml)."""
    return bool(_model_info(pipeline).get("batch_same_size", False))


class ModelWorker:
    """Loads ``pipeline`` (an object with ``predict``, or a zero-argument function returning one), warms it up
    with one prediction, then serves :meth:`submit` / :meth:`call` in order on its own thread.

    ``trim_when_idle``: give freed heap memory back to the system whenever the queue runs empty (glibc keeps
    it otherwise, and a server's RSS then only grows).
    """

    def __init__(self, pipeline, batching=None, warmup=True, trim_when_idle=True, on_batch=None):
        if callable(pipeline) and not hasattr(pipeline, "predict"):
            self._loader, self.pipeline = pipeline, None
        else:
            self._loader, self.pipeline = None, pipeline
        self.max_batch = batching.max_batch_size if batching else 1
        self.max_wait_s = batching.max_wait_ms / 1000 if batching else 0.0
        self.warmup, self.trim_when_idle, self.on_batch = warmup, trim_when_idle, on_batch
        self.loaded, self.ready = threading.Event(), threading.Event()
        if self.pipeline is not None:
            self.loaded.set()
            if not warmup:  # nothing left to do before serving: ready before the thread even starts
                self.ready.set()
        self.error = None
        self.same_size = False  # group a batch by image size too (set from the model once it is loaded)
        self._queue = queue.Queue()
        self._held = _EMPTY  # a job taken while gathering a batch that belongs to the next one
        self._thread = None
        self._start_lock = threading.Lock()

    # ------------------------------------------------------------------ lifecycle
    def start(self):
        with self._start_lock:
            if self._thread is None:
                self._thread = threading.Thread(target=self._main, name="tutorial_lib-model", daemon=True)
                self._thread.start()
        return self

    def stop(self, timeout=30):
        """Stop after the jobs already queued; wait up to ``timeout`` seconds for that."""
        if self._thread is not None:
            self._queue.put(None)
            self._thread.join(timeout)

    @property
    def depth(self):
        """Requests waiting for the model (not yet taken into a forward pass)."""
        return self._queue.qsize() + (self._held is not _EMPTY and self._held is not None)

    @property
    def status(self):
        if self.error:
            return self.error
        if not self.loaded.is_set():
            return "loading the model"
        return "ready" if self.ready.is_set() else "warming up"

    # ------------------------------------------------------------------ requests
    def submit(self, image, threshold=None):
        """A future of the :class:`~tutorial_lib.predict.InstanceSegResult` for one RGB image."""
        return self._put(_Job(image=image, threshold=threshold))

    def call(self, function):
        """A future of ``function(pipeline)``, run on the model thread between predictions."""
        return self._put(_Job(call=function))

    def _put(self, job):
        self.start()
        self._queue.put(job)
        return job.future

    # ------------------------------------------------------------------ the thread
    def _main(self):
        try:
            if self.pipeline is None:
                self.pipeline = self._loader()
            self.loaded.set()
            limit = forward_batch_limit(self.pipeline)
            self.same_size = forward_batch_same_size(self.pipeline)
            if self.max_batch > 1 and limit == 1:
                print("serving: micro-batching groups requests, but this model's forward pass takes one image at "
                      "a time (batch_size_limit 1)")
            if self.warmup:
                rng = np.random.default_rng(0)
                image = rng.integers(0, 256, (256, 256, 3), dtype=np.uint8)
                next(iter(self.pipeline.predict(image)))
            self.ready.set()
        except Exception as exc:  # noqa: BLE001 -- reported by /health/ready and to every request
            self.error = f"the model could not be {'warmed up' if self.loaded.is_set() else 'loaded'}: " \
                         f"{type(exc).__name__}: {exc}"
            print(f"serving: {self.error}")
            if not self.loaded.is_set():
                self._fail_all()
                return
        while True:
            job = self._next()
            if job is None:
                return
            if job.call is not None:
                self._run_call(job)
            else:
                for group in self._groups(self._gather(job)):
                    self._run_batch(group)
            if self.trim_when_idle and self.depth == 0:
                memory.trim()

    def _next(self, timeout=None):
        if self._held is not _EMPTY:
            job, self._held = self._held, _EMPTY
            return job
        return self._queue.get() if timeout is None else self._queue.get(timeout=timeout)

    def _gather(self, first):
        batch = [first]
        deadline = time.monotonic() + self.max_wait_s
        while len(batch) < self.max_batch:
            try:
                job = self._next(timeout=max(0.0, deadline - time.monotonic()))
            except queue.Empty:
                break
            if job is None or job.call is not None:
                self._held = job  # runs after this batch (None: stop after it)
                break
            batch.append(job)
        return batch

    def _groups(self, batch):
        """One ``predict`` call per threshold (and per image size for a ``same_size`` model), in arrival order."""
        def key(job):
            shape = getattr(job.image, "shape", None)  # a decoded RGB array
            return job.threshold, (tuple(shape[:2]) if self.same_size and shape is not None else None)

        groups = {}
        for job in batch:
            groups.setdefault(key(job), []).append(job)
        return list(groups.values())

    def _run_call(self, job):
        if job.future.set_running_or_notify_cancel():
            try:
                job.future.set_result(job.call(self.pipeline))
            except BaseException as exc:  # noqa: BLE001 -- handed to the request that asked
                job.future.set_exception(exc)

    def _run_batch(self, batch):
        batch = [job for job in batch if job.future.set_running_or_notify_cancel()]
        if not batch:
            return
        if self.on_batch is not None:
            self.on_batch(len(batch))
        threshold = batch[0].threshold
        try:
            if len(batch) == 1:
                results = [next(iter(self.pipeline.predict(batch[0].image, threshold=threshold)))]
            else:
                results = list(self.pipeline.predict([job.image for job in batch], threshold=threshold,
                                                     batch_size=len(batch)))
        except BaseException as exc:  # noqa: BLE001
            if len(batch) == 1:
                batch[0].future.set_exception(exc)
                return
            results = None
        if results is None or len(results) != len(batch):  # one failing image must not fail the others
            for job in batch:
                try:
                    job.future.set_result(next(iter(self.pipeline.predict(job.image, threshold=threshold))))
                except BaseException as exc:  # noqa: BLE001
                    job.future.set_exception(exc)
            return
        for job, result in zip(batch, results):
            job.image = None
            job.future.set_result(result)

    def _fail_all(self):
        while True:
            try:
                job = self._queue.get(timeout=0.5)
            except queue.Empty:
                continue
            if job is None:
                return
            if job.future.set_running_or_notify_cancel():
                job.future.set_exception(RuntimeError(self.error))
