"""``treecast run``: exit statuses, failure propagation, --keep-going, --timeout."""

from __future__ import annotations

import time

import pytest
from launcher_helpers import RunTreecast, Script

pytestmark = pytest.mark.timeout(60)


def test_all_ranks_succeed(run_treecast: RunTreecast) -> None:
    proc = run_treecast("-n", "3", "-c", "print('ok')")
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.splitlines() == ["ok"] * 3
    assert proc.stderr == ""


def test_np_spelling(run_treecast: RunTreecast) -> None:
    proc = run_treecast("-np", "2", "-c", "import os; print(os.environ['TREECAST_SIZE'])")
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.splitlines() == ["2", "2"]


def test_failing_rank_sets_the_exit_status(run_treecast: RunTreecast, script: Script) -> None:
    prog = script(
        "import os, sys, time\n"
        "rank = int(os.environ['TREECAST_RANK'])\n"
        "if rank == 2:\n"
        "    sys.exit(3)\n"
        "time.sleep(60)\n"
    )
    proc = run_treecast("-n", "3", prog)
    assert proc.returncode == 3
    lines = proc.stderr.splitlines()
    assert lines[0] == "treecast: rank 2 exited with code 3"
    # the others had the grace (2 s) to handle rank 2's end; sleeping, they are then ended
    assert (
        lines[1]
        == "treecast: terminating the other 2 ranks (still running 2 s after rank 2 failed)"
    )


def test_first_failure_in_time_wins(run_treecast: RunTreecast, script: Script) -> None:
    prog = script(
        "import os, sys, time\n"
        "rank = int(os.environ['TREECAST_RANK'])\n"
        "if rank == 1:\n"
        "    time.sleep(1.5)\n"
        "    sys.exit(5)\n"
        "sys.exit(3 if rank == 2 else 0)\n"
    )
    proc = run_treecast("-n", "3", "--keep-going", prog)
    assert proc.returncode == 3
    assert proc.stderr.splitlines() == [
        "treecast: rank 2 exited with code 3",
        "treecast: rank 1 exited with code 5",
    ]


def test_rank_killed_by_sigkill_gives_137(run_treecast: RunTreecast) -> None:
    code = (
        "import os, signal, time\n"
        "if os.environ['TREECAST_RANK'] == '1':\n"
        "    os.kill(os.getpid(), signal.SIGKILL)\n"
        "time.sleep(60)\n"
    )
    proc = run_treecast("-n", "2", "-c", code)
    assert proc.returncode == 128 + 9
    assert proc.stderr.splitlines()[0] == "treecast: rank 1 was killed by signal SIGKILL"


def test_abort_ends_the_other_ranks_promptly(run_treecast: RunTreecast, script: Script) -> None:
    prog = script(
        "import os, sys, time\n"
        "if os.environ['TREECAST_RANK'] == '1':\n"
        "    time.sleep(0.3)\n"
        "    sys.exit(4)\n"
        "time.sleep(60)\n"
        "print('rank', os.environ['TREECAST_RANK'], 'finished')\n"
    )
    start = time.monotonic()
    proc = run_treecast("-n", "3", prog)
    assert time.monotonic() - start < 5
    assert proc.returncode == 4
    assert "finished" not in proc.stdout


def test_rank_ignoring_sigterm_is_killed(run_treecast: RunTreecast, script: Script) -> None:
    prog = script(
        "import os, signal, sys, time\n"
        "if os.environ['TREECAST_RANK'] == '1':\n"
        "    time.sleep(0.5)\n"
        "    sys.exit(2)\n"
        "signal.signal(signal.SIGTERM, signal.SIG_IGN)\n"
        "time.sleep(60)\n"
    )
    start = time.monotonic()
    proc = run_treecast("-n", "2", prog)
    assert time.monotonic() - start < 5
    assert proc.returncode == 2


def test_keep_going_lets_the_others_finish(run_treecast: RunTreecast, script: Script) -> None:
    prog = script(
        "import os, sys, time\n"
        "rank = os.environ['TREECAST_RANK']\n"
        "if rank == '0':\n"
        "    sys.exit(7)\n"
        "time.sleep(1)\n"
        "print('rank', rank, 'finished')\n"
    )
    proc = run_treecast("-n", "3", "--keep-going", prog)
    assert proc.returncode == 7
    assert sorted(proc.stdout.splitlines()) == ["rank 1 finished", "rank 2 finished"]
    assert proc.stderr.splitlines() == ["treecast: rank 0 exited with code 7"]


def test_timeout_ends_the_job_with_124(run_treecast: RunTreecast) -> None:
    start = time.monotonic()
    proc = run_treecast("-n", "2", "--timeout", "1", "-c", "import time; time.sleep(60)")
    assert time.monotonic() - start < 10
    assert proc.returncode == 124
    assert "treecast: timeout: the job ran longer than 1 s" in proc.stderr
    assert "terminating the 2 ranks still running" in proc.stderr


def test_missing_executable_gives_127(run_treecast: RunTreecast) -> None:
    proc = run_treecast("-n", "2", "no-such-program-treecast")
    assert proc.returncode == 127
    assert "cannot start rank 0" in proc.stderr


@pytest.mark.parametrize(
    "args",
    [
        ("-n", "0", "-c", "pass"),
        ("-n", "2"),
        ("-c", "pass"),
        ("-n", "2", "--ring-bytes", "10", "-c", "pass"),
    ],
)
def test_usage_errors_give_2(run_treecast: RunTreecast, args: tuple[str, ...]) -> None:
    proc = run_treecast(*args)
    assert proc.returncode == 2
    assert "error" in proc.stderr


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["-n", "2", "--bogus", "python", "x.py"], "unknown option '--bogus'; the launcher's"),
        (["-n", "2", "-x"], "unknown option '-x'"),
        (["-n", "two", "python", "x.py"], "-n/-np/--np: expected a whole number >= 1, got 'two'"),
        (["-n", "0", "python", "x.py"], "expected a whole number >= 1, got 0"),
        (["--timeout", "soon", "-n", "2", "python", "x.py"], "expected a number > 0, got 'soon'"),
        (["-n", "2"], "no PROGRAM given"),
    ],
)
def test_bad_launcher_arguments_are_named(
    run_treecast: RunTreecast, args: list[str], message: str
) -> None:
    proc = run_treecast(*args)
    assert proc.returncode == 2 and message in proc.stderr, proc.stderr


def test_program_forms_that_start_with_a_dash_still_run(run_treecast: RunTreecast) -> None:
    assert run_treecast("-n", "2", "-c", "print('c')").stdout.split() == ["c", "c"]
    assert run_treecast("-n", "1", "-m", "json.tool", "--help").returncode == 0
