"""The steps a schedule yields. Peers are ranks of the communicator running the schedule.

Engines interpret the steps: :class:`Send` posts a send of the payload and does not wait;
:class:`Recv` receives the payload and waits for it (later steps may forward it);
:class:`WaitAll` waits for every send posted so far. An engine waits for all sends at the end.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from functools import lru_cache


@dataclass(frozen=True, slots=True)
class Send:
    """Post a send of the payload to ``peer``; of bytes ``offset .. offset + nbytes`` of a
    buffer payload when ``nbytes >= 0`` (a segment of a pipelined algorithm); of the listed
    per-rank ``blocks`` in block collectives (gather, scatter, allgather, alltoall)."""

    peer: int
    offset: int = 0
    nbytes: int = -1
    blocks: tuple[int, ...] = ()


@dataclass(frozen=True, slots=True)
class Recv:
    """Receive the payload (or the segment ``offset, nbytes`` of a buffer payload) from
    ``peer`` and wait for it."""

    peer: int
    offset: int = 0
    nbytes: int = -1
    blocks: tuple[int, ...] = ()


@dataclass(frozen=True, slots=True)
class WaitAll:
    """Wait until every send posted so far has completed."""


Step = Send | Recv | WaitAll
Schedule = Iterator[Step]


@lru_cache(maxsize=1024)
def steps_of(algorithm: Callable[..., Iterable[Step]], *args: int) -> tuple[Step, ...]:
    """The steps of a schedule that depends only on its integer arguments, computed once.

    Schedules are pure functions of (rank, size, root, ...), so their step lists are
    cached; the engine iterates a tuple instead of resuming a generator per step.
    """
    return tuple(algorithm(*args))
