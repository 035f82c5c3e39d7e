"""The MPI transport: treecast's world under ``mpiexec`` / ``srun``, over many nodes.

Ranks of one node talk through the shared-memory rings of :mod:`.shm` (a segment per node,
made by the node's leader); ranks of different nodes through MPI point-to-point on a private
duplicate of ``COMM_WORLD``. Both channels feed the same matching (:mod:`.base`), so
contexts, 64-bit tags, ``ANY_SOURCE``, synchronous sends, probes and truncation mean the
same whichever way a message came. On the MPI channel a message is::

    tag 1  header | frame lengths | payload      a message of up to EAGER bytes, in one piece
    tag 1  header | frame lengths                a larger one, then
    tag 2  frame 0, frame 1, ...                 its frames (pieces of up to 1 GiB), straight
                                                 from the sender's buffers into the receiver's
    tag 1  (0 bytes)                             the sender has closed its transport

MPI keeps the messages of one sender and one tag in order, so the receiver posts each
large message's frame receives in header order and the frames land where the header said.
MPI moves bytes only while the process calls into it: while MPI transfers are in flight a
blocked wait yields the CPU instead of sleeping (:meth:`Transport._busy`).

Liveness: a rank of this node that dies is seen through the node segment (its state word,
or its pid gone); a rank of another node that closes says so (the 0-byte message); a rank
that fails anywhere ends the whole job through ``MPI_Abort`` (:func:`abort_on_uncaught`),
which is MPI's own guarantee.
"""

from __future__ import annotations

import os
import secrets
import socket
import struct
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from ..errors import (
    CommunicatorClosedError,
    InvalidArgumentError,
    TreecastError,
    UnsupportedLauncherError,
)
from ..units import size_from_env
from .base import ACK_CTX, Incoming, PeerState, SendOp, exiting_on_error
from .deadlock import Watch
from .segments import SHM_DIR, job_stem, unlink_segment
from .shm import FLUSH_SECONDS, HEADER, SYNC_FLAG, ShmTransport
from .shm_layout import (
    MIN_RING_CAPACITY,
    STATE_DEAD,
    create_world_segment,
    default_ring_capacity,
    world_bytes,
)
from .wait import Backoff

TAG_MSG = 1
"""MPI tag of a message's header (with its payload when small); 0 bytes: the sender closed."""
TAG_DATA = 2
"""MPI tag of the frames of a large message, in order."""
EAGER = 64 * 1024
"""Messages up to this many bytes travel in one MPI message with their header."""
PIECE = 1 << 30
"""Largest MPI message of frame bytes (counts stay far below 2**31)."""
TAG_WATCH = 3
"""MPI tag of the deadlock detector's messages between nodes (:class:`_NodeExchange`)."""
_WATCH = struct.Struct("<BQQ")  # kind, round, token
PROBE, ANSWER, VERDICT = 1, 2, 3
MAX_PROBE_SECONDS = 5.0
"""Longest interval between probes of a node whose speaker does not answer (it computes:
the probes wait in its MPI queue, so they are sent ever more rarely)."""

ACTIVE_SECONDS = 0.05
"""After moving data, a rank's waits yield the CPU instead of sleeping for this long (MPI
libraries busy-poll in their waits); a rank idle for longer sleeps between polls again."""

ENV_FAKE_NODES = "TREECAST_FAKE_NODES"
"""``k`` (contiguous: ranks 0..n/k-1 on node 0, ...) or ``k:interleaved`` (rank r on node
r mod k): split one machine into k nodes, so that traffic between them goes through MPI."""
ENV_RING_BYTES = "TREECAST_RING_BYTES"
"""Bytes of each ring of the node segment (default: as ``treecast run``)."""


def fake_nodes(value: str, size: int) -> tuple[int, ...] | None:
    """The node of each of ``size`` ranks that ``TREECAST_FAKE_NODES=value`` asks for, or
    None when unset.

    Raises:
        InvalidArgumentError: not ``k`` or ``k:interleaved`` with ``1 <= k <= size``.
    """
    value = value.strip()
    if not value:
        return None
    count, _, placement = value.partition(":")
    k = int(count) if count.strip().isdigit() else 0
    if not 1 <= k <= size or placement.strip() not in ("", "contiguous", "interleaved"):
        raise InvalidArgumentError(
            f"{ENV_FAKE_NODES}={value!r}: expected k or k:interleaved (k nodes, 1 <= k <= "
            f"{size}, the number of processes), e.g. {ENV_FAKE_NODES}=2"
        )
    if placement.strip() == "interleaved":
        return tuple(r % k for r in range(size))
    return tuple(r * k // size for r in range(size))


class _Transfer:
    """MPI requests in flight for one message: a send (``op``, done when they complete;
    None when its bytes were copied) or a receive (``msg``, complete when they do)."""

    __slots__ = ("keep", "msg", "op", "requests")

    def __init__(self, requests: list[Any], op: SendOp | None, msg: Any, keep: Any) -> None:
        self.requests = requests
        self.op = op
        self.msg = msg
        self.keep = keep  # the bytes an MPI send reads: alive until it completes


class MpiTransport(ShmTransport):
    """Shared-memory rings inside the node, MPI between nodes (see the module docstring).

    Made by :func:`start`; the arguments are what it found.

    Args:
        comm: the private duplicate of ``COMM_WORLD`` (an ``mpi4py.MPI.Comm``).
        members: the world ranks of this node, in the order of the node segment's slots.
        node_ids: the node of every world rank (0, 1, ... in order of first rank).
        segment: the node segment's name.
        job: the node's token, which names its node-memory segments.
        pids: the process id of each rank of ``members``.
        host_ranks: how many ranks of the job run on this machine (fake nodes share it);
            default: this node's.
    """

    def __init__(
        self,
        comm: Any,
        members: Sequence[int],
        node_ids: tuple[int, ...],
        segment: str,
        job: str,
        pids: Sequence[int],
        host_ranks: int | None = None,
    ) -> None:
        from mpi4py import MPI

        super().__init__(comm.Get_rank(), comm.Get_size(), segment, job, members)
        self.node_ids = node_ids
        self._comm = comm
        self._MPI = MPI
        self._byte = MPI.BYTE
        self._testall: Callable[[list[Any]], bool] = MPI.Request.Testall
        mine = node_ids[self.rank]
        self._remote = [n != mine for n in node_ids]
        self._pids = dict(zip(members, pids, strict=True))
        self._sends: list[_Transfer] = []
        self._recvs: list[_Transfer] = []
        self._closed_peers: set[int] = set()
        self._said_closed = False
        self._status = MPI.Status()
        self._active_at = 0.0
        # the ranks on this machine share its cores (the base counts every rank of the world)
        self._oversubscribed = (host_ranks or len(self._members)) > (os.cpu_count() or 1)
        self.inter_node_bytes = 0
        """Bytes this rank has sent to other nodes (headers excluded)."""
        self._exchange: _NodeExchange | None = None
        if self.deadlock_settle and self._watch is None:  # the board holds this node only
            self._exchange = _NodeExchange(self)
            self._watch = Watch(
                self._board,
                self._slot,
                self._slot_state,
                self.deadlock_settle,
                busy=self._mpi_in_flight,
                exchange=self._exchange,
            )

    def _mpi_in_flight(self) -> bool:
        return bool(self._sends or self._recvs)

    # ---- sending --------------------------------------------------------------------------
    def _start_send(self, op: SendOp) -> None:
        if not self._remote[op.dest]:
            super()._start_send(op)
            return
        if self._closed:
            if op.ctx == ACK_CTX:  # a synchronous send matched after close: nobody waits
                return
            raise CommunicatorClosedError(f"rank {self.rank}: the MPI transport is closed")
        frames = op.frames
        n = len(frames)
        head = HEADER.pack(op.ctx, op.tag, op.nbytes, n | (SYNC_FLAG if op.sync else 0), op.sig)
        if n > 1:
            head += struct.pack(f"<{n}Q", *(f.nbytes for f in frames))
        isend, byte = self._comm.Isend, self._byte
        self.inter_node_bytes += op.nbytes
        if op.nbytes <= EAGER:
            packet = b"".join([head, *frames])
            self._sends.append(
                _Transfer([isend([packet, byte], op.dest, TAG_MSG)], None, None, packet)
            )
            op.sent()  # the bytes are copied: the caller may reuse its buffers
            return
        requests = [isend([head, byte], op.dest, TAG_MSG)]
        for f in frames:
            for off in range(0, f.nbytes, PIECE):
                requests.append(isend([f[off : off + PIECE], byte], op.dest, TAG_DATA))
        self._sends.append(_Transfer(requests, op, None, head))

    # ---- receiving ------------------------------------------------------------------------
    def _take(self, message: Any, src: int, n: int) -> bool:
        """Receive the header message ``message`` of ``n`` bytes from world rank ``src``;
        False if it was the sender's word that it has closed (no data: a deadlock
        detector's verdict must still find this rank in the same state)."""
        buf = bytearray(max(n, 1))
        message.Recv([buf, n, self._byte])
        if n == 0:
            self._closed_peers.add(src)
            return False
        view = memoryview(buf)[:n]
        ctx, tag, total, nframes, sig = HEADER.unpack_from(view)
        sync = bool(nframes & SYNC_FLAG)
        nframes &= ~SYNC_FLAG
        pos = HEADER.size
        lengths: tuple[int, ...] = (total,)
        if nframes > 1:
            lengths = struct.unpack_from(f"<{nframes}Q", view, pos)
            pos += 8 * nframes
        if total <= EAGER:
            if nframes <= 1 and not sync:
                self._on_small(src, ctx, tag, view[pos : pos + total], sig)
                return True
            msg, targets = self._on_header(src, ctx, tag, lengths, sig, sync)
            for target in targets:
                k = target.nbytes
                target[:] = view[pos : pos + k]
                pos += k
            self._on_complete(msg)
            return True
        msg, targets = self._on_header(src, ctx, tag, lengths, sig, sync)
        irecv, byte = self._comm.Irecv, self._byte
        requests = [
            irecv([t[off : off + PIECE], byte], src, TAG_DATA)
            for t in targets
            for off in range(0, t.nbytes, PIECE)
        ]
        self._recvs.append(_Transfer(requests, None, msg, None))
        return True

    def _progress_mpi(self) -> bool:
        """Complete what MPI has finished and take every header that has arrived; return
        True if anything moved."""
        moved = False
        testall = self._testall
        if self._sends:
            pending = []
            for t in self._sends:
                if testall(t.requests):
                    if t.op is not None:
                        t.op.sent()
                    moved = True
                else:
                    pending.append(t)
            self._sends = pending
        if self._recvs:
            pending = []
            for t in self._recvs:
                if testall(t.requests):
                    self._on_complete(t.msg)
                    moved = True
                else:
                    pending.append(t)
            self._recvs = pending
        improbe, status = self._comm.Improbe, self._status
        any_source = self._MPI.ANY_SOURCE
        while (message := improbe(any_source, TAG_MSG, status)) is not None:
            if self._take(message, status.Get_source(), status.Get_count(self._byte)):
                moved = True
        return moved

    def _poll(self) -> bool:
        moved = ShmTransport._poll(self)
        if self._progress_mpi() or moved:
            self._active_at = time.monotonic()
            return True
        return False

    def _busy(self) -> bool:
        """MPI transfers in flight (they move only inside MPI calls), or this rank moved
        data within :data:`ACTIVE_SECONDS`: a job in the middle of collectives across nodes,
        where a sleeping rank delays every later stage (measured on 4 ranks, 2 cores, 2
        nodes: an 8-byte Allreduce takes 2.1 ms with sleeping waits, 0.4 ms without)."""
        return bool(self._sends or self._recvs) or (
            time.monotonic() - self._active_at < ACTIVE_SECONDS
        )

    # ---- liveness -------------------------------------------------------------------------
    def peer_state(self, rank: int) -> PeerState:
        """A rank of another node: FINISHED once it has said it closed, else RUNNING (a
        failure there ends the job through MPI). A rank of this node: its word in the node
        segment, and DEAD if its process has gone without saying so."""
        if self._remote[rank]:
            return PeerState.FINISHED if rank in self._closed_peers else PeerState.RUNNING
        state = super().peer_state(rank)
        if state is PeerState.RUNNING and rank != self.rank and not _alive(self._pids[rank]):
            return PeerState.DEAD
        return state

    def _remote_activity(self, rank: int) -> str:
        nodes = self.node_ids or (0,) * self.size
        if rank in self._closed_peers:
            return f"finished (on node {nodes[rank]})"
        return f"on node {nodes[rank]}: not visible from node {nodes[self.rank]}"

    def sweeper(self) -> tuple[list[str], list[int]] | None:
        """On the node's leader: the arguments of :mod:`treecast.launcher.reaper` (directory,
        name prefix) that remove the node's segments once every rank of the node has gone,
        and the ranks' pids; None on the other ranks."""
        if self._slot != 0:
            return None
        return [SHM_DIR, job_stem(self.node_memory().job)], list(self._pids.values())

    def mark_self_dead(self) -> None:
        """Write ``dead`` in this rank's word of the node segment (before an abort)."""
        if not self._closed:
            self._state[self._slot] = STATE_DEAD

    # ---- closing --------------------------------------------------------------------------
    def _flush_mpi(self) -> None:
        """Before closing: complete the MPI sends still in flight to ranks that have not
        closed (for at most :data:`~.shm.FLUSH_SECONDS`; acknowledgements of synchronous
        sends are small, copied and complete at once), then cancel the receives in flight."""
        deadline = time.monotonic() + FLUSH_SECONDS
        backoff = Backoff(self._oversubscribed)
        while self._sends:
            self._progress_mpi()
            live = [t for t in self._sends if t.op is None or t.op.dest not in self._closed_peers]
            if not live:
                break
            if time.monotonic() > deadline:
                print(
                    f"treecast: rank {self.rank} exits with {len(live)} message(s) to other "
                    f"nodes not taken after {FLUSH_SECONDS:g} s; they are dropped",
                    file=sys.stderr,
                    flush=True,
                )
                break
            backoff.pause(_always)
        for t in self._recvs:
            for request in t.requests:
                request.Cancel()
            self._MPI.Request.Waitall(t.requests)
        self._recvs = []

    def _say_closed(self) -> None:
        """Flush, then tell every rank of the other nodes that this one has closed (once)."""
        if self._said_closed:
            return
        self._said_closed = True
        if not exiting_on_error():
            self._flush_mpi()
        byte, isend = self._byte, self._comm.Isend
        empty = bytearray(1)
        closing = [isend([empty, 0, byte], r, TAG_MSG) for r in range(self.size) if self._remote[r]]
        self._MPI.Request.Waitall(closing)

    def _announce_finished(self) -> None:
        self._say_closed()
        super()._announce_finished()

    def close(self) -> None:
        """Flush, tell every rank of the other nodes that this one has closed, then close
        the node's rings. See :meth:`finish` for the end of the process."""
        if self._closed:
            return
        try:
            self._say_closed()
        finally:
            super().close()

    def finalize(self) -> list[Incoming]:
        """As :meth:`Transport.finalize`, then :meth:`finish`: the process's end."""
        super().finalize()
        self.finish()
        return list(self._unexpected)

    def finish(self) -> None:
        """At the end of the process, after :meth:`close`, before MPI is finalised: take
        every other node's word that it has closed too, so that no message is left
        unreceived (MPI libraries warn about those at finalisation, or worse). Waits as
        long as a rank of another node runs, as ``MPI_Finalize`` may; nothing is waited
        for when this process is failing."""
        if exiting_on_error():
            return
        remote = [r for r in range(self.size) if self._remote[r]]
        backoff = Backoff(self._oversubscribed)
        while not self._closed_peers.issuperset(remote):
            if not self._progress_mpi():
                backoff.pause()
        if self._exchange is not None:  # no detector message left unreceived at finalize
            self._exchange.drain()


class _NodeExchange:
    """The deadlock detector across nodes (:class:`~.deadlock.Exchange`): each node's board
    shows its own ranks only, so the node's *speaker* (its lowest running rank) asks the
    speaker of every other node, over MPI, whether that node is stuck too.

    While its node stands still, a speaker probes each other node's speaker (a round
    number); a speaker answers with its node's token (0: not standing still) and keeps the
    snapshot it answered for. Two consecutive rounds in which every node answers with the
    same nonzero tokens, while this node stays the same, make a deadlock: the speaker
    condemns its node and sends each other speaker a verdict naming the token it answered;
    that speaker condemns the snapshot it answered for (a rank that has left that wait
    since is spared). A node that does not answer (its speaker computes) is probed ever
    more rarely, up to every :data:`MAX_PROBE_SECONDS`, so that probes do not pile up in its
    MPI queue.
    """

    def __init__(self, transport: MpiTransport) -> None:
        self.t = transport
        self.round = 0
        self.sent_at = 0.0
        self.interval = transport.deadlock_settle / 3
        self.answers: dict[int, tuple[int, int]] = {}  # speaker -> (round, token)
        self.agreed: tuple[int, ...] | None = None  # the tokens of the last full round
        self.answered: dict[int, tuple[tuple[int, ...], tuple[int, ...]]] = {}
        self.pending: list[tuple[Any, bytes]] = []  # sends in flight, with their bytes

    def _send(self, dest: int, kind: int, rnd: int, token: int) -> None:
        packet = _WATCH.pack(kind, rnd, token)
        self.pending.append((self.t._comm.Isend([packet, self.t._byte], dest, TAG_WATCH), packet))

    def _speakers(self) -> list[int]:
        """The lowest running rank of each other node that has one."""
        t, first = self.t, {}
        ids = t.node_ids or (0,) * t.size
        for r in range(t.size):
            if ids[r] != ids[t.rank] and ids[r] not in first and r not in t._closed_peers:
                first[ids[r]] = r
        return list(first.values())

    def service(self, watch: Watch) -> None:
        t = self.t
        self.pending = [(req, pkt) for req, pkt in self.pending if not req.Test()]
        status, buf = t._status, bytearray(_WATCH.size)
        speaks = watch.speaker() == watch.slot
        while (msg := t._comm.Improbe(t._MPI.ANY_SOURCE, TAG_WATCH, status)) is not None:
            src = status.Get_source()
            msg.Recv([buf, t._byte])
            kind, rnd, token = _WATCH.unpack(buf)
            if kind == PROBE:
                token = watch.token() if speaks and watch.still() else 0
                if token and watch.stable is not None:
                    if len(self.answered) > 8:
                        self.answered.clear()
                    self.answered[token] = watch.stable
                self._send(src, ANSWER, rnd, token)
            elif kind == ANSWER:
                self.answers[src] = (rnd, token)
            elif kind == VERDICT and token in self.answered:
                watch.condemn(self.answered[token])
        if speaks and watch.stable is not None:
            self._ask(watch)

    def _ask(self, watch: Watch) -> None:
        """This node stands still: run the rounds of probes; condemn when they agree."""
        stable = watch.stable
        assert stable is not None
        speakers = self._speakers()
        now = time.monotonic()
        got = [self.answers.get(s, (-1, 0)) for s in speakers]
        if self.round and all(rnd == self.round for rnd, _ in got):
            tokens = (watch.token(), *(token for _, token in got))
            if all(tokens) and tokens == self.agreed and watch.still():
                for s, (_, token) in zip(speakers, got, strict=True):
                    self._send(s, VERDICT, self.round, token)
                watch.condemn(stable)
                return
            self.agreed = tokens if all(tokens) else None
            self.interval = watch.settle / 3
        elif self.round and now - self.sent_at < self.interval:
            return  # answers may still come
        else:
            self.agreed = None
            if self.round:  # somebody did not answer: it is busy, ask it less often
                self.interval = min(self.interval * 2, MAX_PROBE_SECONDS)
        self.round += 1
        self.sent_at = now
        for s in speakers:
            self._send(s, PROBE, self.round, 0)

    def drain(self) -> None:
        """At the end: complete our sends, and take (and drop) what other nodes sent."""
        t = self.t
        t._MPI.Request.Waitall([req for req, _ in self.pending])
        self.pending = []
        buf = bytearray(_WATCH.size)
        while (msg := t._comm.Improbe(t._MPI.ANY_SOURCE, TAG_WATCH, t._status)) is not None:
            msg.Recv([buf, t._byte])


def _always() -> bool:
    return True


def _alive(pid: int) -> bool:
    """Whether process ``pid`` (a rank of this node) still exists."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


# ---- start-up -------------------------------------------------------------------------------
def import_mpi(why: str) -> Any:
    """``mpi4py.MPI``, initialised with full thread support.

    Args:
        why: what made treecast look for MPI (a launcher's variable), for the errors.

    Raises:
        UnsupportedLauncherError: mpi4py is missing or MPI fails to start.
        TreecastError: MPI gives less than ``MPI_THREAD_MULTIPLE``.
    """
    try:
        from mpi4py import MPI
    except ImportError as exc:
        raise UnsupportedLauncherError(
            f"treecast.world(): {why}, so treecast runs on MPI, but mpi4py cannot be imported "
            f"({exc}); install it with: pip install 'treecast[mpi]' (or start the program "
            f"with 'treecast run -n N' on one machine)"
        ) from None
    except Exception as exc:  # mpi4py found no working MPI library
        raise UnsupportedLauncherError(
            f"treecast.world(): {why}, but MPI failed to initialise: {exc}"
        ) from None
    if getattr(MPI, "__name__", "") == "treecast.MPI":  # treecast's own stand-in
        raise UnsupportedLauncherError(
            f"treecast.world(): {why}, but 'mpi4py' here is treecast's stand-in (its "
            f"directory is on PYTHONPATH, inherited from a rank of 'treecast run' or "
            f"treecast.launch, or TREECAST_MPI4PY unset there): run MPI programs outside "
            f"treecast's ranks, or start that job with --real-mpi4py / TREECAST_MPI4PY=real"
        )
    if not MPI.Is_initialized():
        MPI.Init_thread(MPI.THREAD_MULTIPLE)
    level = MPI.Query_thread()
    if level < MPI.THREAD_MULTIPLE:
        names = {
            MPI.THREAD_SINGLE: "MPI_THREAD_SINGLE",
            MPI.THREAD_FUNNELED: "MPI_THREAD_FUNNELED",
            MPI.THREAD_SERIALIZED: "MPI_THREAD_SERIALIZED",
        }
        raise TreecastError(
            f"treecast.world(): MPI was initialised with {names.get(level, level)}; treecast "
            f"needs MPI_THREAD_MULTIPLE (its task pools and request threads call MPI from "
            f"several threads). Leave mpi4py's default (mpi4py.rc.thread_level = 'multiple', "
            f"MPI4PY_RC_THREAD_LEVEL unset) or use an MPI built with thread support."
        )
    return MPI


def start(why: str, environ: Mapping[str, str]) -> MpiTransport:
    """Join the MPI job: split it into nodes, let each node's leader make the node segment,
    attach every rank to its node's, and check on every rank that all of them did.
    Collective over ``COMM_WORLD``.

    Args:
        why: what made treecast use MPI, for the errors.
        environ: the process's environment (``TREECAST_FAKE_NODES``, ``TREECAST_RING_BYTES``).

    Raises:
        UnsupportedLauncherError, TreecastError: as :func:`import_mpi`.
        InvalidArgumentError: a bad ``TREECAST_FAKE_NODES`` (on every rank).
        TreecastError: a node segment could not be made or attached (on every rank, naming
            the rank and the cause).
    """
    MPI = import_mpi(why)
    world = MPI.COMM_WORLD.Dup()
    world.Set_name("treecast")
    rank, size = world.Get_rank(), world.Get_size()
    fake = fake_nodes(environ.get(ENV_FAKE_NODES, ""), size)
    if fake is None:
        node = world.Split_type(MPI.COMM_TYPE_SHARED, rank)
    else:
        node = world.Split(fake[rank], rank)
    members, pids = zip(*node.allgather((rank, os.getpid())), strict=True)
    first, hosts = zip(*world.allgather((members[0], socket.gethostname())), strict=True)
    number: dict[int, int] = {}
    node_ids = tuple(number.setdefault(f, len(number)) for f in first)
    job, segment, failure = node.bcast(
        _make_node_segment(len(members), rank, environ) if node.Get_rank() == 0 else None, 0
    )
    transport = None
    if failure is None:
        try:
            here = hosts.count(socket.gethostname())
            transport = MpiTransport(world, members, node_ids, segment, job, pids, here)
        except (OSError, ValueError) as exc:
            failure = (
                f"rank {rank} could not attach the node segment {segment} that rank "
                f"{members[0]} made ({exc}); are the ranks that MPI put on one node really "
                f"on one machine with one /dev/shm?"
            )
    failures = world.allgather(failure)
    leader = node.Get_rank() == 0
    node.Free()
    if leader and segment:  # every rank has attached (or given up): the name can go
        unlink_segment(segment)
    problems = sorted({f for f in failures if f})
    if problems:
        if transport is not None:
            transport.close()
        raise TreecastError("treecast.world(): cannot set up the nodes: " + "; ".join(problems))
    assert transport is not None
    return transport


def _make_node_segment(
    nlocal: int, rank: int, environ: Mapping[str, str]
) -> tuple[str, str, str | None]:
    """The leader's part of :func:`start`: ``(job, segment, None)``, or ``("", "", why)``
    when the segment cannot be made."""
    job = secrets.token_hex(8)
    try:
        cap = size_from_env(
            ENV_RING_BYTES,
            default_ring_capacity(nlocal),
            at_least=MIN_RING_CAPACITY,
            environ=environ,
        )
        need = world_bytes(nlocal, (cap + 63) // 64 * 64)
        room = os.statvfs("/dev/shm")
        free = room.f_bavail * room.f_frsize
        if need > free:
            return (
                "",
                "",
                f"rank {rank}: /dev/shm has {free >> 20} MiB free, the node segment of "
                f"{nlocal} ranks needs {need >> 20} MiB (give the node a larger /dev/shm, "
                f"or set {ENV_RING_BYTES} lower)",
            )
        return job, create_world_segment(job, nlocal, cap), None
    except (OSError, ValueError) as exc:
        return "", "", f"rank {rank} could not make its node segment: {exc}"


def abort_on_uncaught(transport: MpiTransport) -> None:
    """Make an uncaught exception end the whole MPI job, as ``python -m mpi4py`` does:
    print its traceback first, mark this rank dead on its node, then ``MPI_Abort``."""
    previous = sys.excepthook

    def hook(kind: type[BaseException], value: BaseException, tb: Any) -> None:
        try:
            previous(kind, value, tb)
            sys.stderr.flush()
            sys.stdout.flush()
            transport.mark_self_dead()
        finally:
            transport._MPI.COMM_WORLD.Abort(1)

    sys.excepthook = hook
