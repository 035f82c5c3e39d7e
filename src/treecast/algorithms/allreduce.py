"""Allreduce schedules. Block ids ``0 .. C-1`` are the vector cut into ``C`` contiguous
chunks (see ``schedule.py``); every rank starts with its own vector and ends with
``x0 op x1 op ... op x(p-1)`` in every chunk."""

from __future__ import annotations

from ..topology.rings import recursive_doubling as rd_plan
from ..topology.rings import ring_neighbors
from ..topology.trees import binomial_tree
from .reduce import binomial_reduce, fold_and_reduce_scatter, halving_ranges
from .schedule import LEFT, RIGHT, Recv, Schedule, Send


def recursive_doubling(rank: int, size: int) -> Schedule:
    """Recursive-doubling allreduce of the whole vector (one chunk), with MPICH's fold for a
    non power of two (odd rank ``2i+1 < 2 rem`` hands its vector to ``2i`` first and gets
    the result back last)::

        p 8:  round 0: 0 <-> 1, 2 <-> 3, ...   round 1: 0 <-> 2, 1 <-> 3, ...
              round 2: 0 <-> 4, 1 <-> 5, ...   (each exchanges and combines everything)

    Partners hold adjacent runs of ranks, combined on the side of the lower run, so any
    operator works. Cost: lg p (alpha + n beta + n gamma), plus 2 (alpha + n beta) for the
    fold. Any p, any operator, objects too.
    """
    plan = rd_plan(size, rank)
    whole = (0,)
    if not plan.active:
        assert plan.fold_partner is not None
        yield Send(plan.fold_partner, blocks=whole)
        yield Recv(plan.fold_partner, blocks=whole)
        return
    if plan.fold_partner is not None:
        yield Recv(plan.fold_partner, blocks=whole, reduce=RIGHT)
    for peer in plan.partners:
        yield Send(peer, blocks=whole)
        yield Recv(peer, blocks=whole, reduce=LEFT if peer < rank else RIGHT)
    if plan.fold_partner is not None:
        yield Send(plan.fold_partner, blocks=whole)


def ring(rank: int, size: int) -> Schedule:
    """Ring allreduce over ``p`` chunks: a ring reduce-scatter (step k: send chunk
    ``rank - k`` right, receive chunk ``rank - k - 1`` from the left and combine), after which
    rank ``r`` holds the reduced chunk ``r + 1``, then a ring allgather of the chunks::

        0 -> 1 -> 2 -> ... -> p-1 -> 0,  2 (p - 1) steps, one chunk per rank per step

    Chunk ``c`` is combined in the cyclic order c, c+1, ..., c-1, hence commutative operators
    only. Cost: 2 (p - 1) alpha + 2 (p - 1)/p n beta + (p - 1)/p n gamma. Any p; buffers.
    """
    left, right = ring_neighbors(size, rank)
    for k in range(size - 1):
        yield Send(right, blocks=((rank - k) % size,))
        yield Recv(left, blocks=((rank - k - 1) % size,), reduce=LEFT)
    for k in range(size - 1):
        yield Send(right, blocks=((rank + 1 - k) % size,))
        yield Recv(left, blocks=((rank - k) % size,))


def rabenseifner(rank: int, size: int) -> Schedule:
    """Rabenseifner allreduce over ``pof2`` chunks: reduce-scatter by recursive halving,
    then allgather by recursive doubling in the reverse order, with MPICH's fold of the
    extra ranks for a non power of two::

        p 4:  halving 1: 0 <-> 1, 2 <-> 3 (halves)    halving 2: 0 <-> 2, 1 <-> 3 (quarters)
              doubling 1: 0 <-> 2, 1 <-> 3 (quarters) doubling 2: 0 <-> 1, 2 <-> 3 (halves)

    The halving combines adjacent runs of ranks, so any operator works. Cost:
    2 lg p alpha + 2 (p - 1)/p n beta + (p - 1)/p n gamma, plus 2 (alpha + n beta) for the
    fold. Any p; buffers (pof2 chunks).
    """
    plan = rd_plan(size, rank)
    every = tuple(range(plan.pof2))
    yield from fold_and_reduce_scatter(rank, size)
    if not plan.active:
        assert plan.fold_partner is not None
        yield Recv(plan.fold_partner, blocks=every)
        return
    assert plan.new_rank is not None
    rounds = halving_ranges(plan.pof2, plan.new_rank)
    for i in reversed(range(len(rounds))):
        kept, given = rounds[i]
        yield Send(plan.partners[i], blocks=tuple(kept))
        yield Recv(plan.partners[i], blocks=tuple(given))
    if plan.fold_partner is not None:
        yield Send(plan.fold_partner, blocks=every)


def reduce_bcast(rank: int, size: int) -> Schedule:
    """Binomial reduce of the whole vector to rank 0 (in rank order), then binomial
    broadcast of the result::

        reduce: 1 -> 0, 3 -> 2, 2 -> 0, ...      bcast: 0 -> 4, 0 -> 2, 4 -> 6, 0 -> 1, ...

    Cost: 2 ceil(lg p)(alpha + n beta) + ceil(lg p) n gamma. Any p, any operator, objects too.
    """
    whole = (0,)
    yield from binomial_reduce(rank, size, 0, whole)
    tree = binomial_tree(size, 0)
    parent = tree.parents[rank]
    if parent is not None:
        yield Recv(parent, blocks=whole)
    for child in tree.children[rank]:
        yield Send(child, blocks=whole)
