"""What a collective call would run: :func:`route`, behind ``Comm.algorithm_for``.

Pure, like :mod:`treecast.plans`: it asks the selector exactly as the calls do (the rule
table, ``algorithm=``, ``TREECAST_<COLLECTIVE>_ALGORITHM``, the transport's capabilities and
the node layout), including the paths a broadcast takes besides its schedule: the large
buffers of an object ``bcast`` through node memory, and a broadcast across nodes among the
node leaders first, then inside each node.
"""

from __future__ import annotations

from dataclasses import dataclass

from .algorithms.hierarchical import node_count
from .algorithms.registry import Algorithm, get
from .algorithms.schedule import Recv, Send
from .errors import InvalidArgumentError
from .plans import Caller, algorithm_for, node_stage
from .selection.rules import select
from .transports.capabilities import NODE_MEMORY

_FAMILIES = {
    "barrier": "barrier",
    "bcast": "bcast",
    "gather": "gather",
    "gatherv": "gather",
    "scatter": "scatter",
    "scatterv": "scatter",
    "allgather": "allgather",
    "allgatherv": "allgather",
    "alltoall": "alltoall",
    "alltoallv": "alltoall",
    "reduce": "reduce",
    "allreduce": "allreduce",
    "reduce_scatter": "reduce_scatter",
    "reduce_scatter_block": "reduce_scatter_block",
    "scan": "scan",
    "exscan": "exscan",
}
"""A collective's method name, lowercased -> its family in the rule table."""

_VECTOR_ALGORITHMS = {"Gatherv": "linear", "Scatterv": "linear", "Alltoallv": "pairwise"}
"""The v-variants whose ranks do not all know the counts run one fixed algorithm."""

_BUFFER_ONLY = frozenset(
    ("gatherv", "scatterv", "allgatherv", "alltoallv", "reduce_scatter", "reduce_scatter_block")
)
"""Collectives with a buffer form only."""

_REDUCTIONS = ("reduce", "allreduce", "reduce_scatter", "reduce_scatter_block", "scan", "exscan")


@dataclass(frozen=True)
class Stage:
    """One part of a call's data path.

    Attributes:
        carries: what travels in this stage, in words ("the buffer", "the pickle stream",
            "the out-of-band buffers among the node leaders", ...).
        algorithm: the algorithm that moves it (``algorithm.node_level``: one write into
            the node's shared memory that every rank reads, no messages).
        size: the number of ranks that take part.
        nbytes: the bytes the selector saw (-1 for a pickled object).
    """

    carries: str
    algorithm: Algorithm
    size: int
    nbytes: int

    def peers(self, rank: int, root: int = 0) -> tuple[list[int], list[int]]:
        """``(receives from, sends to)`` of ``rank`` in this stage's schedule, in schedule
        order: ``([parent], children)`` in a tree. For a node-level algorithm this is its
        logical pattern, not messages.

        Raises:
            ValueError: ``rank`` or ``root`` outside ``[0, size)``; a stage among node
                leaders or inside a node numbers ranks in that group, not the caller's.
        """
        steps = self.algorithm.steps(rank, self.size, root, self.nbytes)
        sources = [s.peer for s in steps if type(s) is Recv]
        targets = [s.peer for s in steps if type(s) is Send]
        return list(dict.fromkeys(sources)), list(dict.fromkeys(targets))


@dataclass(frozen=True)
class Route:
    """What ``Comm.algorithm_for`` answers: the stages of one call's data path, in order.

    Attributes:
        call: the method asked about (``"Bcast"``).
        stages: one stage for most calls; an object ``bcast`` whose large buffers go
            through node memory has two (the pickle stream, then the buffers); a broadcast
            across nodes ends with two (among the node leaders, then inside each node).
    """

    call: str
    stages: tuple[Stage, ...]

    @property
    def algorithm(self) -> Algorithm:
        """The algorithm of the last stage: the one that moves the bulk of the bytes."""
        return self.stages[-1].algorithm

    def __str__(self) -> str:
        return " + ".join(f"{s.algorithm.name} ({s.carries})" for s in self.stages)


def route(
    c: Caller,
    nbytes: int = -1,
    *,
    commutative: bool = True,
    algorithm: str | None = None,
    node_capabilities: frozenset[str] | None = None,
) -> Route:
    """The route of the call ``c.name`` (a collective's method name, blocking or ``I*``)
    on a communicator with ``c``'s facts.

    Args:
        c: the communicator's facts, with the call's name.
        nbytes: the bytes the rule table sees: a buffer form's buffer (``Bcast``), the whole
            receive buffer (``Gather``, ``Allgather``: every rank's block), the send buffer
            (``Scatter`` at the root, ``Alltoall``, reductions); an object ``bcast``: the bytes
            of the object's large buffers (NumPy arrays), which pickle protocol 5 sends out of
            band (0 or -1: none); other object forms: ignored.
        commutative: whether a reduction's operator commutes (``op.is_commutative``).
        algorithm: the call's ``algorithm=``.
        node_capabilities: the transport's capabilities inside one node (a communicator
            that spans nodes drops the node-local ones from ``c.capabilities``).

    Raises:
        InvalidArgumentError: ``c.name`` is no collective; ``algorithm`` is unknown.
    """
    name = c.name
    blocking = not (name[:1] in ("I", "i") and name[1:].lower() in _FAMILIES)
    call = name if blocking else name[1:]
    family = _FAMILIES.get(call.lower())
    if family is None:
        raise InvalidArgumentError(
            f"algorithm_for: {name!r} is not a collective; expected a method name such as "
            "'Bcast', 'bcast', 'Allreduce' or 'Ibcast' (capitalised: the buffer form)"
        )
    buffer = name[:1].isupper()
    if not buffer and call.lower() in _BUFFER_ONLY:
        raise InvalidArgumentError(
            f"algorithm_for: {call!r} has no object form; ask for {call.capitalize()!r}"
        )
    if family == "bcast" and blocking and c.size > 1:
        return Route(name, _bcast_stages(c, buffer, nbytes, algorithm, node_capabilities))
    forced = _VECTOR_ALGORITHMS.get(call.capitalize(), algorithm)
    if family == "barrier":
        algo, what, nbytes = algorithm_for(c, family, 0, None), "nothing", 0
    elif buffer:
        commutes = commutative or family not in _REDUCTIONS
        algo = algorithm_for(c, family, nbytes, forced, commutative=commutes)
        what = "the buffer" if family == "bcast" else "the buffers"
    else:  # Python objects always combine in rank order (plans._plan_reduce_obj)
        commutes = family not in _REDUCTIONS
        algo = algorithm_for(c, family, -1, forced, commutative=commutes, buffer=False)
        what, nbytes = "the pickled objects", -1
    if c.size == 1:
        what = "nothing: one rank"
    elif algo.node_level and not blocking:
        what += ", sent as messages in its pattern by the non-blocking form"
    return Route(name, (Stage(what, algo, c.size, nbytes),))


def _bcast_stages(
    c: Caller,
    buffer: bool,
    nbytes: int,
    forced: str | None,
    node_caps: frozenset[str] | None,
) -> tuple[Stage, ...]:
    """The stages of a blocking broadcast (``Collectives.bcast``, ``plans.plan_Bcast``,
    ``Collectives._node_part``)."""
    if buffer:
        algo = algorithm_for(c, "bcast", nbytes, forced)
        if forced is None and not algo.node_level and node_stage(c.nodes, nbytes):
            return _across_nodes(c, "the buffer", nbytes, node_caps)
        return (Stage("the buffer", algo, c.size, nbytes),)
    stream = algorithm_for(c, "bcast", -1, forced, buffer=False)
    if nbytes <= 0 or forced is not None:
        return (Stage("the pickled object", stream, c.size, -1),)
    first = Stage("the pickle stream", stream, c.size, -1)
    if c.nodes is not None:
        if node_stage(c.nodes, nbytes):
            return (first, *_across_nodes(c, "the out-of-band buffers", nbytes, node_caps))
    else:
        bulk = select("bcast", c.size, nbytes, capabilities=c.capabilities)
        if bulk.node_level:
            return (first, Stage("the out-of-band buffers", bulk, c.size, nbytes))
    return (Stage("the pickle stream with its out-of-band buffers", stream, c.size, -1),)


def _across_nodes(
    c: Caller, what: str, nbytes: int, node_caps: frozenset[str] | None
) -> tuple[Stage, Stage]:
    """A broadcast's bytes among the node leaders, then inside each node
    (``Collectives._bcast_across_nodes``); the second stage as on this rank's node."""
    assert c.nodes is not None
    leaders = node_count(c.nodes)
    among = select("bcast", leaders, nbytes, capabilities=c.capabilities, nodes=leaders)
    local = c.nodes.count(c.nodes[c.rank])
    if node_caps is not None and NODE_MEMORY in node_caps:
        inside = get("bcast", "shm_one_write")
    else:
        inside = select("bcast", local, nbytes, capabilities=node_caps)
    return (
        Stage(f"{what} among the node leaders", among, leaders, nbytes),
        Stage(f"{what} inside each node", inside, local, nbytes),
    )
