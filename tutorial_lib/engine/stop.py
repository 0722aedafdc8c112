"""Stopping training gracefully: ``SIGTERM`` behaves like Ctrl-C.

Slurm, Kubernetes jobs, systemd and preemptible cloud machines stop a process with ``SIGTERM`` (and ``SIGKILL`` a
grace period later); a person presses Ctrl-C (``SIGINT``). Both must leave a checkpoint to resume from. ``import
paddle`` installs a C++ handler for ``SIGTERM`` that aborts the process with a "FatalError: Termination signal"
trace, so :func:`graceful_stop` installs Python handlers *after* paddle is imported, for the length of training:

- the first ``SIGINT`` or ``SIGTERM`` only records the request; the trainer finishes the iteration in progress
  (optimizer step, hooks) and then raises :class:`TrainingStopped`, a ``KeyboardInterrupt``, at a clean iteration
  boundary, so the ``interrupted/`` checkpoint resumes exactly;
- a second one stops at once (``KeyboardInterrupt`` wherever the program is), as Ctrl-C always did; one that
  comes within a second of the first is taken for the same request (Slurm signals every process of a job and
  the launcher passes ``SIGTERM`` on too, so a training process of a data-parallel run may get it twice);
- afterwards the previous handlers are back. Outside the main thread (no Python signal handlers there) nothing
  is installed and no request ever arrives.

The command line exits with ``128 + signal number`` (130 for Ctrl-C, 143 for ``SIGTERM``), as a shell reports a
process the signal ended, so that a scheduler knows the job did not finish.
"""
import contextlib
import signal
import sys
import threading
import time
from types import FrameType
from typing import Callable, Iterator, Optional, Tuple

SIGNALS = (signal.SIGINT, signal.SIGTERM)


class TrainingStopped(KeyboardInterrupt):
    """Training stopped on request (a signal, or Ctrl-C) after a whole iteration; ``signum`` says which."""

    def __init__(self, signum: int = signal.SIGINT) -> None:
        self.signum = int(signum)
        super().__init__(f"training stopped by {signal.Signals(self.signum).name}")

    @property
    def exit_code(self) -> int:
        return 128 + self.signum


class StopRequest:
    """The signal handler and what it recorded: ``signum`` (None until a stop is asked for). ``forward(signum)``,
    if given, runs on the first request (a launcher passes the signal on to its training processes)."""

    SAME_REQUEST_S = 1.0

    def __init__(self, forward: Optional[Callable[[int], None]] = None) -> None:
        self.signum: Optional[int] = None
        self.forward = forward
        self.at = 0.0

    @property
    def requested(self) -> bool:
        return self.signum is not None

    def __call__(self, signum: int, frame: Optional[FrameType]) -> None:
        if self.signum is not None:
            if time.monotonic() - self.at < self.SAME_REQUEST_S:
                return
            raise KeyboardInterrupt  # asked twice: stop now
        self.signum, self.at = signum, time.monotonic()
        if self.forward is not None:
            self.forward(signum)
        print(f"\n{signal.Signals(signum).name}: stopping after this iteration and saving a checkpoint to resume "
              "from (send it again to stop at once)", file=sys.stderr, flush=True)


@contextlib.contextmanager
def graceful_stop(signals: Tuple[int, ...] = SIGNALS,
                  forward: Optional[Callable[[int], None]] = None) -> Iterator[StopRequest]:
    """Install a :class:`StopRequest` for ``signals`` in the block and yield it; restore the previous handlers."""
    request = StopRequest(forward)
    if threading.current_thread() is not threading.main_thread():
        yield request
        return
    previous = {s: signal.getsignal(s) for s in signals}
    for s in signals:
        signal.signal(s, request)
    try:
        yield request
    finally:
        for s, handler in previous.items():
            signal.signal(s, handler if handler is not None else signal.SIG_DFL)
