"""Run the issue-2 kernels with treecast and with mpi4py + MPICH in one invocation.

    python benchmarks/run_core.py [-n 2] [--out docs/perf-core.md]

Prints a markdown table (median seconds, ratio treecast / mpi4py) and writes it to --out.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent


def fmt(seconds: float) -> str:
    if seconds < 1e-3:
        return f"{seconds * 1e6:.1f} us"
    return f"{seconds * 1e3:.2f} ms"


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("-n", type=int, default=2)
    ap.add_argument("--out", type=Path)
    args = ap.parse_args()
    kernels = str(HERE / "core_kernels.py")
    with tempfile.TemporaryDirectory() as tmp:
        tc_json, mpi_json = os.path.join(tmp, "tc.json"), os.path.join(tmp, "mpi.json")
        subprocess.run(
            [
                sys.executable,
                "-m",
                "treecast",
                "run",
                "-n",
                str(args.n),
                sys.executable,
                kernels,
                "treecast",
                tc_json,
            ],
            check=True,
            timeout=900,
        )
        mpiexec = shutil.which("mpiexec")
        mpi = None
        if mpiexec:
            subprocess.run(
                [mpiexec, "-n", str(args.n), sys.executable, kernels, "mpi4py", mpi_json],
                check=True,
                timeout=900,
            )
            mpi = json.loads(Path(mpi_json).read_text())["results"]
        tc = json.loads(Path(tc_json).read_text())["results"]
    lines = [
        f"| kernel (n = {args.n}) | treecast | mpi4py + MPICH | treecast / mpi4py |",
        "|---|---|---|---|",
    ]
    for name, t in tc.items():
        m = mpi.get(name) if mpi else None
        ratio = f"{t / m:.2f}" if m else "-"
        lines.append(f"| {name} | {fmt(t)} | {fmt(m) if m else '-'} | {ratio} |")
    table = "\n".join(lines)
    print(table)
    if args.out:
        args.out.write_text(table + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
