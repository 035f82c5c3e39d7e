"""Issue-2 kernels, runnable under treecast or mpi4py (the same code, the same method).

    treecast run -n 2 python benchmarks/core_kernels.py treecast OUT.json
    mpiexec -n 2 python benchmarks/core_kernels.py mpi4py OUT.json

OSU method: warm-up, barrier outside the timed loop, many iterations for small messages,
buffer contents varied per size, integrity check after timing; the figure is the maximum
over ranks of the per-rank mean, repeated ``REPEATS`` times, and the median reported.
"""

from __future__ import annotations

import json
import statistics
import sys
import time

import numpy as np

backend, out_path = sys.argv[1], sys.argv[2]
if backend == "treecast":
    import treecast

    comm = treecast.world()
else:
    from mpi4py import MPI

    comm = MPI.COMM_WORLD

rank, size = comm.Get_rank(), comm.Get_size()
REPEATS = 5


def measure(fn, iters: int, warmup: int) -> float:
    """Median over REPEATS of max-over-ranks mean seconds per call."""
    for _ in range(warmup):
        fn()
    samples = []
    for _ in range(REPEATS):
        comm.barrier()
        t0 = time.perf_counter()
        for _ in range(iters):
            fn()
        dt = (time.perf_counter() - t0) / iters
        samples.append(_max_over_ranks(dt))
    return statistics.median(samples)


def _max_over_ranks(x: float) -> float:
    vals = [x]
    if rank == 0:
        vals += [comm.recv(source=r, tag=77) for r in range(1, size)]
    else:
        comm.send(x, 0, tag=77)
    return comm.bcast(max(vals) if rank == 0 else None, root=0)


results: dict[str, float] = {}
small = {"step": 3, "name": "weights", "shape": [4, 4]}

if size >= 2:

    def pingpong() -> None:
        if rank == 0:
            comm.send(small, 1, tag=1)
            comm.recv(source=1, tag=1)
        elif rank == 1:
            comm.recv(source=0, tag=1)
            comm.send(small, 0, tag=1)

    results["send/recv small object (half round trip)"] = measure(pingpong, 5000, 500) / 2

results["bcast small object"] = measure(
    lambda: comm.bcast(small if rank == 0 else None, root=0), 5000, 500
)
results["barrier"] = measure(comm.barrier, 5000, 500)
one_kib = b"k" * 1024
results["bcast 1 KiB object"] = measure(
    lambda: comm.bcast(one_kib if rank == 0 else None, root=0), 3000, 300
)
for nbytes, iters in ((8, 5000), (1 << 20, 200), (64 << 20, 10)):
    buf = np.empty(nbytes, np.uint8)
    if rank == 0:
        buf[:] = (np.arange(nbytes) * 31 + nbytes) % 253
    results[f"Bcast {nbytes} B"] = measure(
        lambda b=buf: comm.Bcast(b, root=0), iters, max(2, iters // 10)
    )
    assert np.array_equal(buf, ((np.arange(nbytes) * 31 + nbytes) % 253).astype(np.uint8)), (
        "Bcast corrupted data"
    )

if rank == 0:
    src = np.ones(64 << 20, np.uint8)
    dst = np.empty_like(src)
    np.copyto(dst, src)
    t = []
    for _ in range(10):
        t0 = time.perf_counter()
        np.copyto(dst, src)
        t.append(time.perf_counter() - t0)
    results["memcpy 64 MiB (one rank)"] = statistics.median(t)
    with open(out_path, "w") as fh:
        json.dump({"backend": backend, "size": size, "results": results}, fh, indent=1)
