"""Node memory, the ``node_memory`` capability: segments come from the transport, and the
node-level paths (shared arrays, ``copy=False``, the node arenas) need it."""

import os
import secrets
import stat

import numpy as np
import pytest

import treecast
from treecast.comm import Comm
from treecast.engine import share_pool
from treecast.testing import inproc_ranks
from treecast.transports import capabilities
from treecast.transports.base import PeerState, SendOp, Transport
from treecast.transports.conformance import check_node_memory
from treecast.transports.inproc import InprocTransport
from treecast.transports.node_memory import InprocNodeMemory, NodeMemory, ShmNodeMemory
from treecast.transports.single import SingleRankTransport

pytestmark = pytest.mark.timeout(120)

needs_memfd = pytest.mark.skipif(not hasattr(os, "memfd_create"), reason="no memfd_create")


def _create_attach_unlink(memory: NodeMemory) -> str:
    """Exercise one segment of ``memory`` the way sharing does; return its name."""
    name, mm = memory.create("array", 3 * 4096)
    try:
        assert bytes(mm[:8]) == bytes(8)  # zeroed
        other = memory.attach(name)
        mm[:5] = b"hello"
        assert bytes(other[:5]) == b"hello"  # one memory, two mappings
        other[4096:4099] = b"abc"
        assert bytes(mm[4096:4099]) == b"abc"
        tail = memory.attach(name, offset=4096, nbytes=4096, writable=False)
        assert len(tail) == 4096 and bytes(tail[:3]) == b"abc"
        with pytest.raises(TypeError):
            tail[0:1] = b"x"  # read-only
        with pytest.raises(ValueError, match="outside segment"):
            memory.attach(name, offset=4096, nbytes=3 * 4096)
    finally:
        assert memory.unlink(name)
    # unlinked: no new mapping, the old ones stay valid
    with pytest.raises(FileNotFoundError):
        memory.attach(name)
    assert not memory.unlink(name)
    assert bytes(other[:5]) == b"hello" and bytes(tail[:3]) == b"abc"
    empty_name, empty = memory.create("array", 0)  # a 0-byte segment maps one byte
    assert len(empty) == 1 and memory.unlink(empty_name)
    with pytest.raises(ValueError, match="-1"):
        memory.create("array", -1)
    for m in (mm, other, tail, empty):
        m.close()
    return name


def test_shm_node_memory_makes_job_segments_in_dev_shm():
    job = f"test{secrets.token_hex(4)}"
    memory = ShmNodeMemory(job)
    name, mm = memory.create("bcast", 100)
    try:
        # the name the launcher's reaper sweeps: treecast-<job>-* in /dev/shm, mode 0600
        assert name.startswith(f"/treecast-{job}-bcast-")
        mode = os.stat("/dev/shm" + name).st_mode
        assert stat.S_IMODE(mode) == 0o600
    finally:
        memory.unlink(name)
        mm.close()
    name = _create_attach_unlink(memory)
    assert name.startswith(f"/treecast-{job}-array-")
    assert not [e for e in os.listdir("/dev/shm") if e.startswith(f"treecast-{job}-")]


@needs_memfd
def test_inproc_node_memory_names_segments_inside_the_process():
    memory = InprocNodeMemory()
    before = set(os.listdir("/dev/shm"))
    name, mm = memory.create("array", 10)
    assert memory.names() == [name]
    assert set(os.listdir("/dev/shm")) == before  # nothing named outside the process
    memory.unlink(name)
    mm.close()
    _create_attach_unlink(memory)
    assert memory.names() == []
    with pytest.raises(FileNotFoundError, match="no in-process segment 'nope'"):
        memory.attach("nope")


def test_the_transports_with_node_memory_give_it_out():
    single = SingleRankTransport("job1")
    assert capabilities.NODE_MEMORY in single.capabilities
    memory = single.node_memory()
    assert isinstance(memory, ShmNodeMemory) and memory.job == "job1"
    assert SingleRankTransport().node_memory().job == f"solo{os.getpid()}"


@needs_memfd
def test_an_inproc_world_shares_one_node_memory():
    def body(t, die):
        return t.node_memory()

    memories = inproc_ranks(3, body)
    assert isinstance(memories[0], InprocNodeMemory)
    assert all(m is memories[0] for m in memories)


class _NoNodeMemory(Transport):
    """A world of one whose transport offers no node memory."""

    capabilities = frozenset({capabilities.INLINE_SMALL})

    def __init__(self) -> None:
        super().__init__(0, 1)

    def _start_send(self, op: SendOp) -> None:
        raise AssertionError("a world of one sends only to itself")

    def _poll(self) -> bool:
        return False

    def peer_state(self, rank: int) -> PeerState:
        return PeerState.RUNNING

    def close(self) -> None:
        super().close()


def test_without_node_memory_the_node_level_paths_raise_naming_the_capability():
    t = _NoNodeMemory()
    comm = Comm(t, range(1), 0, "world")
    expected = r"rank 0: {} needs the 'node_memory' capability, which the _NoNodeMemory transport"
    with pytest.raises(treecast.MissingCapabilityError, match=expected.format("node memory")):
        t.node_memory()
    with pytest.raises(treecast.MissingCapabilityError, match=expected.format("shared_array")):
        treecast.shared_array(comm, 10)
    with pytest.raises(treecast.MissingCapabilityError, match=r"bcast\(copy=False\) needs"):
        comm.bcast({"w": np.ones(10)}, copy=False)
    assert "_share_pool" not in comm.__dict__  # refused before a pool was made
    # the paths that do not need it still work
    assert comm.bcast({"w": 1}) == {"w": 1}


@needs_memfd
def test_inproc_ranks_without_node_memory_fall_back_and_refuse_sharing(monkeypatch):
    monkeypatch.setattr(
        InprocTransport,
        "capabilities",
        InprocTransport.capabilities - {capabilities.NODE_MEMORY},
    )

    def body(t, die):
        comm = Comm(t, range(t.size), 0, "world")
        n = 300_001
        buf = np.arange(n, dtype=np.uint8) if comm.rank == 0 else np.zeros(n, np.uint8)
        # forced, but the transport cannot: a message algorithm does it instead
        comm.Bcast(buf, root=0, algorithm="shm_one_write")
        ok = bool((buf == np.arange(n, dtype=np.uint8)).all())
        ok = ok and getattr(comm, "_node_arena", None) is None
        try:
            comm.bcast(np.ones(5), copy=False)
        except treecast.MissingCapabilityError as exc:
            return ok, str(exc)
        return ok, None

    for rank, (ok, error) in enumerate(inproc_ranks(2, body)):
        assert ok
        assert f"rank {rank}: bcast(copy=False) needs the 'node_memory' capability" in error
    check_node_memory(inproc_ranks)  # the conformance check's refusal branch


def _node_level_calls(t, die):
    comm = Comm(t, range(t.size), 0, "world")
    r, p = comm.rank, comm.size
    a = treecast.shared_array(comm, (p, 100), np.int64)
    comm.barrier()
    a[r, :] = r + 1  # disjoint rows, seen by every rank
    comm.barrier()
    ok = bool((a == (np.arange(p) + 1)[:, None]).all())
    kept = {}
    for i in range(6):
        root = i % p
        payload = {"w": np.full(70_000, i, np.float64)} if r == root else None
        got = comm.bcast(payload, root=root, copy=False)
        ok = ok and bool((got["w"] == i).all()) and not got["w"].flags.writeable
        if i == 1:
            kept[i] = got  # held: later broadcasts must not overwrite it
    ok = ok and bool((kept[1]["w"] == 1).all())
    del got, kept
    comm.bcast(None, root=0, copy=False)  # sweeps: every view is gone now
    held = [seg.words[1 + r] for seg in share_pool.pool_of(comm).segments.values()]
    n = 1_500_001
    buf = np.arange(n, dtype=np.uint8) if r == 0 else np.zeros(n, np.uint8)
    comm.Bcast(buf, root=0, algorithm="shm_one_write")
    ok = ok and bool((buf == np.arange(n, dtype=np.uint8)).all())
    out = np.empty(200_001)
    comm.Allreduce(np.arange(200_001, dtype=np.float64) + r, out, algorithm="shm_reduce")
    ok = ok and bool((out == np.arange(200_001) * p + p * (p - 1) / 2).all())
    # a communicator of one has nothing to share: no arena (plans never go node-level)
    ok = ok and (getattr(comm, "_node_arena", None) is not None) == (p > 1)
    comm.barrier()
    return ok, held, t.node_memory().names()


@needs_memfd
@pytest.mark.parametrize("n", [1, 3])
def test_the_node_level_paths_run_on_inproc_ranks(n):
    """Shared arrays, the copy=False pool and both node arenas, on threads over inproc node
    memory: no segment stays named, and no rank still holds a pooled segment."""
    for ok, held, named in inproc_ranks(n, _node_level_calls):
        assert ok
        assert held == [0] * len(held)
        assert named == []
