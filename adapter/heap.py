"""Keep freed heap memory for reuse instead of handing it back to the kernel at once, and hand
it back when much more than that lies free.

A 1,000-pod answer makes a few large temporaries (the pods' latency bands joined, their
cumulative sums, the ~250 KB body). With glibc's defaults each of them is mapped fresh and
unmapped again, so every query pays a page fault per 4 KiB page touched: measured here, about
0.5 ms per 680 KB buffer, which tripled the cost of the quantile step. ``keep_freed_memory``
raises glibc's thresholds so that buffers up to ``KEPT_BYTES`` come from the heap and freed
memory up to that much stays mapped, ready for the next query.

Heap memory comes back to the kernel only from the top of the heap, so freed blocks below live
ones stay in the process. Each TLS connection holds a 256 KiB read buffer (asyncio's), from the
heap with these thresholds and with glibc's own (which rise to 256 KiB as soon as one such
buffer is freed): 1,600 idle connections took the resident memory from 83 to 531 MB, and it
stayed there after they closed. ``FreedMemory.release_if_grown``, run by the server every few
seconds, hands the free pages back (glibc's ``malloc_trim``, which also releases whole free
pages inside the heap) once the free heap grew by ``RELEASE_AFTER_FREED_BYTES`` since the
last time: the same connections closing then left 99 MB.

Process-wide: the server calls these from its one event loop. Elsewhere than glibc (musl,
macOS) they do nothing.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import logging

logger = logging.getLogger(__name__)

KEPT_BYTES = 4 * 1024 * 1024
"""Allocations up to this size use the heap, and up to this much free heap stays mapped: the
temporaries of answers up to about 2,000 pods, while the memory a process keeps beyond its
live data stays small next to the store (10,000 pods take ~150 MB)."""

RELEASE_AFTER_FREED_BYTES = 16 * 1024 * 1024
"""Free heap memory handed back once this much more lies free than after the last release:
about 60 closed connections' buffers, four times what ``KEPT_BYTES`` keeps for queries."""
_M_TRIM_THRESHOLD = -1
_M_MMAP_THRESHOLD = -3
"""``mallopt`` parameters, from glibc's ``malloc.h``."""


def _libc() -> ctypes.CDLL | None:
    try:
        return ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
    except OSError:
        return None


def keep_freed_memory(kept_bytes: int = KEPT_BYTES) -> bool:
    """Set glibc's mmap and trim thresholds to ``kept_bytes``; returns whether it could."""
    try:
        libc = _libc()
        mallopt = libc.mallopt if libc is not None else None
    except AttributeError:
        mallopt = None
    if mallopt is None:
        logger.debug("no mallopt in this C library: freed memory goes back as it would")
        return False
    mallopt.argtypes = (ctypes.c_int, ctypes.c_int)
    mallopt.restype = ctypes.c_int
    return bool(mallopt(_M_MMAP_THRESHOLD, kept_bytes)) and bool(
        mallopt(_M_TRIM_THRESHOLD, kept_bytes)
    )


class _MallInfo2(ctypes.Structure):
    """glibc's ``struct mallinfo2`` (2.33 and later)."""

    _fields_ = [
        (name, ctypes.c_size_t)
        for name in (
            "arena",
            "ordblks",
            "smblks",
            "hblks",
            "hblkhd",
            "usmblks",
            "fsmblks",
            "uordblks",
            "fordblks",
            "keepcost",
        )
    ]


class FreedMemory:
    """Hands free heap memory back to the kernel when a lot more of it lies free (module
    docstring). ``release_if_grown`` costs a walk of malloc's free lists (microseconds, a few
    milliseconds for a heap of many thousands of free blocks) and, when it releases, a
    ``malloc_trim``."""

    def __init__(self, threshold_bytes: int = RELEASE_AFTER_FREED_BYTES) -> None:
        self.threshold_bytes = threshold_bytes
        libc = _libc()
        self._mallinfo2 = getattr(libc, "mallinfo2", None)
        self._malloc_trim = getattr(libc, "malloc_trim", None)
        if self._mallinfo2 is not None and self._malloc_trim is not None:
            self._mallinfo2.restype = _MallInfo2
            self._malloc_trim.argtypes = (ctypes.c_size_t,)
            self._malloc_trim.restype = ctypes.c_int
        self._low = self.free_bytes()

    @property
    def available(self) -> bool:
        """Whether this C library lets the heap be measured and trimmed (glibc 2.33+)."""
        return self._mallinfo2 is not None and self._malloc_trim is not None

    def free_bytes(self) -> int:
        """Heap memory free for reuse (in the arenas, not counting mapped blocks); 0 unknown."""
        return int(self._mallinfo2().fordblks) if self.available else 0

    def release_if_grown(self) -> bool:
        """Hand free pages back to the kernel if the free heap grew by the threshold since the
        last release (or since it was least); returns whether it did. ``KEPT_BYTES`` stay at
        the top of the heap for the next query."""
        if not self.available:
            return False
        free = self.free_bytes()
        if free - self._low < self.threshold_bytes:
            self._low = min(self._low, free)
            return False
        self._malloc_trim(KEPT_BYTES)
        self._low = free
        logger.debug("handed back free heap memory: %d MiB lay free", free >> 20)
        return True
