"""Unit tests of the launcher's pure parts: program forms, option splitting, line assembly."""

from __future__ import annotations

import signal
import sys

import pytest

from treecast.cli import _split_run_argv
from treecast.launcher import (
    STDERR,
    STDOUT,
    LineForwarder,
    describe_exit,
    exit_status,
    resolve_command,
)
from treecast.launcher.output import MAX_LINE_BYTES


@pytest.mark.parametrize(
    ("program", "expected"),
    [
        (["app.py", "-x"], [sys.executable, "app.py", "-x"]),
        (["-m", "pkg.mod", "a"], [sys.executable, "-m", "pkg.mod", "a"]),
        (["-c", "print(1)"], [sys.executable, "-c", "print(1)"]),
        (["python", "-c", "print(1)"], [sys.executable, "-c", "print(1)"]),
        (["python3", "app.py"], [sys.executable, "app.py"]),
        (["python3.11", "-m", "m"], [sys.executable, "-m", "m"]),
        ([sys.executable, "app.py"], [sys.executable, "app.py"]),
        (["/opt/other/bin/python3", "app.py"], ["/opt/other/bin/python3", "app.py"]),
        (["hostname", "-s"], ["hostname", "-s"]),
        (["pythonista"], ["pythonista"]),
    ],
)
def test_resolve_command(program: list[str], expected: list[str]) -> None:
    assert resolve_command(program) == expected


@pytest.mark.parametrize("program", [[], ["-m"], ["-c"]])
def test_resolve_command_rejects_incomplete_programs(program: list[str]) -> None:
    with pytest.raises(ValueError):
        resolve_command(program)


@pytest.mark.parametrize(
    ("words", "options", "program"),
    [
        (["-n", "2", "-c", "print(1)"], ["-n", "2"], ["-c", "print(1)"]),
        (["-n", "2", "python", "-c", "x"], ["-n", "2"], ["python", "-c", "x"]),
        (
            ["-np", "4", "--tag-output", "app.py", "-n", "9"],
            ["-np", "4", "--tag-output"],
            ["app.py", "-n", "9"],
        ),
        (
            ["-n4", "--timeout=3", "--keep-going", "-m", "m"],
            ["-n4", "--timeout=3", "--keep-going"],
            ["-m", "m"],
        ),
        (
            ["-n", "2", "--ring-bytes", "8192", "--", "--weird"],
            ["-n", "2", "--ring-bytes", "8192"],
            ["--weird"],
        ),
        (["--help"], ["--help"], []),
    ],
)
def test_split_run_argv(words: list[str], options: list[str], program: list[str]) -> None:
    assert _split_run_argv(words) == (options, program)


class _Collect:
    def __init__(self) -> None:
        self.writes: list[tuple[int, bytes]] = []

    def write(self, stream: int, data: bytes) -> None:
        self.writes.append((stream, data))


def test_forwarder_emits_only_whole_lines() -> None:
    sink = _Collect()
    fwd = LineForwarder(sink, STDOUT)
    for chunk in (b"ab", b"c\nde", b"f", b"\ng\nh"):
        fwd.feed(chunk)
    assert sink.writes == [(STDOUT, b"abc\n"), (STDOUT, b"def\ng\n")]
    fwd.close()
    assert sink.writes[-1] == (STDOUT, b"h\n")


def test_forwarder_tags_every_line() -> None:
    sink = _Collect()
    fwd = LineForwarder(sink, STDERR, b"[3] ")
    fwd.feed(b"one\ntwo\nthr")
    fwd.close()
    assert b"".join(d for _, d in sink.writes) == b"[3] one\n[3] two\n[3] thr\n"
    assert {s for s, _ in sink.writes} == {STDERR}


def test_forwarder_bounds_an_endless_line() -> None:
    sink = _Collect()
    fwd = LineForwarder(sink, STDOUT)
    fwd.feed(b"x" * (MAX_LINE_BYTES + 1))
    assert sink.writes == [(STDOUT, b"x" * (MAX_LINE_BYTES + 1))]


def test_describe_exit_and_status() -> None:
    assert describe_exit(3) == "exited with code 3"
    assert describe_exit(-signal.SIGKILL) == "was killed by signal SIGKILL"
    assert exit_status(3) == 3
    assert exit_status(-signal.SIGKILL) == 137
    assert exit_status(0) == 0
