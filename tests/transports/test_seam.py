"""The transport seam: abstract base, capabilities, registry, in-process fault injection."""

import os
import sys
import time

import cloudpickle
import pytest

import treecast
from treecast.errors import (
    CommunicatorClosedError,
    InvalidArgumentError,
    ProcessFailedError,
    RemoteError,
)
from treecast.testing import run_ranks
from treecast.transports import capabilities, registry
from treecast.transports.base import ANY_SOURCE, PeerState, Transport
from treecast.transports.inproc import InprocTransport, InprocWorld
from treecast.transports.shm import ShmTransport
from treecast.transports.single import SingleRankTransport

pytestmark = pytest.mark.timeout(120)
CTX = 1 << 40


def test_transport_is_abstract_and_names_what_is_missing():
    with pytest.raises(TypeError, match="abstract"):
        Transport(0, 1)

    class NoLiveness(Transport):
        def _start_send(self, op):
            pass

        def _poll(self):
            return False

        def close(self):
            super().close()

    with pytest.raises(TypeError, match="peer_state"):
        NoLiveness(0, 2)


def test_capabilities_are_declared_names():
    for cls in (ShmTransport, InprocTransport, SingleRankTransport):
        assert cls.capabilities <= capabilities.ALL, cls
    assert {
        capabilities.NODE_MEMORY,
        capabilities.INLINE_SMALL,
        capabilities.FAILURE_DETECTION,
    } <= (ShmTransport.capabilities)
    # node memory in process needs memfd_create (Linux)
    node = {capabilities.NODE_MEMORY} if hasattr(os, "memfd_create") else set()
    assert InprocTransport.capabilities == {
        capabilities.INLINE_SMALL,
        capabilities.FAILURE_DETECTION,
        *node,
    }


def test_registry_names_and_clear_errors():
    assert {"shm", "inproc"} <= set(registry.names())
    assert "inproc" not in registry.selectable()
    with pytest.raises(InvalidArgumentError, match=r"TREECAST_TRANSPORT='bogus'.*known: .*shm"):
        registry.check("bogus")
    with pytest.raises(InvalidArgumentError, match=r"'inproc' cannot be chosen.*InprocWorld"):
        registry.make("inproc", 0, 2, {})
    with pytest.raises(InvalidArgumentError, match="already registered"):
        registry.register("shm", None, unavailable="twice")


def _env_and_capabilities():
    t = treecast.world()._t
    return os.environ["TREECAST_TRANSPORT"], sorted(t.capabilities), type(t).__name__


def test_launched_ranks_get_the_default_transport():
    for name, caps, kind in run_ranks(_env_and_capabilities, 2, timeout=60):
        assert (name, kind) == ("shm", "ShmTransport")
        assert {"node_memory", "inline_small", "failure_detection"} <= set(caps)


def test_unknown_transport_is_refused_before_any_rank_starts(monkeypatch):
    monkeypatch.setenv("TREECAST_TRANSPORT", "bogus")
    with pytest.raises(InvalidArgumentError, match=r"'bogus'.*shm"):
        treecast.launch(os.getpid, 2, timeout=30)


def _second_fails():
    if treecast.world().rank == 1:
        raise ValueError("rank 1 gives up")
    return "fine"


def test_launch_keep_going_returns_the_failed_ranks_error_in_place():
    me = sys.modules[__name__]  # ship this test module's function by value to the ranks
    cloudpickle.register_pickle_by_value(me)
    try:
        ok, failed = treecast.launch(_second_fails, 2, timeout=60, keep_going=True)
    finally:
        cloudpickle.unregister_pickle_by_value(me)
    assert ok == "fine"
    assert isinstance(failed, RemoteError) and "rank 1 gives up" in str(failed)


def test_inproc_ranks_driven_round_robin_from_one_thread():
    world = InprocWorld(3)
    # a ring: every rank posts its receive and its send, nobody blocks
    recvs = [t.irecv(CTX, (t.rank - 1) % 3, 5) for t in world]
    sends = [
        t.isend((t.rank + 1) % 3, CTX, 5, [memoryview(bytes([t.rank]) * 10_000)]) for t in world
    ]
    while not all(op.done for op in recvs + sends):
        assert world.progress(), "no progress although messages were in flight"
    assert [bytes(r.frames[0][:1]) for r in recvs] == [b"\x02", b"\x00", b"\x01"]
    assert not world.progress()  # nothing left: progress says so instead of blocking


def test_inproc_dropped_message_never_arrives_and_the_next_one_does():
    world = InprocWorld(2)
    a, b = world
    world.drop(0, 1, tag=1)
    a.isend(1, CTX, 1, [memoryview(b"lost")])
    a.isend(1, CTX, 2, [memoryview(b"kept")])
    lost, kept = b.irecv(CTX, 0, 1), b.irecv(CTX, 0, 2)
    world.progress()
    assert kept.done and bytes(kept.frames[0]) == b"kept"
    assert not lost.done
    with pytest.raises(InvalidArgumentError, match="count must be an int >= 1, got 0"):
        world.drop(0, 1, 0)


def test_inproc_kill_and_finish_are_visible_to_peers():
    world = InprocWorld(3)
    a, b, c = world
    b.isend(0, CTX, 1, [memoryview(b"sent before dying")])
    a.isend(1, CTX, 1, [memoryview(b"to a dead rank")])
    world.kill(1)
    assert [a.peer_state(r) for r in range(3)] == [
        PeerState.RUNNING,
        PeerState.DEAD,
        PeerState.RUNNING,
    ]
    assert not any(b._inbox)  # what was queued for the dead rank is gone
    got = a.irecv(CTX, ANY_SOURCE, 1)
    a.progress()
    assert bytes(got.frames[0]) == b"sent before dying"
    with pytest.raises(ProcessFailedError, match="rank 1 has been killed"):
        b.progress()
    with pytest.raises(ProcessFailedError, match=r"rank\(s\) 1 died"):
        a.wait_op(a.irecv(CTX, 1, 2), timeout=5)
    world.finish(2)
    assert a.peer_state(2) is PeerState.FINISHED and a.peer_finished(2)
    with pytest.raises(CommunicatorClosedError):
        c.progress()
    with pytest.raises(InvalidArgumentError, match="rank must be an int in"):
        world.kill(3)


def test_a_wait_on_a_closed_transport_raises():
    t = SingleRankTransport()
    recv = t.irecv(CTX, 0, 1)
    t.close()
    assert t.peer_state(0) is PeerState.FINISHED
    with pytest.raises(CommunicatorClosedError, match="closed"):
        t.wait_op(recv, timeout=5)


def test_what_a_rank_sent_just_before_dying_completes_the_wait():
    world = InprocWorld(2)
    a, b = world
    recv = a.irecv(CTX, 1, 1)
    start = time.monotonic()

    def send_then_die():
        # runs inside a's wait, after its poll: the message arrives while a sleeps
        if time.monotonic() - start < 0.3:
            return False
        b.isend(0, CTX, 1, [memoryview(b"last words")])
        world.kill(1)
        return True

    a.add_background(send_then_die)
    a.wait_op(recv, timeout=10)
    assert bytes(recv.frames[0]) == b"last words"
