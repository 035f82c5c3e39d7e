"""Cost of tracing on a loop of small broadcasts (the case where per-call overhead shows).

Run it twice, without and with tracing, and compare the printed per-call times::

    treecast run -n 4 python benchmarks/trace_overhead.py
    treecast run -n 4 --trace /tmp/bcast.json python benchmarks/trace_overhead.py

Each run prints the slowest rank's mean time per ``comm.bcast(1)`` (warm-up excluded,
barrier before and after), the best of ``--repeats`` rounds (the least disturbed by other
processes on the machine).
"""

from __future__ import annotations

import argparse
import time

import treecast


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--calls", type=int, default=2000, help="broadcasts per round")
    parser.add_argument("--repeats", type=int, default=5, help="rounds (the best counts)")
    args = parser.parse_args()
    comm = treecast.world()
    for _ in range(200):  # warm-up
        comm.bcast(1, root=0)
    best = float("inf")
    for _ in range(args.repeats):
        comm.barrier()
        t0 = time.perf_counter()
        for _ in range(args.calls):
            comm.bcast(1, root=0)
        mine = (time.perf_counter() - t0) / args.calls
        comm.barrier()
        best = min(best, max(comm.allgather(mine)))
    if comm.rank == 0:
        print(
            f"bcast(1) on {comm.size} ranks: {best * 1e6:.2f} us per call (best of {args.repeats})"
        )


if __name__ == "__main__":
    main()
