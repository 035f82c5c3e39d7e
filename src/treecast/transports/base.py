"""The transport interface and the message-matching logic every transport shares.

A transport moves *messages* between world ranks. A message is a list of frames (byte
buffers) addressed by ``(context, tag)``. Receives are matched MPI-style: the first
posted receive whose context is equal and whose source and tag match (or are wildcards)
takes the message; messages between one pair with one context are matched in the order
they were sent; a message that arrives before any matching receive is kept in the
unexpected queue.

:class:`Transport` is an abstract base. A concrete transport provides byte movement
(:meth:`Transport._start_send` queues frames, :meth:`Transport._poll` moves bytes and calls
:meth:`Transport._on_header` / :meth:`Transport._on_small` / :meth:`Transport._on_complete`
for incoming messages), liveness (:meth:`Transport.peer_state`: is a rank running, finished
or dead) and :meth:`Transport.close`, and declares its :attr:`Transport.capabilities`
(names from :mod:`.capabilities`). The launcher's half of a transport (create what the
job's ranks attach to, mark a failed rank dead, remove everything at the end) is a
:class:`TransportJob`.

Synchronous sends (``isend(..., sync=True)``, MPI's ``Issend``) complete only once a
receive has matched the message. The matching happens here, in the transport, whenever the
receiver makes progress (a posted receive claims the header as it arrives, or ``irecv``
takes the message from the unexpected queue), never in the receiver's user code: the
receiver then sends a 0-byte acknowledgement on the internal context :data:`ACK_CTX`, with
the send's id as tag, and the sender completes the send when it holds the acknowledgement
and has written every byte. A synchronous message carries its id in the header's
signature field (point-to-point messages have no collective signature) and a flag that
transports must pass to :meth:`Transport._on_header`. A synchronous send to oneself
completes when it is matched, with no message at all.
"""

from __future__ import annotations

import enum
import os
import sys
import time
from abc import ABC, abstractmethod
from collections import deque
from collections.abc import Callable, Sequence
from typing import Any, NamedTuple

from ..errors import (
    CommunicatorClosedError,
    DeadlockError,
    InvalidArgumentError,
    MissingCapabilityError,
    ProcessFailedError,
    TimeoutError,
    TruncationError,
)
from ..message.pool import alloc_frame
from ..tracing.events import (
    ARRIVE,
    DELIVER,
    LARGE_BYTES,
    RECV,
    SEND,
    WAIT,
    WAIT_SLICE_NS,
    clock,
    get_ident,
)
from .capabilities import NODE_MEMORY
from .deadlock import Watch, settle_from_env
from .node_memory import NodeMemory
from .wait import Backoff, oversubscribed

ANY_SOURCE = -1
ANY_TAG = -1
ACK_CTX = (1 << 64) - 1
"""Internal context of synchronous-send acknowledgements; communicators' contexts are below
2**63, so no receive ever matches it."""
SYNC_ID_MASK = (1 << 32) - 1


class Call(NamedTuple):
    """One collective call, as every message of it and every report names it."""

    op: str
    """The call (``"Bcast"``, ``"igather"``): with ``root``, the signature of its messages."""
    comm: str
    """The communicator's name."""
    seq: int
    """The call's number on the communicator: the tag of its messages."""
    root: int
    """Its root, or -1."""


Activity = str | Call
"""What a blocked call is doing: a name (point-to-point), or a collective :class:`Call`."""


def describe(what: Activity | None) -> str:
    """Human-readable form of an :data:`Activity`."""
    if what is None:
        return "no treecast call (running its own code, or finished)"
    if isinstance(what, str):
        return what
    name, comm, seq, root = what
    where = f" root {root}" if root >= 0 else ""
    return f"{name} #{seq} on {comm}{where}"


def default_timeout_from_env() -> float | None:
    """Seconds from ``TREECAST_TIMEOUT`` (unset, empty or 0: no timeout).

    Raises:
        InvalidArgumentError: the variable is not a non-negative number.
    """
    raw = os.environ.get("TREECAST_TIMEOUT", "").strip()
    if not raw:
        return None
    try:
        value = float(raw)
    except ValueError:
        value = -1.0
    if not value >= 0:
        raise InvalidArgumentError(f"TREECAST_TIMEOUT={raw!r} must be a number of seconds >= 0")
    return value or None


Frames = list[memoryview]
_EMPTY = memoryview(b"")


def as_bytes_view(frame: memoryview) -> memoryview:
    """The same memory as a flat unsigned-byte view (slices then count bytes)."""
    if frame.format == "B" and frame.ndim == 1:
        return frame
    return frame.cast("B")


class SendOp:
    """A send in flight: frames to push to ``dest``; ``done`` once all bytes are out.

    A synchronous send (``sync``) is ``done`` once all bytes are out (``flushed``) *and* a
    receive has matched it (``acked``).
    """

    __slots__ = (
        "acked",
        "ctx",
        "dest",
        "done",
        "error",
        "flushed",
        "frames",
        "nbytes",
        "offset",
        "piece",
        "pieces",
        "sig",
        "sync",
        "tag",
    )

    def __init__(
        self,
        dest: int,
        ctx: int,
        tag: int,
        frames: Sequence[memoryview],
        sig: int = 0,
        sync: bool = False,
    ) -> None:
        self.sig = sig
        self.dest = dest
        self.ctx = ctx
        self.tag = tag
        self.frames = frames
        self.nbytes = sum(f.nbytes for f in frames)
        self.done = False
        self.error: BaseException | None = None
        self.pieces: list[memoryview] = []
        self.piece = 0
        self.offset = 0
        self.sync = sync
        self.acked = False
        self.flushed = False

    def sent(self) -> None:
        """Every byte has been written: a plain send is done, a synchronous one once acked."""
        if self.sync:
            self.flushed = True
            self.done = self.acked
        else:
            self.done = True

    def matched(self) -> None:
        """A receive has matched this synchronous send."""
        self.acked = True
        self.done = self.flushed


class RecvOp:
    """A posted receive.

    ``buffer`` is None for an object receive (frames are allocated to the sizes announced
    by the sender) or a writable byte view for a buffer receive (frames land back to back
    in it; a larger message raises :class:`TruncationError` and writes nothing past it).
    """

    __slots__ = (
        "buffer",
        "ctx",
        "done",
        "error",
        "frames",
        "nbytes",
        "sig",
        "source",
        "src",
        "tag",
        "want_tag",
    )

    def __init__(self, ctx: int, source: int, tag: int, buffer: memoryview | None) -> None:
        self.sig = 0
        self.ctx = ctx
        self.source = source
        self.want_tag = tag
        self.buffer = buffer
        self.done = False
        self.error: BaseException | None = None
        self.frames: Frames = []
        self.src = ANY_SOURCE
        self.tag = ANY_TAG
        self.nbytes = 0

    def matches(self, ctx: int, src: int, tag: int) -> bool:
        return (
            ctx == self.ctx
            and (self.source == ANY_SOURCE or self.source == src)
            and (self.want_tag == ANY_TAG or self.want_tag == tag)
        )


class Incoming:
    """A message being received (or fully received but not yet matched).

    ``ack`` is set for a synchronous message until a receive matches it: the sender's id of
    the send (a message from a peer) or the :class:`SendOp` itself (a message to oneself).
    """

    __slots__ = (
        "ack",
        "claimed",
        "complete",
        "ctx",
        "direct",
        "frames",
        "lengths",
        "nbytes",
        "sig",
        "src",
        "tag",
    )

    def __init__(self, src: int, ctx: int, tag: int, lengths: Sequence[int], sig: int = 0) -> None:
        self.sig = sig
        self.src = src
        self.ctx = ctx
        self.tag = tag
        self.lengths = lengths
        self.nbytes = sum(lengths)
        self.frames: Frames = []
        self.complete = False
        self.claimed: RecvOp | None = None
        self.direct = False  # frames are the claiming receive's own buffer views
        self.ack: int | SendOp | None = None


def _targets_for(recv: RecvOp, msg: Incoming) -> Frames:
    """Frames for ``msg`` inside ``recv``'s buffer, or fresh frames for an object receive."""
    if recv.buffer is None:
        return [alloc_frame(n) for n in msg.lengths]
    views: Frames = []
    pos = 0
    for n in msg.lengths:
        views.append(recv.buffer[pos : pos + n])
        pos += n
    return views


class PeerState(enum.Enum):
    """What a transport knows of a rank (:meth:`Transport.peer_state`)."""

    RUNNING = "running"
    """Started, or not yet started; it may still send and receive."""
    FINISHED = "finished"
    """It closed its transport normally: it sends nothing more, what it sent stays readable."""
    DEAD = "dead"
    """It failed (an error exit, a signal, an injected fault): nothing more will come from it."""


class TransportJob(ABC):
    """The launcher's half of a transport: what one job needs outside its ranks.

    The launcher knows nothing of how a transport lays out its shared state; it calls
    :meth:`start` before it starts the ranks, :meth:`mark_dead` when one fails,
    :meth:`mark_exited` when one exits with status 0 and :meth:`unlink` when the job ends,
    however it ends.
    """

    @abstractmethod
    def start(self, nprocs: int, ring_bytes: int | None = None) -> dict[str, str]:
        """Create what the ranks of a job of ``nprocs`` attach to; return the variables that
        every rank's environment needs to find it.

        Raises:
            ValueError: ``nprocs`` or ``ring_bytes`` is out of range.
            OSError: the system refused (nothing was left behind).
        """

    @abstractmethod
    def mark_dead(self, rank: int) -> None:
        """Tell the ranks that ``rank`` failed: their waits on it raise instead of hanging."""

    def mark_exited(self, rank: int) -> None:  # noqa: B027 - optional hook
        """Tell the ranks that ``rank`` exited with status 0 (it may have ended without
        finalising): nobody waits for it as for a running rank."""

    @abstractmethod
    def unlink(self) -> list[str]:
        """Remove everything the job made (also what its ranks made); return what was removed."""

    @abstractmethod
    def reaper_args(self) -> list[str] | None:
        """Arguments of :mod:`treecast.launcher.reaper` (directory, name prefix) that remove
        the job's files if the launcher is killed, or None if nothing would be left behind."""


class Transport(ABC):
    """Matching, unexpected queue and waiting, shared by every transport.

    Attributes:
        rank: this process's world rank.
        size: number of world ranks.
        capabilities: names from :mod:`.capabilities` that this transport offers.
    """

    capabilities: frozenset[str] = frozenset()
    node_ids: tuple[int, ...] | None = None
    """The node of each world rank (ranks of one node share memory), or None: every rank
    is on one node. Capabilities in :data:`~.capabilities.NODE_LOCAL` hold only among the
    ranks of one node; ``Split_type(COMM_TYPE_SHARED)`` splits by it."""

    def __init__(self, rank: int, size: int) -> None:
        self.rank = rank
        self.size = size
        self._posted: list[RecvOp] = []
        # a deque: a rank that floods us fills it, and receives take from its front
        self._unexpected: deque[Incoming] = deque()
        self._closed = False
        self._oversubscribed = oversubscribed(size)
        self.default_timeout = default_timeout_from_env()
        self.liveness_check: Callable[[], None] | None = None
        self._background: list[Callable[[], bool]] = []
        self._sync_seq = 0
        self._sync_pending: dict[tuple[int, int], SendOp] = {}
        self.deadlock_settle = settle_from_env()
        self._watch: Watch | None = None
        """Deadlock detection (:mod:`.deadlock`), where the transport can see every rank."""
        self.context_names: dict[int, str] = {}
        """Name of the communicator of each point-to-point context (for reports)."""
        self.awaited_at_exit: tuple[int, ...] = ()
        """Board slots of the ranks that waited to receive from this one when it finished
        (:meth:`finalize`): their calls cannot complete, and they report it."""
        self.waits_failed = 0
        """Waits of this rank that raised (a timeout, a dead peer, a deadlock): after one,
        messages may be left unreceived without the ranks having disagreed."""
        self._rec: Any = None
        """Tracing's events list (:mod:`treecast.tracing.events`), or None: not traced."""
        self._tracer: Any = None
        """Tracing's recorder, once attached (large messages, the limit)."""

    # ---- subclass interface -------------------------------------------------------------
    @abstractmethod
    def _start_send(self, op: SendOp) -> None:
        """Queue ``op``'s frames for ``op.dest`` (never this rank) and move what can move now.

        Raises:
            CommunicatorClosedError: the transport is closed.
        """

    @abstractmethod
    def _poll(self) -> bool:
        """Move bytes both ways; return True if anything moved."""

    def _receiving(self) -> bool:
        """True while a message is partly received (its sender is in the middle of it)."""
        return False

    def _busy(self) -> bool:
        """True while transfers are in flight that advance only when this process polls
        (a wait then yields the CPU instead of sleeping); False by default."""
        return False

    @abstractmethod
    def peer_state(self, rank: int) -> PeerState:
        """What is known of world rank ``rank`` (this rank included); a transport without
        failure detection never answers :attr:`PeerState.DEAD`."""

    @abstractmethod
    def close(self) -> None:
        """Release the transport's resources; peers then see this rank FINISHED and every
        later call that would move bytes raises :class:`CommunicatorClosedError`.

        A subclass calls this from its own close, which also releases its resources."""
        self._closed = True
        # an instance attribute shadows the method: the open path's _poll stays as fast as
        # it was, and a wait on a closed transport raises instead of polling freed memory
        self._poll = self._poll_closed  # type: ignore[method-assign]

    def finalize(self) -> list[Incoming]:
        """End of the process (``atexit``): say this rank has finished, take what the other
        ranks still send until each has finished or died (as ``MPI_Finalize`` waits for
        the others), close, and return the messages that no receive ever took. Nothing
        is waited for when the process is exiting on an uncaught exception.
        :attr:`awaited_at_exit` says which ranks were found waiting for this one."""
        if not self._closed:
            if not exiting_on_error():
                self._announce_finished()
                self.awaited_at_exit = _linger(self)
            self.close()
        return list(self._unexpected)

    def _announce_finished(self) -> None:  # noqa: B027 - optional hook
        """Push out what is still queued, then let peers see this rank FINISHED while its
        polls still take what they send (see :meth:`finalize`)."""

    def _poll_closed(self) -> bool:
        raise CommunicatorClosedError(
            f"rank {self.rank}: the {type(self).__name__} is closed; nothing can move"
        )

    # ---- called by subclasses when bytes arrive -------------------------------------------
    def _on_header(
        self,
        src: int,
        ctx: int,
        tag: int,
        lengths: Sequence[int],
        sig: int = 0,
        sync: bool = False,
    ) -> tuple[Incoming, Frames]:
        """A message header arrived: match it and return where its bytes go.

        ``sync``: the message is a synchronous send whose id is ``sig``; it is acknowledged
        as soon as a receive matches it.
        """
        msg = Incoming(src, ctx, tag, lengths, sig)
        if ctx == ACK_CTX:
            self._on_ack(src, tag)
            msg.frames = [alloc_frame(n) for n in lengths]
            return msg, msg.frames
        if sync:
            msg.ack = sig
        return self._match_header(msg)

    def _match_header(self, msg: Incoming) -> tuple[Incoming, Frames]:
        """Give ``msg`` to the first posted receive it matches, else queue it as unexpected;
        return it with the frames its bytes go to."""
        ctx, src, tag = msg.ctx, msg.src, msg.tag
        if self._rec is not None:
            _arrived(self, msg)
        for i, recv in enumerate(self._posted):
            if recv.matches(ctx, src, tag):
                del self._posted[i]
                msg.claimed = recv
                if msg.ack is not None:
                    self._acknowledge(msg)
                if recv.buffer is not None and msg.nbytes > recv.buffer.nbytes:
                    msg.frames = [alloc_frame(n) for n in msg.lengths]
                else:
                    msg.frames = _targets_for(recv, msg)
                    msg.direct = True
                return msg, msg.frames
        msg.frames = [alloc_frame(n) for n in msg.lengths]
        self._unexpected.append(msg)
        return msg, msg.frames

    def _on_small(self, src: int, ctx: int, tag: int, frame: memoryview, sig: int = 0) -> None:
        """A whole one-frame message (never a synchronous one) is readable at ``frame``
        (valid only during the call)."""
        if ctx == ACK_CTX:
            self._on_ack(src, tag)
            return
        for i, recv in enumerate(self._posted):
            if recv.matches(ctx, src, tag):
                del self._posted[i]
                n = frame.nbytes
                recv.src = src
                recv.tag = tag
                recv.nbytes = n
                recv.sig = sig
                buf = recv.buffer
                if buf is None:
                    recv.frames = [memoryview(bytes(frame))]
                elif n > buf.nbytes:
                    recv.error = TruncationError(
                        f"message of {n} bytes from rank {src} (tag {tag}) does not fit "
                        f"the receive buffer of {buf.nbytes} bytes; nothing was written to it"
                    )
                else:
                    buf[:n] = frame
                    recv.frames = [buf[:n]]
                recv.done = True
                if self._rec is not None:
                    self._rec.extend((RECV, get_ident(), clock(), src, ctx, tag, n))
                return
        msg = Incoming(src, ctx, tag, (frame.nbytes,), sig)
        msg.frames = [memoryview(bytearray(frame))]
        msg.complete = True
        self._unexpected.append(msg)
        if self._rec is not None:
            _arrived(self, msg)

    def _acknowledge(self, msg: Incoming) -> None:
        """A receive has matched synchronous message ``msg``: tell its sender."""
        ack = msg.ack
        msg.ack = None
        if isinstance(ack, SendOp):
            ack.matched()
        elif ack is not None:
            self._start_send(SendOp(msg.src, ACK_CTX, ack, [_EMPTY]))

    def _on_ack(self, src: int, send_id: int) -> None:
        """Rank ``src`` has matched our synchronous send ``send_id``."""
        op = self._sync_pending.pop((src, send_id), None)
        if op is not None:
            op.matched()

    def _forget_sync_sends(self, ranks: Sequence[int]) -> None:
        """Drop the synchronous sends waiting for an acknowledgement from ``ranks``, which
        have died or finished: none can come any more (their requests stay not done)."""
        gone = set(ranks)
        if gone and self._sync_pending:
            self._sync_pending = {k: op for k, op in self._sync_pending.items() if k[0] not in gone}

    def _on_complete(self, msg: Incoming) -> None:
        msg.complete = True
        if msg.claimed is not None:
            self._deliver(msg, msg.claimed, copied=msg.direct)

    def _deliver(self, msg: Incoming, recv: RecvOp, copied: bool) -> None:
        rec = self._rec
        t0 = clock() if rec is not None else 0
        recv.src = msg.src
        recv.tag = msg.tag
        recv.nbytes = msg.nbytes
        recv.sig = msg.sig
        if recv.buffer is not None and msg.nbytes > recv.buffer.nbytes:
            recv.error = TruncationError(
                f"message of {msg.nbytes} bytes from rank {msg.src} (tag {msg.tag}) does not fit "
                f"the receive buffer of {recv.buffer.nbytes} bytes; nothing was written to it"
            )
        elif copied or recv.buffer is None:
            recv.frames = msg.frames
        else:
            targets = _targets_for(recv, msg)
            for dst, src in zip(targets, msg.frames, strict=False):
                dst[:] = src
            recv.frames = targets
        recv.done = True
        if rec is not None:
            copied = copied or recv.buffer is None
            rec.append((DELIVER, get_ident(), t0, clock(), id(msg), copied))

    def node_memory(self, what: str = "node memory") -> NodeMemory:
        """The memory that every rank of this world maps by name (see :mod:`.node_memory`).
        Transports that declare :data:`~.capabilities.NODE_MEMORY` override this.

        Args:
            what: the operation that needs it, for the error.

        Raises:
            MissingCapabilityError: this transport lacks the ``node_memory`` capability.
        """
        raise self.missing_capability(NODE_MEMORY, what)

    def missing_capability(self, name: str, what: str) -> MissingCapabilityError:
        """The error for operation ``what``, which needs capability ``name`` that this
        transport lacks."""
        offered = ", ".join(sorted(self.capabilities)) or "none"
        return MissingCapabilityError(
            f"rank {self.rank}: {what} needs the {name!r} capability, which the "
            f"{type(self).__name__} transport does not offer (its capabilities: {offered})"
        )

    # ---- public operations ---------------------------------------------------------------
    def send_inline(self, dest: int, ctx: int, tag: int, frame: memoryview, sig: int = 0) -> bool:
        """Send a small one-frame message at once if the transport can; return True if sent.

        A fast path for latency: False means "use :meth:`isend`", never an error.
        """
        return False

    def recv_inline(
        self, ctx: int, source: int, tag: int, into: memoryview | None = None
    ) -> tuple[bytes, int, int, int] | None:
        """Take a small one-frame message from ``source`` if it is next in line and whole.

        Returns ``(payload, tag, nbytes, sig)`` (payload empty when copied ``into`` a buffer), or
        None: then use :meth:`irecv`, which also reports errors such as truncation. A fast
        path for latency.
        """
        return None

    def isend(
        self,
        dest: int,
        ctx: int,
        tag: int,
        frames: Sequence[memoryview],
        sig: int = 0,
        sync: bool = False,
    ) -> SendOp:
        """Start sending ``frames`` to world rank ``dest``; the frames must stay unchanged
        until the returned op is done.

        ``sync=True`` (point-to-point only, ``sig`` must be 0): a synchronous send, done only
        once a receive has matched it.
        """
        op = SendOp(
            dest,
            ctx,
            tag,
            frames
            if all(f.format == "B" and f.ndim == 1 for f in frames)
            else [as_bytes_view(f) for f in frames],
            sig,
            sync,
        )
        rec = self._rec
        if rec is not None:  # before: a message to this rank itself is delivered inside
            rec.extend((SEND, get_ident(), clock(), dest, ctx, tag, op.nbytes))
        if dest == self.rank:
            self._send_to_self(op)
        else:
            if sync:
                self._sync_seq = send_id = (self._sync_seq + 1) & SYNC_ID_MASK
                op.sig = send_id
                self._sync_pending[(dest, send_id)] = op
            self._start_send(op)
        if rec is not None:
            _sent(self, op)
        return op

    def _send_to_self(self, op: SendOp) -> None:
        lengths = [f.nbytes for f in op.frames]
        msg = Incoming(self.rank, op.ctx, op.tag, lengths, op.sig)
        if op.sync:
            msg.ack = op
        # matched (and acknowledged) like a message from a peer, then copied at once
        msg, targets = self._match_header(msg)
        for dst, src in zip(targets, op.frames, strict=False):
            dst[:] = src
        self._on_complete(msg)
        op.sent()

    def irecv(self, ctx: int, source: int, tag: int, buffer: memoryview | None = None) -> RecvOp:
        """Post a receive; it completes when a matching message has fully arrived."""
        recv = RecvOp(ctx, source, tag, buffer)
        for i, msg in enumerate(self._unexpected):
            if recv.matches(msg.ctx, msg.src, msg.tag):
                del self._unexpected[i]
                if msg.ack is not None:
                    self._acknowledge(msg)
                if msg.complete:
                    self._deliver(msg, recv, copied=False)
                else:
                    msg.claimed = recv  # its bytes land in private frames; copied at the end
                return recv
        self._posted.append(recv)
        return recv

    def claim(self, msg: Incoming, buffer: memoryview | None = None) -> RecvOp:
        """Receive the unexpected message ``msg`` (found by :meth:`iprobe`) and no other:
        MPI's matched probe. No later receive can match it; a synchronous send is
        acknowledged now. The returned receive completes when its bytes have arrived; its
        ``frames`` then hold them (in ``buffer`` if given, as :meth:`irecv`'s).

        Raises:
            ValueError: ``msg`` is not in the unexpected queue (already received).
        """
        self._unexpected.remove(msg)
        if msg.ack is not None:
            self._acknowledge(msg)
        recv = RecvOp(msg.ctx, msg.src, msg.tag, buffer)
        if msg.complete:
            self._deliver(msg, recv, copied=False)
        else:
            msg.claimed = recv
        return recv

    def cancel(self, recv: RecvOp) -> bool:
        """Withdraw a posted receive that has not matched yet; return True if withdrawn."""
        if recv in self._posted:
            self._posted.remove(recv)
            return True
        return False

    def take_unexpected(self, ctx: int) -> list[Incoming]:
        """Remove and return the whole messages of context ``ctx`` that no receive took
        (after one poll, so that what has arrived counts): a freed communicator's."""
        if not self._closed:
            self._poll()
        taken = [m for m in self._unexpected if m.ctx == ctx and m.complete]
        if taken:
            self._unexpected = deque(m for m in self._unexpected if m.ctx != ctx or not m.complete)
        return taken

    def iprobe(self, ctx: int, source: int, tag: int) -> Incoming | None:
        """Return the first unexpected message that matches, without receiving it."""
        self._poll()
        return self.first_unexpected(ctx, source, tag)

    def arrived(self) -> Sequence[Incoming]:
        """The messages that no receive has taken, in the order they came (maybe in part):
        to read only (take one with :meth:`irecv` or :meth:`claim`)."""
        return self._unexpected

    def first_unexpected(self, ctx: int, source: int, tag: int) -> Incoming | None:
        """:meth:`iprobe` without polling: what has already arrived (maybe in part)."""
        probe = RecvOp(ctx, source, tag, None)
        for msg in self._unexpected:
            if probe.matches(msg.ctx, msg.src, msg.tag):
                return msg
        return None

    def check_peers(self) -> None:
        """Raise if a peer is known dead (called while a blocked call sleeps).

        Raises:
            ProcessFailedError: naming the dead world ranks.
        """
        dead = self.dead_peers()
        if dead:
            names = ", ".join(map(str, dead))
            raise ProcessFailedError(
                f"rank {self.rank}: rank(s) {names} died; the operation cannot complete", dead
            )

    def peers_finished(self) -> bool:
        """True once every other rank has finished: a blocked wait then drains what they
        sent and raises if it is still not complete."""
        state = self.peer_state
        return self.size > 1 and all(
            state(r) is PeerState.FINISHED for r in range(self.size) if r != self.rank
        )

    def dead_peers(self) -> tuple[int, ...]:
        """World ranks known to have died."""
        state = self.peer_state
        return tuple(r for r in range(self.size) if state(r) is PeerState.DEAD)

    def peer_finished(self, rank: int) -> bool:
        """True once another rank ``rank`` has finished: an operation that waits for it
        alone then drains what it sent and raises if still not done."""
        return rank != self.rank and self.peer_state(rank) is PeerState.FINISHED

    def add_background(self, advance: Callable[[], bool]) -> None:
        """Call ``advance()`` whenever this rank makes progress, until it returns True
        (pending non-blocking collectives, so they move while the rank blocks elsewhere)."""
        self._background.append(advance)

    def _run_background(self) -> None:
        # an advance that starts another collective appends to the list being walked
        self._background = [a for a in self._background if not a()]

    def progress(self) -> bool:
        """Advance every send and receive in flight; return True if anything moved."""
        moved = self._poll()
        if self._background:
            self._run_background()
        return moved

    def wait(
        self,
        done: Callable[[], bool],
        timeout: float | None = None,
        what: Activity = "operation",
        peer: int | None = None,
        peer_only: bool = False,
        sending: bool = False,
    ) -> None:
        """Make progress until ``done()`` is true.

        Args:
            done: the completion test.
            timeout: seconds; None uses :attr:`default_timeout` (``TREECAST_TIMEOUT``).
            what: the operation, for reports: a string, or ``(name, comm, seq, root)``.
            peer: the one rank the operation waits for (a receive from a given source, a
                send), if there is one: once it has finished, nothing more can come.
            peer_only: only ``peer``'s death concerns the operation (point-to-point: the
                others may go on without a dead rank); otherwise any dead rank raises.
            sending: the operation sends to ``peer`` (a rank that has finished still
                takes it) rather than receiving from it.

        Raises:
            TimeoutError: ``timeout`` seconds passed first; the message is a hang report.
            DeadlockError: every running rank is blocked and nothing moves (see
                :mod:`.deadlock`); the message is a hang report.
            ProcessFailedError: a peer or the launcher died, or the peer it waits for (or
                every other rank) finished without completing it; the message names the
                operation.
        """
        if done():
            return
        rec = self._rec
        t0 = clock() if rec is not None else 0
        error: BaseException | None = None
        if timeout is None:
            timeout = self.default_timeout
        backoff = Backoff(self._oversubscribed)
        deadline = None if timeout is None else time.monotonic() + timeout
        blocked: BlockedWait | None = None
        busy = self._busy
        watch = self._watch
        try:
            while True:
                moved = self._poll()
                if self._background:
                    self._run_background()
                if done():
                    return
                if moved:
                    backoff = Backoff(self._oversubscribed)
                    if blocked is not None:
                        # a finished peer that still takes or gives bytes is not gone yet
                        blocked.peer_gone_at = 0.0
                        if watch is not None:
                            watch.moved()
                    continue
                if backoff.pause(busy):
                    if blocked is None:
                        blocked = BlockedWait(done, timeout, deadline, what, peer, peer_only)
                        self.publish_activity(what)
                        if watch is not None:
                            watch.block(peer, deadline is not None, sending)
                    if blocked.check(self, watch):
                        return
        except BaseException as exc:
            self.waits_failed += 1
            error = exc
            raise
        finally:
            if blocked is not None:
                self.publish_activity(None)
                if watch is not None:
                    watch.unblock(deadline is not None)
            if rec is not None:
                t1 = clock()
                if t1 - t0 >= WAIT_SLICE_NS:  # see tracing.events: WAIT
                    err = None if error is None else type(error).__name__
                    rec.append((WAIT, get_ident(), t0, t1, what, peer, err))

    def _drained(self, done: Callable[[], bool]) -> bool:
        """Move everything that can still move; return ``done()``."""
        while self._poll():
            pass
        if self._background:
            self._run_background()
        return done()

    def _check_peers_for(
        self, what: Activity, peer: int | None, peer_only: bool, done: Callable[[], bool]
    ) -> bool:
        """Raise if a rank the operation depends on has died, or the launcher has gone
        (see :meth:`wait`); return True if what a dead rank sent before it died completes
        the operation after all."""
        try:
            self.check_peers()
        except ProcessFailedError as exc:
            if not peer_only or peer in exc.ranks:
                # it may have sent what we wait for after our last poll, then died
                if self._drained(done):
                    return True
                self._forget_sync_sends(exc.ranks)
                raise ProcessFailedError(f"{exc} (in {describe(what)})", exc.ranks) from None
        try:
            if self.liveness_check is not None:
                self.liveness_check()
        except ProcessFailedError as exc:
            raise ProcessFailedError(f"{exc} (in {describe(what)})", exc.ranks) from None
        return False

    def publish_activity(self, what: Activity | None) -> None:  # noqa: B027 - optional hook
        """Record what this rank is blocked in (None: nothing), where peers can read it;
        a transport without such a place records nothing."""

    def hang_report(self, what: Activity) -> str:
        """Lines describing what every rank is doing, for a timeout message."""
        return f"  rank {self.rank}: in {describe(what)}"

    def wait_op(
        self, op: SendOp | RecvOp, timeout: float | None = None, what: Activity = "operation"
    ) -> None:
        """Make progress until ``op`` is done (the common case of :meth:`wait`, without a closure).

        Raises:
            TimeoutError, ProcessFailedError: as :meth:`wait`.
        """
        poll = self._poll
        for _ in range(
            4 if self._oversubscribed else 64
        ):  # the first polls are the hot path of a ping-pong
            if op.done:
                return
            poll()
        sending, peer = (
            (True, op.dest)
            if isinstance(op, SendOp)
            else (False, op.source if op.source >= 0 else None)
        )
        # point-to-point contexts are even (a communicator's collectives use ctx + 1): a
        # dead third rank does not stop a send or receive between live ones
        p2p = peer is not None and op.ctx % 2 == 0
        self.wait(lambda: op.done, timeout, what, peer, p2p, sending)

    def waitall(
        self, ops: Sequence[Any], timeout: float | None = None, what: Activity = "operation"
    ) -> None:
        """Wait until every op (SendOp or RecvOp) is done."""
        self.wait(lambda: all(op.done for op in ops), timeout, what)


def _arrived(t: Transport, msg: Incoming) -> None:
    """Tracing: ``msg`` has arrived at ``t`` and waits for its bytes or its receive; a
    large one still arriving is watched (its copies are shown)."""
    t._rec.append((ARRIVE, id(msg), msg.src, msg.ctx, msg.tag, msg.nbytes))
    if msg.nbytes >= LARGE_BYTES and not msg.complete:
        t._tracer.watch(msg)
    t._tracer.check()


def _sent(t: Transport, op: SendOp) -> None:
    """Tracing: ``t`` has started ``op``; a large one still in flight is watched."""
    if op.nbytes >= LARGE_BYTES and not op.done:
        t._tracer.watch(op)
    t._tracer.check()


LINGER_AWAITED_BEATS = 2
"""A finished rank stops lingering once a rank that receives from it has polled this many
times more (its board beat) and found nothing (its gen unchanged): that wait can never
complete, what this rank sent is all taken, and exiting now lets the launcher see this
rank's own exit status first."""


def _deadlock(t: Transport, what: Activity) -> DeadlockError:
    """The error of a wait of ``t`` found deadlocked, with the hang report."""
    settle = t._watch.settle if t._watch is not None else 0.0
    return DeadlockError(
        f"rank {t.rank}: deadlock in {describe(what)}: every running rank is blocked "
        f"in a treecast call and nothing has moved for {settle:g} s, so none can "
        f"complete (found without a timeout; TREECAST_DEADLOCK_SECONDS=0 turns this "
        f"check off)\n" + t.hang_report(what)
    )


def _reported(t: Transport, what: Activity) -> DeadlockError:
    """The deadlock error of a condemned wait, its report written while the other ranks of
    the deadlock are still in their calls (:meth:`.Watch.reported`)."""
    error = _deadlock(t, what)
    if t._watch is not None:
        t._watch.reported()
    return error


def _linger(t: Transport) -> tuple[int, ...]:
    """Take incoming messages until no other rank runs (or the launcher has gone), or until
    another rank waits for this one (its wait can never complete: this rank has finished,
    with what it sent already taken): the end of :meth:`Transport.finalize`. Returns the
    board slots of the ranks found waiting, if that is why it stopped."""
    others = [r for r in range(t.size) if r != t.rank]
    pause = 1e-4
    awaited: tuple[tuple[int, int, int], ...] = ()
    while True:
        others = [r for r in others if t.peer_state(r) is PeerState.RUNNING]
        if not others:  # what they sent before they finished is all there now
            while t._poll():
                pass
            return ()
        if t._poll():  # the waiting ranks' two polls count from the last bytes taken
            pause, awaited = 1e-4, ()
            continue
        if t._watch is not None:
            waits = t._watch.awaiting(t.rank)
            if [w[:2] for w in waits] != [w[:2] for w in awaited]:
                awaited = waits
            elif (
                waits
                and not t._receiving()
                and not t._watch.sending_to(t.rank)
                and all(
                    now[2] - then[2] >= LINGER_AWAITED_BEATS
                    for now, then in zip(waits, awaited, strict=True)
                )
            ):
                while t._poll():
                    pass
                return tuple(slot for slot, _, _ in waits)
        try:
            if t.liveness_check is not None:
                t.liveness_check()
        except ProcessFailedError:
            return ()
        time.sleep(pause)
        pause = min(pause * 2, LINGER_SLEEP)


class BlockedWait:
    """A wait that found nothing to do: what it waits for, since when its peer is gone,
    and the checks made while it sleeps (:meth:`check`). :meth:`Transport.wait` makes one
    when it first sleeps; a wait driven from elsewhere (the asyncio driver of
    :mod:`treecast.aio`) makes one per operation and calls :meth:`check` between polls.

    Args:
        done: the completion test (makes no progress).
        timeout: the seconds it was given (for the message), or None.
        deadline: ``time.monotonic()`` value at which it times out, or None.
        what: the operation, for reports.
        peer: the one rank it waits for, if there is one.
        peer_only: only ``peer``'s death concerns it (point-to-point).
    """

    __slots__ = (
        "all_gone",
        "deadline",
        "done",
        "peer",
        "peer_gone_at",
        "peer_only",
        "timeout",
        "what",
    )

    def __init__(
        self,
        done: Callable[[], bool],
        timeout: float | None,
        deadline: float | None,
        what: Activity,
        peer: int | None,
        peer_only: bool,
    ) -> None:
        self.done, self.timeout, self.deadline, self.what = done, timeout, deadline, what
        self.peer, self.peer_only = peer, peer_only
        self.peer_gone_at = 0.0
        """When its peer (or the last other rank) was first seen finished; 0 while bytes
        move (a finished peer that still takes or gives bytes is not gone yet)."""
        self.all_gone = False

    def check(self, t: Transport, watch: Watch | None) -> bool:
        """The checks of a wait that has nothing to do (off the hot path), made once: True
        if it is done after all. ``watch``: the deadlock board of a wait that declared itself
        blocked on it (None: no deadlock checks).

        Raises:
            TimeoutError, DeadlockError, ProcessFailedError: as :meth:`Transport.wait`.
        """
        if watch is not None:
            if watch.condemned():
                raise _reported(t, self.what)
            watch.beat()
        if self.deadline is not None and time.monotonic() > self.deadline:
            raise TimeoutError(
                f"rank {t.rank}: {describe(self.what)} did not complete within {self.timeout:g} s\n"
                + t.hang_report(self.what)
            )
        peer, done = self.peer, self.done
        gone = t.peers_finished()
        if gone or (peer is not None and t.peer_finished(peer)):
            # a rank that failed also closes its transport on the way out: leave its
            # launcher time to mark it dead (check_peers then names the death, and the
            # launcher the root cause) before saying that it finished
            now = time.monotonic()
            if gone and not self.all_gone:  # the last of them has just gone: it may be dying
                self.all_gone, self.peer_gone_at = True, now
            self.peer_gone_at = self.peer_gone_at or now
            if now - self.peer_gone_at < FINISHED_GRACE:
                return t._check_peers_for(self.what, peer, self.peer_only, done)
        if gone:
            # nothing can arrive any more: take what they sent, then decide
            if t._drained(done):
                return True
            others = tuple(r for r in range(t.size) if r != t.rank)
            t._forget_sync_sends(others)
            raise ProcessFailedError(
                f"rank {t.rank}: {describe(self.what)} cannot complete: every other "
                f"rank has finished (exited) without sending what it waits for",
                others,
            )
        if peer is not None and t.peer_finished(peer):
            if t._drained(done):  # what it sent before it finished
                return True
            t._forget_sync_sends((peer,))
            dead = t.dead_peers()  # the root cause, if the peer gave up on one
            raise ProcessFailedError(
                f"rank {t.rank}: {describe(self.what)} cannot complete: rank {peer} "
                f"has finished (exited) without completing it"
                + (f"; rank(s) {', '.join(map(str, dead))} died" if dead else ""),
                (peer, *dead),
            )
        if t._check_peers_for(self.what, peer, self.peer_only, done):
            return True
        if watch is not None and watch.deadlocked():
            if t._drained(done):
                return True
            raise _reported(t, self.what)
        return False


LINGER_SLEEP = 0.01
"""Longest sleep between polls of a rank that has finished and waits for the others: it
only collects leftovers, so it gives the CPU to ranks still at work."""


_failing = False


def note_failure() -> None:
    """Say that this process is ending on an error that it caught itself (as
    :func:`treecast.launch`'s worker does): at exit nothing is flushed or waited for."""
    global _failing
    _failing = True


def exiting_on_error() -> bool:
    """True while the process exits on an uncaught exception, or after
    :func:`note_failure` (the job is failing: nothing is flushed or waited for at exit)."""
    return (
        _failing
        or getattr(sys, "last_value", None) is not None
        or bool(getattr(sys, "last_exc", None))
    )


FINISHED_GRACE = 0.5
"""Seconds a wait for one rank that has closed its transport keeps waiting before it says
so: a rank ending with an exception closes it too, and its launcher marks it dead within a
poll (50 ms), so that the others report the death, not a normal end."""


def launcher_watch(launcher_pid: int) -> Callable[[], None]:
    """A liveness check that raises once the launcher that started us has gone."""

    def check() -> None:
        if os.getppid() != launcher_pid:
            raise ProcessFailedError(f"the launcher (pid {launcher_pid}) has exited; giving up")

    return check
