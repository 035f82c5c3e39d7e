"""Matched probes (mpi4py's ``Message``): ``comm.mprobe()`` takes a message out of matching,
so that exactly this message is then received, even when other threads or receives could
have matched it.

A :class:`Message` is null (falsy) once received. ``MESSAGE_NO_PROC`` is what a probe of
``PROC_NULL`` gives: receiving it returns None at once.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Protocol

from .errors import InvalidArgumentTypeError, TruncationError
from .message import frames as frames_mod
from .message.buffers import byte_view
from .request import Request, null_request
from .status import Status

if TYPE_CHECKING:
    from .transports.base import Incoming, RecvOp, Transport

_NULL, _NO_PROC, _MESSAGE = "null", "no-proc", "message"


class Comm(Protocol):
    """What a matched message needs of its communicator (:class:`treecast.Comm` is one):
    its transport, filling a status, and the matched probes themselves."""

    _t: Transport

    def _fill(self, op: RecvOp | Incoming, status: Status) -> None: ...

    def mprobe(self, source: int = ..., tag: int = ..., status: Status | None = ...) -> Message: ...

    def improbe(
        self, source: int = ..., tag: int = ..., status: Status | None = ...
    ) -> Message | None: ...


class Message:
    """A matched message. ``Message()`` is ``MESSAGE_NULL``; ``Message(other)`` a copy.

    Raises:
        InvalidArgumentTypeError: the argument is not a Message.
    """

    __slots__ = ("_comm", "_kind", "_op")

    def __init__(self, message: Message | None = None) -> None:
        self._comm: Comm | None = None
        self._op: RecvOp | None = None
        self._kind = _NULL
        if isinstance(message, Message):
            self._comm, self._op, self._kind = message._comm, message._op, message._kind
        elif message is not None:
            raise InvalidArgumentTypeError(
                f"Message: expected a Message to copy, got {type(message).__name__}"
            )

    @classmethod
    def _of(cls, comm: Comm | None, op: RecvOp | None) -> Message:
        m = cls()
        m._comm, m._op, m._kind = comm, op, _MESSAGE if op is not None else _NO_PROC
        return m

    @classmethod
    def probe(
        cls, comm: Comm, source: int = -2, tag: int = -1, status: Status | None = None
    ) -> Message:
        """``comm.mprobe(source, tag, status)``."""
        return comm.mprobe(source, tag, status)

    @classmethod
    def iprobe(
        cls, comm: Comm, source: int = -2, tag: int = -1, status: Status | None = None
    ) -> Message | None:
        """``comm.improbe(source, tag, status)``."""
        return comm.improbe(source, tag, status)

    Probe = probe
    Iprobe = iprobe

    def _take(self, op: str) -> tuple[Comm | None, RecvOp | None]:
        """The message's receive; the handle becomes null (the predefined
        ``MESSAGE_NO_PROC`` stays as it is).

        Raises:
            InvalidArgumentTypeError: the message is null (already received).
        """
        if self._kind == _NULL:
            raise InvalidArgumentTypeError(f"Message.{op}: the message is null (already received)")
        taken = self._comm, self._op
        if self is not MESSAGE_NO_PROC:
            self._comm, self._op, self._kind = None, None, _NULL
        return taken

    def _request(self, comm: Comm | None, op: RecvOp | None, finish: Any) -> Request:
        if comm is None or op is None:  # no process: completes at once, empty status
            return null_request(None, receive=True)
        return Request(comm._t, op, finish, comm._fill)

    def irecv(self) -> Request:
        """Start receiving the message as an object; ``wait()`` returns it."""
        comm, op = self._take("irecv")
        return self._request(
            comm, op, lambda r: frames_mod.loads_message(r.frames, "Message.irecv")
        )

    def recv(self, status: Status | None = None) -> Any:
        """Receive the message as an object (None for ``MESSAGE_NO_PROC``)."""
        return self.irecv().wait(status)

    def Irecv(self, buf: Any) -> Request:
        """Start receiving the message into ``buf``.

        Raises:
            InvalidBufferError: ``buf`` is not a writable contiguous buffer.
        """
        comm, op = self._take("Irecv")
        if op is None:
            return self._request(None, None, None)
        view = byte_view(buf, "Message.Irecv buf", writable=True)
        return self._request(comm, op, lambda r: _into(r, view))

    def Recv(self, buf: Any, status: Status | None = None) -> None:
        """Receive the message into ``buf``.

        Raises:
            TruncationError: the message is larger than ``buf`` (nothing is written).
            InvalidBufferError: ``buf`` is not a writable contiguous buffer.
        """
        self.Irecv(buf).wait(status)

    def __bool__(self) -> bool:
        return self._kind != _NULL

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Message):
            return NotImplemented
        return self._kind == other._kind and self._op is other._op

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        return f"<treecast.Message {self._kind}>"

    def __reduce__(self) -> str | tuple[Any, ...]:
        """The predefined messages pickle by name, a null copy as a new null one; a
        matched message cannot be pickled.

        Raises:
            ValueError: a matched message.
        """
        if self is MESSAGE_NULL:
            return "MESSAGE_NULL"
        if self is MESSAGE_NO_PROC:
            return "MESSAGE_NO_PROC"
        if self._kind == _NULL:
            return (Message, ())
        if self._kind == _NO_PROC:
            return (Message, (MESSAGE_NO_PROC,))
        raise ValueError("cannot pickle a matched message: it exists only in this process")


def _into(op: RecvOp, view: memoryview) -> None:
    if op.nbytes > view.nbytes:
        raise TruncationError(
            f"Message.Recv: message of {op.nbytes} bytes does not fit the receive buffer of "
            f"{view.nbytes} bytes; nothing was written to it"
        )
    pos = 0
    for frame in op.frames:
        view[pos : pos + frame.nbytes] = frame
        pos += frame.nbytes


MESSAGE_NULL = Message()
MESSAGE_NO_PROC = Message._of(None, None)
