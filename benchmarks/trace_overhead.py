"""Cost of tracing on a loop of small broadcasts (the case where per-call overhead shows).

Across processes: run it without and with tracing, alternating, several times each, and
compare the medians of the printed per-call times (one run is one number; a machine shared
with other work moves them by tens of percent)::

    treecast run -n 4 python benchmarks/trace_overhead.py
    treecast run -n 4 --trace /tmp/bcast.json python benchmarks/trace_overhead.py

Each run prints the slowest rank's mean time per ``comm.bcast(1)`` (warm-up excluded,
barrier before and after), the best of ``--repeats`` rounds (the least disturbed by other
processes on the machine).

In one process (``python benchmarks/trace_overhead.py --in-process -n 4 --calls 200
--repeats 60``): the ranks of an in-process world take turns in one thread (the root's
``bcast(1)``, then each other rank's, which finds its message already there), recording
attached to every transport or not, in pairs of rounds; it prints the median CPU time per
call off and the median difference of the pairs, the cost of recording itself without the
noise of processes that wait for each other (and without the launcher's clock reads being
cold: it runs lower than across processes).
"""

from __future__ import annotations

import argparse
import statistics
import time

import treecast


def in_process(n: int, calls: int, rounds: int) -> None:
    """Per-call CPU time of ``bcast(1)`` on ``n`` in-process ranks, recording off and on."""
    from treecast.tracing.recorder import Recorder
    from treecast.transports.inproc import InprocWorld

    world = InprocWorld(n)
    comms = [treecast.Comm(world[r], range(n), 0, "world") for r in range(n)]
    recs = [Recorder(world[r], limit=1 << 40) for r in range(n)]

    def one_round(on: bool) -> float:  # the events are kept, as in a traced job
        for rec in recs:
            rec.attach() if on else rec.detach()
        t0 = time.thread_time_ns()
        for _ in range(calls):
            comms[0].bcast(1, root=0)
            for comm in comms[1:]:
                comm.bcast(None, root=0)
        return (time.thread_time_ns() - t0) / (calls * n)

    one_round(False)  # warm-up
    one_round(True)
    offs, diffs = [], []
    for i in range(rounds):  # pairs, in alternating order: the drift cancels
        if i % 2:
            off, on = one_round(False), one_round(True)
        else:
            on, off = one_round(True), one_round(False)
        offs.append(off)
        diffs.append(on - off)
    for rec in recs:
        rec.detach()
    off, diff = statistics.median(offs), statistics.median(diffs)
    q = statistics.quantiles(diffs, n=4)
    print(
        f"bcast(1), {n} ranks in one process: off {off / 1e3:.2f} us per call, on +{diff:.0f} ns "
        f"({diff / off * 100:+.1f}%; median of {rounds} pairs, quartiles {q[0]:.0f}..{q[2]:.0f} ns)"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--calls", type=int, default=2000, help="broadcasts per round")
    parser.add_argument("--repeats", type=int, default=5, help="rounds (the best counts)")
    parser.add_argument("--in-process", action="store_true", help="ranks in this process")
    parser.add_argument("-n", type=int, default=4, help="ranks (with --in-process)")
    args = parser.parse_args()
    if args.in_process:
        in_process(args.n, args.calls, max(args.repeats, 1))
        return
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
