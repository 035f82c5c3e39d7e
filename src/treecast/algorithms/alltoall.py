"""Alltoall schedules. Block ``s * size + d`` is the item rank ``s`` sends to rank ``d``: rank
``s`` starts with ``s * size + d`` for every ``d`` and ends with ``s * size + rank`` for every
``s``."""

from __future__ import annotations

from functools import lru_cache

from .schedule import Recv, Schedule, Send


def pairwise(rank: int, size: int) -> Schedule:
    """Pairwise-exchange alltoall: in step k, send my item for ``rank + k`` to it and receive
    from ``rank - k`` its item for me::

        p 4, step 1: 0->1 1->2 2->3 3->0   step 2: 0->2 1->3 2->0 3->1   step 3: 0->3 ...

    Cost: (p - 1)(alpha + n beta / p) (n = one rank's items). Any p; MPICH's choice for
    large items.
    """
    for k in range(1, size):
        dst, src = (rank + k) % size, (rank - k) % size
        yield Send(dst, blocks=(rank * size + dst,))
        yield Recv(src, blocks=(src * size + rank,))


@lru_cache(maxsize=64)
def _bruck_moves(size: int) -> tuple[tuple[tuple[int, ...], ...], ...]:
    """``moves[k][r]``: the ids rank ``r`` sends to ``r + 2^k`` in round ``k`` of Bruck's
    alltoall, found by moving every item along its route."""
    holder = {s * size + d: s for s in range(size) for d in range(size)}
    moves = []
    bit = 1
    while bit < size:
        out: list[list[int]] = [[] for _ in range(size)]
        for item, at in sorted(holder.items()):
            if ((item % size - at) % size) & bit:
                out[at].append(item)
                holder[item] = (at + bit) % size
        moves.append(tuple(tuple(ids) for ids in out))
        bit <<= 1
    return tuple(moves)


def bruck(rank: int, size: int) -> Schedule:
    """Bruck alltoall: in round k, send to ``rank + 2^k`` every item held whose remaining
    distance to its destination has bit k set; every item arrives after ceil(lg p) rounds::

        p 4, item 0 -> 3 (distance 3 = 0b11):  round 0: 0 -> 1,  round 1: 1 -> 3

    Cost: ceil(lg p) alpha + ceil(lg p) n beta / 2 (each round moves about half of the items,
    n = one rank's items). Any p; best for small items and many ranks.
    """
    moves = _bruck_moves(size)
    bit = 1
    for k in range(len(moves)):
        yield Send((rank + bit) % size, blocks=moves[k][rank])
        yield Recv((rank - bit) % size, blocks=moves[k][(rank - bit) % size])
        bit <<= 1
