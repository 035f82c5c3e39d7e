"""Alltoall schedules. Block ``s * size + d`` is the item rank ``s`` sends to rank ``d``: rank
``s`` starts with ``s * size + d`` for every ``d`` and ends with ``s * size + rank`` for every
``s``."""

from __future__ import annotations

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


def _bruck_round(sender: int, size: int, bit: int) -> tuple[int, ...]:
    """The ids rank ``sender`` sends to ``sender + bit`` in the round of Bruck's alltoall
    that moves distance ``bit``, in increasing order. An item from ``s`` to ``d`` (distance
    ``D = (d - s) mod size``) moves in the rounds of the bits set in ``D``, lowest first, so
    before this round it is at ``s + (D mod bit)`` and moves now if ``D`` has ``bit`` set:
    the sender's items are, for each such ``D``, the one from ``s = sender - (D mod bit)``
    (O(size) per rank and round; no rank builds the others' moves)."""
    low = bit - 1
    ids = []
    for dist in range(size):
        if dist & bit:
            s = (sender - (dist & low)) % size
            ids.append(s * size + (s + dist) % size)
    ids.sort()
    return tuple(ids)


def bruck(rank: int, size: int) -> Schedule:
    """Bruck alltoall: in round k, send to ``rank + 2^k`` every item held whose remaining
    distance to its destination has bit k set; every item arrives after ceil(lg p) rounds::

        p 4, item 0 -> 3 (distance 3 = 0b11):  round 0: 0 -> 1,  round 1: 1 -> 3

    Cost: ceil(lg p) alpha + ceil(lg p) n beta / 2 (each round moves about half of the items,
    n = one rank's items). Any p; best for small items and many ranks.
    """
    bit = 1
    while bit < size:
        src = (rank - bit) % size
        yield Send((rank + bit) % size, blocks=_bruck_round(rank, size, bit))
        yield Recv(src, blocks=_bruck_round(src, size, bit))
        bit <<= 1
