"""Reused segments for ``bcast(obj, copy=False)``: a root writes into memory whose pages are
already there instead of a fresh segment.

A fresh segment costs its root the kernel allocating and zeroing every page: 64 MiB took
38 ms to fill here against 5-7 ms for the same copy into a segment filled before. So each
communicator keeps, per rank, the segments that rank made as a root (``owned``) and those it
mapped as a receiver, and a root reuses one of its own once no rank holds a view of it.

Layout of a pooled segment: a header of int64 words, then the data at a page boundary.

- word 0: ``RETIRED`` once the root has dropped the segment from its pool (receivers then
  unmap it as soon as their views are gone);
- word ``1 + r``: 1 while rank ``r`` may hold views of the segment's current contents.

Protocol (one writer per word, so no atomics are needed; x86-64 keeps stores in order):

1. The root picks an owned segment whose held words are all 0, sets every word to 1, writes
   the payload and sends the segment's name with the pickle stream (a small ``bcast``).
2. A rank builds read-only views on its mapping (kept from earlier calls; a new segment is
   mapped by name, then unlinked after a barrier, so nothing named outlives the call) and
   remembers that it holds the segment.
3. At the start of each later ``copy=False`` call every rank sweeps its segments: one it
   holds whose mapping nothing but the pool references any more (the reference count shows
   that no array, memoryview or pickle buffer uses it) gets its word set back to 0.

A rank clears only a word it set itself after receiving the segment, so the root can never
overwrite data that some rank still views. Memory: the owned segments of a process total at
most ``TREECAST_SHARE_POOL_BYTES`` (default 256 MiB, 0 turns pooling off); larger payloads
get a segment of their own that is freed when the last view of it is dropped.
"""

from __future__ import annotations

import mmap
import os
import sys
from typing import TYPE_CHECKING

from .transports import segments

if TYPE_CHECKING:
    from .comm import Comm

RETIRED = 1
PAGE = mmap.PAGESIZE
_FREE_REFS = 2
"""``sys.getrefcount(segment.data)`` when nothing but the segment references the mapping:
the segment's slot and the call's argument."""


def _budget_from_env() -> int:
    raw = os.environ.get("TREECAST_SHARE_POOL_BYTES", "").strip()
    try:
        return max(0, int(raw)) if raw else 256 << 20
    except ValueError:
        return 256 << 20


BUDGET = _budget_from_env()
_owned_bytes = 0
"""Bytes of pooled segments this process owns, over every communicator."""


def header_bytes(size: int) -> int:
    """Bytes of the header of a segment for ``size`` ranks (whole pages)."""
    n = 8 * (1 + size)
    return n + -n % PAGE


def capacity_for(nbytes: int) -> int:
    """``nbytes`` rounded up so that similar sizes share segments (at most 1/8 wasted), to
    whole pages."""
    step = max(PAGE, 1 << max(0, nbytes.bit_length() - 4))
    return -(-nbytes // step) * step


class Segment:
    """One pooled segment as this rank maps it."""

    __slots__ = ("capacity", "data", "head", "mine", "name", "owned", "words")

    def __init__(self, name: str, fd: int, size: int, capacity: int, owned: bool) -> None:
        self.name = name
        self.capacity = capacity
        self.owned = owned
        self.mine = False  # this rank may hold views of the current contents
        hb = header_bytes(size)
        self.head = mmap.mmap(fd, hb)
        self.words = memoryview(self.head).cast("q")
        prot = mmap.PROT_READ | (mmap.PROT_WRITE if owned else 0)
        self.data = mmap.mmap(fd, capacity, mmap.MAP_SHARED, prot, offset=hb)

    def in_use(self) -> bool:
        """Whether any array or view of this rank still uses the mapping."""
        return sys.getrefcount(self.data) > _FREE_REFS

    def close(self) -> None:
        self.words.release()
        self.head.close()
        self.data.close()


class SharePool:
    """One communicator's pooled segments, on one rank (see the module docstring)."""

    def __init__(self, comm: Comm) -> None:
        self.rank = comm.rank
        self.size = comm.size
        self.segments: dict[str, Segment] = {}

    def sweep(self) -> None:
        """Give back the segments this rank no longer views; unmap retired ones."""
        for name, seg in list(self.segments.items()):
            if seg.in_use():
                continue
            if seg.mine:
                seg.words[1 + self.rank] = 0
                seg.mine = False
            if not seg.owned and seg.words[0] == RETIRED:
                del self.segments[name]
                seg.close()

    def acquire(self, nbytes: int, name: str) -> tuple[Segment, bool] | None:
        """At the root, after :meth:`sweep`: a segment for ``nbytes`` with every rank's word
        set, and whether it is new (then it has ``name`` and the others must map it); None when the pool is
        off or full of segments in use (the caller makes a one-off segment)."""
        need = capacity_for(nbytes)
        best = None
        for seg in self.segments.values():
            if (
                seg.owned
                and need <= seg.capacity <= 2 * need
                and (best is None or seg.capacity < best.capacity)
                and not any(seg.words[1 : 1 + self.size])
            ):
                best = seg
        fresh = best is None
        if best is None:
            if need > BUDGET or (_owned_bytes + need > BUDGET and not self._evict(need)):
                return None
            best = self._create(name, need)
        for r in range(self.size):
            best.words[1 + r] = 1
        best.mine = True
        return best, fresh

    def _create(self, name: str, capacity: int) -> Segment:
        global _owned_bytes
        hb = header_bytes(self.size)
        mm = segments.create_segment(name, hb + capacity)
        try:
            fd = os.open(segments.SHM_DIR + name, os.O_RDWR)
        except BaseException:
            mm.close()
            segments.unlink_segment(name)
            raise
        try:
            seg = Segment(name, fd, self.size, capacity, owned=True)
        finally:
            os.close(fd)
            mm.close()
        self.segments[name] = seg
        _owned_bytes += capacity
        return seg

    def _evict(self, need: int) -> bool:
        """Retire idle owned segments until ``need`` more bytes fit; True if they do."""
        global _owned_bytes
        for name, seg in list(self.segments.items()):
            if _owned_bytes + need <= BUDGET:
                break
            if seg.owned and not seg.mine and not any(seg.words[1 : 1 + self.size]):
                seg.words[0] = RETIRED
                del self.segments[name]
                _owned_bytes -= seg.capacity
                seg.close()
        return _owned_bytes + need <= BUDGET

    def discard(self, seg: Segment) -> None:
        """At the root, after a failed call: retire ``seg`` (some rank may not have mapped
        it, so it must never be offered again)."""
        global _owned_bytes
        if self.segments.pop(seg.name, None) is seg:
            seg.words[0] = RETIRED
            _owned_bytes -= seg.capacity
            seg.mine = False
            if not seg.in_use():
                seg.close()

    def attach(self, name: str, capacity: int) -> Segment:
        """At a receiver: map the new segment ``name`` (before its root unlinks it)."""
        fd = os.open(segments.SHM_DIR + name, os.O_RDWR)
        try:
            seg = Segment(name, fd, self.size, capacity, owned=False)
        finally:
            os.close(fd)
        self.segments[name] = seg
        return seg

    def close(self) -> None:
        """Retire this rank's owned segments and unmap every segment nothing views."""
        global _owned_bytes
        for name, seg in list(self.segments.items()):
            if seg.owned:
                seg.words[0] = RETIRED
                _owned_bytes -= seg.capacity
            if not seg.in_use():
                seg.close()
            del self.segments[name]


def pool_of(comm: Comm) -> SharePool:
    """The communicator's pool on this rank, made on first use (not collective)."""
    pool: SharePool | None = getattr(comm, "_share_pool", None)
    if pool is None:
        pool = SharePool(comm)
        comm._share_pool = pool  # type: ignore[attr-defined]
    return pool
