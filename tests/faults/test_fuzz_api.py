"""Hypothesis-driven fuzz of the public API across ranks: a valid call gives exactly the
expected result and raises nothing; an invalid one raises the documented exception naming
the bad value, before anything is sent; nothing deadlocks.

Every rank runs the same derandomized hypothesis search, so all ranks generate the same call
sequences; each call is classified as valid or invalid from its arguments alone, by the rules
the API documents, before it runs.
"""

import pytest

import treecast
from treecast.errors import (
    InvalidArgumentError,
    InvalidArgumentTypeError,
    InvalidBufferError,
    InvalidRankError,
    InvalidRootError,
    InvalidTagError,
)
from treecast.testing import run_ranks

pytestmark = pytest.mark.timeout(300)

TAG_UB = 2**31 - 1


def _as_int_problem(value, name):
    """The problem of an argument that must be an int (a bool is refused too), or None."""
    return None if type(value) is int else (InvalidArgumentTypeError, value, name)


def _rank_problem(value, name, size, allowed, error=InvalidRankError):
    return _as_int_problem(value, name) or (
        None if 0 <= value < size or value in allowed else (error, value, name)
    )


def _tag_problem(value, name, allowed=()):
    return _as_int_problem(value, name) or (
        None if 0 <= value <= TAG_UB or value in allowed else (InvalidTagError, value, name)
    )


def problems(call, size):
    """What is wrong with ``call``'s arguments, by the documented rules: one
    ``(exception class, bad value, argument)`` per bad argument; empty when the call is valid."""
    name = call[0]
    if name in ("bcast", "Bcast"):
        found = [_rank_problem(call[1], "root", size, (), InvalidRootError)]
    elif name == "ring":  # sendrecv's tag is also the send's tag: ANY_TAG is not allowed
        found = [_tag_problem(call[1], "sendtag")]
    elif name == "send":
        found = [
            _rank_problem(call[1], "dest", size, (treecast.PROC_NULL,)),
            _tag_problem(call[2], "tag"),
        ]
    elif name == "recv":
        found = [
            _rank_problem(call[1], "source", size, (treecast.PROC_NULL, treecast.ANY_SOURCE)),
            _tag_problem(call[2], "tag", (treecast.ANY_TAG,)),
        ]
    elif name == "split":
        found = [
            _as_int_problem(call[1], "color")
            or (
                None
                if call[1] >= 0 or call[1] == treecast.UNDEFINED
                else (InvalidArgumentError, call[1], "color")
            )
        ]
    elif name == "bad_buffer":
        found = [(InvalidBufferError, call[1], "buf")]
    else:
        found = []
    return [p for p in found if p is not None]


def _fuzz(examples):
    import numpy as np
    from hypothesis import HealthCheck, Phase, given, settings
    from hypothesis import strategies as st

    comm = treecast.world()
    size, me = comm.size, comm.rank
    counts = {"valid": 0, "invalid": 0}
    anything = st.one_of(
        st.integers(-(2**40), 2**40),
        st.sampled_from([-2, -1, size, size + 1]),
        st.none(),
        st.text(max_size=3),
        st.floats(allow_nan=False, allow_infinity=False),
        st.booleans(),
    )
    rank_arg = st.one_of(st.integers(0, size - 1), anything)
    tag_arg = st.one_of(st.integers(0, 9), st.just(TAG_UB), anything)
    op = st.one_of(
        st.tuples(st.just("bcast"), rank_arg, st.integers(0, 3)),
        st.tuples(st.just("Bcast"), rank_arg, st.sampled_from([0, 1, 7, 5000, 70_000])),
        st.tuples(st.just("barrier")),
        st.tuples(st.just("ring"), st.one_of(st.integers(0, 50), anything)),
        st.tuples(st.just("send"), rank_arg, tag_arg),
        st.tuples(st.just("recv"), rank_arg, tag_arg),
        st.tuples(st.just("split"), st.one_of(st.integers(0, 2), anything)),
        st.tuples(st.just("bad_buffer"), st.sampled_from([3.5, "text", None, [1, 2], {"a": 1}])),
    )

    def expected_obj(root, kind):
        return [
            lambda: None,
            lambda: root,
            lambda: {"root": root, "arr": np.arange(5) * root},
            lambda: "x" * (root * 1000),
        ][kind]()

    def run_valid(call):
        """Make ``call``, whose arguments are valid, on every rank and check its result."""
        name = call[0]
        if name == "bcast":
            _, root, kind = call
            got = comm.bcast(expected_obj(root, kind) if me == root else None, root=root)
            want = expected_obj(root, kind)
            assert repr(got) == repr(want) if kind == 2 else got == want
        elif name == "Bcast":
            _, root, n = call
            buf = np.arange(n, dtype=np.uint8) if me == root else np.zeros(n, np.uint8)
            comm.Bcast(buf, root=root)
            assert np.array_equal(buf, np.arange(n, dtype=np.uint8))
        elif name == "barrier":
            comm.barrier()
        elif name == "ring":
            tag = call[1]
            right, left = (me + 1) % size, (me - 1) % size
            got = comm.sendrecv((me, tag), right, sendtag=tag, source=left, recvtag=tag)
            assert got == (left, tag)
        elif name == "send":
            _, dest, tag = call
            comm.send((me, tag), dest=dest, tag=tag)  # small: buffered, returns at once
            if me == dest:
                got = [comm.recv(source=q, tag=tag) for q in range(size)]
                assert got == [(q, tag) for q in range(size)]
        elif name == "recv":
            _, source, tag = call
            sent_tag = 0 if tag == treecast.ANY_TAG else tag
            if source == treecast.ANY_SOURCE:  # one message each, from the left neighbour
                comm.send((me, sent_tag), dest=(me + 1) % size, tag=sent_tag)
                assert comm.recv(source=source, tag=tag) == ((me - 1) % size, sent_tag)
                # a rank that ran ahead could otherwise send the next call's message first
                comm.barrier()
            else:
                if me == source:
                    for q in range(size):
                        comm.send((me, sent_tag), dest=q, tag=sent_tag)
                want = None if source == treecast.PROC_NULL else (source, sent_tag)
                assert comm.recv(source=source, tag=tag) == want
        elif name == "split":
            color = call[1]
            sub = comm.split(color=color, key=0)
            if color == treecast.UNDEFINED:
                assert sub is None
            else:
                assert sub.size == size and sub.rank == me
                assert sub.bcast(sub.rank, root=0) == 0
                sub.free()
        else:
            raise AssertionError(f"no valid form of {call!r}")

    def make_invalid(call):
        """Make ``call``, whose arguments are not all valid, the same way on every rank."""
        name, *args = call
        if name == "bcast":
            comm.bcast("payload", root=args[0])
        elif name == "Bcast":
            comm.Bcast(np.zeros(args[1], np.uint8), root=args[0])
        elif name == "ring":
            comm.sendrecv(me, (me + 1) % size, sendtag=args[0], source=(me - 1) % size)
        elif name == "send":
            comm.send("never", dest=args[0], tag=args[1])
        elif name == "recv":
            comm.recv(source=args[0], tag=args[1])
        elif name == "split":
            comm.split(color=args[0], key=0)
        elif name == "bad_buffer":
            comm.Bcast(args[0], root=0)
        else:
            raise AssertionError(f"no invalid form of {call!r}")

    def run_invalid(call, found):
        """Make ``call``, whose arguments break ``found``, and check that it raises right."""
        try:
            make_invalid(call)
        except Exception as exc:
            message = str(exc)
            named = [
                (kind, arg)
                for kind, value, arg in found
                if isinstance(exc, kind) and repr(value) in message
            ]
            assert named, (
                f"{call!r} raised {type(exc).__name__}: {message}; expected one of "
                f"{[(kind.__name__, arg, value) for kind, value, arg in found]} naming the value"
            )
        else:
            raise AssertionError(f"{call!r} was accepted; expected it to fail on {found!r}")

    @settings(
        max_examples=examples,
        derandomize=True,
        database=None,
        deadline=None,
        suppress_health_check=list(HealthCheck),
        # shrinking replays calls on the failing rank alone while the others wait in theirs:
        # without it the first failure ends the job at once, with the calls that failed
        phases=(Phase.explicit, Phase.generate),
    )
    @given(st.lists(op, min_size=1, max_size=25))
    def sequence(calls_list):
        for call in calls_list:
            found = problems(call, size)
            if found:
                counts["invalid"] += 1
                run_invalid(call, found)
            else:
                counts["valid"] += 1
                run_valid(call)  # a valid call may raise nothing at all
        comm.barrier(timeout=30)  # all ranks still agree on where they are
        assert not comm.iprobe(source=treecast.ANY_SOURCE, tag=treecast.ANY_TAG), (
            "a message was left unreceived"
        )
        comm.barrier()  # nobody sends the next example's messages before every rank probed

    sequence()
    return counts


def test_fuzzed_api_calls_raise_only_documented_errors_and_never_hang():
    counts = run_ranks(_fuzz, 3, 400, timeout=280)
    assert counts[1:] == counts[:-1], counts  # every rank made the same calls
    assert counts[0]["valid"] >= 400 and counts[0]["invalid"] >= 1000, counts


@pytest.mark.parametrize(
    ("call", "found"),
    [
        (("bcast", 1, 0), []),
        (("bcast", 3, 0), [(InvalidRootError, 3, "root")]),
        (("Bcast", True, 7), [(InvalidArgumentTypeError, True, "root")]),
        (("ring", -1), [(InvalidTagError, -1, "sendtag")]),
        (("send", -1, TAG_UB), []),
        (("send", -2, 2**31), [(InvalidRankError, -2, "dest"), (InvalidTagError, 2**31, "tag")]),
        (("recv", -2, -1), []),
        (
            ("recv", "a", 1.5),
            [(InvalidArgumentTypeError, "a", "source"), (InvalidArgumentTypeError, 1.5, "tag")],
        ),
        (("split", treecast.UNDEFINED), []),
        (("split", -5), [(InvalidArgumentError, -5, "color")]),
        (("barrier",), []),
    ],
)
def test_the_fuzz_oracle_tells_valid_calls_from_invalid_ones(call, found):
    assert problems(call, 3) == found
