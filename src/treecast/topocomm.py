"""Topology communicators: Cartesian grids (mpi4py's ``Cartcomm``, over the grid functions
of :mod:`treecast.topology.cart`), graphs (``Graphcomm``) and distributed graphs
(``Distgraphcomm``).

``comm.Create_cart(dims, periods)`` makes a grid of the first ``prod(dims)`` ranks,
row-major; ``comm.Create_graph(index, edges)`` a graph of the first ``len(index)`` ranks;
``comm.Create_dist_graph_adjacent(sources, destinations)`` a graph in which every rank names
its own neighbours. ``reorder`` is accepted and ignored (ranks keep their order).
Every topology has the neighbourhood collectives (:class:`Neighborhood`); the ``Alltoallw``
forms are not implemented.
"""

from __future__ import annotations

import operator
from collections.abc import Callable, Sequence
from math import prod
from typing import Any

from . import _mpi4py_names
from .algorithms import neighbor
from .comm import Comm
from .constants import PROC_NULL, UNDEFINED
from .engine.store import BufferStore, ObjectStore, Store
from .errors import ERR_ARG, ERR_DIMS, ERR_RANK, InvalidArgumentError, MPIError, NotImplementedName
from .ops import LOR as _LOR
from .plans import as_int
from .request import Request
from .topology import cart
from .transports.base import Call, Transport

GRAPH, CART, DIST_GRAPH = 1, 2, 3


class Weights:
    """mpi4py's weight sentinels ``MPI.UNWEIGHTED`` and ``MPI.WEIGHTS_EMPTY``."""

    __slots__ = ("_name",)

    def __init__(self, name: str) -> None:
        self._name = name

    def __repr__(self) -> str:
        return self._name


UNWEIGHTED = Weights("UNWEIGHTED")
WEIGHTS_EMPTY = Weights("WEIGHTS_EMPTY")


class TopologyError(InvalidArgumentError, MPIError):
    """A bad grid argument: dimensions (``ERR_DIMS``), lengths (``ERR_ARG``), coordinates or
    ranks (``ERR_RANK``)."""

    def __init__(self, message: str, error_class: int) -> None:
        super().__init__(message)
        self.error_class = error_class

    def __reduce__(self) -> tuple[object, ...]:
        return (type(self), (str(self), self.error_class))


def check_grid(
    dims: Sequence[int], periods: Sequence[bool] | None, size: int, op: str
) -> tuple[tuple[int, ...], tuple[bool, ...]]:
    """Validated ``(dims, periods)`` of a grid for a communicator of ``size`` ranks.

    Raises:
        TopologyError: a dimension < 0, a grid larger than ``size`` (``ERR_DIMS``), or
            ``periods`` of another length (``ERR_ARG``).
    """
    try:
        d = tuple(operator.index(x) for x in dims)
    except TypeError:
        raise TopologyError(
            f"{op}: dims must be a sequence of ints, got {dims!r}", ERR_DIMS
        ) from None
    if any(x < 1 for x in d):
        raise TopologyError(f"{op}: every dimension must be >= 1, got dims={list(d)}", ERR_DIMS)
    total = 1
    for x in d:
        total *= x
    if total > size:
        raise TopologyError(
            f"{op}: the grid {list(d)} needs {total} ranks; the communicator has {size}",
            ERR_DIMS,
        )
    if periods is None:
        p = (False,) * len(d)
    else:
        p = tuple(bool(x) for x in periods)
        if len(p) != len(d):
            raise TopologyError(f"{op}: periods has {len(p)} entries; dims has {len(d)}", ERR_ARG)
    return d, p


def _nothing() -> None:
    """The result of a buffer exchange: the data is already in the receive buffer."""


class Neighborhood(Comm):
    """Neighbourhood collectives of a topology communicator: every rank sends to its
    out-neighbours (``outedges``) and receives from its in-neighbours (``inedges``), in
    order; ``PROC_NULL`` neighbours (edges of a non-periodic grid) send and receive nothing.
    The messages travel point-to-point in the collective context, one per edge.
    The non-blocking forms (``Ineighbor_*``) post every message at once and return a
    request.
    """

    @property
    def inedges(self) -> list[int]:
        """The ranks this rank receives from, in order (set by each topology)."""
        raise NotImplementedError("inedges")

    @property
    def outedges(self) -> list[int]:
        """The ranks this rank sends to, in order (set by each topology)."""
        raise NotImplementedError("outedges")

    def _send_order(self, outs: list[int]) -> list[int]:
        """The order in which to send along the out-edges, so that the messages between
        each pair of ranks meet the receives in the receiver's in-edge order (messages
        between a pair match in order)."""
        return list(range(len(outs)))

    def _neighbors(
        self,
        name: str,
        store: Store,
        result: Callable[[], Any],
        *,
        same: bool,
        timeout: float | None = None,
        nonblocking: bool = False,
    ) -> Any:
        """Run the neighbourhood exchange (``algorithms/neighbor.py``) over ``store`` on
        the engine: block ``j`` (0 when ``same``) to out-edge ``j``, block
        ``len(outedges) + i`` from in-edge ``i``.

        Raises:
            CollectiveMismatchError, TimeoutError, ProcessFailedError: as any collective.
        """
        outs = self.outedges
        steps = tuple(neighbor.exchange(outs, self.inedges, self._send_order(outs), same))
        what = Call(name, self.name, self._next_tag(), -1)
        return self._run_steps(steps, store, result, what, timeout, nonblocking)

    def _received(self, store: ObjectStore) -> Callable[[], list[Any]]:
        """The objects from each in-edge (None for ``PROC_NULL``), once received."""
        base, ins = len(self.outedges), self.inedges

        def result() -> list[Any]:
            return [None if s == PROC_NULL else store.get(base + i) for i, s in enumerate(ins)]

        return result

    def neighbor_allgather(self, sendobj: Any, *, timeout: float | None = None) -> list[Any]:
        """Every in-neighbour's ``sendobj``, in in-edge order (None for ``PROC_NULL``).

        Raises:
            SerializationError: ``sendobj`` cannot be pickled (the neighbours are told).
            SenderFailedError: an in-neighbour could not pickle what it sent here.
            CollectiveMismatchError, TimeoutError, ProcessFailedError: as any collective.
        """
        self._live("neighbor_allgather")
        store = ObjectStore({0: sendobj}, where="neighbor_allgather")
        result = self._received(store)
        return self._neighbors("neighbor_allgather", store, result, same=True, timeout=timeout)

    def neighbor_alltoall(self, sendobj: Any, *, timeout: float | None = None) -> list[Any]:
        """Send ``sendobj[j]`` to out-neighbour ``j``; return what each in-neighbour sent
        here, in in-edge order (None for ``PROC_NULL``).

        Raises:
            InvalidArgumentError: ``sendobj`` does not hold one item per out-neighbour.
            SerializationError, CollectiveMismatchError, TimeoutError: as above.
        """
        self._live("neighbor_alltoall")
        items = list(sendobj)
        if len(items) != len(self.outedges):
            raise InvalidArgumentError(
                f"neighbor_alltoall: expected {len(self.outedges)} items (one per "
                f"out-neighbour), got {len(items)}"
            )
        store = ObjectStore(dict(enumerate(items)), where="neighbor_alltoall")
        result = self._received(store)
        return self._neighbors("neighbor_alltoall", store, result, same=False, timeout=timeout)

    def _blocks(
        self, name: str, sendbuf: Any, recvbuf: Any, *, send_v: bool, recv_v: bool, same: bool
    ) -> tuple[list[list[memoryview]], list[memoryview | None]]:
        """Byte views of the send block per out-edge and the receive block per in-edge.
        ``same``: every out-edge gets the whole send buffer (allgather)."""
        from .message.buffers import array_bytes, as_array, vector_spec

        nin, nout = len(self.inedges), len(self.outedges)
        if same:
            whole = as_array(sendbuf, f"{name} sendbuf")
            sblocks = [whole] * nout
        elif send_v:
            arr, c, d = vector_spec(sendbuf, f"{name} sendbuf", nout)
            sblocks = [arr[d[j] : d[j] + c[j]] for j in range(nout)]
        else:
            arr = as_array(sendbuf, f"{name} sendbuf", blocks=max(nout, 1))
            if nout and arr.size % nout:
                raise InvalidArgumentError(
                    f"{name}: the send buffer's {arr.size} items do not split over {nout} "
                    f"out-neighbours"
                )
            n = arr.size // nout if nout else 0
            sblocks = [arr[j * n : (j + 1) * n] for j in range(nout)]
        if recv_v:
            rarr, c, d = vector_spec(recvbuf, f"{name} recvbuf", nin, writable=True)
            rblocks = [rarr[d[i] : d[i] + c[i]] for i in range(nin)]
        else:
            rarr = as_array(recvbuf, f"{name} recvbuf", writable=True, blocks=max(nin, 1))
            if nin and rarr.size % nin:
                raise InvalidArgumentError(
                    f"{name}: the receive buffer's {rarr.size} items do not split over {nin} "
                    f"in-neighbours"
                )
            n = rarr.size // nin if nin else 0
            rblocks = [rarr[i * n : (i + 1) * n] for i in range(nin)]
        for b in [*sblocks, *rblocks]:
            if b.dtype != rarr.dtype and sblocks:
                raise InvalidArgumentError(
                    f"{name}: send and receive buffers have different dtypes "
                    f"({sblocks[0].dtype} and {rarr.dtype})"
                )
        sends = [[array_bytes(b)] for b in sblocks]
        recvs: list[memoryview | None] = [array_bytes(b) for b in rblocks]
        return sends, recvs

    def _buffer_store(
        self, name: str, sendbuf: Any, recvbuf: Any, *, send_v: bool, recv_v: bool, same: bool
    ) -> BufferStore:
        """The blocks of a buffer neighbourhood exchange: the send block per out-edge (one
        for all when ``same``) and, after them, the receive block per in-edge, in place."""
        self._live(name)
        sends, recvs = self._blocks(name, sendbuf, recvbuf, send_v=send_v, recv_v=recv_v, same=same)
        views = [f[0] for f in sends[:1]] if same else [f[0] for f in sends]
        base = len(self.outedges)
        layout = {j: (j, 0, v.nbytes) for j, v in enumerate(views)}
        bases: list[memoryview] = list(views)
        for i, v in enumerate(recvs):
            if v is not None:
                layout[base + i] = (len(bases), 0, v.nbytes)
                bases.append(v)
        return BufferStore(bases, layout)

    def _buffer_exchange(
        self,
        name: str,
        sendbuf: Any,
        recvbuf: Any,
        *,
        send_v: bool = False,
        recv_v: bool = False,
        same: bool = False,
        timeout: float | None = None,
    ) -> None:
        """A blocking buffer neighbourhood exchange (``send_v``/``recv_v``: vector specs;
        ``same``: every out-edge gets the whole send buffer)."""
        store = self._buffer_store(name, sendbuf, recvbuf, send_v=send_v, recv_v=recv_v, same=same)
        self._neighbors(name, store, _nothing, same=same, timeout=timeout)

    def _ibuffer_exchange(
        self,
        name: str,
        sendbuf: Any,
        recvbuf: Any,
        *,
        send_v: bool = False,
        recv_v: bool = False,
        same: bool = False,
    ) -> Request:
        """The non-blocking form: the messages are posted now and move whenever this rank
        makes progress; the request completes when every one has."""
        store = self._buffer_store(name, sendbuf, recvbuf, send_v=send_v, recv_v=recv_v, same=same)
        request: Request = self._neighbors(name, store, _nothing, same=same, nonblocking=True)
        return request

    def Ineighbor_allgather(self, sendbuf: Any, recvbuf: Any) -> Request:
        """Start a :meth:`Neighbor_allgather`."""
        return self._ibuffer_exchange("Ineighbor_allgather", sendbuf, recvbuf, same=True)

    def Ineighbor_allgatherv(self, sendbuf: Any, recvbuf: Any) -> Request:
        """Start a :meth:`Neighbor_allgatherv`."""
        return self._ibuffer_exchange(
            "Ineighbor_allgatherv", sendbuf, recvbuf, recv_v=True, same=True
        )

    def Ineighbor_alltoall(self, sendbuf: Any, recvbuf: Any) -> Request:
        """Start a :meth:`Neighbor_alltoall`."""
        return self._ibuffer_exchange("Ineighbor_alltoall", sendbuf, recvbuf)

    def Ineighbor_alltoallv(self, sendbuf: Any, recvbuf: Any) -> Request:
        """Start a :meth:`Neighbor_alltoallv`."""
        return self._ibuffer_exchange(
            "Ineighbor_alltoallv", sendbuf, recvbuf, send_v=True, recv_v=True
        )

    def Neighbor_allgather(
        self, sendbuf: Any, recvbuf: Any, *, timeout: float | None = None
    ) -> None:
        """Every in-neighbour's ``sendbuf`` into ``recvbuf``, one block per in-edge
        (blocks of ``PROC_NULL`` neighbours are left as they are).

        Raises:
            InvalidArgumentError, InvalidBufferError, TruncationError: bad buffers.
        """
        self._buffer_exchange("Neighbor_allgather", sendbuf, recvbuf, same=True, timeout=timeout)

    def Neighbor_allgatherv(
        self, sendbuf: Any, recvbuf: Any, *, timeout: float | None = None
    ) -> None:
        """:meth:`Neighbor_allgather` with counts and displacements per in-edge.

        Raises:
            InvalidArgumentError, InvalidBufferError, TruncationError: bad buffers.
        """
        self._buffer_exchange(
            "Neighbor_allgatherv", sendbuf, recvbuf, recv_v=True, same=True, timeout=timeout
        )

    def Neighbor_alltoall(
        self, sendbuf: Any, recvbuf: Any, *, timeout: float | None = None
    ) -> None:
        """Block ``j`` of ``sendbuf`` to out-neighbour ``j``; block ``i`` of ``recvbuf``
        from in-neighbour ``i``.

        Raises:
            InvalidArgumentError, InvalidBufferError, TruncationError: bad buffers.
        """
        self._buffer_exchange("Neighbor_alltoall", sendbuf, recvbuf, timeout=timeout)

    def Neighbor_alltoallv(
        self, sendbuf: Any, recvbuf: Any, *, timeout: float | None = None
    ) -> None:
        """:meth:`Neighbor_alltoall` with counts and displacements per edge.

        Raises:
            InvalidArgumentError, InvalidBufferError, TruncationError: bad buffers.
        """
        self._buffer_exchange(
            "Neighbor_alltoallv", sendbuf, recvbuf, send_v=True, recv_v=True, timeout=timeout
        )


class Cartcomm(Neighborhood, topology="cart"):
    """A communicator whose ranks form a Cartesian grid (row-major; see
    :mod:`treecast.topology.cart`). All of :class:`~treecast.Comm` plus coordinates, shifts
    and sub-grids, and the neighbourhood collectives.

    Attributes:
        coords: this rank's coordinates.
    """

    def __init__(
        self,
        transport: Transport,
        group: Sequence[int],
        ctx: int,
        name: str,
        dims: Sequence[int],
        periods: Sequence[bool],
    ) -> None:
        super().__init__(transport, group, ctx, name)
        self._dims = tuple(dims)
        self._periods = tuple(bool(p) for p in periods)

    @property
    def dims(self) -> list[int]:
        """The grid's extent per dimension (a new list)."""
        return list(self._dims)

    @property
    def periods(self) -> list[int]:
        """Whether each dimension wraps around, as 0/1 (a new list, as mpi4py's)."""
        return [int(p) for p in self._periods]

    def __getattr__(self, name: str) -> Any:
        if name in _mpi4py_names.CARTCOMM:
            raise NotImplementedName(
                f"treecast does not implement {type(self).__name__}.{name} (neighbourhood "
                f"collectives); "
                + _mpi4py_names.COMPAT_POINTER.format(name=f"{type(self).__name__}.{name}")
            )
        return Comm.__getattr__(self, name)

    def _send_order(self, outs: list[int]) -> list[int]:
        # the rank ahead of me in a dimension receives my message in its "behind" slot:
        # between two ranks, send in the receiver's slot order (opposite direction first)
        return sorted(range(len(outs)), key=lambda j: j ^ 1)

    @staticmethod
    def _create(comm: Comm, dims: Sequence[int], periods: Sequence[bool] | None) -> Comm:
        """``comm.Create_cart(dims, periods)`` (``COMM_NULL`` outside the grid).

        Raises:
            TopologyError: as :func:`check_grid`.
        """
        d, p = check_grid(dims, _periods(periods, len(dims)), comm.size, "Create_cart")
        sub = comm.Split(0 if comm.rank < prod(d) else UNDEFINED, comm.rank)
        if not sub:
            return sub
        return Cartcomm(comm._t, sub._group, sub._ctx, f"{comm.name}.cart", d, p)

    @staticmethod
    def _map(comm: Comm, dims: Sequence[int], periods: Sequence[bool] | None) -> int:
        """``comm.Cart_map(dims, periods)``.

        Raises:
            TopologyError: as :func:`check_grid`.
        """
        d, _ = check_grid(dims, _periods(periods, len(dims)), comm.size, "Cart_map")
        return comm.rank if comm.rank < prod(d) else UNDEFINED

    def _child(self, group: Sequence[int], ctx: int, name: str) -> Comm:
        return Cartcomm(self._t, group, ctx, name, self._dims, self._periods)

    def Get_topology(self) -> int:
        """``CART`` (2)."""
        self._live("Get_topology")
        return CART

    @property
    def ndim(self) -> int:
        return len(self._dims)

    def Get_dim(self) -> int:
        """Number of dimensions."""
        return len(self._dims)

    @property
    def dim(self) -> int:
        return len(self._dims)

    @property
    def coords(self) -> list[int]:
        return self.Get_coords(self.rank)

    def Get_topo(self) -> tuple[list[int], list[int], list[int]]:
        """``(dims, periods, coords)`` with periods as 0/1 ints, as mpi4py returns them."""
        self._live("Get_topo")
        return list(self._dims), [int(p) for p in self._periods], self.coords

    @property
    def topo(self) -> tuple[list[int], list[int], list[int]]:
        return self.Get_topo()

    def Get_coords(self, rank: int) -> list[int]:
        """Coordinates of ``rank``.

        Raises:
            TopologyError: ``rank`` is outside the grid (``ERR_RANK``).
        """
        r = as_int(rank, "rank", "Get_coords")
        if not 0 <= r < self.size:
            raise TopologyError(
                f"Get_coords: rank={r} is outside the grid of {self.size} ranks", ERR_RANK
            )
        return cart.coords_of(self._dims, r)

    def Get_cart_rank(self, coords: Sequence[int]) -> int:
        """Rank at ``coords`` (periodic dimensions wrap around).

        Raises:
            TopologyError: wrong number of coordinates (``ERR_ARG``) or a coordinate outside
                a non-periodic dimension (``ERR_RANK``).
        """
        coords = [as_int(c, "coords", "Get_cart_rank") for c in coords]
        if len(coords) != len(self._dims):
            raise TopologyError(
                f"Get_cart_rank: expected {len(self._dims)} coordinates, got {coords}", ERR_ARG
            )
        try:
            return cart.rank_of(self._dims, self._periods, coords)
        except ValueError as exc:
            raise TopologyError(f"Get_cart_rank: {exc}", ERR_RANK) from None

    def Shift(self, direction: int, disp: int) -> tuple[int, int]:
        """``(source, dest)`` for a shift of ``disp`` along ``direction``: ``dest`` is
        ``disp`` steps ahead, ``source`` as many behind; ``PROC_NULL`` past the edge of a
        non-periodic dimension.

        Raises:
            TopologyError: ``direction`` is not a dimension (``ERR_ARG``).
        """
        direction = as_int(direction, "direction", "Shift")
        disp = as_int(disp, "disp", "Shift")
        if not 0 <= direction < len(self._dims):
            raise TopologyError(
                f"Shift: direction={direction} is not a dimension; expected 0 <= direction "
                f"< {len(self._dims)}",
                ERR_ARG,
            )
        return cart.shift(self._dims, self._periods, self.rank, direction, disp)

    @property
    def inedges(self) -> list[int]:
        """The neighbours, for each dimension the rank one step behind then one ahead
        (``PROC_NULL`` past a non-periodic edge), as neighbourhood collectives order them."""
        return cart.neighbors(self._dims, self._periods, self.rank)

    @property
    def outedges(self) -> list[int]:
        return self.inedges

    @property
    def inoutedges(self) -> tuple[list[int], list[int]]:
        return self.inedges, self.inedges

    @property
    def indegree(self) -> int:
        return 2 * len(self._dims)

    @property
    def outdegree(self) -> int:
        return 2 * len(self._dims)

    @property
    def degrees(self) -> tuple[int, int]:
        return self.indegree, self.outdegree

    def Sub(self, remain_dims: Sequence[bool]) -> Cartcomm:
        """The sub-grid through this rank that keeps the dimensions where ``remain_dims``
        is true. Collective.

        Raises:
            TopologyError: ``remain_dims`` has the wrong length (``ERR_ARG``).
        """
        remain = [bool(x) for x in remain_dims]
        if len(remain) != len(self._dims):
            raise TopologyError(
                f"Sub: remain_dims has {len(remain)} entries; the grid has {len(self._dims)}",
                ERR_ARG,
            )
        color, key = cart.sub_grid(self._dims, self.rank, remain)
        sub = self.split(color, key)
        assert sub is not None and color != UNDEFINED
        return Cartcomm(
            self._t,
            sub._group,
            sub._ctx,
            f"{self.name}.sub",
            [d for d, keep in zip(self._dims, remain, strict=True) if keep],
            [p for p, keep in zip(self._periods, remain, strict=True) if keep],
        )


def compute_dims(nnodes: int, dims: int | Sequence[int]) -> list[int]:
    """MPI's ``Dims_create`` with mpi4py's arguments: ``dims`` is a number of dimensions
    or a list whose non-zero entries are kept.

    Raises:
        TopologyError: ``ERR_DIMS`` when ``nnodes`` cannot be laid out as asked.
    """
    n = as_int(nnodes, "nnodes", "Compute_dims")
    if isinstance(dims, Sequence):
        given = [as_int(d, "dims", "Compute_dims") for d in dims]
    else:
        ndims = as_int(dims, "dims", "Compute_dims")
        if ndims < 0:
            raise TopologyError(f"Compute_dims: dims={ndims} must be >= 0", ERR_DIMS)
        given = [0] * ndims
    try:
        return cart.compute_dims(n, given)
    except ValueError as exc:
        raise TopologyError(f"Compute_dims: {exc}", ERR_DIMS) from None


def _ranks(values: Any, size: int, what: str, op: str) -> list[int]:
    out = [as_int(v, what, op) for v in values]
    bad = [v for v in out if not 0 <= v < size]
    if bad:
        raise TopologyError(
            f"{op}: {what} {bad} are not ranks; expected 0 <= rank < {size}", ERR_RANK
        )
    return out


def graph_layout(
    index: Sequence[int], edges: Sequence[int], size: int, op: str
) -> tuple[list[int], list[int]]:
    """Validated ``(index, edges)`` of MPI's graph arrays: ``index[i]`` is the number of
    edges of nodes ``0..i``; an index with a leading 0 (the "standard" adjacency array) is
    accepted too, as in mpi4py.

    Raises:
        TopologyError: more nodes than ranks, a decreasing index, an index that does not end
            at ``len(edges)``, or an edge that is not a node.
    """
    idx = [as_int(v, "index", op) for v in index]
    e = [as_int(v, "edges", op) for v in edges]
    if len(idx) > 1 and idx[0] == 0 and idx[-1] == len(e):
        idx = idx[1:]
    if len(idx) > size:
        raise TopologyError(
            f"{op}: a graph of {len(idx)} nodes needs {len(idx)} ranks; the communicator "
            f"has {size}",
            ERR_ARG,
        )
    if any(b < a for a, b in zip([0, *idx], idx, strict=False)) or (idx and idx[-1] != len(e)):
        raise TopologyError(
            f"{op}: index {idx} must be non-decreasing and end at len(edges) = {len(e)}",
            ERR_ARG,
        )
    _ranks(e, len(idx), "edges", op)
    return idx, e


class Graphcomm(Neighborhood, topology="graph"):
    """A communicator whose ranks are the nodes of a graph (``MPI_Graph_create``)."""

    def __init__(
        self,
        transport: Transport,
        group: Sequence[int],
        ctx: int,
        name: str,
        index: Sequence[int],
        edges: Sequence[int],
    ) -> None:
        super().__init__(transport, group, ctx, name)
        self._index = tuple(index)
        self._edges = tuple(edges)

    def __getattr__(self, name: str) -> Any:
        return Cartcomm.__getattr__(self, name)  # type: ignore[arg-type]

    @staticmethod
    def _create(comm: Comm, index: Sequence[int], edges: Sequence[int]) -> Comm:
        """``comm.Create_graph(index, edges)`` (``COMM_NULL`` outside the graph).

        Raises:
            TopologyError: as :func:`graph_layout`.
        """
        idx, e = graph_layout(index, edges, comm.size, "Create_graph")
        sub = comm.Split(0 if comm.rank < len(idx) else UNDEFINED, comm.rank)
        if not sub:
            return sub
        return Graphcomm(comm._t, sub._group, sub._ctx, f"{comm.name}.graph", idx, e)

    @staticmethod
    def _map(comm: Comm, index: Sequence[int], edges: Sequence[int]) -> int:
        """``comm.Graph_map(index, edges)``.

        Raises:
            TopologyError: as :func:`graph_layout`.
        """
        idx, _ = graph_layout(index, edges, comm.size, "Graph_map")
        return comm.rank if comm.rank < len(idx) else UNDEFINED

    def _child(self, group: Sequence[int], ctx: int, name: str) -> Comm:
        return Graphcomm(self._t, group, ctx, name, self._index, self._edges)

    def Get_topology(self) -> int:
        """``GRAPH`` (1)."""
        self._live("Get_topology")
        return GRAPH

    def Get_dims(self) -> tuple[int, int]:
        """``(number of nodes, number of edges)``."""
        return len(self._index), len(self._edges)

    dims = property(Get_dims)

    @property
    def nnodes(self) -> int:
        return len(self._index)

    @property
    def nedges(self) -> int:
        return len(self._edges)

    @property
    def index(self) -> list[int]:
        return list(self._index)

    @property
    def edges(self) -> list[int]:
        return list(self._edges)

    def Get_topo(self) -> tuple[list[int], list[int]]:
        """``(index, edges)``."""
        return list(self._index), list(self._edges)

    topo = property(Get_topo)

    def Get_neighbors(self, rank: int) -> list[int]:
        """The neighbours of node ``rank``.

        Raises:
            TopologyError: ``rank`` is not a node (``ERR_RANK``).
        """
        r = _ranks([rank], len(self._index), "rank", "Get_neighbors")[0]
        start = self._index[r - 1] if r else 0
        return list(self._edges[start : self._index[r]])

    def Get_neighbors_count(self, rank: int) -> int:
        """How many neighbours node ``rank`` has.

        Raises:
            TopologyError: ``rank`` is not a node (``ERR_RANK``).
        """
        return len(self.Get_neighbors(rank))

    @property
    def neighbors(self) -> list[int]:
        return self.Get_neighbors(self.rank)

    @property
    def nneighbors(self) -> int:
        return len(self.neighbors)

    inedges = outedges = neighbors
    indegree = outdegree = nneighbors

    @property
    def inoutedges(self) -> tuple[list[int], list[int]]:
        return self.neighbors, self.neighbors

    @property
    def degrees(self) -> tuple[int, int]:
        return self.nneighbors, self.nneighbors


def _weights(value: Any, degree: int, what: str, op: str) -> list[int] | None:
    """None for unweighted; the weights otherwise.

    Raises:
        TopologyError: weights of another length than the neighbours (``ERR_ARG``).
    """
    if value is None or value is UNWEIGHTED:
        return None
    if value is WEIGHTS_EMPTY:
        value = []
    out = [as_int(v, what, op) for v in value]
    if len(out) != degree:
        raise TopologyError(
            f"{op}: {what} has {len(out)} entries; expected one per neighbour ({degree})",
            ERR_ARG,
        )
    return out


class Distgraphcomm(Neighborhood, topology="dist_graph"):
    """A communicator in which every rank knows the ranks it receives from (``sources``)
    and sends to (``destinations``), optionally weighted (``MPI_Dist_graph_create``)."""

    def __init__(
        self,
        transport: Transport,
        group: Sequence[int],
        ctx: int,
        name: str,
        sources: Sequence[int],
        destinations: Sequence[int],
        weights: tuple[list[int], list[int]] | None,
    ) -> None:
        super().__init__(transport, group, ctx, name)
        self._sources = tuple(sources)
        self._destinations = tuple(destinations)
        self._weights = weights

    def __getattr__(self, name: str) -> Any:
        return Cartcomm.__getattr__(self, name)  # type: ignore[arg-type]

    def _child(self, group: Sequence[int], ctx: int, name: str) -> Comm:
        return Distgraphcomm(
            self._t, group, ctx, name, self._sources, self._destinations, self._weights
        )

    def Get_topology(self) -> int:
        """``DIST_GRAPH`` (3)."""
        self._live("Get_topology")
        return DIST_GRAPH

    def Get_dist_neighbors_count(self) -> tuple[int, int, bool]:
        """``(indegree, outdegree, weighted)``."""
        return len(self._sources), len(self._destinations), self._weights is not None

    def Get_dist_neighbors(
        self,
    ) -> tuple[list[int], list[int], tuple[list[int], list[int]] | None]:
        """``(sources, destinations, weights)``; weights is ``(source weights, destination
        weights)``, or None for an unweighted graph."""
        w = self._weights
        return (
            list(self._sources),
            list(self._destinations),
            None if w is None else (list(w[0]), list(w[1])),
        )

    @property
    def inedges(self) -> list[int]:
        return list(self._sources)

    @property
    def outedges(self) -> list[int]:
        return list(self._destinations)

    @property
    def inoutedges(self) -> tuple[list[int], list[int]]:
        return self.inedges, self.outedges

    @property
    def indegree(self) -> int:
        return len(self._sources)

    @property
    def outdegree(self) -> int:
        return len(self._destinations)

    @property
    def degrees(self) -> tuple[int, int]:
        return self.indegree, self.outdegree

    @staticmethod
    def _adjacent(
        comm: Comm,
        sources: Sequence[int] | None,
        destinations: Sequence[int] | None,
        sourceweights: Any,
        destweights: Any,
    ) -> Distgraphcomm:
        """``comm.Create_dist_graph_adjacent``: every rank names its own neighbours.

        Raises:
            TopologyError: a neighbour that is not a rank (``ERR_RANK``), or weights that do not
                match the neighbours (``ERR_ARG``).
        """
        op = "Create_dist_graph_adjacent"
        src = _ranks(sources or [], comm.size, "sources", op)
        dst = _ranks(destinations or [], comm.size, "destinations", op)
        sw = _weights(sourceweights, len(src), "sourceweights", op)
        dw = _weights(destweights, len(dst), "destweights", op)
        weights = None if sw is None and dw is None else (sw or [], dw or [])
        ctx = comm._derive_ctx("distgraph")
        return Distgraphcomm(comm._t, comm._group, ctx, f"{comm.name}.distgraph", src, dst, weights)

    @staticmethod
    def _from_edges(
        comm: Comm,
        sources: Sequence[int],
        degrees: Sequence[int],
        destinations: Sequence[int],
        weights: Any,
    ) -> Distgraphcomm:
        """``comm.Create_dist_graph``: every rank names any edges ``source -> destination``;
        the ranks exchange them (collective) and each keeps its own in- and out-edges, ordered
        by the rank that named them, then as named.

        Raises:
            TopologyError: ``degrees`` and ``sources`` of different lengths, destinations that
                do not sum to the degrees, a node that is not a rank, or weights that do not
                match the edges.
        """
        op = "Create_dist_graph"
        src = _ranks(sources, comm.size, "sources", op)
        deg = [as_int(d, "degrees", op) for d in degrees]
        if len(deg) != len(src) or any(d < 0 for d in deg):
            raise TopologyError(
                f"{op}: degrees {deg} must hold one non-negative count per source ({len(src)})",
                ERR_ARG,
            )
        dst = _ranks(destinations, comm.size, "destinations", op)
        if sum(deg) != len(dst):
            raise TopologyError(
                f"{op}: the degrees sum to {sum(deg)} but {len(dst)} destinations were given",
                ERR_ARG,
            )
        w = _weights(weights, len(dst), "weights", op)
        edges, pos = [], 0
        for s, d in zip(src, deg, strict=True):
            for j in range(pos, pos + d):
                edges.append((s, dst[j], None if w is None else w[j]))
            pos += d
        everyone = comm.allgather(edges)
        ins = [(s, wt) for part in everyone for s, t, wt in part if t == comm.rank]
        outs = [(t, wt) for part in everyone for s, t, wt in part if s == comm.rank]
        weighted = comm.allreduce(w is not None, op=_LOR)
        wts = ([x or 0 for _, x in ins], [x or 0 for _, x in outs]) if weighted else None
        ctx = comm._derive_ctx("distgraph")
        return Distgraphcomm(
            comm._t,
            comm._group,
            ctx,
            f"{comm.name}.distgraph",
            [s for s, _ in ins],
            [t for t, _ in outs],
            wts,
        )


def _periods(periods: Any, ndims: int) -> Any:
    """mpi4py's ``periods``: None (none periodic), one bool for every dimension, or a
    sequence."""
    if periods is None or isinstance(periods, (bool, int)):
        return [bool(periods)] * ndims
    return periods
