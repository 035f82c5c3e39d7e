"""Status of a completed receive (mpi4py's ``MPI.Status``)."""

from __future__ import annotations

from array import array
from typing import Any

from .constants import ANY_SOURCE, ANY_TAG, UNDEFINED
from .errors import InvalidArgumentError, InvalidArgumentTypeError

# The fields live in five C ints laid out as MPICH's MPI_Status, so that tomemory() can
# expose them: count (low 32 bits), count (high bits, << 1) | cancelled, source, tag, error.
_COUNT_LO, _COUNT_HI, _SOURCE, _TAG, _ERROR = range(5)


def _itemsize(datatype: Any, where: str) -> int:
    """Bytes per item of ``datatype``: an MPI datatype, a NumPy dtype or type character, or
    None for bytes."""
    if datatype is None:
        return 1
    size = getattr(datatype, "size", None)
    if isinstance(size, int) and not isinstance(datatype, type):
        return size
    import numpy as np

    try:
        return np.dtype(getattr(datatype, "dtype", datatype)).itemsize
    except TypeError:
        raise InvalidArgumentTypeError(
            f"{where}: expected a datatype (MPI.INT, a NumPy dtype or a type character), "
            f"got {type(datatype).__name__} {datatype!r}"
        ) from None


class Status:
    """Source, tag, size, error and cancellation of a completed operation.

    ``Status()`` has mpi4py's defaults (source ``ANY_SOURCE``, tag ``ANY_TAG``, error 0,
    count 0); ``Status(other)`` is a copy.

    Attributes:
        source: rank of the sender in the receiving communicator.
        tag: the message's tag.
        count: bytes received.
        error: the MPI error class of the operation (0: success).
        cancelled: whether the operation was cancelled.

    Raises:
        InvalidArgumentTypeError: the argument is neither a Status nor None.
    """

    __slots__ = ("_fields",)

    def __init__(self, status: Status | None = None) -> None:
        if status is None:
            self._fields = array("i", [0, 0, ANY_SOURCE, ANY_TAG, 0])
        elif isinstance(status, Status):
            self._fields = array("i", status._fields)
        else:
            raise InvalidArgumentTypeError(
                f"Status: expected a Status to copy, or nothing; got {type(status).__name__} "
                f"{status!r}"
            )

    def _clear(self) -> None:
        """mpi4py's empty status: ``ANY_SOURCE``, ``ANY_TAG``, no error, no bytes."""
        self._fields[:] = array("i", [0, 0, ANY_SOURCE, ANY_TAG, 0])

    # ---- fields -------------------------------------------------------------------------------
    @property
    def source(self) -> int:
        return self._fields[_SOURCE]

    @source.setter
    def source(self, value: int) -> None:
        self._fields[_SOURCE] = value

    @property
    def tag(self) -> int:
        return self._fields[_TAG]

    @tag.setter
    def tag(self, value: int) -> None:
        self._fields[_TAG] = value

    @property
    def error(self) -> int:
        return self._fields[_ERROR]

    @error.setter
    def error(self, value: int) -> None:
        self._fields[_ERROR] = value

    @property
    def count(self) -> int:
        f = self._fields
        return (f[_COUNT_LO] & 0xFFFFFFFF) | ((f[_COUNT_HI] & 0xFFFFFFFF) >> 1) << 32

    @count.setter
    def count(self, value: int) -> None:
        if value < 0:
            raise InvalidArgumentError(f"Status: count must be >= 0, got {value}")
        f = self._fields
        lo = value & 0xFFFFFFFF
        f[_COUNT_LO] = lo - (1 << 32) if lo >= 1 << 31 else lo
        hi = ((value >> 32) << 1) | (f[_COUNT_HI] & 1)
        f[_COUNT_HI] = hi - (1 << 32) if hi >= 1 << 31 else hi

    @property
    def cancelled(self) -> bool:
        return bool(self._fields[_COUNT_HI] & 1)

    @cancelled.setter
    def cancelled(self, value: bool) -> None:
        f = self._fields
        f[_COUNT_HI] = (f[_COUNT_HI] & ~1) | (1 if value else 0)

    # ---- mpi4py accessors -----------------------------------------------------------------------
    def Get_source(self) -> int:
        """Rank of the sender."""
        return self.source

    def Set_source(self, source: int) -> None:
        """Set the source field."""
        self.source = source

    def Get_tag(self) -> int:
        """The message's tag."""
        return self.tag

    def Set_tag(self, tag: int) -> None:
        """Set the tag field."""
        self.tag = tag

    def Get_error(self) -> int:
        """The MPI error class of the operation (0: success)."""
        return self.error

    def Set_error(self, error: int) -> None:
        """Set the error field."""
        self.error = error

    def Get_count(self, datatype: Any = None) -> int:
        """Number of received items of ``datatype`` (bytes when None); ``UNDEFINED`` if the
        bytes are not a whole number of items.

        Raises:
            InvalidArgumentTypeError: ``datatype`` is not a datatype.
        """
        size = _itemsize(datatype, "Get_count")
        if size == 0:
            return 0
        count = self.count
        return count // size if count % size == 0 else UNDEFINED

    def Get_elements(self, datatype: Any = None) -> int:
        """Number of received basic elements of ``datatype`` (bytes when None).

        Raises:
            InvalidArgumentTypeError: ``datatype`` is not a datatype.
        """
        return self.Get_count(datatype)

    def Set_elements(self, datatype: Any, count: int) -> None:
        """Record that ``count`` items of ``datatype`` were received.

        Raises:
            InvalidArgumentTypeError: ``datatype`` is not a datatype.
        """
        self.count = count * _itemsize(datatype, "Set_elements")

    def Is_cancelled(self) -> bool:
        """Whether the operation was cancelled."""
        return self.cancelled

    def Set_cancelled(self, flag: bool) -> None:
        """Set the cancelled flag."""
        self.cancelled = bool(flag)

    def tomemory(self) -> memoryview:
        """The fields as a live ``memoryview`` of C ints (MPICH's ``MPI_Status`` layout):
        writes through it change this status."""
        return memoryview(self._fields)

    def py2f(self) -> list[int]:
        """The fields as a list of ints (the Fortran status)."""
        return list(self._fields)

    @classmethod
    def f2py(cls, arg: list[int]) -> Status:
        """A status from :meth:`py2f`'s list.

        Raises:
            InvalidArgumentError: ``arg`` does not hold five ints.
        """
        if len(arg) != 5:
            raise InvalidArgumentError(f"Status.f2py: expected 5 ints, got {len(arg)}")
        status = cls()
        status._fields[:] = array("i", arg)
        return status

    def __getstate__(self) -> list[int]:
        return list(self._fields)

    def __setstate__(self, state: list[int]) -> None:
        self._fields = array("i", state)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Status):
            return NotImplemented
        return self._fields == other._fields

    __hash__ = None  # type: ignore[assignment]  # mutable, as mpi4py's

    def __repr__(self) -> str:
        return f"Status(source={self.source}, tag={self.tag}, count={self.count})"
