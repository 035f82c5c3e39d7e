"""Cartesian process grids: pure functions of (dims, periods, rank), no I/O.

Ranks are laid out in row-major order: in a ``dims = [2, 3]`` grid rank ``r`` has
coordinates ``(r // 3, r % 3)``::

    dims = [2, 3]        coords (row, col) -> rank
                         (0,0)=0  (0,1)=1  (0,2)=2
                         (1,0)=3  (1,1)=4  (1,2)=5

A periodic dimension wraps around; a shift off the edge of a non-periodic one gives
``PROC_NULL``. These are MPI's rules (``MPI_Cart_create``, ``MPI_Cart_shift``,
``MPI_Dims_create``); :mod:`treecast.MPI` builds its ``Cartcomm`` on them.
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import lru_cache
from math import prod

from ..constants import PROC_NULL


def _check_dims(dims: Sequence[int]) -> tuple[int, ...]:
    out = tuple(int(d) for d in dims)
    if any(d < 1 for d in out):
        raise ValueError(f"every dimension must be >= 1, got dims={list(out)}")
    return out


def grid_size(dims: Sequence[int]) -> int:
    """Number of ranks in a grid (1 for zero dimensions).

    Raises:
        ValueError: a dimension is below 1.
    """
    return prod(_check_dims(dims))


def coords_of(dims: Sequence[int], rank: int) -> list[int]:
    """Coordinates of ``rank`` in the row-major grid ``dims``.

    Raises:
        ValueError: a dimension is below 1, or ``rank`` is outside the grid.
    """
    d = _check_dims(dims)
    size = prod(d)
    if not 0 <= rank < size:
        raise ValueError(f"rank {rank} is outside the grid {list(d)} of {size} ranks")
    coords = [0] * len(d)
    for i in range(len(d) - 1, -1, -1):
        rank, coords[i] = divmod(rank, d[i])
    return coords


def rank_of(dims: Sequence[int], periods: Sequence[bool], coords: Sequence[int]) -> int:
    """Rank at ``coords``; coordinates of periodic dimensions wrap around.

    Raises:
        ValueError: lengths differ, or a coordinate of a non-periodic dimension is outside
            ``0 <= c < dims[i]``.
    """
    d = _check_dims(dims)
    if len(periods) != len(d) or len(coords) != len(d):
        raise ValueError(
            f"dims, periods and coords must have one entry per dimension; got {len(d)}, "
            f"{len(periods)} and {len(coords)}"
        )
    rank = 0
    for i, (n, periodic, c) in enumerate(zip(d, periods, coords, strict=True)):
        c = int(c)
        if periodic:
            c %= n
        elif not 0 <= c < n:
            raise ValueError(
                f"coordinate {c} of non-periodic dimension {i} is outside 0 <= c < {n}"
            )
        rank = rank * n + c
    return rank


def shift(
    dims: Sequence[int], periods: Sequence[bool], rank: int, direction: int, disp: int
) -> tuple[int, int]:
    """``(source, dest)`` of a shift by ``disp`` along dimension ``direction``: ``dest`` is
    ``disp`` steps ahead of ``rank``, ``source`` as many behind; ``PROC_NULL`` past the edge
    of a non-periodic dimension.

    Raises:
        ValueError: ``direction`` is not a dimension, or ``rank`` is outside the grid.
    """
    d = _check_dims(dims)
    if not 0 <= direction < len(d):
        raise ValueError(f"direction {direction} is not a dimension of the grid {list(d)}")
    coords = coords_of(d, rank)

    def moved(step: int) -> int:
        c = list(coords)
        c[direction] += step
        if not periods[direction] and not 0 <= c[direction] < d[direction]:
            return PROC_NULL
        return rank_of(d, periods, c)

    return moved(-disp), moved(disp)


def neighbors(dims: Sequence[int], periods: Sequence[bool], rank: int) -> list[int]:
    """The neighbours of ``rank`` in MPI's order: for each dimension, the rank one step
    behind, then one step ahead (``PROC_NULL`` past a non-periodic edge).

    Raises:
        ValueError: ``rank`` is outside the grid.
    """
    out: list[int] = []
    for i in range(len(dims)):
        source, dest = shift(dims, periods, rank, i, 1)
        out += [source, dest]
    return out


def sub_grid(dims: Sequence[int], rank: int, remain: Sequence[bool]) -> tuple[int, int]:
    """``(color, key)`` that splits the grid into the sub-grids keeping the dimensions where
    ``remain`` is true (``MPI_Cart_sub``): ranks that agree on the dropped coordinates share
    a color; the key orders them row-major over the kept ones.

    Raises:
        ValueError: ``remain`` does not have one entry per dimension, or ``rank`` is outside
            the grid.
    """
    d = _check_dims(dims)
    if len(remain) != len(d):
        raise ValueError(f"remain_dims needs {len(d)} entries, got {len(remain)}")
    coords = coords_of(d, rank)
    color = key = 0
    for n, c, keep in zip(d, coords, remain, strict=True):
        if keep:
            key = key * n + c
        else:
            color = color * n + c
    return color, key


@lru_cache(maxsize=256)
def _balanced(n: int, k: int) -> tuple[int, ...]:
    """The non-increasing ``k`` factors of ``n`` that are lexicographically smallest: the
    smallest largest factor, then the smallest second largest, ... (MPICH's choice but for
    rare ties: 360 over 3 dimensions gives [9, 8, 5] where MPICH gives [10, 6, 6])."""
    if k == 0:
        return ()
    if k == 1:
        return (n,)
    best: tuple[int, ...] | None = None

    divisors = [f for f in range(n, 0, -1) if n % f == 0]

    def search(rest: int, left: int, cap: int, acc: list[int]) -> None:
        nonlocal best
        if left == 1:
            if rest <= cap:
                cand = (*acc, rest)
                if best is None or cand < best:
                    best = cand
            return
        for f in divisors:  # descending; the largest remaining factor is >= rest**(1/left)
            if f > cap or rest % f:
                continue
            if f**left < rest:
                break
            search(rest // f, left - 1, f, [*acc, f])

    search(n, k, n, [])
    assert best is not None
    return best


def compute_dims(nnodes: int, dims: Sequence[int]) -> list[int]:
    """MPI's ``Dims_create``: fill the zero entries of ``dims`` so that the product of all
    entries is ``nnodes``, as balanced as possible, in non-increasing order; non-zero
    entries are kept.

    Raises:
        ValueError: ``nnodes`` < 1 (or 0 with dimensions), a negative entry, or fixed
            entries whose product does not divide ``nnodes``.
    """
    if nnodes < 0:
        raise ValueError(f"nnodes must be >= 0, got {nnodes}")
    given = [int(d) for d in dims]
    if any(d < 0 for d in given):
        raise ValueError(f"dims entries must be >= 0, got {given}")
    fixed = prod(d for d in given if d > 0)
    free = sum(1 for d in given if d == 0)
    if nnodes == 0:
        if given and not free and fixed != 0:
            raise ValueError(f"nnodes=0 cannot be laid out on fixed dims {given}")
        return [d if d else 0 for d in given]
    if nnodes % fixed:
        raise ValueError(f"the fixed dims {given} (product {fixed}) do not divide nnodes={nnodes}")
    if not free:
        if fixed != nnodes:
            raise ValueError(f"dims {given} have product {fixed}, not nnodes={nnodes}")
        return given
    factors = iter(_balanced(nnodes // fixed, free))
    return [d if d else next(factors) for d in given]
