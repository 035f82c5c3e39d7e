"""Reduce_scatter and reduce_scatter_block schedules. Block ``b`` is the segment whose
reduction rank ``b`` receives; every rank starts with all ``p`` segments of its vector and
rank ``b`` ends with ``x0[b] op x1[b] op ... op x(p-1)[b]`` in block ``b``."""

from __future__ import annotations

from .blocks import binomial_scatter
from .reduce import binomial_reduce
from .schedule import LEFT, RIGHT, Recv, Schedule, Send


def pairwise(rank: int, size: int) -> Schedule:
    """Pairwise-exchange reduce-scatter: in step k, send my copy of block ``rank + k`` to
    that rank and combine block ``rank`` received from ``rank - k``::

        p 4, step 1: 0->1 1->2 2->3 3->0   step 2: 0->2 1->3 ...   step 3: 0->3 ...

    Operands meet in the order r, r-1, r-2, ... (cyclic), hence commutative operators only.
    Cost: (p - 1) alpha + (p - 1)/p n (beta + gamma). Any p; MPICH's long-message choice.
    """
    for k in range(1, size):
        dst, src = (rank + k) % size, (rank - k) % size
        yield Send(dst, blocks=(dst,))
        yield Recv(src, blocks=(rank,), reduce=LEFT if src < rank else RIGHT)


def recursive_halving(rank: int, size: int) -> Schedule:
    """Recursive-halving reduce-scatter: in round k (distance ``p / 2^(k+1)``), exchange
    with ``rank XOR distance`` the half of the held run of blocks that the partner keeps::

        p 8:  0 <-> 4: 0 keeps blocks 0-3;  0 <-> 2: keeps 0-1;  0 <-> 1: keeps 0

    Partners hold partial results over ranks far apart, hence commutative operators only.
    Cost: lg p alpha + (p - 1)/p n (beta + gamma). Restriction: p a power of two.

    Raises:
        ValueError: ``size`` is not a power of two.
    """
    if size & (size - 1):
        raise ValueError(f"recursive_halving needs a power-of-two size, got {size}")
    lo, hi = 0, size
    mask = size >> 1
    while mask:
        peer = rank ^ mask
        mid = (lo + hi) // 2
        if rank & mask:
            kept, given = range(mid, hi), range(lo, mid)
        else:
            kept, given = range(lo, mid), range(mid, hi)
        yield Send(peer, blocks=tuple(given))
        yield Recv(peer, blocks=tuple(kept), reduce=LEFT if peer < rank else RIGHT)
        lo, hi = kept.start, kept.stop
        mask >>= 1


def reduce_scatter(rank: int, size: int) -> Schedule:
    """Binomial reduce of every block to rank 0 (in rank order), then binomial scatter of
    block ``b`` to rank ``b``::

        reduce: 1 -> 0, 3 -> 2, 2 -> 0, ... (all blocks)
        scatter: 0 -> 4 {4..7}, 0 -> 2 {2,3}, 4 -> 6 {6,7}, 0 -> 1 {1}, ...

    Cost: ceil(lg p)(alpha + n beta + n gamma) + ceil(lg p) alpha + (p - 1)/p n beta.
    Any p, any operator (MPICH's choice for non-commutative ones).
    """
    yield from binomial_reduce(rank, size, 0, range(size))
    yield from binomial_scatter(rank, size, 0)
