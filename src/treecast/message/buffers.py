"""Buffer arguments of the capitalised calls (``Send``, ``Recv``, ``Bcast``...) as byte views.

Accepted: NumPy arrays and any object with the buffer protocol, contiguous; also mpi4py's
list specs ``[buf, datatype]`` and ``[buf, count, datatype]``, where ``datatype`` is a NumPy
dtype, a type character, or an object with a ``dtype`` attribute.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ..errors import InvalidArgumentError, InvalidBufferError


def _datatype_itemsize(datatype: Any) -> int:
    dt = (
        datatype
        if isinstance(datatype, (type, str, np.dtype))
        else getattr(datatype, "dtype", datatype)
    )
    try:
        return np.dtype(dt).itemsize
    except TypeError as exc:
        raise InvalidBufferError(f"unknown datatype {datatype!r} in buffer spec") from exc


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
        itemsize = _datatype_itemsize(datatype)
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
    if view.format == "B" and view.ndim == 1:
        flat = view
    elif view.c_contiguous:
        flat = view.cast("B")
    else:  # Fortran order: the same bytes, viewed flat without a copy
        flat = memoryview(np.asarray(buf).ravel(order="K")).cast("B")  # type: ignore[arg-type]
    if count is not None:
        nbytes = int(count) * itemsize
        if count < 0 or nbytes > flat.nbytes:
            raise InvalidArgumentError(
                f"{what}: count {count} of {itemsize}-byte items does not fit a buffer of {flat.nbytes} bytes"
            )
        flat = flat[:nbytes]
    return flat
