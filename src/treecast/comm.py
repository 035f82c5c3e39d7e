"""The communicator: validate arguments, build the message, pick the schedule, run it.

No algorithm lives here. Point-to-point traffic of a communicator uses its context id
``ctx`` (even); collective traffic uses ``ctx + 1`` with the per-communicator collective
sequence number as tag, so user receives with ``ANY_TAG`` never match collective messages
and consecutive collectives never mix.
"""

from __future__ import annotations

import hashlib
import operator
import os
import sys
import threading
import warnings
from collections.abc import Callable, Sequence
from typing import Any

from . import _mpi4py_names
from .collectives import Collectives
from .constants import (
    ANY_SOURCE,
    ANY_TAG,
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
from .engine.blocking import mismatch_error, signature
from .errhandler import ERRORS_RETURN
from .errors import (
    CollectiveMismatchError,
    CommunicatorClosedError,
    InvalidArgumentError,
    InvalidArgumentTypeError,
    InvalidRankError,
    InvalidRootError,
    InvalidTagError,
    NotImplementedName,
)
from .group import Group
from .info import Info
from .matched import MESSAGE_NO_PROC, Message
from .message import frames as frames_mod
from .message.buffers import byte_view
from .request import Prequest, Request, null_request, proc_null_status
from .status import Status
from .transports import base as tbase
from .transports.base import RecvOp, Transport, describe

_SEQ_MASK = (1 << 62) - 1
_DEBUG_TAG_BIT = 1 << 62
SPIN_INLINE = 32
"""Polls of a blocking receive for a small message on the fast path before posting it."""


def _as_int(value: Any, name: str, op: str) -> int:
    if isinstance(value, bool):
        raise InvalidArgumentTypeError(f"{op}: {name} must be an int, got bool {value!r}")
    try:
        return operator.index(value)
    except TypeError:
        raise InvalidArgumentTypeError(
            f"{op}: {name} must be an int, got {type(value).__name__} {value!r}"
        ) from None


_TOPOLOGIES: dict[str, type] = {}
"""Topology communicator classes by kind (``"cart"``, ``"graph"``, ``"dist_graph"``)."""


class _CommType(type):
    """Class-level lookups of mpi4py names treecast lacks (``MPI.Comm.Get_parent``) raise
    ``NotImplementedName`` too, as instance lookups do."""

    def __getattr__(cls, name: str) -> Any:
        if name in _mpi4py_names.COMM:
            raise NotImplementedName(
                f"treecast does not implement Comm.{name} (mpi4py's Intracomm.{name}); "
                f"see docs/compatibility.md"
            )
        raise AttributeError(f"type object {cls.__name__!r} has no attribute {name!r}")


class Comm(Collectives, metaclass=_CommType):
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
        self._ctx = ctx
        self._coll_ctx = ctx + 1
        self._coll_seq = 0
        self._child_seq = 0
        self._freed = False
        self.name = name or f"comm-{ctx:x}"
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
                f"see docs/compatibility.md"
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
        keyval = _as_int(keyval, "keyval", "Get_attr")
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
        code = _as_int(errorcode, "errorcode", "Abort")
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

    def _peer(self, value: Any, name: str, op: str, any_ok: bool = False) -> int:
        r = _as_int(value, name, op)
        if 0 <= r < self.size or r == PROC_NULL or (any_ok and r == ANY_SOURCE):
            return r
        extra = ", ANY_SOURCE" if any_ok else ""
        raise InvalidRankError(
            f"{op}: {name}={r} is not a valid rank; expected 0 <= {name} < {self.size} (or PROC_NULL{extra})"
        )

    def _root(self, value: Any, op: str) -> int:
        r = _as_int(value, "root", op)
        if not 0 <= r < self.size:
            raise InvalidRootError(
                f"{op}: root={r} is not a valid rank; expected 0 <= root < {self.size}"
            )
        return r

    def _tag(self, value: Any, name: str, op: str, any_ok: bool = False) -> int:
        t = _as_int(value, name, op)
        if 0 <= t <= TAG_UB or (any_ok and t == ANY_TAG):
            return t
        extra = " or ANY_TAG" if any_ok else ""
        raise InvalidTagError(
            f"{op}: {name}={t} is not a valid tag; expected 0 <= {name} <= {TAG_UB}{extra}"
        )

    def _world_source(self, source: int) -> int:
        return tbase.ANY_SOURCE if source == ANY_SOURCE else self._group[source]

    def _fill(self, op: RecvOp | tbase.Incoming, status: Status) -> None:
        """Fill ``status`` from a completed receive or a probed message."""
        status._clear()
        status.source = self._rank_of.get(op.src, op.src)
        status.tag = op.tag
        status.count = op.nbytes

    def _next_tag(self) -> int:
        self._coll_seq = (self._coll_seq + 1) & _SEQ_MASK
        return self._coll_seq

    # ---- point-to-point: objects ----------------------------------------------------------------
    def _isend_obj(self, obj: Any, dest: int, tag: int, op: str, sync: bool) -> Request:
        self._live(op)
        dest = self._peer(dest, "dest", op)
        tag = self._tag(tag, "tag", op)
        frames = frames_mod.dumps(obj, op)
        if dest == PROC_NULL:
            return null_request(self._t)
        return Request(self._t, self._t.isend(self._group[dest], self._ctx, tag, frames, sync=sync))

    def isend(self, obj: Any, dest: int, tag: int = 0) -> Request:
        """Start sending ``obj`` to ``dest``; the object is pickled before this returns.

        Raises:
            InvalidRankError, InvalidTagError: bad ``dest`` or ``tag`` (nothing is sent).
            SerializationError: ``obj`` cannot be pickled (nothing is sent).
        """
        return self._isend_obj(obj, dest, tag, "isend", False)

    def issend(self, obj: Any, dest: int, tag: int = 0) -> Request:
        """Start a synchronous send of ``obj``: the request completes only once a receive on
        ``dest`` has matched the message.

        Raises:
            InvalidRankError, InvalidTagError: bad ``dest`` or ``tag`` (nothing is sent).
            SerializationError: ``obj`` cannot be pickled (nothing is sent).
        """
        return self._isend_obj(obj, dest, tag, "issend", True)

    def ibsend(self, obj: Any, dest: int, tag: int = 0) -> Request:
        """Buffered-mode :meth:`isend`: the same (no ``Attach_buffer`` is needed): the
        transport's ring to the receiver is the buffer, and what does not fit waits for it.

        Raises:
            InvalidRankError, InvalidTagError, SerializationError: as :meth:`isend`.
        """
        return self._isend_obj(obj, dest, tag, "ibsend", False)

    def send(self, obj: Any, dest: int, tag: int = 0, *, timeout: float | None = None) -> None:
        """Send ``obj`` to ``dest`` (returns when the bytes are handed to the transport).

        Raises:
            InvalidRankError, InvalidTagError: bad ``dest`` or ``tag`` (nothing is sent).
            SerializationError: ``obj`` cannot be pickled (nothing is sent).
        """
        if self._freed:
            self._live("send")
        if type(dest) is not int or not 0 <= dest < self.size:
            dest = self._peer(dest, "dest", "send")
        if type(tag) is not int or not 0 <= tag <= TAG_UB:
            tag = self._tag(tag, "tag", "send")
        frames = frames_mod.dumps(obj, "send")
        if dest == PROC_NULL:
            return
        t = self._t
        wdest = self._group[dest]
        if len(frames) == 1 and t.send_inline(wdest, self._ctx, tag, frames[0]):
            return
        op = t.isend(wdest, self._ctx, tag, frames)
        if not op.done:
            t.wait_op(op, timeout, f"send to rank {dest} (tag {tag}) on {self.name}")

    def ssend(self, obj: Any, dest: int, tag: int = 0, *, timeout: float | None = None) -> None:
        """Synchronous send: returns once a receive on ``dest`` has matched the message.

        Raises:
            InvalidRankError, InvalidTagError: bad ``dest`` or ``tag`` (nothing is sent).
            SerializationError: ``obj`` cannot be pickled (nothing is sent).
            TimeoutError: no receive matched within ``timeout`` seconds.
        """
        self._isend_obj(obj, dest, tag, "ssend", True).wait(timeout=timeout)

    def bsend(self, obj: Any, dest: int, tag: int = 0, *, timeout: float | None = None) -> None:
        """Buffered-mode :meth:`send`: the same (the transport's ring is the buffer; a
        message larger than it waits for the receiver).

        Raises:
            InvalidRankError, InvalidTagError, SerializationError: as :meth:`send`.
        """
        self._isend_obj(obj, dest, tag, "bsend", False).wait(timeout=timeout)

    def _irecv_obj(self, source: int, tag: int, op: str) -> Request:
        self._live(op)
        source = self._peer(source, "source", op, any_ok=True)
        tag = self._tag(tag, "tag", op, any_ok=True)
        if source == PROC_NULL:
            return null_request(self._t, receive=True)
        recv = self._t.irecv(self._ctx, self._world_source(source), tag, None)

        def finish(r: RecvOp) -> Any:
            return frames_mod.loads_message(
                r.frames, f"{op} from rank {self._rank_of.get(r.src, r.src)}"
            )

        return Request(self._t, recv, finish, self._fill)

    def irecv(self, buf: Any = None, source: int = ANY_SOURCE, tag: int = ANY_TAG) -> Request:
        """Start receiving an object; ``wait()`` returns it. ``buf`` is ignored, with a
        ``UserWarning`` (object messages are sized by the sender).

        Raises:
            InvalidRankError, InvalidTagError: bad ``source`` or ``tag``.
        """
        if buf is not None:
            _warn_buf("irecv")
        return self._irecv_obj(source, tag, "irecv")

    def recv(
        self,
        buf: Any = None,
        source: int = ANY_SOURCE,
        tag: int = ANY_TAG,
        status: Status | None = None,
        *,
        timeout: float | None = None,
    ) -> Any:
        """Receive and return an object (None for a message of 0 bytes).

        Raises:
            InvalidRankError, InvalidTagError: bad ``source`` or ``tag``.
            DeserializationError: the bytes cannot be rebuilt into an object here.
        """
        if self._freed:
            self._live("recv")
        if buf is not None:
            _warn_buf("recv")
        if type(source) is not int or not (0 <= source < self.size or source == ANY_SOURCE):
            source = self._peer(source, "source", "recv", any_ok=True)
        if type(tag) is not int or not (0 <= tag <= TAG_UB or tag == ANY_TAG):
            tag = self._tag(tag, "tag", "recv", any_ok=True)
        if source == PROC_NULL:
            if status is not None:
                proc_null_status(status)
            return None
        t = self._t
        wsrc = self._world_source(source)
        if status is None:
            for _ in range(SPIN_INLINE):
                got = t.recv_inline(self._ctx, wsrc, tag)
                if got is not None:
                    return frames_mod.loads_message([memoryview(got[0])], "recv")
        r = t.irecv(self._ctx, wsrc, tag, None)
        if not r.done:
            t.wait_op(
                r,
                timeout,
                f"recv from {'any rank' if source == ANY_SOURCE else f'rank {source}'} (tag {tag}) on {self.name}",
            )
        if r.error is not None:
            raise r.error
        if status is not None:
            self._fill(r, status)
        return frames_mod.loads_message(r.frames, "recv")

    def sendrecv(
        self,
        sendobj: Any,
        dest: int,
        sendtag: int = 0,
        recvbuf: Any = None,
        source: int = ANY_SOURCE,
        recvtag: int = ANY_TAG,
        status: Status | None = None,
        *,
        timeout: float | None = None,
    ) -> Any:
        """Send ``sendobj`` to ``dest`` and receive an object from ``source``, deadlock-free.

        Raises:
            InvalidRankError, InvalidTagError: bad ranks or tags (nothing is sent).
            SerializationError, DeserializationError: as :meth:`send` and :meth:`recv`.
        """
        self._peer(source, "source", "sendrecv", any_ok=True)
        self._tag(recvtag, "recvtag", "sendrecv", any_ok=True)
        sreq = self.isend(sendobj, dest, sendtag)
        obj = self._irecv_obj(source, recvtag, "sendrecv").wait(status, timeout)
        sreq.wait(timeout=timeout)
        return obj

    def _probe(self, source: int, tag: int, op: str) -> tuple[int, int]:
        self._live(op)
        src = self._peer(source, "source", op, any_ok=True)
        return src, self._tag(tag, "tag", op, any_ok=True)

    def probe(
        self, source: int = ANY_SOURCE, tag: int = ANY_TAG, status: Status | None = None
    ) -> bool:
        """Block until a matching message is available (without receiving it); return True.

        Raises:
            InvalidRankError, InvalidTagError: bad ``source`` or ``tag``.
        """
        src, tag = self._probe(source, tag, "probe")
        if src == PROC_NULL:
            if status is not None:
                proc_null_status(status)
            return True
        found: list[Any] = []

        def ready() -> bool:
            msg = self._t.iprobe(self._ctx, self._world_source(src), tag)
            if msg is not None:
                found.append(msg)
            return msg is not None

        self._t.wait(ready, None, "probe")
        if status is not None:
            self._fill(found[-1], status)
        return True

    def iprobe(
        self, source: int = ANY_SOURCE, tag: int = ANY_TAG, status: Status | None = None
    ) -> bool:
        """Return True if a matching message is available (without receiving it).

        Raises:
            InvalidRankError, InvalidTagError: bad ``source`` or ``tag``.
        """
        src, tag = self._probe(source, tag, "iprobe")
        if src == PROC_NULL:
            if status is not None:
                proc_null_status(status)
            return True
        msg = self._t.iprobe(self._ctx, self._world_source(src), tag)
        if msg is not None and status is not None:
            self._fill(msg, status)
        return msg is not None

    Probe = probe
    Iprobe = iprobe

    def mprobe(
        self, source: int = ANY_SOURCE, tag: int = ANY_TAG, status: Status | None = None
    ) -> Message:
        """Block until a matching message is available and take it out of matching: the
        returned :class:`~treecast.matched.Message` receives exactly it
        (``MESSAGE_NO_PROC``-like for ``PROC_NULL``).

        Raises:
            InvalidRankError, InvalidTagError: bad ``source`` or ``tag``.
        """
        src, tag = self._probe(source, tag, "mprobe")
        if src == PROC_NULL:
            if status is not None:
                proc_null_status(status)
            return Message(MESSAGE_NO_PROC)
        found: list[Any] = []

        def ready() -> bool:
            msg = self._t.iprobe(self._ctx, self._world_source(src), tag)
            if msg is not None:
                found.append(msg)
            return msg is not None

        self._t.wait(ready, None, "mprobe")
        return self._matched(found[-1], status)

    def improbe(
        self, source: int = ANY_SOURCE, tag: int = ANY_TAG, status: Status | None = None
    ) -> Message | None:
        """:meth:`mprobe` without waiting: None if no matching message is there.

        Raises:
            InvalidRankError, InvalidTagError: bad ``source`` or ``tag``.
        """
        src, tag = self._probe(source, tag, "improbe")
        if src == PROC_NULL:
            if status is not None:
                proc_null_status(status)
            return Message(MESSAGE_NO_PROC)
        msg = self._t.iprobe(self._ctx, self._world_source(src), tag)
        return None if msg is None else self._matched(msg, status)

    def _matched(self, msg: tbase.Incoming, status: Status | None) -> Message:
        if status is not None:
            self._fill(msg, status)
        return Message._of(self, self._t.claim(msg))

    Mprobe = mprobe
    Improbe = improbe

    # ---- point-to-point: buffers ----------------------------------------------------------------
    def _isend_buf(self, buf: Any, dest: int, tag: int, op: str, sync: bool) -> Request:
        self._live(op)
        dest = self._peer(dest, "dest", op)
        tag = self._tag(tag, "tag", op)
        if dest == PROC_NULL:
            return null_request(self._t)
        view = byte_view(buf, f"{op} buf")
        return Request(self._t, self._t.isend(self._group[dest], self._ctx, tag, [view], sync=sync))

    def Isend(self, buf: Any, dest: int, tag: int = 0) -> Request:
        """Start sending the bytes of ``buf``; do not modify it until the request completes.

        Raises:
            InvalidRankError, InvalidTagError: bad ``dest`` or ``tag``.
            InvalidBufferError: ``buf`` is not a contiguous buffer.
        """
        return self._isend_buf(buf, dest, tag, "Isend", False)

    def Issend(self, buf: Any, dest: int, tag: int = 0) -> Request:
        """Start a synchronous send of ``buf``: the request completes only once a receive on
        ``dest`` has matched the message.

        Raises:
            InvalidRankError, InvalidTagError, InvalidBufferError: as :meth:`Isend`.
        """
        return self._isend_buf(buf, dest, tag, "Issend", True)

    def Ibsend(self, buf: Any, dest: int, tag: int = 0) -> Request:
        """Buffered-mode :meth:`Isend`: the same (the transport's ring is the buffer; a
        message larger than it waits for the receiver).

        Raises:
            InvalidRankError, InvalidTagError, InvalidBufferError: as :meth:`Isend`.
        """
        return self._isend_buf(buf, dest, tag, "Ibsend", False)

    def Irsend(self, buf: Any, dest: int, tag: int = 0) -> Request:
        """Ready-mode :meth:`Isend` (the receive is already posted): the same as :meth:`Isend`.

        Raises:
            InvalidRankError, InvalidTagError, InvalidBufferError: as :meth:`Isend`.
        """
        return self._isend_buf(buf, dest, tag, "Irsend", False)

    def Send(self, buf: Any, dest: int, tag: int = 0, *, timeout: float | None = None) -> None:
        """Send the bytes of ``buf`` (a NumPy array or buffer-protocol object) to ``dest``.

        Raises:
            InvalidRankError, InvalidTagError: bad ``dest`` or ``tag``.
            InvalidBufferError: ``buf`` is not a contiguous buffer.
        """
        self._isend_buf(buf, dest, tag, "Send", False).wait(timeout=timeout)

    def Ssend(self, buf: Any, dest: int, tag: int = 0, *, timeout: float | None = None) -> None:
        """Synchronous :meth:`Send`: returns once a receive on ``dest`` has matched it.

        Raises:
            InvalidRankError, InvalidTagError, InvalidBufferError: as :meth:`Send`.
            TimeoutError: no receive matched within ``timeout`` seconds.
        """
        self._isend_buf(buf, dest, tag, "Ssend", True).wait(timeout=timeout)

    def Bsend(self, buf: Any, dest: int, tag: int = 0, *, timeout: float | None = None) -> None:
        """Buffered-mode :meth:`Send`: the same (the transport's ring is the buffer; a
        message larger than it waits for the receiver).

        Raises:
            InvalidRankError, InvalidTagError, InvalidBufferError: as :meth:`Send`.
        """
        self._isend_buf(buf, dest, tag, "Bsend", False).wait(timeout=timeout)

    def Rsend(self, buf: Any, dest: int, tag: int = 0, *, timeout: float | None = None) -> None:
        """Ready-mode :meth:`Send`: the same as :meth:`Send`.

        Raises:
            InvalidRankError, InvalidTagError, InvalidBufferError: as :meth:`Send`.
        """
        self._isend_buf(buf, dest, tag, "Rsend", False).wait(timeout=timeout)

    def Irecv(self, buf: Any, source: int = ANY_SOURCE, tag: int = ANY_TAG) -> Request:
        """Start receiving into ``buf``.

        Raises:
            InvalidRankError, InvalidTagError: bad ``source`` or ``tag``.
            InvalidBufferError: ``buf`` is not a writable contiguous buffer.
        """
        self._live("Irecv")
        source = self._peer(source, "source", "Irecv", any_ok=True)
        tag = self._tag(tag, "tag", "Irecv", any_ok=True)
        if source == PROC_NULL:
            return null_request(self._t, receive=True)
        view = byte_view(buf, "Irecv buf", writable=True)
        recv = self._t.irecv(self._ctx, self._world_source(source), tag, view)
        return Request(self._t, recv, None, self._fill)

    def Recv(
        self,
        buf: Any,
        source: int = ANY_SOURCE,
        tag: int = ANY_TAG,
        status: Status | None = None,
        *,
        timeout: float | None = None,
    ) -> None:
        """Receive into ``buf``; the message may be shorter than the buffer (see ``status.count``).

        Raises:
            InvalidRankError, InvalidTagError: bad ``source`` or ``tag``.
            TruncationError: the message is larger than ``buf`` (nothing is written to it).
            InvalidBufferError: ``buf`` is not a writable contiguous buffer.
        """
        if (
            status is None
            and type(source) is int
            and 0 <= source < self.size
            and type(tag) is int
            and not self._freed
        ):
            view = byte_view(buf, "Recv buf", writable=True)
            t = self._t
            for _ in range(SPIN_INLINE):
                if t.recv_inline(self._ctx, self._group[source], tag, view) is not None:
                    return
        self.Irecv(buf, source, tag).wait(status, timeout)

    def Sendrecv(
        self,
        sendbuf: Any,
        dest: int,
        sendtag: int = 0,
        recvbuf: Any = None,
        source: int = ANY_SOURCE,
        recvtag: int = ANY_TAG,
        status: Status | None = None,
        *,
        timeout: float | None = None,
    ) -> None:
        """Send ``sendbuf`` to ``dest`` and receive into ``recvbuf`` from ``source``.

        Raises:
            InvalidArgumentTypeError: no ``recvbuf``.
            InvalidRankError, InvalidTagError, InvalidBufferError, TruncationError: as
                :meth:`Send` and :meth:`Recv`.
        """
        if recvbuf is None and source != PROC_NULL:
            raise InvalidArgumentTypeError("Sendrecv: recvbuf is required (a writable buffer)")
        self._peer(dest, "dest", "Sendrecv")
        self._tag(sendtag, "sendtag", "Sendrecv")
        rreq = self.Irecv(recvbuf, source, recvtag)
        sreq = self.Isend(sendbuf, dest, sendtag)
        rreq.wait(status, timeout)
        sreq.wait(timeout=timeout)

    def Sendrecv_replace(
        self,
        buf: Any,
        dest: int,
        sendtag: int = 0,
        source: int = ANY_SOURCE,
        recvtag: int = ANY_TAG,
        status: Status | None = None,
        *,
        timeout: float | None = None,
    ) -> None:
        """Send the contents of ``buf`` to ``dest`` and replace them with a message from
        ``source``.

        Raises:
            InvalidRankError, InvalidTagError, InvalidBufferError, TruncationError: as
                :meth:`Sendrecv`.
        """
        self._peer(dest, "dest", "Sendrecv_replace")
        self._tag(sendtag, "sendtag", "Sendrecv_replace")
        view = byte_view([buf, 0, "B"] if buf is None else buf, "Sendrecv_replace buf", True)
        outgoing = bytes(view)  # before the receive is posted: it may land at once
        rreq = self.Irecv(view, source, recvtag)
        sreq = self.Isend(outgoing, dest, sendtag)
        rreq.wait(status, timeout)
        sreq.wait(timeout=timeout)

    # ---- persistent requests ----------------------------------------------------------------
    def Send_init(self, buf: Any, dest: int, tag: int = 0) -> Prequest:
        """A persistent :meth:`Isend` of ``buf``: each ``Start()`` sends its current contents.

        Raises:
            InvalidRankError, InvalidTagError, InvalidBufferError: as :meth:`Isend`.
        """
        return self._persistent(buf, dest, tag, "Send_init", False)

    def Ssend_init(self, buf: Any, dest: int, tag: int = 0) -> Prequest:
        """A persistent :meth:`Issend`.

        Raises:
            InvalidRankError, InvalidTagError, InvalidBufferError: as :meth:`Isend`.
        """
        return self._persistent(buf, dest, tag, "Ssend_init", True)

    def Bsend_init(self, buf: Any, dest: int, tag: int = 0) -> Prequest:
        """A persistent :meth:`Ibsend`.

        Raises:
            InvalidRankError, InvalidTagError, InvalidBufferError: as :meth:`Isend`.
        """
        return self._persistent(buf, dest, tag, "Bsend_init", False)

    def Rsend_init(self, buf: Any, dest: int, tag: int = 0) -> Prequest:
        """A persistent :meth:`Irsend`.

        Raises:
            InvalidRankError, InvalidTagError, InvalidBufferError: as :meth:`Isend`.
        """
        return self._persistent(buf, dest, tag, "Rsend_init", False)

    def _persistent(self, buf: Any, dest: int, tag: int, op: str, sync: bool) -> Prequest:
        self._live(op)
        dest = self._peer(dest, "dest", op)
        tag = self._tag(tag, "tag", op)
        if dest != PROC_NULL:
            byte_view(buf, f"{op} buf")
        return Prequest(lambda: self._isend_buf(buf, dest, tag, op, sync))

    def Recv_init(self, buf: Any, source: int = ANY_SOURCE, tag: int = ANY_TAG) -> Prequest:
        """A persistent :meth:`Irecv` into ``buf``.

        Raises:
            InvalidRankError, InvalidTagError: bad ``source`` or ``tag``.
            InvalidBufferError: ``buf`` is not a writable contiguous buffer.
        """
        self._live("Recv_init")
        source = self._peer(source, "source", "Recv_init", any_ok=True)
        tag = self._tag(tag, "tag", "Recv_init", any_ok=True)
        if source != PROC_NULL:
            byte_view(buf, "Recv_init buf", writable=True)
        return Prequest(lambda: self.Irecv(buf, source, tag))

    def _allgather_small(self, obj: Any, what: tuple[str, str, int, int]) -> list[Any]:
        """Every rank's small object, in rank order (linear exchange; used to build
        communicators and for debug checks). Messages carry ``what``'s signature.

        Raises:
            CollectiveMismatchError: a peer is in another collective.
        """
        t = self._t
        tag = what[2]
        sig = signature(what)
        frames = frames_mod.dumps(obj, what[0])
        peers = [w for w in self._group if w != t.rank]
        sends = [t.isend(w, self._coll_ctx, tag, frames, sig) for w in peers]
        recvs = [t.irecv(self._coll_ctx, w, tag, None) for w in peers]
        t.waitall([*sends, *recvs], None, what)
        for r in recvs:
            if r.sig != sig:
                raise mismatch_error(what, self._rank_of[r.src], r.sig, sig)
        values = iter(frames_mod.loads(r.frames, what[0]) for r in recvs)
        return [obj if i == self.rank else next(values) for i in range(self.size)]

    def _debug_check(self, what: tuple[str, str, int, int], nbytes: int, dtype: str = "") -> None:
        """With ``TREECAST_DEBUG=1``: every rank compares (collective, root, bytes) with every
        other before the collective runs, so that also ranks that would only send (a root)
        raise. Costs a linear exchange per collective.

        Raises:
            CollectiveMismatchError: naming the disagreeing ranks and what each called.
        """
        mine = (what[0], what[3], nbytes, dtype)
        everyone = self._allgather_small(mine, ("check", what[1], what[2] | _DEBUG_TAG_BIT, -1))
        odd = [(r, e) for r, e in enumerate(everyone) if e[:2] != mine[:2]]
        if odd:
            listing = "; ".join(f"rank {r} called {e[0]} with root {e[1]}" for r, e in odd)
            raise CollectiveMismatchError(
                f"{describe(what)}: ranks disagree on the collective: {listing}; this rank "
                f"called {what[0]} with root {what[3]}"
            )
        dtypes = {e[3] for e in everyone if e[3]}
        if len(dtypes) > 1:
            listing = ", ".join(
                f"rank {r}: {e[3] or 'untyped buffer'}" for r, e in enumerate(everyone)
            )
            raise CollectiveMismatchError(
                f"{describe(what)}: ranks passed buffers of different dtypes ({listing})"
            )
        sizes = {e[2] for e in everyone if e[2] >= 0}
        if len(sizes) > 1:
            listing = ", ".join(f"rank {r}: {e[2]}" for r, e in enumerate(everyone))
            raise CollectiveMismatchError(
                f"{describe(what)}: ranks passed buffers of different sizes in bytes ({listing})"
            )

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
        color = _as_int(color, "color", "split")
        key = _as_int(key, "key", "split")
        if color < 0 and color != UNDEFINED:
            raise InvalidRankError(f"split: color={color} must be >= 0 or UNDEFINED")
        entries = self._allgather_small((color, key), ("split", self.name, self._next_tag(), -1))
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
        """Split by hardware: ``COMM_TYPE_SHARED`` (1) groups the ranks that share memory,
        which on one machine is every rank; ``UNDEFINED`` gives ``COMM_NULL``. Collective.

        Raises:
            InvalidArgumentError: another split type.
        """
        split_type = _as_int(split_type, "split_type", "Split_type")
        if split_type not in (1, UNDEFINED):
            raise InvalidArgumentError(
                f"Split_type: split_type={split_type} is not supported; expected "
                f"COMM_TYPE_SHARED (1) or UNDEFINED"
            )
        return self.Split(0 if split_type == 1 else UNDEFINED, key)

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
        pool = self.__dict__.get("_share_pool")
        if pool is not None:  # copy=False segments: what nothing views is unmapped now
            pool.close()

    Free = free


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


def _warn_buf(op: str) -> None:
    warnings.warn(
        f"{op}: the buf argument is ignored; treecast sizes object messages from the "
        f"sender, so no receive buffer is needed",
        UserWarning,
        stacklevel=3,
    )
