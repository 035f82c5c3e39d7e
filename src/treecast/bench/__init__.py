"""``treecast bench``: OSU-style latency of a collective against size, optionally side by side
with mpi4py (+ MPICH) in the same invocation, with one memcpy of the payload as the limit.

The driver starts the worker (:mod:`treecast.bench.worker`) under ``treecast run`` and, with
``--compare mpi4py``, under ``mpiexec``; it reads their progress lines for a progress bar and
their JSON results, prints a table, and writes CSV/JSON/PNG on request.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from typing import Any

import numpy as np

from ..units import parse_size

OPS = (
    "bcast",
    "Bcast",
    "barrier",
    "sendrecv",
    "Sendrecv",
    "gather",
    "Gather",
    "scatter",
    "Scatter",
    "allgather",
    "Allgather",
    "alltoall",
    "Alltoall",
    "reduce",
    "Reduce",
    "allreduce",
    "Allreduce",
    "scan",
    "Scan",
)
"""Operations ``treecast bench`` measures."""


def size_range(spec: str) -> list[int]:
    """``"1:64M"`` -> powers of two from 1 B to 64 MiB; ``"8,1K,1M"`` -> those sizes (each
    in :func:`treecast.units.parse_size`'s forms).

    Raises:
        ValueError: a malformed spec or an empty range.
    """
    if ":" in spec:
        lo_s, hi_s = spec.split(":", 1)
        lo, hi = parse_size(lo_s), parse_size(hi_s)
        if lo > hi:
            raise ValueError(f"size range {spec!r} is empty (start above end)")
        sizes, s = [], max(lo, 1)
        while s <= hi:
            sizes.append(s)
            s *= 2
        return ([0] if lo == 0 else []) + sizes
    sizes = [parse_size(part) for part in spec.split(",") if part.strip()]
    if not sizes:
        raise ValueError(f"sizes {spec!r} name no size; expected e.g. '1:64M' or '8,1K,1M'")
    return sizes


def _sizes_arg(spec: str) -> list[int]:
    """``--sizes``'s argparse type: :func:`size_range`, its errors as usage errors."""
    try:
        return size_range(spec)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def memcpy_seconds(nbytes: int) -> float:
    """Median time of one memcpy of ``nbytes`` (the physical limit of a broadcast)."""
    src = np.ones(max(nbytes, 1), np.uint8)
    dst = np.empty_like(src)
    np.copyto(dst, src)
    reps = max(3, min(200, (64 << 20) // max(nbytes, 1)))
    samples = []
    for _ in range(5):
        t0 = time.perf_counter()
        for _ in range(reps):
            np.copyto(dst, src)
        samples.append((time.perf_counter() - t0) / reps)
    return float(np.median(samples))


def _progress(label: str, total: int) -> tuple[Callable[[int], None], Callable[[], None]]:
    """(update(done), close()) for a progress bar on stderr when it is a terminal: rich if
    installed, else text. Nothing otherwise (a log file or a pipe gets only the table)."""
    if not sys.stderr.isatty():
        return (lambda done: None), (lambda: None)
    try:
        from rich.console import Console
        from rich.progress import Progress

        bar = Progress(transient=True, console=Console(stderr=True))
        bar.start()
        task = bar.add_task(label, total=total)
        return (lambda done: bar.update(task, completed=done)), bar.stop
    except ImportError:

        def update(done: int) -> None:
            print(f"\r{label}: {done}/{total} sizes", end="", file=sys.stderr, flush=True)

        return update, lambda: print(file=sys.stderr)


def _run_backend(cmd: list[str], label: str, total: int, out: str) -> list[dict[str, float]]:
    update, close = _progress(label, total)
    try:
        proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, text=True)
        assert proc.stdout is not None
        for line in proc.stdout:
            if line.startswith("progress "):
                update(int(line.split()[1]))
            else:
                sys.stdout.write(line)
        rc = proc.wait()
    finally:
        close()
    if rc != 0:
        raise RuntimeError(f"{label} exited with status {rc}: {' '.join(cmd)}")
    with open(out) as fh:
        return list(json.load(fh)["results"])


def _fmt(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    if seconds < 1e-3:
        return f"{seconds * 1e6:.1f} us"
    return f"{seconds * 1e3:.2f} ms"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The options of ``treecast bench``."""
    parser.add_argument("-n", "--nprocs", type=int, default=2, help="ranks (default 2)")
    parser.add_argument("--op", choices=OPS, default="Bcast", help="operation (default Bcast)")
    parser.add_argument(
        "--sizes",
        type=_sizes_arg,
        default="1:64M",
        metavar="SIZES",
        help="'1:64M' (powers of two) or '8,1K,1MiB' (default 1:64M)",
    )
    parser.add_argument("--root", type=int, default=0, help="root of rooted operations")
    parser.add_argument("--compare", choices=["mpi4py"], help="also measure mpi4py + MPICH")
    parser.add_argument(
        "--compare-op",
        choices=OPS,
        metavar="OP",
        help="with --compare: the operation mpi4py runs (default: --op), e.g. treecast's "
        "object bcast against MPICH's buffer Bcast of the same bytes",
    )
    parser.add_argument(
        "--launcher",
        choices=["treecast", "mpiexec"],
        default="treecast",
        help="start treecast's ranks with 'treecast run' (default) or under mpiexec, on "
        "its MPI transport",
    )
    parser.add_argument(
        "--nodes",
        type=int,
        default=0,
        metavar="K",
        help="with --launcher mpiexec: split this machine into K nodes (MPICH's "
        "MPIR_CVAR_NUM_CLIQUES, for both backends: rank r on node r mod K), so that "
        "traffic between them goes through MPI's network path",
    )
    parser.add_argument(
        "--repeat",
        type=int,
        default=1,
        metavar="R",
        help="run each backend R times, alternating, and report medians (default 1)",
    )
    parser.add_argument("--csv", metavar="FILE", help="write the table as CSV")
    parser.add_argument("--json", metavar="FILE", help="write the results as JSON")
    parser.add_argument("--plot", metavar="FILE.png", help="latency against size, log-log")


def run(args: argparse.Namespace) -> int:
    """Run ``treecast bench``; return the exit status."""
    try:
        sizes, mpiexec = _checked(args)
    except ValueError as exc:
        print(f"treecast bench: {exc}", file=sys.stderr)
        return 2
    n = str(args.nprocs)
    cliques = ["env", f"MPIR_CVAR_NUM_CLIQUES={args.nodes}"] if args.nodes else []
    launchers = {"treecast": [sys.executable, "-m", "treecast", "run", "-n", n]}
    if mpiexec and args.launcher == "mpiexec":
        launchers["treecast"] = [*cliques, mpiexec, "-n", n]
    if mpiexec and args.compare:
        launchers["mpi4py"] = [*cliques, mpiexec, "-n", n]
    rows = summarize(sizes, _measure(args, sizes, launchers))
    rooted = args.op.lower() in ("bcast", "gather", "scatter", "reduce")
    header = f"{args.op}, n = {args.nprocs}" + (f", root {args.root}" if rooted else "")
    if args.compare and args.compare_op and args.compare_op != args.op:
        header += f", mpi4py runs {args.compare_op}"
    if args.launcher == "mpiexec":
        header += f", under mpiexec ({args.nodes or 1} node(s))"
    if args.repeat > 1:
        header += f", median of {args.repeat} alternating runs"
    print("\n".join(table(header, rows, ranges=args.repeat > 1 and args.compare is not None)))
    if args.csv:
        _write_csv(args.csv, rows)
    if args.json:
        with open(args.json, "w") as fh:
            json.dump(
                {
                    "op": args.op,
                    "nprocs": args.nprocs,
                    "root": args.root,
                    "repeat": args.repeat,
                    "rows": rows,
                },
                fh,
                indent=1,
            )
    if args.plot:
        return _plot(args.plot, header, rows)
    return 0


def _checked(args: argparse.Namespace) -> tuple[list[int], str | None]:
    """``(sizes, mpiexec)`` for ``args``, checked before any measuring; mpiexec is None
    unless ``--compare`` or ``--launcher mpiexec`` needs it.

    Raises:
        ValueError: a bad option, or a tool an option needs is missing (the message says which).
    """
    sizes: list[int] = args.sizes
    if args.repeat < 1:
        raise ValueError(f"--repeat must be at least 1, got {args.repeat}")
    if args.nprocs < 1 or not 0 <= args.root < args.nprocs:
        raise ValueError(
            f"need -n >= 1 and 0 <= --root < n; got -n {args.nprocs} --root {args.root}"
        )
    if args.op in ("sendrecv", "Sendrecv") and args.nprocs % 2:
        raise ValueError(f"{args.op} pairs ranks; -n must be even, got {args.nprocs}")
    if args.plot:
        try:
            import matplotlib  # noqa: F401 - checked before minutes of measuring
        except ImportError:
            raise ValueError("--plot needs matplotlib (pip install 'treecast[bench]')") from None
    if args.compare_op and not args.compare:
        raise ValueError("--compare-op needs --compare mpi4py")
    if args.nodes and args.launcher != "mpiexec":
        raise ValueError("--nodes needs --launcher mpiexec")
    if args.nodes < 0 or args.nodes > args.nprocs:
        raise ValueError(f"--nodes must be between 1 and -n {args.nprocs}, got {args.nodes}")
    mpiexec = mpiexec_path() if args.compare or args.launcher == "mpiexec" else None
    return sizes, mpiexec


def mpiexec_path() -> str:
    """The ``mpiexec`` next to this Python (the ``mpich`` wheel), else on ``PATH``.

    Raises:
        ValueError: there is none.
    """
    here = os.path.join(os.path.dirname(sys.executable), "mpiexec")
    found = here if os.path.exists(here) else shutil.which("mpiexec")
    if found is None:
        raise ValueError(
            "--compare mpi4py and --launcher mpiexec need mpiexec (pip install mpi4py mpich)"
        )
    return found


def _measure(
    args: argparse.Namespace, sizes: list[int], launchers: dict[str, list[str]]
) -> list[dict[str, list[float]]]:
    """Per run: seconds per size of each backend, and of one memcpy for the operations it
    limits.

    Raises:
        RuntimeError: as :func:`_measure_backend`.
    """
    with_limit = args.op in ("bcast", "Bcast", "sendrecv", "Sendrecv")
    runs: list[dict[str, list[float]]] = []
    with tempfile.TemporaryDirectory() as tmp:
        for i in range(args.repeat):
            # alternate which goes first, so that a drift of the machine favours neither
            order = list(launchers) if i % 2 == 0 else list(reversed(launchers))
            run_times = {b: _measure_backend(args, sizes, b, launchers[b], tmp, i) for b in order}
            if with_limit:
                run_times["memcpy"] = [memcpy_seconds(s) for s in sizes]
            runs.append(run_times)
    return runs


def _measure_backend(
    args: argparse.Namespace,
    sizes: list[int],
    backend: str,
    launcher: list[str],
    tmp: str,
    run_index: int,
) -> list[float]:
    """Seconds per size from one run of the worker under ``backend``'s ``launcher``.

    Raises:
        RuntimeError: the worker failed, or measured other sizes than asked.
    """
    out = os.path.join(tmp, f"{backend}.json")
    worker = [sys.executable, "-m", "treecast.bench.worker"]
    op = args.compare_op if backend == "mpi4py" and args.compare_op else args.op
    cmd = [*launcher, *worker, backend, op, ",".join(map(str, sizes)), out, str(args.root)]
    label = f"{backend} {op}"
    if args.repeat > 1:
        label += f" (run {run_index + 1}/{args.repeat})"
    got = _run_backend(cmd, label, len(sizes), out)
    measured = [r["bytes"] for r in got]
    if measured != sizes:
        raise RuntimeError(f"{label} measured the sizes {measured}, expected {sizes}")
    return [r["seconds"] for r in got]


def _write_csv(path: str, rows: list[dict[str, Any]]) -> None:
    """Write :func:`summarize`'s rows as CSV, each run's figures space-separated in one
    column per backend."""
    flat = [
        {k: " ".join(map(repr, v)) if k.endswith("_runs_s") else v for k, v in r.items()}
        for r in rows
    ]
    with open(path, "w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=list(flat[0]))
        writer.writeheader()
        writer.writerows(flat)


def _median(values: list[float]) -> float:
    return float(np.median(values))


def summarize(sizes: list[int], runs: list[dict[str, list[float]]]) -> list[dict[str, Any]]:
    """One row per size from ``runs`` (each: seconds per size for ``"treecast"`` and
    optionally ``"mpi4py"`` and ``"memcpy"``): medians over the runs, and the ratios
    (treecast / mpi4py, treecast / memcpy) taken within each run, since the two were measured
    minutes apart at most, then their median, minimum and maximum. Every row also keeps the
    runs' own figures (``<key>_runs_s``)."""
    rows: list[dict[str, Any]] = []
    for i, nbytes in enumerate(sizes):
        per = {key: [run[key][i] for run in runs] for key in runs[0]}
        tc, mp, mc = per["treecast"], per.get("mpi4py"), per.get("memcpy")
        ratios = [t / m for t, m in zip(tc, mp, strict=True)] if mp and all(mp) else None
        x_memcpy = [t / m for t, m in zip(tc, mc, strict=True)] if mc and all(mc) else None
        rows.append(
            {
                "bytes": nbytes,
                "treecast_s": _median(tc),
                "mpi4py_s": _median(mp) if mp else None,
                "memcpy_s": _median(mc) if mc else None,
                "ratio": _median(ratios) if ratios else None,
                "ratio_min": min(ratios) if ratios else None,
                "ratio_max": max(ratios) if ratios else None,
                "x_memcpy": _median(x_memcpy) if x_memcpy else None,
                "runs": len(runs),
                **{f"{key}_runs_s": values for key, values in per.items()},
            }
        )
    return rows


def table(header: str, rows: list[dict[str, Any]], ranges: bool) -> list[str]:
    """The printed table's lines: a title, column names, one line per row of
    :func:`summarize` (``ranges``: with the per-run ratio range column)."""
    lines = [
        header,
        f"{'bytes':>10}  {'treecast':>10}  {'mpi4py':>10}  {'ratio':>6}"
        + (f"  {'ratio range':>11}" if ranges else "")
        + f"  {'memcpy':>10}  {'x memcpy':>8}",
    ]
    for r in rows:
        ratio = f"{r['ratio']:.2f}" if r["ratio"] is not None else "-"
        spread = ""
        if ranges:
            spread = "-" if r["ratio"] is None else f"{r['ratio_min']:.2f}-{r['ratio_max']:.2f}"
            spread = f"  {spread:>11}"
        xm = f"{r['x_memcpy']:.1f}" if r["x_memcpy"] is not None and r["bytes"] >= 1024 else "-"
        lines.append(
            f"{r['bytes']:>10}  {_fmt(r['treecast_s']):>10}  {_fmt(r['mpi4py_s']):>10}  "
            f"{ratio:>6}{spread}  {_fmt(r['memcpy_s']):>10}  {xm:>8}"
        )
    return lines


def _plot(path: str, title: str, rows: list[dict[str, Any]]) -> int:
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        print(
            "treecast bench: --plot needs matplotlib (pip install 'treecast[bench]')",
            file=sys.stderr,
        )
        return 2
    xs = [max(float(r["bytes"] or 0), 1.0) for r in rows]
    fig, ax = plt.subplots(figsize=(7, 4.5))
    for key, label in (
        ("treecast_s", "treecast"),
        ("mpi4py_s", "mpi4py + MPICH"),
        ("memcpy_s", "one memcpy (limit)"),
    ):
        ys = [r[key] for r in rows]
        if all(y is not None for y in ys):
            ax.loglog(xs, ys, "--" if key == "memcpy_s" else "o-", label=label)
    ax.set_xlabel("message size (bytes)")
    ax.set_ylabel("latency (s)")
    ax.set_title(title)
    ax.grid(True, which="both", alpha=0.3)
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    return 0
