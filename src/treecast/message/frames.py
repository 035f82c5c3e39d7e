"""Objects as pickle protocol 5 frames, with large buffers out of band.

``dumps(obj)`` returns ``[pickle stream, buffer 1, buffer 2, ...]``: contiguous buffers of at
least :data:`OOB_THRESHOLD` bytes (NumPy arrays, bytes, bytearrays) are not copied into the
pickle stream but travel as frames of their own, straight from the sender's memory. The
receiver allocates each frame once, reads the bytes into it, and ``loads`` rebuilds arrays
on those frames without another copy.
"""

from __future__ import annotations

import pickle
from collections.abc import Sequence

from ..errors import DeserializationError, SerializationError

OOB_THRESHOLD = 64 * 1024
"""Buffers at least this large travel out of band; smaller ones stay in the pickle stream."""


def dumps(obj: object, where: str = "send") -> list[memoryview]:
    """Serialise ``obj`` into frames (the first is the pickle stream).

    Raises:
        SerializationError: ``obj`` cannot be pickled; the message names its type.
    """
    buffers: list[memoryview] = []

    def out_of_band(pb: pickle.PickleBuffer) -> bool:
        try:
            raw = pb.raw()
        except BufferError:  # not contiguous: let it go in band
            return True
        if raw.nbytes < OOB_THRESHOLD:
            return True
        buffers.append(raw)
        return False

    try:
        stream = pickle.dumps(obj, protocol=5, buffer_callback=out_of_band)
    except Exception as exc:
        raise SerializationError(
            f"{where}: cannot pickle object of type {type(obj).__module__}.{type(obj).__qualname__}: {exc}"
        ) from exc
    return [memoryview(stream), *buffers]


def loads(frames: Sequence[memoryview], where: str = "recv") -> object:
    """Rebuild the object from frames made by :func:`dumps`.

    Raises:
        DeserializationError: the bytes cannot be rebuilt here (for example, the class
            does not exist in this process); the message includes the cause.
    """
    try:
        return pickle.loads(frames[0], buffers=frames[1:])
    except Exception as exc:
        raise DeserializationError(
            f"{where}: cannot rebuild the received object: {type(exc).__name__}: {exc}"
        ) from exc
