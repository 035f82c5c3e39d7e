"""Every collective algorithm by collective and name, with its restrictions.

The selector (``selection/rules.py``) and the collectives look algorithms up here;
:meth:`Algorithm.steps` adapts the uniform call ``(rank, size, root, nbytes, commutative,
nodes)`` to each schedule's own arguments (integers, and the node layout for the two-level
algorithms) and caches the result.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass

from ..errors import InvalidArgumentError
from . import (
    allgather,
    allreduce,
    alltoall,
    barrier,
    bcast,
    gather,
    hierarchical,
    reduce,
    reduce_scatter,
    scan,
    scatter,
)
from .schedule import Step, steps_of

Arguments = Callable[[int, int, int, int, bool], tuple[int, ...]]


def _rank_size(rank: int, size: int, root: int, nbytes: int, commutative: bool) -> tuple[int, ...]:
    return rank, size


def _rank_size_root(
    rank: int, size: int, root: int, nbytes: int, commutative: bool
) -> tuple[int, ...]:
    return rank, size, root


def _with_nbytes(
    rank: int, size: int, root: int, nbytes: int, commutative: bool
) -> tuple[int, ...]:
    return rank, size, root, nbytes


def _with_segment(
    rank: int, size: int, root: int, nbytes: int, commutative: bool
) -> tuple[int, ...]:
    return rank, size, root, nbytes, bcast.SEGMENT_BYTES


def _knomial(rank: int, size: int, root: int, nbytes: int, commutative: bool) -> tuple[int, ...]:
    return rank, size, root, KNOMIAL_RADIX


def _with_commutative(
    rank: int, size: int, root: int, nbytes: int, commutative: bool
) -> tuple[int, ...]:
    return rank, size, root, int(commutative)


def _with_chain_chunks(
    rank: int, size: int, root: int, nbytes: int, commutative: bool
) -> tuple[int, ...]:
    return rank, size, root, reduce.chain_chunks(nbytes)


def _one(size: int, nbytes: int) -> int:
    return 1


def _pof2(size: int, nbytes: int) -> int:
    return 1 << (size.bit_length() - 1)


def _size(size: int, nbytes: int) -> int:
    return size


def _chain(size: int, nbytes: int) -> int:
    return reduce.chain_chunks(nbytes)


KNOMIAL_RADIX = 4
"""Radix of the k-nomial broadcast (Open MPI's default)."""


@dataclass(frozen=True)
class Algorithm:
    """One algorithm of one collective.

    Attributes:
        collective: ``"barrier"``, ``"bcast"``, ``"gather"``, ``"scatter"``, ``"allgather"``,
            ``"alltoall"``, ``"reduce"``, ``"allreduce"``, ``"reduce_scatter"``,
            ``"reduce_scatter_block"``, ``"scan"`` or ``"exscan"``.
        name: its standard name (``"binomial"``, ``"scatter_ring_allgather"``, ...).
        summary: one line: pattern and cost.
        restriction: its restrictions in words, ``""`` if none.
        schedule: the schedule function (its docstring pictures the pattern).
        commutative_only: needs a commutative operator.
        pof2_only: needs a power-of-two communicator size.
        buffer_only: moves byte segments or chunks, so needs a buffer payload (its byte size
            known on every rank), not objects.
        arguments: maps ``(rank, size, root, nbytes, commutative)`` to the schedule's
            arguments.
        chunk_count: ``(size, nbytes) -> C``, the chunk ids of a reduce/allreduce vector.
        node_level: runs as one shared-memory write read by every rank of the node
            (``engine/node.py``) in blocking calls; ``schedule`` is its logical pattern,
            which the simulator checks and the non-blocking forms run as messages.
        requires: transport capabilities it needs (``"node_memory"``); the selector never
            picks it on a communicator whose transport lacks one.
        needs_nodes: runs on the communicator's node layout (two-level algorithms): the
            schedule gets the layout tuple as its last argument, and the algorithm is
            unusable on a communicator that lies on one node.
    """

    collective: str
    name: str
    summary: str
    restriction: str
    schedule: Callable[..., Iterable[Step]]
    commutative_only: bool = False
    pof2_only: bool = False
    buffer_only: bool = False
    arguments: Arguments = _rank_size
    chunk_count: Callable[[int, int], int] = _one
    node_level: bool = False
    requires: frozenset[str] = frozenset()
    needs_nodes: bool = False

    def steps(
        self,
        rank: int,
        size: int,
        root: int,
        nbytes: int,
        commutative: bool = True,
        nodes: tuple[int, ...] | None = None,
    ) -> tuple[Step, ...]:
        """This rank's steps (cached). ``root`` is 0 for rootless collectives; ``nbytes`` is
        the byte size of the buffer or vector, -1 for objects; ``nodes`` the node of each
        rank (the communicator's ``_nodes``), None on one node.

        Raises:
            ValueError: ``rank``/``root`` outside ``[0, size)``, a restriction fails
                (check :meth:`unusable` first), or the algorithm needs a node layout and
                ``nodes`` is None or not one.
        """
        args = self.arguments(rank, size, root, nbytes, commutative)
        if self.needs_nodes:
            if nodes is None:
                raise ValueError(
                    f"{self.collective} algorithm {self.name!r} runs on a node layout; "
                    "got nodes=None (a communicator on one node)"
                )
            return steps_of(self.schedule, *args, nodes)
        return steps_of(self.schedule, *args)

    def chunks(self, size: int, nbytes: int) -> int:
        """Number of chunk ids ``C`` of a reduce/allreduce vector (1 for whole-vector
        algorithms and for the other collectives)."""
        return self.chunk_count(size, nbytes)

    def unusable(
        self,
        size: int,
        nbytes: int,
        commutative: bool,
        is_buffer: bool,
        capabilities: frozenset[str] | None = None,
        nodes: int = 1,
    ) -> str | None:
        """None if the algorithm can run here, else why not, in words (``capabilities``:
        the transport's, None skips that check; ``nodes``: how many nodes the
        communicator spans)."""
        if self.needs_nodes and nodes < 2:
            return (
                "needs a communicator that spans several nodes (it runs on the node "
                f"layout); this one spans {nodes}"
            )
        if capabilities is not None and not self.requires <= capabilities:
            missing = ", ".join(sorted(self.requires - capabilities))
            return f"needs the transport capability {missing}, which this communicator lacks"
        if self.pof2_only and size & (size - 1):
            return f"needs a power-of-two size, got {size}"
        if self.commutative_only and not commutative:
            return "needs a commutative operator"
        if self.buffer_only and (not is_buffer or nbytes < 0):
            return "needs a buffer payload whose size every rank knows, not objects"
        return None


NODE = frozenset({"node_memory"})
"""What a node-level algorithm needs of the transport: memory every local rank maps."""
_POF2 = "p a power of two"
_COMM = "commutative operators"
_BUF = "buffers only"
_NODES = "communicators that span several nodes"


def _table(*algorithms: Algorithm) -> dict[str, dict[str, Algorithm]]:
    table: dict[str, dict[str, Algorithm]] = {}
    for a in algorithms:
        table.setdefault(a.collective, {})[a.name] = a
    return table


def _reduce_scatter_family(collective: str) -> tuple[Algorithm, ...]:
    return (
        Algorithm(
            collective,
            "pairwise",
            "p-1 pairwise exchanges of one block: (p-1) a + (p-1)/p n (b + g)",
            _COMM,
            reduce_scatter.pairwise,
            commutative_only=True,
        ),
        Algorithm(
            collective,
            "recursive_halving",
            "halve the held blocks with rank ^ p/2, p/4, ...: lg p a + (p-1)/p n (b + g)",
            f"{_COMM}; {_POF2}",
            reduce_scatter.recursive_halving,
            commutative_only=True,
            pof2_only=True,
        ),
        Algorithm(
            collective,
            "reduce_scatter",
            "binomial reduce of all blocks to 0, binomial scatter: 2 lg p a + lg p n (b + g)",
            "",
            reduce_scatter.reduce_scatter,
        ),
    )


ALGORITHMS: dict[str, dict[str, Algorithm]] = _table(
    Algorithm(
        "barrier",
        "dissemination",
        "round k: send to r + 2^k, receive from r - 2^k: ceil(lg p) a",
        "",
        barrier.dissemination,
    ),
    Algorithm(
        "bcast",
        "binomial",
        "binomial tree, whole payload: ceil(lg p)(a + n b)",
        "",
        bcast.binomial,
        arguments=_rank_size_root,
    ),
    Algorithm(
        "bcast",
        "linear",
        "root sends to every rank, whole payload: (p-1)(a + n b)",
        "",
        bcast.linear,
        arguments=_rank_size_root,
    ),
    Algorithm(
        "bcast",
        "shm_one_write",
        "root writes once into node shared memory, all ranks copy out, pipelined: about 2 n b",
        "",
        bcast.linear,
        arguments=_rank_size_root,
        node_level=True,
        requires=NODE,
    ),
    Algorithm(
        "bcast",
        "knomial",
        f"{KNOMIAL_RADIX}-nomial tree, whole payload: about ceil(log_k p)(k-1)(a + n b)",
        "",
        bcast.knomial,
        arguments=_knomial,
    ),
    Algorithm(
        "bcast",
        "pipelined_chain",
        "chain root -> r+1 -> ... in segments: (p - 2 + s)(a + n b / s)",
        _BUF,
        bcast.pipelined_chain,
        buffer_only=True,
        arguments=_with_segment,
    ),
    Algorithm(
        "bcast",
        "pipelined_binary",
        "heap-ordered binary tree in segments: about (lg p + s)(a + 2 n b / s)",
        _BUF,
        bcast.pipelined_binary,
        buffer_only=True,
        arguments=_with_segment,
    ),
    Algorithm(
        "bcast",
        "two_tree",
        "two complementary binary trees, n/2 each, in segments: about n b + O(lg p a)",
        _BUF,
        bcast.two_tree,
        buffer_only=True,
        arguments=_with_segment,
    ),
    Algorithm(
        "bcast",
        "scatter_recursive_doubling_allgather",
        "binomial scatter, recursive-doubling allgather: 2 lg p a + 2 (p-1)/p n b",
        f"{_POF2}; {_BUF}",
        bcast.scatter_recursive_doubling_allgather,
        pof2_only=True,
        buffer_only=True,
        arguments=_with_nbytes,
    ),
    Algorithm(
        "bcast",
        "scatter_ring_allgather",
        "binomial scatter, ring allgather: (lg p + p - 1) a + 2 (p-1)/p n b",
        _BUF,
        bcast.scatter_ring_allgather,
        buffer_only=True,
        arguments=_with_nbytes,
    ),
    Algorithm(
        "gather",
        "binomial",
        "binomial tree of subtrees: ceil(lg p) a + (p-1)/p n b",
        "",
        gather.binomial,
        arguments=_rank_size_root,
    ),
    Algorithm(
        "gather",
        "linear",
        "every rank sends to the root: (p-1)(a + n b / p)",
        "",
        gather.linear,
        arguments=_rank_size_root,
    ),
    Algorithm(
        "scatter",
        "binomial",
        "binomial tree of subtrees: ceil(lg p) a + (p-1)/p n b",
        "",
        scatter.binomial,
        arguments=_rank_size_root,
    ),
    Algorithm(
        "scatter",
        "linear",
        "the root sends to every rank: (p-1)(a + n b / p)",
        "",
        scatter.linear,
        arguments=_rank_size_root,
    ),
    Algorithm(
        "allgather",
        "recursive_doubling",
        "exchange all held with rank ^ 2^k: lg p a + (p-1)/p n b",
        _POF2,
        allgather.recursive_doubling,
        pof2_only=True,
    ),
    Algorithm(
        "allgather",
        "bruck",
        "send all held to r - 2^k: ceil(lg p) a + (p-1)/p n b",
        "",
        allgather.bruck,
    ),
    Algorithm(
        "allgather",
        "ring",
        "p-1 ring steps of one block: (p-1) a + (p-1)/p n b",
        "",
        allgather.ring,
    ),
    Algorithm(
        "alltoall",
        "pairwise",
        "step k: send to r + k, receive from r - k: (p-1)(a + n b / p)",
        "",
        alltoall.pairwise,
    ),
    Algorithm(
        "alltoall",
        "bruck",
        "round k: items whose distance has bit k go to r + 2^k: ceil(lg p)(a + n b / 2)",
        "",
        alltoall.bruck,
    ),
    Algorithm(
        "reduce",
        "binomial",
        "binomial tree (rank-ordered for non-commutative ops): ceil(lg p)(a + n b + n g)",
        "",
        reduce.binomial,
        arguments=_with_commutative,
    ),
    Algorithm(
        "reduce",
        "pipelined_chain",
        "two chains into the root in 64 KiB chunks: (p/2 + C)(a + (n b + n g) / C)",
        "",
        reduce.pipelined_chain,
        arguments=_with_chain_chunks,
        chunk_count=_chain,
    ),
    Algorithm(
        "reduce",
        "rabenseifner",
        "halving reduce-scatter, binomial gather: 2 lg p a + 2 (p-1)/p n b + (p-1)/p n g",
        _BUF,
        reduce.rabenseifner,
        buffer_only=True,
        arguments=_rank_size_root,
        chunk_count=_pof2,
    ),
    Algorithm(
        "allreduce",
        "recursive_doubling",
        "exchange and combine with rank ^ 2^k: lg p (a + n b + n g)",
        "",
        allreduce.recursive_doubling,
    ),
    Algorithm(
        "allreduce",
        "ring",
        "ring reduce-scatter, ring allgather: 2 (p-1) a + 2 (p-1)/p n b + (p-1)/p n g",
        f"{_COMM}; {_BUF}",
        allreduce.ring,
        commutative_only=True,
        buffer_only=True,
        chunk_count=_size,
    ),
    Algorithm(
        "allreduce",
        "rabenseifner",
        "recursive halving, then doubling: 2 lg p a + 2 (p-1)/p n b + (p-1)/p n g",
        _BUF,
        allreduce.rabenseifner,
        buffer_only=True,
        chunk_count=_pof2,
    ),
    Algorithm(
        "allreduce",
        "reduce_bcast",
        "binomial reduce to 0, binomial bcast: 2 ceil(lg p)(a + n b) + ceil(lg p) n g",
        "",
        allreduce.reduce_bcast,
    ),
    Algorithm(
        "allreduce",
        "shm_reduce",
        "node memory: all write, rank r folds part r of every input, all read: about 3 n b + n g / p",
        _BUF,
        allreduce.recursive_doubling,
        buffer_only=True,
        node_level=True,
        requires=NODE,
    ),
    Algorithm(
        "barrier",
        "two_level",
        "node fan-in, dissemination among node leaders, node fan-out: ceil(lg k) A + 2 lg m a",
        _NODES,
        hierarchical.barrier,
        needs_nodes=True,
    ),
    Algorithm(
        "bcast",
        "two_level",
        "binomial among node leaders, then in each node: ceil(lg k)(A + n B) + lg m (a + n b)",
        _NODES,
        hierarchical.bcast,
        arguments=_rank_size_root,
        needs_nodes=True,
    ),
    Algorithm(
        "gather",
        "two_level",
        "binomial in each node, then among node leaders: ceil(lg k) A + (k-1)/k n B + lg m a",
        _NODES,
        hierarchical.gather,
        arguments=_rank_size_root,
        needs_nodes=True,
    ),
    Algorithm(
        "allgather",
        "two_level",
        "node gather, Bruck among node leaders, node bcast: ceil(lg k) A + (k-1)/k n B + 2 lg m a",
        _NODES,
        hierarchical.allgather,
        needs_nodes=True,
    ),
    Algorithm(
        "reduce",
        "two_level",
        "binomial in each node, then among node leaders: ceil(lg k)(A + n B + n g) + lg m (a + n b)",
        f"{_COMM}; {_NODES}",
        hierarchical.reduce,
        commutative_only=True,
        arguments=_rank_size_root,
        needs_nodes=True,
    ),
    Algorithm(
        "allreduce",
        "two_level",
        "node reduce, recursive doubling among leaders, node bcast: lg k (A + n B) + 2 lg m (a + n b)",
        f"{_COMM}; {_NODES}",
        hierarchical.allreduce,
        commutative_only=True,
        needs_nodes=True,
    ),
    *_reduce_scatter_family("reduce_scatter"),
    *_reduce_scatter_family("reduce_scatter_block"),
    Algorithm(
        "scan",
        "recursive_doubling",
        "swap windows with rank ^ 2^k: ceil(lg p)(a + n b + 2 n g)",
        "",
        scan.scan_recursive_doubling,
    ),
    Algorithm(
        "exscan",
        "recursive_doubling",
        "swap windows with rank ^ 2^k: ceil(lg p)(a + n b + 2 n g)",
        "",
        scan.exscan_recursive_doubling,
    ),
)
"""collective -> name -> :class:`Algorithm`."""

SAFE: dict[str, str] = {
    "barrier": "dissemination",
    "bcast": "binomial",
    "gather": "binomial",
    "scatter": "binomial",
    "allgather": "bruck",
    "alltoall": "pairwise",
    "reduce": "binomial",
    "allreduce": "recursive_doubling",
    "reduce_scatter": "reduce_scatter",
    "reduce_scatter_block": "reduce_scatter",
    "scan": "recursive_doubling",
    "exscan": "recursive_doubling",
}
"""collective -> an algorithm that runs for any size, any operator, objects too."""


def get(collective: str, name: str) -> Algorithm:
    """The algorithm ``name`` of ``collective``.

    Raises:
        InvalidArgumentError: unknown collective or algorithm (the message lists the known
            ones).
    """
    try:
        family = ALGORITHMS[collective]
    except KeyError:
        raise InvalidArgumentError(
            f"unknown collective {collective!r}; expected one of {sorted(ALGORITHMS)}"
        ) from None
    try:
        return family[name]
    except KeyError:
        raise InvalidArgumentError(
            f"unknown {collective} algorithm {name!r}; expected one of {sorted(family)}"
        ) from None
