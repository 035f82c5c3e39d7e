"""Point-to-point messages of a communicator: objects and buffers, blocking, non-blocking,
synchronous, buffered, ready and persistent, probes and matched probes.

A mixin of :class:`treecast.Comm`: it validates the arguments (before anything is sent)
and hands each message to the transport on the communicator's point-to-point context.
"""

from __future__ import annotations

import warnings
from typing import TYPE_CHECKING, Any

from .constants import ANY_SOURCE, ANY_TAG, PROC_NULL, TAG_UB
from .errors import InvalidArgumentTypeError, InvalidRankError, InvalidTagError
from .matched import MESSAGE_NO_PROC, Message
from .message import frames as frames_mod
from .message.buffers import byte_view
from .plans import as_int
from .request import Prequest, Request, null_request, proc_null_status
from .status import Status
from .tracing.events import P2P, clock, note_error, records, tid
from .transports import base as tbase
from .transports.base import RecvOp

if TYPE_CHECKING:
    from .transports.base import Transport

SPIN_INLINE = 32
"""Polls of a blocking receive for a small message on the fast path before posting it."""


def _warn_buf(op: str) -> None:
    warnings.warn(
        f"{op}: the buf argument is ignored; treecast sizes object messages from the "
        f"sender, so no receive buffer is needed",
        UserWarning,
        stacklevel=3,
    )


class PointToPoint:
    """Mixin of :class:`treecast.Comm` with every point-to-point operation."""

    if TYPE_CHECKING:  # provided by Comm
        _t: Transport
        _group: tuple[int, ...]
        _rank_of: dict[int, int]
        _ctx: int
        _freed: bool
        rank: int
        size: int
        name: str

        def _live(self, op: str) -> None: ...

    # ---- validation ----------------------------------------------------------------------------
    def _peer(self, value: Any, name: str, op: str, any_ok: bool = False) -> int:
        r = as_int(value, name, op)
        if 0 <= r < self.size or r == PROC_NULL or (any_ok and r == ANY_SOURCE):
            return r
        extra = ", ANY_SOURCE" if any_ok else ""
        raise InvalidRankError(
            f"{op}: {name}={r} is not a valid rank; expected 0 <= {name} < {self.size} (or PROC_NULL{extra})"
        )

    def _tag(self, value: Any, name: str, op: str, any_ok: bool = False) -> int:
        t = as_int(value, name, op)
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

    # ---- point-to-point: objects ----------------------------------------------------------------
    def _isend_obj(self, obj: Any, dest: int, tag: int, op: str, *, sync: bool) -> Request:
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
        return self._isend_obj(obj, dest, tag, "isend", sync=False)

    def issend(self, obj: Any, dest: int, tag: int = 0) -> Request:
        """Start a synchronous send of ``obj``: the request completes only once a receive on
        ``dest`` has matched the message.

        Raises:
            InvalidRankError, InvalidTagError: bad ``dest`` or ``tag`` (nothing is sent).
            SerializationError: ``obj`` cannot be pickled (nothing is sent).
        """
        return self._isend_obj(obj, dest, tag, "issend", sync=True)

    def ibsend(self, obj: Any, dest: int, tag: int = 0) -> Request:
        """Buffered-mode :meth:`isend`: the same (no ``Attach_buffer`` is needed): the
        transport's ring to the receiver is the buffer, and what does not fit waits for it.

        Raises:
            InvalidRankError, InvalidTagError, SerializationError: as :meth:`isend`.
        """
        return self._isend_obj(obj, dest, tag, "ibsend", sync=False)

    @records("p2p", "send")
    def send(self, obj: Any, dest: int, tag: int = 0, *, timeout: float | None = None) -> None:
        """Send ``obj`` to ``dest`` (returns when the bytes are handed to the transport).

        Raises:
            InvalidRankError, InvalidTagError: bad ``dest`` or ``tag`` (nothing is sent).
            SerializationError: ``obj`` cannot be pickled (nothing is sent).
        """
        t = self._t
        rec = t._rec
        t0 = clock() if rec is not None else 0
        try:
            if self._freed:
                self._live("send")
            if type(dest) is not int or not 0 <= dest < self.size:
                dest = self._peer(dest, "dest", "send")
            if type(tag) is not int or not 0 <= tag <= TAG_UB:
                tag = self._tag(tag, "tag", "send")
            frames = frames_mod.dumps(obj, "send")
            if dest == PROC_NULL:
                return
            wdest = self._group[dest]
            if len(frames) == 1 and t.send_inline(wdest, self._ctx, tag, frames[0]):
                return
            op = t.isend(wdest, self._ctx, tag, frames)
            if not op.done:
                t.wait_op(op, timeout, f"send to rank {dest} (tag {tag}) on {self.name}")
        except BaseException as exc:
            if rec is not None:
                note_error(rec, exc)
            raise
        finally:
            if rec is not None:
                rec.extend((P2P, tid(), t0, clock(), "send", self._ctx))

    def ssend(self, obj: Any, dest: int, tag: int = 0, *, timeout: float | None = None) -> None:
        """Synchronous send: returns once a receive on ``dest`` has matched the message.

        Raises:
            InvalidRankError, InvalidTagError: bad ``dest`` or ``tag`` (nothing is sent).
            SerializationError: ``obj`` cannot be pickled (nothing is sent).
            TimeoutError: no receive matched within ``timeout`` seconds.
        """
        self._isend_obj(obj, dest, tag, "ssend", sync=True).wait(timeout=timeout)

    def bsend(self, obj: Any, dest: int, tag: int = 0, *, timeout: float | None = None) -> None:
        """Buffered-mode :meth:`send`: the same (the transport's ring is the buffer; a
        message larger than it waits for the receiver).

        Raises:
            InvalidRankError, InvalidTagError, SerializationError: as :meth:`send`.
        """
        self._isend_obj(obj, dest, tag, "bsend", sync=False).wait(timeout=timeout)

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

    @records("p2p", "recv")
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
        t = self._t
        rec = t._rec
        t0 = clock() if rec is not None else 0
        try:
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
            wsrc = self._world_source(source)
            if status is None:
                for _ in range(SPIN_INLINE):
                    got = t.recv_inline(self._ctx, wsrc, tag)
                    if got is not None:
                        return frames_mod.loads_message([memoryview(got[0])], "recv")
            r = t.irecv(self._ctx, wsrc, tag, None)
            if not r.done:
                try:
                    t.wait_op(
                        r,
                        timeout,
                        f"recv from {'any rank' if source == ANY_SOURCE else f'rank {source}'} "
                        f"({'any tag' if tag == ANY_TAG else f'tag {tag}'}) on {self.name}",
                    )
                except BaseException:  # a retry must not lose its message to this receive
                    t.cancel(r)
                    raise
            if r.error is not None:
                raise r.error
            if status is not None:
                self._fill(r, status)
            return frames_mod.loads_message(r.frames, "recv")
        except BaseException as exc:
            if rec is not None:
                note_error(rec, exc)
            raise
        finally:
            if rec is not None:
                rec.extend((P2P, tid(), t0, clock(), "recv", self._ctx))

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
        obj = self._irecv_obj(source, recvtag, "sendrecv")._wait_blocking(status, timeout)
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
        comm: Any = self  # this mixin is always a Comm
        return Message._of(comm, self._t.claim(msg))

    Mprobe = mprobe
    Improbe = improbe

    # ---- point-to-point: buffers ----------------------------------------------------------------
    def _isend_buf(self, buf: Any, dest: int, tag: int, op: str, *, sync: bool) -> Request:
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
        return self._isend_buf(buf, dest, tag, "Isend", sync=False)

    def Issend(self, buf: Any, dest: int, tag: int = 0) -> Request:
        """Start a synchronous send of ``buf``: the request completes only once a receive on
        ``dest`` has matched the message.

        Raises:
            InvalidRankError, InvalidTagError, InvalidBufferError: as :meth:`Isend`.
        """
        return self._isend_buf(buf, dest, tag, "Issend", sync=True)

    def Ibsend(self, buf: Any, dest: int, tag: int = 0) -> Request:
        """Buffered-mode :meth:`Isend`: the same (the transport's ring is the buffer; a
        message larger than it waits for the receiver).

        Raises:
            InvalidRankError, InvalidTagError, InvalidBufferError: as :meth:`Isend`.
        """
        return self._isend_buf(buf, dest, tag, "Ibsend", sync=False)

    def Irsend(self, buf: Any, dest: int, tag: int = 0) -> Request:
        """Ready-mode :meth:`Isend` (the receive is already posted): the same as :meth:`Isend`.

        Raises:
            InvalidRankError, InvalidTagError, InvalidBufferError: as :meth:`Isend`.
        """
        return self._isend_buf(buf, dest, tag, "Irsend", sync=False)

    def Send(self, buf: Any, dest: int, tag: int = 0, *, timeout: float | None = None) -> None:
        """Send the bytes of ``buf`` (a NumPy array or buffer-protocol object) to ``dest``.

        Raises:
            InvalidRankError, InvalidTagError: bad ``dest`` or ``tag``.
            InvalidBufferError: ``buf`` is not a contiguous buffer.
        """
        self._isend_buf(buf, dest, tag, "Send", sync=False).wait(timeout=timeout)

    def Ssend(self, buf: Any, dest: int, tag: int = 0, *, timeout: float | None = None) -> None:
        """Synchronous :meth:`Send`: returns once a receive on ``dest`` has matched it.

        Raises:
            InvalidRankError, InvalidTagError, InvalidBufferError: as :meth:`Send`.
            TimeoutError: no receive matched within ``timeout`` seconds.
        """
        self._isend_buf(buf, dest, tag, "Ssend", sync=True).wait(timeout=timeout)

    def Bsend(self, buf: Any, dest: int, tag: int = 0, *, timeout: float | None = None) -> None:
        """Buffered-mode :meth:`Send`: the same (the transport's ring is the buffer; a
        message larger than it waits for the receiver).

        Raises:
            InvalidRankError, InvalidTagError, InvalidBufferError: as :meth:`Send`.
        """
        self._isend_buf(buf, dest, tag, "Bsend", sync=False).wait(timeout=timeout)

    def Rsend(self, buf: Any, dest: int, tag: int = 0, *, timeout: float | None = None) -> None:
        """Ready-mode :meth:`Send`: the same as :meth:`Send`.

        Raises:
            InvalidRankError, InvalidTagError, InvalidBufferError: as :meth:`Send`.
        """
        self._isend_buf(buf, dest, tag, "Rsend", sync=False).wait(timeout=timeout)

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

    @records("p2p", "Recv")
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
        t = self._t
        rec = t._rec
        t0 = clock() if rec is not None else 0
        try:
            if (
                status is None
                and type(source) is int
                and 0 <= source < self.size
                and type(tag) is int
                and not self._freed
            ):
                view = byte_view(buf, "Recv buf", writable=True)
                for _ in range(SPIN_INLINE):
                    if t.recv_inline(self._ctx, self._group[source], tag, view) is not None:
                        return
            self.Irecv(buf, source, tag)._wait_blocking(status, timeout)
        except BaseException as exc:
            if rec is not None:
                note_error(rec, exc)
            raise
        finally:
            if rec is not None:
                rec.extend((P2P, tid(), t0, clock(), "Recv", self._ctx))

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
        rreq._wait_blocking(status, timeout)
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
        rreq._wait_blocking(status, timeout)
        sreq.wait(timeout=timeout)

    # ---- persistent requests ----------------------------------------------------------------
    def Send_init(self, buf: Any, dest: int, tag: int = 0) -> Prequest:
        """A persistent :meth:`Isend` of ``buf``: each ``Start()`` sends its current contents.

        Raises:
            InvalidRankError, InvalidTagError, InvalidBufferError: as :meth:`Isend`.
        """
        return self._persistent(buf, dest, tag, "Send_init", sync=False)

    def Ssend_init(self, buf: Any, dest: int, tag: int = 0) -> Prequest:
        """A persistent :meth:`Issend`.

        Raises:
            InvalidRankError, InvalidTagError, InvalidBufferError: as :meth:`Isend`.
        """
        return self._persistent(buf, dest, tag, "Ssend_init", sync=True)

    def Bsend_init(self, buf: Any, dest: int, tag: int = 0) -> Prequest:
        """A persistent :meth:`Ibsend`.

        Raises:
            InvalidRankError, InvalidTagError, InvalidBufferError: as :meth:`Isend`.
        """
        return self._persistent(buf, dest, tag, "Bsend_init", sync=False)

    def Rsend_init(self, buf: Any, dest: int, tag: int = 0) -> Prequest:
        """A persistent :meth:`Irsend`.

        Raises:
            InvalidRankError, InvalidTagError, InvalidBufferError: as :meth:`Isend`.
        """
        return self._persistent(buf, dest, tag, "Rsend_init", sync=False)

    def _persistent(self, buf: Any, dest: int, tag: int, op: str, *, sync: bool) -> Prequest:
        self._live(op)
        dest = self._peer(dest, "dest", op)
        tag = self._tag(tag, "tag", op)
        if dest != PROC_NULL:
            byte_view(buf, f"{op} buf")
        return Prequest(lambda: self._isend_buf(buf, dest, tag, op, sync=sync))

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
