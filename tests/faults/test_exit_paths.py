"""How ranks end: early exits, exits without finalising, failures caught by launch()'s
worker, and the exit check's report next to other leftovers. Each names the right rank and
keeps the program's own exit status."""

from __future__ import annotations

import subprocess
import sys
import textwrap
import time

import pytest

import treecast

pytestmark = pytest.mark.timeout(120)


_TREECAST_RUN = (sys.executable, "-m", "treecast", "run")


def _run(program: str, n: int, *options: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*_TREECAST_RUN, *options, "-n", str(n), "-c", textwrap.dedent(program)],
        capture_output=True,
        text=True,
        timeout=90,
    )


def test_an_early_sys_exit_keeps_its_status_and_is_named_first() -> None:
    proc = _run(
        """
        import sys, treecast
        comm = treecast.world()
        if comm.rank == 1:
            sys.exit(3)  # the others wait for it in the barrier
        comm.barrier()
        """,
        3,
    )
    assert proc.returncode == 3, proc.stderr
    notes = [line for line in proc.stderr.splitlines() if " exited with code " in line]
    assert notes[0] == "treecast: rank 1 exited with code 3", proc.stderr
    assert "CollectiveMismatchError" not in proc.stderr
    # what the others sent it for the barrier it never called: a warning, not a mismatch
    assert "(it finished while other ranks waited for it)" in proc.stderr


@pytest.mark.parametrize("setting", ["TREECAST_TIMEOUT=30", "TREECAST_DEADLOCK_SECONDS=0"])
def test_an_early_sys_exit_is_named_also_with_timed_waits_or_detection_off(
    setting: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(*setting.split("="))
    test_an_early_sys_exit_keeps_its_status_and_is_named_first()


def test_a_finished_rank_keeps_taking_what_a_descheduled_receiver_is_sent() -> None:
    # rank 1 waits to receive from rank 0 but is stopped (SIGSTOP, as if descheduled) before
    # rank 0's message comes: a rank that does not poll proves nothing, so the finished
    # rank 0 lingers and still takes rank 2's large send
    proc = _run(
        """
        import os, subprocess, time
        import numpy as np
        import treecast
        comm = treecast.world()
        comm.barrier()
        if comm.rank == 0:
            time.sleep(0.3)
            comm.send("hello", dest=1)
        elif comm.rank == 1:
            subprocess.Popen(["sh", "-c", f"sleep 0.1; kill -STOP {os.getpid()}; "
                              f"sleep 1.5; kill -CONT {os.getpid()}"])
            print("rank 1 got", comm.recv(source=0), flush=True)
        else:
            time.sleep(0.6)
            comm.Send(np.zeros(1 << 20), dest=0)  # 8 MiB: more than a ring holds
            print("rank 2 sent", flush=True)
        """,
        3,
    )
    assert proc.returncode == 0, proc.stderr
    assert sorted(proc.stdout.splitlines()) == ["rank 1 got hello", "rank 2 sent"]


def test_a_rank_that_returns_while_others_wait_for_it_makes_them_raise() -> None:
    proc = _run(
        """
        import treecast
        comm = treecast.world()
        if comm.rank != 1:
            comm.barrier()
        """,
        3,
    )
    assert proc.returncode == 1, proc.stderr
    assert "rank 1 has finished (exited)" in proc.stderr
    assert "CollectiveMismatchError" not in proc.stderr


@pytest.mark.parametrize(
    "program",
    [
        # ends without finalising: the launcher says it exited, nobody waits for it
        "import os, treecast\nc = treecast.world()\nc.barrier()\nif c.rank == 0: os._exit(0)\n",
        # never makes the world at all
        "import os, treecast\nif os.environ['TREECAST_RANK'] == '0': print(treecast.world().size)\n",
    ],
    ids=["os._exit(0)", "no world"],
)
def test_a_rank_that_exits_0_without_finalising_does_not_hold_the_others(program: str) -> None:
    proc = _run(program, 2)
    assert proc.returncode == 0, proc.stderr


def test_a_mismatch_is_an_error_even_with_point_to_point_leftovers() -> None:
    proc = _run(
        """
        import treecast
        c = treecast.world()
        c.isend("stray", dest=1 - c.rank, tag=5)  # left unreceived on purpose
        if c.rank == 0:
            c.bcast("x", root=0)
        else:
            c.gather(c.rank, root=0)
        """,
        2,
    )
    assert proc.returncode == 1, proc.stderr
    assert proc.stderr.count("CollectiveMismatchError at exit") == 2, proc.stderr
    assert proc.stderr.count("UnreceivedMessageWarning") == 2, proc.stderr
    assert "after a call of this rank failed" not in proc.stderr


def test_a_failure_before_the_timeout_stays_the_story() -> None:
    proc = _run(
        """
        import time, treecast
        c = treecast.world()
        if c.rank == 1:
            raise ValueError("the root cause")
        time.sleep(60)
        """,
        2,
        "--timeout",
        "1",
        "--grace",
        "30",
    )
    assert proc.returncode == 1, proc.stderr
    assert "ValueError: the root cause" in proc.stderr
    assert "timeout of 1 s ran out during the grace after rank 1 failed" in proc.stderr


def test_a_survivor_traceback_with_its_own_output_is_shown_whole() -> None:
    proc = _run(
        """
        import sys, time, traceback, treecast
        c = treecast.world()
        if c.rank == 1:
            time.sleep(0.3)
            raise RuntimeError("root cause")
        try:
            c.recv(source=1)
        except treecast.ProcessFailedError:
            traceback.print_exc()
            print("IMPORTANT: checkpoint saved", file=sys.stderr, flush=True)
            raise
        """,
        2,
    )
    assert proc.returncode == 1, proc.stderr
    assert "IMPORTANT: checkpoint saved" in proc.stderr


def test_another_thread_started_without_threading_is_not_a_deadlock() -> None:
    proc = _run(
        """
        import _thread, time, treecast
        c = treecast.world()
        if c.rank == 1:
            def worker():
                time.sleep(1.5)  # longer than the deadlock settle time
                c.send("from the worker", dest=0, tag=7)
            _thread.start_new_thread(worker, ())
            print(c.recv(source=0, tag=8), flush=True)
        else:
            c.send(c.recv(source=1, tag=7), dest=1, tag=8)
        """,
        2,
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "from the worker"


def _fails_on_rank_1_while_rank_0_computes() -> None:
    comm = treecast.world()
    if comm.rank == 1:
        raise ValueError("the root cause on rank 1")
    time.sleep(60)


def _fails_on_rank_1_while_rank_0_receives() -> None:
    comm = treecast.world()
    if comm.rank == 1:
        raise ValueError("the root cause on rank 1")
    comm.recv(source=1)


@pytest.mark.parametrize(
    "fn", [_fails_on_rank_1_while_rank_0_computes, _fails_on_rank_1_while_rank_0_receives]
)
def test_launch_names_the_failing_rank_and_does_not_wait_for_the_others(fn) -> None:
    start = time.monotonic()
    with pytest.raises(treecast.RemoteError, match="rank 1 raised ValueError: the root cause"):
        treecast.launch(fn, 2, timeout=90)
    # the failing rank exits at once (it does not wait for the others at exit); the
    # computing one is ended after the grace (2 s), long before its 60 s
    assert time.monotonic() - start < 40
