"""``treecast tune``: a rule table for this machine, from measurements where they are quick
(a few rank counts and sizes, every applicable algorithm forced) and the cost model beyond
(:mod:`treecast.model.tuning` turns the grid into rules).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from ..algorithms import registry
from ..model.machine import Machine
from ..model.predict import NO_OBJECT_FORM, predict
from ..model.tuning import Table, Times, packaged_table, tuned_table
from ..selection.rules import unusable
from .probe import run_cells

GRID_N = (2, 3, 4, 5, 6, 7, 8, 12, 16, 24, 32, 48, 64, 128, 256, 512, 1024)
"""Rank counts the grid may hold (up to ``--max-n``); each stands for those up to the next."""


@dataclass(frozen=True)
class Plan:
    """What ``treecast tune`` covers.

    Attributes:
        collectives: the collectives tuned (the others keep the packaged rules).
        sizes: the grid's byte sizes.
        grid_n: the grid's rank counts.
        measure_n: rank counts measured (with real ranks).
        measure_max_bytes: the largest size measured; the model gives the rest.
        budget: seconds per measured cell.
    """

    collectives: tuple[str, ...]
    sizes: tuple[int, ...]
    grid_n: tuple[int, ...]
    measure_n: tuple[int, ...]
    measure_max_bytes: int
    budget: float


def forms_of(collective: str) -> tuple[str, ...]:
    """The forms a collective is tuned in."""
    return ("buffer",) if collective in NO_OBJECT_FORM else ("object", "buffer")


def tunable(collectives: Iterable[str]) -> list[str]:
    """Those of ``collectives`` with a choice to make (more than one flat algorithm)."""
    return [
        c
        for c in collectives
        if sum(not a.needs_nodes for a in registry.ALGORITHMS[c].values()) > 1
    ]


def candidates(collective: str, form: str, n: int, nbytes: int) -> list[str]:
    """Algorithms that can run this cell on one node (object reductions: rank order; the
    node-level ones serve objects only through the buffer rules)."""
    buffer = form == "buffer"
    commutative = buffer or collective not in ("reduce", "allreduce", "scan", "exscan")
    return [
        name
        for name, algo in registry.ALGORITHMS[collective].items()
        if unusable(algo, n, nbytes if buffer else -1, commutative, buffer) is None
        and (buffer or not algo.node_level)
    ]


def cells_for(plan: Plan, n: int) -> list[dict[str, Any]]:
    """The cells measured on ``n`` ranks: each size up to the limit, each form, each
    applicable algorithm, algorithms of one size side by side."""
    cells = []
    for nbytes in (s for s in plan.sizes if s <= plan.measure_max_bytes):
        for collective in plan.collectives:
            for form in forms_of(collective):
                cells += [
                    {"collective": collective, "form": form, "algorithm": a, "bytes": nbytes}
                    for a in candidates(collective, form, n, nbytes)
                ]
    return cells


def measure(
    plan: Plan, say: Callable[[str], None]
) -> dict[tuple[str, str, int, int], dict[str, float]]:
    """(collective, form, ranks, bytes) -> algorithm -> measured seconds.

    Raises:
        RuntimeError: the ranks failed.
    """
    got: dict[tuple[str, str, int, int], dict[str, float]] = {}
    for n in plan.measure_n:
        cells = cells_for(plan, n)
        say(f"measuring {len(cells)} cells on {n} ranks")
        for r in run_cells(cells, n, budget=plan.budget, repeat=3, statistic="min", timeout=600):
            key = (r["collective"], r["form"], n, r["bytes"])
            got.setdefault(key, {})[r["algorithm"]] = r["seconds"]
    return got


def grids(
    plan: Plan, machine: Machine, measured: dict[tuple[str, str, int, int], dict[str, float]]
) -> dict[tuple[str, str], Times]:
    """Every (collective, form)'s grid of times: measured where measured, predicted
    elsewhere (skipped predictions leave an algorithm out of a point)."""
    out: dict[tuple[str, str], Times] = {}
    for collective in plan.collectives:
        for form in forms_of(collective):
            times: Times = {}
            for n in plan.grid_n:
                for nbytes in plan.sizes:
                    found = measured.get((collective, form, n, nbytes))
                    if found is None:
                        forecast = predict(collective, n, nbytes, machine, form=form)
                        found = {p.algorithm: p.seconds for p in forecast.predictions}
                    times[n, nbytes] = found
            out[collective, form] = times
    return out


def tune(
    plan: Plan, machine: Machine, say: Callable[[str], None] = lambda text: None
) -> tuple[Table, dict[tuple[str, str], Times]]:
    """(the tuned table, the grids it came from).

    Raises:
        RuntimeError: the ranks failed while measuring.
    """
    measured = measure(plan, say) if plan.measure_n else {}
    say("predicting the rest of the grid")
    found = grids(plan, machine, measured)
    return tuned_table(found, packaged_table()), found


def grid_of(max_n: int, measure_n: Sequence[int]) -> tuple[int, ...]:
    """The grid's rank counts: :data:`GRID_N` up to ``max_n``, and the measured ones."""
    return tuple(sorted({n for n in GRID_N if n <= max_n} | set(measure_n)))
