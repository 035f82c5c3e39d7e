"""What every transport must do, as checks that run against any of them.

Each check takes a *rank runner* ``make_ranks(n, body)``: it runs ``body(transport, die)``
on ``n`` ranks at once, each with its own endpoint, and returns each rank's return value
(None for a rank that died). ``die()`` makes the calling rank die as a crashed process
would, for the transport's kind of ranks (``os._exit`` for processes, ``kill`` for an
in-process world); it does not return. Ready-made runners are in :mod:`treecast.testing`.

The bodies talk on contexts of their own (even, far above any communicator's), so they can
run on a world whose communicators exist. Each check raises :class:`AssertionError` with a
message that says what the transport got wrong.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from typing import Any, NoReturn, Protocol

import numpy as np

from ..errors import (
    CommunicatorClosedError,
    MissingCapabilityError,
    ProcessFailedError,
    TruncationError,
)
from .base import ANY_SOURCE, ANY_TAG, PeerState, RecvOp, Transport
from .capabilities import NODE_MEMORY

Die = Callable[[], NoReturn]
Body = Callable[[Transport, Die], Any]

CTX = 1 << 40
"""A point-to-point context (even) that no communicator uses."""
OTHER_CTX = CTX + 2
TIMEOUT = 60.0
"""Longest any single wait of a check may take before it is a failure."""
DETECT_SECONDS = 5.0
"""How soon a wait on a dead or finished rank must raise."""


class RankRunner(Protocol):
    """Runs ``body(transport, die)`` on ``n`` ranks; returns each rank's result (None for
    a rank that called ``die``) and raises the first error a rank raised."""

    def __call__(self, n: int, body: Body) -> list[Any]: ...


def _send(t: Transport, dest: int, ctx: int, tag: int, frames: Sequence[Any]) -> None:
    """Send as the communicators do: the inline fast path first for one small frame."""
    views = [memoryview(f).cast("B") for f in frames]
    if len(views) == 1 and t.send_inline(dest, ctx, tag, views[0]):
        return
    t.wait_op(t.isend(dest, ctx, tag, views), TIMEOUT, "conformance send")


def _recv(t: Transport, source: int, ctx: int, tag: int, into: Any = None) -> RecvOp:
    recv = t.irecv(ctx, source, tag, None if into is None else memoryview(into).cast("B"))
    t.wait_op(recv, TIMEOUT, "conformance receive")
    return recv


def _recv_value(t: Transport, source: int, ctx: int, tag: int) -> int:
    """A message whose first 4 bytes hold an int; tries the inline fast path first."""
    got = t.recv_inline(ctx, source, tag)
    if got is not None:
        return int.from_bytes(got[0][:4], "little")
    recv = _recv(t, source, ctx, tag)
    return int.from_bytes(bytes(recv.frames[0][:4]), "little")


def _pattern(n: int, seed: int) -> np.ndarray:
    return ((np.arange(n, dtype=np.int64) * 7 + seed) % 251).astype(np.uint8)


# ---- per-pair ordering -------------------------------------------------------------------
ORDER_COUNT = 300


def _ordering(t: Transport, die: Die) -> Any:
    if t.rank == 0:
        for i in range(ORDER_COUNT):
            head = i.to_bytes(4, "little")
            if i % 50 == 0:  # several frames: never the inline path
                _send(t, 1, CTX, i % 3, [head, b"tail"])
            else:  # every 5th too large for any inline path
                _send(t, 1, CTX, i % 3, [head * (2000 if i % 5 == 0 else 1)])
        _send(t, 1, CTX, 9, [b"\xff\xff\xff\xff"])
        return None
    first = [_recv_value(t, 0, CTX, ANY_TAG) for _ in range(150)]
    rest = range(150, ORDER_COUNT)
    tag2 = [_recv_value(t, 0, CTX, 2) for i in rest if i % 3 == 2]
    others = [_recv_value(t, 0, CTX, ANY_TAG) for i in rest if i % 3 != 2]
    last = _recv_value(t, 0, CTX, 9)
    return first, tag2, others, last


def check_ordering(make_ranks: RankRunner) -> None:
    """Messages between a pair in one context are received in send order, across the inline
    and the general paths; a tag-selective receive skips other tags but keeps their order."""
    first, tag2, others, last = make_ranks(2, _ordering)[1]
    rest = range(150, ORDER_COUNT)
    assert first == list(range(150)), f"ANY_TAG receives out of send order: {first}"
    assert tag2 == [i for i in rest if i % 3 == 2], f"tag-2 receives out of order: {tag2}"
    assert others == [i for i in rest if i % 3 != 2], f"skipped messages out of order: {others}"
    assert last == 0xFFFFFFFF, f"the last message (tag 9) was not last-but-matched: {last:#x}"


# ---- (context, tag) matching ---------------------------------------------------------------
def _matching(t: Transport, die: Die) -> Any:
    if t.rank == 0:
        _recv(t, 1, CTX, 21)  # rank 1 has posted its tag-20 receive
        for ctx, tag, data in (
            (CTX, 1, b"a"),
            (OTHER_CTX, 1, b"b"),
            (CTX, 5, b"x"),
            (CTX, 7, b"y"),
            (CTX, 20, b"to the posted receive"),
        ):
            _send(t, 1, ctx, tag, [data])
        sync = t.isend(1, CTX, 11, [memoryview(b"sync")], sync=True)
        for _ in range(100):
            t.progress()
            time.sleep(0.001)
        early = sync.done
        _send(t, 1, CTX, 12, [b"now"])
        t.wait_op(sync, TIMEOUT, "conformance synchronous send")
        return early
    posted = t.irecv(CTX, 0, 20)
    _send(t, 0, CTX, 21, [b"posted"])
    got = []
    for ctx, tag in (
        (OTHER_CTX, 1),
        (CTX, ANY_TAG),
        (CTX, 7),
        (CTX, ANY_TAG),
        (CTX, 12),
        (CTX, 11),
    ):
        got.append(bytes(_recv(t, 0, ctx, tag).frames[0]))
    t.wait_op(posted, TIMEOUT, "conformance posted receive")
    got.append(bytes(posted.frames[0]))
    return got


def check_matching(make_ranks: RankRunner) -> None:
    """Receives match on (context, tag): contexts never cross, ANY_TAG takes the first
    message of its context, a receive posted before the message arrives claims it, and a
    synchronous send completes only once a receive has matched it."""
    early, got = make_ranks(2, _matching)
    want = [b"b", b"a", b"y", b"x", b"now", b"sync", b"to the posted receive"]
    assert got == want, f"matching by (context, tag) gave {got}, expected {want}"
    assert early is False, "a synchronous send completed before any receive matched it"


# ---- ANY_SOURCE ------------------------------------------------------------------------------
PER_SENDER = 40


def _any_source(t: Transport, die: Die) -> Any:
    if t.rank:
        for i in range(PER_SENDER):
            _send(t, 0, CTX, 3, [(t.rank * 1000 + i).to_bytes(4, "little") * (1 + i % 3 * 700)])
        return None
    seen = []
    for _ in range(PER_SENDER * 2):  # from ranks 1 and 2 (the world may have more ranks)
        recv = _recv(t, ANY_SOURCE, CTX, 3)
        seen.append((recv.src, int.from_bytes(bytes(recv.frames[0][:4]), "little")))
    return seen


def check_any_source(make_ranks: RankRunner) -> None:
    """A receive from ANY_SOURCE takes messages of every sender, reports the sender, and keeps
    each sender's order."""
    seen = make_ranks(3, _any_source)[0]
    wrong = [(src, v) for src, v in seen if v // 1000 != src]
    assert not wrong, f"ANY_SOURCE receives report the wrong source: {wrong[:5]}"
    for src in (1, 2):
        mine = [v % 1000 for s, v in seen if s == src]
        assert mine == list(range(PER_SENDER)), f"rank {src}'s messages out of order: {mine}"


# ---- truncation ------------------------------------------------------------------------------
def _truncation(t: Transport, die: Die) -> Any:
    if t.rank == 0:
        _send(t, 1, CTX, 1, [bytes(range(100))])
        _send(t, 1, CTX, 2, [_pattern(100_000, 1)])
        _send(t, 1, CTX, 3, [b"ok"])
        return None
    outcome: list[Any] = []
    for tag, size in ((1, 10), (2, 50_000)):
        buf = bytearray(b"\xee" * size)
        recv = t.irecv(CTX, 0, tag, memoryview(buf))
        t.wait_op(recv, TIMEOUT, "conformance truncated receive")
        outcome.append((isinstance(recv.error, TruncationError), buf == b"\xee" * size))
    outcome.append(bytes(_recv(t, 0, CTX, 3).frames[0]) == b"ok")
    return outcome


def check_truncation(make_ranks: RankRunner) -> None:
    """A message larger than the receive buffer sets TruncationError on the receive, writes
    nothing into the buffer, and leaves the stream intact for the next message."""
    (small, small_clean), (large, large_clean), after = make_ranks(2, _truncation)[1]
    assert small and large, "a too-large message did not set TruncationError on the receive"
    assert small_clean and large_clean, "a truncated receive wrote into the receive buffer"
    assert after, "the message after a truncated one was lost or corrupted"


# ---- large frames ----------------------------------------------------------------------------
LARGE = (5 << 20) + 3
MULTI = (0, (3 << 20) + 1, 1, 0, 70_000)
BOTH_WAYS = 8 << 20


def _large_frames(t: Transport, die: Die) -> Any:
    peer = 1 - t.rank
    if t.rank == 0:
        big = _pattern(LARGE, 3)
        op = t.isend(1, CTX, 1, [big.data])
        t.wait_op(op, TIMEOUT, "conformance large send")
        big[:] = 0  # the send is done: the receiver must still get the original bytes
        frames = [_pattern(n, n) for n in MULTI]
        t.wait_op(t.isend(1, CTX, 2, [f.data for f in frames]), TIMEOUT, "multi send")
        _send(t, 1, CTX, 3, [b""])
    ok = {}
    if t.rank == 1:
        out = np.empty(LARGE, np.uint8)
        recv = _recv(t, 0, CTX, 1, out)
        ok["large into a buffer"] = recv.nbytes == LARGE and np.array_equal(out, _pattern(LARGE, 3))
        recv = _recv(t, 0, CTX, 2)
        ok["multi-frame object"] = [f.nbytes for f in recv.frames] == list(MULTI) and all(
            np.array_equal(np.frombuffer(f, np.uint8), _pattern(n, n))
            for f, n in zip(recv.frames, MULTI, strict=True)
        )
        recv = _recv(t, 0, CTX, 3)
        ok["zero-length"] = recv.nbytes == 0 and [f.nbytes for f in recv.frames] == [0]
    # both at once: neither may wait for the other to receive first
    mine = _pattern(BOTH_WAYS, 10 + t.rank)
    theirs = np.empty(BOTH_WAYS, np.uint8)
    ops = [t.isend(peer, CTX, 4, [mine.data]), t.irecv(CTX, peer, 4, theirs.data)]
    t.waitall(ops, TIMEOUT, "conformance exchange")
    ok["both ways at once"] = np.array_equal(theirs, _pattern(BOTH_WAYS, 10 + peer))
    return ok


def check_large_frames(make_ranks: RankRunner) -> None:
    """Messages of several MiB, of several frames (zero-length ones included) and of zero
    bytes arrive intact; a sender may reuse its buffer once its send is done; two ranks that
    send large messages to each other at once do not deadlock."""
    for rank, ok in enumerate(make_ranks(2, _large_frames)):
        bad = [name for name, good in ok.items() if not good]
        assert not bad, f"rank {rank} received corrupted or misframed messages: {bad}"


# ---- death of a peer -------------------------------------------------------------------------
def _peer_death(t: Transport, die: Die) -> Any:
    if t.rank == 1:
        _send(t, 0, CTX, 1, [b"last words"])
        die()
    words = bytes(_recv(t, 1, CTX, 1).frames[0])
    start = time.monotonic()
    try:
        _recv(t, 1, CTX, 2)
    except ProcessFailedError as exc:
        return words, exc.ranks, str(exc), time.monotonic() - start, t.peer_state(1)
    return words, (), "no error", time.monotonic() - start, t.peer_state(1)


def check_peer_death(make_ranks: RankRunner) -> None:
    """What a rank sent before it died is still received; then a receive from it raises
    ProcessFailedError naming it within a few seconds, and its state reads DEAD."""
    results = make_ranks(2, _peer_death)
    assert results[1] is None, f"the dying rank returned {results[1]!r}"
    words, ranks, message, elapsed, state = results[0]
    assert words == b"last words", f"the message sent before dying was lost: {words!r}"
    assert 1 in ranks and "1" in message, (
        f"a receive from a dead rank raised {message!r} naming ranks {ranks}, not rank 1"
    )
    assert elapsed < DETECT_SECONDS, f"the death was noticed after {elapsed:.1f} s"
    assert state is PeerState.DEAD, f"a dead rank's state reads {state}"


# ---- close -----------------------------------------------------------------------------------
def _close(t: Transport, die: Die) -> Any:
    if t.rank == 1:
        _send(t, 0, CTX, 1, [b"before close"])
        t.close()
        outcome = []
        for attempt in (
            lambda: t.isend(0, CTX, 2, [memoryview(b"after close")]),
            lambda: t.wait_op(t.irecv(CTX, 0, 3), 5.0, "receive on a closed transport"),
        ):
            try:
                attempt()
                outcome.append("no error")
            except CommunicatorClosedError:
                outcome.append("closed")
            except Exception as exc:  # reported by the check
                outcome.append(f"{type(exc).__name__}: {exc}")
        return outcome
    got = bytes(_recv(t, 1, CTX, 1).frames[0])
    start = time.monotonic()
    try:
        _recv(t, 1, CTX, 2)
    except ProcessFailedError as exc:
        return got, exc.ranks, str(exc), time.monotonic() - start, t.peer_state(1)
    return got, (), "no error", time.monotonic() - start, t.peer_state(1)


def check_close(make_ranks: RankRunner) -> None:
    """A closed transport's peers still receive what it sent, then see it FINISHED: a wait
    on it raises ProcessFailedError instead of hanging; the closed transport's own sends
    and waits raise CommunicatorClosedError."""
    (got, ranks, message, elapsed, state), own = make_ranks(2, _close)
    assert got == b"before close", f"a message sent before close was lost: {got!r}"
    assert 1 in ranks and "finished" in message, (
        f"a receive from a closed rank raised {message!r} naming ranks {ranks}"
    )
    assert elapsed < DETECT_SECONDS, f"the close was noticed after {elapsed:.1f} s"
    assert state is PeerState.FINISHED, f"a closed rank's state reads {state}"
    assert own == ["closed", "closed"], f"calls on a closed transport gave {own}"


# ---- node memory -----------------------------------------------------------------------------
def _node_memory(t: Transport, die: Die) -> Any:
    nodes = t.node_ids
    if nodes is not None and nodes[0] != nodes[1]:
        return "apart", ""  # node memory is per node: ranks 0 and 1 share none
    if NODE_MEMORY not in t.capabilities:
        try:
            t.node_memory("the conformance check")
        except MissingCapabilityError as exc:
            return "refused", str(exc)
        return "given", ""
    memory = t.node_memory()
    if t.rank == 0:
        name, mm = memory.create("conformance", 8192)
        mm[:5] = b"first"
        _send(t, 1, CTX, 1, [name.encode()])
        _recv(t, 1, CTX, 2)  # rank 1 has mapped it and written its part
        memory.unlink(name)
        seen = bytes(mm[4096:4101])
        _send(t, 1, CTX, 3, [b"unlinked"])
        mm.close()
        return "made", seen
    name = bytes(_recv(t, 0, CTX, 1).frames[0]).decode()
    mm = memory.attach(name)
    seen = bytes(mm[:5])
    mm[4096:4101] = b"reply"
    _send(t, 0, CTX, 2, [b"mapped"])
    _recv(t, 0, CTX, 3)
    try:
        memory.attach(name)
        gone = False
    except FileNotFoundError:
        gone = True
    mm.close()
    return "mapped", (seen, gone)


def check_node_memory(make_ranks: RankRunner) -> None:
    """A transport with the ``node_memory`` capability gives every rank the same memory by
    name: what one rank writes the other reads, and an unlinked name cannot be attached any
    more. Without the capability, ``node_memory()`` raises MissingCapabilityError naming it.
    (Ranks 0 and 1 on different nodes of the transport share no node memory: nothing to
    check.)"""
    first, second = make_ranks(2, _node_memory)
    if first[0] == "apart":
        assert second[0] == "apart", f"ranks 0 and 1 disagree on their nodes: {second}"
        return
    if first[0] in ("refused", "given"):
        for kind, message in (first, second):
            assert kind == "refused", "node_memory() gave memory without the capability"
            assert repr(NODE_MEMORY) in message, f"the refusal does not name it: {message}"
        return
    assert first == ("made", b"reply"), f"rank 0 made a segment and read back {first[1]!r}"
    assert second == ("mapped", (b"first", True)), (
        f"rank 1 read {second[1][0]!r} from rank 0's segment; attaching after unlink "
        f"{'failed' if second[1][1] else 'succeeded'}"
    )


CHECKS: tuple[Callable[[RankRunner], None], ...] = (
    check_ordering,
    check_matching,
    check_any_source,
    check_truncation,
    check_large_frames,
    check_peer_death,
    check_close,
    check_node_memory,
)
"""Every check, in the order :func:`check_transport` runs them."""


def check_transport(make_ranks: RankRunner) -> None:
    """Run every conformance check against the ranks ``make_ranks`` makes.

    Raises:
        AssertionError: the first check that fails, saying what went wrong.
    """
    for check in CHECKS:
        check(make_ranks)
