"""Cartesian communicators (mpi4py's ``Cartcomm``) over the grid functions of
:mod:`treecast.topology.cart`.

``comm.Create_cart(dims, periods)`` makes one: the first ``prod(dims)`` ranks, row-major.
"""

from __future__ import annotations

import operator
from collections.abc import Sequence
from typing import Any

from .. import _mpi4py_names
from ..comm import Comm, _as_int
from ..constants import UNDEFINED
from ..errors import ERR_ARG, ERR_DIMS, ERR_RANK, InvalidArgumentError, MPIError, NotImplementedName
from ..transports.base import Transport
from . import cart

CART = 2


class TopologyError(InvalidArgumentError, MPIError):
    """A bad grid argument: dimensions (``ERR_DIMS``), lengths (``ERR_ARG``), coordinates or
    ranks (``ERR_RANK``)."""

    def __init__(self, message: str, error_class: int) -> None:
        super().__init__(message)
        self.error_class = error_class


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
    if any(x < 0 for x in d):
        raise TopologyError(f"{op}: every dimension must be >= 0, got dims={list(d)}", ERR_DIMS)
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


class Cartcomm(Comm):
    """A communicator whose ranks form a Cartesian grid (row-major; see
    :mod:`treecast.topology.cart`). All of :class:`~treecast.Comm` plus coordinates, shifts
    and sub-grids. Neighbourhood collectives are not implemented.

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
    def periods(self) -> list[bool]:
        """Whether each dimension wraps around (a new list)."""
        return list(self._periods)

    def __getattr__(self, name: str) -> Any:
        if name in _mpi4py_names.CARTCOMM:
            raise NotImplementedName(
                f"treecast does not implement Cartcomm.{name} (neighbourhood collectives); "
                f"see docs/compatibility.md"
            )
        return super().__getattr__(name)

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
        r = _as_int(rank, "rank", "Get_coords")
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
        coords = [_as_int(c, "coords", "Get_cart_rank") for c in coords]
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
        direction = _as_int(direction, "direction", "Shift")
        disp = _as_int(disp, "disp", "Shift")
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
    n = _as_int(nnodes, "nnodes", "Compute_dims")
    if isinstance(dims, Sequence):
        given = [_as_int(d, "dims", "Compute_dims") for d in dims]
    else:
        ndims = _as_int(dims, "dims", "Compute_dims")
        if ndims < 0:
            raise TopologyError(f"Compute_dims: dims={ndims} must be >= 0", ERR_DIMS)
        given = [0] * ndims
    try:
        return cart.compute_dims(n, given)
    except ValueError as exc:
        raise TopologyError(f"Compute_dims: {exc}", ERR_DIMS) from None
