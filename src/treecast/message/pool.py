"""A caching allocator for large receive frames: memory whose pages are already faulted in.

A fresh 64 MiB buffer costs the kernel 16384 page faults, each zeroing a page: about as much
as copying the data (measured: an object ``bcast`` of 64 MiB at n = 2 took 5.7 ms against
3.0 ms for ``Bcast`` into a reused buffer). Receive frames of at least :data:`POOL_MIN`
bytes therefore come from anonymous mappings that the pool keeps after the arrays built on
them are gone, and hands out again.

"Gone" is read from the mapping's reference count: every array, memoryview or pickle buffer
that uses a frame holds a reference to the mapping it lies in (CPython's buffer protocol
keeps the exporter alive), so a mapping that only the pool references is free. Nothing is
ever reused while a view of it exists.

The pool holds at most ``TREECAST_FRAME_POOL_BYTES`` bytes (default 256 MiB; 0 turns it
off) per process; beyond that, frames are plain NumPy allocations again, and idle mappings
of other sizes are released to make room.
"""

from __future__ import annotations

import mmap
import sys

import numpy as np

from ..units import size_from_env

POOL_MIN = 1 << 20
"""Frames smaller than this come from NumPy's allocator (malloc reuses small blocks well)."""
_FREE_REFS = 3
"""``sys.getrefcount`` of a pooled mapping that nothing else uses: the pool's list, the loop
variable, and the call's argument."""


def size_class(nbytes: int) -> int:
    """``nbytes`` rounded up so that a class wastes at most 1/8 (frames of similar sizes
    share mappings), to whole pages."""
    step = max(mmap.PAGESIZE, 1 << max(0, nbytes.bit_length() - 4))
    return -(-nbytes // step) * step


class FramePool:
    """Mappings by size class; see the module docstring.

    Args:
        capacity: most bytes of mappings held at once.
    """

    def __init__(self, capacity: int) -> None:
        self.capacity = capacity
        self.held = 0
        self._classes: dict[int, list[mmap.mmap]] = {}

    def take(self, nbytes: int) -> memoryview | None:
        """A writable view of ``nbytes`` bytes of pooled memory (contents undefined), or
        None if the pool is full of mappings in use."""
        size = size_class(nbytes)
        entries = self._classes.setdefault(size, [])
        for mm in entries:
            if sys.getrefcount(mm) <= _FREE_REFS:
                return memoryview(mm)[:nbytes]
        if self.held + size > self.capacity and not self._release(size):
            return None
        mm = mmap.mmap(-1, size)
        if hasattr(mm, "madvise") and hasattr(mmap, "MADV_HUGEPAGE"):
            mm.madvise(mmap.MADV_HUGEPAGE)
        entries.append(mm)
        self.held += size
        return memoryview(mm)[:nbytes]

    def _release(self, needed: int) -> bool:
        """Unmap idle mappings until ``needed`` more bytes fit; True if they do."""
        for size, entries in self._classes.items():
            for mm in list(entries):
                if self.held + needed <= self.capacity:
                    return True
                if sys.getrefcount(mm) <= _FREE_REFS + 1:  # + the list() copy
                    entries.remove(mm)
                    mm.close()
                    self.held -= size
        return self.held + needed <= self.capacity


_POOL = FramePool(size_from_env("TREECAST_FRAME_POOL_BYTES", 256 << 20))


def alloc_frame(nbytes: int) -> memoryview:
    """An uninitialised writable byte buffer: pooled memory from :data:`POOL_MIN` bytes,
    NumPy's allocator (aligned, no zero fill) below or when the pool is full."""
    if nbytes >= POOL_MIN and _POOL.capacity:
        view = _POOL.take(nbytes)
        if view is not None:
            return view
    return memoryview(np.empty(nbytes, dtype=np.uint8))  # type: ignore[arg-type]
