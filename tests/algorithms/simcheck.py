"""Run a registered algorithm in the simulator: :func:`check` plans one call of its
collective on every rank with the real planning functions (the layout of the user's
buffers) and runs the plans on the engine over the in-process transport, against a NumPy
reference; :func:`check_order` runs the schedule's steps with symbolic operands to check
the rank order in which a reduction combines them. Two-level algorithms run on a node
layout: :func:`layout_of` gives each size a default one (uneven, interleaved nodes), and
:func:`check` takes any other."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from treecast import plans
from treecast.algorithms.hierarchical import node_count
from treecast.algorithms.registry import ALGORITHMS, Algorithm
from treecast.engine.simulate import Counts, simulate, simulate_plans
from treecast.ops import SUM, Op
from treecast.plans import Caller, Plan

ROOTED = {"bcast", "gather", "scatter", "reduce"}
REDUCTIONS = {"reduce", "allreduce", "reduce_scatter", "reduce_scatter_block", "scan", "exscan"}
SCAN = {(1, 2)}
"""Scan and exscan receive a partner's window (id 1) into scratch (id 2)."""
EVERY = [a for family in ALGORITHMS.values() for a in family.values()]


def layout_of(algo: Algorithm, size: int) -> tuple[int, ...] | None:
    """The node layout ``algo`` runs on in these checks: None for the flat algorithms (and
    for one rank); for the two-level ones ``min(3, size)`` nodes of uneven sizes, the first
    ranks one per node, the rest interleaved (size 7: nodes 0 1 2 0 1 1 0)."""
    if not algo.needs_nodes or size < 2:
        return None
    k = min(3, size)
    return tuple(r if r < k else (r * r) % k for r in range(size))


def usable(algo: Algorithm, size: int, commutative: bool = True, nbytes: int = 0) -> bool:
    nodes = node_count(layout_of(algo, size))
    return algo.unusable(size, nbytes, commutative, True, None, nodes) is None


def _steps(algo: Algorithm, size: int, root: int, nbytes: int, commutative: bool) -> list[Any]:
    nodes = layout_of(algo, size)
    return [algo.steps(r, size, root, nbytes, commutative, nodes) for r in range(size)]


def _vectors(size: int, count: int, dtype: np.dtype, rng: np.random.Generator) -> list[Any]:
    return [rng.integers(-50, 50, count).astype(dtype) for _ in range(size)]


def _add(invec: Any, inoutvec: Any, dtype: np.dtype) -> None:
    out = np.frombuffer(inoutvec, dtype)
    np.add(np.frombuffer(invec, dtype), out, out=out)


_ADD = Op.Create(_add, commute=False)
"""SUM declared non-commutative: the values check still holds, and a schedule must keep
rank order (the selector's ``commutative`` fact is False)."""


def _plan_of(algo: Algorithm, root: int, inputs: Any) -> Callable[[Caller], Plan]:
    """Each rank's plan of the collective, made by the real planning function of ``plans``
    with the algorithm forced (``I*`` names: node-level algorithms run their schedule)."""
    family, name = algo.collective, algo.name

    def plan_of(c: Caller) -> Plan:
        x = inputs(c.rank)
        plan = _PLANS[family](c, x, root, name)
        assert plan.algo is algo, (plan.algo.name, name, c)  # no silent fallback
        return plan

    return plan_of


_PLANS: dict[str, Callable[[Caller, Any, int, str], Plan]] = {
    "bcast": lambda c, x, root, a: plans.plan_Bcast(c, x, root, algorithm=a),
    "gather": lambda c, x, root, a: plans.plan_Gather(c, x[0], x[1], root, algorithm=a),
    "scatter": lambda c, x, root, a: plans.plan_Scatter(c, x[0], x[1], root, algorithm=a),
    "allgather": lambda c, x, root, a: plans.plan_Allgatherv(c, x[0], x[1], algorithm=a),
    "alltoall": lambda c, x, root, a: plans.plan_Alltoall(c, x[0], x[1], algorithm=a),
    "reduce": lambda c, x, root, a: plans.plan_Reduce(c, x[0], x[1], x[2], root, algorithm=a),
    "allreduce": lambda c, x, root, a: plans.plan_Allreduce(c, x[0], x[1], x[2], algorithm=a),
    "reduce_scatter_block": lambda c, x, root, a: plans.plan_Reduce_scatter_block(
        c, x[0], x[1], x[2], algorithm=a
    ),
    "reduce_scatter": lambda c, x, root, a: plans.plan_Reduce_scatter(
        c, x[0], x[1], x[3], x[2], algorithm=a
    ),
    "scan": lambda c, x, root, a: plans.plan_Scan(c, x[0], x[1], x[2], algorithm=a),
    "exscan": lambda c, x, root, a: plans.plan_Exscan(c, x[0], x[1], x[2], algorithm=a),
}


def _run(
    algo: Algorithm, size: int, root: int, inputs: Any, nodes: tuple[int, ...] | None
) -> Counts:
    name = "I" + algo.collective
    return simulate_plans(size, _plan_of(algo, root, inputs), name, nodes=nodes).counts


def check(
    algo: Algorithm,
    size: int,
    root: int,
    count: int,
    dtype: Any = np.int64,
    rng: np.random.Generator | None = None,
    commutative: bool = True,
    nodes: tuple[int, ...] | None = None,
) -> Counts:
    """Run one call of ``algo``'s collective on ``size`` ranks: the real plans (the layout
    of each rank's buffers) and schedule on the engine, ``count`` items of ``dtype`` per
    rank (per block for the block collectives), and assert every rank ends with the NumPy
    reference's answer. ``nodes``: the node of each rank (default :func:`layout_of`); the
    counts then include the messages between nodes."""
    rng = rng or np.random.default_rng(size * 1000 + root * 10 + count)
    dtype = np.dtype(dtype)
    p = size
    family = algo.collective
    nodes = nodes if nodes is not None else layout_of(algo, size)
    if family == "barrier":
        steps = [algo.steps(r, p, 0, -1, True, nodes) for r in range(p)]
        return simulate(steps, payloads=[b""] * p, nodes=nodes)
    if family == "bcast":
        data = rng.integers(0, 100, count).astype(dtype)
        bufs = [data.copy() if r == root else np.zeros(count, dtype) for r in range(p)]
        counts = _run(algo, p, root, lambda r: bufs[r], nodes)
        for r in range(p):
            np.testing.assert_array_equal(bufs[r], data, err_msg=f"{algo.name} p={p} r={r}")
        return counts
    if family in ("gather", "scatter", "alltoall"):
        return _check_blocks(algo, p, root, count, dtype, rng, nodes)
    if family == "allgather":
        sizes = [count + b % 3 for b in range(p)]
        items = [rng.integers(-9, 9, sizes[b]).astype(dtype) for b in range(p)]
        displs = np.cumsum([0, *sizes[:-1]]).tolist()
        outs = [np.zeros(sum(sizes), dtype) for _ in range(p)]
        counts = _run(algo, p, root, lambda r: (items[r], [outs[r], sizes, displs, dtype]), nodes)
        for r in range(p):
            np.testing.assert_array_equal(outs[r], np.concatenate(items))
        return counts
    assert family in REDUCTIONS, family
    return _check_reduction(algo, p, root, count, dtype, rng, commutative, nodes)


def _check_blocks(
    algo: Algorithm,
    p: int,
    root: int,
    count: int,
    dtype: np.dtype,
    rng: np.random.Generator,
    nodes: tuple[int, ...] | None,
) -> Counts:
    family = algo.collective
    if family == "alltoall":
        sends = [rng.integers(-9, 9, count * p).astype(dtype) for _ in range(p)]
        outs = [np.zeros(count * p, dtype) for _ in range(p)]
        counts = _run(algo, p, root, lambda r: (sends[r], outs[r]), nodes)
        for d in range(p):
            want = np.concatenate([sends[s][d * count : (d + 1) * count] for s in range(p)])
            np.testing.assert_array_equal(outs[d], want)
        return counts
    whole = rng.integers(-9, 9, count * p).astype(dtype)
    if family == "gather":
        out = np.zeros(count * p, dtype)
        parts = [whole[r * count : (r + 1) * count].copy() for r in range(p)]
        counts = _run(algo, p, root, lambda r: (parts[r], out if r == root else None), nodes)
        np.testing.assert_array_equal(out, whole)
        return counts
    outs = [np.zeros(count, dtype) for _ in range(p)]
    counts = _run(algo, p, root, lambda r: (whole if r == root else None, outs[r]), nodes)
    for r in range(p):
        np.testing.assert_array_equal(outs[r], whole[r * count : (r + 1) * count])
    return counts


def _check_reduction(
    algo: Algorithm,
    p: int,
    root: int,
    count: int,
    dtype: np.dtype,
    rng: np.random.Generator,
    commutative: bool,
    nodes: tuple[int, ...] | None,
) -> Counts:
    family = algo.collective
    op = SUM if commutative or algo.commutative_only else _ADD
    if family == "reduce_scatter_block":
        xs = _vectors(p, count * p, dtype, rng)
        outs = [np.zeros(count, dtype) for _ in range(p)]
        counts = _run(algo, p, root, lambda r: (xs[r], outs[r], op), nodes)
        want = np.sum(xs, axis=0, dtype=dtype)
        for r in range(p):
            np.testing.assert_array_equal(outs[r], want[r * count : (r + 1) * count])
        return counts
    if family == "reduce_scatter":
        sizes = [(count + 2 * b) % 5 for b in range(p)]
        xs = _vectors(p, sum(sizes), dtype, rng)
        outs = [np.zeros(n, dtype) for n in sizes]
        counts = _run(algo, p, root, lambda r: (xs[r], outs[r], op, sizes), nodes)
        want, pos = np.sum(xs, axis=0, dtype=dtype), 0
        for r, n in enumerate(sizes):
            np.testing.assert_array_equal(outs[r], want[pos : pos + n])
            pos += n
        return counts
    xs = _vectors(p, count, dtype, rng)
    outs = [np.full(count, 7, dtype) for _ in range(p)]
    gets = [r == root or family != "reduce" for r in range(p)]
    counts = _run(algo, p, root, lambda r: (xs[r], outs[r] if gets[r] else None, op), nodes)
    prefix = np.cumsum(xs, axis=0, dtype=dtype)
    for r in range(p):
        if family == "scan":
            want = prefix[r]
        elif family == "exscan":
            want = prefix[r - 1] if r else np.full(count, 7, dtype)  # rank 0's is untouched
        elif gets[r]:
            want = prefix[-1]
        else:
            continue
        np.testing.assert_array_equal(outs[r], want, err_msg=f"{algo.name} p={p} r={r}")
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
