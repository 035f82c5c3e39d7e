"""Cost of the always-on safety checks (issue 5): small `bcast` and 1 MiB `Bcast` at n = 2,
measured on two source trees in alternation (the tree before the checks, and this one).

    git worktree add /tmp/pre 1d375f4     # the last commit before timeouts and signatures
    python benchmarks/checks_overhead.py /tmp/pre/src src

Prints median per-call latency for each tree and the ratio (second / first).
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
buf = np.ones(1 << 20, np.uint8)
out["Bcast 1 MiB"] = timed(lambda: comm.Bcast(buf, root=0), 300)
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
    print(f"| kernel (n = 2) | without checks ({before}) | with checks ({after}) | ratio |")
    print("|---|---|---|---|")
    for k in samples[before]:
        a, b = statistics.median(samples[before][k]), statistics.median(samples[after][k])
        print(f"| {k} | {a * 1e6:.1f} us | {b * 1e6:.1f} us | {b / a:.3f} |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
