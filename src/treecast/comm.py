"""The communicator: validate arguments, build the message, pick the schedule, run it.

No algorithm lives here. Point-to-point traffic of a communicator uses its context id
``ctx`` (even); collective traffic uses ``ctx + 1`` with the per-communicator collective
sequence number as tag, so user receives with ``ANY_TAG`` never match collective messages
and consecutive collectives never mix.
"""

from __future__ import annotations

import hashlib
import os
import sys
import threading
from collections.abc import Callable, Sequence
from typing import Any

from . import _mpi4py_names
from .aio import AsyncComm
from .algorithms.hierarchical import Layout
from .collectives import Collectives
from .constants import (
    ANY_SOURCE,
    KEYVAL_APPNUM,
    KEYVAL_HOST,
    KEYVAL_IO,
    KEYVAL_TAG_UB,
    KEYVAL_UNIVERSE_SIZE,
    KEYVAL_WTIME_IS_GLOBAL,
    PROC_NULL,
    TAG_UB,
    UNDEFINED,
)
from .engine.signatures import describe_leftovers
from .errhandler import ERRORS_RETURN
from .errors import (
    CollectiveMismatchError,
    CommunicatorClosedError,
    InvalidArgumentError,
    InvalidArgumentTypeError,
    InvalidRankError,
    MissingCapabilityError,
    NotImplementedName,
)
from .group import Group
from .info import Info
from .p2p import PointToPoint
from .plans import Caller, as_int, check_root
from .request import Request
from .transports.base import Call, Transport
from .transports.capabilities import NODE_LOCAL
from .transports.node_memory import NodeMemory

_SEQ_MASK = (1 << 62) - 1


_TOPOLOGIES: dict[str, type] = {}
"""Topology communicator classes by kind (``"cart"``, ``"graph"``, ``"dist_graph"``)."""


class _CommType(type):
    """Class-level lookups of mpi4py names treecast lacks (``MPI.Comm.Get_parent``) raise
    ``NotImplementedName`` too, as instance lookups do."""

    def __getattr__(cls, name: str) -> Any:
        if name in _mpi4py_names.COMM:
            raise NotImplementedName(
                f"treecast does not implement Comm.{name} (mpi4py's Intracomm.{name}); "
                + _mpi4py_names.COMPAT_POINTER.format(name=f"Comm.{name}")
            )
        raise AttributeError(f"type object {cls.__name__!r} has no attribute {name!r}")


class Comm(PointToPoint, Collectives, metaclass=_CommType):
    """A group of ranks that communicate, with mpi4py's method names.

    Lowercase methods move Python objects (pickle protocol 5, large buffers out of band);
    capitalised methods move NumPy arrays and other buffer-protocol objects.

    Attributes:
        rank: this process's rank in the communicator.
        size: number of ranks in the communicator.
    """

    def __init__(
        self, transport: Transport, group: Sequence[int], ctx: int, name: str = ""
    ) -> None:
        self._t = transport
        self._group = tuple(group)
        self._rank_of = {w: i for i, w in enumerate(self._group)}
        self.rank = self._rank_of[transport.rank]
        self.size = len(self._group)
        self._nodes, self._caps = node_facts(transport, self._group)
        self._ctx = ctx
        self._coll_ctx = ctx + 1
        self._coll_seq = 0
        self._child_seq = 0
        self._freed = False
        self.name = name or f"comm-{ctx:x}"
        transport.context_names[ctx] = self.name
        self._locks: dict[str, threading.Lock] = {}
        self._lock_owners: dict[str, int] = {}
        self._callers: dict[str, Any] = {}
        self._group_seq: dict[tuple[tuple[int, ...], int], int] = {}
        self._info: Any = None
        self._errhandler: Any = None
        # set where COMM_WORLD, COMM_SELF and COMM_NULL are made: it gives this process's
        # own one back when one is unpickled, and such a communicator cannot be freed
        self._predefined: Callable[[], Comm] | None = None

    def __init_subclass__(cls, topology: str | None = None, **kwargs: Any) -> None:
        """Record a topology communicator class (``class Cartcomm(Comm, topology="cart")``):
        :meth:`Create_cart` and kin make them, and since they subclass :class:`Comm` this
        module cannot import theirs (:mod:`treecast.topocomm`, which the package imports)."""
        super().__init_subclass__(**kwargs)
        if topology is not None:
            _TOPOLOGIES[topology] = cls

    @staticmethod
    def _topology(kind: str) -> Any:
        """The topology communicator class recorded as ``kind``."""
        return _TOPOLOGIES[kind]

    def __repr__(self) -> str:
        if self._freed:
            return f"<treecast.Comm {self.name} (freed)>"
        return f"<treecast.Comm {self.name} rank={self.rank} size={self.size}>"

    def __bool__(self) -> bool:
        """False for a freed communicator (mpi4py's ``COMM_NULL``)."""
        return not self._freed

    def __eq__(self, other: object) -> bool:
        """Communicators are equal if they are the same one, or both freed (both
        ``COMM_NULL``)."""
        if not isinstance(other, Comm):
            return NotImplemented
        return self is other or (self._freed and other._freed)

    __hash__ = object.__hash__

    def __reduce__(self) -> tuple[Any, ...]:
        """``COMM_WORLD``, ``COMM_SELF`` and ``COMM_NULL`` pickle as the function that gives
        them (they load as this process's own); other communicators cannot be pickled.

        Raises:
            ValueError: a communicator other than those three.
        """
        if self._predefined is not None:
            return (self._predefined, ())
        raise ValueError(f"cannot pickle communicator {self.name}: it exists only in this job")

    def __getattr__(self, name: str) -> Any:
        if name in _mpi4py_names.COMM:
            raise NotImplementedName(
                f"treecast does not implement Comm.{name} (mpi4py's Intracomm.{name}); "
                + _mpi4py_names.COMPAT_POINTER.format(name=f"Comm.{name}")
            )
        raise AttributeError(f"{type(self).__name__!r} object has no attribute {name!r}")

    def _lock(self, collective: str) -> threading.Lock:
        """The lock that serialises this object collective across threads (mpi4py's comm
        lock table)."""
        lock = self._locks.get(collective)
        if lock is None:
            lock = self._locks.setdefault(collective, threading.Lock())
        return lock

    # ---- mpi4py accessors ---------------------------------------------------------------------
    def Get_rank(self) -> int:
        """This process's rank in the communicator.

        Raises:
            CommunicatorClosedError: the communicator was freed (``ERR_COMM``).
        """
        if self._freed:
            self._live("Get_rank")
        return self.rank

    def Get_size(self) -> int:
        """Number of ranks in the communicator.

        Raises:
            CommunicatorClosedError: the communicator was freed (``ERR_COMM``).
        """
        if self._freed:
            self._live("Get_size")
        return self.size

    def Get_name(self) -> str:
        """The communicator's name (``"world"``, ``"self"``, or one set by ``Set_name``)."""
        self._live("Get_name")
        return self.name

    def Set_name(self, name: str) -> None:
        """Name the communicator (shown in error messages)."""
        self._live("Set_name")
        self.name = str(name)

    def Get_topology(self) -> int:
        """``UNDEFINED``: a plain communicator has no topology (see :meth:`Create_cart`)."""
        self._live("Get_topology")
        return UNDEFINED

    @property
    def topology(self) -> int:
        return self.Get_topology()

    @property
    def is_topo(self) -> bool:
        return self.Get_topology() != UNDEFINED

    def Is_inter(self) -> bool:
        """False: treecast communicators are intra-communicators."""
        self._live("Is_inter")
        return False

    def Is_intra(self) -> bool:
        """True: treecast communicators are intra-communicators."""
        self._live("Is_intra")
        return True

    @property
    def is_inter(self) -> bool:
        return self.Is_inter()

    @property
    def is_intra(self) -> bool:
        return self.Is_intra()

    def Get_attr(self, keyval: int) -> Any:
        """The value of a predefined attribute (``MPI.TAG_UB``, ``MPI.WTIME_IS_GLOBAL``, ...);
        None for a key without a value.

        Raises:
            InvalidArgumentTypeError: ``keyval`` is not an int.
        """
        self._live("Get_attr")
        keyval = as_int(keyval, "keyval", "Get_attr")
        values = {
            KEYVAL_TAG_UB: TAG_UB,
            KEYVAL_WTIME_IS_GLOBAL: False,
            KEYVAL_UNIVERSE_SIZE: self._t.size,
            KEYVAL_HOST: PROC_NULL,
            KEYVAL_IO: ANY_SOURCE,
        }
        if keyval == KEYVAL_APPNUM:
            return None
        return values.get(keyval)

    def Compare(self, other: Comm) -> int:
        """``IDENT`` (0) for the same communicator, ``CONGRUENT`` (1) for the same ranks in
        the same order, ``SIMILAR`` (2) for the same ranks in another order, else
        ``UNEQUAL`` (3).

        Raises:
            InvalidArgumentTypeError: ``other`` is not a communicator.
        """
        if not isinstance(other, Comm):
            raise InvalidArgumentTypeError(
                f"Compare: expected a communicator, got {type(other).__name__}"
            )
        self._live("Compare")
        other._live("Compare")
        if self is other or (self._ctx == other._ctx and self._group == other._group):
            return 0
        if self._group == other._group:
            return 1
        return 2 if sorted(self._group) == sorted(other._group) else 3

    def Set_errhandler(self, errhandler: Any) -> None:
        """Record an error handler. treecast reports every error as an exception, whatever
        the handler; an uncaught one ends the job, as ``ERRORS_ARE_FATAL`` would."""
        self._live("Set_errhandler")
        self._errhandler = errhandler

    def Get_errhandler(self) -> Any:
        """The handler set by :meth:`Set_errhandler` (``MPI.ERRORS_RETURN`` by default)."""
        self._live("Get_errhandler")
        if self._errhandler is None:
            return ERRORS_RETURN
        return self._errhandler

    def Abort(self, errorcode: int = 0) -> None:
        """End the whole job at once: this process exits with ``errorcode`` (1 if it is 0,
        so that the launcher sees a failure) and the launcher ends every other rank.
        Never returns."""
        code = as_int(errorcode, "errorcode", "Abort")
        sys.stdout.flush()
        print(
            f"treecast: rank {self._t.rank} called Abort({code}) on {self.name}",
            file=sys.stderr,
            flush=True,
        )
        os._exit((code & 0xFF) or 1)

    def Cart_map(self, dims: Sequence[int], periods: Sequence[bool] | None = None) -> int:
        """This rank's rank in the grid :meth:`Create_cart` would make (``UNDEFINED`` if it
        is outside the grid). Local.

        Raises:
            InvalidArgumentError: as :meth:`Create_cart`.
        """
        self._live("Cart_map")
        rank: int = self._topology("cart")._map(self, dims, periods)
        return rank

    def Get_group(self) -> Group:
        """The communicator's processes as a :class:`~treecast.group.Group` (local)."""
        self._live("Get_group")
        return Group._of(self._group, self._t.rank)

    @property
    def group(self) -> Group:
        return self.Get_group()

    @property
    def aio(self) -> AsyncComm:
        """The asyncio view of this communicator: its blocking collective and
        point-to-point methods, same names and arguments, as coroutines
        (``await comm.aio.bcast(x, root=0)``) that never block the event loop. A collective
        through ``aio`` is the ``I*`` form (every rank must call it so); a cancelled
        receive takes nothing, a cancelled send or collective still completes. See
        :mod:`treecast.aio`."""
        return AsyncComm(self)

    def Create(self, group: Group) -> Comm:
        """A communicator of ``group``'s processes, in the group's order; ``COMM_NULL`` on
        the others. Collective over this communicator.

        Raises:
            InvalidArgumentError: ``group`` holds a process that is not in this
                communicator.
        """
        self._live("Create")
        members = self._members_of(group, "Create")
        me = self._t.rank
        return self.Split(
            0 if me in members else UNDEFINED, members.index(me) if me in members else 0
        )

    def Create_group(self, group: Group, tag: int = 0) -> Comm:
        """A communicator of ``group``'s processes, in the group's order. Collective over
        the group's members only (the other ranks of this communicator do not call it).

        Raises:
            InvalidArgumentError: this process or another member is not in this
                communicator, or this process is not in ``group``.
        """
        self._live("Create_group")
        tag = self._tag(tag, "tag", "Create_group")
        members = self._members_of(group, "Create_group")
        if self._t.rank not in members:
            raise InvalidArgumentError("Create_group: this process is not in the group")
        # every member derives the same context without communicating: creation is
        # collective over the members and ordered, so their counters agree
        key = (members, tag)
        count = self._group_seq.get(key, 0) + 1
        self._group_seq[key] = count
        digest = hashlib.blake2b(
            f"{self._ctx}/group/{members}/{tag}/{count}".encode(), digest_size=8
        ).digest()
        ctx = int.from_bytes(digest, "little") & ((1 << 63) - 2)
        return Comm(self._t, members, ctx, f"{self.name}.group{count}")

    def _members_of(self, group: Any, op: str) -> tuple[int, ...]:
        if not isinstance(group, Group):
            raise InvalidArgumentTypeError(f"{op}: expected a Group, got {type(group).__name__}")
        members = group._list(op)
        outside = [w for w in members if w not in self._rank_of]
        if outside:
            raise InvalidArgumentError(
                f"{op}: the group holds processes that are not in {self.name}"
            )
        return members

    def Create_graph(
        self, index: Sequence[int], edges: Sequence[int], reorder: bool = False
    ) -> Comm:
        """A graph over the first ``len(index)`` ranks: ``index[i]`` counts the edges of
        nodes ``0..i``, ``edges`` lists the neighbours node by node (``reorder`` is ignored).
        Collective. Ranks outside the graph get ``COMM_NULL``.

        Raises:
            InvalidArgumentError: inconsistent ``index``/``edges`` or too many nodes
                (``ERR_ARG``), an edge that is not a node (``ERR_RANK``).
        """
        self._live("Create_graph")
        graph: Comm = self._topology("graph")._create(self, index, edges)
        return graph

    def Graph_map(self, index: Sequence[int], edges: Sequence[int]) -> int:
        """This rank's rank in the graph :meth:`Create_graph` would make (``UNDEFINED`` if
        it is outside). Local.

        Raises:
            InvalidArgumentError: as :meth:`Create_graph`.
        """
        self._live("Graph_map")
        rank: int = self._topology("graph")._map(self, index, edges)
        return rank

    def Create_dist_graph_adjacent(
        self,
        sources: Sequence[int] | None,
        destinations: Sequence[int] | None,
        sourceweights: Any = None,
        destweights: Any = None,
        info: Any = None,
        reorder: bool = False,
    ) -> Comm:
        """A distributed graph in which every rank names the ranks it receives from and
        sends to, with optional weights (``MPI.UNWEIGHTED``, ``MPI.WEIGHTS_EMPTY`` or
        lists). Collective.

        Raises:
            InvalidArgumentError: a neighbour that is not a rank, or weights that do not
                match the neighbours.
        """
        self._live("Create_dist_graph_adjacent")
        graph: Comm = self._topology("dist_graph")._adjacent(
            self, sources, destinations, sourceweights, destweights
        )
        return graph

    def Create_dist_graph(
        self,
        sources: Sequence[int],
        degrees: Sequence[int],
        destinations: Sequence[int],
        weights: Any = None,
        info: Any = None,
        reorder: bool = False,
    ) -> Comm:
        """A distributed graph from edges any rank may name: ``sources[i]`` has
        ``degrees[i]`` edges to the next entries of ``destinations``. Collective (the ranks
        exchange the edges).

        Raises:
            InvalidArgumentError: inconsistent arguments (see
                :meth:`treecast.topocomm.Distgraphcomm._from_edges`).
        """
        self._live("Create_dist_graph")
        graph: Comm = self._topology("dist_graph")._from_edges(
            self, sources, degrees, destinations, weights
        )
        return graph

    def toint(self) -> int:
        """-1: treecast communicators have no integer handle (mpi4py's ``Comm.toint``)."""
        return -1

    def py2f(self) -> int:
        """-1: treecast communicators have no Fortran handle."""
        return -1

    def Create_cart(
        self,
        dims: Sequence[int],
        periods: Sequence[bool] | None = None,
        reorder: bool = False,
    ) -> Comm:
        """A Cartesian grid over the first ``prod(dims)`` ranks (row-major; ``reorder`` is
        accepted and ignored). Collective. Ranks outside the grid get ``COMM_NULL``.

        Raises:
            InvalidArgumentError: a dimension < 1 or a grid larger than the communicator
                (``ERR_DIMS``), or ``periods`` of another length (``ERR_ARG``).
        """
        self._live("Create_cart")
        cart: Comm = self._topology("cart")._create(self, dims, periods)
        return cart

    # ---- validation ---------------------------------------------------------------------------
    def _live(self, op: str) -> None:
        if self._freed:
            raise CommunicatorClosedError(f"{op}: communicator {self.name} has been freed")

    def _root(self, value: Any, op: str) -> int:
        """``value`` as a valid root of this communicator (see :func:`plans.check_root`)."""
        return check_root(Caller(self.rank, self.size, op), value)

    def _next_tag(self) -> int:
        self._coll_seq = (self._coll_seq + 1) & _SEQ_MASK
        return self._coll_seq

    # ---- communicator management ----------------------------------------------------------------
    def _derive_ctx(self, label: str) -> int:
        self._child_seq += 1
        digest = hashlib.blake2b(
            f"{self._ctx}/{self._child_seq}/{label}".encode(), digest_size=8
        ).digest()
        return int.from_bytes(digest, "little") & ((1 << 63) - 2)

    def dup(self, info: Any = None) -> Comm:
        """A new communicator with the same ranks and a separate message space (``info``:
        hints, kept for ``Get_info``).

        Raises:
            CommunicatorClosedError: the communicator was freed.
        """
        self._live("dup")
        if info is not None:
            return self.Dup_with_info(info)
        return self._child(
            self._group, self._derive_ctx("dup"), f"{self.name}.dup{self._child_seq}"
        )

    Dup = dup
    Clone = dup

    def Dup_with_info(self, info: Any) -> Comm:
        """:meth:`dup` with hints (treecast reads none; ``Get_info`` returns them)."""
        new = self.dup()
        new._info = info
        return new

    def Idup(self, info: Any = None) -> Any:
        """A :meth:`dup` and a request that is already complete: ``(comm, request)`` is
        what mpi4py returns; treecast derives the new context without communicating.

        Raises:
            CommunicatorClosedError: the communicator was freed.
        """
        new = self.dup() if info is None else self.Dup_with_info(info)
        return new, Request()

    def Idup_with_info(self, info: Any) -> Any:
        """:meth:`Idup` with hints.

        Raises:
            CommunicatorClosedError: the communicator was freed.
        """
        return self.Idup(info)

    def Get_info(self) -> Any:
        """The hints given by ``Dup_with_info``/``Set_info`` (an empty ``MPI.Info``)."""
        self._live("Get_info")
        return Info.Create(getattr(self, "_info", None) or {})

    def Set_info(self, info: Any) -> None:
        """Keep hints (treecast reads none)."""
        self._live("Set_info")
        self._info = info

    @property
    def info(self) -> Any:
        return self.Get_info()

    @info.setter
    def info(self, info: Any) -> None:
        self.Set_info(info)

    def _child(self, group: Sequence[int], ctx: int, name: str) -> Comm:
        """A communicator derived from this one (a topology communicator keeps its type)."""
        return Comm(self._t, group, ctx, name)

    def split(self, color: int = 0, key: int = 0) -> Comm | None:
        """Partition the ranks by ``color``; order each part by ``key``, then by old rank.

        A rank passing ``color=UNDEFINED`` gets None. Collective: every rank must call it.

        Raises:
            InvalidArgumentTypeError: ``color`` or ``key`` is not an int.
            InvalidArgumentError: ``color`` is negative and not UNDEFINED.
        """
        self._live("split")
        color = as_int(color, "color", "split")
        key = as_int(key, "key", "split")
        if color < 0 and color != UNDEFINED:
            raise InvalidRankError(f"split: color={color} must be >= 0 or UNDEFINED")
        entries = self._allgather_small(
            (color, key), Call("split", self.name, self._next_tag(), -1)
        )
        ctx = self._derive_ctx("split")
        if color == UNDEFINED:
            return None
        members = sorted((k, r) for r, (c, k) in enumerate(entries) if c == color)
        group = [self._group[r] for _, r in members]
        ctx = (ctx + 2 * (color % (1 << 20))) & ((1 << 63) - 2)
        return Comm(self._t, group, ctx, f"{self.name}.split{self._child_seq}[{color}]")

    def Split(self, color: int = 0, key: int = 0) -> Comm:
        """mpi4py's ``Split``: :meth:`split`, with ``COMM_NULL`` (a falsy, freed
        communicator) instead of None for ``color=UNDEFINED``.

        Raises:
            InvalidArgumentTypeError, InvalidArgumentError: as :meth:`split`.
        """
        sub = self.split(color, key)
        return null_comm() if sub is None else sub

    def Split_type(self, split_type: int, key: int = 0, info: Any = None) -> Comm:
        """Split by hardware: ``COMM_TYPE_SHARED`` (1) groups the ranks that share memory
        (the transport's nodes: on one machine, every rank); ``UNDEFINED`` gives
        ``COMM_NULL``. Collective.

        Raises:
            InvalidArgumentError: another split type.
        """
        split_type = as_int(split_type, "split_type", "Split_type")
        if split_type not in (1, UNDEFINED):
            raise InvalidArgumentError(
                f"Split_type: split_type={split_type} is not supported; expected "
                f"COMM_TYPE_SHARED (1) or UNDEFINED"
            )
        ids = self._t.node_ids
        node = 0 if ids is None else ids[self._t.rank]
        return self.Split(node if split_type == 1 else UNDEFINED, key)

    def _node_memory(self, what: str) -> NodeMemory:
        """The node memory that every rank of this communicator maps, for operation ``what``.

        Raises:
            MissingCapabilityError: the transport has none, or the ranks span several nodes
                (the message says to split by node first).
        """
        if self._nodes is not None:
            raise MissingCapabilityError(
                f"{what} on {self.name}: its {self.size} ranks span {max(self._nodes) + 1} "
                f"nodes, which share no memory; split it by node first "
                f"(comm.Split_type(COMM_TYPE_SHARED)) and use one communicator per node"
            )
        return self._t.node_memory(what)

    def _node_split(self, root: int) -> tuple[Comm, Comm | None, int]:
        """For a communicator that spans nodes: its ranks on this rank's node; the leaders
        of a call rooted at ``root`` (the root, and the first rank of every other node; the
        root is their rank 0), or None on a rank that is not one; and the rank of this
        node's leader in the node's communicator. The communicators are made once
        (collectively, inside the first such call) and kept."""
        nodes = self._nodes
        assert nodes is not None
        cache: dict[Any, Comm | None] = self.__dict__.setdefault("_node_comms", {})
        node = cache.get("node")
        if node is None:
            node = self.split(nodes[self.rank], self.rank)
            assert node is not None  # a color >= 0 always gives a communicator
            cache["node"] = node
        key = ("leaders", root)
        if key not in cache:
            lead = self.rank == root or (nodes[self.rank] != nodes[root] and node.rank == 0)
            cache[key] = self.split(
                0 if lead else UNDEFINED, 0 if self.rank == root else 1 + self.rank
            )
        here = nodes[self.rank] == nodes[root]
        local_root = sum(1 for q in range(root) if nodes[q] == nodes[root]) if here else 0
        return node, cache[key], local_root

    def free(self) -> None:
        """Release the communicator; later calls on it raise CommunicatorClosedError.

        Raises:
            CommunicatorClosedError: it is the world or self communicator, or already freed
                (``ERR_COMM``).
        """
        self._live("Free")
        if self._predefined is not None:
            raise CommunicatorClosedError(f"Free: cannot free the {self.name} communicator")
        self._freed = True
        for sub in self.__dict__.pop("_node_comms", {}).values():
            if sub is not None:
                sub.free()
        pool = self.__dict__.get("_share_pool")
        if pool is not None:  # copy=False segments: what nothing views is unmapped now
            pool.close()
        left = self._t.take_unexpected(self._coll_ctx)
        if left and not self._t.waits_failed:
            raise CollectiveMismatchError(
                f"Free of {self.name}: rank {self.rank} never received these messages of "
                f"its collectives (the ranks called different collectives, or the same ones "
                f"in another order or with other roots):\n"
                + "\n".join(describe_leftovers(left, self._t.context_names, self._sender))
            )

    def _sender(self, world_rank: int) -> str:
        return f"rank {self._rank_of.get(world_rank, world_rank)}"

    Free = free


def node_facts(
    transport: Transport, group: tuple[int, ...]
) -> tuple[tuple[int, ...] | None, frozenset[str]]:
    """What a communicator of world ranks ``group`` knows of its nodes: the node of each of
    its ranks (numbered 0, 1, ... in order of first appearance), or None when they all
    share one node; and the transport's capabilities that hold on it (none of
    :data:`~treecast.transports.capabilities.NODE_LOCAL` across nodes)."""
    ids = transport.node_ids
    if ids is None:
        return None, transport.capabilities
    number: dict[int, int] = {}
    nodes = Layout(number.setdefault(ids[w], len(number)) for w in group)
    if len(number) == 1:
        return None, transport.capabilities
    return nodes, transport.capabilities - NODE_LOCAL


def null_comm() -> Comm:
    """mpi4py's ``COMM_NULL``: a communicator that is falsy, equal to every freed one, and
    whose methods raise ``CommunicatorClosedError`` (``ERR_COMM``)."""
    c = Comm.__new__(Comm)
    c._freed = True
    c.name = "COMM_NULL"
    c.rank = c.size = UNDEFINED
    c._locks = {}
    c._lock_owners = {}
    c._group_seq = {}
    c._info = None
    c._errhandler = None
    c._predefined = None
    return c


def _comm_null() -> Comm:
    """``COMM_NULL``: what unpickling it gives."""
    return COMM_NULL


COMM_NULL = null_comm()
"""mpi4py's predefined ``COMM_NULL`` (``MPI.COMM_NULL``)."""
COMM_NULL._predefined = _comm_null
