"""Checks shared by every test: no shared-memory segment outlives the test that made it."""

from __future__ import annotations

import os
import time
from collections.abc import Iterator

import pytest

SHM_DIR = "/dev/shm"
SEGMENT_PREFIX = "treecast-"


def _segments() -> set[str]:
    try:
        return {e for e in os.listdir(SHM_DIR) if e.startswith(SEGMENT_PREFIX)}
    except FileNotFoundError:  # no /dev/shm on this platform
        return set()


def _parent_of(pid: int) -> int:
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii") as f:
            return int(f.read().rsplit(")", 1)[1].split()[1])
    except (OSError, ValueError, IndexError):
        return 0


def _mapped_by_others(names: set[str]) -> set[str]:
    """The segments among ``names`` that a live process outside this test session maps:
    another treecast job running at the same time on this machine (a benchmark, another
    checkout's suite) owns them, so they are not this test's leak."""
    me, found = os.getpid(), set()
    try:
        pids = [int(e) for e in os.listdir("/proc") if e.isdigit()]
    except OSError:
        return found
    for pid in pids:
        ancestor = pid
        for _ in range(64):  # is ``pid`` this session or one of its descendants?
            if ancestor in (me, 0, 1):
                break
            ancestor = _parent_of(ancestor)
        if ancestor == me:
            continue
        try:
            with open(f"/proc/{pid}/maps", encoding="utf-8", errors="replace") as f:
                held = f.read()
            for fd in os.listdir(f"/proc/{pid}/fd"):
                held += os.readlink(f"/proc/{pid}/fd/{fd}") + "\n"
        except OSError:
            continue
        found.update(n for n in names if f"/dev/shm/{n}" in held)
    return found


@pytest.fixture(autouse=True)
def no_leaked_segments() -> Iterator[None]:
    """Fail a test that leaves new /dev/shm/treecast-* entries behind."""
    before = _segments()
    yield
    deadline = time.monotonic() + 2.0  # let processes that are exiting finish their cleanup
    leaked = _segments() - before
    while leaked and time.monotonic() < deadline:
        time.sleep(0.05)
        leaked = _segments() - before
    # a segment that another job holds, or that goes away or gets held within a few
    # seconds (another job's launcher between creating it and starting its ranks), is not
    # this test's: only one that stays, held by nobody, is a leak
    deadline = time.monotonic() + 3.0
    while leaked:
        leaked = (leaked & _segments()) - _mapped_by_others(leaked)
        if time.monotonic() > deadline:
            break
        time.sleep(0.1)
    assert not leaked, f"shared-memory segments left behind: {sorted(leaked)}"


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--chaos-runs",
        type=int,
        default=int(os.environ.get("TREECAST_CHAOS_RUNS", "30")),
        help="runs of the SIGKILL chaos test (default 30, or TREECAST_CHAOS_RUNS)",
    )
    parser.addoption(
        "--chaos-runs-oversubscribed",
        type=int,
        default=int(os.environ.get("TREECAST_CHAOS_RUNS_OVERSUBSCRIBED", "3")),
        help="runs of the SIGKILL chaos test at 16 ranks (default 3, or "
        "TREECAST_CHAOS_RUNS_OVERSUBSCRIBED)",
    )


@pytest.fixture
def chaos_runs(request: pytest.FixtureRequest) -> int:
    """How many times the chaos test starts a job and kills a random rank."""
    return int(request.config.getoption("--chaos-runs"))


@pytest.fixture
def chaos_runs_oversubscribed(request: pytest.FixtureRequest) -> int:
    """How many times the chaos test at 16 ranks (more than this machine's cores) starts a
    job and kills a random rank."""
    return int(request.config.getoption("--chaos-runs-oversubscribed"))
