"""Predicted time of every applicable algorithm of a collective, best first.

Schedules go through the cost simulator (:mod:`~treecast.model.costsim`); the node-level
algorithms, which run through node memory rather than messages, have their own model
(:func:`node_bcast`, :func:`node_allreduce`). Before simulating, the total number of steps
and of the block ids they list is estimated from a few ranks (counting stops at the
budgets, so no schedule is built whole); over ``max_steps`` or ``max_ids`` an algorithm is
followed on rank 0 alone if its ranks are symmetric (a ring) and rank 0 alone fits the
budgets, and skipped with the reason otherwise.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass, field

from ..algorithms import registry
from ..algorithms.registry import Algorithm
from ..algorithms.schedule import Step
from ..engine.node import CHUNK as NODE_CHUNK
from ..engine.node import OVERSUBSCRIBED_CHUNK, RCHUNK
from ..errors import InvalidArgumentError
from ..selection.rules import unusable
from ..transports.shm import CHUNK as RING_CHUNK
from ..transports.wait import OVERSUBSCRIBED_YIELD_SECONDS, YIELD_SECONDS
from .costs import block_bytes
from .costsim import SYMMETRIES, Costs, ScheduleError, simulate, simulate_symmetric
from .machine import Machine

MAX_STEPS = 500_000
"""Default budget of steps (all ranks together) one algorithm may cost to simulate."""
MAX_IDS = 10_000_000
"""Default budget of block ids (listed by all ranks' steps together) one algorithm may
cost to simulate: the steps of an alltoall, a reduce-scatter or Rabenseifner's algorithms
list O(p) ids each, so their memory grows as p^2 well before their steps pass
:data:`MAX_STEPS`."""
FORMS = ("buffer", "object")
"""The two forms of a collective: capitalised methods (buffers), lowercase (objects)."""
ROOTED = frozenset({"bcast", "gather", "scatter", "reduce"})
"""Collectives with a root (the others' schedules may be symmetric in the ranks)."""
NO_OBJECT_FORM = frozenset({"reduce_scatter", "reduce_scatter_block"})
"""Collectives with a buffer form only."""


@dataclass(frozen=True)
class Prediction:
    """One algorithm's predicted time.

    Attributes:
        algorithm: its name.
        seconds: predicted time of one call (the slowest rank).
        messages: messages sent, all ranks together (0 for node-level ones).
        how: ``"simulated"``, ``"rank 0 of a symmetric schedule"`` or ``"node-level model"``.
    """

    algorithm: str
    seconds: float
    messages: int
    how: str


@dataclass(frozen=True)
class Forecast:
    """Every applicable algorithm of one call, predicted: ``predictions`` best first, and
    ``skipped``: (algorithm, why) for those not predicted."""

    collective: str
    size: int
    nbytes: int
    form: str
    cores: int
    predictions: list[Prediction] = field(default_factory=list)
    skipped: list[tuple[str, str]] = field(default_factory=list)


def check_call(collective: str, size: int, nbytes: int, form: str) -> None:
    """Refuse a call the model cannot describe, naming the bad value.

    Raises:
        InvalidArgumentError: unknown collective or form, ``size < 1``, ``nbytes < 0``, or
            the object form of a collective that has none.
    """
    if collective not in registry.ALGORITHMS:
        raise InvalidArgumentError(
            f"unknown collective {collective!r}; expected one of {sorted(registry.ALGORITHMS)}"
        )
    if isinstance(size, bool) or not isinstance(size, int) or size < 1:
        raise InvalidArgumentError(f"the number of ranks must be an int >= 1, got {size!r}")
    if isinstance(nbytes, bool) or not isinstance(nbytes, int) or nbytes < 0:
        raise InvalidArgumentError(f"the byte size must be an int >= 0, got {nbytes!r}")
    if form not in FORMS:
        raise InvalidArgumentError(f"form must be one of {FORMS}, got {form!r}")
    if form == "object" and collective in NO_OBJECT_FORM:
        raise InvalidArgumentError(f"{collective} has no object form; use form 'buffer'")


def costs_for(machine: Machine, algo: Algorithm, size: int, nbytes: int, form: str) -> Costs:
    """The per-step figures of ``algo`` on ``size`` ranks moving ``nbytes`` in ``form``:
    the object form pays pickling per message and fresh memory per received byte."""
    m = machine
    objects = form == "object"
    s = m.stretch(size)
    half = s * (m.alpha + (m.object_overhead if objects else 0.0)) / 2
    beta, gamma = m.rates(nbytes * size)
    shared = 0 < m.cores < size
    return Costs(
        half=half,
        beta=s * beta,
        recv_beta=s * (beta + (m.alloc if objects else 0.0)),
        gamma=s * (gamma + (m.alloc if objects else 0.0)),
        chunk=float(RING_CHUNK),
        overhead=s * m.overhead_of(algo.collective, form),
        block=block_bytes(algo, size, nbytes),
        whole=float(nbytes) if algo.collective == "bcast" else 0.0,
        yield_window=OVERSUBSCRIBED_YIELD_SECONDS if shared else YIELD_SECONDS,
        sleep_extra=m.sleep_extra,
    )


def node_bcast(machine: Machine, size: int, nbytes: int) -> float:
    """``shm_one_write``: the root writes the payload once into node memory in chunks, the
    others copy each chunk out as soon as it is published. Critical path: one copy plus a
    chunk; work: ``size`` copies, over the cores."""
    m = machine
    limited = 0 < m.cores < size
    chunk = OVERSUBSCRIBED_CHUNK if limited else NODE_CHUNK
    s = m.stretch(size)
    o = s * m.overhead_of("bcast", "buffer")
    beta = s * m.rates(nbytes * size)[0]
    path = o + m.node_sync + nbytes * beta + min(nbytes, chunk) * beta
    if not limited:
        return path
    return max(path, size * (o + m.node_sync + nbytes * beta) / m.cores)


def node_allreduce(machine: Machine, size: int, nbytes: int) -> float:
    """``shm_reduce``: per chunk of node memory, every rank copies its part in, waits for
    all, folds its ``1/size`` of the chunk over every input, waits for all, copies the
    result out. Critical path: one rank's work and two waits per chunk; work: every rank's,
    over the cores."""
    m = machine
    chunks = max(1, math.ceil(nbytes / RCHUNK))
    share = nbytes / size
    beta, gamma = m.rates(nbytes * size)
    per_rank = m.overhead_of("allreduce", "buffer") + 2 * nbytes * beta
    per_rank = m.stretch(size) * (per_rank + share * (beta + (size - 1) * gamma))
    path = per_rank + 2 * chunks * m.node_sync
    if not 0 < m.cores < size:
        return path
    return max(path, size * path / m.cores)


def _tally(steps: Iterable[Step], max_steps: int, max_ids: int) -> tuple[int, int]:
    """(steps, block ids they list) of ``steps``, counting stopped once either is over its
    cap (the step that crossed it counted)."""
    n = ids = 0
    for step in steps:
        n += 1
        ids += len(getattr(step, "blocks", ()))
        if n > max_steps or ids > max_ids:
            break
    return n, ids


def _samples(size: int, root: int) -> list[int]:
    picks = {1, 2, size // 3, size // 2, (2 * size) // 3, size - 2, size - 1}
    return sorted(r for r in picks if 0 <= r < size and r != root)


@dataclass(frozen=True)
class Size:
    """About how large an algorithm's schedules are, all ranks together.

    Attributes:
        steps: steps (the simulator's time).
        ids: block ids the steps list (its memory and time besides: an alltoall or a
            reduce-scatter lists O(p) ids per step, O(p^2) in all).
        root_steps: the root's steps alone (rank 0 for the rootless collectives).
        root_ids: the root's block ids alone.
        over: why the schedules are too large to simulate in full (the budget exceeded,
            in words), None when they fit.
        root_over: why the root's schedule alone is too large to follow (a symmetric
            schedule is simulated on rank 0 alone), None when it fits.
    """

    steps: int
    ids: int
    root_steps: int
    root_ids: int
    over: str | None
    root_over: str | None


def _over(what: str, count: int, cap: int, flag: str, counted: bool) -> str:
    """The budget of ``what`` exceeded, in words (``counted``: ``count`` is an estimate;
    else counting stopped at the budget)."""
    if counted:
        return f"about {count:.2g} {what} in all, over the budget of {cap:.2g} ({flag})"
    return f"more than the budget of {cap:.2g} {what} in all ({flag})"


def estimated_size(
    algo: Algorithm, size: int, root: int, nbytes: int, max_steps: int, max_ids: int
) -> Size:
    """About how many steps and block ids all ranks of ``algo`` take: the root's, plus the
    mean of a few other ranks' times the others. Counting stops once the root passes a
    budget, or another rank its share of one (a schedule is a generator: nothing beyond
    is built, so a schedule of O(p^2) ids is never built whole)."""
    args = (root, nbytes, True)
    root_steps, root_ids = _tally(
        algo.schedule(*algo.arguments(root, size, *args)), max_steps, max_ids
    )
    step_share, id_share = 2 * max_steps // size + 2, 2 * max_ids // size + 2
    steps_over, ids_over = root_steps > max_steps, root_ids > max_ids
    steps, ids = root_steps, root_ids
    others = _samples(size, root)
    for r in others:
        n, k = _tally(algo.schedule(*algo.arguments(r, size, *args)), step_share, id_share)
        steps_over, ids_over = steps_over or n > step_share, ids_over or k > id_share
        steps += n * (size - 1) // len(others)
        ids += k * (size - 1) // len(others)
    counted = not (steps_over or ids_over)
    over = None
    if steps_over or steps > max_steps:
        over = _over("steps", steps, max_steps, "--max-steps", counted)
    elif ids_over or ids > max_ids:
        over = _over("block ids", ids, max_ids, "--max-ids", counted)
    root_over = None
    if root_steps > max_steps:
        root_over = f"rank {root} alone takes more than the budget of {max_steps:.2g} steps"
    elif root_ids > max_ids:
        root_over = f"rank {root} alone lists more than the budget of {max_ids:.2g} block ids"
    return Size(steps, ids, root_steps, root_ids, over, root_over)


def predict_one(
    algo: Algorithm,
    size: int,
    nbytes: int,
    machine: Machine,
    *,
    form: str = "buffer",
    root: int = 0,
    max_steps: int = MAX_STEPS,
    max_ids: int = MAX_IDS,
) -> Prediction | str:
    """``algo``'s :class:`Prediction`, or why it was skipped (too large to simulate, not
    symmetric)."""
    if algo.node_level:
        model = node_bcast if algo.collective == "bcast" else node_allreduce
        return Prediction(algo.name, model(machine, size, nbytes), 0, "node-level model")
    costs = costs_for(machine, algo, size, nbytes, form)
    n = nbytes if form == "buffer" else -1

    def steps(rank: int) -> Iterable[Step]:
        return algo.schedule(*algo.arguments(rank, size, root, n, True))

    est = estimated_size(algo, size, root, n, max_steps, max_ids)
    if est.over is None:
        out = simulate(size, steps, costs, machine.cores)
        return Prediction(algo.name, out.seconds, out.messages, "simulated")
    if algo.collective in ROOTED or size <= 2:
        return f"{est.over}; it has a root, so its ranks are not symmetric"
    if est.root_over is not None:
        return f"{est.over}; {est.root_over}, too many to follow it alone"
    for symmetry in SYMMETRIES:
        if symmetry == "xor" and size & (size - 1):
            continue
        others = [(r, steps(r)) for r in (1, size - 1)]
        try:
            out = simulate_symmetric(size, steps(0), costs, machine.cores, symmetry, others)
        except ScheduleError:
            continue
        how = f"rank 0 of a {symmetry}-symmetric schedule"
        return Prediction(algo.name, out.seconds, out.messages, how)
    return f"{est.over}; its ranks are not symmetric"


def predict(
    collective: str,
    size: int,
    nbytes: int,
    machine: Machine,
    *,
    form: str = "buffer",
    commutative: bool = True,
    max_steps: int = MAX_STEPS,
    max_ids: int = MAX_IDS,
) -> Forecast:
    """Every algorithm of ``collective`` that can run ``size`` ranks moving ``nbytes`` (the
    rule table's bytes: see :mod:`~treecast.model.costs`) in ``form`` on one node,
    predicted with ``machine``'s figures, best first; the others in ``skipped`` with why.

    Raises:
        InvalidArgumentError: as :func:`check_call`.
    """
    check_call(collective, size, nbytes, form)
    found = Forecast(collective, size, nbytes, form, machine.cores)
    buffer = form == "buffer"
    commutative = commutative and buffer  # object reductions always combine in rank order
    for name, algo in registry.ALGORITHMS[collective].items():
        why = unusable(algo, size, nbytes if buffer else -1, commutative, buffer)
        if why is None and algo.node_level and not buffer:
            why = "node-level: objects reach node memory through the buffer rules, not by name"
        if why is not None:
            found.skipped.append((name, why))
            continue
        got = predict_one(
            algo, size, nbytes, machine, form=form, max_steps=max_steps, max_ids=max_ids
        )
        if isinstance(got, str):
            found.skipped.append((name, got))
        else:
            found.predictions.append(got)
    found.predictions.sort(key=lambda p: p.seconds)
    return found
