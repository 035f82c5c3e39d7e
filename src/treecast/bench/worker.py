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
from typing import Any

import numpy as np

from treecast.bench import OPS


def iterations(nbytes: int) -> tuple[int, int]:
    """(timed iterations, warm-up iterations) for a message size: 1000 small, fewer large."""
    iters = max(5, min(1000, (256 << 20) // max(nbytes, 1) // 8))
    return iters, max(2, iters // 10)


def _pattern(nbytes: int) -> np.ndarray:
    return ((np.arange(nbytes, dtype=np.uint64) * 131 + nbytes) % 251).astype(np.uint8)


def measure(comm: Any, op: str, nbytes: int, root: int) -> float:
    """Max over ranks of mean seconds per call of ``op`` with ``nbytes``-byte payloads.

    Raises:
        AssertionError: the data arrived corrupted.
    """
    rank, size = comm.Get_rank(), comm.Get_size()
    expect = _pattern(nbytes)
    buf = expect.copy() if rank == root else np.zeros(nbytes, np.uint8)
    other = rank ^ 1 if (rank ^ 1) < size else rank
    out = np.zeros(nbytes, np.uint8)
    if op == "bcast":

        def call() -> Any:
            return comm.bcast(buf if rank == root else None, root=root)
    elif op == "Bcast":

        def call() -> Any:
            return comm.Bcast(buf, root=root)
    elif op == "barrier":

        def call() -> Any:
            return comm.barrier()
    elif op == "sendrecv":

        def call() -> Any:
            return comm.sendrecv(expect, other, source=other)
    elif op == "Sendrecv":

        def call() -> Any:
            return comm.Sendrecv(expect, other, 0, out, other, 0)
    elif op == "gather":

        def call() -> Any:
            return comm.gather(expect, root=root)
    elif op == "allgather":

        def call() -> Any:
            return comm.allgather(expect)
    else:
        raise ValueError(f"unknown op {op!r}; expected one of {OPS}")
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
    if op == "Bcast":
        assert np.array_equal(buf, expect), f"Bcast of {nbytes} B corrupted"
    elif op == "bcast":
        assert np.array_equal(last, expect), f"bcast of {nbytes} B corrupted"
    elif op == "sendrecv":
        assert np.array_equal(last, expect), f"sendrecv of {nbytes} B corrupted"
    elif op == "Sendrecv":
        assert np.array_equal(out, expect), f"Sendrecv of {nbytes} B corrupted"
    elif op == "allgather" or (op == "gather" and rank == root):
        assert len(last) == size and all(np.array_equal(x, expect) for x in last), f"{op} corrupted"
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
