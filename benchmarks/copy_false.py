"""Memory and time of ``bcast(copy=False)`` against ``bcast`` (copy=True), one run.

    treecast run -n 4 python benchmarks/copy_false.py

Memory: every rank reads its proportional set size (Pss, /proc/self/smaps_rollup: private
pages in full, each shared page divided by the number of processes mapping it), so the sum
over ranks is the physical memory the job uses, shared memory counted once. The table shows
the growth of that sum from just before the broadcast (the root already holds its 64 MiB
payload) to just after it (every rank holding the result), and each rank's peak RSS growth.
Time: median over repeats of each rank's time in the call; "receivers" is the slowest non-root.
"""

from __future__ import annotations

import resource
import statistics
import time

import numpy as np

import treecast

MIB = 1 << 20


def pss() -> int:
    with open("/proc/self/smaps_rollup") as fh:
        for line in fh:
            if line.startswith("Pss:"):
                return int(line.split()[1]) * 1024
    raise RuntimeError("no Pss in /proc/self/smaps_rollup")


def memory(comm: treecast.Comm, copy: bool, nbytes: int) -> tuple[float, float]:
    payload = {"w": np.ones(nbytes, np.uint8)} if comm.rank == 0 else None
    comm.barrier()
    before = comm.allreduce(pss())
    got = comm.bcast(payload, root=0, copy=copy)
    assert got["w"].nbytes == nbytes
    comm.barrier()
    after = comm.allreduce(pss())
    peak = comm.allreduce(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024)
    del got
    return (after - before) / MIB, peak / MIB


def timing(comm: treecast.Comm, copy: bool, nbytes: int, repeat: int = 7) -> tuple[float, float]:
    payload = {"w": np.ones(nbytes, np.uint8)} if comm.rank == 0 else None
    mine = []
    for _ in range(repeat):
        comm.barrier()
        t = time.perf_counter()
        got = comm.bcast(payload, root=0, copy=copy)
        mine.append(time.perf_counter() - t)
        del got
    med = statistics.median(mine)
    everyone = comm.gather(med, root=0)
    if comm.rank == 0:
        return everyone[0], max(everyone[1:] or [0.0])
    return 0.0, 0.0


def main() -> None:
    comm = treecast.world()
    rows = []
    for copy in (False, True):
        grew, peak = memory(comm, copy, 64 * MIB)
        rows.append(f"| copy={copy} | {comm.size} | {grew:.1f} MiB | {peak:.0f} MiB |")
    times = []
    for nbytes in (1 * MIB, 8 * MIB, 64 * MIB):
        for copy in (False, True):
            root, recv = timing(comm, copy, nbytes)
            times.append(
                f"| {nbytes // MIB} MiB | copy={copy} | {root * 1e3:.2f} ms | {recv * 1e3:.2f} ms |"
            )
    if comm.rank == 0:
        print("| bcast of 64 MiB | ranks | growth of the sum of Pss | sum of peak RSS |")
        print("|---|---|---|---|")
        print("\n".join(rows))
        print()
        print("| payload | form | root | slowest receiver |")
        print("|---|---|---|---|")
        print("\n".join(times))


if __name__ == "__main__":
    main()
