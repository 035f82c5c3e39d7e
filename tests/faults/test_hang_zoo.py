"""The hang zoo: with no timeout set anywhere, every deadlock and mismatch ends with a clear
error on every rank, and nothing that merely waits (a rank computing, sleeping, reading
``input()``, a slow transfer, another thread) is taken for a deadlock."""

import os
import re
import subprocess
import sys
import time
from pathlib import Path

import pytest

pytestmark = pytest.mark.timeout(120)

ZOO = Path(__file__).with_name("programs") / "zoo.py"
RESULT = re.compile(r"RESULT rank=(\d+) outcome=(\w+) elapsed=([\d.]+)")


def _zoo(case, n=3, stdin=None, ring_bytes=None, env=None):
    """Run one case under ``treecast run --keep-going`` (so that each rank reports for
    itself); return (exit status, {rank: (outcome, elapsed)}, stdout, stderr)."""
    environ = {k: v for k, v in os.environ.items() if k != "TREECAST_TIMEOUT"}
    environ.update(env or {})
    cmd = [sys.executable, "-m", "treecast", "run", "--keep-going", "-n", str(n)]
    if ring_bytes:
        cmd += ["--ring-bytes", str(ring_bytes)]
    cmd += [sys.executable, str(ZOO), case]
    proc = subprocess.run(cmd, input=stdin, capture_output=True, text=True, timeout=90, env=environ)
    results = {int(m[1]): (m[2], float(m[3])) for m in RESULT.finditer(proc.stdout)}
    return proc.returncode, results, proc.stdout, proc.stderr


@pytest.mark.parametrize("case", ["gather_vs_bcast", "recv_ring", "ssend_ring"])
def test_a_deadlock_raises_on_every_rank_within_two_seconds(case):
    rc, results, _, err = _zoo(case)
    assert rc != 0
    assert sorted(results) == [0, 1, 2], err
    for rank, (outcome, elapsed) in results.items():
        assert outcome == "DeadlockError", (rank, err)
        assert elapsed < 2.0, (rank, elapsed)
    # the hang report: each rank's call, its sequence number and root, and its peer
    assert "deadlock in" in err and "waiting for rank" in err
    if case == "gather_vs_bcast":
        assert "rank 0: in gather #1 on world root 0, waiting for rank" in err
        assert "rank 1: in bcast #1 on world root 0, waiting for rank 0" in err
        assert "ranks that have not arrived at this collective: 0" in err
    elif case == "recv_ring":
        assert "rank 1: in recv from rank 2 (any tag) on world, waiting for rank 2" in err
    else:
        assert "rank 1: in send to rank 2 (tag 0), waiting for rank 2" in err


def test_a_barrier_after_one_that_timed_out_on_some_ranks_ends():
    rc, results, _, err = _zoo("barrier_after_timeout")
    assert rc != 0
    assert sorted(results) == [0, 1, 2], err
    assert {o for o, _ in results.values()} == {"DeadlockError"}, err
    assert max(t for _, t in results.values()) < 2.0


@pytest.mark.parametrize(
    ("case", "errors"),
    [
        ("roots", set()),
        ("counts", {"TruncationError"}),
        ("dtypes", {"InvalidArgumentError", "ProcessFailedError", "DeadlockError"}),
        ("reduce_vs_allreduce", {"CollectiveMismatchError", "ProcessFailedError"}),
    ],
)
def test_mismatched_roots_counts_dtypes_and_collectives_never_pass_silently(case, errors):
    """Every rank either raises a treecast error, or returns and is named at exit (a root
    that only sends cannot see what its receivers do: they raise, and the job fails)."""
    rc, results, _, err = _zoo(case)
    assert rc != 0
    assert sorted(results) == [0, 1, 2], err
    for rank, (outcome, elapsed) in results.items():
        assert elapsed < 2.0, (rank, elapsed)
        if outcome == "returned":
            at_exit = f"rank {rank}: CollectiveMismatchError at exit" in err
            assert at_exit or (case == "counts" and rank == 0), (rank, err)
        else:
            assert outcome in errors, (rank, outcome, err)


def test_collectives_that_no_rank_waits_for_are_named_at_exit():
    rc, results, _, err = _zoo("bcast_vs_gather")
    assert rc == 1
    assert {o for o, _ in results.values()} == {"returned"}
    for rank in (1, 2):
        assert f"treecast: rank {rank}: CollectiveMismatchError at exit" in err
    assert "bcast with root 0 #1 on world from world rank 0" in err
    assert "gather with root 0 #1 on world from world rank 1" in err
    assert "gather with root 0 #1 on world from world rank 2" in err or (
        "gather with root 0 #1 on world from world rank" in err
    )


def test_point_to_point_messages_left_over_are_only_a_warning():
    rc, results, _, err = _zoo("p2p_left", n=2)
    assert rc == 0, err
    assert {o for o, _ in results.values()} == {"returned"}
    assert "UnreceivedMessageWarning" in err
    assert "point-to-point message (tag 7) on world from world rank 0" in err


def test_freeing_a_communicator_with_unreceived_collective_messages_raises():
    rc, results, _, err = _zoo("free_mismatch")
    assert rc != 0
    assert {o for o, _ in results.values()} == {"CollectiveMismatchError"}, err
    assert "Free of world.dup1: rank 1 never received" in err
    assert "bcast with root 0 #1 on world.dup1 from rank 0" in err
    assert "gather with root 0 #1 on world.dup1 from rank 2" in err


@pytest.mark.parametrize("case", ["compute", "sleep", "thread"])
def test_waiting_is_not_a_deadlock(case):
    rc, results, _, err = _zoo(case)
    assert rc == 0, err
    assert {o for o, _ in results.values()} == {"returned"}
    assert "Deadlock" not in err


def test_a_rank_reading_input_is_not_a_deadlock():
    # the launcher's stdin goes to rank 0; it arrives 2 s after the others block
    environ = {k: v for k, v in os.environ.items() if k != "TREECAST_TIMEOUT"}
    proc = subprocess.Popen(
        [sys.executable, "-m", "treecast", "run", "-n", "3", sys.executable, str(ZOO), "input"],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=environ,
    )
    try:
        time.sleep(2.0)
        out, err = proc.communicate("hello\n", timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    results = {int(m[1]): m[2] for m in RESULT.finditer(out)}
    assert proc.returncode == 0, err
    assert results == {0: "returned", 1: "returned", 2: "returned"}


def test_a_slow_large_transfer_is_not_a_deadlock():
    rc, results, _, err = _zoo("slow_transfer", ring_bytes=4096)
    assert rc == 0, err
    assert {o for o, _ in results.values()} == {"returned"}


def test_deadlock_detection_can_be_turned_off_and_rejects_a_bad_setting():
    # off: the deadlock is only ended by the launcher's own timeout
    environ = {k: v for k, v in os.environ.items() if k != "TREECAST_TIMEOUT"}
    environ["TREECAST_DEADLOCK_SECONDS"] = "0"
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "treecast",
            "run",
            "--timeout",
            "3",
            "-n",
            "2",
            sys.executable,
            str(ZOO),
            "recv_ring",
        ],
        capture_output=True,
        text=True,
        timeout=60,
        env=environ,
    )
    assert proc.returncode == 124 and "DeadlockError" not in proc.stderr
    rc, _, _, err = _zoo("recv_ring", n=2, env={"TREECAST_DEADLOCK_SECONDS": "soon"})
    assert rc != 0
    assert "TREECAST_DEADLOCK_SECONDS='soon' must be a number of seconds >= 0" in err
