"""Per-call latency of the hot paths at n = 2 on two source trees, measured in alternation
(5 rounds, medians): small-object `bcast`, `barrier`, 8 B `Bcast` and `Allreduce`, 1 MiB
and 64 MiB `Bcast`. Used to check that a change costs nothing (issue 5's safety checks,
issue 15's one engine):

    git worktree add /tmp/before <commit>
    python benchmarks/compare_trees.py /tmp/before/src src

Prints the median per-call latency for each tree and the ratio (second / first).
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import tempfile

KERNEL = r"""
import json, sys, time
import numpy as np
import treecast
comm = treecast.world()
out = {}
def timed(fn, iters):
    for _ in range(iters // 10): fn()
    comm.barrier(); t0 = time.perf_counter()
    for _ in range(iters): fn()
    return (time.perf_counter() - t0) / iters
out["bcast small object"] = timed(lambda: comm.bcast({"a": 1} if comm.rank == 0 else None, root=0), 5000)
out["barrier"] = timed(comm.barrier, 5000)
small = np.ones(1, np.float64)
out["Bcast 8 B"] = timed(lambda: comm.Bcast(small, root=0), 5000)
res = np.empty(1, np.float64)
out["Allreduce 8 B"] = timed(lambda: comm.Allreduce(small, res), 5000)
buf = np.ones(1 << 20, np.uint8)
out["Bcast 1 MiB"] = timed(lambda: comm.Bcast(buf, root=0), 300)
big = np.ones(64 << 20, np.uint8)
out["Bcast 64 MiB"] = timed(lambda: comm.Bcast(big, root=0), 20)
if comm.rank == 0:
    json.dump(out, open(sys.argv[1], "w"))
"""


def run(tree: str, path: str) -> dict[str, float]:
    env = {**os.environ, "PYTHONPATH": tree}
    cmd = [sys.executable, "-m", "treecast", "run", "-n", "2", "-c", KERNEL, path]
    subprocess.run(cmd, env=env, check=True, timeout=300)
    with open(path) as fh:
        return json.load(fh)


def main() -> int:
    before, after = sys.argv[1], sys.argv[2]
    samples: dict[str, dict[str, list[float]]] = {before: {}, after: {}}
    with tempfile.TemporaryDirectory() as tmp:
        for _ in range(5):
            for tree in (before, after):
                for k, v in run(tree, os.path.join(tmp, "out.json")).items():
                    samples[tree].setdefault(k, []).append(v)
    print(f"| kernel (n = 2) | {before} | {after} | ratio |")
    print("|---|---|---|---|")
    for k in samples[before]:
        a, b = statistics.median(samples[before][k]), statistics.median(samples[after][k])
        print(f"| {k} | {a * 1e6:.1f} us | {b * 1e6:.1f} us | {b / a:.3f} |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
