"""Reduce schedules. Block ids ``0 .. C-1`` are the vector cut into ``C`` contiguous chunks
(``C`` is the algorithm's chunk count, see ``schedule.py``); every rank starts holding all
of its own vector, and the root ends holding ``x0 op x1 op ... op x(p-1)`` in every chunk.
"""

from __future__ import annotations

from collections.abc import Sequence

from ..topology.rings import recursive_doubling
from ..topology.trees import binomial_tree
from .schedule import LEFT, RIGHT, Recv, Schedule, Send

SEGMENT = 64 * 1024
"""Bytes per chunk of the pipelined chain reduce."""


def chain_chunks(nbytes: int) -> int:
    """Chunks of the pipelined chain reduce: ``max(1, ceil(nbytes / SEGMENT))`` (1 for
    objects, whose ``nbytes`` is -1)."""
    return max(1, -(-nbytes // SEGMENT))


def binomial_reduce(rank: int, size: int, root: int, ids: Sequence[int]) -> Schedule:
    """Binomial-tree reduction of blocks ``ids`` towards ``root``: receive and combine each
    child's subtree (smallest first, ``local = local op incoming``), then send to the
    parent. With ``root == 0`` every subtree is a run of consecutive ranks above its top,
    so operands combine in rank order."""
    tree = binomial_tree(size, root)
    ids = tuple(ids)
    for child in reversed(tree.children[rank]):
        yield Recv(child, blocks=ids, reduce=RIGHT)
    parent = tree.parents[rank]
    if parent is not None:
        yield Send(parent, blocks=ids)


def binomial(rank: int, size: int, root: int, commutative: int = 1) -> Schedule:
    """Binomial-tree reduce of the whole vector (one chunk)::

        p 8, root 0:   1 -> 0;  3 -> 2;  5 -> 4;  7 -> 6;  2 -> 0;  6 -> 4;  4 -> 0

    A commutative operator reduces along the tree rooted at ``root``; a non-commutative one
    along the tree rooted at rank 0 (whose subtrees are runs of consecutive ranks), and rank
    0 then sends the result to the root: one extra message when ``root != 0``.
    Cost: ceil(lg p)(alpha + n beta + n gamma). Any p, any root, any operator, objects too.
    """
    if commutative or root == 0:
        yield from binomial_reduce(rank, size, root, (0,))
        return
    yield from binomial_reduce(rank, size, 0, (0,))
    if rank == 0:
        yield Send(root, blocks=(0,))
    elif rank == root:
        yield Recv(0, blocks=(0,))


def pipelined_chain(rank: int, size: int, root: int, chunks: int) -> Schedule:
    """Pipelined chain reduce in ``chunks`` chunks: ranks below the root pass partial results
    up the chain ``0 -> 1 -> ... -> root``, ranks above it down the chain
    ``p-1 -> p-2 -> ... -> root``; chunk ``i + 1`` follows chunk ``i`` one hop behind::

        p 6, root 2:   0 -> 1 -> 2 <- 3 <- 4 <- 5     (every chunk, pipelined)

    Each rank combines its own operand between the lower and the higher partial results, so
    operands meet in rank order. Cost: (max(root, p - 1 - root) - 1 + C)(alpha +
    n beta / C + n gamma / C) for C chunks; near n (beta + gamma) for large n.
    Any p, any root, any operator (C is 1 for objects).
    """
    below = rank - 1 if 0 < rank <= root else None
    above = rank + 1 if root <= rank < size - 1 else None
    toward = None if rank == root else (rank + 1 if rank < root else rank - 1)
    for i in range(chunks):
        if below is not None:
            yield Recv(below, blocks=(i,), reduce=LEFT)
        if above is not None:
            yield Recv(above, blocks=(i,), reduce=RIGHT)
        if toward is not None:
            yield Send(toward, blocks=(i,))


def halving_ranges(pof2: int, new_rank: int) -> list[tuple[range, range]]:
    """Recursive halving over chunks ``0 .. pof2-1`` with distance doubling: in round ``i``
    a rank keeps the half of its range picked by bit ``i`` of its rank among the ``pof2``
    active ranks and gives the other half to ``new_rank XOR 2^i``. Returns ``(kept, given)``
    per round. Partners in round ``i`` hold partial results over adjacent runs of ``2^i``
    ranks, which keeps rank order; a rank ends with chunk bit-reverse(``new_rank``)."""
    lo, hi = 0, pof2
    out = []
    mask = 1
    while mask < pof2:
        mid = (lo + hi) // 2
        if new_rank & mask:
            kept, given = range(mid, hi), range(lo, mid)
        else:
            kept, given = range(lo, mid), range(mid, hi)
        out.append((kept, given))
        lo, hi = kept.start, kept.stop
        mask <<= 1
    return out


def fold_and_reduce_scatter(rank: int, size: int) -> Schedule:
    """Rabenseifner's first half over ``pof2`` chunks: the extra ranks of a non power of
    two fold in (odd rank ``2i+1 < 2 rem`` sends everything to ``2i``, combined on the
    right), then recursive halving among the ``pof2`` active ranks (:func:`halving_ranges`)."""
    plan = recursive_doubling(size, rank)
    every = tuple(range(plan.pof2))
    if not plan.active:
        assert plan.fold_partner is not None
        yield Send(plan.fold_partner, blocks=every)
        return
    if plan.fold_partner is not None:
        yield Recv(plan.fold_partner, blocks=every, reduce=RIGHT)
    assert plan.new_rank is not None
    for (kept, given), peer in zip(
        halving_ranges(plan.pof2, plan.new_rank), plan.partners, strict=True
    ):
        yield Send(peer, blocks=tuple(given))
        yield Recv(peer, blocks=tuple(kept), reduce=LEFT if peer < rank else RIGHT)


def rabenseifner(rank: int, size: int, root: int) -> Schedule:
    """Rabenseifner reduce: reduce-scatter by recursive halving over ``pof2`` chunks (after
    folding the extra ranks of a non power of two in, as MPICH does), then a binomial gather
    of the reduced chunks to the root::

        p 4, chunks c0..c3:  halving 1: 0 <-> 1, 2 <-> 3  (0, 2 keep c0-c1; 1, 3 keep c2-c3)
                             halving 2: 0 <-> 2, 1 <-> 3  (0: c0, 2: c1, 1: c2, 3: c3)
                             gather:    2 -> 0 {c1}, 3 -> 1 {c3};  1 -> 0 {c2, c3}

    Partners always combine adjacent runs of ranks, so any operator works. An odd folded
    rank that is the root gets the result from its even neighbour at the end.
    Cost: 2 lg p alpha + 2 (p - 1)/p n beta + (p - 1)/p n gamma, plus n (beta + gamma) for
    the fold when p is not a power of two. Any p, any root; buffers (pof2 chunks).
    """
    plan = recursive_doubling(size, rank)
    pof2 = plan.pof2
    rem = size - pof2
    every = tuple(range(pof2))
    yield from fold_and_reduce_scatter(rank, size)
    gather_root = root - 1 if root < 2 * rem and root % 2 else root
    if plan.active:
        assert plan.new_rank is not None
        new_root = gather_root // 2 if gather_root < 2 * rem else gather_root - rem
        rel = plan.new_rank ^ new_root
        rounds = halving_ranges(pof2, plan.new_rank)
        for i in reversed(range(len(rounds))):
            kept, given = rounds[i]
            if rel & (1 << i):
                yield Send(plan.partners[i], blocks=tuple(kept))
                break
            yield Recv(plan.partners[i], blocks=tuple(given))
    if gather_root != root:
        if rank == gather_root:
            yield Send(root, blocks=every)
        elif rank == root:
            yield Recv(gather_root, blocks=every)
