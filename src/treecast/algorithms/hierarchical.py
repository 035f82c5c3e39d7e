"""Two-level schedules for communicators that span several nodes (MPICH's "SMP-aware"
collectives): one stage inside each node, one among the nodes' leaders.

Messages inside a node are cheap (shared memory), messages between nodes expensive, so
these schedules let only one rank per node, its *leader*, talk across nodes. The leader of a
node is its lowest rank, except on the root's node, whose leader is the root (no extra
hop). Each schedule takes the communicator's node layout as its last argument: ``nodes[r]``
is the node of rank ``r`` (any ints; nodes are numbered in order of first appearance, so
ranks may be interleaved and nodes uneven). Within a node, and among the leaders, the
patterns are the flat ones (binomial, dissemination, recursive doubling, Bruck), run over
the node's ranks in rank order or over the nodes in node order.

In the costs, ``k`` is the number of nodes, ``m`` the ranks of the largest node, and
``A``/``B`` the per-message and per-byte costs between nodes (``alpha``/``beta`` inside one).
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

from ..topology.rings import recursive_doubling as rd_plan
from ..topology.trees import binomial_tree
from .schedule import LEFT, RIGHT, Recv, Schedule, Send

WHOLE = (0,)
"""The one block of a whole-vector reduction."""


@dataclass(frozen=True)
class NodeLayout:
    """The nodes of a communicator, as the two-level schedules use them.

    Attributes:
        node: the node of each rank, renumbered ``0 .. k-1`` in order of first appearance.
        members: the ranks of each node, ascending.
        leaders: the leader of each node: its lowest rank, the root on the root's node.
        position: each rank's index in its node's ``members``.
    """

    node: tuple[int, ...]
    members: tuple[tuple[int, ...], ...]
    leaders: tuple[int, ...]
    position: tuple[int, ...]

    def node_tree(self, rank: int) -> tuple[int | None, tuple[int, ...]]:
        """``rank``'s parent (None for the leader) and children, as ranks, in the binomial
        tree over its node's ranks rooted at the node's leader."""
        j = self.node[rank]
        members = self.members[j]
        tree = binomial_tree(len(members), self.position[self.leaders[j]])
        me = self.position[rank]
        parent = tree.parents[me]
        return (
            None if parent is None else members[parent],
            tuple(members[c] for c in tree.children[me]),
        )

    def node_subtree(self, rank: int) -> tuple[int, ...]:
        """The ranks, ascending, of ``rank``'s subtree in its node's tree
        (:meth:`node_tree`)."""
        j = self.node[rank]
        members = self.members[j]
        m, top = len(members), self.position[self.leaders[j]]
        vr = (self.position[rank] - top) % m
        end = m if vr == 0 else min(vr + (vr & -vr), m)
        return tuple(sorted(members[(v + top) % m] for v in range(vr, end)))

    def leader_subtree(self, j: int, root_node: int) -> tuple[int, ...]:
        """The ranks, ascending, of every node in node ``j``'s subtree of the binomial tree
        over the nodes rooted at ``root_node``."""
        k = len(self.members)
        vr = (j - root_node) % k
        end = k if vr == 0 else min(vr + (vr & -vr), k)
        return tuple(sorted(r for v in range(vr, end) for r in self.members[(v + root_node) % k]))


_COUNTED: dict[int, tuple[tuple[int, ...], int]] = {}
"""id(layout) -> (layout, its node count): a communicator passes the same layout tuple to
every call, and counting (or hashing) it costs O(p) per collective. The entry holds the
tuple, so its id cannot be reused while cached."""


class Layout(tuple[int, ...]):
    """A node layout (the node of each rank) whose hash is computed once: cached steps
    are looked up by their arguments on every call, and hashing a plain tuple of p ints
    costs O(p) each time (16 us at p = 1024). Equality needs nothing of its own: cache keys
    compare their items by identity first."""

    def __hash__(self) -> int:
        cached: int | None = self.__dict__.get("hash")
        if cached is None:
            cached = self.__dict__["hash"] = tuple.__hash__(self)
        return cached


def node_count(nodes: tuple[int, ...] | None) -> int:
    """How many nodes a layout spans (1 for None: a communicator on one node)."""
    if nodes is None:
        return 1
    hit = _COUNTED.get(id(nodes))
    if hit is not None and hit[0] is nodes:
        return hit[1]
    if len(_COUNTED) >= 64:
        _COUNTED.clear()
    count = _COUNTED[id(nodes)] = (nodes, len(set(nodes)))
    return count[1]


@lru_cache(maxsize=256)
def node_layout(size: int, root: int, nodes: tuple[int, ...]) -> NodeLayout:
    """The :class:`NodeLayout` of ``size`` ranks on ``nodes`` with ``root``'s node led by
    ``root`` (rootless collectives pass 0: every leader is its node's lowest rank).

    Raises:
        ValueError: ``nodes`` is not ``size`` ints >= 0, or ``root`` is outside
            ``[0, size)``.
    """
    if (
        not isinstance(nodes, tuple)
        or len(nodes) != size
        or not all(type(n) is int and n >= 0 for n in nodes)
    ):
        raise ValueError(
            f"two-level schedule: nodes must be a tuple of {size} ints >= 0 (the node of "
            f"each rank), got {nodes!r}"
        )
    if not 0 <= root < size:
        raise ValueError(f"two-level schedule: root must be in [0, {size - 1}], got {root}")
    number: dict[int, int] = {}
    node = tuple(number.setdefault(n, len(number)) for n in nodes)
    members: list[list[int]] = [[] for _ in number]
    position = []
    for r, j in enumerate(node):
        position.append(len(members[j]))
        members[j].append(r)
    leaders = [m[0] for m in members]
    leaders[node[root]] = root
    return NodeLayout(node, tuple(map(tuple, members)), tuple(leaders), tuple(position))


def _layout_for(rank: int, size: int, root: int, nodes: tuple[int, ...]) -> NodeLayout:
    """:func:`node_layout`, after checking ``rank``.

    Raises:
        ValueError: ``rank`` outside ``[0, size)``; as :func:`node_layout`.
    """
    if not 0 <= rank < size:
        raise ValueError(f"two-level schedule: rank must be in [0, {size - 1}], got {rank}")
    return node_layout(size, root, nodes)


def bcast(rank: int, size: int, root: int, nodes: tuple[int, ...]) -> Schedule:
    """Two-level broadcast of the whole payload: binomial tree among the leaders from the
    root, then binomial tree inside each node from its leader::

        nodes (0, 0, 1, 1, 2), root 0 (leaders 0, 2, 4):
            between nodes:  0 -> 4, 0 -> 2          inside nodes:  0 -> 1, 2 -> 3

    A leader serves the other nodes before its own. Exactly one message enters each node
    but the root's: k - 1 messages between nodes.
    Cost: ceil(lg k)(A + n B) + ceil(lg m)(alpha + n beta). Any layout, any root.

    Raises:
        ValueError: ``nodes`` is not ``size`` ints >= 0, or ``rank`` or ``root`` is
            outside ``[0, size)``.
    """
    lay = _layout_for(rank, size, root, nodes)
    j = lay.node[rank]
    if rank == lay.leaders[j]:
        tree = binomial_tree(len(lay.members), lay.node[root])
        up = tree.parents[j]
        if up is not None:
            yield Recv(lay.leaders[up])
        for child in tree.children[j]:
            yield Send(lay.leaders[child])
    parent, children = lay.node_tree(rank)
    if parent is not None:
        yield Recv(parent)
    for child in children:
        yield Send(child)


def _reduce_in_node(lay: NodeLayout, rank: int) -> Schedule:
    """Binomial reduce of the whole vector inside ``rank``'s node to its leader."""
    parent, children = lay.node_tree(rank)
    for child in reversed(children):
        yield Recv(child, blocks=WHOLE, reduce=RIGHT)
    if parent is not None:
        yield Send(parent, blocks=WHOLE)


def _bcast_in_node(lay: NodeLayout, rank: int) -> Schedule:
    """Binomial broadcast of the whole vector inside ``rank``'s node from its leader."""
    parent, children = lay.node_tree(rank)
    if parent is not None:
        yield Recv(parent, blocks=WHOLE)
    for child in children:
        yield Send(child, blocks=WHOLE)


def reduce(rank: int, size: int, root: int, nodes: tuple[int, ...]) -> Schedule:
    """Two-level reduce of the whole vector: binomial reduce inside each node to its leader,
    then binomial reduce among the leaders to the root::

        nodes (0, 0, 1, 1, 2), root 0 (leaders 0, 2, 4):
            inside nodes:  1 -> 0, 3 -> 2          between nodes:  2 -> 0, 4 -> 0

    k - 1 messages between nodes. Operands meet in tree order, not rank order: commutative
    operators only.
    Cost: ceil(lg m)(alpha + n beta + n gamma) + ceil(lg k)(A + n B + n gamma). Any layout,
    any root.

    Raises:
        ValueError: ``nodes`` is not ``size`` ints >= 0, or ``rank`` or ``root`` is
            outside ``[0, size)``.
    """
    lay = _layout_for(rank, size, root, nodes)
    yield from _reduce_in_node(lay, rank)
    j = lay.node[rank]
    if rank != lay.leaders[j]:
        return
    tree = binomial_tree(len(lay.members), lay.node[root])
    for child in reversed(tree.children[j]):
        yield Recv(lay.leaders[child], blocks=WHOLE, reduce=RIGHT)
    up = tree.parents[j]
    if up is not None:
        yield Send(lay.leaders[up], blocks=WHOLE)


def allreduce(rank: int, size: int, nodes: tuple[int, ...]) -> Schedule:
    """Two-level allreduce of the whole vector: binomial reduce inside each node to its
    leader (its lowest rank), recursive-doubling allreduce among the leaders (MPICH's fold
    for k not a power of two), binomial broadcast inside each node from its leader::

        nodes (0, 0, 1, 1), leaders 0, 2:
            1 -> 0, 3 -> 2;   0 <-> 2;   0 -> 1, 2 -> 3

    About k lg k messages between nodes instead of about p lg p. Operands meet in tree
    order: commutative operators only.
    Cost: 2 ceil(lg m)(alpha + n beta) + ceil(lg m) n gamma + lg k (A + n B + n gamma)
    (+ 2 (A + n B) for the fold). Any layout.

    Raises:
        ValueError: ``nodes`` is not ``size`` ints >= 0, or ``rank`` is outside
            ``[0, size)``.
    """
    lay = _layout_for(rank, size, 0, nodes)
    yield from _reduce_in_node(lay, rank)
    j = lay.node[rank]
    if rank == lay.leaders[j]:
        plan = rd_plan(len(lay.members), j)
        fold = None if plan.fold_partner is None else lay.leaders[plan.fold_partner]
        if not plan.active:
            assert fold is not None
            yield Send(fold, blocks=WHOLE)
            yield Recv(fold, blocks=WHOLE)
        else:
            if fold is not None:
                yield Recv(fold, blocks=WHOLE, reduce=RIGHT)
            for partner in plan.partners:
                peer = lay.leaders[partner]
                yield Send(peer, blocks=WHOLE)
                yield Recv(peer, blocks=WHOLE, reduce=LEFT if partner < j else RIGHT)
            if fold is not None:
                yield Send(fold, blocks=WHOLE)
    yield from _bcast_in_node(lay, rank)


def barrier(rank: int, size: int, nodes: tuple[int, ...]) -> Schedule:
    """Two-level barrier: binomial fan-in inside each node to its leader (its lowest rank),
    dissemination among the leaders, binomial fan-out inside each node::

        nodes (0, 0, 1, 1, 2), leaders 0, 2, 4:
            1 -> 0, 3 -> 2;   round 0: 0 -> 2 -> 4 -> 0;  round 1: 0 -> 4, 2 -> 0, 4 -> 2;
            0 -> 1, 2 -> 3

    k ceil(lg k) messages between nodes instead of p ceil(lg p).
    Cost: 2 ceil(lg m) alpha + ceil(lg k) A, zero-byte messages. Any layout.

    Raises:
        ValueError: ``nodes`` is not ``size`` ints >= 0, or ``rank`` is outside
            ``[0, size)``.
    """
    lay = _layout_for(rank, size, 0, nodes)
    parent, children = lay.node_tree(rank)
    for child in reversed(children):
        yield Recv(child)
    if parent is not None:
        yield Send(parent)
        yield Recv(parent)
    else:
        k, j = len(lay.members), lay.node[rank]
        dist = 1
        while dist < k:
            yield Send(lay.leaders[(j + dist) % k])
            yield Recv(lay.leaders[(j - dist) % k])
            dist <<= 1
    for child in children:
        yield Send(child)


def _gather_in_node(lay: NodeLayout, rank: int) -> Schedule:
    """Binomial gather inside ``rank``'s node to its leader, which ends holding every block
    of the node."""
    parent, children = lay.node_tree(rank)
    for child in reversed(children):
        yield Recv(child, blocks=lay.node_subtree(child))
    if parent is not None:
        yield Send(parent, blocks=lay.node_subtree(rank))


def gather(rank: int, size: int, root: int, nodes: tuple[int, ...]) -> Schedule:
    """Two-level gather (block ``b`` is rank ``b``'s item): binomial gather inside each
    node to its leader, then binomial gather among the leaders to the root, each leader
    sending the blocks of every node in its subtree in one message::

        nodes (0, 1, 0, 1, 2), root 0 (leaders 0, 1, 4):
            inside nodes:  2 -> 0 {2}, 3 -> 1 {3}
            between nodes: 1 -> 0 {1, 3}, 4 -> 0 {4}

    k - 1 messages between nodes.
    Cost: about ceil(lg m) alpha + ceil(lg k) A + n_node beta + (k - 1)/k n B (``n_node``:
    one node's blocks). Any layout, any root.

    Raises:
        ValueError: ``nodes`` is not ``size`` ints >= 0, or ``rank`` or ``root`` is
            outside ``[0, size)``.
    """
    lay = _layout_for(rank, size, root, nodes)
    yield from _gather_in_node(lay, rank)
    j = lay.node[rank]
    if rank != lay.leaders[j]:
        return
    top = lay.node[root]
    tree = binomial_tree(len(lay.members), top)
    for child in reversed(tree.children[j]):
        yield Recv(lay.leaders[child], blocks=lay.leader_subtree(child, top))
    up = tree.parents[j]
    if up is not None:
        yield Send(lay.leaders[up], blocks=lay.leader_subtree(j, top))


def allgather(rank: int, size: int, nodes: tuple[int, ...]) -> Schedule:
    """Two-level allgather (block ``b`` is rank ``b``'s item): binomial gather inside each
    node to its leader (its lowest rank), Bruck allgather of whole nodes' block sets among
    the leaders, then binomial broadcast inside each node, each rank receiving every block
    its subtree lacks::

        nodes (0, 0, 1, 1, 2), leaders 0, 2, 4:
            1 -> 0 {1}, 3 -> 2 {3};
            round 0: 0 -> 4 {0, 1}, 2 -> 0 {2, 3}, 4 -> 2 {4};
            round 1: 0 -> 2 {0, 1}, 2 -> 4 {2, 3}, 4 -> 0 {4};
            0 -> 1 {2, 3, 4}, 2 -> 3 {0, 1, 4}

    k ceil(lg k) messages between nodes instead of about p ceil(lg p).
    Cost: 2 ceil(lg m) alpha + ceil(lg k) A + (k - 1)/k n B + about 2 n beta. Any layout.

    Raises:
        ValueError: ``nodes`` is not ``size`` ints >= 0, or ``rank`` is outside
            ``[0, size)``.
    """
    lay = _layout_for(rank, size, 0, nodes)
    yield from _gather_in_node(lay, rank)
    j, k = lay.node[rank], len(lay.members)
    if rank == lay.leaders[j]:

        def sets(first: int, count: int) -> tuple[int, ...]:
            return tuple(b for i in range(count) for b in lay.members[(first + i) % k])

        have = 1
        while have < k:
            count = min(have, k - have)
            yield Send(lay.leaders[(j - have) % k], blocks=sets(j, count))
            yield Recv(lay.leaders[(j + have) % k], blocks=sets(j + have, count))
            have += count
    parent, children = lay.node_tree(rank)
    if parent is not None:
        mine = set(lay.node_subtree(rank))
        yield Recv(parent, blocks=tuple(b for b in range(size) if b not in mine))
    for child in children:
        theirs = set(lay.node_subtree(child))
        yield Send(child, blocks=tuple(b for b in range(size) if b not in theirs))
