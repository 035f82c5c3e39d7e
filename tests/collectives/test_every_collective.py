"""A sample of every collective, object and buffer form, blocking and non-blocking, with
every registered algorithm forced, on the shared-memory transport at n = 2..5."""

import numpy as np
import pytest

import treecast
from treecast.errors import InvalidArgumentError, InvalidArgumentTypeError, InvalidCountError
from treecast.testing import run_ranks
from treecast.transports.base import ANY_SOURCE as ANY_WORLD_SOURCE
from treecast.transports.base import ANY_TAG as ANY_WORLD_TAG

pytestmark = pytest.mark.timeout(300)

COUNTS = (0, 1, 7, 33, 40_000)
DTYPES = (np.int64, np.float64)


def _x(rank, count, dtype):
    return (np.arange(count) % 97 * (rank + 1) + rank).astype(dtype)


PAIR = np.dtype([("a", "f8"), ("b", "f8")])


def _affine(invec, inoutvec, datatype):
    """inout = in o inout for affine maps stored as (a, b) pairs: x -> a x + b (not commutative)."""
    a = np.frombuffer(invec, dtype=PAIR)
    b = np.frombuffer(inoutvec, dtype=PAIR)
    b["b"] = a["a"] * b["b"] + a["b"]
    b["a"] = a["a"] * b["a"]


def _affine_ref(vals):
    acc = vals[0].copy()
    for v in vals[1:]:
        acc["b"] = acc["a"] * v["b"] + acc["b"]
        acc["a"] = acc["a"] * v["a"]
    return acc


def _pairs(q):
    out = np.zeros(10, PAIR)
    out["a"] = [2.0, 3.0] * 5
    out["b"] = [q, -q] * 5
    return out


def _check_reductions(comm, names):
    r, p = comm.rank, comm.size
    for count in COUNTS:
        for dtype in DTYPES:
            everyone = [_x(q, count, dtype) for q in range(p)]
            total = np.sum(everyone, axis=0, dtype=dtype) if count else np.zeros(0, dtype)
            for name in names["allreduce"]:
                out = np.full(count, -1, dtype)
                comm.Allreduce(_x(r, count, dtype), out, op=treecast.SUM, algorithm=name)
                np.testing.assert_array_equal(out, total, err_msg=f"Allreduce {name} {count}")
            for name in names["reduce"]:
                root = count % p
                out = np.full(count, -1, dtype)
                comm.Reduce(_x(r, count, dtype), out, op=treecast.SUM, root=root, algorithm=name)
                if r == root:
                    np.testing.assert_array_equal(out, total, err_msg=f"Reduce {name} {count}")
            prefix = np.cumsum(everyone, axis=0, dtype=dtype) if count else np.zeros((p, 0), dtype)
            out = np.full(count, -1, dtype)
            comm.Scan(_x(r, count, dtype), out)
            np.testing.assert_array_equal(out, prefix[r])
            out = np.full(count, -1, dtype)
            comm.Exscan(_x(r, count, dtype), out)
            if r:
                np.testing.assert_array_equal(out, prefix[r - 1])
            else:
                assert (out == -1).all()
            for name in names["reduce_scatter_block"]:
                mine = np.full(count, -1, dtype)
                send = np.concatenate([_x(r, count, dtype) + q for q in range(p)])
                comm.Reduce_scatter_block(send, mine, op=treecast.SUM, algorithm=name)
                np.testing.assert_array_equal(mine, total + p * r)
            counts = [(count + q) % 5 for q in range(p)]
            send = _x(r, sum(counts), dtype)
            mine = np.full(counts[r], -1, dtype)
            comm.Reduce_scatter(send, mine, counts, op=treecast.MAX)
            full = np.max([_x(q, sum(counts), dtype) for q in range(p)], axis=0)
            np.testing.assert_array_equal(mine, full[sum(counts[:r]) : sum(counts[: r + 1])])
    # non-commutative user operator: every algorithm must combine in rank order
    op = treecast.Op.Create(_affine, commute=False)
    pairs = [_pairs(q) for q in range(p)]
    ref = _affine_ref(pairs)
    for name in names["allreduce"]:
        out = np.zeros(10, PAIR)
        comm.Allreduce(pairs[r], out, op=op, algorithm=name)
        np.testing.assert_array_equal(out, ref, err_msg=f"non-commutative Allreduce {name}")
    for root in range(p):
        out = np.zeros(10, PAIR)
        comm.Reduce(pairs[r], out, op=op, root=root)
        if r == root:
            np.testing.assert_array_equal(out, ref)
    out = np.zeros(10, PAIR)
    comm.Scan(pairs[r], out, op=op)
    np.testing.assert_array_equal(out, _affine_ref(pairs[: r + 1]))


def _check_blocks(comm, names):
    r, p = comm.rank, comm.size
    for count in (0, 3, 20_000):
        mine = _x(r, count, np.int32)
        every = np.concatenate([_x(q, count, np.int32) for q in range(p)])
        for name in names["allgather"]:
            out = np.full(count * p, -1, np.int32)
            comm.Allgather(mine, out, algorithm=name)
            np.testing.assert_array_equal(out, every, err_msg=f"Allgather {name}")
        for root in range(p):
            for name in names["gather"]:
                out = np.full(count * p, -1, np.int32) if r == root else None
                comm.Gather(mine, out, root=root, algorithm=name)
                if r == root:
                    np.testing.assert_array_equal(out, every, err_msg=f"Gather {name}")
            for name in names["scatter"]:
                out = np.full(count, -1, np.int32)
                comm.Scatter(every if r == root else None, out, root=root, algorithm=name)
                np.testing.assert_array_equal(out, _x(r, count, np.int32))
            buf = _x(root, count, np.int32) if r == root else np.zeros(count, np.int32)
            for name in names["bcast"]:
                if r != root:
                    buf[:] = 0
                comm.Bcast(buf, root=root, algorithm=name)
                np.testing.assert_array_equal(buf, _x(root, count, np.int32), err_msg=name)
        send = np.concatenate([np.full(count, r * 100 + d, np.int32) for d in range(p)])
        expect = np.concatenate([np.full(count, s * 100 + r, np.int32) for s in range(p)])
        for name in names["alltoall"]:
            out = np.full(count * p, -1, np.int32)
            comm.Alltoall(send, out, algorithm=name)
            np.testing.assert_array_equal(out, expect, err_msg=f"Alltoall {name}")
    # v-variants: rank q owns q + 1 items
    counts = [q + 1 for q in range(p)]
    displs = [sum(counts[:q]) + q for q in range(p)]  # with gaps
    size = displs[-1] + counts[-1]
    mine = np.full(r + 1, r, np.float64)
    out = np.full(size, -1.0)
    comm.Allgatherv(mine, [out, counts, displs, np.float64])
    for q in range(p):
        assert (out[displs[q] : displs[q] + counts[q]] == q).all()
    out = np.full(size, -1.0)
    comm.Gatherv(mine, [out, counts, displs, np.float64] if r == 0 else None, root=0)
    if r == 0:
        for q in range(p):
            assert (out[displs[q] : displs[q] + counts[q]] == q).all()
    src = np.arange(size, dtype=np.float64)
    got = np.zeros(r + 1)
    comm.Scatterv([src, counts, displs, np.float64] if r == p - 1 else None, got, root=p - 1)
    np.testing.assert_array_equal(got, src[displs[r] : displs[r] + r + 1])
    scounts = [d + 1 for d in range(p)]
    send = np.concatenate([np.full(d + 1, r * 10 + d, np.int64) for d in range(p)])
    rcounts = [r + 1] * p
    recv = np.zeros(sum(rcounts), np.int64)
    comm.Alltoallv([send, scounts], [recv, rcounts])
    np.testing.assert_array_equal(recv, np.repeat([s * 10 + r for s in range(p)], r + 1))
    # IN_PLACE
    buf = np.zeros(p * 2, np.int64)
    buf[2 * r : 2 * r + 2] = r
    comm.Allgather(treecast.IN_PLACE, buf)
    np.testing.assert_array_equal(buf, np.repeat(np.arange(p), 2))
    v = np.full(4, r + 1.0)
    comm.Allreduce(treecast.IN_PLACE, v, op=treecast.PROD)
    np.testing.assert_array_equal(v, np.full(4, float(np.prod(np.arange(1, p + 1)))))


def _check_objects(comm, names):
    r, p = comm.rank, comm.size
    for name in names["allreduce"]:
        assert comm.allreduce(r + 1, algorithm=name) == p * (p + 1) // 2
    assert comm.allreduce([r], treecast.SUM) == list(range(p))  # list + list: rank order
    for root in range(p):
        got = comm.reduce({"r": r}["r"], op=treecast.MAX, root=root)
        assert got == (p - 1 if r == root else None)
        assert comm.reduce([r], root=root) == (list(range(p)) if r == root else None)
    assert comm.scan([r]) == list(range(r + 1))
    assert comm.exscan([r]) == (None if r == 0 else list(range(r)))
    assert comm.allreduce((float(r), r), op=treecast.MAXLOC) == (float(p - 1), p - 1)
    for name in names["alltoall"]:
        got = comm.alltoall([(r, d) for d in range(p)], algorithm=name)
        assert got == [(s, r) for s in range(p)]
    for name in names["allgather"]:
        if name in ("recursive_doubling",) and p & (p - 1):
            continue
        assert comm.allgather({"r": r}, algorithm=name) == [{"r": q} for q in range(p)]
    for name in names["gather"]:
        assert comm.gather(r, root=p - 1, algorithm=name) == (
            list(range(p)) if r == p - 1 else None
        )
    for name in names["scatter"]:
        assert (
            comm.scatter(list("abcdefgh"[:p]) if r == 0 else None, algorithm=name) == "abcdefgh"[r]
        )


def _check_nonblocking(comm):
    r, p = comm.rank, comm.size
    reqs = [
        comm.ibcast({"root": 0} if r == 0 else None, root=0),
        comm.iallreduce(r),
        comm.igather(r, root=1 % p),
        comm.iscatter(list(range(p)) if r == 0 else None),
        comm.iallgather(r),
        comm.ialltoall(list(range(p))),
        comm.ireduce(r, root=0),
        comm.iscan(r),
        comm.iexscan(r),
        comm.ibarrier(),
    ]
    a = np.full(1000, float(r))
    out = np.zeros(1000)
    big = np.arange(300_000, dtype=np.float64) if r == 0 else np.zeros(300_000)
    buf_reqs = [comm.Iallreduce(a, out), comm.Ibcast(big, root=0), comm.Ibarrier()]
    # a blocking call in between must not deadlock against the pending collectives
    token = comm.sendrecv(r, dest=(r + 1) % p, source=(r - 1) % p)
    assert token == (r - 1) % p
    results = treecast.Request.waitall(reqs)
    assert results[0] == {"root": 0}
    assert results[1] == p * (p - 1) // 2
    assert results[2] == (list(range(p)) if r == 1 % p else None)
    assert results[3] == r
    assert results[4] == list(range(p))
    assert results[5] == [r] * p
    assert results[6] == (p * (p - 1) // 2 if r == 0 else None)
    assert results[7] == r * (r + 1) // 2
    assert results[8] == (None if r == 0 else r * (r - 1) // 2)
    for q in buf_reqs:
        while not q.test()[0]:
            pass
    assert (out == p * (p - 1) / 2).all()
    np.testing.assert_array_equal(big, np.arange(300_000, dtype=np.float64))


def _every_collective():
    from treecast.algorithms import registry

    comm = treecast.world()
    names = {c: list(a) for c, a in registry.ALGORITHMS.items()}
    _check_reductions(comm, names)
    _check_blocks(comm, names)
    _check_objects(comm, names)
    _check_nonblocking(comm)
    return True


@pytest.mark.parametrize("n", [2, 3, 4, 5])
def test_every_collective_every_algorithm(n):
    assert all(run_ranks(_every_collective, n, timeout=240))


def _bad_calls(comm, x, p, r):
    """Calls that each break one rule, with the exception each must raise and the parts of
    its message that name the operation, the bad value and what was expected."""
    return [
        (
            lambda: comm.Allreduce(x, np.zeros(5)),
            InvalidArgumentError,
            ["Allreduce", "send buffer has 4 items", "receive buffer has 5"],
        ),
        (
            lambda: comm.Allreduce(x, np.zeros(4, np.int64)),
            InvalidArgumentError,
            ["Allreduce", "dtype float64", "dtype int64", "must match"],
        ),
        (
            lambda: comm.Allreduce(x, np.zeros(4), op=treecast.BAND),
            InvalidArgumentError,
            ["Allreduce", "BAND", "float64", "expected an integer or bool dtype"],
        ),
        (
            lambda: comm.Allreduce(x, np.zeros(4), op="sum"),
            InvalidArgumentTypeError,
            ["Allreduce", "op must be an Op", "got 'sum' (str)", "treecast.SUM"],
        ),
        (
            lambda: comm.allreduce(1, op=3),
            InvalidArgumentTypeError,
            ["allreduce", "op must be an Op", "got 3 (int)"],
        ),
        (
            lambda: comm.Allreduce(x, np.zeros(4), algorithm="telepathy"),
            InvalidArgumentError,
            ["allreduce algorithm 'telepathy'", "expected one of", "'ring'"],
        ),
        (
            lambda: comm.Reduce_scatter(np.zeros(10), np.zeros(5), [5] * p),
            InvalidArgumentError,
            ["Reduce_scatter", f"recvcounts {(5,) * p}", f"{5 * p} items", "holds 10"],
        ),
        (
            lambda: comm.Reduce_scatter_block(np.zeros(3 * p + 1), np.zeros(3)),
            InvalidArgumentError,
            ["Reduce_scatter_block", f"{3 * p + 1} items", f"{p} blocks", "3 items"],
        ),
        (
            lambda: comm.Allgatherv(x, [np.zeros(10), [1] * (p + 1)]),
            InvalidArgumentError,
            ["Allgatherv recvbuf", f"{p} entries (one per rank)", f"got {p + 1}"],
        ),
        (
            lambda: comm.Allgatherv(x, [np.zeros(10), [4] * p, [8] * p, np.float64]),
            InvalidCountError,
            ["Allgatherv recvbuf", "rank 0", "count 4 at displacement 8", "10 float64 items"],
        ),
        (
            lambda: comm.Scatter(np.zeros(p * 2 + 1), np.zeros(2), root=r),
            InvalidArgumentError,
            ["Scatter", f"{2 * p + 1} items", f"split evenly over {p} ranks"],
        ),
        (
            lambda: comm.Gather(x, np.zeros(3), root=r),
            InvalidArgumentError,
            ["Gather", "holds 3 items", f"{p} ranks x 4 items need {4 * p}"],
        ),
        (
            lambda: comm.Alltoall(np.zeros(p * 2 + 1), np.zeros(p * 3)),
            InvalidArgumentError,
            ["Alltoall", f"{2 * p + 1} items", f"{p} ranks", f"receive buffer of {3 * p}"],
        ),
        (
            lambda: comm.Reduce(treecast.IN_PLACE, None, root=(r + 1) % p),
            InvalidArgumentError,
            ["Reduce", "IN_PLACE is only valid at the root"],
        ),
    ]


def _bad_input():
    comm = treecast.world()
    r, p = comm.rank, comm.size
    # a fresh communicator that only the bad calls use: anything they sent would still be
    # waiting in its contexts, where no correct call of this test puts a message
    sub = comm.dup()
    outcomes = []
    for call, _, _ in _bad_calls(sub, np.zeros(4), p, r):
        try:
            call()
        except Exception as exc:  # the test checks the type, so catch whatever was raised
            outcomes.append((type(exc), str(exc)))
        else:
            outcomes.append((None, "did not raise"))
    comm.barrier()  # on comm, not sub: every rank has made every bad call
    pending = (
        sub.iprobe(source=treecast.ANY_SOURCE, tag=treecast.ANY_TAG),
        # collective traffic travels in the communicator's internal context, which no
        # public probe sees
        sub._t.iprobe(sub._coll_ctx, ANY_WORLD_SOURCE, ANY_WORLD_TAG) is not None,
    )
    # checked here: a stray message would make the collectives below fail less clearly
    assert pending == (False, False), f"rank {r}: a bad call left a message behind {pending}"
    comm.barrier()  # nobody starts the next collective on sub before every rank has probed
    # the first collectives on sub take the sequence numbers a bad call would have used
    total = np.zeros(4)
    sub.Allreduce(np.full(4, r + 1.0), total)
    after = (
        total.tolist(),
        sub.allgather(r),
        sub.bcast("root" if r == p - 1 else None, root=p - 1),
    )
    sub.free()
    return outcomes, after


def test_bad_input_raises_before_sending():
    p = 3
    results = run_ranks(_bad_input, p)
    for r, (outcomes, after) in enumerate(results):
        expected = _bad_calls(None, None, p, r)
        assert len(outcomes) == len(expected), r
        for i, ((kind, message), (_, want_kind, parts)) in enumerate(
            zip(outcomes, expected, strict=True)
        ):
            where = f"rank {r}, bad call {i}: {kind.__name__ if kind else None}: {message}"
            assert kind is want_kind, where
            for part in parts:
                assert part in message, f"{where}\nmissing {part!r}"
        assert after == ([p * (p + 1) / 2] * 4, list(range(p)), "root"), r
