"""The measuring side of ``treecast calibrate``, ``treecast tune`` and
``benchmarks/validate_model.py``: times a list of collective calls, each with its algorithm
forced, on every rank (:func:`run_cells` starts the ranks and reads the results back).

    python -m treecast.bench.probe SPEC.json OUT.json

``SPEC.json``: ``{"cells": [{"collective": "bcast", "form": "buffer", "algorithm":
"binomial", "bytes": 1024}, ...], "budget": 0.05, "repeat": 3, "statistic": "median"}``
(or ``"min"``); the pseudo-collective
``pingpong`` is a round trip of ``bytes`` between ranks 0 and 1. ``bytes`` is what the rule
table sees (:func:`treecast.model.costs.block_bytes`): the buffer of a broadcast, the vector
of a reduction, the whole gathered buffer of gather/scatter/allgather, the send buffer of
alltoall; ``algorithm`` None measures the default choice. Each cell: two warm-up calls,
then ``repeat`` timed batches of ``k`` calls, ``k`` picked by rank 0 from the
warm-up so a batch takes about ``budget / repeat`` seconds; a batch's figure is the
maximum over ranks of the per-rank mean (OSU), the cell's the median (or least) over its
batches.
Rank 0 writes ``OUT.json``: ``{"nprocs": p, "results": [cell + {"seconds", "calls"}]}``.
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from typing import Any

import numpy as np

import treecast

Call = Callable[[], Any]
"""One collective call, as the timed loop runs it."""

OBJECT_FORMS = frozenset(
    {"barrier", "bcast", "gather", "scatter", "allgather", "alltoall", "reduce", "allreduce"}
    | {"scan", "exscan"}
)
"""Collectives with an object form (lowercase method)."""


def _block(nbytes: int, size: int) -> np.ndarray:
    """One rank's block of a block collective whose total is ``nbytes`` (at least a byte)."""
    return np.full(max(1, nbytes // size), 7, np.uint8)


def _vector(nbytes: int, rank: int) -> np.ndarray:
    """A reduction's float64 vector of ``nbytes`` (at least one item)."""
    return np.arange(max(1, nbytes // 8), dtype=np.float64) + rank


def _object_call(comm: Any, collective: str, nbytes: int, algo: str | None) -> Call:
    """The object-form call (lowercase method) of ``collective`` moving ``nbytes``."""
    rank, size = comm.Get_rank(), comm.Get_size()
    kw = {"algorithm": algo}
    blk = _block(nbytes, size)
    vec = _vector(nbytes, rank)
    payload = np.ones(nbytes, np.uint8) if rank == 0 else None
    calls: dict[str, Call] = {
        "barrier": comm.barrier,
        "bcast": lambda: comm.bcast(payload, 0, **kw),
        "gather": lambda: comm.gather(blk, 0, **kw),
        "scatter": lambda: comm.scatter([blk] * size if rank == 0 else None, 0, **kw),
        "allgather": lambda: comm.allgather(blk, **kw),
        "alltoall": lambda: comm.alltoall([blk] * size, **kw),
        "reduce": lambda: comm.reduce(vec, treecast.SUM, 0, **kw),
        "allreduce": lambda: comm.allreduce(vec, treecast.SUM, **kw),
        "scan": lambda: comm.scan(vec, treecast.SUM, **kw),
        "exscan": lambda: comm.exscan(vec, treecast.SUM, **kw),
    }
    return calls[collective]


def _buffer_call(comm: Any, collective: str, nbytes: int, algo: str | None) -> Call:
    """The buffer-form call (capitalised method) of ``collective`` moving ``nbytes``."""
    rank, size = comm.Get_rank(), comm.Get_size()
    kw = {"algorithm": algo}
    if collective == "barrier":
        return comm.Barrier
    if collective == "bcast":
        buf = np.ones(max(nbytes, 1), np.uint8)
        return lambda: comm.Bcast(buf, 0, **kw)
    blk = _block(nbytes, size)
    many = np.tile(blk, size)
    got = np.empty_like(many)
    one = np.empty_like(blk)
    vec = _vector(nbytes, rank)
    out = np.empty_like(vec)
    part = max(1, vec.size // size)
    rsb_in = np.resize(vec, part * size)
    calls: dict[str, Call] = {
        "gather": lambda: comm.Gather(blk, got if rank == 0 else None, 0, **kw),
        "scatter": lambda: comm.Scatter(many if rank == 0 else None, one, 0, **kw),
        "allgather": lambda: comm.Allgather(blk, got, **kw),
        "alltoall": lambda: comm.Alltoall(many, got, **kw),
        "reduce": lambda: comm.Reduce(vec, out if rank == 0 else None, treecast.SUM, 0, **kw),
        "allreduce": lambda: comm.Allreduce(vec, out, treecast.SUM, **kw),
        "reduce_scatter_block": lambda: comm.Reduce_scatter_block(
            rsb_in, out[:part], treecast.SUM, **kw
        ),
        "reduce_scatter": lambda: comm.Reduce_scatter(
            rsb_in, out[:part], [part] * size, treecast.SUM, **kw
        ),
        "scan": lambda: comm.Scan(vec, out, treecast.SUM, **kw),
        "exscan": lambda: comm.Exscan(vec, out, treecast.SUM, **kw),
    }
    return calls[collective]


def _pingpong(comm: Any, nbytes: int) -> Call:
    """A round trip of ``nbytes`` between ranks 0 and 1 (the others idle)."""
    rank = comm.Get_rank()
    buf = np.ones(max(nbytes, 1), np.uint8)

    def call() -> None:
        if rank == 0:
            comm.Send(buf, 1, 77)
            comm.Recv(buf, 1, 77)
        elif rank == 1:
            comm.Recv(buf, 0, 77)
            comm.Send(buf, 0, 77)

    return call


def call_for(comm: Any, cell: dict[str, Any]) -> Call:
    """The call that ``cell`` (collective, form, algorithm, bytes) times.

    Raises:
        ValueError: an unknown collective or form, or an object form the collective lacks.
    """
    collective, form = cell["collective"], cell["form"]
    if collective == "pingpong":
        return _pingpong(comm, int(cell["bytes"]))
    if form == "object" and collective not in OBJECT_FORMS:
        raise ValueError(f"{collective} has no object form; expected one of {sorted(OBJECT_FORMS)}")
    if form not in ("object", "buffer"):
        raise ValueError(f"form must be 'object' or 'buffer', got {form!r}")
    make = _object_call if form == "object" else _buffer_call
    try:
        return make(comm, collective, int(cell["bytes"]), cell.get("algorithm"))
    except KeyError:
        raise ValueError(f"unknown collective {collective!r}") from None


def time_cell(
    comm: Any, call: Call, nbytes: int, budget: float, repeat: int, least: bool = False
) -> tuple[float, int]:
    """(seconds per call, calls per batch): the median (``least``: the minimum) over
    ``repeat`` batches of the maximum over ranks of the per-rank mean."""
    once = float("inf")
    for _ in range(2):  # the first call of a kind may set up (arenas, pools): not timed
        t0 = time.perf_counter()
        call()
        once = min(once, time.perf_counter() - t0)
    per_batch = budget / max(repeat, 1)
    k = max(1, min(2000, int(per_batch / max(once, 1e-7))))
    k = int(comm.bcast(k if comm.Get_rank() == 0 else None, 0))
    figures = []
    for _ in range(repeat):
        comm.Barrier()
        t0 = time.perf_counter()
        for _ in range(k):
            call()
        mean = (time.perf_counter() - t0) / k
        figures.append(float(comm.allreduce(mean, treecast.MAX)))
    return (min(figures) if least else statistics.median(figures)), k


def run_cells(
    cells: list[dict[str, Any]],
    nprocs: int,
    *,
    budget: float = 0.05,
    repeat: int = 3,
    statistic: str = "median",
    timeout: float = 600.0,
    progress: Callable[[int, int], None] | None = None,
) -> list[dict[str, Any]]:
    """Time ``cells`` on ``nprocs`` ranks started with ``treecast run``; each result is its
    cell with ``seconds`` and ``calls`` added (``statistic``: ``"median"`` or ``"min"`` of
    the batches: the least is the surest figure on a machine others load).

    Raises:
        RuntimeError: the ranks failed or timed out (the message holds their last output).
    """
    with tempfile.TemporaryDirectory(prefix="treecast-probe-") as tmp:
        spec, out = os.path.join(tmp, "spec.json"), os.path.join(tmp, "out.json")
        with open(spec, "w", encoding="utf-8") as fh:
            json.dump(
                {"cells": cells, "budget": budget, "repeat": repeat, "statistic": statistic}, fh
            )
        cmd = [sys.executable, "-m", "treecast", "run", "-n", str(nprocs)]
        cmd += ["--timeout", str(timeout), sys.executable, "-m", "treecast.bench.probe", spec, out]
        proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        assert proc.stdout is not None
        tail: list[str] = []
        for line in proc.stdout:
            words = line.split()
            if progress is not None and len(words) == 3 and words[0] == "progress":
                progress(int(words[1]), int(words[2]))
            else:
                tail = [*tail[-20:], line]
        if proc.wait() != 0 or not os.path.exists(out):
            raise RuntimeError(
                f"measuring on {nprocs} ranks failed (exit status {proc.returncode}): "
                + "".join(tail).strip()
            )
        with open(out, encoding="utf-8") as fh:
            return list(json.load(fh)["results"])


def main(argv: list[str]) -> int:
    """Time every cell of ``argv[0]`` (a spec file); rank 0 writes ``argv[1]``."""
    with open(argv[0], encoding="utf-8") as fh:
        spec = json.load(fh)
    comm = treecast.world()
    budget, repeat = float(spec.get("budget", 0.05)), int(spec.get("repeat", 3))
    least = spec.get("statistic", "median") == "min"
    results = []
    for i, cell in enumerate(spec["cells"]):
        call = call_for(comm, cell)
        seconds, calls = time_cell(comm, call, int(cell["bytes"]), budget, repeat, least)
        results.append({**cell, "seconds": seconds, "calls": calls})
        if comm.Get_rank() == 0:
            print(f"progress {i + 1} {len(spec['cells'])}", flush=True)
    if comm.Get_rank() == 0:
        with open(argv[1], "w", encoding="utf-8") as fh:
            json.dump({"nprocs": comm.Get_size(), "results": results}, fh, indent=1)
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
