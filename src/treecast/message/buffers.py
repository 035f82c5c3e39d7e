"""Buffer arguments of the capitalised calls (``Send``, ``Recv``, ``Bcast``...) as byte views.

Accepted: NumPy arrays and any object with the buffer protocol, contiguous; also mpi4py's
list specs ``[buf, datatype]`` and ``[buf, count, datatype]``, where ``datatype`` is a NumPy
dtype, a type character, or an object with a ``dtype`` attribute.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ..errors import InvalidArgumentError, InvalidBufferError, InvalidCountError


def _checked_view(buf: Any, what: str, writable: bool) -> memoryview:
    """``memoryview(buf)``, checked: a contiguous buffer, writable if asked.

    Raises:
        InvalidBufferError: not a buffer, not contiguous, or read-only where writable is needed.
    """
    try:
        view = memoryview(buf)
    except TypeError as exc:
        raise InvalidBufferError(
            f"{what}: expected a NumPy array or a buffer-protocol object, got {type(buf).__name__}"
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
    count: int | None = None
    itemsize = 1
    if isinstance(buf, (list, tuple)):
        if len(buf) == 2:
            buf, datatype = buf
        elif len(buf) == 3:
            buf, count, datatype = buf
        else:
            raise InvalidBufferError(
                f"{what}: buffer spec must be buf, [buf, datatype] or [buf, count, datatype]; got a {type(buf).__name__} of length {len(buf)}"
            )
        itemsize = _dtype_of(datatype).itemsize
        if buf is None:  # mpi4py's empty message [None, 0, datatype] (a bare None is an error)
            buf = _empty_for(count, what)
    view = _checked_view(buf, what, writable)
    if view.format == "B" and view.ndim == 1:
        flat = view
    elif view.c_contiguous:
        flat = view.cast("B")
    else:  # Fortran order: the same bytes, viewed flat without a copy
        flat = memoryview(np.asarray(buf).ravel(order="K")).cast("B")  # type: ignore[arg-type]
    if count is not None:
        nbytes = int(count) * itemsize
        if count < 0 or nbytes > flat.nbytes:
            raise InvalidCountError(
                f"{what}: count {count} of {itemsize}-byte items does not fit a buffer of {flat.nbytes} bytes"
            )
        flat = flat[:nbytes]
    return flat


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


def _flat_array(buf: Any, what: str, writable: bool, dtype: np.dtype | None) -> np.ndarray:
    view = _checked_view(buf, what, writable)
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


def as_array(buf: Any, what: str, writable: bool = False) -> np.ndarray:
    """A flat (1-D, no copy) NumPy array of buffer argument ``buf``: a NumPy array, any
    buffer-protocol object, ``[buf, datatype]`` or ``[buf, count, datatype]``.

    Raises:
        InvalidBufferError: not a contiguous buffer, read-only where a writable one is
            needed, or an unknown datatype.
        InvalidArgumentError: the count does not fit the buffer.
    """
    count: int | None = None
    dtype = None
    if isinstance(buf, (list, tuple)):
        if len(buf) == 2:
            buf, datatype = buf
        elif len(buf) == 3 and _is_int(buf[1]):
            buf, count, datatype = buf
        else:
            raise InvalidBufferError(
                f"{what}: buffer spec must be buf, [buf, datatype] or [buf, count, datatype]; "
                f"got a {type(buf).__name__} of length {len(buf)}"
            )
        dtype = _dtype_of(datatype)
        if buf is None:
            buf = _empty_for(count, what)
    arr = _flat_array(buf, what, writable, dtype)
    if count is not None:
        if not 0 <= count <= arr.size:
            raise InvalidCountError(
                f"{what}: count {count} does not fit a buffer of {arr.size} {arr.dtype} items"
            )
        arr = arr[:count]
    return arr


def vector_spec(
    buf: Any, what: str, size: int, writable: bool = False
) -> tuple[np.ndarray, tuple[int, ...], tuple[int, ...]]:
    """``(array, counts, displacements)`` of a v-variant buffer argument (Gatherv, ...):
    ``[buf, counts, displs, datatype]``, ``[buf, (counts, displs), datatype]``,
    ``[buf, counts, datatype]`` or ``[buf, counts]`` (displacements default to packed),
    counts and displacements in items, one per rank.

    Raises:
        InvalidArgumentError: counts or displacements are not ``size`` non-negative ints, or a
            block falls outside the buffer.
        InvalidBufferError: as :func:`as_array`.
    """
    if not isinstance(buf, (list, tuple)) or len(buf) < 2 or _is_int(buf[1]):
        raise InvalidArgumentError(
            f"{what}: expected [buf, counts, displs, datatype] (or [buf, counts], "
            f"[buf, (counts, displs), datatype]), got {type(buf).__name__}"
        )
    displs: Any = None
    datatype: Any = None
    if len(buf) == 4:
        data, counts, displs, datatype = buf
    elif len(buf) == 3:
        data, counts, datatype = buf
        if isinstance(counts, tuple) and len(counts) == 2 and not _is_int(counts[0]):
            counts, displs = counts
    elif len(buf) == 2:
        data, counts = buf
        if isinstance(counts, tuple) and len(counts) == 2 and not _is_int(counts[0]):
            counts, displs = counts
    else:
        raise InvalidArgumentError(f"{what}: buffer spec of length {len(buf)} is not understood")
    arr = _flat_array(data, what, writable, None if datatype is None else _dtype_of(datatype))
    c = _counts(counts, what, "counts", size)
    if displs is None:
        d, pos = [], 0
        for n in c:
            d.append(pos)
            pos += n
        dd = tuple(d)
    else:
        dd = _counts(displs, what, "displacements", size)
    for r, (n, off) in enumerate(zip(c, dd, strict=True)):
        if off + n > arr.size:
            raise InvalidCountError(
                f"{what}: block of rank {r} (count {n} at displacement {off}) falls outside the "
                f"buffer of {arr.size} {arr.dtype} items"
            )
    return arr, c, dd
