"""Every registered algorithm, run in the simulator for every size 1..17 and every root,
against a NumPy reference; reductions also with symbolic operands to check rank order."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import numpy as np
import pytest
from simcheck import EVERY, REDUCTIONS, ROOTED, check, check_order, layout_of, usable

from treecast.algorithms.registry import Algorithm

SIZES = range(1, 18)
COUNTS = (0, 1, 5, 15, 16, 33)
DTYPES = (np.int32, np.float64)
LARGE = 1 << 20
"""Items of the large cases: 8 MiB of float64."""
CHUNKED = {"pipelined_chain", "pipelined_binary", "two_tree", "rabenseifner", "ring"}


def _cases(algos: list[Algorithm], sizes: Iterable[int]) -> list[Any]:
    """``(algo, size)`` pairs where the algorithm can run, with readable ids."""
    return [
        pytest.param(a, n, id=f"{a.collective}-{a.name}-{n}")
        for a in algos
        for n in sizes
        if usable(a, n)
    ]


@pytest.mark.parametrize(("algo", "size"), _cases(EVERY, SIZES))
def test_matches_numpy_for_every_root_and_count(algo: Algorithm, size: int) -> None:
    roots = range(size) if algo.collective in ROOTED else (0,)
    for root in roots:
        for i, count in enumerate(COUNTS):
            check(algo, size, root, count, DTYPES[(i + root) % 2])


@pytest.mark.parametrize(
    ("algo", "size"), _cases([a for a in EVERY if a.collective in REDUCTIONS], SIZES)
)
def test_operands_combine_in_rank_order(algo: Algorithm, size: int) -> None:
    """Without ``commutative`` the result is exactly x0 op x1 op ... op x(p-1); with it
    (and for commutative-only algorithms) every rank's operand appears exactly once."""
    roots = range(size) if algo.collective in ROOTED else (0,)
    sizes = (0, 8, 300_000) if algo.buffer_only else (-1, 0, 8, 300_000)
    modes = (True,) if algo.commutative_only else (False, True)
    for root in roots:
        for nbytes in sizes:
            for commutative in modes:
                check_order(algo, size, root, nbytes, commutative)


@pytest.mark.parametrize(
    ("algo", "size"),
    _cases(
        [
            a
            for a in EVERY
            if a.collective in ("bcast", "reduce", "allreduce") and a.name in CHUNKED
        ],
        (2, 5, 8),
    ),
)
def test_large_buffers_of_8_mib(algo: Algorithm, size: int) -> None:
    root = size - 1 if algo.collective in ROOTED else 0
    check(algo, size, root, LARGE, np.float64)


@pytest.mark.parametrize(
    ("algo", "size"),
    _cases([a for a in EVERY if a.name not in CHUNKED and a.collective != "barrier"], (5, 8)),
)
def test_large_items(algo: Algorithm, size: int) -> None:
    root = size - 2 if algo.collective in ROOTED else 0
    per_block = algo.collective in ("gather", "scatter", "allgather", "alltoall")
    per_block |= algo.collective.startswith("reduce_scatter")
    count = (LARGE // 8) // size if per_block else LARGE // 8
    check(algo, size, root, count + 1, np.int64)


def test_chunked_reduction_cuts_the_vector_as_the_contract_says() -> None:
    from treecast.algorithms.reduce import SEGMENT
    from treecast.algorithms.registry import get

    chain = get("reduce", "pipelined_chain")
    assert chain.chunks(7, -1) == chain.chunks(7, 0) == chain.chunks(7, SEGMENT) == 1
    assert chain.chunks(7, SEGMENT + 1) == 2
    assert get("allreduce", "ring").chunks(7, 100) == 7
    assert get("allreduce", "rabenseifner").chunks(7, 100) == 4
    assert get("reduce", "rabenseifner").chunks(8, 100) == 8
    assert get("allreduce", "recursive_doubling").chunks(7, 1 << 30) == 1
    assert get("bcast", "binomial").chunks(7, 1 << 30) == 1


@pytest.mark.parametrize("size", SIZES)
def test_buffer_bcasts_never_write_the_root_nor_move_empty_segments(size: int) -> None:
    """The root's buffer may be read-only, and a segment of 0 bytes is never sent."""
    for algo in EVERY:
        if algo.collective != "bcast" or not usable(algo, size):
            continue
        for root in range(size):
            for nbytes in (0, 1, size - 1, size, 3 * size + 1, 1000):
                for rank in range(size):
                    steps = algo.steps(rank, size, root, nbytes, True, layout_of(algo, size))
                    if rank == root:
                        assert not any(type(s).__name__ == "Recv" for s in steps), algo.name
                    assert all(s.nbytes != 0 for s in steps), (algo.name, rank, steps)  # type: ignore[union-attr]


def test_barrier_makes_every_rank_hear_from_every_other() -> None:
    """Dissemination, with each whole-payload message turned into a union of the sets of
    ranks its sender has heard from: every rank ends having heard from all."""
    from treecast.algorithms.registry import get
    from treecast.algorithms.schedule import LEFT, Recv, Send
    from treecast.engine.simulate import simulate

    algo = get("barrier", "dissemination")
    for size in SIZES:
        steps = [
            [
                Send(s.peer, blocks=(0,))
                if type(s) is Send
                else Recv(s.peer, blocks=(0,), reduce=LEFT)
                for s in algo.steps(r, size, 0, -1)
            ]
            for r in range(size)
        ]
        stores = [{0: frozenset({r})} for r in range(size)]
        counts = simulate(steps, stores, lambda a, b: a | b)
        assert all(s[0] == frozenset(range(size)) for s in stores)
        assert counts.rounds == (size - 1).bit_length()
