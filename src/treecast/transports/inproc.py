"""In-process transport: every rank of a world lives in this process.

:class:`InprocWorld` makes ``size`` endpoints (:class:`InprocTransport`) that deliver through
in-process queues, one per ordered pair. A send copies its frames into the receiver's queue
at once (so the sender may reuse its buffer as soon as the send is done, as MPI requires);
the receiver takes them in its own ``_poll``, through the same matching as every transport.
No thread is needed and nothing depends on timing, so a run is deterministic:

- one thread per rank: blocking calls work, since the base wait loop polls;
- one thread for all ranks: post operations on each rank, then call
  :meth:`InprocWorld.progress` (or each endpoint's ``progress``) until their ``done``
  flags are set; nothing blocks.

Faults are injected, never random: :meth:`InprocWorld.kill` (a rank dies),
:meth:`InprocWorld.drop` (a message never arrives), :meth:`InprocWorld.finish` (a rank ends
normally without closing its endpoint itself).
"""

from __future__ import annotations

import os
from collections import deque
from collections.abc import Iterator, Sequence

from ..errors import CommunicatorClosedError, InvalidArgumentError, ProcessFailedError
from ..tracing.events import RECV_INLINE, SEND_INLINE
from .base import ACK_CTX, ANY_TAG, PeerState, SendOp, Transport
from .capabilities import FAILURE_DETECTION, INLINE_SMALL, NODE_MEMORY
from .node_memory import InprocNodeMemory

INLINE_LIMIT = 4096
"""Largest message the inline fast paths take (as the shared-memory transport)."""


class _Message:
    """A whole message in a receiver's queue: its own copy of the sender's frames."""

    __slots__ = ("ctx", "frames", "sig", "sync", "tag")

    def __init__(self, ctx: int, tag: int, frames: list[memoryview], sig: int, sync: bool) -> None:
        self.ctx = ctx
        self.tag = tag
        self.frames = frames
        self.sig = sig
        self.sync = sync


class _Drop:
    """A pending fault: the next ``count`` messages from ``src`` to ``dst`` that match vanish."""

    __slots__ = ("count", "ctx", "dst", "src", "tag")

    def __init__(self, src: int, dst: int, count: int, ctx: int | None, tag: int | None) -> None:
        self.src = src
        self.dst = dst
        self.count = count
        self.ctx = ctx
        self.tag = tag

    def takes(self, src: int, dst: int, ctx: int, tag: int) -> bool:
        # acknowledgements of synchronous sends vanish only when asked for by context
        return (
            self.count > 0
            and src == self.src
            and dst == self.dst
            and (ctx == self.ctx if self.ctx is not None else ctx != ACK_CTX)
            and (self.tag is None or tag == self.tag)
        )


class InprocWorld:
    """``size`` ranks in this process, each an :class:`InprocTransport`.

    Args:
        size: number of ranks (>= 1).
        nodes: the node of each rank (ints), to run node-aware algorithms as if the ranks
            were spread over several machines; None: one node. Node memory stays mapped by
            every rank, but communicators that span nodes never use it.

    Raises:
        InvalidArgumentError: ``size`` is not an int >= 1, or ``nodes`` is not ``size``
            ints >= 0.
    """

    def __init__(self, size: int, nodes: Sequence[int] | None = None) -> None:
        if isinstance(size, bool) or not isinstance(size, int) or size < 1:
            raise InvalidArgumentError(f"InprocWorld: size must be an int >= 1, got {size!r}")
        if nodes is not None:
            nodes = tuple(nodes)
            if len(nodes) != size or not all(
                isinstance(n, int) and not isinstance(n, bool) and n >= 0 for n in nodes
            ):
                raise InvalidArgumentError(
                    f"InprocWorld: nodes must be {size} ints >= 0 (the node of each rank), "
                    f"got {nodes!r}"
                )
        self.nodes: tuple[int, ...] | None = nodes
        self.size = size
        self.states = [PeerState.RUNNING] * size
        """Each rank's liveness, as every endpoint reports it."""
        self._drops: list[_Drop] = []
        self.node_memory = InprocNodeMemory()
        """The world's node memory: segments every rank maps, named inside this process."""
        self.ranks: tuple[InprocTransport, ...] = tuple(
            InprocTransport(self, r) for r in range(size)
        )

    def __getitem__(self, rank: int) -> InprocTransport:
        return self.ranks[rank]

    def __iter__(self) -> Iterator[InprocTransport]:
        return iter(self.ranks)

    def __len__(self) -> int:
        return self.size

    def _check(self, rank: int) -> None:
        if isinstance(rank, bool) or not isinstance(rank, int) or not 0 <= rank < self.size:
            raise InvalidArgumentError(
                f"InprocWorld: rank must be an int in [0, {self.size}), got {rank!r}"
            )

    def progress(self) -> bool:
        """Poll every running rank once, in rank order; return True if anything moved.

        Ranks that died or closed are skipped, so a driver of several ranks keeps going.
        """
        moved = False
        for t in self.ranks:
            if self.states[t.rank] is PeerState.RUNNING and not t._closed:
                moved = t.progress() or moved
        return moved

    def kill(self, rank: int) -> None:
        """Make ``rank`` die: peers see it DEAD (their waits on it raise
        :class:`ProcessFailedError`), messages queued for it are dropped, and its own calls
        that move bytes raise :class:`ProcessFailedError`. What it sent before stays readable.
        With one thread per rank, call it from the dying rank's own thread (its queues are
        cleared, and only that thread takes from them).

        Raises:
            InvalidArgumentError: ``rank`` is out of range.
        """
        self._check(rank)
        self.states[rank] = PeerState.DEAD
        for inbox in self.ranks[rank]._inbox:
            inbox.clear()

    def finish(self, rank: int) -> None:
        """Make ``rank`` end normally: as if it closed its endpoint (see
        :meth:`InprocTransport.close`).

        Raises:
            InvalidArgumentError: ``rank`` is out of range.
        """
        self._check(rank)
        self.ranks[rank].close()

    def drop(
        self, src: int, dst: int, count: int = 1, *, ctx: int | None = None, tag: int | None = None
    ) -> None:
        """Make the next ``count`` messages from ``src`` to ``dst`` (of context ``ctx`` and
        tag ``tag`` when given) vanish: their sends complete, nothing arrives.

        Without ``ctx``, acknowledgements of synchronous sends are not dropped (pass the
        internal context to drop them).

        Raises:
            InvalidArgumentError: a rank is out of range, or ``count`` < 1.
        """
        self._check(src)
        self._check(dst)
        if isinstance(count, bool) or not isinstance(count, int) or count < 1:
            raise InvalidArgumentError(
                f"InprocWorld.drop: count must be an int >= 1, got {count!r}"
            )
        self._drops.append(_Drop(src, dst, count, ctx, tag))

    def _dropped(self, src: int, dst: int, ctx: int, tag: int) -> bool:
        """True if a pending fault takes this message (and counts it)."""
        for fault in self._drops:
            if fault.takes(src, dst, ctx, tag):
                fault.count -= 1
                if not fault.count:
                    self._drops.remove(fault)
                return True
        return False

    def _post(self, src: int, dst: int, msg: _Message) -> None:
        """Queue ``msg`` for ``dst``, unless it is dead or a fault drops the message."""
        if self.states[dst] is PeerState.DEAD:
            return
        if self._drops and self._dropped(src, dst, msg.ctx, msg.tag):
            return
        self.ranks[dst]._inbox[src].append(msg)


class InprocTransport(Transport):
    """One rank of an :class:`InprocWorld`; made by the world, not directly.

    Thread safety: each endpoint is used by one thread at a time (its rank's); senders only
    append to a receiver's queues (``deque.append`` is atomic), the receiver alone takes.
    """

    capabilities = frozenset(
        {INLINE_SMALL, FAILURE_DETECTION}
        | ({NODE_MEMORY} if hasattr(os, "memfd_create") else set())
    )
    """Node memory where the system can make anonymous memory that several mappings share
    (``memfd_create``: Linux)."""

    def __init__(self, world: InprocWorld, rank: int) -> None:
        super().__init__(rank, world.size)
        self.world = world
        self.node_ids = world.nodes
        # one queue per source: per-pair order is the queue's order
        self._inbox: list[deque[_Message]] = [deque() for _ in range(world.size)]

    def node_memory(self, what: str = "node memory") -> InprocNodeMemory:
        """The world's :class:`~.node_memory.InprocNodeMemory`, shared by its ranks.

        Raises:
            MissingCapabilityError: this system has no ``memfd_create``.
        """
        if NODE_MEMORY not in self.capabilities:
            raise self.missing_capability(NODE_MEMORY, what)
        return self.world.node_memory

    def _alive(self) -> None:
        if self.world.states[self.rank] is PeerState.DEAD:
            raise ProcessFailedError(f"rank {self.rank} has been killed", (self.rank,))
        if self._closed:
            raise CommunicatorClosedError(f"rank {self.rank}: the in-process transport is closed")

    def _start_send(self, op: SendOp) -> None:
        self._alive()
        frames = [memoryview(bytes(f)) for f in op.frames]
        self.world._post(self.rank, op.dest, _Message(op.ctx, op.tag, frames, op.sig, op.sync))
        op.sent()

    def send_inline(self, dest: int, ctx: int, tag: int, frame: memoryview, sig: int = 0) -> bool:
        if dest == self.rank or frame.nbytes > INLINE_LIMIT or self._closed:
            return False
        if self.world.states[self.rank] is PeerState.DEAD:
            return False  # isend then raises
        if self._rec is not None:
            self._rec.extend((SEND_INLINE, dest, ctx, tag, frame.nbytes))
        self.world._post(
            self.rank, dest, _Message(ctx, tag, [memoryview(bytes(frame))], sig, False)
        )
        return True

    def recv_inline(
        self, ctx: int, source: int, tag: int, into: memoryview | None = None
    ) -> tuple[bytes, int, int, int] | None:
        if self._posted or self._unexpected or source < 0 or source == self.rank:
            return None  # earlier receives or messages must be matched first
        inbox = self._inbox[source]
        if not inbox:
            return None
        msg = inbox[0]
        if (
            msg.ctx != ctx
            or msg.sync
            or len(msg.frames) != 1
            or (tag != ANY_TAG and tag != msg.tag)
            or msg.frames[0].nbytes > INLINE_LIMIT
            or (into is not None and msg.frames[0].nbytes > into.nbytes)
        ):
            return None
        inbox.popleft()
        frame = msg.frames[0]
        n = frame.nbytes
        if self._rec is not None:
            self._rec.extend((RECV_INLINE, source, ctx, msg.tag, n))
        if into is None:
            return frame.tobytes(), msg.tag, n, msg.sig
        into[:n] = frame
        return b"", msg.tag, n, msg.sig

    def _poll(self) -> bool:
        self._alive()
        moved = False
        for src, inbox in enumerate(self._inbox):
            while inbox:
                msg = inbox.popleft()
                moved = True
                self._deliver_message(src, msg)
        return moved

    def _deliver_message(self, src: int, msg: _Message) -> None:
        frames = msg.frames
        if len(frames) == 1 and not msg.sync:
            self._on_small(src, msg.ctx, msg.tag, frames[0], msg.sig)
            return
        incoming, targets = self._on_header(
            src, msg.ctx, msg.tag, [f.nbytes for f in frames], msg.sig, msg.sync
        )
        for dst, frame in zip(targets, frames, strict=True):
            dst[:] = frame
        self._on_complete(incoming)

    def peer_state(self, rank: int) -> PeerState:
        """The world's record of ``rank``: killed, closed or running."""
        return self.world.states[rank]

    def close(self) -> None:
        """Mark this rank FINISHED; its peers can still take what it sent (sends complete at
        once here, so there is nothing to flush)."""
        if self._closed:
            return
        super().close()
        if self.world.states[self.rank] is PeerState.RUNNING:
            self.world.states[self.rank] = PeerState.FINISHED
