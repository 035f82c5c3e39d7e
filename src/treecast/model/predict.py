"""Predicted time of every applicable algorithm of a collective, best first.

Schedules go through the cost simulator (:mod:`~treecast.model.costsim`); the node-level
algorithms, which run through node memory rather than messages, have their own model
(:func:`node_bcast`, :func:`node_allreduce`). Before simulating, the total number of steps
is estimated from a few ranks; over ``max_steps`` an algorithm is followed on rank 0 alone
if its ranks are symmetric (a ring), and skipped with the reason otherwise.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Iterable
from dataclasses import dataclass, field
from itertools import islice

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


def _count(steps: Iterable[Step], cap: int) -> int:
    return sum(1 for _ in islice(steps, cap + 1))


def _samples(size: int, root: int) -> list[int]:
    picks = {1, 2, size // 3, size // 2, (2 * size) // 3, size - 2, size - 1}
    return sorted(r for r in picks if 0 <= r < size and r != root)


def estimated_steps(algo: Algorithm, size: int, root: int, nbytes: int, cap: int) -> int | None:
    """About how many steps all ranks of ``algo`` take: the root's, plus the mean of a few
    other ranks' times the others; None (more than ``cap``) when a rank alone would take
    more than its share of ``cap`` (counting stops there)."""
    args = (root, nbytes, True)
    share = 2 * cap // size + 2
    total = _count(algo.schedule(*algo.arguments(root, size, *args)), cap)  # linear: p - 1
    others = [
        _count(algo.schedule(*algo.arguments(r, size, *args)), share) for r in _samples(size, root)
    ]
    if total > cap or any(n > share for n in others):
        return None
    return total + int(statistics.fmean(others) * (size - 1)) if others else total


def predict_one(
    algo: Algorithm,
    size: int,
    nbytes: int,
    machine: Machine,
    *,
    form: str = "buffer",
    root: int = 0,
    max_steps: int = MAX_STEPS,
) -> Prediction | str:
    """``algo``'s :class:`Prediction`, or why it was skipped (too many steps to simulate,
    not symmetric)."""
    if algo.node_level:
        model = node_bcast if algo.collective == "bcast" else node_allreduce
        return Prediction(algo.name, model(machine, size, nbytes), 0, "node-level model")
    costs = costs_for(machine, algo, size, nbytes, form)
    n = nbytes if form == "buffer" else -1

    def steps(rank: int) -> Iterable[Step]:
        return algo.schedule(*algo.arguments(rank, size, root, n, True))

    total = estimated_steps(algo, size, root, n, max_steps)
    if total is not None and total <= max_steps:
        out = simulate(size, steps, costs, machine.cores)
        return Prediction(algo.name, out.seconds, out.messages, "simulated")
    if algo.collective not in ROOTED and size > 2:
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
    many = "more than" if total is None else f"about {total:.2g} steps, over"
    return (
        f"{many} the budget of {max_steps:.2g} steps in all (--max-steps), "
        "and its ranks are not symmetric"
    )


def predict(
    collective: str,
    size: int,
    nbytes: int,
    machine: Machine,
    *,
    form: str = "buffer",
    commutative: bool = True,
    max_steps: int = MAX_STEPS,
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
        got = predict_one(algo, size, nbytes, machine, form=form, max_steps=max_steps)
        if isinstance(got, str):
            found.skipped.append((name, got))
        else:
            found.predictions.append(got)
    found.predictions.sort(key=lambda p: p.seconds)
    return found
