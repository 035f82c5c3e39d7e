"""Objects as pickle protocol 5 frames, with large buffers out of band.

``dumps(obj)`` returns ``[pickle stream, buffer 1, buffer 2, ...]``: contiguous buffers of at
least :data:`OOB_THRESHOLD` bytes (NumPy arrays, bytes, bytearrays) are not copied into the
pickle stream but travel as frames of their own, straight from the sender's memory. The
receiver allocates each frame once, reads the bytes into it, and ``loads`` rebuilds arrays
on those frames without another copy.
"""

from __future__ import annotations

import pickle
import struct
from collections.abc import Sequence

import numpy as np

from ..errors import DeserializationError, SenderFailedError, SerializationError

OOB_THRESHOLD = 64 * 1024
"""Buffers at least this large travel out of band; smaller ones stay in the pickle stream."""


ARRAY_MAGIC = b"\x00tcA"
"""First bytes of a plain-array frame (a pickle stream starts with ``\\x80``)."""
_ARRAY_HEAD = struct.Struct("<4s16sB")  # magic, dtype.str, ndim; then ndim int64 dims
_NUMERIC = frozenset("biufc")


def _dumps_array(a: np.ndarray) -> list[memoryview]:
    """A plain C-contiguous numeric array without pickle (NumPy's ``__reduce_ex__`` costs
    about 12 us to pickle and 10 us to rebuild even an 8-byte array): a small header
    (dtype, shape), then the data in band if small, out of band if large."""
    key = (a.dtype, a.shape)
    head = _HEADS.get(key)
    if head is None:
        head = _ARRAY_HEAD.pack(ARRAY_MAGIC, a.dtype.str.encode(), a.ndim) + struct.pack(
            f"<{a.ndim}q", *a.shape
        )
        head += bytes(_array_data_offset(a.ndim) - len(head))
        if len(_HEADS) < 256:
            _HEADS[key] = head
    if a.nbytes >= OOB_THRESHOLD:
        return [memoryview(head), memoryview(a.reshape(-1).view(np.uint8))]  # type: ignore[arg-type]
    return [memoryview(head + a.tobytes())]


_HEADS: dict[tuple[np.dtype, tuple[int, ...]], bytes] = {}
"""Array headers by (dtype, shape): the same arrays travel again and again."""
_DTYPES: dict[bytes, np.dtype] = {}


def _array_data_offset(ndim: int) -> int:
    """Where a small array's data starts in its frame: after the header, padded to 16 bytes
    so that the data is aligned whenever the frame is."""
    return -(-(_ARRAY_HEAD.size + 8 * ndim) // 16) * 16


def _loads_array(frames: Sequence[memoryview]) -> np.ndarray:
    first = frames[0]
    _, dt, ndim = _ARRAY_HEAD.unpack_from(first)
    shape = struct.unpack_from(f"<{ndim}q", first, _ARRAY_HEAD.size)
    data = frames[1] if len(frames) > 1 else first[_array_data_offset(ndim) :]
    dtype = _DTYPES.get(dt)
    if dtype is None:
        dtype = _DTYPES[dt] = np.dtype(dt.rstrip(b"\0").decode())
    arr = np.frombuffer(data, dtype=dtype).reshape(shape)
    # a frame we may not keep, or data at an odd address (a frame inside a larger message):
    # the caller gets its own aligned array, as pickle would give
    return arr if arr.flags.writeable and arr.flags.aligned else arr.copy()


NODE_MAGIC = b"\x00tcN"
"""First bytes of the message of a node-level object broadcast: the buffers follow through
node memory, the message carries their sizes and the first frame."""
_NODE_HEAD = struct.Struct("<4sI")  # magic, number of buffers; then their sizes (int64)


def dumps_node_header(first: memoryview, lengths: Sequence[int]) -> memoryview:
    """The one frame a node-level object broadcast sends through the tree: the sizes of the
    buffers that go through node memory, then the object's first frame (without pickling
    it again)."""
    head = _NODE_HEAD.pack(NODE_MAGIC, len(lengths)) + struct.pack(f"<{len(lengths)}q", *lengths)
    return memoryview(head + first.tobytes())


def loads_node_header(frame: memoryview) -> tuple[memoryview, list[int]] | None:
    """``(first frame, buffer sizes)`` from :func:`dumps_node_header`'s frame; None for any
    other frame."""
    if frame[:4] != NODE_MAGIC:
        return None
    _, count = _NODE_HEAD.unpack_from(frame)
    end = _NODE_HEAD.size + 8 * count
    return frame[end:], list(struct.unpack_from(f"<{count}q", frame, _NODE_HEAD.size))


def dumps(obj: object, where: str = "send") -> list[memoryview]:
    """Serialise ``obj`` into frames (the first is the pickle stream, or a plain array's
    header).

    Raises:
        SerializationError: ``obj`` cannot be pickled; the message names its type.
    """
    if (
        type(obj) is np.ndarray
        and obj.dtype.kind in _NUMERIC
        and obj.flags.c_contiguous
        and not obj.dtype.metadata
    ):
        return _dumps_array(obj)
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


class SendFailed:
    """What a rank sends in a collective in place of a part it could not send (an object
    that cannot be pickled): the collective still runs to its end on every rank, and each
    rank whose result holds a marker raises :class:`SenderFailedError`
    (:func:`raise_if_failed`)."""

    __slots__ = ("message", "rank")

    def __init__(self, rank: int, message: str) -> None:
        self.rank = rank
        self.message = message

    def __reduce__(self) -> tuple[type, tuple[int, str]]:
        return (SendFailed, (self.rank, self.message))

    def error(self, where: str) -> SenderFailedError:
        return SenderFailedError(
            f"{where}: rank {self.rank} could not send its part, so this rank has no result: "
            f"{self.message}"
        )


def dumps_or_marker(
    obj: object, where: str, rank: int
) -> tuple[list[memoryview], SerializationError | None]:
    """``(dumps(obj), None)``, or, if ``obj`` cannot be pickled, the frames of a
    :class:`SendFailed` marker and the error, for the caller to raise once the collective
    has ended on every rank."""
    try:
        return dumps(obj, where), None
    except SerializationError as exc:
        return dumps(SendFailed(rank, str(exc)), where), exc


def failed_part(result: object) -> SendFailed | None:
    """The marker in a collective's ``result`` (the result itself, or an item of a list:
    gather, allgather, alltoall), or None."""
    if type(result) is SendFailed:
        return result
    if type(result) is list:
        for item in result:
            if type(item) is SendFailed:
                return item
    return None


def raise_if_failed(result: object, where: str) -> None:
    """Raise :class:`SenderFailedError` if a collective's ``result`` holds a marker
    (:func:`failed_part`).

    Raises:
        SenderFailedError: the result needed a part that its rank could not send.
    """
    bad = failed_part(result)
    if bad is not None:
        raise bad.error(where)


def loads(frames: Sequence[memoryview], where: str = "recv") -> object:
    """Rebuild the object from frames made by :func:`dumps`.

    Raises:
        DeserializationError: the bytes cannot be rebuilt here (for example, the class
            does not exist in this process); the message includes the cause.
    """
    try:
        if frames[0][:4] == ARRAY_MAGIC:
            return _loads_array(frames)
        return pickle.loads(frames[0], buffers=frames[1:])
    except Exception as exc:
        raise DeserializationError(
            f"{where}: cannot rebuild the received object: {type(exc).__name__}: {exc}"
        ) from exc


def loads_message(frames: Sequence[memoryview], where: str = "recv") -> object:
    """The object in a received message's ``frames``; a message of 0 bytes (a buffer send
    of nothing) is None, as in mpi4py.

    Raises:
        DeserializationError: the bytes cannot be rebuilt into an object here.
    """
    if len(frames) == 1 and frames[0].nbytes == 0:
        return None
    return loads(frames, where)
