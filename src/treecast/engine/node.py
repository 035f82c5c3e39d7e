"""The node-level broadcast: the root writes the payload once into shared memory and every
other rank of the node copies it out, in pipelined chunks (readers copy chunk k while the
root writes chunk k + 1).

Each communicator that uses it gets an *arena* on first use (collectively, like every
collective): a segment of the job holding ``SLOTS`` chunk slots and one counter per rank,
each on its own cache line. Counters count chunks since the arena was made, so they only
grow and never need resetting, whoever the root of each call is:

- ``published``: chunks written so far (by the roots, in call order);
- ``done[r]``: chunks rank ``r`` has finished with (read, or written as root).

The root may write chunk ``k`` into slot ``k % SLOTS`` once every other rank has finished
with chunk ``k - SLOTS``; a reader may copy chunk ``k`` once ``published > k``. x86-64 keeps
stores in order, so the data of a chunk is visible before the counter that publishes it.
Waiting goes through the transport (spin, yield, sleep; timeouts and dead ranks raise as in
any other call).

Cost: the root copies n bytes once and each reader copies n bytes once, all at the same
time: about 2 n beta for any p on a node (a binomial tree copies 2 n beta per level).
"""

from __future__ import annotations

import math
import os
from functools import partial
from typing import TYPE_CHECKING, Any, Protocol, TypeVar

import numpy as np

from ..errors import InvalidArgumentError, TimeoutError
from ..message.buffers import array_bytes
from ..ops import MIN as _MIN
from ..transports.base import Activity, describe
from .sharing import node_array

if TYPE_CHECKING:
    from .share_pool import Members

    class Comm(Members, Protocol):
        """What the arenas need of a communicator (:class:`treecast.Comm` is one)."""

        def allgather(self, sendobj: Any) -> list[Any]: ...

        def allreduce(self, sendobj: Any, op: Any = ...) -> Any: ...


def _l2_bytes(sysfs: str = "/sys/devices/system/cpu/cpu0/cache") -> int | None:
    """The size of the level-2 cache of CPU 0, from sysfs; None if it cannot be read."""
    try:
        for entry in sorted(os.listdir(sysfs)):
            base = os.path.join(sysfs, entry)
            with open(os.path.join(base, "level")) as fh:
                if fh.read().strip() != "2":
                    continue
            with open(os.path.join(base, "size")) as fh:
                text = fh.read().strip().upper()
            scale = {"K": 1 << 10, "M": 1 << 20}.get(text[-1:], 1)
            return int(text.rstrip("KM")) * scale
    except (OSError, ValueError):
        return None
    return None


def chunk_for_cache(l2: int | None) -> int:
    """Bytes per chunk when every rank has a core: a quarter of the L2 cache, so that the
    chunks in flight between writer and reader stay in cache, from 128 KiB to 1 MiB (256 KiB
    when the cache size is unknown). Measured (1 MiB ``Bcast`` at n = 2): with a 1 MiB L2,
    256 KiB chunks took 34 us against 131 us with 1 MiB and 39 us with 128 KiB; with a 2 MiB
    L2, 512 KiB chunks took 68-69 us against 77 us with 256 KiB and 71-83 us with 1 MiB."""
    if not l2:
        return 1 << 18
    quarter = 1 << max(0, (l2 // 4).bit_length() - 1)  # a power of two
    return min(1 << 20, max(1 << 17, quarter))


CHUNK = chunk_for_cache(_l2_bytes())
"""Bytes per chunk when every rank has a core (the same on every rank of a node)."""
OVERSUBSCRIBED_CHUNK = 1 << 20
"""Bytes per chunk with more ranks than cores, where every hand-off may wait for a context
switch: fewer, larger chunks win (n = 4 on 2 cores: 1 / 8 / 64 MiB in 51 / 581 / 7430 us
with 1 MiB chunks, 70 / 679 / 7620 us with 256 KiB)."""
SLOTS = 8
"""Chunk slots in an arena: the root may run this many chunks ahead of the slowest reader."""
CMA_MIN = 16 << 20
"""With ``TREECAST_CMA=1``, views from this many bytes go by cross-memory attach when every
rank can use it: one copy instead of two (below a few MiB pinning pages costs more than the
copy saves: 1 MiB took 70 us against 24 us)."""
ARENA_MODE, CMA_MODE = 0, 1
"""A chunk header's mode word: the payload is in the slots, or in the root's memory."""
WITHDRAWN = -1
"""A chunk header's size after its root gave up on a cross-memory-attach broadcast."""
LINE = 64
PAGE = 4096
HEAD = 2048
"""Offset of a slot's data from the slot's start, which is page-aligned; the slot's header
(the size of the payload the chunk belongs to) is at the start. Half a page keeps the data
away from the page offsets that user buffers usually have (0 for mappings, 16 for large
malloc blocks): copies between addresses that agree modulo 4 KiB suffer the processor's
4K-aliasing stalls (measured, 1 MiB Bcast at n = 2: 34-47 us with the data at page offsets
64-256, 23 us at 2048)."""


class NodeArena:
    """One communicator's broadcast arena (see the module docstring)."""

    def __init__(self, comm: Comm) -> None:
        self.size = comm.size
        # every rank must agree on the layout: decide from the machine's CPU count, not from
        # this process's affinity (ranks may be pinned differently)
        self.chunk = OVERSUBSCRIBED_CHUNK if comm.size > (os.cpu_count() or 1) else CHUNK
        self.stride = self.chunk + PAGE
        ctrl_bytes = LINE * (1 + comm.size)
        ctrl_bytes += -ctrl_bytes % PAGE  # the slots start on a page (the segment does)
        raw = node_array(
            comm, (ctrl_bytes + SLOTS * self.stride,), np.dtype(np.uint8), what="shm_one_write"
        )
        # int64 views as memoryviews: indexing them gives Python ints, faster than NumPy's
        # scalars
        self._ctrl = memoryview(raw[:ctrl_bytes]).cast("q")  # type: ignore[arg-type]  # published at 0, done[r] at 8 (r + 1)
        self._slots = raw[ctrl_bytes:]
        self._data = memoryview(self._slots)  # type: ignore[arg-type]
        self._heads = self._data.cast("q")  # slot s's header at s * stride / 8
        self._count = 0  # chunks of every broadcast so far (the same on every rank)
        self._step = LINE // 8
        self.cma = _probe_cma(comm, self._ctrl, self._step)

    def _done(self, rank: int) -> int:
        return int(self._ctrl[self._step * (rank + 1)])

    def _all_done(self, ranks: list[int], chunks: int) -> bool:
        return all(self._done(r) >= chunks for r in ranks)

    def _published(self, chunks: int) -> bool:
        return int(self._ctrl[0]) >= chunks

    def bcast(
        self,
        comm: Comm,
        views: list[memoryview],
        root: int,
        timeout: float | None,
        what: Activity,
    ) -> None:
        """Broadcast the bytes of ``views`` from ``root``. Every chunk's slot header carries
        the size of its view at the root, so a rank that passed another size still takes
        every chunk (the arena stays in step) and then raises.

        Raises:
            InvalidArgumentError: this rank's buffer has another size than the root's.
            TimeoutError, ProcessFailedError: as any blocking wait.
        """
        t = comm._t
        me = comm.rank
        ctrl, step, data, heads = self._ctrl, self._step, self._data, self._heads
        chunk, stride = self.chunk, self.stride
        others = [r for r in range(self.size) if r != root]
        k = self._count
        for view in views:
            n = view.nbytes
            if self.cma and self._by_cma(comm, n, root, k, timeout, what):
                k = self._cma_bcast(comm, view, root, k, timeout, what)
                continue
            total = n  # the root's size, learnt from the first chunk's header off the root
            i = 0
            while i < max(1, -(-total // chunk)):  # at least one chunk: it carries the size
                pos = i * chunk
                slot = (k % SLOTS) * stride
                if me == root:
                    m = min(chunk, n - pos)
                    free_at = k - SLOTS + 1
                    if any(self._done(r) < free_at for r in others):
                        t.wait(partial(self._all_done, others, free_at), timeout, what)
                    heads[slot // 8] = n
                    heads[slot // 8 + 3] = ARENA_MODE
                    data[slot + HEAD : slot + HEAD + m] = view[pos : pos + m]
                    ctrl[0] = k + 1
                else:
                    ready = k + 1
                    if ctrl[0] < ready:
                        t.wait(partial(self._published, ready), timeout, what)
                    total = heads[slot // 8]
                    if total == n:
                        m = min(chunk, n - pos)
                        view[pos : pos + m] = data[slot + HEAD : slot + HEAD + m]
                    ctrl[step * (me + 1)] = k + 1
                k += 1
                i += 1
            if total != n:
                self._count = k
                raise InvalidArgumentError(
                    f"{describe(what)}: this rank's buffer has {n} bytes but the root's has "
                    f"{total}; every rank must pass the same size (nothing was written here)"
                )
        if me == root:
            ctrl[step * (me + 1)] = k
        self._count = k

    def _by_cma(
        self, comm: Comm, n: int, root: int, k: int, timeout: float | None, what: Activity
    ) -> bool:
        """Whether this view goes by cross-memory attach: the root decides from its size and
        says so in the chunk's header; the others read it (their own size may differ)."""
        if comm.rank == root:
            return n >= CMA_MIN
        if self._ctrl[0] < k + 1:
            comm._t.wait(partial(self._published, k + 1), timeout, what)
        return self._heads[(k % SLOTS) * self.stride // 8 + 3] == CMA_MODE

    def _cma_bcast(
        self, comm: Comm, view: memoryview, root: int, k: int, timeout: float | None, what: Activity
    ) -> int:
        """One large view by cross-memory attach: the root publishes (size, pid, address)
        as one chunk and waits until every reader has copied straight out of its memory.
        Returns the chunk count after it.

        Raises:
            InvalidArgumentError: this rank's buffer has another size than the root's.
        """
        from ..transports import cma

        t, me, n = comm._t, comm.rank, view.nbytes
        ctrl, heads, step = self._ctrl, self._heads, self._step
        others = [r for r in range(self.size) if r != root]
        slot = (k % SLOTS) * self.stride // 8
        if me == root:
            free_at = k - SLOTS + 1
            if any(self._done(r) < free_at for r in others):
                t.wait(partial(self._all_done, others, free_at), timeout, what)
            heads[slot] = n
            heads[slot + 1] = os.getpid()
            heads[slot + 2] = cma.address(view)
            heads[slot + 3] = CMA_MODE
            ctrl[0] = k + 1
            ctrl[step * (me + 1)] = k + 1
            self._count = k + 1  # this chunk is spent even if the wait below raises
            try:
                t.wait(partial(self._all_done, others, k + 1), timeout, what)  # buffer read
            except BaseException:
                heads[slot] = WITHDRAWN  # late readers must not copy a buffer given back
                raise
            return k + 1
        if ctrl[0] < k + 1:
            t.wait(partial(self._published, k + 1), timeout, what)
        total, pid, addr = heads[slot], heads[slot + 1], heads[slot + 2]
        ok = total == n and cma.read(pid, addr, view)
        withdrawn = heads[slot] == WITHDRAWN  # checked after the copy: the root gave up
        ctrl[step * (me + 1)] = k + 1
        self._count = k + 1  # this chunk is spent even if this rank raises below
        if withdrawn or total == WITHDRAWN:
            raise TimeoutError(
                f"{describe(what)}: the root gave up on this broadcast (it timed out or "
                f"failed) before this rank copied the data"
            )
        if total != n:
            raise InvalidArgumentError(
                f"{describe(what)}: this rank's buffer has {n} bytes but the root's has "
                f"{total}; every rank must pass the same size (nothing was written here)"
            )
        if not ok:
            raise OSError(f"{describe(what)}: process_vm_readv from rank {root} failed")
        return k + 1


def _probe_cma(comm: Comm, ctrl: memoryview, step: int) -> bool:
    """With ``TREECAST_CMA=1``: whether every rank can read every other's memory
    (collective; called while the arena is made): each rank allows readers, publishes a known
    word, reads its right neighbour's.

    Off by default: measured here it is steadier but not faster on the whole (16 MiB at
    n = 2: 0.68-0.75 ms against 0.52-0.96 ms through the arena, 64 MiB 3.4-3.9 against
    3.0-5.3 ms, in alternating runs), and allowing readers (``PR_SET_PTRACER_ANY``) lets any
    process of the same user read this one's memory, which Yama otherwise forbids."""
    from ..transports import cma

    if os.environ.get("TREECAST_CMA", "0") != "1" or comm.size < 2:
        return False
    enabled = cma.enable()
    probe = np.array([0x7472656563617374 + comm.rank], dtype=np.int64)  # "treecast" + rank
    where = (os.getpid(), cma.address(array_bytes(probe))) if enabled else (0, 0)
    everyone = comm.allgather(where)
    right = (comm.rank + 1) % comm.size
    got = np.zeros(1, dtype=np.int64)
    pid, addr = everyone[right]
    ok = bool(pid) and cma.read(pid, addr, array_bytes(got))
    ok = ok and int(got[0]) == 0x7472656563617374 + right
    return bool(comm.allreduce(int(ok), op=_MIN)) if comm.size > 1 else False


def arena_of(comm: Comm) -> NodeArena:
    """The communicator's broadcast arena, made on first use (collective)."""
    return _arena(comm, "_node_arena", NodeArena)


class ReduceArena:
    """One communicator's node-level allreduce area: an input slot per rank and one output
    slot, each ``RCHUNK`` bytes, and a stage counter per rank.

    For each chunk of the vector: (1) every rank copies its chunk into its input slot;
    (2) once all have, rank ``r`` folds part ``r`` of the chunk over every input in rank
    order (``x0 (op) x1 (op) ...``: right for non-commutative operators too) into the output
    slot; (3) once all parts are done, every rank copies the output chunk out. Each rank's
    counter counts its finished steps (three per chunk, ever growing), so the waits are
    "every counter >= 3 c + 1" before (2) and ">= 3 c + 2" before (3); a rank can only
    start the next chunk's (1) after all finished reading this chunk's inputs.

    Cost per rank: copy n in, read n and write n/p while folding, copy n out: about
    3 n beta + n g / p, with two waits per chunk.
    """

    def __init__(self, comm: Comm) -> None:
        self.size = comm.size
        ctrl_bytes = LINE * (1 + comm.size) + 8 * comm.size
        ctrl_bytes += -ctrl_bytes % LINE
        raw = node_array(
            comm, (ctrl_bytes + (comm.size + 1) * RCHUNK,), np.dtype(np.uint8), what="shm_reduce"
        )
        self._ctrl = raw[:ctrl_bytes].view(np.int64)  # stage[r] at 8 (r + 1); counts after
        self._slots = raw[ctrl_bytes:].reshape(comm.size + 1, RCHUNK)
        self._stage = 0
        self._step = LINE // 8

    def _all_at(self, stage: int) -> bool:
        ctrl, step = self._ctrl, self._step
        return all(int(ctrl[step * (r + 1)]) >= stage for r in range(self.size))

    def allreduce(
        self,
        comm: Comm,
        inp: np.ndarray,
        out: np.ndarray,
        op: Any,
        timeout: float | None,
        what: Activity,
    ) -> None:
        """``out = inp_0 (op) inp_1 (op) ... (op) inp_{p-1}`` element-wise, every rank.

        Raises:
            InvalidArgumentError: the ranks passed vectors of different lengths (raised on
                every rank; the arena stays in step).
            TimeoutError, ProcessFailedError: as any blocking wait.
        """
        t = comm._t
        me, p = comm.rank, self.size
        ctrl, step, slots = self._ctrl, self._step, self._slots
        isz = inp.dtype.itemsize or 1
        per = max(1, RCHUNK // isz)
        count = inp.size
        chunks = max(1, math.ceil(count / per))
        # whole items only: a slot's bytes need not be a multiple of the item size
        # (MPI.DOUBLE_INT's 12 bytes, say)
        slot_items = [
            slots[q][: per * isz].view(inp.dtype) if isz else slots[q] for q in range(p + 1)
        ]
        mine, result = slot_items[me], slot_items[p]
        stage = self._stage
        ctrl[step * (p + 1) + me] = count
        for c in range(chunks):
            lo = c * per
            m = min(per, count - lo)
            mine[:m] = inp[lo : lo + m]
            ctrl[step * (me + 1)] = stage + 1
            if not self._all_at(stage + 1):
                t.wait(partial(self._all_at, stage + 1), timeout, what)
            if c == 0:
                counts = [int(ctrl[step * (p + 1) + r]) for r in range(p)]
                if len(set(counts)) > 1:
                    # wait until everyone has read the counts before anyone may rewrite its own
                    ctrl[step * (me + 1)] = stage + 2
                    if not self._all_at(stage + 2):
                        t.wait(partial(self._all_at, stage + 2), timeout, what)
                    self._stage = stage + 2
                    raise InvalidArgumentError(
                        f"{describe(what)}: ranks passed vectors of different lengths "
                        f"({', '.join(f'rank {r}: {n}' for r, n in enumerate(counts))})"
                    )
            a, b = m * me // p, m * (me + 1) // p
            if b > a:
                part = result[a:b]
                part[...] = slot_items[0][a:b]
                for q in range(1, p):
                    op.apply_buffer(slot_items[q][a:b], part, incoming_first=False)
            ctrl[step * (me + 1)] = stage + 2
            if not self._all_at(stage + 2):
                t.wait(partial(self._all_at, stage + 2), timeout, what)
            out[lo : lo + m] = result[:m]
            stage += 3
            ctrl[step * (me + 1)] = stage
        self._stage = stage


RCHUNK = 1 << 20
"""Bytes per allreduce slot."""


def reduce_arena_of(comm: Comm) -> ReduceArena:
    """The communicator's allreduce arena, made on first use (collective)."""
    return _arena(comm, "_reduce_arena", ReduceArena)


_A = TypeVar("_A", NodeArena, ReduceArena)


def _arena(comm: Comm, attribute: str, kind: type[_A]) -> _A:
    arena: _A | None = getattr(comm, attribute, None)
    if arena is None:
        arena = kind(comm)
        setattr(comm, attribute, arena)
    return arena
