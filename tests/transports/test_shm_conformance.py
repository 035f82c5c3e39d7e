"""Transport conformance on the shared-memory transport, with real processes."""

import numpy as np
import pytest

import treecast
from treecast.testing import run_ranks

pytestmark = pytest.mark.timeout(180)


def _ordering():
    comm = treecast.world()
    if comm.rank == 0:
        for i in range(500):
            comm.send(i, 1, tag=i % 3)
        comm.send("last", 1, tag=9)
        return None
    got = [comm.recv(source=0, tag=treecast.ANY_TAG) for _ in range(300)]
    # tag-selective receives skip over other tags but keep per-tag order
    n2 = sum(1 for i in range(300, 500) if i % 3 == 2)
    tag2 = [comm.recv(source=0, tag=2) for _ in range(n2)]
    rest = [comm.recv(source=0) for _ in range(200 - n2)]
    last = comm.recv(source=0, tag=9)
    return got, tag2, rest, last


def test_messages_between_a_pair_arrive_in_order():
    _, (got, tag2, rest, last) = run_ranks(_ordering, 2)
    assert got == list(range(300))
    assert tag2 == [i for i in range(300, 500) if i % 3 == 2]
    assert rest == [i for i in range(300, 500) if i % 3 != 2]
    assert last == "last"


SIZES = [0, 1, 7, 4095, 4096, 4097, 65_539, (1 << 20) - 1, (1 << 20) + 1, (16 << 20) + 5, 256 << 20]


def _sizes(sizes):
    comm = treecast.world()
    status = treecast.Status()
    counts = []
    for n in sizes:
        if comm.rank == 0:
            buf = np.ascontiguousarray((np.arange(n) * 7 + n) % 251, dtype=np.uint8)
            comm.Send(buf, 1, tag=5)
            comm.send(buf[: min(n, 100_000)].tobytes(), 1, tag=6)
        else:
            out = np.empty(n, np.uint8)
            comm.Recv(out, 0, tag=5, status=status)
            expect = ((np.arange(n) * 7 + n) % 251).astype(np.uint8)
            assert np.array_equal(out, expect), n
            obj = comm.recv(source=0, tag=6)
            assert obj == expect[: min(n, 100_000)].tobytes()
            counts.append(status.count)
    return counts


def test_every_size_from_zero_to_256_mib_arrives_intact():
    assert run_ranks(_sizes, 2, SIZES)[1] == SIZES


def _many_to_one(per_rank):
    comm = treecast.world()
    if comm.rank != 0:
        for i in range(per_rank):
            if i % 10 == 0:
                comm.Send(np.full(5000, comm.rank * 1000 + i, dtype=np.int64), 0, tag=1)
            else:
                comm.send((comm.rank, i), 0, tag=1)
        return None
    seen = {r: [] for r in range(1, comm.size)}
    st = treecast.Status()
    for _ in range(per_rank * (comm.size - 1)):
        comm.probe(treecast.ANY_SOURCE, 1, st)
        src = st.source
        if st.count == 5000 * 8:
            buf = np.empty(5000, np.int64)
            comm.Recv(buf, src, 1)
            assert (buf == buf[0]).all()
            seen[src].append(int(buf[0]) - src * 1000)
        else:
            msg = comm.recv(source=src, tag=1, status=st)
            assert msg[0] == st.source == src
            seen[src].append(msg[1])
    return seen


def test_many_senders_to_one_receiver_with_any_source():
    seen = run_ranks(_many_to_one, 4, 200)[0]
    for r in (1, 2, 3):
        assert seen[r] == list(range(200)), r


def _truncation():
    comm = treecast.world()
    if comm.rank == 0:
        comm.Send(np.arange(100, dtype=np.int32), 1)
        comm.Send(np.arange(10, dtype=np.int32), 1)
        return None
    guard = np.full(120, -1, dtype=np.int32)
    with pytest.raises(treecast.TruncationError, match="400 bytes"):
        comm.Recv(guard[:50], 0)
    untouched = bool((guard == -1).all())
    comm.Recv(guard[:50], 0)
    return untouched, guard[:10].tolist(), bool((guard[10:] == -1).all())


def test_recv_into_too_small_buffer_raises_and_writes_nothing():
    untouched, first, rest = run_ranks(_truncation, 2)[1]
    assert untouched and rest
    assert first == list(range(10))


def _exchange_large():
    comm = treecast.world()
    other = 1 - comm.rank
    a = np.full(4_000_000, comm.rank, dtype=np.int64)
    b = np.empty_like(a)
    comm.Send(a, other)  # both ranks send first: larger than the ring, must not deadlock
    comm.Recv(b, other)
    obj = comm.sendrecv({"x": np.full(3_000_000, comm.rank)}, other, source=other)
    return int(b[0]), int(b[-1]), int(obj["x"][0])


def test_simultaneous_large_sends_do_not_deadlock():
    assert run_ranks(_exchange_large, 2) == [(1, 1, 1), (0, 0, 0)]


def _nonblocking_and_self():
    comm = treecast.world()
    other = 1 - comm.rank
    reqs = [comm.isend({"i": i, "r": comm.rank}, other, tag=i) for i in range(20)]
    rreqs = [comm.irecv(source=other, tag=i) for i in reversed(range(20))]
    got = [r.wait() for r in rreqs]
    for r in reqs:
        r.wait()
    buf = np.zeros(3)
    rq = comm.Irecv(buf, source=comm.rank, tag=3)
    flag, _ = rq.test()
    comm.Send(np.array([1.0, 2.0, 3.0]), comm.rank, tag=3)
    rq.wait()
    me = comm.sendrecv("self", comm.rank, source=comm.rank)
    return [g["i"] for g in got], flag, buf.tolist(), me


def test_isend_irecv_requests_and_messages_to_self():
    for order, flag, buf, me in run_ranks(_nonblocking_and_self, 2):
        assert order == list(reversed(range(20)))
        assert flag is False
        assert buf == [1.0, 2.0, 3.0]
        assert me == "self"


def _bad_input():
    import threading

    comm = treecast.world()
    errors = []
    for call in (
        lambda: comm.send(1, dest=comm.size),
        lambda: comm.send(1, dest=-5),
        lambda: comm.send(1, dest=1, tag=-3),
        lambda: comm.recv(source=7),
        lambda: comm.bcast(1, root=comm.size),
        lambda: comm.Send(np.zeros(2), dest=1, tag=2**40),
    ):
        with pytest.raises(ValueError) as info:
            call()
        errors.append(str(info.value))
    with pytest.raises(TypeError, match="lock"):
        comm.send(threading.Lock(), 1 - comm.rank)
    with pytest.raises(TypeError, match="int"):
        comm.send(1, dest="1")
    # nothing of the failed calls was sent: the next message is the first valid one
    other = 1 - comm.rank
    comm.send(("ok", comm.rank), other)
    assert comm.recv(source=other) == ("ok", other)
    return errors


def test_invalid_ranks_tags_and_unpicklable_objects_raise_before_sending():
    errors = run_ranks(_bad_input, 2)[0]
    assert "dest=2" in errors[0] and "0 <= dest < 2" in errors[0]
    assert "dest=-5" in errors[1]
    assert "tag=-3" in errors[2]
    assert "source=7" in errors[3]
    assert "root=2" in errors[4]
    assert "tag=1099511627776" in errors[5]


def _segment_and_buffers():
    import os
    import stat

    comm = treecast.world()
    job = os.environ["TREECAST_JOB"]
    names = [n for n in os.listdir("/dev/shm") if n.startswith(f"treecast-{job}-")]
    modes = {n: stat.S_IMODE(os.stat(f"/dev/shm/{n}").st_mode) for n in names}
    other = 1 - comm.rank
    # any buffer-protocol object works: bytearray in, NumPy array out, and Sendrecv
    send = bytearray(f"from {comm.rank}".encode() * 3)
    recv = np.zeros(len(send), dtype=np.uint8)
    st = treecast.Status()
    comm.Sendrecv(send, other, 4, recv, other, 4, status=st)
    arr = np.arange(6, dtype=np.int32) * (comm.rank + 1)
    out = bytearray(24)
    comm.Sendrecv([arr, np.int32], other, 5, out, other, 5)
    return (
        modes,
        recv.tobytes().decode(),
        (st.source, st.tag, st.Get_count()),
        np.frombuffer(out, np.int32).tolist(),
    )


def test_world_segment_is_private_and_any_buffer_works():
    results = run_ranks(_segment_and_buffers, 2)
    modes = results[0][0]
    assert len(modes) == 1 and next(iter(modes)).endswith("-world")
    assert set(modes.values()) == {0o600}
    for rank, (_, text, status, ints) in enumerate(results):
        other = 1 - rank
        assert text == f"from {other}" * 3
        assert status == (other, 4, len(text))
        assert ints == [i * (other + 1) for i in range(6)]
