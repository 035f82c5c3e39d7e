"""Shared-memory transport: one single-producer single-consumer byte ring per ordered pair.

A message is streamed through the ring as ``header | frame lengths | frame bytes``::

    writer (rank s)                       ring s->d (in /dev/shm)              reader (rank d)
    copy chunk k+1 into ring  ----->  [ ... chunk k ... chunk k+1 ... ]  ----->  copy chunk k out
                               head = bytes written          tail = bytes read

so a large message is pipelined: the reader copies chunk k out while the writer copies chunk
k+1 in, and no message ever needs more than the ring's capacity of shared memory. Each
counter has one writer and sits on its own cache line. On x86-64 (total store order) the
data stores that precede a counter update are visible before it; an aligned 8-byte store
through a ``memoryview`` of format ``Q`` is a single instruction.

A blocked send or receive keeps draining every incoming ring (into the unexpected queue if
nothing matches), so two ranks that send large messages to each other never deadlock.
"""

from __future__ import annotations

import os
import struct
import sys
import time
from collections import deque
from collections.abc import Mapping, Sequence

from ..errors import CommunicatorClosedError, ProcessFailedError, TreecastError
from ..runtime.env import ENV_JOB, ENV_SHM
from ..tracing.events import RECV_INLINE, SEND_INLINE
from ..units import size_from_env
from . import cma
from .base import (
    ACK_CTX,
    ANY_TAG,
    Activity,
    Call,
    Frames,
    Incoming,
    PeerState,
    SendOp,
    Transport,
    TransportJob,
    describe,
    exiting_on_error,
)
from .capabilities import CMA, FAILURE_DETECTION, INLINE_SMALL, NODE_MEMORY
from .deadlock import GONE, NEW, RUNNING, WORDS, Watch
from .node_memory import ShmNodeMemory
from .segments import SHM_DIR, attach_segment, job_stem, unlink_job_segments
from .shm_layout import (
    ACTIVITY_BYTES,
    ACTIVITY_FMT,
    CTRL_FMT,
    MAGIC,
    RING_HEADER,
    STATE_ATTACHED,
    STATE_DEAD,
    STATE_FINALIZED,
    STATE_NEW,
    STATE_OFFSET,
    VERSION,
    activity_offset,
    board_offset,
    create_world_segment,
    mark_rank_dead,
    mark_rank_exited,
    ring_offset,
)
from .wait import Backoff

HEADER = struct.Struct("<QqQII")  # ctx, tag, total bytes, nframes | SYNC_FLAG, signature
"""Message header; frame lengths (u64 each) follow when nframes > 1."""
SYNC_FLAG = 1 << 31
"""Set in the header's nframes field for a synchronous send, whose signature field holds its
id. Such messages never take the one-frame fast paths, which test ``nframes == 1``."""
CHUNK = size_from_env("TREECAST_SHM_CHUNK", 256 * 1024, at_least=1)
"""Largest copy between two counter updates: the pipelining grain of large messages
(``TREECAST_SHM_CHUNK``)."""
INLINE_LIMIT = 4096
"""Messages up to this size are written as one piece (header and payload joined)."""
HEAD = 0
TAIL = 8  # index of the tail counter in the ring's control block viewed as u64 ('Q')


FLUSH_SECONDS = float(os.environ.get("TREECAST_FLUSH_SECONDS", "10") or 10)
"""Longest a closing rank waits for live readers to take queued data other than synchronous
sends' acknowledgements (``TREECAST_FLUSH_SECONDS``)."""


class _OutRing:
    __slots__ = ("cap", "ctrl", "data", "head", "queue")

    def __init__(self, ctrl: memoryview, data: memoryview) -> None:
        self.ctrl = ctrl
        self.data = data
        self.cap = data.nbytes
        self.head = ctrl[HEAD]
        self.queue: deque[SendOp] = deque()


class _InRing:
    __slots__ = (
        "cap",
        "ctrl",
        "data",
        "lengths",
        "msg",
        "offset",
        "piece",
        "stage",
        "sync",
        "tail",
        "targets",
    )

    def __init__(self, ctrl: memoryview, data: memoryview) -> None:
        self.ctrl = ctrl
        self.data = data
        self.cap = data.nbytes
        self.tail = ctrl[TAIL]
        self.stage = 0  # 0: header, 1: frame lengths, 2: payload
        self.targets: Frames = [memoryview(bytearray(HEADER.size))]
        self.piece = 0
        self.offset = 0
        self.msg: Incoming | None = None
        self.lengths: tuple[int, ...] = ()
        self.sync = False


class ShmTransport(Transport):
    """Transport over the job's world segment (see :mod:`.shm_layout`).

    Args:
        rank: this process's world rank.
        size: number of ranks.
        segment: name of the world segment created by the launcher.
        job: the job's token (``TREECAST_JOB``), which names the segments that the ranks
            make in node memory.

    Raises:
        FileNotFoundError: the segment does not exist.
        ValueError: the segment was made for another size or version.
    """

    capabilities = frozenset({NODE_MEMORY, INLINE_SMALL, FAILURE_DETECTION})
    """Every instance adds :data:`~.capabilities.CMA` where this system allows it."""

    @classmethod
    def from_env(cls, rank: int, size: int, environ: Mapping[str, str]) -> ShmTransport:
        """Attach to the world segment that :class:`ShmJob` named in the rank's environment.

        Raises:
            TreecastError: the segment's variable is not set (not started by our launcher).
            FileNotFoundError, ValueError: as the constructor.
        """
        segment = environ.get(ENV_SHM)
        if not segment:
            raise TreecastError(f"{ENV_SHM} is not set; start the program with `treecast run`")
        return cls(rank, size, segment, environ.get(ENV_JOB) or f"solo{os.getpid()}")

    def __init__(
        self,
        rank: int,
        size: int,
        segment: str,
        job: str,
        members: Sequence[int] | None = None,
    ) -> None:
        super().__init__(rank, size)
        self._node_memory = ShmNodeMemory(job)
        if cma.available():
            self.capabilities = ShmTransport.capabilities | {CMA}
        # the segment's slots hold the world ranks ``members`` (all of them by default):
        # a transport that spans nodes (mpi.py) gives this node's ranks
        self._members = tuple(range(size)) if members is None else tuple(members)
        self._slot_of = [-1] * size
        for slot, r in enumerate(self._members):
            self._slot_of[r] = slot
        nslots = len(self._members)
        me = self._slot = self._slot_of[rank]
        self._mm = attach_segment(segment)
        magic, version, seg_size, cap = struct.unpack_from(CTRL_FMT, self._mm, 0)
        if magic != MAGIC or version != VERSION or seg_size != nslots:
            self._mm.close()
            raise ValueError(
                f"segment {segment} holds magic {magic:#x} version {version} size {seg_size}; "
                f"expected {MAGIC:#x} version {VERSION} size {nslots}"
            )
        buf = memoryview(self._mm)
        self._buf = buf
        self._out: list[_OutRing | None] = [None] * size
        self._in: list[_InRing | None] = [None] * size
        for slot, peer in enumerate(self._members):
            if peer == rank:
                continue
            o = ring_offset(nslots, cap, me, slot)
            self._out[peer] = _OutRing(
                buf[o : o + RING_HEADER].cast("Q"), buf[o + RING_HEADER : o + RING_HEADER + cap]
            )
            i = ring_offset(nslots, cap, slot, me)
            self._in[peer] = _InRing(
                buf[i : i + RING_HEADER].cast("Q"), buf[i + RING_HEADER : i + RING_HEADER + cap]
            )
        self._state = buf[STATE_OFFSET : STATE_OFFSET + 8 * nslots].cast("Q")
        board = board_offset(nslots)
        self._board = buf[board : board + 8 * WORDS * nslots].cast("Q")
        if nslots == size:  # every rank in sight (one node); settle 0: board kept, no verdicts
            self._watch = Watch(self._board, me, self._slot_state, self.deadlock_settle)
        self._state[me] = STATE_ATTACHED
        self._in_peers = [p for p in self._members if p != rank]
        self._in_rings = [r for r in (self._in[p] for p in self._in_peers) if r is not None]
        self._sending: list[_OutRing] = []

    def node_memory(self, what: str = "node memory") -> ShmNodeMemory:
        """The job's POSIX shared-memory segments (``/treecast-<job>-*``)."""
        return self._node_memory

    def _slot_state(self, slot: int) -> int:
        """The deadlock detector's view of the rank in ``slot``."""
        word = self._state[slot]
        if word == STATE_NEW:
            return NEW
        return RUNNING if word == STATE_ATTACHED else GONE

    # ---- sending --------------------------------------------------------------------------
    def _start_send(self, op: SendOp) -> None:
        if self._closed:
            raise CommunicatorClosedError(
                f"rank {self.rank}: the shared-memory transport is closed"
            )
        frames = op.frames
        nframes = len(frames)
        if op.sync:
            header = HEADER.pack(op.ctx, op.tag, op.nbytes, nframes | SYNC_FLAG, op.sig)
        elif (
            nframes == 1
            and op.nbytes <= INLINE_LIMIT
            and self._put_small(op.dest, op.ctx, op.tag, frames[0], op.sig)
        ):
            op.done = True
            return
        else:
            header = HEADER.pack(op.ctx, op.tag, op.nbytes, nframes, op.sig)
        if nframes > 1:
            header += struct.pack(f"<{nframes}Q", *(f.nbytes for f in frames))
        if op.nbytes <= INLINE_LIMIT:
            op.pieces = [memoryview(b"".join([header, *frames]))]
        else:
            op.pieces = [memoryview(header), *frames]
        ring = self._out[op.dest]
        assert ring is not None
        ring.queue.append(op)
        if len(ring.queue) == 1:
            self._push(ring)
            if ring.queue:
                self._sending.append(ring)

    def send_inline(self, dest: int, ctx: int, tag: int, frame: memoryview, sig: int = 0) -> bool:
        if dest == self.rank or frame.nbytes > INLINE_LIMIT or self._closed:
            return False
        if not self._put_small(dest, ctx, tag, frame, sig):
            return False
        if self._rec is not None:
            self._rec.extend((SEND_INLINE, dest, ctx, tag, frame.nbytes))
        return True

    def _put_small(self, dest: int, ctx: int, tag: int, frame: memoryview, sig: int = 0) -> bool:
        """Write a one-frame message in one go if the ring is idle and has contiguous room."""
        ring = self._out[dest]
        if ring is None or ring.queue:
            return False
        n = frame.nbytes
        total = HEADER.size + n
        head = ring.head
        pos = head % ring.cap
        if pos + total > ring.cap or total > ring.cap - (head - ring.ctrl[TAIL]):
            return False
        data = ring.data
        HEADER.pack_into(data, pos, ctx, tag, n, 1, sig)
        if n:
            data[pos + HEADER.size : pos + total] = frame
        ring.head = head = head + total
        ring.ctrl[HEAD] = head
        return True

    def recv_inline(
        self, ctx: int, source: int, tag: int, into: memoryview | None = None
    ) -> tuple[bytes, int, int, int] | None:
        if self._posted or self._unexpected or source < 0 or source == self.rank:
            return None  # earlier receives or messages must be matched first
        ring = self._in[source]
        if ring is None or ring.stage:
            return None
        tail = ring.tail
        avail = ring.ctrl[HEAD] - tail
        pos = tail % ring.cap
        end = pos + HEADER.size
        if avail < HEADER.size or end > ring.cap:
            return None
        data = ring.data
        mctx, mtag, n, nframes, sig = HEADER.unpack_from(data, pos)
        if (
            mctx != ctx
            or nframes != 1
            or (tag != ANY_TAG and tag != mtag)
            or avail < HEADER.size + n
            or end + n > ring.cap
            or (into is not None and n > into.nbytes)
        ):
            return None
        if into is None:
            payload = bytes(data[end : end + n])
        else:
            into[:n] = data[end : end + n]
            payload = b""
        ring.tail = tail = tail + HEADER.size + n
        ring.ctrl[TAIL] = tail
        if self._rec is not None:
            self._rec.extend((RECV_INLINE, source, ctx, mtag, n))
        return payload, mtag, n, sig

    def _push(self, ring: _OutRing) -> bool:
        """Write as much of the ring's queued sends as fits; return True if bytes moved."""
        cap = ring.cap
        head = ring.head
        free = cap - (head - ring.ctrl[TAIL])
        start = head
        data = ring.data
        queue = ring.queue
        while queue:
            op = queue[0]
            pieces = op.pieces
            while op.piece < len(pieces):
                piece = pieces[op.piece]
                remaining = piece.nbytes - op.offset
                if remaining == 0:
                    op.piece += 1
                    op.offset = 0
                    continue
                if free == 0:  # the reader may have made room meanwhile
                    free = cap - (head - ring.ctrl[TAIL])
                    if free == 0:
                        break
                k = min(remaining, free, CHUNK)
                pos = head % cap
                first = min(k, cap - pos)
                off = op.offset
                data[pos : pos + first] = piece[off : off + first]
                if k > first:
                    data[0 : k - first] = piece[off + first : off + k]
                head += k
                free -= k
                op.offset += k
                if k == CHUNK:  # publish each chunk so that the reader copies while we write
                    ring.ctrl[HEAD] = head
            if op.piece < len(pieces):
                break
            if op.sync:
                op.sent()
            else:
                op.done = True
            queue.popleft()
        if head != start:
            ring.head = head
            ring.ctrl[HEAD] = head
            return True
        return False

    # ---- receiving ------------------------------------------------------------------------
    def _pull(self, src: int, ring: _InRing) -> bool:
        """Read what is available from one incoming ring; return True if bytes moved."""
        avail = ring.ctrl[HEAD] - ring.tail
        if avail == 0:
            return False
        cap = ring.cap
        data = ring.data
        tail = ring.tail
        hsize = HEADER.size
        # Fast path: whole one-frame messages lying contiguously in the ring.
        while ring.stage == 0 and avail >= hsize:
            pos = tail % cap
            if pos + hsize > cap:
                break
            ctx, tag, n, nframes, sig = HEADER.unpack_from(data, pos)
            end = pos + hsize + n
            if nframes != 1 or avail < hsize + n or end > cap:
                break
            self._on_small(src, ctx, tag, data[pos + hsize : end], sig)
            tail += hsize + n
            avail -= hsize + n
        while True:
            targets = ring.targets
            while ring.piece < len(targets):
                if not avail:  # the writer may have published more meanwhile
                    avail = ring.ctrl[HEAD] - tail
                    if not avail:
                        break
                target = targets[ring.piece]
                k = min(target.nbytes - ring.offset, avail, CHUNK)
                pos = tail % cap
                first = min(k, cap - pos)
                off = ring.offset
                target[off : off + first] = data[pos : pos + first]
                if k > first:
                    target[off + first : off + k] = data[0 : k - first]
                tail += k
                avail -= k
                ring.offset += k
                if k == CHUNK:  # hand the space back chunk by chunk
                    ring.ctrl[TAIL] = tail
                if ring.offset == target.nbytes:
                    ring.piece += 1
                    ring.offset = 0
            # skip zero-length frames, which need no bytes
            while ring.piece < len(targets) and targets[ring.piece].nbytes == 0:
                ring.piece += 1
            if ring.piece < len(targets):
                break
            self._advance(src, ring)
            if not avail and ring.stage == 0:
                break
        ring.tail = tail
        ring.ctrl[TAIL] = tail
        return True

    def _advance(self, src: int, ring: _InRing) -> None:
        """The current stage's bytes are all in: move to the next stage."""
        ring.piece = 0
        ring.offset = 0
        if ring.stage == 0:
            ctx, tag, total, nframes, sig = HEADER.unpack(ring.targets[0])
            ring.sync = bool(nframes & SYNC_FLAG)
            nframes &= ~SYNC_FLAG
            ring.lengths = (total,)
            if nframes > 1:
                ring.stage = 1
                ring.targets = [memoryview(bytearray(8 * nframes))]
                ring.msg = Incoming(src, ctx, tag, (), sig)
                return
            self._begin_payload(src, ring, ctx, tag, sig)
        elif ring.stage == 1:
            raw = ring.targets[0]
            assert ring.msg is not None
            ring.lengths = struct.unpack(f"<{raw.nbytes // 8}Q", raw)
            self._begin_payload(src, ring, ring.msg.ctx, ring.msg.tag, ring.msg.sig)
        else:
            assert ring.msg is not None
            msg = ring.msg
            ring.msg = None
            ring.stage = 0
            ring.targets = [memoryview(bytearray(HEADER.size))]
            self._on_complete(msg)

    def _begin_payload(self, src: int, ring: _InRing, ctx: int, tag: int, sig: int) -> None:
        msg, targets = self._on_header(src, ctx, tag, ring.lengths, sig, ring.sync)
        ring.msg = msg
        ring.stage = 2
        ring.targets = targets

    # ---- progress ---------------------------------------------------------------------------
    def _poll(self) -> bool:
        moved = False
        if self._sending:
            for out in self._sending:
                moved = self._push(out) or moved
            self._sending = [r for r in self._sending if r.queue]
        for src, ring in zip(self._in_peers, self._in_rings, strict=False):
            if ring.ctrl[HEAD] != ring.tail:
                self._pull(src, ring)
                moved = True
        return moved

    def _receiving(self) -> bool:
        return any(r.stage or r.piece or r.offset for r in self._in_rings)

    def publish_activity(self, what: Activity | None) -> None:
        off = activity_offset(len(self._members)) + ACTIVITY_BYTES * self._slot
        if what is None:
            struct.pack_into(ACTIVITY_FMT, self._mm, off, b"", 0, -1)
        elif isinstance(what, str):
            struct.pack_into(ACTIVITY_FMT, self._mm, off, what.encode()[:48], 0, -1)
        else:
            name, comm, seq, root = what
            struct.pack_into(ACTIVITY_FMT, self._mm, off, f"{name}@{comm}".encode()[:48], seq, root)

    def _activity_of(self, rank: int) -> tuple[str, int, int] | None:
        """What world rank ``rank`` of this segment is blocked in, or None."""
        off = activity_offset(len(self._members)) + ACTIVITY_BYTES * self._slot_of[rank]
        raw, seq, root = struct.unpack_from(ACTIVITY_FMT, self._mm, off)
        name = raw.rstrip(b"\0").decode(errors="replace")
        return (name, seq, root) if name else None

    def hang_report(self, what: Activity) -> str:
        """For every rank: the call it is blocked in; and who has not reached ours."""
        state = self._state
        mine = self._activity_of(self.rank)
        lines, missing = [], []
        for r in range(self.size):
            slot = self._slot_of[r]
            if slot < 0:
                lines.append(f"  rank {r}: {self._remote_activity(r)}")
                continue
            act = self._activity_of(r)
            if state[slot] == STATE_DEAD:
                desc = "dead"
            elif state[slot] == STATE_FINALIZED:
                desc = "finished"
            elif act is None:
                desc = "not in a blocking treecast call (running its own code)"
            else:
                name, seq, root = act
                if "@" in name:
                    coll, comm = name.split("@", 1)
                    desc = "in " + describe(Call(coll, comm, seq, root))
                else:
                    desc = "in " + name
                peer = None if self._watch is None else self._watch.peer_of(slot)
                if peer is not None:
                    desc += f", waiting for rank {peer}"
            lines.append(f"  rank {r}: {desc}")
            if not isinstance(what, str) and act != mine:
                missing.append(r)
        if not isinstance(what, str):
            lines.append(
                "  ranks that have not arrived at this collective: "
                + (", ".join(map(str, missing)) or "none (all are in it; a message is missing)")
            )
        return "\n".join(lines)

    def _remote_activity(self, rank: int) -> str:
        """The hang report's line on a rank outside this segment."""
        return "on another node (what it is doing cannot be seen from here)"

    def _flush(self) -> None:
        """Before closing: push out what is still queued while its reader is alive and not
        finished. A synchronous send's acknowledgement is waited for as long as its reader
        lives (the reader's program is correct and waits for it); other data for at most
        :data:`FLUSH_SECONDS`, then dropped with a warning on stderr. Nothing is flushed
        when the process is exiting on an uncaught exception (the job is failing)."""
        if exiting_on_error():
            return
        deadline = time.monotonic() + FLUSH_SECONDS
        backoff = Backoff(self._oversubscribed)
        state = self._state
        while self._sending:
            queued = [op for ring in self._sending for op in ring.queue]
            slot = self._slot_of
            live = [
                op for op in queued if state[slot[op.dest]] not in (STATE_DEAD, STATE_FINALIZED)
            ]
            if not live:
                return
            if time.monotonic() > deadline and not any(op.ctx == ACK_CTX for op in live):
                dropped = sorted({op.dest for op in live})
                print(
                    f"treecast: rank {self.rank} exits with sends to rank(s) {dropped} not "
                    f"taken after {FLUSH_SECONDS:g} s (never waited for); they are dropped",
                    file=sys.stderr,
                    flush=True,
                )
                return
            try:
                moved = self._poll()
            except ProcessFailedError:
                return
            if not moved:
                backoff.pause()

    def peer_state(self, rank: int) -> PeerState:
        """The rank's state word in the world segment: written by the rank itself (attached,
        finished) or by the launcher (dead)."""
        word = self._state[self._slot_of[rank]]
        if word == STATE_DEAD:
            return PeerState.DEAD
        if word == STATE_FINALIZED:
            return PeerState.FINISHED
        return PeerState.RUNNING

    def _announce_finished(self) -> None:
        self._flush()
        self._state[self._slot] = STATE_FINALIZED

    def close(self) -> None:
        if self._closed:
            return
        self._flush()
        super().close()
        self._state[self._slot] = STATE_FINALIZED
        self._watch = None
        self._state.release()
        self._board.release()
        for ring in self._out:
            if ring is not None:
                ring.ctrl.release()
                ring.data.release()
        for iring in self._in:
            if iring is not None:
                iring.ctrl.release()
                iring.data.release()
        self._buf.release()
        try:
            self._mm.close()
        except BufferError:  # a frame view still points into the segment; the OS unmaps at exit
            pass


class ShmJob(TransportJob):
    """The launcher's half of the shared-memory transport: the job's world segment.

    Args:
        job: the job's token; every segment of the job is named after it.
    """

    def __init__(self, job: str) -> None:
        self.job = job
        self.segment = ""  # the world segment's name, once created

    def start(self, nprocs: int, ring_bytes: int | None = None) -> dict[str, str]:
        """Create the world segment (see :mod:`.shm_layout`); return ``TREECAST_SHM``.

        Raises:
            ValueError: ``nprocs`` < 1 or ``ring_bytes`` too small.
            OSError: the segment could not be created.
        """
        self.segment = create_world_segment(self.job, nprocs, ring_bytes)
        return {ENV_SHM: self.segment}

    def mark_dead(self, rank: int) -> None:
        """Write ``dead`` into the rank's state word (nothing once the segment is gone)."""
        if self.segment:
            mark_rank_dead(self.segment, rank)

    def mark_exited(self, rank: int) -> None:
        """Write ``finalized`` into the state word of a rank that exited with status 0
        without saying so itself."""
        if self.segment:
            mark_rank_exited(self.segment, rank)

    def unlink(self) -> list[str]:
        """Unlink every segment of the job: the world's and those its ranks made."""
        return unlink_job_segments(self.job)

    def reaper_args(self) -> list[str]:
        """Sweep ``/dev/shm`` for the job's segments."""
        return [SHM_DIR, job_stem(self.job)]
