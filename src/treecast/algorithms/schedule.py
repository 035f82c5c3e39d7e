"""The steps a schedule yields, and the block conventions every engine follows.

A schedule is a generator function of integers only (rank, size, root, counts, ...; the
two-level ones also take the node of each rank as a tuple) that yields steps; peers are
ranks of the communicator running it. One interpreter runs them, ``engine/store.py``'s
``execute()``: driven to completion by blocking calls, step by step by the ``I*`` requests
(``engine/progress.py``), and for every rank in one process by the simulator
(``engine/simulate.py``, over the in-process transport, for tests).

Steps
-----
:class:`Send` posts a send and does not wait. :class:`Recv` receives and waits for the
message (later steps may forward it). :class:`Combine` reduces one block into another
locally. :class:`WaitAll` waits for every send posted so far; an engine also waits for all
sends at the end, and before it writes a block that a send in flight still reads (so a
schedule may overwrite or reduce into a block it has just sent).

Payloads
--------
A step either moves the whole payload (``blocks == ()`` and ``nbytes < 0``: object and
buffer broadcast, barrier), a byte segment of a buffer payload (``nbytes >= 0``: pipelined
broadcasts), or a tuple of *block ids* (every other collective). A message carrying several
blocks carries them in the order listed; sender and receiver list the same number of blocks of
the same sizes, in the same order, and usually the same ids (scan lands the sender's window,
id 1, in its scratch, id 2: engines match blocks by position). What a block id means is
fixed per collective:

==========================  ====================================================================
gather, scatter, allgather  id ``b``: rank ``b``'s item (object) or segment (buffer, v-counts)
alltoall                    id ``s * size + d``: the item that rank ``s`` sends to rank ``d``
reduce, allreduce           ids ``0 .. C-1``: the vector cut into ``C`` contiguous chunks, chunk
                            ``i`` having ``count // C + (i < count % C)`` elements; ``C`` is the
                            algorithm's ``chunks(size)`` (1 for whole-vector algorithms)
reduce_scatter(_block)      id ``b``: the segment whose reduction rank ``b`` receives
scan, exscan                id 0: my result; id 1: the running partial over a window of ranks
                            ending at me; id 2: scratch. Each is a whole vector.
==========================  ====================================================================

Reductions
----------
``Recv(..., reduce=LEFT)`` combines each incoming block into the local one as
``local = incoming (op) local``; ``reduce=RIGHT`` as ``local = local (op) incoming``. A
schedule picks the side so that, for a non-commutative operator, operands always combine in
rank order (``LEFT`` when the data comes from lower ranks). A block that is *absent* (never
set: an exscan result before its first contribution) takes the incoming value as it is.
``Combine(src, dst, side)`` does the same between local blocks.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from functools import lru_cache

OVERWRITE = 0
"""``Recv.reduce``: the incoming blocks replace the local ones."""
LEFT = 1
"""``Recv.reduce`` / ``Combine.side``: ``local = incoming (op) local`` (incoming from lower ranks)."""
RIGHT = 2
"""``Recv.reduce`` / ``Combine.side``: ``local = local (op) incoming`` (incoming from higher ranks)."""


@dataclass(frozen=True, slots=True)
class Send:
    """Post a send of the payload to ``peer``; of bytes ``offset .. offset + nbytes`` of a
    buffer payload when ``nbytes >= 0`` (a segment of a pipelined algorithm); of the listed
    ``blocks`` when not empty."""

    peer: int
    offset: int = 0
    nbytes: int = -1
    blocks: tuple[int, ...] = ()


@dataclass(frozen=True, slots=True)
class Recv:
    """Receive the payload (or the segment ``offset, nbytes``, or the listed ``blocks``)
    from ``peer`` and wait for it; ``reduce`` (:data:`OVERWRITE`, :data:`LEFT`,
    :data:`RIGHT`) says how received blocks meet the local ones."""

    peer: int
    offset: int = 0
    nbytes: int = -1
    blocks: tuple[int, ...] = ()
    reduce: int = OVERWRITE


@dataclass(frozen=True, slots=True)
class Combine:
    """Local reduction: ``dst = src (op) dst`` (``side=LEFT``) or ``dst = dst (op) src``
    (``side=RIGHT``) for each pair of ids; an absent ``dst`` becomes a copy of ``src``."""

    src: int
    dst: int
    side: int = LEFT


@dataclass(frozen=True, slots=True)
class WaitAll:
    """Wait until every send posted so far has completed."""


Step = Send | Recv | Combine | WaitAll
Schedule = Iterator[Step]


@lru_cache(maxsize=1024)
def steps_of(
    algorithm: Callable[..., Iterable[Step]], *args: int | tuple[int, ...]
) -> tuple[Step, ...]:
    """The steps of a schedule that depends only on its arguments, computed once.

    Schedules are pure functions of (rank, size, root, ...) and, for the two-level ones, a
    node layout tuple, so their step lists are cached; the engine iterates a tuple instead
    of resuming a generator per step.
    """
    return tuple(algorithm(*args))
