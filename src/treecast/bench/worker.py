"""The measuring side of ``treecast bench``: runs on every rank, under treecast or mpi4py.

    python -m treecast.bench.worker BACKEND OP SIZES_CSV OUT.json [ROOT]

OSU method: for each size, a warm-up, then ``iters`` timed calls between barriers (the
barrier is outside the timed loop), contents that change with the size, an integrity check
after timing. The figure per size is the maximum over ranks of the per-rank mean. Rank 0
prints ``progress K N`` lines for the driver's progress bar and writes the JSON.
"""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Callable
from typing import Any

import numpy as np

from treecast.bench import OPS


def iterations(nbytes: int) -> tuple[int, int]:
    """(timed iterations, warm-up iterations) for a message size, after OSU's defaults:
    1000 and 100 up to 8 KiB, 100 and 10 above, fewer from 16 MiB (at most about 1 GiB moved
    per size, at least 20 calls) so that a sweep to 64 MiB stays short. A mean over few
    calls is at the mercy of one descheduling on a shared machine: 32 calls at 1 MiB gave
    ratios from 0.6 to 1.9 between runs."""
    if nbytes <= 8192:
        return 1000, 100
    iters = max(20, min(100, (1 << 30) // max(nbytes, 1)))
    return iters, max(3, iters // 10)


def _pattern(nbytes: int) -> np.ndarray:
    return ((np.arange(nbytes, dtype=np.uint64) * 131 + nbytes) % 251).astype(np.uint8)


_Call = Callable[[], Any]
"""One operation, as the timed loop runs it; returns what the operation returned."""
_Check = Callable[[Any], bool]
"""Whether the data arrived intact, given the last call's return value."""

_REDUCTIONS = frozenset({"reduce", "Reduce", "allreduce", "Allreduce", "scan", "Scan"})
"""Operations measured with float64 items instead of bytes."""


def _same(x: Any, y: Any) -> bool:
    """Whether two arrays hold equal items."""
    return bool(np.array_equal(x, y))


def _scanned(n: int, rank: int) -> np.ndarray:
    """What a sum-scan of every rank's ``arange(n) + rank`` gives ``rank``."""
    return np.arange(n) * (rank + 1) + rank * (rank + 1) / 2


def _transfers(comm: Any, nbytes: int, root: int) -> dict[str, tuple[_Call, _Check]]:
    """``(call, check)`` of every operation that moves ``nbytes``-byte blocks (one per rank
    for block collectives), and of barrier."""
    rank, size = comm.Get_rank(), comm.Get_size()
    expect = _pattern(nbytes)
    buf = expect.copy() if rank == root else np.zeros(nbytes, np.uint8)
    other = rank ^ 1 if (rank ^ 1) < size else rank
    out = np.zeros(nbytes, np.uint8)
    many = np.tile(expect, size)
    many_out = np.zeros(nbytes * size, np.uint8)
    return {
        "bcast": (
            lambda: comm.bcast(buf if rank == root else None, root=root),
            lambda last: _same(last, expect),
        ),
        "Bcast": (lambda: comm.Bcast(buf, root=root), lambda last: _same(buf, expect)),
        "barrier": (lambda: comm.barrier(), lambda last: True),
        "sendrecv": (
            lambda: comm.sendrecv(expect, other, source=other),
            lambda last: _same(last, expect),
        ),
        "Sendrecv": (
            lambda: comm.Sendrecv(expect, other, 0, out, other, 0),
            lambda last: _same(out, expect),
        ),
        "gather": (
            lambda: comm.gather(expect, root=root),
            lambda last: rank != root or all(_same(x, expect) for x in last),
        ),
        "Gather": (
            lambda: comm.Gather(expect, many_out if rank == root else None, root=root),
            lambda last: rank != root or _same(many_out, many),
        ),
        "scatter": (
            lambda: comm.scatter([expect] * size if rank == root else None, root=root),
            lambda last: _same(last, expect),
        ),
        "Scatter": (
            lambda: comm.Scatter(many if rank == root else None, out, root=root),
            lambda last: _same(out, expect),
        ),
        "allgather": (
            lambda: comm.allgather(expect),
            lambda last: all(_same(x, expect) for x in last),
        ),
        "Allgather": (lambda: comm.Allgather(expect, many_out), lambda last: _same(many_out, many)),
        "alltoall": (
            lambda: comm.alltoall([expect] * size),
            lambda last: all(_same(x, expect) for x in last),
        ),
        "Alltoall": (lambda: comm.Alltoall(many, many_out), lambda last: _same(many_out, many)),
    }


def _reductions(comm: Any, nbytes: int, root: int) -> dict[str, tuple[_Call, _Check]]:
    """``(call, check)`` of every reduction (a sum) over ``nbytes // 8`` float64 items, at
    least one."""
    rank, size = comm.Get_rank(), comm.Get_size()
    n = max(1, nbytes // 8)
    vec = np.arange(n, dtype=np.float64) + rank
    total = np.arange(n, dtype=np.float64) * size + size * (size - 1) / 2
    red = np.zeros(n)
    return {
        "reduce": (
            lambda: comm.reduce(vec, root=root),
            lambda last: rank != root or _same(last, total),
        ),
        "Reduce": (
            lambda: comm.Reduce(vec, red, root=root),
            lambda last: rank != root or _same(red, total),
        ),
        "allreduce": (lambda: comm.allreduce(vec), lambda last: _same(last, total)),
        "Allreduce": (lambda: comm.Allreduce(vec, red), lambda last: _same(red, total)),
        "scan": (lambda: comm.scan(vec), lambda last: _same(last, _scanned(n, rank))),
        "Scan": (lambda: comm.Scan(vec, red), lambda last: _same(red, _scanned(n, rank))),
    }


def _call_and_check(comm: Any, op: str, nbytes: int, root: int) -> tuple[_Call, _Check]:
    """``(call, check)`` for ``op``: ``call()`` runs one operation, ``check(last)`` asserts
    that the data arrived intact after timing. Reductions use float64 items
    (``nbytes // 8``, at least one); block collectives move ``nbytes`` per rank.

    Raises:
        ValueError: ``op`` is not one of :data:`~treecast.bench.OPS`.
    """
    if op not in OPS:
        raise ValueError(f"unknown op {op!r}; expected one of {OPS}")
    calls = _reductions if op in _REDUCTIONS else _transfers
    return calls(comm, nbytes, root)[op]


def measure(comm: Any, op: str, nbytes: int, root: int) -> float:
    """Max over ranks of mean seconds per call of ``op`` with ``nbytes``-byte payloads.

    Raises:
        AssertionError: the data arrived corrupted.
    """
    call, check = _call_and_check(comm, op, nbytes, root)
    iters, warm = iterations(nbytes)
    last: Any = None
    for _ in range(warm):
        last = call()
    comm.barrier()
    t0 = time.perf_counter()
    for _ in range(iters):
        last = call()
    elapsed = (time.perf_counter() - t0) / iters
    comm.barrier()
    assert check(last), f"{op} of {nbytes} B corrupted"
    return _max_over(comm, elapsed)


def _max_over(comm: Any, value: float) -> float:
    values = [value]
    if comm.Get_rank() == 0:
        values += [comm.recv(source=r, tag=4242) for r in range(1, comm.Get_size())]
    else:
        comm.send(value, 0, tag=4242)
    return float(comm.bcast(max(values) if comm.Get_rank() == 0 else None, root=0))


def main(argv: list[str]) -> int:
    backend, op, sizes_csv, out_path = argv[:4]
    root = int(argv[4]) if len(argv) > 4 else 0
    if backend == "mpi4py":
        from mpi4py import MPI

        comm: Any = MPI.COMM_WORLD
    else:
        import treecast

        comm = treecast.world()
    sizes = [int(s) for s in sizes_csv.split(",")]
    results = []
    for i, nbytes in enumerate(sizes):
        seconds = measure(comm, op, nbytes, root)
        results.append({"bytes": nbytes, "seconds": seconds})
        if comm.Get_rank() == 0:
            print(f"progress {i + 1} {len(sizes)}", flush=True)
    if comm.Get_rank() == 0:
        with open(out_path, "w") as fh:
            json.dump(
                {"backend": backend, "op": op, "nprocs": comm.Get_size(), "results": results}, fh
            )
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
