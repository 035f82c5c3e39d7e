"""Reused segments for ``bcast(obj, copy=False)``: a root writes into memory whose pages are
already there instead of a fresh segment.

A fresh segment costs its root the kernel allocating and zeroing every page: 64 MiB took
38 ms to fill here against 5-7 ms for the same copy into a segment filled before. So each
communicator keeps, per rank, the segments that rank made as a root (``owned``) and those it
mapped as a receiver, and a root reuses one of its own once no rank holds a view of it.

Layout of a pooled segment: a header of int64 words, then the data at a page boundary.

- word 0: ``RETIRED`` once the root has dropped the segment from its pool (receivers then
  unmap it as soon as their views are gone);
- word ``1 + r``: 0 when rank ``r`` holds no view of the current contents; otherwise
  ``1 +`` the number of the ``copy=False`` call on the communicator that filled it, or
  ``PINNED`` for good (the rank forked while it viewed the segment: a child process may
  view it for ever).

Protocol (one writer per word at a time, so no atomics are needed; x86-64 keeps stores in
order):

1. At call ``k`` the root picks an owned segment whose words are all 0, sets every word to
   ``k + 1``, writes the payload and sends the segment's name with the pickle stream (a
   small ``bcast``).
2. Every rank builds read-only views on its mapping (kept from earlier calls; a new segment
   is mapped by name, then unlinked after a barrier, so nothing named outlives the call).
3. At the start of each later call ``k' > k``, every rank sweeps its segments: a word it
   finds set by an earlier call (``<= k'``) whose mapping nothing but the pool references any
   more (the reference count shows that no array, memoryview or pickle buffer uses it) is
   set back to 0. Whether the rank received call ``k`` or failed in it does not matter, so a
   rank that timed out does not hold a segment for ever.

Calls are numbered the same on every rank (collectives run in the same order), so a rank
never clears the word of a call it has not finished, and the root can never overwrite data
that some rank still views. Memory: the owned segments of a process total at most
``TREECAST_SHARE_POOL_BYTES`` (default 256 MiB, 0 turns pooling off), a root retires idle
segments of the same communicator to make room, and a communicator's segments are retired
when it is freed or garbage-collected; payloads that do not fit get a segment of their own
that is freed when the last view of it is dropped. A process forked from a rank never
writes the headers (its pools are copies of its parent's).
"""

from __future__ import annotations

import mmap
import os
import sys
import threading
import weakref
from typing import TYPE_CHECKING, Any, Protocol

from ..message.pool import size_class
from ..units import size_from_env

if TYPE_CHECKING:
    from ..transports.base import Transport
    from ..transports.node_memory import NodeMemory

RETIRED = 1
PINNED = -1
PAGE = mmap.PAGESIZE
_FREE_REFS = 2
"""``sys.getrefcount(segment.data)`` when nothing but the segment references the mapping:
the segment's slot and the call's argument."""


BUDGET = size_from_env("TREECAST_SHARE_POOL_BYTES", 256 << 20)
_LOCK = threading.RLock()
"""Guards every pool's segments and :data:`_owned_bytes` (pools of several communicators may
be used from several threads; a pool's finaliser may run inside a locked section)."""
_owned_bytes = 0
"""Bytes of pooled segments this process owns, over every communicator."""
_POOLS: weakref.WeakSet[SharePool] = weakref.WeakSet()


class Members(Protocol):
    """What sharing needs of a communicator (:class:`treecast.Comm` is one): this rank, the
    number of ranks, a small broadcast, a barrier and its transport (whose node memory holds
    the segments). A pool is kept on the object itself."""

    _t: Transport
    _nodes: tuple[int, ...] | None

    def _node_memory(self, what: str) -> NodeMemory: ...

    def _node_split(self, root: int) -> tuple[Members, Members | None, int]: ...

    def Bcast(self, buf: Any, root: int = 0, *, timeout: float | None = None) -> None: ...

    def allgather(self, sendobj: Any) -> list[Any]: ...

    @property
    def rank(self) -> int: ...

    @property
    def size(self) -> int: ...

    def bcast(self, obj: Any = None, root: int = 0, *, timeout: float | None = None) -> Any: ...

    def barrier(self, *, timeout: float | None = None) -> None: ...


def header_bytes(size: int) -> int:
    """Bytes of the header of a segment for ``size`` ranks (whole pages)."""
    n = 8 * (1 + size)
    return n + -n % PAGE


class Segment:
    """One pooled segment as this rank maps it."""

    __slots__ = ("capacity", "data", "head", "name", "owned", "words")

    def __init__(
        self, name: str, head: mmap.mmap, data: mmap.mmap, capacity: int, owned: bool
    ) -> None:
        self.name = name
        self.capacity = capacity
        self.owned = owned
        self.head = head
        self.words = memoryview(self.head).cast("q")
        self.data = data

    @classmethod
    def open(cls, memory: NodeMemory, name: str, size: int, capacity: int, owned: bool) -> Segment:
        """Map the existing segment ``name`` of ``memory`` (for ``size`` ranks, ``capacity``
        data bytes): its header read-write, its data read-write only where ``owned``.

        Raises:
            FileNotFoundError: no segment of that name.
            OSError: the system refused a mapping.
        """
        hb = header_bytes(size)
        head = memory.attach(name, nbytes=hb)
        try:
            data = memory.attach(name, offset=hb, nbytes=capacity, writable=owned)
        except BaseException:
            head.close()
            raise
        return cls(name, head, data, capacity, owned)

    def in_use(self) -> bool:
        """Whether any array or view of this process still uses the mapping."""
        return sys.getrefcount(self.data) > _FREE_REFS

    def idle(self, size: int) -> bool:
        """Whether no rank holds the segment (every word 0)."""
        return not any(self.words[1 : 1 + size])

    def close(self) -> None:
        """Unmap what nothing views (a mapping with views goes with its last view)."""
        self.words.release()
        self.head.close()
        if not self.in_use():
            self.data.close()


_in_fork_child = False
"""True in a process forked from a rank: its pools are copies of the parent's, so it must
never write the shared headers (it would retire segments the parent still uses)."""


def _retire(segs: dict[str, Segment], seg: Segment) -> None:
    """Drop an owned segment from its pool for good (under :data:`_LOCK`)."""
    global _owned_bytes
    if segs.pop(seg.name, None) is seg:
        if not _in_fork_child:
            seg.words[0] = RETIRED
            _owned_bytes -= seg.capacity
        seg.close()


def _retire_all(segs: dict[str, Segment]) -> None:
    """A pool is freed or collected: retire what it owns, unmap what nothing views."""
    with _LOCK:
        for seg in list(segs.values()):
            if seg.owned:
                _retire(segs, seg)
            else:
                segs.pop(seg.name, None)
                seg.close()


class SharePool:
    """One communicator's pooled segments, on one rank (see the module docstring), in the
    node memory of its transport."""

    def __init__(self, comm: Members, memory: NodeMemory) -> None:
        self.rank = comm.rank
        self.size = comm.size
        self.memory = memory
        self.calls = 0  # copy=False calls entered on this communicator (the same everywhere)
        self.segments: dict[str, Segment] = {}
        weakref.finalize(self, _retire_all, self.segments)
        with _LOCK:
            _POOLS.add(self)

    def enter(self) -> int:
        """Start a call: number it and give back the segments this rank no longer views
        (from earlier calls), unmap retired ones. Returns the call's number."""
        call = self.calls
        self.calls += 1
        word = 1 + self.rank
        if _in_fork_child:
            return call
        with _LOCK:
            for seg in list(self.segments.values()):
                if seg.in_use():
                    continue
                if 0 < seg.words[word] <= call:
                    seg.words[word] = 0
                if seg.owned and PINNED in seg.words[1 : 1 + self.size]:
                    _retire(self.segments, seg)  # a forked child may view it for ever
                elif not seg.owned and seg.words[0] == RETIRED and seg.words[word] <= 0:
                    # (a word set to a call is one this rank has not run yet: the root may
                    # have sent this segment before it retired it, even before it exited)
                    del self.segments[seg.name]
                    seg.close()
        return call

    def acquire(self, nbytes: int, call: int) -> tuple[Segment, bool] | None:
        """At the root of call number ``call``, after :meth:`enter`: a segment for
        ``nbytes`` with every rank's word set, and whether it is new (then the others must
        map it by its name); None when the pool is off or full of segments in use (the
        caller makes a one-off segment).

        Raises:
            OSError: the segment could not be made (nothing is left named).
        """
        global _owned_bytes
        need = size_class(nbytes)
        if _in_fork_child:
            return None
        with _LOCK:
            best = None
            for seg in self.segments.values():
                if (
                    seg.owned
                    and need <= seg.capacity <= 2 * need
                    and (best is None or seg.capacity < best.capacity)
                    and seg.idle(self.size)
                ):
                    best = seg
            fresh = best is None
            if best is None:
                if need > BUDGET or (_owned_bytes + need > BUDGET and not self._evict(need)):
                    return None
                best = self._create(need)
                _owned_bytes += need
            for r in range(self.size):
                best.words[1 + r] = call + 1
        return best, fresh

    def _create(self, capacity: int) -> Segment:
        name, mm = self.memory.create("bcast", header_bytes(self.size) + capacity)
        try:
            seg = Segment.open(self.memory, name, self.size, capacity, owned=True)
        except BaseException:
            self.memory.unlink(name)
            raise
        finally:
            mm.close()
        self.segments[name] = seg
        return seg

    def _evict(self, need: int) -> bool:
        """Retire idle owned segments of this pool until ``need`` more bytes fit (under
        :data:`_LOCK`); True if they do. Only this communicator's: its receivers unmap
        what is retired at their next call, which other communicators may never have."""
        for seg in list(self.segments.values()):
            if _owned_bytes + need <= BUDGET:
                return True
            if seg.owned and not seg.in_use() and seg.idle(self.size):
                _retire(self.segments, seg)
        return _owned_bytes + need <= BUDGET

    def discard(self, seg: Segment) -> None:
        """At the root, after a failed call: retire ``seg`` (some rank may not have mapped
        it, so it must never be offered again)."""
        with _LOCK:
            _retire(self.segments, seg)

    def attach(self, name: str, capacity: int) -> Segment:
        """At a receiver: map the new segment ``name`` (before its root unlinks it)."""
        seg = Segment.open(self.memory, name, self.size, capacity, owned=False)
        with _LOCK:
            self.segments[name] = seg
        return seg

    def close(self) -> None:
        """Retire this rank's owned segments and unmap every segment nothing views."""
        _retire_all(self.segments)


def _before_fork() -> None:
    """A child inherits this process's mappings and views, and nothing here can see when it
    drops them, so every segment viewed now is held for good. The lock is held across the
    fork so that the child does not inherit it taken by a thread it does not have."""
    _LOCK.acquire()
    for pool in list(_POOLS):
        word = 1 + pool.rank
        for seg in pool.segments.values():
            if seg.in_use():
                seg.words[word] = PINNED


def _after_fork_in_parent() -> None:
    _LOCK.release()


def _after_fork_in_child() -> None:
    global _LOCK, _in_fork_child
    _LOCK = threading.RLock()
    _in_fork_child = True


if hasattr(os, "register_at_fork"):
    os.register_at_fork(
        before=_before_fork,
        after_in_parent=_after_fork_in_parent,
        after_in_child=_after_fork_in_child,
    )


def pool_of(comm: Members) -> SharePool:
    """The communicator's pool on this rank, made on first use (not collective).

    Raises:
        MissingCapabilityError: the communicator's transport has no node memory.
    """
    pool: SharePool | None = comm.__dict__.get("_share_pool")
    if pool is None:
        pool = SharePool(comm, comm._node_memory("bcast(copy=False)"))
        comm._share_pool = pool  # type: ignore[attr-defined]
    return pool
