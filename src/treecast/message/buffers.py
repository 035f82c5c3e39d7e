"""Buffer arguments of the capitalised calls (``Send``, ``Recv``, ``Bcast``...) as byte views.

Accepted: NumPy arrays and any object with the buffer protocol, contiguous; also mpi4py's
list specs ``[buf, datatype]`` and ``[buf, count, datatype]``, where ``datatype`` is a NumPy
dtype, a type character, or an object with a ``dtype`` attribute.
"""

from __future__ import annotations

import itertools
import reprlib
from typing import Any, NamedTuple

import numpy as np

from ..constants import BOTTOM
from ..errors import InvalidArgumentError, InvalidBufferError, InvalidCountError


def array_bytes(arr: np.ndarray) -> memoryview:
    """The bytes of a flat contiguous array, as a memoryview (any dtype, structured too)."""
    return memoryview(arr.view(np.uint8))  # type: ignore[arg-type]


def _checked_view(buf: Any, what: str, writable: bool, spec: Any = None) -> memoryview:
    """``memoryview(buf)``, checked: a contiguous buffer, writable if asked. ``spec`` is the
    whole argument where ``buf`` is the first item of a buffer spec, for messages.

    Raises:
        InvalidBufferError: not a buffer, not contiguous, or read-only where writable is needed.
    """
    if buf is BOTTOM:
        raise NotImplementedError(
            f"{what}: MPI.BOTTOM (absolute addresses of derived datatypes) is not implemented"
        )
    try:
        view = memoryview(buf)
    except TypeError as exc:
        where = "" if spec is None else f" as the first item of buffer spec {reprlib.repr(spec)}"
        raise InvalidBufferError(
            f"{what}: expected a NumPy array or a buffer-protocol object{where}, got "
            f"{type(buf).__name__} {reprlib.repr(buf)}"
        ) from exc
    if not view.contiguous:
        raise InvalidBufferError(f"{what}: buffer must be contiguous (use numpy.ascontiguousarray)")
    if writable and view.readonly:
        raise InvalidBufferError(
            f"{what}: receive buffer of type {type(buf).__name__} is read-only"
        )
    return view


def _empty_for(count: Any, what: str) -> bytearray:
    """The buffer of mpi4py's empty message ``[None, 0, datatype]``.

    Raises:
        InvalidBufferError: a count other than 0 (or none) with a None buffer.
    """
    if count not in (None, 0):
        raise InvalidBufferError(f"{what}: a None buffer holds 0 items, not count {count!r}")
    return bytearray(0)


def byte_view(buf: Any, what: str, writable: bool = False) -> memoryview:
    """Return a flat unsigned-byte view of buffer argument ``buf``.

    Args:
        buf: the buffer or buffer spec.
        what: the argument's name and call, for messages (``"Recv buf"``).
        writable: a receive buffer: must be writable.

    Raises:
        InvalidBufferError: not a buffer, not contiguous, or read-only where writable is needed.
        InvalidArgumentError: a spec's count does not fit the buffer.
    """
    count = displ = spec = None
    itemsize = 1
    if isinstance(buf, (list, tuple)):
        spec = buf
        data, count, displ, datatype = _split_spec(buf, what)
        if datatype is not None:
            itemsize = _dtype_of(datatype).itemsize
        elif not isinstance(data, np.ndarray) and data is not None:
            itemsize = memoryview(data).itemsize if _has_buffer(data) else 1
        else:
            itemsize = 1 if data is None else data.itemsize
        # mpi4py's empty message [None, 0, datatype] (a bare None is an error)
        buf = _empty_for(count, what) if data is None else data
    view = _checked_view(buf, what, writable, spec)
    if view.format == "B" and view.ndim == 1:
        flat = view
    elif view.c_contiguous:
        flat = view.cast("B")
    else:  # Fortran order: the same bytes, viewed flat without a copy
        flat = memoryview(np.asarray(buf).ravel(order="K")).cast("B")  # type: ignore[arg-type]
    if displ is not None:
        start = _index(displ, what, "displacement") * itemsize
        if not 0 <= start <= flat.nbytes:
            raise InvalidCountError(
                f"{what}: displacement {displ} of {itemsize}-byte items is outside a buffer of "
                f"{flat.nbytes} bytes"
            )
        flat = flat[start:]
    if count is not None:
        c = _index(count, what, "count")
        nbytes = c * itemsize
        if c < 0 or nbytes > flat.nbytes:
            raise InvalidCountError(
                f"{what}: count {c} of {itemsize}-byte items does not fit a buffer of {flat.nbytes} bytes"
            )
        flat = flat[:nbytes]
    return flat


def _has_buffer(obj: Any) -> bool:
    try:
        memoryview(obj)
    except TypeError:
        return False
    return True


def _dtype_of(datatype: Any) -> np.dtype:
    dt = (
        datatype
        if isinstance(datatype, (type, str, np.dtype))
        else getattr(datatype, "dtype", datatype)
    )
    try:
        return np.dtype(dt)
    except TypeError as exc:
        raise InvalidBufferError(f"unknown datatype {datatype!r} in buffer spec") from exc


def _flat_array(
    buf: Any, what: str, writable: bool, dtype: np.dtype | None, spec: Any = None
) -> np.ndarray:
    view = _checked_view(buf, what, writable, spec)
    if isinstance(buf, np.ndarray):
        arr = buf.reshape(-1, order="A") if buf.ndim != 1 else buf
    else:
        try:
            arr = np.frombuffer(view, dtype=np.dtype(view.format))
        except TypeError:
            arr = np.frombuffer(view.cast("B"), dtype=np.uint8)
        if not view.readonly:
            arr = np.ndarray(arr.shape, arr.dtype, buffer=view)  # writable view
    if dtype is not None and dtype != arr.dtype:
        raw = arr.view(np.uint8) if arr.dtype.itemsize else arr
        if raw.nbytes % dtype.itemsize:
            raise InvalidArgumentError(
                f"{what}: a buffer of {raw.nbytes} bytes does not hold whole {dtype} items"
            )
        arr = raw.view(dtype)
    return arr


def _is_int(x: Any) -> bool:
    return isinstance(x, (int, np.integer)) and not isinstance(x, bool)


def _counts(value: Any, what: str, name: str, size: int) -> tuple[int, ...]:
    try:
        out = tuple(int(c) for c in value)
    except TypeError:
        raise InvalidArgumentError(
            f"{what}: {name} must be a sequence of {size} ints, got {value!r}"
        ) from None
    if len(out) != size:
        raise InvalidArgumentError(
            f"{what}: {name} must have {size} entries (one per rank), got {len(out)}: {value!r}"
        )
    if any(c < 0 for c in out):
        raise InvalidCountError(f"{what}: {name} must be >= 0, got {value!r}")
    return out


def _is_datatype(x: Any) -> bool:
    """Whether the second item of a two-item spec is a datatype (not a count)."""
    return isinstance(x, (str, np.dtype, type)) or hasattr(x, "dtype")


def _split_spec(buf: Any, what: str) -> tuple[Any, Any, Any, Any]:
    """``(buffer, count, displacement, datatype)`` of a buffer argument, after mpi4py's
    message rules: ``buf``, ``[buf, datatype]``, ``[buf, count]``, ``[buf, (count, displ)]``,
    ``[buf, count, datatype]``, ``[buf, (count, displ), datatype]`` or ``[buf, count, displ,
    datatype]``; absent parts are None.

    Raises:
        InvalidBufferError: a list or tuple of another length.
    """
    if not isinstance(buf, (list, tuple)):
        return buf, None, None, None
    count = displ = datatype = None
    if len(buf) == 2:
        data, count = buf
        if _is_datatype(count):
            count, datatype = None, count
    elif len(buf) == 3:
        data, count, datatype = buf
    elif len(buf) == 4:
        data, count, displ, datatype = buf
    else:
        raise InvalidBufferError(
            f"{what}: buffer spec must be buf, [buf, datatype], [buf, count, datatype] or "
            f"[buf, count, displ, datatype]; got a {type(buf).__name__} of length {len(buf)}"
        )
    if len(buf) < 4 and isinstance(count, (list, tuple)):
        if len(count) != 2:
            raise InvalidBufferError(f"{what}: expected (count, displacement), got {count!r}")
        count, displ = count
    return data, count, displ, datatype


def as_array(buf: Any, what: str, writable: bool = False, blocks: int = 1) -> np.ndarray:
    """A flat (1-D, no copy) NumPy array of buffer argument ``buf``: a NumPy array, any
    buffer-protocol object, or one of mpi4py's specs (see :func:`_split_spec`). A spec's
    count is items *per block* and its displacement is in items, as in mpi4py: for a
    collective that holds one block per rank (``blocks`` = ranks) the array covers
    ``count * blocks`` items from the displacement.

    Raises:
        InvalidBufferError: not a contiguous buffer, read-only where a writable one is
            needed, or an unknown datatype.
        InvalidCountError: the count or displacement does not fit the buffer.
    """
    data, count, displ, datatype = _split_spec(buf, what)
    dtype = None if datatype is None else _dtype_of(datatype)
    if data is None and isinstance(buf, (list, tuple)):
        data = _empty_for(count, what)
    arr = _flat_array(data, what, writable, dtype, buf if data is not buf else None)
    if displ is not None:
        d = _index(displ, what, "displacement")
        if not 0 <= d <= arr.size:
            raise InvalidCountError(
                f"{what}: displacement {d} is outside a buffer of {arr.size} {arr.dtype} items"
            )
        arr = arr[d:]
    if count is not None:
        c = _index(count, what, "count")
        if not 0 <= c * blocks <= arr.size:
            per = f" x {blocks} blocks" if blocks > 1 else ""
            raise InvalidCountError(
                f"{what}: count {c}{per} does not fit a buffer of {arr.size} {arr.dtype} items"
            )
        arr = arr[: c * blocks]
    return arr


def _index(value: Any, what: str, name: str) -> int:
    if not _is_int(value):
        raise InvalidCountError(f"{what}: {name} must be an int, got {value!r}")
    return int(value)


class _VectorSpec(NamedTuple):
    """The parts of a v-variant buffer spec, each None where the spec leaves it out."""

    data: Any
    counts: Any
    displs: Any
    datatype: Any


def _split_vector_spec(buf: Any, what: str) -> _VectorSpec:
    """``buf``'s parts after mpi4py's v-variant forms (see :func:`vector_spec`).

    Raises:
        InvalidArgumentError: a list or tuple of a length no form has.
    """
    if not isinstance(buf, (list, tuple)):
        return _VectorSpec(buf, None, None, None)
    if len(buf) == 4:
        return _VectorSpec(*buf)
    if len(buf) == 2:
        data, counts = buf
        if _is_datatype(counts):
            return _VectorSpec(data, None, None, counts)
        datatype = None
    elif len(buf) == 3:
        data, counts, datatype = buf
    else:
        raise InvalidArgumentError(
            f"{what}: buffer spec of length {len(buf)} is not understood; expected "
            f"[buf, counts, displs, datatype] or a shorter form"
        )
    if isinstance(counts, tuple):
        counts, displs = counts
        return _VectorSpec(data, counts, displs, datatype)
    return _VectorSpec(data, counts, None, datatype)


def _vector_counts(counts: Any, items: int, what: str, size: int) -> tuple[int, ...]:
    """Per-rank counts from a spec's counts: a sequence, one int for all, or None (even split).

    Raises:
        InvalidCountError: a negative count.
        InvalidArgumentError: as :func:`_counts`.
    """
    if counts is None:
        return tuple(items // size + (items % size > i) for i in range(size))
    if _is_int(counts):
        if counts < 0:
            raise InvalidCountError(f"{what}: counts must be >= 0, got {counts}")
        return (int(counts),) * size
    return _counts(counts, what, "counts", size)


def _vector_displs(displs: Any, counts: tuple[int, ...], what: str, size: int) -> tuple[int, ...]:
    """Per-rank displacements from a spec's: a sequence, an int stride, or None (packed).

    Raises:
        InvalidArgumentError: as :func:`_counts`.
    """
    if displs is None:
        return tuple(itertools.accumulate(counts, initial=0))[:-1]
    if _is_int(displs):
        return tuple(int(displs) * i for i in range(size))
    return _counts(displs, what, "displacements", size)


def vector_spec(
    buf: Any, what: str, size: int, writable: bool = False
) -> tuple[np.ndarray, tuple[int, ...], tuple[int, ...]]:
    """``(array, counts, displacements)`` of a v-variant buffer argument (Gatherv, ...),
    after mpi4py's rules: ``buf``, ``[buf, counts]``, ``[buf, (counts, displs)]``, ``[buf,
    datatype]``, ``[buf, counts, datatype]``, ``[buf, (counts, displs), datatype]`` or
    ``[buf, counts, displs, datatype]``, in items. Counts: one per rank, one int for every
    rank, or None (the buffer split as evenly as possible); displacements: one per rank, an
    int ``d`` (rank ``i`` at ``d * i``), or None (packed).

    Raises:
        InvalidArgumentError: counts or displacements are not ``size`` non-negative ints, or a
            block falls outside the buffer.
        InvalidBufferError: as :func:`as_array`.
    """
    spec = _split_vector_spec(buf, what)
    dtype = None if spec.datatype is None else _dtype_of(spec.datatype)
    arr = _flat_array(spec.data, what, writable, dtype, buf if spec.data is not buf else None)
    c = _vector_counts(spec.counts, arr.size, what, size)
    dd = _vector_displs(spec.displs, c, what, size)
    for r, (n, off) in enumerate(zip(c, dd, strict=True)):
        if off < 0 or off + n > arr.size:
            raise InvalidCountError(
                f"{what}: block of rank {r} (count {n} at displacement {off}) falls outside the "
                f"buffer of {arr.size} {arr.dtype} items"
            )
    return arr, c, dd
