"""``treecast.launch``: results, closures, remote errors, output, timeouts."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from launcher_helpers import process_gone, wait_for_files

import treecast
from treecast.errors import InvalidArgumentError, RemoteError, SerializationError, TimeoutError
from treecast.launch import launch

pytestmark = pytest.mark.timeout(60)


def rank_times(factor: int) -> int:
    return int(os.environ["TREECAST_RANK"]) * factor


def environment() -> tuple[str, str, str, bool, bool]:
    e = os.environ
    return (
        e["TREECAST_RANK"],
        e["TREECAST_SIZE"],
        e["TREECAST_JOB"],
        os.path.exists("/dev/shm" + e["TREECAST_SHM"]),
        e["TREECAST_LAUNCHER_PID"] == str(os.getppid()),
    )


def fail_on_rank_1() -> None:
    if os.environ["TREECAST_RANK"] == "1":
        raise ValueError("boom on rank 1")
    time.sleep(60)


def talk() -> None:
    rank = os.environ["TREECAST_RANK"]
    print(f"hello from {rank}")
    print(f"warning from {rank}", file=sys.stderr)


def test_returns_values_by_rank() -> None:
    assert launch(rank_times, 3, 10) == [0, 10, 20]


def test_single_rank() -> None:
    assert launch(rank_times, 1, 7) == [0]


def test_ranks_get_the_job_environment() -> None:
    rows = launch(environment, 2)
    assert [r[0] for r in rows] == ["0", "1"]
    assert {r[1] for r in rows} == {"2"}
    assert len({r[2] for r in rows}) == 1
    assert all(r[3] and r[4] for r in rows)


def test_lambda_and_closure() -> None:
    offset = 5
    assert launch(lambda: int(os.environ["TREECAST_RANK"]) + offset, 2) == [5, 6]

    def scaled(x: int) -> list[int]:
        return [x * offset]

    assert launch(scaled, 2, 3) == [[15], [15]]


def test_remote_exception_raises_remote_error() -> None:
    with pytest.raises(RemoteError) as info:
        launch(fail_on_rank_1, 3)
    err = info.value
    assert err.rank == 1
    assert "rank 1 raised ValueError: boom on rank 1" in str(err)
    assert "Traceback (most recent call last)" in err.remote_traceback
    assert "in fail_on_rank_1" in err.remote_traceback
    assert err.remote_traceback in str(err)


def test_killed_rank_raises_remote_error() -> None:
    def die() -> None:
        os.kill(os.getpid(), signal.SIGKILL)

    with pytest.raises(RemoteError, match="rank 0 was killed by signal SIGKILL") as info:
        launch(die, 1)
    assert info.value.rank == 0


def test_output_is_forwarded(capsys: pytest.CaptureFixture[str]) -> None:
    launch(talk, 2)
    out, err = capsys.readouterr()
    assert sorted(out.splitlines()) == ["hello from 0", "hello from 1"]
    assert sorted(err.splitlines()) == ["warning from 0", "warning from 1"]


def test_timeout() -> None:
    start = time.monotonic()
    with pytest.raises(TimeoutError, match=r"timed out after 1 s"):
        launch(time.sleep, 2, 60, timeout=1)
    assert time.monotonic() - start < 10


def test_unpicklable_argument_is_named_with_advice_for_that_cause() -> None:
    with pytest.raises(SerializationError) as info:
        launch(rank_times, 2, 3, threading.Lock())
    assert isinstance(info.value, TypeError)
    msg = str(info.value)
    assert "argument 1 of rank_times (lock object)" in msg
    assert "create the lock inside the function" in msg
    assert "install cloudpickle" not in msg and "importable module" not in msg


def test_unpicklable_closure_variable_is_explained() -> None:
    lock = threading.Lock()

    def uses_lock() -> bool:
        with lock:
            return True

    with pytest.raises(SerializationError, match=r"cannot send .*uses_lock to the ranks") as info:
        launch(uses_lock, 2)
    assert "globals and closure variables" in str(info.value)


def test_lambdas_closures_and_main_functions_go_by_value() -> None:
    base = 10
    assert launch(lambda k: treecast.world().rank + k + base, 2, 1) == [11, 12]
    code = "def main_fn():\n    import treecast\n    return treecast.world().size\n"
    namespace: dict[str, object] = {"__name__": "__main__"}
    exec(code, namespace)  # a function whose module is __main__, as in a notebook
    assert launch(namespace["main_fn"], 2) == [2, 2]  # type: ignore[arg-type]


def _mpi4py_world() -> tuple[int, int, str]:
    from mpi4py import MPI

    comm = MPI.COMM_WORLD
    return comm.Get_rank(), comm.Get_size(), MPI.__name__


def test_mpi4py_in_launched_ranks_is_treecasts_stand_in() -> None:
    assert launch(_mpi4py_world, 2) == [(0, 2, "treecast.MPI"), (1, 2, "treecast.MPI")]


def test_bad_mpi4py_choice_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TREECAST_MPI4PY", "mpich")
    with pytest.raises(InvalidArgumentError, match=r"TREECAST_MPI4PY='mpich': expected"):
        launch(rank_times, 2, 1)


@pytest.mark.parametrize("nprocs", [0, -1, True, 2.0])
def test_bad_nprocs(nprocs: object) -> None:
    with pytest.raises(
        InvalidArgumentError, match=rf"nprocs must be an int >= 1, got {re.escape(repr(nprocs))}$"
    ):
        launch(rank_times, nprocs, 1)  # type: ignore[arg-type]


def test_not_callable() -> None:
    with pytest.raises(TypeError, match=r"fn must be callable, got int$"):
        launch(42, 2)  # type: ignore[arg-type]


def test_interrupted_launch_ends_its_ranks(script: Callable[[str], str], tmp_path: Path) -> None:
    driver = script(
        "import os, sys, time\n"
        "from treecast.launch import launch\n"
        "def sleeper(out):\n"
        "    path = os.path.join(out, os.environ['TREECAST_RANK'])\n"
        "    with open(path + '.tmp', 'w') as f:\n"
        "        f.write(str(os.getpid()))\n"
        "    os.replace(path + '.tmp', path)\n"
        "    time.sleep(60)\n"
        "if __name__ == '__main__':\n"
        "    try:\n"
        "        launch(sleeper, 2, sys.argv[1])\n"
        "    except KeyboardInterrupt:\n"
        "        sys.exit(42)\n"
    )
    caller = subprocess.Popen([sys.executable, driver, str(tmp_path)], stdin=subprocess.DEVNULL)
    try:
        wait_for_files([tmp_path / "0", tmp_path / "1"])
        pids = [int((tmp_path / str(r)).read_text()) for r in range(2)]
        caller.send_signal(signal.SIGINT)
        assert caller.wait(timeout=20) == 42
    finally:
        caller.kill()
        caller.wait()
    assert all(process_gone(pid) for pid in pids)
