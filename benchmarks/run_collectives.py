"""OSU-style latency table of every collective, treecast against mpi4py + MPICH, one run.

    python benchmarks/run_collectives.py [-n 2 4] [--sizes 8,1K,64K,1M] [--ops allreduce,...]
                                         [--repeat 3] [--out table.md]

For each rank count, operation and size it runs ``treecast bench --compare mpi4py --json``
(``--repeat`` times; the table shows the median of the repeats and the ratio
treecast / mpi4py). Run it alone on the machine: other load distorts every figure.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

from treecast.bench import OPS as _ALL_OPS

OPS = [op for op in _ALL_OPS if op not in ("sendrecv", "Sendrecv")]


def fmt(seconds: float) -> str:
    return f"{seconds * 1e6:.1f} us" if seconds < 1e-3 else f"{seconds * 1e3:.2f} ms"


def measure(n: int, op: str, sizes: str, repeat: int) -> dict[int, tuple[float, float]]:
    """bytes -> (median treecast seconds, median mpi4py seconds) over ``repeat`` runs."""
    runs: dict[int, tuple[list[float], list[float]]] = {}
    for _ in range(repeat):
        with tempfile.TemporaryDirectory() as tmp:
            out = Path(tmp) / "r.json"
            cmd = [sys.executable, "-m", "treecast", "bench", "-n", str(n), "--op", op]
            cmd += ["--sizes", "0" if op == "barrier" else sizes, "--compare", "mpi4py"]
            cmd += ["--json", str(out)]
            subprocess.run(cmd, check=True, timeout=900, stdout=subprocess.DEVNULL)
            data = json.loads(out.read_text())
        for row in data["rows"]:
            tc, mp = runs.setdefault(row["bytes"], ([], []))
            tc.append(row["treecast_s"])
            mp.append(row["mpi4py_s"])
    return {b: (statistics.median(t), statistics.median(m)) for b, (t, m) in runs.items()}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("-n", type=int, nargs="+", default=[2, 4])
    ap.add_argument("--sizes", default="8,1K,64K,1M")
    ap.add_argument("--ops", default=",".join(OPS))
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--out", type=Path)
    args = ap.parse_args()
    lines = ["| op | n | bytes | treecast | mpi4py | ratio |", "|---|---|---|---|---|---|"]
    for n in args.n:
        for op in args.ops.split(","):
            for b, (tc, mp) in sorted(measure(n, op, args.sizes, args.repeat).items()):
                line = f"| {op} | {n} | {b} | {fmt(tc)} | {fmt(mp)} | {tc / mp:.2f} |"
                lines.append(line)
                print(line, flush=True)
    if args.out:
        args.out.write_text("\n".join(lines) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
