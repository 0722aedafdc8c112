"""Keeping a long-running server's memory flat (glibc malloc settings; RSS readings for the soak benchmark).

Measured with ``benchmarks/serving_soak.py`` (docs/benchmarks.md): with 4 concurrent clients, server RSS rose to
about 5x the loaded model's while one client stayed under 2x. The forward pass allocates and frees mask arrays
of tens of MB per request (the exported Mask R-CNN pastes all its detections at the full image size, see the
docs); glibc raises its mmap threshold after such a free (up to 32 MB), so the next ones come from the heap, and
with requests interleaved on several threads the heap fragments and stays resident. ``bound_heap`` pins the
threshold at 4 MiB (large buffers are mapped and unmapped, given back at once; 1 MiB bounded memory as well but
cost about 15 % throughput in page faults) and :func:`trim` returns free heap pages, called by the model thread
whenever the queue runs empty. Capping malloc
arenas (``MALLOC_ARENA_MAX``) was measured too and did not help. Nothing happens on a C library other than glibc.
"""
import ctypes
import ctypes.util
import os

M_MMAP_THRESHOLD = -3  # glibc's mallopt parameter; setting it also stops the dynamic adjustment


def _libc():
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        return libc if hasattr(libc, "malloc_trim") and hasattr(libc, "mallopt") else None
    except OSError:
        return None


_LIBC = _libc()


def bound_heap(mmap_threshold=4 << 20):
    """Allocations above ``mmap_threshold`` bytes are mapped and given back when freed (``MALLOC_MMAP_THRESHOLD_``
    wins when set); returns whether the setting is in force."""
    if _LIBC is None:
        return False
    if os.environ.get("MALLOC_MMAP_THRESHOLD_"):
        return True
    return bool(_LIBC.mallopt(M_MMAP_THRESHOLD, int(mmap_threshold)))


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
