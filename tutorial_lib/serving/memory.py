"""Keeping a long-running server's memory flat (glibc malloc settings; RSS readings for the soak benchmark).

Measured with ``benchmarks/serving_soak.py`` (docs/benchmarks.md): without these, RSS of a server handling
images of several sizes kept creeping up. glibc gives every thread that allocates its own arena (up to 8 per
core) and returns freed memory to the system only from the top of each heap, so request buffers freed on the
web server's many worker threads stay resident. ``limit_arenas`` caps the arenas (what ``MALLOC_ARENA_MAX``
does, but settable from Python before the threads start); ``trim`` hands free pages back, called by the model
thread whenever the queue runs empty. Neither does anything on a C library other than glibc.
"""
import ctypes
import ctypes.util
import os

M_ARENA_MAX = -8  # glibc's mallopt parameter


def _libc():
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        return libc if hasattr(libc, "malloc_trim") and hasattr(libc, "mallopt") else None
    except OSError:
        return None


_LIBC = _libc()


def limit_arenas(count=2):
    """Cap glibc's malloc arenas (``MALLOC_ARENA_MAX`` wins when set); returns whether the cap is in force."""
    if _LIBC is None:
        return False
    if os.environ.get("MALLOC_ARENA_MAX"):
        return True
    return bool(_LIBC.mallopt(M_ARENA_MAX, int(count)))


def trim():
    """Give the heap's free pages back to the system (glibc ``malloc_trim(0)``)."""
    if _LIBC is not None:
        _LIBC.malloc_trim(0)


def rss_bytes(pid="self", peak=False):
    """Resident memory of a process (``peak=True``: the highest it has been, VmHWM) from /proc, or None."""
    key = "VmHWM:" if peak else "VmRSS:"
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith(key):
                    return int(line.split()[1]) * 1024
    except OSError:
        return None
    return None
