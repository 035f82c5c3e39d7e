"""``treecast run`` after a failure: the survivors' grace, readable tracebacks, and a
missing program reported once before any rank starts."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from launcher_helpers import RunTreecast, Script

import treecast
from treecast.launcher.output import LineForwarder

pytestmark = pytest.mark.timeout(120)


def test_survivors_raise_process_failed_and_run_their_handlers(
    run_treecast: RunTreecast, script: Script, tmp_path: Path
) -> None:
    prog = script(
        "import os, signal, time, treecast\n"
        "comm = treecast.world()\n"
        "if comm.rank == 1:\n"
        "    time.sleep(0.3)\n"
        "    os.kill(os.getpid(), signal.SIGKILL)\n"
        "try:\n"
        "    comm.barrier()\n"
        "except treecast.ProcessFailedError as exc:\n"
        f"    open(os.path.join({str(tmp_path)!r}, f'saved-{{comm.rank}}'), 'w').write(str(exc))\n"
        "    raise\n"
    )
    proc = run_treecast("-n", "4", prog)
    assert proc.returncode == 137, proc.stderr
    lines = proc.stderr.splitlines()
    assert lines[0] == "treecast: rank 1 was killed by signal SIGKILL", proc.stderr
    # each survivor's traceback is one line; no "terminating": they all ended in the grace
    assert "Traceback" not in proc.stderr
    assert "terminating" not in proc.stderr
    survivors = sorted(lines[1:])
    assert len(survivors) == 3, proc.stderr
    for rank, line in zip((0, 2, 3), survivors, strict=True):
        assert re.fullmatch(
            rf"treecast: rank {rank}: ProcessFailedError: rank\(s\) 1 died; .*barrier #1.*", line
        ), line
    for rank in (0, 2, 3):  # their handlers ran: the checkpoint is written
        assert "rank(s) 1 died" in (tmp_path / f"saved-{rank}").read_text()


def test_the_grace_ends_and_a_computing_survivor_is_terminated(
    run_treecast: RunTreecast, script: Script
) -> None:
    prog = script(
        "import os, sys, time\n"
        "if os.environ['TREECAST_RANK'] == '0':\n"
        "    sys.exit(5)\n"
        "time.sleep(60)  # busy elsewhere: the grace ends and it is terminated\n"
    )
    proc = run_treecast("-n", "2", "--grace", "0.5", prog)
    assert proc.returncode == 5
    assert proc.stderr.splitlines() == [
        "treecast: rank 0 exited with code 5",
        "treecast: terminating the other rank (still running 0.5 s after rank 0 failed)",
    ]


def test_grace_zero_ends_the_others_at_once(run_treecast: RunTreecast, script: Script) -> None:
    prog = script(
        "import os, sys, time\nif os.environ['TREECAST_RANK'] == '0': sys.exit(4)\ntime.sleep(60)\n"
    )
    proc = run_treecast("-n", "3", "--grace", "0", prog)
    assert proc.returncode == 4
    assert proc.stderr.splitlines() == [
        "treecast: rank 0 exited with code 4",
        "treecast: terminating the other 2 ranks",
    ]


def _tracebacks(stderr: str) -> list[tuple[int, list[str]]]:
    """Each traceback block of stderr: (the rank its last line names, its lines)."""
    blocks: list[tuple[int, list[str]]] = []
    current: list[str] | None = None
    for line in stderr.splitlines():
        if line.startswith("Traceback (most recent call last)"):
            current = [line]
        elif current is not None:
            current.append(line)
            found = re.match(r"\w+Error: .* on rank (\d+)$", line)
            if found:
                blocks.append((int(found.group(1)), current))
                current = None
    return blocks


def test_tracebacks_come_as_one_block_per_rank_root_cause_first(
    run_treecast: RunTreecast, script: Script
) -> None:
    # rank 1 fails; the three others catch the death and fail at the same moment with deep
    # tracebacks of their own: printed at once, they must not interleave line by line
    prog = script(
        "import time, treecast\n"
        "comm = treecast.world()\n"
        "r = comm.rank\n"
        'exec(f\'def deep_{r}(k):\\n    if k == 0: raise RuntimeError("cleanup failed on rank {r}")\\n'
        "    deep_{r}(k - 1)', globals())\n"
        "if r == 1:\n"
        "    time.sleep(0.3)\n"
        "    raise ValueError('the root cause on rank 1')\n"
        "try:\n"
        "    comm.barrier()\n"
        "except treecast.ProcessFailedError:\n"
        "    globals()[f'deep_{r}'](40)\n"
    )
    proc = run_treecast("-n", "4", prog)
    assert proc.returncode == 1, proc.stderr
    blocks = _tracebacks(proc.stderr)
    assert [rank for rank, _ in blocks][:1] == [1], proc.stderr
    assert sorted(rank for rank, _ in blocks) == [0, 1, 2, 3], proc.stderr
    for rank, lines in blocks[1:]:
        named = [int(n) for line in lines for n in re.findall(r"deep_(\d+)", line)]
        assert len(named) >= 3, lines
        assert set(named) == {rank}, lines  # no line of another rank's traceback
    # the root cause's note comes right after its traceback, before anyone else's
    text = proc.stderr
    assert (
        text.index("ValueError: the root cause on rank 1")
        < text.index("treecast: rank 1 exited with code 1")
        < text.index("cleanup failed")
    )
    # a survivor whose traceback was its own error is not collapsed
    assert not re.search(r"^treecast: rank \d: ProcessFailedError", text, re.M), text


def test_tag_output_prefixes_every_line_of_a_held_traceback(
    run_treecast: RunTreecast,
) -> None:
    proc = run_treecast("-n", "1", "--tag-output", "-c", "raise KeyError('x')")
    assert proc.returncode == 1
    lines = proc.stderr.splitlines()
    assert lines[0] == "[0] Traceback (most recent call last):"
    assert lines[-2] == "[0] KeyError: 'x'"
    assert lines[-1] == "treecast: rank 0 exited with code 1"
    assert all(line.startswith("[0] ") for line in lines[:-1])


@pytest.mark.parametrize(
    ("program", "status", "message"),
    [
        (["python", "missing-treecast.py"], 2, "can't open file '{cwd}/missing-treecast.py'"),
        (["missing-treecast.py", "-x"], 2, "can't open file '{cwd}/missing-treecast.py'"),
        (["-m", "no_such_module_tc.sub"], 1, "No module named 'no_such_module_tc'"),
    ],
)
def test_a_missing_script_or_module_is_reported_once_before_any_rank_starts(
    run_treecast: RunTreecast, tmp_path: Path, program: list[str], status: int, message: str
) -> None:
    proc = run_treecast("-n", "4", *program, cwd=tmp_path)
    assert proc.returncode == status
    lines = proc.stderr.splitlines()
    assert len(lines) == 1, proc.stderr
    assert lines[0].startswith("treecast run: error: " + message.format(cwd=tmp_path)), lines
    assert proc.stdout == ""


def test_a_module_in_the_current_directory_is_found(
    run_treecast: RunTreecast, tmp_path: Path
) -> None:
    (tmp_path / "localmod_tc.py").write_text("print('ran')\n")
    proc = run_treecast("-n", "2", "-m", "localmod_tc", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.splitlines() == ["ran", "ran"]


@pytest.mark.parametrize("bad", ["-1", "soon", "nan"])
def test_a_bad_grace_is_a_usage_error(run_treecast: RunTreecast, bad: str) -> None:
    proc = run_treecast("-n", "2", "--grace", bad, "-c", "pass")
    assert proc.returncode == 2
    assert "--grace" in proc.stderr and bad in proc.stderr


@pytest.mark.parametrize("bad", [-1, "2", None, float("nan"), True])
def test_launch_refuses_a_bad_grace(bad: object) -> None:
    with pytest.raises(treecast.InvalidArgumentError, match="grace"):
        treecast.launch(print, 2, grace=bad)  # type: ignore[arg-type]


def _returns_then_mismatches() -> int:
    comm = treecast.world()
    if comm.rank == 0:
        comm.bcast(1)
    else:
        comm.gather(1)
    return comm.rank


def test_launch_names_a_rank_that_returned_then_failed_at_exit() -> None:
    with pytest.raises(treecast.RemoteError, match=r"returned from .* but then exited with code 1"):
        treecast.launch(_returns_then_mismatches, 2, timeout=60)


# ---------------------------------------------------------------- the forwarder on its own


class _Lines:
    def __init__(self) -> None:
        self.writes: list[bytes] = []

    def write(self, stream: int, data: bytes) -> None:
        self.writes.append(data)


def test_the_forwarder_holds_a_traceback_and_sends_it_as_one_write() -> None:
    sink = _Lines()
    fwd = LineForwarder(sink, 2, b"[3] ")
    fwd.feed(b"before\nTraceback (most recent call last):\n  File")
    fwd.feed(b' "x.py", line 1\nValueError: v\n')
    assert sink.writes == [b"[3] before\n"]
    assert fwd.holding
    fwd.forward_idle()  # not quiet yet
    assert len(sink.writes) == 1
    fwd.close()
    assert sink.writes[1] == (
        b'[3] Traceback (most recent call last):\n[3]   File "x.py", line 1\n[3] ValueError: v\n'
    )
    assert not fwd.holding


def test_the_forwarder_sends_a_held_block_once_its_stream_is_quiet() -> None:
    sink = _Lines()
    fwd = LineForwarder(sink, 2)
    fwd.feed(b"Traceback (most recent call last):\nE: e\n")
    import time

    fwd.forward_idle(time.monotonic() + 1.0)
    assert sink.writes == [b"Traceback (most recent call last):\nE: e\n"]
    fwd.feed(b"later\n")  # not a traceback: forwarded at once
    assert sink.writes[-1] == b"later\n"


def test_the_forwarder_rewrites_a_block_or_leaves_it() -> None:
    sink = _Lines()
    fwd = LineForwarder(sink, 2, b"", lambda block: b"one line\n" if b"Pfe" in block else None)
    fwd.feed(b"Traceback (most recent call last):\nPfe: x\n")
    fwd.forward_held()
    fwd.feed(b"  Traceback (most recent call last): not at a line's start\n")
    fwd.feed(b"Traceback (most recent call last):\nOther: y\n")
    fwd.close()
    assert sink.writes == [
        b"one line\n",
        b"  Traceback (most recent call last): not at a line's start\n",
        b"Traceback (most recent call last):\nOther: y\n",
    ]


class _Streams:
    def __init__(self) -> None:
        self.writes: list[tuple[int, bytes]] = []

    def write(self, stream: int, data: bytes) -> None:
        self.writes.append((stream, data))


def test_a_held_traceback_goes_out_before_the_ranks_next_stdout_line() -> None:
    import sys

    from treecast.launcher.supervisor import run_job

    prog = (
        "import sys, time, traceback\n"
        "try:\n"
        "    1 / 0\n"
        "except ZeroDivisionError:\n"
        "    traceback.print_exc()\n"
        "sys.stderr.flush()\n"
        "time.sleep(0.5)\n"
        "print('after the traceback', flush=True)\n"
    )
    sink = _Streams()
    result = run_job([sys.executable, "-c", prog], 1, sink=sink, timeout=60)
    assert result.returncode == 0
    order = [(stream, data.decode()) for stream, data in sink.writes]
    tb = next(i for i, (s, d) in enumerate(order) if s == 2 and "ZeroDivisionError" in d)
    out = next(i for i, (s, d) in enumerate(order) if s == 1 and "after the traceback" in d)
    assert tb < out, order
