"""Hypothesis-driven fuzz of the public API across ranks: only documented exceptions, no
deadlock, no corrupted results.

Every rank runs the same derandomized hypothesis search, so all ranks generate the same call
sequences; invalid arguments are rejected locally (before anything is sent) on every rank
alike, and valid calls must produce exactly the expected values.
"""

import pytest

import treecast
from treecast.testing import run_ranks

pytestmark = pytest.mark.timeout(300)

DOCUMENTED = (treecast.TreecastError, ValueError, TypeError)


def _fuzz(examples):
    import numpy as np
    from hypothesis import HealthCheck, given, settings
    from hypothesis import strategies as st

    comm = treecast.world()
    size = comm.size
    calls = [0]
    anything = st.one_of(
        st.integers(-(2**40), 2**40),
        st.sampled_from([-2, -1, size, size + 1]),
        st.none(),
        st.text(max_size=3),
        st.floats(allow_nan=False, allow_infinity=False),
        st.booleans(),
    )
    rank_arg = st.one_of(st.integers(0, size - 1), anything)
    op = st.one_of(
        st.tuples(st.just("bcast"), rank_arg, st.integers(0, 3)),
        st.tuples(st.just("Bcast"), rank_arg, st.sampled_from([0, 1, 7, 5000, 70_000])),
        st.tuples(st.just("barrier")),
        st.tuples(st.just("ring"), st.one_of(st.integers(0, 50), anything)),
        st.tuples(st.just("send_bad"), anything, st.one_of(st.integers(0, 9), anything)),
        st.tuples(st.just("recv_bad"), anything, anything),
        st.tuples(st.just("split"), st.one_of(st.integers(0, 2), anything)),
        st.tuples(st.just("bad_buffer"), st.sampled_from([3.5, "text", None, [1, 2], {"a": 1}])),
    )

    def expected_obj(root, kind):
        return [None, root, {"root": root, "arr": np.arange(5) * root}, "x" * (root * 1000)][kind]

    def run_one(call):
        name = call[0]
        if name == "bcast":
            _, root, kind = call
            valid = type(root) is int and 0 <= root < size
            got = comm.bcast(
                expected_obj(root, kind) if valid and comm.rank == root else None, root=root
            )
            want = expected_obj(root, kind)
            assert repr(got) == repr(want) if kind == 2 else got == want
        elif name == "Bcast":
            _, root, n = call
            buf = np.arange(n, dtype=np.uint8) if comm.rank == root else np.zeros(n, np.uint8)
            comm.Bcast(buf, root=root)
            assert np.array_equal(buf, np.arange(n, dtype=np.uint8))
        elif name == "barrier":
            comm.barrier()
        elif name == "ring":
            tag = call[1]
            right, left = (comm.rank + 1) % size, (comm.rank - 1) % size
            got = comm.sendrecv((comm.rank, tag), right, sendtag=tag, source=left, recvtag=tag)
            assert got == (left, tag)
        elif name == "send_bad":
            _, dest, tag = call
            if type(dest) is int and -1 <= dest < size and type(tag) is int and 0 <= tag < 2**31:
                return  # a valid send would need a matching receive; tested by "ring"
            comm.send("never", dest=dest, tag=tag)
            raise AssertionError(f"send accepted dest={dest!r} tag={tag!r}")
        elif name == "recv_bad":
            _, source, tag = call
            if (type(source) is int and (0 <= source < size or source in (-1, -2))) and (
                type(tag) is int and -1 <= tag < 2**31
            ):
                return
            comm.recv(source=source, tag=tag)
            raise AssertionError(f"recv accepted source={source!r} tag={tag!r}")
        elif name == "split":
            color = call[1]
            sub = comm.split(color=color, key=0)
            assert sub is not None and sub.size == size
            assert sub.bcast(sub.rank, root=0) == 0
            sub.free()
        elif name == "bad_buffer":
            comm.Bcast(call[1], root=0)
            raise AssertionError("Bcast accepted a non-buffer")

    @settings(
        max_examples=examples,
        derandomize=True,
        database=None,
        deadline=None,
        suppress_health_check=list(HealthCheck),
    )
    @given(st.lists(op, min_size=1, max_size=25))
    def sequence(calls_list):
        for call in calls_list:
            calls[0] += 1
            try:
                run_one(call)
            except AssertionError:
                raise
            except DOCUMENTED:
                pass
        comm.barrier(timeout=30)  # all ranks still agree on where they are

    sequence()
    return calls[0]


def test_fuzzed_api_calls_raise_only_documented_errors_and_never_hang():
    counts = run_ranks(_fuzz, 3, 400, timeout=280)
    assert len(set(counts)) == 1 and counts[0] >= 1000
