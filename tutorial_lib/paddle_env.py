"""Import PaddlePaddle the way this project needs, from one place.

- scipy and pycocotools are imported first (a zlib clash can crash the other order);
- ``OMP_NUM_THREADS`` defaults to the number of CPU cores, at most 8 (Paddle uses one thread otherwise);
- ``ENABLE_FALL_BACK=False`` so that ``paddle.jit`` export uses full-graph conversion in Paddle 2.6;
- Paddle's import-time chatter (the thread-count warning) is swallowed.
"""
import contextlib
import io
import os


def import_paddle():
    """Return the ``paddle`` module, configured as described above."""
    import scipy  # noqa: F401  (before paddle)
    import pycocotools.mask  # noqa: F401  (before paddle)

    os.environ.setdefault("OMP_NUM_THREADS", str(max(1, min(os.cpu_count() or 1, 8))))
    os.environ.setdefault("ENABLE_FALL_BACK", "False")
    os.environ.setdefault("GLOG_minloglevel", "2")
    with contextlib.redirect_stderr(io.StringIO()):
        import paddle
    return paddle
