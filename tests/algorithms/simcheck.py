"""Run a registered algorithm in the simulator on stores laid out as the engine lays them
out, and compare with a NumPy reference (values) or with rank order (symbolic operands)."""

from __future__ import annotations

from typing import Any

import numpy as np

from treecast.algorithms.registry import ALGORITHMS, Algorithm
from treecast.engine.simulate import Counts, simulate

ROOTED = {"bcast", "gather", "scatter", "reduce"}
REDUCTIONS = {"reduce", "allreduce", "reduce_scatter", "reduce_scatter_block", "scan", "exscan"}
SCAN = {(1, 2)}
"""Scan and exscan receive a partner's window (id 1) into scratch (id 2)."""
EVERY = [a for family in ALGORITHMS.values() for a in family.values()]


def usable(algo: Algorithm, size: int, commutative: bool = True, nbytes: int = 0) -> bool:
    return algo.unusable(size, nbytes, commutative, True) is None


def chunk_bounds(count: int, c: int) -> list[tuple[int, int]]:
    """Chunk ``i`` of ``c``: ``count // c + (i < count % c)`` items, in order (schedule.py)."""
    q, r = divmod(count, c)
    out, pos = [], 0
    for i in range(c):
        n = q + (i < r)
        out.append((pos, pos + n))
        pos += n
    return out


def _steps(algo: Algorithm, size: int, root: int, nbytes: int, commutative: bool) -> list[Any]:
    return [algo.steps(r, size, root, nbytes, commutative) for r in range(size)]


def _vectors(size: int, count: int, dtype: np.dtype, rng: np.random.Generator) -> list[Any]:
    return [rng.integers(-50, 50, count).astype(dtype) for _ in range(size)]


def check(
    algo: Algorithm,
    size: int,
    root: int,
    count: int,
    dtype: Any = np.int64,
    rng: np.random.Generator | None = None,
    commutative: bool = True,
) -> Counts:
    """Run ``algo`` with ``count`` items of ``dtype`` per rank (per block for the block
    collectives) and assert every rank ends with the NumPy reference's answer."""
    rng = rng or np.random.default_rng(size * 1000 + root * 10 + count)
    dtype = np.dtype(dtype)
    p = size
    family = algo.collective
    if family == "barrier":
        return simulate(_steps(algo, p, 0, -1, True), payloads=[b""] * p)
    if family == "bcast":
        data = rng.integers(0, 256, count * dtype.itemsize, dtype=np.uint8).tobytes()
        nbytes = len(data)
        payloads: list[bytes | bytearray | None] = [data if r == root else None for r in range(p)]
        counts = simulate(_steps(algo, p, root, nbytes, True), payloads=payloads)
        for r in range(p):
            got = payloads[r]
            assert bytes(got if got is not None else b"") == data, (algo.name, p, root, r)
        return counts
    if family in ("gather", "scatter", "allgather"):
        items = [rng.integers(-9, 9, count + b % 3).astype(dtype) for b in range(p)]
        if family == "scatter":
            stores = [{b: items[b].copy() for b in range(p)} if r == root else {} for r in range(p)]
        else:
            stores = [{r: items[r].copy()} for r in range(p)]
        counts = simulate(_steps(algo, p, root, -1, True), stores)
        if family == "gather":
            assert sorted(stores[root]) == list(range(p))
            for b in range(p):
                np.testing.assert_array_equal(stores[root][b], items[b])
        elif family == "scatter":
            for r in range(p):
                np.testing.assert_array_equal(stores[r][r], items[r])
        else:
            for r in range(p):
                for b in range(p):
                    np.testing.assert_array_equal(stores[r][b], items[b])
        return counts
    if family == "alltoall":
        items = {
            s * p + d: rng.integers(-9, 9, count + (s + d) % 2).astype(dtype)
            for s in range(p)
            for d in range(p)
        }
        stores = [{r * p + d: items[r * p + d].copy() for d in range(p)} for r in range(p)]
        counts = simulate(_steps(algo, p, 0, -1, True), stores)
        for d in range(p):
            for s in range(p):
                np.testing.assert_array_equal(stores[d][s * p + d], items[s * p + d])
        return counts
    assert family in REDUCTIONS, family
    if family in ("reduce_scatter", "reduce_scatter_block"):
        sizes = [count] * p if family.endswith("block") else [(count + 2 * b) % 5 for b in range(p)]
        total = sum(sizes)
        xs = _vectors(p, total, dtype, rng)
        bounds, pos = [], 0
        for n in sizes:
            bounds.append((pos, pos + n))
            pos += n
        stores = [{b: x[lo:hi].copy() for b, (lo, hi) in enumerate(bounds)} for x in xs]
        counts = simulate(_steps(algo, p, 0, total * dtype.itemsize, commutative), stores, np.add)
        want = np.sum(xs, axis=0, dtype=dtype)
        for b, (lo, hi) in enumerate(bounds):
            np.testing.assert_array_equal(stores[b][b], want[lo:hi])
        return counts
    xs = _vectors(p, count, dtype, rng)
    nbytes = count * dtype.itemsize
    if family in ("scan", "exscan"):
        stores = [{0: x.copy(), 1: x.copy()} if family == "scan" else {1: x.copy()} for x in xs]
        counts = simulate(_steps(algo, p, 0, nbytes, commutative), stores, np.add, renames=SCAN)
        prefix = np.cumsum(xs, axis=0, dtype=dtype)
        for r in range(p):
            if family == "scan":
                np.testing.assert_array_equal(stores[r][0], prefix[r])
            elif r == 0:
                assert 0 not in stores[0]
            else:
                np.testing.assert_array_equal(stores[r][0], prefix[r - 1])
        return counts
    c = algo.chunks(p, nbytes)
    bounds = chunk_bounds(count, c)
    stores = [{i: x[lo:hi].copy() for i, (lo, hi) in enumerate(bounds)} for x in xs]
    counts = simulate(_steps(algo, p, root, nbytes, commutative), stores, np.add)
    want = np.sum(xs, axis=0, dtype=dtype)
    for r in [root] if family == "reduce" else range(p):
        got = np.concatenate([stores[r][i] for i in range(c)]) if c else want[:0]
        np.testing.assert_array_equal(got, want, err_msg=f"{algo.name} p={p} root={root} r={r}")
    return counts


def concat(left: tuple[int, ...], right: tuple[int, ...]) -> tuple[int, ...]:
    """A non-commutative, associative operator on tuples of ranks."""
    return left + right


def check_order(algo: Algorithm, size: int, root: int, nbytes: int, commutative: bool) -> None:
    """Run a reduction with rank tuples as operands and ``+`` on tuples as the operator:
    without ``commutative`` every result must be exactly the ranks in order; with it,
    every contributing rank exactly once."""
    p = size
    family = algo.collective
    steps = _steps(algo, p, root, nbytes, commutative)

    def ok(got: tuple[int, ...], want: tuple[int, ...]) -> bool:
        return got == want if not commutative else tuple(sorted(got)) == want

    everyone = tuple(range(p))
    where = f"{algo.collective}/{algo.name} p={p} root={root} nbytes={nbytes}"
    if family in ("scan", "exscan"):
        stores = [{0: (r,), 1: (r,)} if family == "scan" else {1: (r,)} for r in range(p)]
        simulate(steps, stores, concat, renames=SCAN)
        for r in range(p):
            if family == "scan":
                assert ok(stores[r][0], tuple(range(r + 1))), (where, r, stores[r][0])
            elif r:
                assert ok(stores[r][0], tuple(range(r))), (where, r, stores[r][0])
            else:
                assert 0 not in stores[0], where
        return
    if family in ("reduce_scatter", "reduce_scatter_block"):
        stores = [{b: (r,) for b in range(p)} for r in range(p)]
        simulate(steps, stores, concat)
        for b in range(p):
            assert ok(stores[b][b], everyone), (where, b, stores[b][b])
        return
    c = algo.chunks(p, nbytes)
    stores = [{i: (r,) for i in range(c)} for r in range(p)]
    simulate(steps, stores, concat)
    for r in [root] if family == "reduce" else range(p):
        for i in range(c):
            assert ok(stores[r][i], everyone), (where, r, i, stores[r][i])
