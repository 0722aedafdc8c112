"""Import PaddlePaddle (and paddledet) the way this project needs, from one place.

- scipy and pycocotools are imported first (a zlib clash can crash the other order);
- ``OMP_NUM_THREADS`` defaults to the number of CPU cores (Paddle uses one thread otherwise);
- ``ENABLE_FALL_BACK=False`` so that ``paddle.jit`` export uses full-graph conversion in Paddle 2.6;
- Paddle's and paddledet's import-time chatter (thread warnings, MOT metric notices) is swallowed.
"""
import contextlib
import io
import os


def import_paddle():
    """Return the ``paddle`` module, configured as described above."""
    import scipy  # noqa: F401  (before paddle)
    import pycocotools.mask  # noqa: F401  (before paddle)

    os.environ.setdefault("OMP_NUM_THREADS", str(os.cpu_count() or 1))
    os.environ.setdefault("ENABLE_FALL_BACK", "False")
    with contextlib.redirect_stderr(io.StringIO()):
        import paddle
    return paddle


def import_ppdet():
    """Return the ``ppdet`` module (paddledet 2.6.0) after :func:`import_paddle`."""
    import_paddle()
    with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
        import ppdet
    return ppdet
