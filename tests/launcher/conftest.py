"""Fixtures for launcher tests: run ``python -m treecast run``, write small programs."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
from launcher_helpers import RunTreecast, Script, treecast_command


@pytest.fixture
def run_treecast() -> RunTreecast:
    """``run_treecast(*args, input=None, cwd=None, timeout=60)``: run ``treecast run ARGS``."""

    def run(
        *args: str, input: str | None = None, cwd: Path | None = None, timeout: float = 60
    ) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            treecast_command(*args),
            input=input,
            cwd=cwd,
            capture_output=True,
            text=True,
            timeout=timeout,
            stdin=None if input is not None else subprocess.DEVNULL,
        )

    return run


@pytest.fixture
def script(tmp_path: Path) -> Script:
    """``script(source)``: write ``source`` to a new file in tmp_path; return its path."""
    count = 0

    def write(source: str) -> str:
        nonlocal count
        count += 1
        path = tmp_path / f"prog{count}.py"
        path.write_text(source)
        return str(path)

    return write
