"""Schedules of the block collectives: every rank owns one block (its item), and the
schedule moves sets of blocks. Block ``b`` is rank ``b``'s item."""

from __future__ import annotations

from ..topology.rings import ring_neighbors
from ..topology.trees import binomial_tree
from .schedule import Recv, Schedule, Send


def _subtree(size: int, root: int, rank: int) -> tuple[int, ...]:
    """Ranks in ``rank``'s subtree of the binomial tree: a contiguous range of relative ranks."""
    vr = (rank - root) % size
    end = size if vr == 0 else min(vr + (vr & -vr), size)
    return tuple((v + root) % size for v in range(vr, end))


def binomial_gather(rank: int, size: int, root: int) -> Schedule:
    """Binomial gather: each rank receives its children's subtrees, then sends its own
    subtree's blocks to its parent::

        size 4, root 0:  3 -> 2 (block 3);  2 -> 0 (blocks 2, 3);  1 -> 0 (block 1)

    Cost: lg p alpha + (p - 1)/p n beta (n = all blocks). Any p.
    """
    tree = binomial_tree(size, root)
    for child in reversed(tree.children[rank]):
        yield Recv(child, blocks=_subtree(size, root, child))
    parent = tree.parents[rank]
    if parent is not None:
        yield Send(parent, blocks=_subtree(size, root, rank))


def binomial_scatter(rank: int, size: int, root: int) -> Schedule:
    """Binomial scatter, the gather reversed: receive your subtree's blocks from the parent,
    pass each child its subtree's blocks. Cost: lg p alpha + (p - 1)/p n beta. Any p."""
    tree = binomial_tree(size, root)
    parent = tree.parents[rank]
    if parent is not None:
        yield Recv(parent, blocks=_subtree(size, root, rank))
    for child in tree.children[rank]:
        yield Send(child, blocks=_subtree(size, root, child))


def ring_allgather(rank: int, size: int) -> Schedule:
    """Ring allgather: in step k, send block ``rank - k`` right and receive block
    ``rank - k - 1`` from the left::

        0 -> 1 -> 2 -> 3 -> 0, p - 1 steps, each moving one block per rank

    Cost: (p - 1) alpha + (p - 1)/p n beta. Any p; best for large blocks.
    """
    left, right = ring_neighbors(size, rank)
    for k in range(size - 1):
        yield Send(right, blocks=((rank - k) % size,))
        yield Recv(left, blocks=((rank - k - 1) % size,))


def bruck_allgather(rank: int, size: int) -> Schedule:
    """Bruck allgather: after round k a rank holds the ``2^k`` blocks that start at its own;
    in each round it sends all it holds to ``rank - 2^k`` and receives as many from
    ``rank + 2^k`` (the last round only what is missing)::

        p = 5, rank 0:  round 0: send {0} -> 4, recv {1} <- 1
                        round 1: send {0,1} -> 3, recv {2,3} <- 2
                        round 2: send {0} -> 1, recv {4} <- 4

    Cost: ceil(lg p) alpha + (p - 1)/p n beta. Any p; best for small blocks.
    """
    have = 1
    while have < size:
        count = min(have, size - have)
        yield Send((rank - have) % size, blocks=tuple((rank + i) % size for i in range(count)))
        yield Recv(
            (rank + have) % size, blocks=tuple((rank + have + i) % size for i in range(count))
        )
        have += count
