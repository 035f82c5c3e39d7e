"""``treecast run``: signals to the launcher, orphans, and shared-memory cleanup."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from launcher_helpers import (
    RunTreecast,
    Script,
    eventually,
    process_gone,
    treecast_command,
    wait_for_files,
)

from treecast.transports.segments import job_segments, unlink_job_segments

pytestmark = pytest.mark.timeout(60)

SLEEPER = (
    "import os, sys, time\n"
    "out = os.path.join(sys.argv[1], os.environ['TREECAST_RANK'])\n"
    "with open(out + '.tmp', 'w') as f:\n"
    "    f.write(f\"{os.getpid()} {os.environ['TREECAST_JOB']}\")\n"
    "os.replace(out + '.tmp', out)\n"
    "time.sleep(60)\n"
)


def _start_sleepers(
    prog: str, tmp_path: Path, nprocs: int, *, own_group: bool = False
) -> tuple[subprocess.Popen[bytes], list[int], str]:
    """Start a job of sleeping ranks; return the launcher, the ranks' pids and the job token.

    With ``own_group`` the launcher and its ranks form a new process group, as a shell job.
    """
    launcher = subprocess.Popen(
        treecast_command("-n", str(nprocs), prog, str(tmp_path)),
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        start_new_session=own_group,
    )
    files = [tmp_path / str(r) for r in range(nprocs)]
    try:
        wait_for_files(files)
    except AssertionError:
        launcher.kill()
        launcher.communicate()
        raise
    records = [f.read_text().split() for f in files]
    return launcher, [int(pid) for pid, _ in records], records[0][1]


@pytest.mark.parametrize(("signum", "status"), [(signal.SIGTERM, 143), (signal.SIGINT, 130)])
def test_signal_to_launcher_ends_every_rank(
    script: Script, tmp_path: Path, signum: signal.Signals, status: int
) -> None:
    launcher, pids, job = _start_sleepers(script(SLEEPER), tmp_path, 3)
    launcher.send_signal(signum)
    _, err = launcher.communicate(timeout=20)
    assert launcher.returncode == status
    assert f"treecast: received {signum.name}" in err.decode()
    assert all(process_gone(pid) for pid in pids)
    assert job_segments(job) == []


def test_ctrl_c_to_the_whole_job(script: Script, tmp_path: Path) -> None:
    launcher, pids, job = _start_sleepers(script(SLEEPER), tmp_path, 2, own_group=True)
    os.killpg(launcher.pid, signal.SIGINT)  # what the terminal does on Ctrl-C
    _, err = launcher.communicate(timeout=20)
    assert launcher.returncode == 130
    notes = [line for line in err.decode().splitlines() if line.startswith("treecast:")]
    assert notes[0] == "treecast: received SIGINT"
    assert not any("exited" in note or "killed" in note for note in notes)
    assert all(process_gone(pid) for pid in pids)
    assert job_segments(job) == []


def _reapers(job: str) -> list[int]:
    """Pids of the running reaper processes of ``job`` (found by their command line)."""
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            argv = Path(f"/proc/{entry}/cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        if any(a.endswith(b"reaper.py") for a in argv) and f"treecast-{job}-".encode() in argv:
            found.append(int(entry))
    return found


def _segments_gone(job: str, timeout: float = 10.0) -> bool:
    return eventually(lambda: not job_segments(job), timeout)


def test_a_sigkilled_launcher_leaves_no_rank_and_no_segment(script: Script, tmp_path: Path) -> None:
    launcher, pids, job = _start_sleepers(script(SLEEPER), tmp_path, 2)
    try:
        assert job_segments(job), "the job should have its world segment while it runs"
        reapers = _reapers(job)
        assert len(reapers) == 1
        launcher.kill()
        launcher.communicate(timeout=20)
        assert all(process_gone(pid) for pid in pids)
        assert _segments_gone(job), f"segments left: {job_segments(job)}"
        assert process_gone(reapers[0], timeout=10.0)
    finally:
        unlink_job_segments(job)  # if the reaper failed, do not leak from the test


def test_the_reaper_ends_with_a_normal_job(run_treecast: RunTreecast, script: Script) -> None:
    proc = run_treecast("-n", "2", script("import os; print(os.environ['TREECAST_JOB'])"))
    assert proc.returncode == 0
    (job,) = set(proc.stdout.split())
    assert _reapers(job) == []  # the launcher waited for it
    assert job_segments(job) == []


def test_no_segments_left_after_a_rank_is_sigkilled(
    run_treecast: RunTreecast, script: Script
) -> None:
    prog = script(
        "import os, signal, time\n"
        "job, rank = os.environ['TREECAST_JOB'], os.environ['TREECAST_RANK']\n"
        "print(job, flush=True)\n"
        "fd = os.open(f'/dev/shm/treecast-{job}-extra-{rank}', os.O_CREAT | os.O_RDWR, 0o600)\n"
        "os.close(fd)\n"
        "if rank == '1':\n"
        "    os.kill(os.getpid(), signal.SIGKILL)\n"
        "time.sleep(60)\n"
    )
    proc = run_treecast("-n", "3", prog)
    assert proc.returncode == 137
    jobs = set(proc.stdout.split())
    assert len(jobs) == 1
    job = jobs.pop()
    assert not [e for e in os.listdir("/dev/shm") if e.startswith(f"treecast-{job}")]


class _BrokenSink:
    """Output that cannot be written (a closed pipe as the launcher's stdout)."""

    def write(self, stream: int, data: bytes) -> None:
        raise BrokenPipeError(32, "Broken pipe")


def test_a_sink_that_raises_still_leaves_no_segment_and_no_reaper(tmp_path: Path) -> None:
    from treecast.launcher.supervisor import run_job

    prog = (
        "import os, time\n"
        f"open({str(tmp_path / 'job')!r}, 'w').write(os.environ['TREECAST_JOB'])\n"
        "print('a line\\nand half of one', end='', flush=True)\n"  # the half raises at close
        "time.sleep(30)\n"
    )
    with pytest.raises(BrokenPipeError):
        run_job([sys.executable, "-c", prog], 2, sink=_BrokenSink(), kill_after=1.0)
    job = (tmp_path / "job").read_text()
    try:
        assert job_segments(job) == []
        assert eventually(lambda: _reapers(job) == [], 5.0)
    finally:
        unlink_job_segments(job)


def _reaper(tmp_path: Path, told: str) -> tuple[float, int, list[str]]:
    """Run the reaper on a directory holding two segments of job "j" and one of job "jj";
    give it ``told`` then end-of-file; return its run time, exit status and what is left."""
    from treecast.launcher import reaper

    for name in ("treecast-j-world", "treecast-j-arena", "treecast-jj-world"):
        (tmp_path / name).write_bytes(b"")
    start = time.monotonic()
    proc = subprocess.run(
        [sys.executable, "-I", "-S", reaper.__file__, str(tmp_path), "treecast-j-"],
        input=told.encode(),
        timeout=60,
    )
    return time.monotonic() - start, proc.returncode, sorted(os.listdir(tmp_path))


def test_the_reaper_does_not_wait_for_reaped_or_reused_pids(tmp_path: Path) -> None:
    stranger = subprocess.Popen(["sleep", "30"])  # a rank's old pid, now another process's
    try:
        # a normal end: "done" -> one sweep and out, whatever the pids name now
        took, rc, left = _reaper(tmp_path, f"{stranger.pid}\ndone\n")
        assert rc == 0 and left == ["treecast-jj-world"] and took < 5.0
        # a killed launcher after it reaped that rank: nothing to wait for either
        took, rc, left = _reaper(tmp_path, f"{stranger.pid}\n-{stranger.pid}\n")
        assert rc == 0 and left == ["treecast-jj-world"] and took < 5.0
        # a killed launcher with the rank still running: wait for it (up to LINGER)
        tmp2 = tmp_path / "waits"
        tmp2.mkdir()
        threading.Timer(1.0, stranger.kill).start()
        took, rc, left = _reaper(tmp2, f"{stranger.pid}\n")
        assert rc == 0 and left == ["treecast-jj-world"] and 0.9 < took < 20.0
    finally:
        stranger.kill()
        stranger.wait()
