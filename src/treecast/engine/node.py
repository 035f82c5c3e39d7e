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
from functools import partial
from typing import TYPE_CHECKING

import numpy as np

from ..errors import InvalidArgumentError
from ..transports.base import Activity, describe

if TYPE_CHECKING:
    from ..comm import Comm

CHUNK = 1 << 20
"""Bytes per slot: 1 MiB measured best here (64 KiB: 2x slower at 1-64 MiB; 256 KiB: 1.2-1.8x)."""
SLOTS = 8
"""Chunk slots in an arena: the root may run this many chunks ahead of the slowest reader."""
LINE = 64
HEAD = 64
"""Bytes of a slot's header: the size of the payload the chunk belongs to."""
STRIDE = HEAD + CHUNK


class NodeArena:
    """One communicator's broadcast arena (see the module docstring)."""

    def __init__(self, comm: Comm) -> None:
        from ..shared import shared_array

        self.size = comm.size
        ctrl_bytes = LINE * (1 + comm.size)
        raw = shared_array(comm, ctrl_bytes + SLOTS * STRIDE, np.uint8)
        self._ctrl = raw[:ctrl_bytes].view(np.int64)  # published at 0, done[r] at 8 (r + 1)
        self._slots = raw[ctrl_bytes:]
        self._data = memoryview(self._slots)  # type: ignore[arg-type]
        self._heads = self._slots.view(np.int64)  # slot s's header at s * STRIDE / 8
        self._count = 0  # chunks of every broadcast so far (the same on every rank)
        self._step = LINE // 8

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
        others = [r for r in range(self.size) if r != root]
        k = self._count
        for view in views:
            n = view.nbytes
            total = n  # the root's size, learnt from the first chunk's header off the root
            i = 0
            while i < chunk_count(total):
                pos = i * CHUNK
                slot = (k % SLOTS) * STRIDE
                if me == root:
                    m = min(CHUNK, n - pos)
                    free_at = k - SLOTS + 1
                    if any(self._done(r) < free_at for r in others):
                        t.wait(partial(self._all_done, others, free_at), timeout, what)
                    heads[slot // 8] = n
                    data[slot + HEAD : slot + HEAD + m] = view[pos : pos + m]
                    ctrl[0] = k + 1
                else:
                    ready = k + 1
                    if ctrl[0] < ready:
                        t.wait(partial(self._published, ready), timeout, what)
                    total = int(heads[slot // 8])
                    if total == n:
                        m = min(CHUNK, n - pos)
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


def arena_of(comm: Comm) -> NodeArena:
    """The communicator's arena, made on first use (collective)."""
    arena: NodeArena | None = getattr(comm, "_node_arena", None)
    if arena is None:
        arena = NodeArena(comm)
        comm._node_arena = arena  # type: ignore[attr-defined]
    return arena


def chunk_count(nbytes: int) -> int:
    """Chunks a payload of ``nbytes`` takes (at least one: it carries the size)."""
    return max(1, math.ceil(nbytes / CHUNK))
