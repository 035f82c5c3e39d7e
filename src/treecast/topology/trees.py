"""Communication trees as pure functions.

A :class:`Tree` gives every rank its parent (``None`` for the root) and its children in
the order they should be served (largest subtree first, so the deepest branch starts
earliest).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from functools import lru_cache


@dataclass(frozen=True)
class Tree:
    """A rooted spanning tree over ranks ``0..size-1``."""

    size: int
    root: int
    parents: tuple[int | None, ...]
    children: tuple[tuple[int, ...], ...]

    def depth(self) -> int:
        """Number of edges on the longest root-to-leaf path."""
        best = 0
        for rank in range(self.size):
            d = 0
            p = self.parents[rank]
            while p is not None:
                d += 1
                p = self.parents[p]
            best = max(best, d)
        return best

    def receive_steps(self) -> tuple[int, ...]:
        """The step at which each rank receives (0 for the root) when every rank sends one
        message at a time, to its children in order, from the step after it received: the
        edge into rank ``c`` is its parent's send number ``receive_steps()[c]``, and edges
        with equal numbers are sent at once. The largest is a broadcast's round count::

            binomial, size 8, root 0:   0 -> 4 (1), 2 (2), 1 (3);  4 -> 6 (2), 5 (3);
                                        2 -> 3 (3);  6 -> 7 (3)
        """
        steps = [0] * self.size
        todo = [self.root]
        while todo:
            rank = todo.pop()
            for i, child in enumerate(self.children[rank]):
                steps[child] = steps[rank] + i + 1
                todo.append(child)
        return tuple(steps)

    def render(self, label: Callable[[int], str] | None = None) -> str:
        """ASCII picture of the tree, one rank per line, children indented below parents
        in the order they are sent to; ``label(rank)``, if given, follows each rank."""
        lines: list[str] = []

        def walk(rank: int, prefix: str, last: bool, top: bool) -> None:
            tail = f" {label(rank)}" if label is not None else ""
            lines.append(f"{prefix}{'' if top else ('`-- ' if last else '|-- ')}{rank}{tail}")
            kids = self.children[rank]
            for i, child in enumerate(kids):
                walk(
                    child,
                    prefix + ("" if top else ("    " if last else "|   ")),
                    i == len(kids) - 1,
                    False,
                )

        walk(self.root, "", True, True)
        return "\n".join(lines)


def _check(size: int, root: int) -> None:
    if size < 1:
        raise ValueError(f"size must be >= 1, got {size}")
    if not 0 <= root < size:
        raise ValueError(f"root must be in [0, {size - 1}], got {root}")


@lru_cache(maxsize=256)
def binomial_tree(size: int, root: int = 0) -> Tree:
    """The binomial tree (MPICH's and Open MPI's small-message broadcast tree)::

        size 8, root 0:   0
                          |-- 4
                          |   |-- 6
                          |   |   `-- 7
                          |   `-- 5
                          |-- 2
                          |   `-- 3
                          `-- 1

    In ranks relative to the root, rank ``r``'s parent is ``r`` with its lowest set bit
    cleared, and its children are ``r + 2^j`` for every ``2^j`` below that bit. Depth is
    ``floor(lg p)``; the root has ``ceil(lg p)`` children, and a broadcast takes
    ``ceil(lg p)`` rounds.

    Raises:
        ValueError: ``size < 1`` or ``root`` outside ``[0, size)``.
    """
    _check(size, root)
    parents: list[int | None] = [None] * size
    children: list[tuple[int, ...]] = [()] * size
    for vr in range(size):
        rank = (vr + root) % size
        low = vr & -vr if vr else 1 << max(size - 1, 0).bit_length()
        if vr:
            parents[rank] = ((vr - low) + root) % size
        kids = []
        mask = low >> 1
        while mask:
            if vr + mask < size:
                kids.append((vr + mask + root) % size)
            mask >>= 1
        children[rank] = tuple(kids)
    return Tree(size, root, tuple(parents), tuple(children))


def _from_relative(
    size: int, root: int, parent_of: list[int | None], kids_of: list[list[int]]
) -> Tree:
    """Build a Tree from parents/children given in ranks relative to the root."""
    parents: list[int | None] = [None] * size
    children: list[tuple[int, ...]] = [()] * size
    for vr in range(size):
        rank = (vr + root) % size
        p = parent_of[vr]
        parents[rank] = None if p is None else (p + root) % size
        children[rank] = tuple((c + root) % size for c in kids_of[vr])
    return Tree(size, root, tuple(parents), tuple(children))


@lru_cache(maxsize=256)
def knomial_tree(size: int, root: int = 0, k: int = 4) -> Tree:
    """The k-nomial tree (radix ``k``; ``k = 2`` is the binomial tree; Open MPI uses 4)::

        size 9, k 3, root 0:   0 -> 3, 6, 1, 2;  3 -> 4, 5;  6 -> 7, 8

    In base ``k``, a relative rank's parent clears its lowest non-zero digit; its children
    set one digit below that one. Depth: the most non-zero base-k digits of any relative
    rank, at most ``ceil(log_k p)``; the root sends ``(k - 1)`` messages per level.

    Raises:
        ValueError: ``size < 1``, ``root`` outside ``[0, size)`` or ``k < 2``.
    """
    _check(size, root)
    if k < 2:
        raise ValueError(f"k must be >= 2, got {k}")
    parent_of: list[int | None] = [None] * size
    kids_of: list[list[int]] = [[] for _ in range(size)]
    top = 1
    while top < size:
        top *= k
    for vr in range(size):
        low = top  # weight of the lowest non-zero digit (top for the root)
        w = 1
        while w < top and vr:
            if (vr // w) % k:
                low = w
                break
            w *= k
        if vr:
            parent_of[vr] = vr - ((vr // low) % k) * low
        w = low // k
        while w >= 1:
            for digit in range(1, k):
                child = vr + digit * w
                if child < size:
                    kids_of[vr].append(child)
            w //= k
    return _from_relative(size, root, parent_of, kids_of)


@lru_cache(maxsize=256)
def kary_tree(size: int, root: int = 0, k: int = 2) -> Tree:
    """The complete k-ary tree in heap order: relative rank ``r`` has children
    ``k r + 1 .. k r + k``::

        size 7, k 2:   0 -> 1, 2;  1 -> 3, 4;  2 -> 5, 6

    Depth ``ceil(log_k((k - 1) p + 1)) - 1``. Interior ranks send every message ``k`` times,
    so pipelined k-ary trees cost about ``k n beta`` for large messages.

    Raises:
        ValueError: ``size < 1``, ``root`` outside ``[0, size)`` or ``k < 1``.
    """
    _check(size, root)
    if k < 1:
        raise ValueError(f"k must be >= 1, got {k}")
    parent_of: list[int | None] = [None] + [(vr - 1) // k for vr in range(1, size)]
    kids_of = [[c for c in range(k * vr + 1, k * vr + k + 1) if c < size] for vr in range(size)]
    return _from_relative(size, root, parent_of, kids_of)


def chain_tree(size: int, root: int = 0) -> Tree:
    """The chain ``root -> root+1 -> ... -> root-1``: depth ``p - 1``; pipelined with ``s``
    segments a broadcast costs ``(p - 2 + s)(alpha + n beta / s)``.

    Raises:
        ValueError: ``size < 1`` or ``root`` outside ``[0, size)``.
    """
    return kary_tree(size, root, 1)


def _inorder(
    lo: int, hi: int, parent: int | None, parent_of: list[int | None], kids_of: list[list[int]]
) -> int | None:
    """Lay an in-order binary tree on relative ranks ``lo..hi-1``; return its top."""
    if lo >= hi:
        return None
    mid = (lo + hi) // 2
    parent_of[mid] = parent
    for sub in ((lo, mid), (mid + 1, hi)):
        top = _inorder(sub[0], sub[1], mid, parent_of, kids_of)
        if top is not None:
            kids_of[mid].append(top)
    return mid


@lru_cache(maxsize=256)
def inorder_binary_tree(size: int, root: int = 0) -> Tree:
    """The root feeds an in-order binary tree over the other ranks (relative ranks
    ``1..p-1``, the middle one on top; each subtree holds a contiguous range)::

        size 8, root 0:   0 -> 4;  4 -> 2, 6;  2 -> 1, 3;  6 -> 5, 7

    Depth ``1 + floor(log2(p - 1))`` for ``p >= 2``. Used for the two-tree broadcast.

    Raises:
        ValueError: ``size < 1`` or ``root`` outside ``[0, size)``.
    """
    _check(size, root)
    parent_of: list[int | None] = [None] * size
    kids_of: list[list[int]] = [[] for _ in range(size)]
    top = _inorder(1, size, 0, parent_of, kids_of)
    if top is not None:
        kids_of[0].append(top)
    return _from_relative(size, root, parent_of, kids_of)


@lru_cache(maxsize=256)
def two_trees(size: int, root: int = 0) -> tuple[Tree, Tree]:
    """The two complementary binary trees of the two-tree broadcast (Sanders, Speck and
    Traff 2009; NCCL's double binary tree): the first is :func:`inorder_binary_tree`, the
    second the same shape with the non-root relative ranks shifted by one (``v -> v + 1``,
    wrapping within ``1..p-1``), so that the leaves of one tree are mostly interior ranks of
    the other. Each tree carries half of the message.

    Raises:
        ValueError: ``size < 1`` or ``root`` outside ``[0, size)``.
    """
    first = inorder_binary_tree(size, root)
    if size <= 2:
        return first, first
    m = size - 1

    def shift(rank: int) -> int:
        vr = (rank - root) % size
        return rank if vr == 0 else (vr % m + 1 + root) % size

    parents: list[int | None] = [None] * size
    children: list[tuple[int, ...]] = [()] * size
    for rank in range(size):
        p = first.parents[rank]
        parents[shift(rank)] = None if p is None else shift(p)
        children[shift(rank)] = tuple(shift(c) for c in first.children[rank])
    return first, Tree(size, root, tuple(parents), tuple(children))
