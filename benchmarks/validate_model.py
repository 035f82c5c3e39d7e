"""Validate the cost model against measurements on this machine.

    python benchmarks/validate_model.py                 # n = 2, 4, 8; 8 B .. 64 MiB
    python benchmarks/validate_model.py --n 2 --sizes 8,32K --collectives bcast --forms buffer

For each rank count, size, collective (bcast, allreduce) and form (buffer, object), every
applicable algorithm is measured with the algorithm forced (``treecast.bench.probe``: OSU
method, median of 3 batches of the maximum over ranks of the per-rank mean) and predicted
with the stored model (``treecast calibrate``; ``--model FILE``). Printed, as Markdown:

- per point (collective, form, n, bytes): the measured best algorithm and time, the
  predicted best, and the predicted best's measured time over the measured best (the cost
  of trusting the model to choose);
- per cell (one algorithm at one point): whether the prediction is within 2x of the
  measured time;
- a summary: cells within 2x, points whose predicted best is measured within 1.2x of the
  best.

The full run takes about 5 minutes on a 2-core machine; ``--json FILE`` keeps every figure.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import time
from typing import Any

from treecast.algorithms import registry
from treecast.bench import size_range
from treecast.bench.probe import run_cells
from treecast.bench.tune import candidates
from treecast.model import machine as stored
from treecast.model.predict import predict_one

SIZES = "8,64,512,4K,32K,256K,2M,16M,64M"


def measure(args: argparse.Namespace) -> list[dict[str, Any]]:
    """Every cell, measured: one ``treecast run`` per rank count."""
    rows = []
    for n in args.n:
        cells = [
            {"collective": c, "form": f, "algorithm": a, "bytes": b}
            for b in args.sizes
            for c in args.collectives
            for f in args.forms
            for a in candidates(c, f, n, b)
        ]
        t0 = time.perf_counter()
        print(f"n = {n}: {len(cells)} cells", file=sys.stderr, flush=True)
        got = run_cells(
            cells, n, budget=args.budget, repeat=3, statistic=args.statistic, timeout=900
        )
        for r in got:
            rows.append({**r, "n": n})
        print(f"  {time.perf_counter() - t0:.0f} s", file=sys.stderr, flush=True)
    return rows


def with_predictions(rows: list[dict[str, Any]], model: stored.Machine) -> None:
    """Add ``predicted`` (seconds) to every measured row."""
    for r in rows:
        algo = registry.get(r["collective"], r["algorithm"])
        got = predict_one(algo, r["n"], r["bytes"], model, form=r["form"])
        r["predicted"] = got.seconds if not isinstance(got, str) else math.nan


def _fmt(s: float) -> str:
    return f"{s * 1e6:.0f} us" if s < 1e-3 else f"{s * 1e3:.2f} ms"


def points(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """One summary per (collective, form, n, bytes)."""
    groups: dict[tuple[Any, ...], list[dict[str, Any]]] = {}
    for r in rows:
        groups.setdefault((r["collective"], r["form"], r["n"], r["bytes"]), []).append(r)
    out = []
    for (c, f, n, b), rs in groups.items():
        best = min(rs, key=lambda r: r["seconds"])
        chosen = min(rs, key=lambda r: r["predicted"])
        within = [0.5 <= r["predicted"] / r["seconds"] <= 2 for r in rs]
        out.append(
            {
                "collective": c,
                "form": f,
                "n": n,
                "bytes": b,
                "best": best["algorithm"],
                "best_s": best["seconds"],
                "predicted_best": chosen["algorithm"],
                "regret": chosen["seconds"] / best["seconds"],
                "within_2x": sum(within),
                "cells": len(rs),
                "ratios": {r["algorithm"]: r["predicted"] / r["seconds"] for r in rs},
            }
        )
    return out


def report(summary: list[dict[str, Any]], note: str) -> list[str]:
    """The Markdown table and the summary lines."""
    lines = [
        f"Model: {note}.",
        "",
        "| collective | form | n | bytes | measured best | time | predicted best | its time / best"
        " | cells within 2x |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for p in summary:
        lines.append(
            f"| {p['collective']} | {p['form']} | {p['n']} | {p['bytes']} | {p['best']} | "
            f"{_fmt(p['best_s'])} | {p['predicted_best']} | {p['regret']:.2f} | "
            f"{p['within_2x']}/{p['cells']} |"
        )
    cells = sum(p["cells"] for p in summary)
    within = sum(p["within_2x"] for p in summary)
    good = sum(p["regret"] <= 1.2 for p in summary)
    lines += [
        "",
        f"Cells predicted within 2x of the measured time: {within} of {cells} "
        f"({100 * within / max(cells, 1):.0f}%).",
        f"Points whose predicted best is measured within 1.2x of the measured best: {good} of "
        f"{len(summary)} ({100 * good / max(len(summary), 1):.0f}%).",
    ]
    return lines


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--n", default="2,4,8", help="rank counts (2,4,8)")
    parser.add_argument("--sizes", default=SIZES, help=f"sizes ({SIZES})")
    parser.add_argument("--collectives", default="bcast,allreduce")
    parser.add_argument("--forms", default="buffer,object")
    parser.add_argument("--budget", type=float, default=0.05, help="seconds per cell (0.05)")
    parser.add_argument("--model", help="model file (default: the stored one)")
    parser.add_argument("--json", help="write every row and point here")
    parser.add_argument(
        "--from-json", metavar="FILE", help="predict the rows of an earlier --json run again"
    )
    parser.add_argument(
        "--statistic", choices=["median", "min"], default="median", help="of 3 batches"
    )
    args = parser.parse_args()
    args.n = [int(x) for x in args.n.split(",")]
    args.sizes = size_range(args.sizes)
    args.collectives = args.collectives.split(",")
    args.forms = args.forms.split(",")
    model, found = stored.load(args.model)
    if not found:
        print("no stored model: using the defaults (run treecast calibrate)", file=sys.stderr)
    if args.from_json:
        with open(args.from_json, encoding="utf-8") as fh:
            rows = json.load(fh)["rows"]
    else:
        rows = measure(args)
    with_predictions(rows, model)
    summary = points(rows)
    print("\n".join(report(summary, model.note)))
    if args.json:
        with open(args.json, "w", encoding="utf-8") as fh:
            json.dump(
                {"model": stored.to_dict(model), "rows": rows, "points": summary}, fh, indent=1
            )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
