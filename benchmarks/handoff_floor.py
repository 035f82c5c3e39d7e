"""The floor of a copying broadcast between two cores, without treecast or MPI.

    python benchmarks/handoff_floor.py [1M,4M,64M]

Two processes pinned to CPUs 0 and 1 share one anonymous mapping. Per round, the writer
copies N bytes from its private buffer into the mapping and raises a flag; the reader waits
for the flag, then copies the N bytes into one of two private buffers in turn (as an object
``bcast`` must: the previous result is still alive), and acknowledges. Nothing overlaps, so
each side's copy is timed alone. Printed: the median of each against one warm local memcpy
of the same size (the anchor of ``treecast bench``). A broadcast whose receivers get private
copies cannot finish before the reader's copy here, whatever its algorithm.
"""

from __future__ import annotations

import mmap
import os
import sys
import time

import numpy as np

from treecast.units import parse_size  # the sizes only: the copies run without treecast

ROUNDS = 100


def _median(values: list[float]) -> float:
    return sorted(values)[len(values) // 2]


def handoff(n: int) -> tuple[float, float, float]:
    """(writer copy, reader copy, local memcpy) medians in seconds for ``n`` bytes."""
    mm = mmap.mmap(-1, n + 4096)
    flags = np.frombuffer(mm, np.int64, count=2)
    shared = np.frombuffer(mm, np.uint8, count=n, offset=2048)
    rd, wr = os.pipe()
    pid = os.fork()
    if pid == 0:  # the reader
        os.sched_setaffinity(0, {1 % (os.cpu_count() or 1)})
        dst = [np.empty(n, np.uint8), np.empty(n, np.uint8)]
        times = []
        for i in range(1, ROUNDS + 1):
            while flags[0] != i:
                pass
            t0 = time.perf_counter()
            np.copyto(dst[i % 2], shared)
            times.append(time.perf_counter() - t0)
            flags[1] = i
        os.write(wr, repr(_median(times)).encode())
        os._exit(0)
    os.sched_setaffinity(0, {0})
    src = np.arange(n, dtype=np.uint8)
    times = []
    for i in range(1, ROUNDS + 1):
        src[::4096] += 1  # new contents every round
        t0 = time.perf_counter()
        np.copyto(shared, src)
        times.append(time.perf_counter() - t0)
        flags[0] = i
        while flags[1] != i:
            pass
    os.waitpid(pid, 0)
    reader = float(os.read(rd, 64).decode())
    os.close(rd)
    os.close(wr)
    dst = np.empty(n, np.uint8)
    local = []
    for _ in range(ROUNDS):
        t0 = time.perf_counter()
        np.copyto(dst, src)
        local.append(time.perf_counter() - t0)
    return _median(times), reader, _median(local)


def main() -> None:
    sizes = [parse_size(s) for s in (sys.argv[1] if len(sys.argv) > 1 else "1M,4M,64M").split(",")]
    print("| bytes | writer copy | reader copy | local memcpy | reader / memcpy |")
    print("|---|---|---|---|---|")
    for n in sizes:
        w, r, m = handoff(n)
        print(f"| {n} | {w * 1e6:.1f} us | {r * 1e6:.1f} us | {m * 1e6:.1f} us | {r / m:.2f} |")


if __name__ == "__main__":
    main()
