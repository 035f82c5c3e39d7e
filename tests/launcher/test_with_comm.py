"""The launcher together with the communicator: the ranks it starts can talk."""

from __future__ import annotations

import time

import pytest
from launcher_helpers import RunTreecast, Script

import treecast
from treecast.launch import launch

pytestmark = pytest.mark.timeout(60)


def bcast_from_root(value: str) -> tuple[str, int, int]:
    comm = treecast.world()
    return comm.bcast(value if comm.rank == 0 else None, root=0), comm.rank, comm.size


def test_launch_ranks_share_a_world() -> None:
    assert launch(bcast_from_root, 3, "hi") == [("hi", 0, 3), ("hi", 1, 3), ("hi", 2, 3)]


def test_package_attribute_launch_stays_the_function() -> None:
    # Importing the submodule treecast.launch sets the package attribute ``launch`` to the
    # module unless treecast/__init__.py binds the function after importing it.
    assert treecast.launch(abs, 1, -3) == [3]
    assert callable(treecast.launch)
    assert treecast.launch(abs, 1, -4) == [4]


def test_run_ranks_share_a_world(run_treecast: RunTreecast) -> None:
    code = (
        "import treecast\n"
        "comm = treecast.world()\n"
        "print(comm.rank, comm.bcast('data' if comm.rank == 0 else None, root=0))\n"
    )
    proc = run_treecast("-n", "3", "-c", code)
    assert proc.returncode == 0, proc.stderr
    assert sorted(proc.stdout.splitlines()) == ["0 data", "1 data", "2 data"]


def test_peer_of_a_failed_rank_raises_instead_of_hanging(
    run_treecast: RunTreecast, script: Script
) -> None:
    prog = script(
        "import os, time, treecast\n"
        "comm = treecast.world()\n"
        "if comm.rank == 1:\n"
        "    time.sleep(0.3)\n"
        "    os._exit(3)\n"
        "try:\n"
        "    comm.recv(source=1)\n"
        "except treecast.ProcessFailedError:\n"
        "    print('peer failure detected')\n"
        "    raise SystemExit(1)\n"
    )
    start = time.monotonic()
    proc = run_treecast("-n", "2", "--keep-going", prog)
    assert time.monotonic() - start < 20
    assert proc.returncode == 3
    assert proc.stdout == "peer failure detected\n"
    assert proc.stderr.splitlines() == [
        "treecast: rank 1 exited with code 3",
        "treecast: rank 0 exited with code 1",
    ]
