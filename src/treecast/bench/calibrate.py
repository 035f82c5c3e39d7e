"""``treecast calibrate``: measure this machine's figures for the cost model
(:class:`treecast.model.machine.Machine`) in a few seconds and store them.

In process: NumPy's ``add`` of vectors that fit the cache and of vectors that do not gives
``gamma`` and ``gamma_mem``; copying into fresh memory against reused memory gives
``alloc``; short sleeps give ``sleep_extra``; sysfs gives the last-level cache's size.

With two ranks (``treecast run -n 2``): a ping-pong at a few sizes gives ``alpha`` (half a
round trip of 8 bytes), ``beta`` (the slope over sizes that fit the cache, a message being
copied in and out, pipelined in chunks) and ``beta_mem`` (over those that do not); 8 bytes
of the object and buffer broadcasts give the per-message ``object_overhead``; 8 bytes of
every collective and form with its safe algorithm give its per-call ``overheads``, the
node-level algorithms ``node_sync`` (each figure is what the model lacks without it).

With three ranks per core (at most 64 ranks): a few small and large calls give ``steal``, the value with which
the model's times are nearest to the measured ones (least squares of the log ratio).
Every figure is the least of 5 batches: others' work on the machine only adds time.
"""

from __future__ import annotations

import math
import os
import socket
import statistics
import time
from collections.abc import Callable
from dataclasses import replace
from typing import Any

import numpy as np

from ..algorithms import registry
from ..model.machine import Machine, usable_cores
from ..model.predict import NO_OBJECT_FORM, predict_one
from ..transports.shm import CHUNK as RING_CHUNK
from .probe import run_cells

PINGPONG_SIZES = (8, 64 << 10, 1 << 20, 8 << 20, 64 << 20)
"""Ping-pong sizes (the quick mode keeps 8 bytes and 1 MiB)."""
OVERSUBSCRIBED = (
    ("barrier", None, 0),
    ("bcast", "binomial", 8),
    ("allreduce", "recursive_doubling", 8),
    ("bcast", "binomial", 2 << 20),
    ("allreduce", "recursive_doubling", 2 << 20),
)
"""(collective, algorithm, bytes) measured with three ranks per core to fit ``steal``."""
CALLS = tuple(
    (c, f)
    for c in registry.ALGORITHMS
    for f in (("buffer",) if c in NO_OBJECT_FORM or c == "barrier" else ("buffer", "object"))
)
"""Every (collective, form) whose per-call overhead is measured."""


def _best_of(fn: Callable[[], Any], reps: int, rounds: int = 5) -> float:
    """Seconds per call of ``fn``: the best of ``rounds`` means over ``reps`` calls."""
    best = float("inf")
    for _ in range(rounds):
        t0 = time.perf_counter()
        for _ in range(reps):
            fn()
        best = min(best, (time.perf_counter() - t0) / reps)
    return best


def cache_bytes(sysfs: str = "/sys/devices/system/cpu/cpu0/cache") -> int:
    """The largest cache of CPU 0, from sysfs (16 MiB when it cannot be read)."""
    largest = 0
    try:
        for entry in os.listdir(sysfs):
            with open(os.path.join(sysfs, entry, "size")) as fh:
                text = fh.read().strip().upper()
            scale = {"K": 1 << 10, "M": 1 << 20}.get(text[-1:], 1)
            largest = max(largest, int(text.rstrip("KM")) * scale)
    except (OSError, ValueError):
        return 16 << 20
    return largest or 16 << 20


def in_process(quick: bool = False) -> dict[str, float]:
    """``gamma`` (NumPy ``add`` of float64 vectors of 1 MiB, per byte), ``gamma_mem`` (of
    64 MiB; the quick mode takes ``gamma``), ``alloc`` (copying 8 MiB into fresh memory,
    less into reused memory, per byte), ``sleep_extra`` and ``cache_bytes``."""
    n = 1 << 20
    a, b = np.ones(n // 8), np.ones(n // 8)
    gamma = _best_of(lambda: np.add(a, b, out=a), 5 if quick else 40) / n
    gamma_mem = gamma
    if not quick:
        big_a, big_b = np.ones(8 << 20), np.ones(8 << 20)
        gamma_mem = _best_of(lambda: np.add(big_a, big_b, out=big_a), 2, 3) / (64 << 20)
    big = 8 << 20
    src, dst = np.ones(big, np.uint8), np.empty(big, np.uint8)
    reused = _best_of(lambda: np.copyto(dst, src), 2 if quick else 5)
    fresh = _best_of(lambda: np.array(src, copy=True), 2 if quick else 5)
    nap = 20e-6
    slept = _best_of(lambda: time.sleep(nap), 5 if quick else 20, 3)
    return {
        "gamma": gamma,
        "gamma_mem": max(gamma, gamma_mem),
        "alloc": max(0.0, fresh - reused) / big,
        "sleep_extra": max(0.0, slept - nap),
        "cache_bytes": float(cache_bytes()),
    }


def _two_rank_cells(quick: bool) -> list[dict[str, Any]]:
    """Ping-pongs, then 8 bytes of every collective and form with its safe algorithm, and of
    the node-level ones."""
    sizes = (PINGPONG_SIZES[0], PINGPONG_SIZES[2]) if quick else PINGPONG_SIZES
    cells = [{"collective": "pingpong", "form": "buffer", "bytes": s} for s in sizes]
    for collective, form in CALLS:
        algo = None if collective == "barrier" else registry.SAFE[collective]
        cells.append({"collective": collective, "form": form, "algorithm": algo, "bytes": 8})
    cells += [
        {"collective": "bcast", "form": "buffer", "algorithm": "shm_one_write", "bytes": 8},
        {"collective": "allreduce", "form": "buffer", "algorithm": "shm_reduce", "bytes": 8},
    ]
    return cells


def _excess(measured: float, algo: str, collective: str, form: str, machine: Machine) -> float:
    """How much longer ``measured`` (2 ranks, 8 bytes) took than the model says without
    what is being fitted (0 at least)."""
    got = predict_one(registry.get(collective, algo), 2, 8, machine, form=form)
    assert not isinstance(got, str)
    return max(0.0, measured - got.seconds)


def fit_pingpong(results: list[dict[str, Any]], machine: Machine) -> Machine:
    """``machine`` with ``alpha``, ``beta`` and ``beta_mem`` from the ping-pongs: a half
    round trip of ``b`` bytes is ``alpha + (b + min(b, chunk)) beta``."""
    half = {r["bytes"]: r["seconds"] / 2 for r in results if r["collective"] == "pingpong"}
    alpha = half[min(half)]

    def slope(b: int) -> float:
        return max(1e-13, (half[b] - alpha) / (b + min(b, RING_CHUNK)))

    cached = [slope(b) for b in half if b >= 1 << 16 and 2 * b <= machine.cache_bytes]
    beyond = [slope(b) for b in half if 2 * b > machine.cache_bytes]
    beta = statistics.median(cached) if cached else machine.beta
    beta_mem = statistics.median(beyond) if beyond else beta
    return replace(machine, alpha=alpha, beta=beta, beta_mem=max(beta, beta_mem))


def fit_two_ranks(results: list[dict[str, Any]], machine: Machine) -> Machine:
    """``machine`` with the ping-pong's figures, ``object_overhead``, the per-call
    overheads and ``node_sync`` fitted to the two-rank measurements, each as what the
    model lacks without it."""
    m = fit_pingpong(results, machine)
    t = {(r["collective"], r["form"], r.get("algorithm")): r["seconds"] for r in results}
    m = replace(m, overhead=0.0, object_overhead=0.0, node_sync=0.0)
    safe = registry.SAFE["bcast"]
    objects = t["bcast", "object", safe] - t["bcast", "buffer", safe]
    m = replace(m, object_overhead=max(0.0, objects))
    overheads = {}
    for collective, form in CALLS:
        algo = registry.SAFE[collective]
        measured = t[collective, form, None if collective == "barrier" else algo]
        overheads[f"{collective}/{form}"] = _excess(measured, algo, collective, form, m)
    m = replace(m, overheads=overheads, overhead=overheads["bcast/buffer"])
    syncs = [
        _excess(t["bcast", "buffer", "shm_one_write"], "shm_one_write", "bcast", "buffer", m),
        _excess(t["allreduce", "buffer", "shm_reduce"], "shm_reduce", "allreduce", "buffer", m) / 2,
    ]
    return replace(m, node_sync=statistics.fmean(syncs))


def fit_steal(machine: Machine, results: list[dict[str, Any]], size: int) -> float:
    """The ``steal`` (0 to 3, in steps of 0.05) with which the model's times of ``results``
    (measured on ``size`` ranks) are nearest the measured ones, in log ratio."""

    def error(steal: float) -> float:
        m = replace(machine, steal=steal)
        total = 0.0
        for r in results:
            name = r.get("algorithm") or registry.SAFE[r["collective"]]
            algo = registry.get(r["collective"], name)
            got = predict_one(algo, size, r["bytes"], m, form=r["form"])
            assert not isinstance(got, str)
            total += math.log(got.seconds / r["seconds"]) ** 2
        return total

    return min((k / 20 for k in range(61)), key=error)


def calibrate(
    quick: bool = False, budget: float = 0.1, progress: Callable[[str], None] | None = None
) -> tuple[Machine, list[dict[str, Any]]]:
    """Measure this machine (a few seconds; ``quick``: about half that, for tests, without the
    largest ping-pongs and the oversubscribed run, keeping the default ``steal``); return
    the figures and the measurements they were fitted to.

    Raises:
        RuntimeError: the ranks failed.
    """
    say = progress or (lambda text: None)
    cores = usable_cores()
    say("in process: reductions, fresh memory, sleeps")
    figures = in_process(quick)
    say("2 ranks: ping-pong and 8 bytes of every collective")
    budget /= 4 if quick else 1
    two = run_cells(_two_rank_cells(quick), 2, budget=budget, repeat=5, statistic="min")
    measured: list[dict[str, Any]] = [{"in_process": figures}, *({**r, "n": 2} for r in two)]
    stamp = time.strftime("%Y-%m-%d %H:%M")
    note = f"calibrated on {socket.gethostname()} at {stamp}" + (" (quick)" if quick else "")
    f = figures
    start = Machine(
        gamma=f["gamma"],
        gamma_mem=f["gamma_mem"],
        alloc=f["alloc"],
        sleep_extra=f["sleep_extra"],
        cache_bytes=f["cache_bytes"],
        cores=cores,
        note=note,
    )
    machine = fit_two_ranks(two, start)
    if quick:
        return machine, measured
    n = min(3 * cores, max(64, cores + 2))
    say(f"{n} ranks on {cores} cores: small and large calls")
    cells = [
        {"collective": c, "form": "buffer", "algorithm": a, "bytes": b}
        for c, a, b in OVERSUBSCRIBED
    ]
    got = run_cells(cells, n, budget=budget, repeat=5, statistic="min")
    measured += [{**r, "n": n} for r in got]
    return replace(machine, steal=fit_steal(machine, got, n)), measured
