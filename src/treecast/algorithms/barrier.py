"""Barrier schedules."""

from __future__ import annotations

from .schedule import Recv, Schedule, Send


def dissemination(rank: int, size: int) -> Schedule:
    """Dissemination barrier (Hensgen, Finkel, Manber): in round k, send to rank + 2^k and
    receive from rank - 2^k (mod p)::

        round 0: 0->1 1->2 2->3 3->0      round 1: 0->2 1->3 2->0 3->1

    Cost: ceil(lg p) alpha with zero-byte messages; any p. Each round's partner is
    distinct, so per-pair message order keeps the rounds apart.
    """
    dist = 1
    while dist < size:
        yield Send((rank + dist) % size)
        yield Recv((rank - dist) % size)
        dist <<= 1
