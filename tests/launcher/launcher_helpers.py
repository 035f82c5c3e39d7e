"""Helpers for launcher tests (imported by the test modules and their conftest)."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

RunTreecast = Callable[..., "subprocess.CompletedProcess[str]"]
"""Type of the ``run_treecast`` fixture."""
Script = Callable[[str], str]
"""Type of the ``script`` fixture."""


def treecast_command(*args: str) -> list[str]:
    """The argv of ``treecast run ARGS`` with this interpreter."""
    return [sys.executable, "-m", "treecast", "run", *args]


def wait_for_files(paths: list[Path], timeout: float = 30.0) -> None:
    """Wait until every path exists (and is non-empty)."""
    deadline = time.monotonic() + timeout
    while not all(p.exists() and p.stat().st_size for p in paths):
        if time.monotonic() > deadline:
            raise AssertionError(f"files never appeared: {[str(p) for p in paths]}")
        time.sleep(0.02)


def _running(pid: int) -> bool:
    """True if process ``pid`` exists and is not a zombie (dead, waiting to be reaped)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:  # gone meanwhile, or no /proc
        return not Path("/proc").is_dir()
    return stat.rpartition(")")[2].split()[0] != "Z"


def eventually(condition: Callable[[], bool], timeout: float) -> bool:
    """True once ``condition()`` holds, polled every 20 ms; False after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.02)
    return True


def process_gone(pid: int, timeout: float = 5.0) -> bool:
    """True once process ``pid`` has stopped running (within ``timeout`` seconds)."""
    return eventually(lambda: not _running(pid), timeout)
