"""``comm.aio``: every blocking call as a coroutine, on real ranks (shared memory).

What is checked: the same results as the sync calls; the event loop keeps running while a
call waits for a slow rank; collectives on dup'd communicators run concurrently;
cancellation (a receive takes nothing, a send or collective still completes and the next
call is right); ``timeout=``, dead peers and bad arguments raise what the sync call
raises; an idle wait sleeps.
"""

import asyncio
import os
import time

import numpy as np
import pytest

import treecast
from treecast.aio import AsyncComm
from treecast.errors import RemoteError
from treecast.testing import run_ranks
from treecast.topology import binomial_tree

pytestmark = pytest.mark.timeout(120)


# ---- the same results as the sync calls --------------------------------------------------
async def _calls(comm, call):
    """Every collective and point-to-point call once; ``call(name, *args, **kw)`` makes it
    (sync or through ``comm.aio``). Returns what each gave, as plain values."""
    r, p = comm.rank, comm.size
    got = {}
    got["bcast"] = await call("bcast", {"x": [1, 2]} if r == 0 else None, root=0)
    got["gather"] = await call("gather", r * 10, root=1)
    got["scatter"] = await call("scatter", [q * q for q in range(p)] if r == 2 else None, root=2)
    got["allgather"] = await call("allgather", r)
    got["alltoall"] = await call("alltoall", [(r, d) for d in range(p)])
    got["reduce"] = await call("reduce", r + 1, root=0)
    got["allreduce"] = await call("allreduce", r + 1, op=treecast.MAX)
    got["scan"] = await call("scan", [r])
    got["exscan"] = await call("exscan", r + 1)
    got["barrier"] = await call("barrier")
    got["Barrier"] = await call("Barrier")
    buf = np.arange(6.0) if r == 0 else np.zeros(6)
    await call("Bcast", buf, root=0)
    big = np.arange(1 << 20, dtype=np.float64) if r == 1 else np.zeros(1 << 20)  # 8 MiB
    await call("Bcast", big, root=1)
    got["Bcast"] = [buf.tolist(), float(big.sum())]
    out = np.full(2 * p, -1) if r == 0 else None
    await call("Gather", np.full(2, r), out, root=0)
    got["Gather"] = None if out is None else out.tolist()
    counts, displs = [q + 1 for q in range(p)], [2 * q for q in range(p)]
    out = np.full(displs[-1] + counts[-1], -1.0)
    await call("Gatherv", np.full(r + 1, float(r)), [out, counts, displs, np.float64], root=0)
    await call("Allgatherv", np.full(r + 1, float(r)), [out, counts, displs, np.float64])
    got["Gatherv"] = out.tolist()
    mine = np.zeros(2, np.int64)
    await call("Scatter", np.arange(2 * p) if r == 1 else None, mine, root=1)
    got["Scatter"] = mine.tolist()
    part = np.zeros(r + 1)
    await call(
        "Scatterv",
        [np.arange(len(out), dtype=np.float64), counts, displs, np.float64],
        part,
        root=0,
    )
    got["Scatterv"] = part.tolist()
    every = np.zeros(p, np.int64)
    await call("Allgather", np.array([r * 3]), every)
    got["Allgather"] = every.tolist()
    back = np.zeros(p, np.int64)
    await call("Alltoall", np.arange(p) + 10 * r, back)
    sent = np.concatenate([np.full(d + 1, r * 10 + d) for d in range(p)])
    recv = np.zeros(p * (r + 1), np.int64)
    await call("Alltoallv", [sent, [d + 1 for d in range(p)]], [recv, [r + 1] * p])
    got["Alltoall"] = [back.tolist(), recv.tolist()]
    total = np.zeros(3)
    await call("Reduce", np.full(3, r + 1.0), total, root=2)
    big_sum = np.zeros(1 << 20)
    await call("Allreduce", np.full(1 << 20, r + 1.0), big_sum)  # node memory when blocking
    block = np.zeros(2)
    await call("Reduce_scatter_block", np.arange(2.0 * p) + r, block)
    mine_rs = np.zeros(r + 1)
    await call("Reduce_scatter", np.ones(sum(counts)), mine_rs)  # counts exchanged first
    prefix, before = np.zeros(2), np.full(2, -1.0)
    await call("Scan", np.full(2, r + 1.0), prefix)
    await call("Exscan", np.full(2, r + 1.0), before)
    got["reductions"] = [
        total.tolist(),
        float(big_sum[0]),
        float(big_sum[-1]),
        block.tolist(),
        mine_rs.tolist(),
        prefix.tolist(),
        before.tolist() if r else None,
    ]
    nxt, prv = (r + 1) % p, (r - 1) % p
    if r == 0:
        await call("send", {"to": 1}, 1, tag=5)
        await call("ssend", "sync", 2, tag=6)
        await call("Send", np.arange(4.0), 1, tag=7)
        await call("Ssend", np.arange(3.0), 2, tag=8)
        await call("bsend", "b", 1, tag=9)
        await call("Bsend", np.ones(2), 1, tag=10)
        await call("Rsend", np.ones(2), 2, tag=11)
    elif r == 1:
        st = treecast.Status()
        got["probe"] = await call("probe", 0, 5, st)
        got["probe_status"] = [st.source, st.tag]
        got["recv"] = [await call("recv", None, 0, 5, st), st.source, st.tag, st.count > 0]
        into = np.zeros(4)
        await call("Recv", into, 0, 7)
        msg = await call("mprobe", 0, 9)
        got["p2p"] = [into.tolist(), msg.recv()]
        await call("Recv", into, 0, 10)
    else:
        got["recv"] = await call("recv", source=0, tag=6)
        into = np.zeros(3)
        await call("Recv", into, source=0, tag=8)
        into2 = np.zeros(2)
        await call("Recv", into2, source=0, tag=11)
        got["p2p"] = [into.tolist(), into2.tolist()]
    got["sendrecv"] = await call("sendrecv", r, nxt, 1, None, prv, 1)
    both = np.zeros(2)
    await call("Sendrecv", np.full(2, float(r)), nxt, 2, both, prv, 2)
    again = np.full(3, float(r))
    await call("Sendrecv_replace", again, nxt, 3, prv, 3)
    got["Sendrecv"] = [both.tolist(), again.tolist()]
    ring = comm.Create_cart([p], periods=[True])
    around = np.zeros(2, np.int64)
    await call.on(ring)("Neighbor_allgather", np.array([r]), around)
    got["Neighbor_allgather"] = around.tolist()
    return got


class _Call:
    """Makes a call on a communicator, sync or through ``comm.aio`` (then awaited)."""

    def __init__(self, comm, aio):
        self.comm, self.aio = comm, aio

    def on(self, comm):
        return _Call(comm, self.aio)

    async def __call__(self, name, *args, **kw):
        if self.aio:
            return await getattr(self.comm.aio, name)(*args, **kw)
        return getattr(self.comm, name)(*args, **kw)


def _sync_and_aio():
    comm = treecast.world()
    want = asyncio.run(_calls(comm, _Call(comm, aio=False)))
    got = asyncio.run(_calls(comm, _Call(comm, aio=True)))
    return want, got


def test_every_call_gives_what_the_sync_call_gives():
    for rank, (want, got) in enumerate(run_ranks(_sync_and_aio, 3)):
        assert got == want, f"rank {rank}"
    assert want["bcast"] == {"x": [1, 2]} and want["allreduce"] == 3


def test_every_blocking_call_has_an_awaitable_form():
    blocking = {
        n
        for n in dir(treecast.Comm)
        if not n.startswith(("_", "I", "i", "Get", "Set", "Create", "Is_"))
        and callable(getattr(treecast.Comm, n))
    }
    not_calls = {
        "Abort", "Cart_map", "Clone", "Compare", "Dup", "Dup_with_info", "Free", "Graph_map",
        "Split", "Split_type", "Send_init", "Ssend_init", "Bsend_init", "Rsend_init",
        "Recv_init", "dup", "free", "py2f", "split", "toint", "algorithm_for",
    }  # fmt: skip
    missing = sorted(n for n in blocking - not_calls if not hasattr(AsyncComm, n))
    assert not missing
    assert asyncio.iscoroutinefunction(AsyncComm.Allreduce)
    assert "timeout" in str(__import__("inspect").signature(AsyncComm.Allreduce))


# ---- the loop keeps running ----------------------------------------------------------------
def _loop_not_blocked():
    comm = treecast.world()
    big = np.arange(1 << 20, dtype=np.float64)  # 8 MiB: node memory in the blocking form

    async def main():
        comm.barrier()
        ticks = 0

        async def ticker():
            nonlocal ticks
            while True:
                ticks += 1
                await asyncio.sleep(0.001)

        task = asyncio.create_task(ticker())
        await asyncio.sleep(0.01)
        if comm.rank == 0:
            time.sleep(0.5)  # the root is late (and blocks its own loop on purpose)
        start, before = time.monotonic(), ticks
        got = await comm.aio.bcast("late" if comm.rank == 0 else None, root=0)
        buf = big.copy() if comm.rank == 0 else np.zeros_like(big)
        if comm.rank == 0:
            time.sleep(0.3)
        await comm.aio.Bcast(buf, root=0)
        waited, during = time.monotonic() - start, ticks - before
        task.cancel()
        return got, bool(np.array_equal(buf, big)), waited, during

    return asyncio.run(main())


def test_the_loop_keeps_running_while_a_collective_waits_for_a_slow_rank():
    results = run_ranks(_loop_not_blocked, 3)
    assert all(got == "late" and same for got, same, _, _ in results)
    for _, _, waited, ticks in results[1:]:
        assert waited >= 0.5
        assert ticks >= 20, f"the ticker ran {ticks} times in {waited:.2f} s"


# ---- concurrent collectives on dup'd communicators --------------------------------------
def _concurrent():
    comm = treecast.world()
    one, two = comm.dup(), comm.dup()
    r = comm.rank

    async def main():
        if r == 0:
            # both in flight at once: one.allgather needs rank 1, which first finishes
            # two.allreduce, which needs this rank's part
            got = await asyncio.gather(one.aio.allgather(r), two.aio.allreduce(r + 1))
        else:
            second = await two.aio.allreduce(r + 1)
            first = await one.aio.allgather(r)
            got = [first, second]
        a, b = np.zeros(4), np.zeros(4) if r else np.ones(4)
        await asyncio.gather(one.aio.Allreduce(np.full(4, r + 1.0), a), two.aio.Bcast(b))
        return list(got), a.tolist(), b.tolist()

    return asyncio.run(main())


def test_collectives_on_two_dup_communicators_run_concurrently():
    for got, a, b in run_ranks(_concurrent, 2):
        assert got == [[0, 1], 3]
        assert a == [3.0] * 4 and b == [1.0] * 4


# ---- cancellation ------------------------------------------------------------------------
def _cancelled_receives():
    comm = treecast.world()
    r = comm.rank

    async def main():
        if r == 0:
            comm.barrier()  # 1: rank 1's first receive has been cancelled
            comm.send("first", 1, tag=7)
            comm.barrier()  # 2
            comm.send("second", 1, tag=7)
            comm.barrier()  # 3: it has arrived, and rank 1 cancels before it looks
            comm.barrier()  # 4: rank 1's Recv has been cancelled
            comm.Send(np.arange(5.0), 1, tag=8)
            for i in range(300):
                await comm.aio.send(i, 1, tag=9)
            return None
        got = []
        task = asyncio.create_task(comm.aio.recv(source=0, tag=7))
        await asyncio.sleep(0.05)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        comm.barrier()  # 1
        got.append(await comm.aio.recv(source=0, tag=7))
        task = asyncio.create_task(comm.aio.recv(source=0, tag=7))
        await asyncio.sleep(0.01)
        comm.barrier()  # 2
        comm.barrier()  # 3: "second" is in the ring; the loop has not run since
        time.sleep(0.05)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        got.append(await comm.aio.recv(source=0, tag=7))
        into = np.zeros(5)
        task = asyncio.create_task(comm.aio.Recv(into, source=0, tag=8))
        await asyncio.sleep(0.01)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        got.append(into.tolist())  # untouched
        comm.barrier()  # 4
        await comm.aio.Recv(into, source=0, tag=8)
        got.append(into.tolist())
        # random cancellations at every point of a stream: nothing lost, nothing twice
        stream, rng = [], np.random.default_rng(1)
        while len(stream) < 300:
            try:
                wait = float(rng.choice([0.0, 1e-5, 1e-4, 1e-3]))
                stream.append(await asyncio.wait_for(comm.aio.recv(source=0, tag=9), wait))
            except asyncio.TimeoutError:
                pass
        got.append(stream == list(range(300)))
        return got

    return asyncio.run(main())


def test_a_cancelled_receive_takes_nothing_and_the_next_receive_gets_the_message():
    _, got = run_ranks(_cancelled_receives, 2)
    assert got == ["first", "second", [0.0] * 5, [0.0, 1.0, 2.0, 3.0, 4.0], True]


def _cancelled_collectives():
    comm = treecast.world()
    r = comm.rank
    tree = binomial_tree(comm.size, 0)
    interior = next(q for q in range(1, comm.size) if tree.children[q])
    leaf = tree.children[interior][0]

    async def main():
        out = {}
        if r == 0:
            await asyncio.sleep(0.3)
            await comm.aio.bcast("first", root=0, algorithm="binomial")
        elif r == interior:
            task = asyncio.create_task(comm.aio.bcast(None, root=0, algorithm="binomial"))
            await asyncio.sleep(0.05)
            task.cancel()
            with pytest.raises(asyncio.CancelledError):
                await task
            await asyncio.sleep(1.0)  # no treecast call: only the driver progresses it
            out["idle_until"] = time.monotonic()
        else:
            out["first"] = await comm.aio.bcast(None, root=0, algorithm="binomial")
            out["first_at"] = time.monotonic()
        out["second"] = await comm.aio.bcast("second" if r == 0 else None, root=0)
        # a cancelled allreduce still contributes; the next one is right
        task = asyncio.create_task(comm.aio.allreduce(r + 1))
        await asyncio.sleep(0.01 * r)
        task.cancel()
        out["next"] = await comm.aio.allreduce(10 * (r + 1))
        # a cancelled large send (bigger than the ring) still arrives whole
        if r == 0:
            task = asyncio.create_task(comm.aio.send(np.arange(1 << 20), leaf, tag=1))
            await asyncio.sleep(0)
            task.cancel()
        elif r == leaf:
            await asyncio.sleep(0.2)
            out["big"] = int((await comm.aio.recv(source=0, tag=1)).sum())
        out["last"] = await comm.aio.allgather(r)
        return interior, leaf, out

    return asyncio.run(main())


def test_a_cancelled_collective_or_send_still_completes_and_the_next_call_is_right():
    results = run_ranks(_cancelled_collectives, 4)
    interior, leaf, _ = results[0]
    p = len(results)
    for _, _, out in results:
        assert out["second"] == "second"
        assert out["next"] == 10 * p * (p + 1) // 2
        assert out["last"] == list(range(p))
    leaf_out = results[leaf][2]
    assert leaf_out["first"] == "first"
    # the leaf got it while its parent ran no treecast call at all: the driver forwarded it
    assert leaf_out["first_at"] < results[interior][2]["idle_until"]
    assert leaf_out["big"] == sum(range(1 << 20))


# ---- errors --------------------------------------------------------------------------------
def _timeouts():
    comm = treecast.world()

    async def main():
        if comm.rank == 0:
            with pytest.raises(treecast.TimeoutError) as info:
                await comm.aio.barrier(timeout=2.0)
            return str(info.value)
        time.sleep(0.3)  # rank 0 is now waiting in the barrier
        with pytest.raises(treecast.TimeoutError) as info:
            await comm.aio.recv(source=0, tag=3, timeout=1.0)
        time.sleep(1.2)  # alive past rank 0's timeout (a finished rank is reported sooner)
        return str(info.value)

    return asyncio.run(main())


def test_timeout_raises_the_sync_calls_timeout_error_and_hang_report():
    report0, report1 = run_ranks(_timeouts, 2)
    assert "rank 0: ibarrier #1 on world did not complete within 2 s" in report0
    assert "rank 0: in ibarrier #1 on world" in report0
    assert "ranks that have not arrived at this collective: 1" in report0
    assert "rank 1: recv from rank 0 (tag 3) on world did not complete within 1 s" in report1
    assert "rank 0: in ibarrier #1 on world" in report1
    assert "rank 1: in recv from rank 0 (tag 3)" in report1


def _dead_peer():
    comm = treecast.world()
    if comm.rank == 2:
        time.sleep(0.3)
        os._exit(3)

    async def main():
        start = time.monotonic()
        with pytest.raises(treecast.ProcessFailedError) as info:
            if comm.rank == 0:
                await comm.aio.recv(source=2)
            else:
                await comm.aio.bcast(None, root=2)
        return str(info.value), list(info.value.ranks), time.monotonic() - start

    return asyncio.run(main())


def test_a_dead_peer_raises_process_failed_error_naming_it():
    recv, bcast, dead = run_ranks(_dead_peer, 3, keep_going=True)
    assert isinstance(dead, RemoteError)
    assert "rank(s) 2 died" in recv[0] and "(in recv from rank 2" in recv[0]
    assert "(in ibcast #1 on world root 2)" in bcast[0]
    assert recv[1] == [2] and bcast[1] == [2]
    assert recv[2] < 30 and bcast[2] < 30


def _bad_arguments():
    comm = treecast.world()
    a = comm.aio
    bad = [
        ("bcast", (1,), {"root": 5}),
        ("bcast", (1,), {"root": 0, "algorithm": "nope"}),
        ("Allreduce", (np.zeros(3), np.zeros(4)), {}),
        ("Bcast", (np.zeros(3),), {"root": "0"}),
        ("gather", (1,), {"root": -1}),
        ("Scatter", (None, np.zeros(2)), {"root": 3}),
        ("send", (1, 7), {}),
        ("send", (lambda: 0, 1), {}),
        ("Send", ("not a buffer", 1), {}),
        ("recv", (), {"source": 9}),
        ("Recv", (b"read-only", 1), {}),
        ("sendrecv", (1, 1), {"source": 42}),
        ("Reduce_scatter", (np.zeros(4), np.zeros(1)), {"op": "max"}),
    ]

    async def main():
        kinds = []
        for name, args, kw in bad:
            with pytest.raises(Exception) as sync_error:
                getattr(comm, name)(*args, **kw)
            with pytest.raises(Exception) as aio_error:
                await getattr(a, name)(*args, **kw)
            kinds.append((name, sync_error.type.__name__, aio_error.type.__name__))
        # nothing was sent and no collective was numbered: the next calls match
        peer = 1 - comm.rank
        await a.send(("ok", comm.rank), peer)
        return kinds, await a.recv(source=peer), await a.allgather(comm.rank)

    return asyncio.run(main())


def test_bad_arguments_raise_what_the_sync_call_raises_before_anything_is_sent():
    for rank, (kinds, got, every) in enumerate(run_ranks(_bad_arguments, 2)):
        for name, sync_kind, aio_kind in kinds:
            assert aio_kind == sync_kind, f"{name}: sync raised {sync_kind}, aio {aio_kind}"
        assert got == ("ok", 1 - rank) and every == [0, 1]


# ---- an idle wait sleeps ---------------------------------------------------------------------
def _idle_cpu():
    comm = treecast.world()

    async def main():
        if comm.rank == 0:
            await asyncio.sleep(2.0)
            await comm.aio.send("wake", 1)
            return None
        wall, cpu = time.monotonic(), time.process_time()
        got = await comm.aio.recv(source=0)
        return got, time.process_time() - cpu, time.monotonic() - wall

    return asyncio.run(main())


def test_an_idle_await_does_not_burn_a_core():
    _, (got, cpu, wall) = run_ranks(_idle_cpu, 2)
    assert got == "wake" and wall >= 1.5
    assert cpu < 0.25 * wall, f"{cpu:.3f} s of CPU in {wall:.2f} s of waiting"


def _await_requests():
    comm = treecast.world()

    async def main():
        peer = 1 - comm.rank
        recv = comm.irecv(source=peer, tag=4)
        task = asyncio.create_task(comm.aio.wait(recv))
        await asyncio.sleep(0.01)
        task.cancel()  # leaves the request as it was: still active, still posted
        with pytest.raises(asyncio.CancelledError):
            await task
        await comm.aio.barrier()  # the message is sent only now
        await comm.aio.wait(comm.isend(comm.rank, peer, tag=4))
        st = treecast.Status()
        got = await comm.aio.wait(recv, st)
        ib = await comm.aio.wait(comm.Ibcast(np.full(3, comm.rank + 1.0), root=1))
        return got, st.source, ib, bool(recv)

    return asyncio.run(main())


def test_awaiting_a_request_made_by_the_caller():
    for rank, (got, source, ib, active) in enumerate(run_ranks(_await_requests, 2)):
        assert got == 1 - rank and source == 1 - rank and ib is None and not active


# ---- the driver keeps every wait, in order ---------------------------------------------------
def _failed_wait_next_to_another():
    comm = treecast.world()

    async def main():
        if comm.rank == 0:
            a = asyncio.create_task(comm.aio.recv(source=1, tag=99, timeout=0.5))
            await asyncio.sleep(0)
            b = asyncio.create_task(comm.aio.recv(source=1, tag=1, timeout=3.0))
            (failed,) = await asyncio.gather(a, return_exceptions=True)
            try:
                got = await asyncio.wait_for(b, 6.0)
            except asyncio.TimeoutError:
                got = "lost: neither its message nor its own timeout woke it"
            return type(failed).__name__, got
        time.sleep(1.5)  # rank 0's first receive has timed out
        comm.send("hello", 0, tag=1)
        return None

    return asyncio.run(main())


def test_a_wait_that_fails_does_not_lose_the_wait_after_it():
    assert run_ranks(_failed_wait_next_to_another, 2)[0] == ("TimeoutError", "hello")


def _receive_order():
    comm = treecast.world()
    send = comm.send

    async def main():
        if comm.rank == 1:
            comm.barrier()  # 1
            time.sleep(0.1)
            send("first", 0, tag=5), send("second", 0, tag=5)
            comm.barrier()  # 2
            time.sleep(0.1)
            send("a", 0, tag=5), send("b", 0, tag=6), send("c", 0, tag=5)
            return None
        got = {}
        # an earlier receive gets the earlier message, also when the later one is asked for
        # after both have arrived (while the loop was busy)
        early = asyncio.create_task(comm.aio.recv(source=1, tag=5))
        await asyncio.sleep(0.01)
        comm.barrier()  # 1
        time.sleep(0.4)  # both arrive while the loop runs no callback
        late = await comm.aio.recv(source=1, tag=5)
        got["same tag"] = [await early, late]
        # ... and with wildcards: the first one takes the first message of any tag
        anything = asyncio.create_task(comm.aio.recv())
        await asyncio.sleep(0.01)
        comm.barrier()  # 2
        time.sleep(0.4)
        five = await comm.aio.recv(source=1, tag=5)
        got["wildcard"] = [await anything, five, await comm.aio.recv(source=1, tag=6)]
        return got

    return asyncio.run(main())


def test_aio_receives_match_in_the_order_they_were_called():
    got = run_ranks(_receive_order, 2)[0]
    assert got["same tag"] == ["first", "second"]
    assert got["wildcard"] == ["a", "c", "b"]


def _sync_and_aio_receives():
    comm = treecast.world()

    async def main():
        if comm.rank == 1:
            comm.barrier()  # 1
            comm.send("first", 0, tag=5), comm.send("second", 0, tag=5)
            comm.barrier()  # 2
            comm.send("one", 0, tag=6), comm.send("two", 0, tag=6)
            return None
        # an aio receive is not posted: a blocking receive or irecv posted while it waits
        # matches first
        waiting = asyncio.create_task(comm.aio.recv(source=1, tag=5))
        await asyncio.sleep(0.01)
        posted = comm.irecv(source=1, tag=5)
        comm.barrier()  # 1
        got = [await waiting, posted.wait()]
        # it takes its message when its task resumes: a blocking receive made after the
        # driver has found the message for it, but before the task runs, goes first; the
        # aio receive keeps its place and gets the next one
        woken = asyncio.create_task(comm.aio.recv(source=1, tag=6))
        await asyncio.sleep(0.01)
        driver = treecast.aio._driver()
        comm.barrier()  # 2
        start = time.monotonic()
        while time.monotonic() - start < 5 and not any(
            getattr(w, "msg", None) is not None for w in getattr(driver, "_receives", ())
        ):
            await asyncio.sleep(0)
        got += [comm.recv(source=1, tag=6), await woken]
        return got

    return asyncio.run(main())


def test_a_blocking_receive_made_while_an_aio_receive_waits_matches_first():
    assert run_ranks(_sync_and_aio_receives, 2)[0] == ["second", "first", "one", "two"]


def _many_idle_receives():
    comm = treecast.world()

    async def main():
        if comm.rank == 1:
            comm.recv(source=0)
            return None
        tasks = [asyncio.create_task(comm.aio.recv(source=1, tag=t)) for t in range(200)]
        await asyncio.sleep(0.3)  # every one of them sleeps
        wall, cpu = time.monotonic(), time.process_time()
        await asyncio.sleep(1.5)
        cpu, wall = time.process_time() - cpu, time.monotonic() - wall
        comm.send("done", 1)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        return cpu, wall

    return asyncio.run(main())


def test_many_idle_receives_do_not_burn_a_core():
    cpu, wall = run_ranks(_many_idle_receives, 2)[0]
    assert cpu < 0.2 * wall, f"{cpu:.3f} s of CPU in {wall:.2f} s with 200 receives waiting"


# ---- Reduce_scatter numbers both of its steps when it is called ------------------------------
def _reduce_scatter_then_another():
    comm = treecast.world()
    ones = np.ones(2 * comm.size)

    async def main():
        out = np.zeros(2)
        if comm.rank == 0:
            task = asyncio.create_task(comm.aio.Reduce_scatter(ones, out))
            await asyncio.sleep(0)  # it has started; its count exchange waits for rank 1
            after = comm.Ibcast(np.zeros(1), root=0)  # started after it
            await task
            await comm.aio.wait(after)
            return after.what.seq, out.tolist()
        time.sleep(0.3)
        comm.Ireduce_scatter(ones, out).wait()  # exchanges its counts first (blocking)
        after = comm.Ibcast(np.zeros(1), root=0)
        after.wait()
        return after.what.seq, out.tolist()

    return asyncio.run(main())


def test_reduce_scatter_numbers_its_count_exchange_and_itself_when_called():
    for seq, out in run_ranks(_reduce_scatter_then_another, 2):
        assert seq == 3 and out == [2.0, 2.0]


# ---- the deadlock board and the activity record -----------------------------------------------
def _sleeping_send():
    from treecast.transports.deadlock import BLOCKED, PEER, WORDS

    comm = treecast.world()
    t = comm._t
    big = np.arange(1 << 20)  # 8 MiB: more than the ring holds

    async def main():
        if comm.rank == 0:
            await comm.aio.send(big, 1)
            await asyncio.sleep(0.05)
            return int(t._watch.words[t._watch.slot * WORDS + PEER])
        # rank 0's send is stuck (this rank takes nothing meanwhile) and its driver sleeps
        watch, start, sending = t._watch, time.monotonic(), False
        while not sending and time.monotonic() - start < 10:
            time.sleep(0.01)
            sending = watch.sending_to(1)
        blocked = int(watch.words[t._slot_of[0] * WORDS + BLOCKED])
        got = await comm.aio.recv(source=0)
        return (sending, blocked), int(got.sum()) == int(big.sum())

    return asyncio.run(main())


def test_a_sleeping_aio_send_shows_its_peer_but_is_not_blocked():
    peer_after, ((sending, blocked), whole) = run_ranks(_sleeping_send, 2)
    assert sending and not blocked and whole  # a finished rank 1 would keep lingering
    assert peer_after == 0  # cleared once nothing is sent


def _activity_after_a_timeout():
    comm = treecast.world()

    async def main():
        if comm.rank == 0:
            with pytest.raises(treecast.TimeoutError):
                await comm.aio.recv(source=1, tag=3, timeout=0.3)
            await asyncio.sleep(0.05)
            shown = comm._t._activity_of(0)
            comm.barrier()
            return shown
        comm.barrier()
        return None

    return asyncio.run(main())


def test_a_failed_last_wait_clears_the_activity_record():
    assert run_ranks(_activity_after_a_timeout, 2)[0] is None


# ---- a closed loop is freed ----------------------------------------------------------------
def _closed_loop_freed():
    import gc
    import weakref

    comm = treecast.world()
    peer = 1 - comm.rank
    loop = asyncio.new_event_loop()
    task = loop.create_task(comm.aio.recv(source=peer, tag=77))  # never sent
    loop.run_until_complete(asyncio.sleep(0.05))
    loop.close()  # with the receive still waiting
    gone = weakref.ref(loop)
    del loop, task
    got = asyncio.run(comm.aio.sendrecv(comm.rank, peer, source=peer))  # a new loop's driver
    gc.collect()
    return got == peer and gone() is None


def test_a_closed_loop_with_waits_pending_is_freed():
    assert run_ranks(_closed_loop_freed, 2) == [True, True]
