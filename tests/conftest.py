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
    assert not leaked, f"shared-memory segments left behind: {sorted(leaked)}"


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--chaos-runs",
        type=int,
        default=int(os.environ.get("TREECAST_CHAOS_RUNS", "30")),
        help="runs of the SIGKILL chaos test (default 30, or TREECAST_CHAOS_RUNS)",
    )


@pytest.fixture
def chaos_runs(request: pytest.FixtureRequest) -> int:
    """How many times the chaos test starts a job and kills a random rank."""
    return int(request.config.getoption("--chaos-runs"))
