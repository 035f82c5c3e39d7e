"""mpi4py's ``MPI`` module over treecast: ``from treecast import MPI``.

The plain API of mpi4py 4.1 (communicators, point-to-point, every collective, requests,
statuses, operators, datatypes for buffer specs, error classes, Cartesian topologies, the
environment functions) with the same names, signatures and results, so that mpi4py programs
run unchanged; ``treecast run --mpi4py`` makes ``from mpi4py import MPI`` resolve here.

The classes *are* treecast's: ``MPI.Comm`` and ``MPI.Intracomm`` are :class:`treecast.Comm`,
``MPI.Exception`` is :class:`treecast.errors.MPIError` (every treecast error that MPI reports
with an error class derives from it), ``MPI.Request`` is :class:`treecast.Request`. There is
no translation layer: ``COMM_WORLD`` is :func:`treecast.world`.

A name that mpi4py has and treecast does not implement (one-sided windows, MPI-IO, dynamic
processes, derived datatypes, ...) raises :class:`NotImplementedError` naming it; the error
also derives from ``AttributeError`` so that ``hasattr(MPI, name)`` is False.

Reported versions: ``Get_version()`` is (3, 1), the MPI standard whose plain API this covers;
``get_vendor()`` is ``("treecast", version)``.
"""

from __future__ import annotations

import pickle as _pickle
import socket
import threading
import time
from collections.abc import Sequence
from typing import Any

import numpy as np

from . import _mpi4py_names
from .comm import COMM_NULL as COMM_NULL
from .comm import Comm
from .constants import ANY_SOURCE, ANY_TAG, BOTTOM, IN_PLACE, PROC_NULL, ROOT, UNDEFINED
from .errhandler import ERRHANDLER_NULL as ERRHANDLER_NULL
from .errhandler import ERRORS_ABORT as ERRORS_ABORT
from .errhandler import ERRORS_ARE_FATAL as ERRORS_ARE_FATAL
from .errhandler import ERRORS_RETURN as ERRORS_RETURN
from .errhandler import Errhandler as Errhandler
from .errors import (
    ERR_ARG,
    ERR_BUFFER,
    ERR_COMM,
    ERR_COUNT,
    ERR_DIMS,
    ERR_GROUP,
    ERR_IN_STATUS,
    ERR_INTERN,
    ERR_LASTCODE,
    ERR_OP,
    ERR_OTHER,
    ERR_PENDING,
    ERR_PROC_FAILED,
    ERR_RANK,
    ERR_REQUEST,
    ERR_ROOT,
    ERR_TAG,
    ERR_TOPOLOGY,
    ERR_TRUNCATE,
    ERR_TYPE,
    ERR_UNKNOWN,
    ERROR_STRINGS,
    SUCCESS,
    InvalidArgumentError,
    InvalidArgumentTypeError,
    MPIError,
    NotImplementedName,
    error_string,
)
from .group import GROUP_EMPTY, GROUP_NULL, Group
from .info import INFO_ENV, INFO_NULL, Info
from .matched import MESSAGE_NO_PROC, MESSAGE_NULL, Message
from .ops import (
    BAND,
    BOR,
    BXOR,
    LAND,
    LOR,
    LXOR,
    MAX,
    MAXLOC,
    MIN,
    MINLOC,
    NO_OP,
    OP_NULL,
    PROD,
    REPLACE,
    SUM,
    Op,
)
from .request import Grequest, Prequest, Request
from .runtime.world import self_comm, world
from .status import Status
from .topocomm import (
    UNWEIGHTED,
    WEIGHTS_EMPTY,
    Cartcomm,
    Distgraphcomm,
    Graphcomm,
    compute_dims,
)

Exception = MPIError
Intracomm = Comm


class Topocomm(Comm):
    """mpi4py's base class of topology communicators; make one with ``Create_cart``,
    ``Create_graph`` or ``Create_dist_graph_adjacent``, never directly.

    Raises:
        TypeError: always, when constructed.
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        raise TypeError("Topocomm cannot be constructed; use comm.Create_cart(...) and kin")


# ---- constants ---------------------------------------------------------------------------
THREAD_SINGLE, THREAD_FUNNELED, THREAD_SERIALIZED, THREAD_MULTIPLE = 0, 1, 2, 3
IDENT, CONGRUENT, SIMILAR, UNEQUAL = 0, 1, 2, 3
GRAPH, CART, DIST_GRAPH = 1, 2, 3
COMM_TYPE_SHARED = 1
BSEND_OVERHEAD = 96
MAX_PROCESSOR_NAME = 128
MAX_ERROR_STRING = 512
MAX_OBJECT_NAME = 128
MAX_LIBRARY_VERSION_STRING = 8192
VERSION, SUBVERSION = 3, 1
KEYVAL_INVALID = 603979776
TAG_UB = 1681915905
"""An attribute key, as in mpi4py: ``COMM_WORLD.Get_attr(MPI.TAG_UB)`` is the largest tag."""
WTIME_IS_GLOBAL = 1681915911
UNIVERSE_SIZE = 1681915913
APPNUM = 1681915917

__all__ = [
    "ANY_SOURCE",
    "ANY_TAG",
    "BAND",
    "BOR",
    "BOTTOM",
    "BXOR",
    "ERROR_STRINGS",
    "ERR_ARG",
    "ERR_BUFFER",
    "ERR_COMM",
    "ERR_COUNT",
    "ERR_DIMS",
    "ERR_GROUP",
    "ERR_INTERN",
    "ERR_IN_STATUS",
    "ERR_LASTCODE",
    "ERR_OP",
    "ERR_OTHER",
    "ERR_PENDING",
    "ERR_PROC_FAILED",
    "ERR_RANK",
    "ERR_REQUEST",
    "ERR_ROOT",
    "ERR_TAG",
    "ERR_TOPOLOGY",
    "ERR_TRUNCATE",
    "ERR_TYPE",
    "ERR_UNKNOWN",
    "GROUP_EMPTY",
    "GROUP_NULL",
    "INFO_ENV",
    "INFO_NULL",
    "IN_PLACE",
    "LAND",
    "LOR",
    "LXOR",
    "MAX",
    "MAXLOC",
    "MESSAGE_NO_PROC",
    "MESSAGE_NULL",
    "MIN",
    "MINLOC",
    "NO_OP",
    "OP_NULL",
    "PROC_NULL",
    "PROD",
    "REPLACE",
    "ROOT",
    "SUCCESS",
    "SUM",
    "UNDEFINED",
    "UNWEIGHTED",
    "WEIGHTS_EMPTY",
    "Cartcomm",
    "Comm",
    "Datatype",
    "Distgraphcomm",
    "Exception",
    "Graphcomm",
    "Grequest",
    "Group",
    "Info",
    "Intracomm",
    "Message",
    "Op",
    "Prequest",
    "Request",
    "Status",
]


# ---- datatypes -----------------------------------------------------------------------------
class Datatype:
    """A predefined MPI datatype for buffer specs (``[buf, MPI.DOUBLE]``,
    ``[buf, count, MPI.INT]``): a name over a NumPy dtype. ``Datatype()`` is the null
    datatype; ``Datatype(other)`` is the same datatype.

    Derived datatypes (``Create_vector``, ``Create_struct``, ...) are not implemented: use
    NumPy views and structured dtypes instead.

    Raises:
        InvalidArgumentTypeError: the argument is not a Datatype.
    """

    __slots__ = ("_code", "_dtype", "_name")

    def __init__(self, datatype: Datatype | None = None) -> None:
        if datatype is None:
            self._name, self._dtype, self._code = "DATATYPE_NULL", None, ""
        elif isinstance(datatype, Datatype):
            self._name, self._dtype, self._code = datatype._name, datatype._dtype, datatype._code
        else:
            raise InvalidArgumentTypeError(
                f"Datatype: expected a Datatype to copy, got {type(datatype).__name__}"
            )

    @classmethod
    def _make(cls, name: str, dtype: Any) -> Datatype:
        d = cls()
        d._name, d._dtype = name, np.dtype(dtype)
        d._code = dtype if isinstance(dtype, str) else np.dtype(dtype).str
        return d

    def _live(self, op: str) -> np.dtype:
        if self._dtype is None:
            raise MPIError(ERR_TYPE)
        return self._dtype

    @property
    def dtype(self) -> np.dtype:
        """The NumPy dtype of one item.

        Raises:
            MPIError: ``ERR_TYPE`` for the null datatype.
        """
        return self._live("dtype")

    def Get_size(self) -> int:
        """Bytes per item.

        Raises:
            MPIError: ``ERR_TYPE`` for the null datatype.
        """
        return self._live("Get_size").itemsize

    @property
    def size(self) -> int:
        return self.Get_size()

    def Get_extent(self) -> tuple[int, int]:
        """``(lower bound, extent)``: ``(0, size)`` for predefined datatypes."""
        return 0, self.Get_size()

    @property
    def extent(self) -> int:
        return self.Get_size()

    @property
    def lb(self) -> int:
        return 0

    @property
    def ub(self) -> int:
        return self.Get_size()

    def Get_true_extent(self) -> tuple[int, int]:
        """``(true lower bound, true extent)``: ``(0, size)`` for predefined datatypes."""
        return 0, self.Get_size()

    def Get_name(self) -> str:
        """``"MPI_DOUBLE"`` for ``MPI.DOUBLE``."""
        return "MPI_" + self._name if self._dtype is not None else "MPI_DATATYPE_NULL"

    @property
    def name(self) -> str:
        return self.Get_name()

    def tocode(self) -> str:
        """The NumPy type code (``"d"`` for ``MPI.DOUBLE``).

        Raises:
            MPIError: ``ERR_TYPE`` for the null datatype.
        """
        self._live("tocode")
        return self._code

    @property
    def typestr(self) -> str:
        return self.tocode()

    @classmethod
    def fromcode(cls, code: str) -> Datatype:
        """The predefined datatype of a NumPy type code (``"i"`` gives ``MPI.INT``).

        Raises:
            InvalidArgumentError: no predefined datatype has that code.
        """
        try:
            dt = np.dtype(code)
        except TypeError:
            dt = None
        for d in _DATATYPES.values():
            if dt is not None and d._dtype == dt:
                return d
        raise InvalidArgumentError(f"Datatype.fromcode: no predefined datatype for {code!r}")

    def Dup(self) -> Datatype:
        """The same datatype."""
        return Datatype(self)

    def Commit(self) -> Datatype:
        """Predefined datatypes are always committed; returns self."""
        return self

    def Free(self) -> None:
        """Predefined datatypes cannot be freed (``ERR_TYPE``).

        Raises:
            MPIError: ``ERR_TYPE``.
        """
        raise MPIError(ERR_TYPE)

    @property
    def is_predefined(self) -> bool:
        return True

    def __bool__(self) -> bool:
        return self._dtype is not None

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Datatype):
            return NotImplemented
        return self._name == other._name

    def __hash__(self) -> int:
        return hash(self._name)

    def __repr__(self) -> str:
        return f"<treecast.MPI.Datatype {self._name}>"

    def __reduce__(self) -> str:
        return self._name

    def __getattr__(self, name: str) -> Any:
        return _missing(name, _mpi4py_names.DATATYPE, "Datatype")


def _pair(value: str, index: str = "i4") -> np.dtype:
    return np.dtype([("value", value), ("index", index)])


_DATATYPES: dict[str, Datatype] = {
    name: Datatype._make(name, dt)
    for name, dt in [
        ("BYTE", "B"),
        ("PACKED", "B"),
        ("CHAR", "c"),
        ("CHARACTER", "c"),
        ("SIGNED_CHAR", "b"),
        ("UNSIGNED_CHAR", "B"),
        ("SHORT", "h"),
        ("SIGNED_SHORT", "h"),
        ("UNSIGNED_SHORT", "H"),
        ("INT", "i"),
        ("SIGNED_INT", "i"),
        ("UNSIGNED", "I"),
        ("UNSIGNED_INT", "I"),
        ("LONG", "l"),
        ("SIGNED_LONG", "l"),
        ("UNSIGNED_LONG", "L"),
        ("LONG_LONG", "q"),
        ("SIGNED_LONG_LONG", "q"),
        ("UNSIGNED_LONG_LONG", "Q"),
        ("FLOAT", "f"),
        ("DOUBLE", "d"),
        ("LONG_DOUBLE", "g"),
        ("C_BOOL", "?"),
        ("BOOL", "?"),
        ("CXX_BOOL", "?"),
        ("INT8_T", "i1"),
        ("INT16_T", "i2"),
        ("INT32_T", "i4"),
        ("INT64_T", "i8"),
        ("UINT8_T", "u1"),
        ("UINT16_T", "u2"),
        ("UINT32_T", "u4"),
        ("UINT64_T", "u8"),
        ("FLOAT16_T", "e"),
        ("FLOAT32_T", "f4"),
        ("FLOAT64_T", "f8"),
        ("C_COMPLEX", "F"),
        ("C_FLOAT_COMPLEX", "F"),
        ("C_DOUBLE_COMPLEX", "D"),
        ("C_LONG_DOUBLE_COMPLEX", "G"),
        ("CXX_FLOAT_COMPLEX", "F"),
        ("CXX_DOUBLE_COMPLEX", "D"),
        ("CXX_LONG_DOUBLE_COMPLEX", "G"),
        ("AINT", "p"),
        ("OFFSET", "q"),
        ("COUNT", "q"),
        ("INTEGER", "i"),
        ("INTEGER1", "i1"),
        ("INTEGER2", "i2"),
        ("INTEGER4", "i4"),
        ("INTEGER8", "i8"),
        ("REAL", "f"),
        ("REAL4", "f4"),
        ("REAL8", "f8"),
        ("DOUBLE_PRECISION", "d"),
        ("COMPLEX", "F"),
        ("COMPLEX8", "c8"),
        ("COMPLEX16", "c16"),
        ("DOUBLE_COMPLEX", "D"),
        ("LOGICAL", "i"),
        ("F_BOOL", "i"),
        ("F_INT", "i"),
        ("F_FLOAT", "f"),
        ("F_DOUBLE", "d"),
        ("F_COMPLEX", "F"),
        ("F_FLOAT_COMPLEX", "F"),
        ("F_DOUBLE_COMPLEX", "D"),
        ("SHORT_INT", _pair("h")),
        ("TWOINT", _pair("i")),
        ("INT_INT", _pair("i")),
        ("LONG_INT", _pair("l")),
        ("FLOAT_INT", _pair("f")),
        ("DOUBLE_INT", _pair("d")),
        ("LONG_DOUBLE_INT", _pair("g")),
    ]
}
globals().update(_DATATYPES)
DATATYPE_NULL = Datatype()
# Module-level names for type checkers and readers (the loop above defines them all).
BYTE = _DATATYPES["BYTE"]
CHAR = _DATATYPES["CHAR"]
INT = _DATATYPES["INT"]
LONG = _DATATYPES["LONG"]
FLOAT = _DATATYPES["FLOAT"]
DOUBLE = _DATATYPES["DOUBLE"]
COMPLEX = _DATATYPES["COMPLEX"]
DOUBLE_COMPLEX = _DATATYPES["DOUBLE_COMPLEX"]
BOOL = _DATATYPES["BOOL"]
REQUEST_NULL = Request()


# ---- pickle --------------------------------------------------------------------------------
class Pickle:
    """mpi4py's ``MPI.Pickle``: how lowercase methods serialise objects (protocol 5).

    treecast's own messages always use protocol 5 with out-of-band buffers; this object is
    for programs that call ``MPI.pickle.dumps``/``loads`` themselves.
    """

    def __init__(self, protocol: int | None = None) -> None:
        self.PROTOCOL = _pickle.HIGHEST_PROTOCOL if protocol is None else protocol
        self.THRESHOLD = 256 * 1024

    def dumps(self, obj: Any) -> bytes:
        """``pickle.dumps(obj)`` with :attr:`PROTOCOL`."""
        return _pickle.dumps(obj, self.PROTOCOL)

    def loads(self, data: Any) -> Any:
        """``pickle.loads(data)``."""
        return _pickle.loads(data)

    def dumps_oob(self, obj: Any) -> tuple[bytes, list[_pickle.PickleBuffer]]:
        """The pickle stream and its out-of-band buffers (protocol 5)."""
        buffers: list[_pickle.PickleBuffer] = []
        data = _pickle.dumps(obj, 5, buffer_callback=buffers.append)
        return data, buffers

    def loads_oob(self, data: Any, buffers: Sequence[Any]) -> Any:
        """The object of :meth:`dumps_oob`'s stream and buffers."""
        return _pickle.loads(data, buffers=buffers)


pickle = Pickle()


# ---- environment ---------------------------------------------------------------------------
_state = {"finalized": False, "thread_main": threading.main_thread().ident}
_attached: list[Any] = []


def Init() -> None:
    """Nothing to do: ``COMM_WORLD`` connects when this module is imported."""


def Init_thread(required: int = THREAD_MULTIPLE) -> int:
    """Return the thread level provided (:func:`Query_thread`)."""
    return Query_thread()


def Query_thread() -> int:
    """``THREAD_SERIALIZED``: threads may call treecast, one at a time."""
    return THREAD_SERIALIZED


def Is_thread_main() -> bool:
    """Whether the calling thread is the main thread."""
    return threading.get_ident() == _state["thread_main"]


def Is_initialized() -> bool:
    """True: importing this module initialises the job."""
    return True


def Is_finalized() -> bool:
    """Whether :func:`Finalize` has been called."""
    return bool(_state["finalized"])


def Finalize() -> None:
    """Mark the job finalised; the connection itself closes at interpreter exit."""
    _state["finalized"] = True


def Wtime() -> float:
    """Seconds since an arbitrary fixed point (a monotonic, high-resolution clock)."""
    return time.perf_counter()


def Wtick() -> float:
    """Resolution of :func:`Wtime` in seconds."""
    return time.get_clock_info("perf_counter").resolution


def Get_processor_name() -> str:
    """The host's name."""
    return socket.gethostname()[:MAX_PROCESSOR_NAME]


def Get_version() -> tuple[int, int]:
    """(3, 1): the MPI standard whose plain API treecast.MPI provides."""
    return VERSION, SUBVERSION


def Get_library_version() -> str:
    """``"treecast <version>"``."""
    from . import __version__

    return f"treecast {__version__}"


def get_vendor() -> tuple[str, tuple[int, int, int]]:
    """``("treecast", (major, minor, micro))``."""
    from . import __version__

    parts = [int(p) for p in __version__.split(".")[:3]]
    parts += [0] * (3 - len(parts))
    return "treecast", (parts[0], parts[1], parts[2])


def Get_error_class(errorcode: int) -> int:
    """The error class of an error code (treecast's codes are their classes).

    Raises:
        InvalidArgumentError: not a known error code.
    """
    error_string(errorcode)
    return int(errorcode)


def Get_error_string(errorcode: int) -> str:
    """The description of an error class (``"invalid root"``).

    Raises:
        InvalidArgumentError: not a known error code.
    """
    return error_string(errorcode)


def Compute_dims(nnodes: int, dims: int | Sequence[int]) -> list[int]:
    """A balanced grid of ``nnodes`` ranks (MPI's ``MPI_Dims_create``): ``dims`` is the
    number of dimensions, or a list whose non-zero entries are kept.

    Raises:
        MPIError: ``ERR_DIMS`` if ``nnodes`` cannot be split as asked.
    """
    return compute_dims(nnodes, dims)


def Alloc_mem(size: int, info: Any = None) -> memoryview:
    """``size`` bytes of zeroed memory, as a writable memoryview.

    Raises:
        InvalidArgumentError: ``size`` is negative.
    """
    if size < 0:
        raise InvalidArgumentError(f"Alloc_mem: size must be >= 0, got {size}")
    return memoryview(bytearray(size))


def Free_mem(mem: Any) -> None:
    """Release memory from :func:`Alloc_mem` (it is garbage-collected; this only checks the
    argument).

    Raises:
        InvalidArgumentTypeError: ``mem`` is not a buffer.
    """
    try:
        memoryview(mem)
    except TypeError:
        raise InvalidArgumentTypeError(
            f"Free_mem: expected memory from Alloc_mem, got {type(mem).__name__}"
        ) from None


def Attach_buffer(buf: Any) -> None:
    """Accept a buffer for buffered sends. treecast's sends are always buffered by the
    transport, so the buffer is only kept to be returned by :func:`Detach_buffer`."""
    _attached.append(buf)


def Detach_buffer() -> Any:
    """Return the buffer given to :func:`Attach_buffer` (None if none)."""
    return _attached.pop() if _attached else None


def Flush_buffer() -> None:
    """Nothing to flush: buffered sends are sent as they are made."""


def _comm_lock_table(comm: Comm) -> dict[str, Any]:
    """The per-communicator table of locks that serialise each object collective across
    threads (mpi4py's internal helper, used by its tests)."""
    return comm._locks


def _missing(name: str, known: frozenset[str], owner: str) -> Any:
    if name in known:
        raise NotImplementedName(
            f"treecast.MPI does not implement {owner}.{name} (mpi4py's {owner}.{name}); "
            + _mpi4py_names.COMPAT_POINTER.format(name=f"{owner}.{name}")
        )
    raise AttributeError(f"{owner} has no attribute {name!r}")


COMM_WORLD = world()
COMM_SELF = self_comm()


def __getattr__(name: str) -> Any:
    return _missing(name, _mpi4py_names.MODULE, "MPI")
