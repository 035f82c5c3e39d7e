"""docs/tutorial.md tells the truth: every command it shows prints the output it shows.

The page is the only source of what is expected; this file reads it:

- A ```python block right after a line that links ``../examples/tutorial/NAME.py`` shows that
  file: the block must equal the file.
- A ```console block holds commands (lines that start with ``$ ``), each followed by its
  output. A command ``echo $?`` shows the exit status of the command before it; a command
  without one must exit with status 0.

Each command runs from the repository root with ``treecast`` spelled ``python -m treecast``
and ``python`` as this interpreter, without the ``TREECAST_*`` variables of the calling
environment (the page shows the defaults), stdout and stderr together, 60 s at most.

What varies from run to run is normalised by one rule, which the page states too:

1. With ``--tag-output``, the launcher forwards each rank's lines as they come, so the order
   between ranks varies: the lines are sorted by their ``[rank]`` tag, stably (each rank's
   lines keep their order), and the launcher's own untagged lines go after them, sorted.
2. ``...`` in a line of the page matches any text within the line; a line that is only
   ``...`` (or ``[r] ...``) matches any number of lines (of rank ``r``), as in doctest.
"""

from __future__ import annotations

import os
import re
import shlex
import signal
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
DOC = ROOT / "docs" / "tutorial.md"
EXAMPLES = ROOT / "examples" / "tutorial"

FENCE = re.compile(r"^```(\w*)\n(.*?)^```$", re.MULTILINE | re.DOTALL)
SHOWS_FILE = re.compile(r"\(\.\./(examples/tutorial/\w+\.py)\)")
TAG = re.compile(r"\[(\d+)\] ")


@dataclass
class Command:
    line: str  # as written after "$ "
    expected: list[str]  # the output lines shown after it
    status: int  # the exit status shown by a following "echo $?", else 0


def _blocks() -> list[tuple[str, str, str]]:
    """(language, text, the last non-empty line before the fence) of every fenced block."""
    text = DOC.read_text(encoding="utf-8")
    found = []
    for m in FENCE.finditer(text):
        before = [line for line in text[: m.start()].splitlines() if line.strip()]
        found.append((m.group(1), m.group(2), before[-1] if before else ""))
    return found


def _commands() -> list[Command]:
    commands: list[Command] = []
    for language, text, _ in _blocks():
        if language != "console":
            continue
        lines = iter(text.splitlines())
        for line in lines:
            if line == "$ echo $?":
                commands[-1].status = int(next(lines))
            elif line.startswith("$ "):
                commands.append(Command(line[2:], [], 0))
            else:
                commands[-1].expected.append(line)
    return commands


COMMANDS = _commands()


def _argv(command: str) -> list[str]:
    argv = shlex.split(command)
    if argv[0] == "treecast":
        return [sys.executable, "-m", "treecast", *argv[1:]]
    if argv[0] == "python":
        return [sys.executable, *argv[1:]]
    raise AssertionError(f"the tutorial runs only treecast and python, not {command!r}")


def _run(command: str) -> tuple[int, str]:
    """Exit status and output (stdout and stderr together) of ``command``."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("TREECAST_")}
    proc = subprocess.Popen(
        _argv(command),
        cwd=ROOT,
        env=env,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        out, _ = proc.communicate(timeout=60)
    except subprocess.TimeoutExpired:
        proc.send_signal(signal.SIGTERM)  # the launcher then ends its ranks
        try:
            proc.communicate(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.communicate()
        raise AssertionError(f"{command!r} ran for more than 60 s") from None
    return proc.returncode, out


def _sorted_by_rank(lines: list[str]) -> list[str]:
    """Rule 1: tagged lines by rank (stable), then the untagged ones, sorted."""
    tagged = [(int(m[1]), line) for line in lines if (m := TAG.match(line))]
    untagged = sorted(line for line in lines if not TAG.match(line))
    return [line for _, line in sorted(tagged, key=lambda t: t[0])] + untagged


def _pattern(expected: list[str]) -> re.Pattern[str]:
    """Rule 2: the regular expression that the normalised output must match in full."""
    parts = []
    for line in expected:
        tag = TAG.match(line)
        rest = line[tag.end() :] if tag else line
        if rest.strip() == "...":
            prefix = re.escape(tag.group(0)) if tag else ""
            parts.append(f"(?:{prefix}[^\\n]*\\n)*?")
        else:
            parts.append(".*?".join(map(re.escape, line.rstrip().split("..."))) + "\\n")
    return re.compile("".join(parts))


def _normalised(command: str, out: str) -> str:
    lines = [line.rstrip() for line in out.splitlines()]
    if "--tag-output" in shlex.split(command):
        lines = _sorted_by_rank(lines)
    return "".join(line + "\n" for line in lines)


def test_the_page_is_parsed() -> None:
    assert len(COMMANDS) >= 12
    assert all(c.expected for c in COMMANDS), [c.line for c in COMMANDS if not c.expected]
    assert any(c.status != 0 for c in COMMANDS)  # the deadlock


def test_every_program_is_shown_as_it_is() -> None:
    shown = {}
    for language, text, before in _blocks():
        m = SHOWS_FILE.search(before)
        if language == "python" and m:
            shown[m.group(1)] = text
    programs = sorted(p.relative_to(ROOT).as_posix() for p in EXAMPLES.glob("*.py"))
    assert sorted(shown) == programs
    for path, text in shown.items():
        assert text == (ROOT / path).read_text(encoding="utf-8"), f"the page shows an old {path}"


def test_every_program_runs_as_its_docstring_says() -> None:
    run = {c.line for c in COMMANDS}
    for program in sorted(EXAMPLES.glob("*.py")):
        said = [
            line
            for line in program.read_text(encoding="utf-8").splitlines()
            if line.startswith("treecast run ")
        ]
        assert said, f"{program.name}: its docstring has no 'treecast run' line"
        assert set(said) <= run, f"{program.name}: the page does not run {said}"


@pytest.mark.parametrize(
    "command",
    COMMANDS,
    ids=[f"{i:02d}-{Path(c.line.split()[-1]).stem}" for i, c in enumerate(COMMANDS)],
)
def test_command_prints_what_the_page_shows(command: Command) -> None:
    status, out = _run(command.line)
    got = _normalised(command.line, out)
    want = "\n".join(command.expected)
    assert _pattern(command.expected).fullmatch(got), (
        f"$ {command.line}\n--- the page shows:\n{want}\n--- the run printed (normalised):\n{got}"
    )
    assert status == command.status, f"exit status {status}, the page shows {command.status}"
