"""Allgather schedules. Block ``b`` is rank ``b``'s item; every rank ends holding all."""

from __future__ import annotations

from . import blocks
from .schedule import Recv, Schedule, Send


def recursive_doubling(rank: int, size: int) -> Schedule:
    """Recursive-doubling allgather: in round k, exchange everything held (an aligned run
    of 2^k blocks) with ``rank XOR 2^k``::

        p 8:  round 0: 0 <-> 1 {0}|{1}   round 1: 0 <-> 2 {0,1}|{2,3}
              round 2: 0 <-> 4 {0..3}|{4..7}

    Cost: lg p alpha + (p - 1)/p n beta. Restriction: p a power of two.

    Raises:
        ValueError: ``size`` is not a power of two.
    """
    if size & (size - 1):
        raise ValueError(f"recursive_doubling allgather needs a power-of-two size, got {size}")
    mask = 1
    while mask < size:
        peer = rank ^ mask
        mine, theirs = rank & ~(mask - 1), peer & ~(mask - 1)
        yield Send(peer, blocks=tuple(range(mine, mine + mask)))
        yield Recv(peer, blocks=tuple(range(theirs, theirs + mask)))
        mask <<= 1


def bruck(rank: int, size: int) -> Schedule:
    """Bruck allgather: after round k a rank holds the 2^k blocks starting at its own; it
    sends them to ``rank - 2^k`` and receives as many from ``rank + 2^k``::

        p 5, rank 0:  send {0} -> 4, recv {1} <- 1;  send {0,1} -> 3, recv {2,3} <- 2;
                      send {0} -> 1, recv {4} <- 4

    Cost: ceil(lg p) alpha + (p - 1)/p n beta. Any p; best for small blocks.
    """
    return blocks.bruck_allgather(rank, size)


def ring(rank: int, size: int) -> Schedule:
    """Ring allgather: in step k send block ``rank - k`` right, receive ``rank - k - 1`` from
    the left::

        0 -> 1 -> 2 -> ... -> p-1 -> 0, p - 1 steps of one block each

    Cost: (p - 1) alpha + (p - 1)/p n beta. Any p; best for large blocks.
    """
    return blocks.ring_allgather(rank, size)
