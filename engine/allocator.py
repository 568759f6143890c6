"""Keep freed activation memory in the process instead of handing it back to the OS.

A render allocates the same large activations over and over (EnCodec's 30-80 MB feature maps,
the feed-forward activations of every step). glibc's malloc serves blocks that large with fresh
`mmap`s and returns them on free, so every allocation touches new pages: about 900,000 minor page
faults per 10 s render, each a kernel entry and a zeroed page. Told to never mmap and to keep
the freed top of the heap, malloc reuses the same pages render after render (faults drop ~30x,
measured with `benchmarks/bench_engine.py`), at the price of the process keeping its peak
memory.

This is a process-wide setting, so the library never makes it by itself: the application that
owns the process calls `keep_freed_memory()` once (the CLI and the daemon do, when they open
JASCO). It only affects later allocations, is safe to call from any thread, and does nothing
where the C library is not glibc.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import logging

logger = logging.getLogger(__name__)

_M_TRIM_THRESHOLD = -1
_M_MMAP_MAX = -4
_KEEP_BYTES = 2**31 - 1  # the largest trim threshold mallopt takes: in effect, never trim


def keep_freed_memory() -> bool:
    """Tell glibc's malloc to reuse freed memory; True when the setting took effect."""
    name = ctypes.util.find_library("c")
    if name is None:
        return False
    try:
        libc = ctypes.CDLL(name)
        mallopt = libc.mallopt
    except (OSError, AttributeError):
        return False  # not glibc (musl, macOS, Windows): their allocators decide for themselves
    mallopt.argtypes = (ctypes.c_int, ctypes.c_int)
    mallopt.restype = ctypes.c_int
    trimmed = mallopt(_M_TRIM_THRESHOLD, _KEEP_BYTES)
    mapped = mallopt(_M_MMAP_MAX, 0)
    kept = bool(trimmed and mapped)
    logger.debug("malloc keeps freed memory: %s", kept)
    return kept
