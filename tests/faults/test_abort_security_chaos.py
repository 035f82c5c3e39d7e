"""Abort on exception, private segments, and a bounded chaos test of SIGKILLed ranks."""

import os
import random
import signal
import subprocess
import sys
import tempfile
import textwrap
import time

import pytest

import treecast
from treecast.testing import run_ranks

pytestmark = pytest.mark.timeout(300)


def _run(args, program, **kw):
    return subprocess.run(
        [sys.executable, "-m", "treecast", "run", *args, "-c", textwrap.dedent(program)],
        capture_output=True,
        text=True,
        timeout=60,
        **kw,
    )


def test_uncaught_exception_ends_the_job_within_a_second_traceback_first():
    program = """
        import time, treecast
        comm = treecast.world()
        if comm.rank == 1:
            time.sleep(0.5)
            print(f"raising at {time.time()!r}", flush=True)
            raise ValueError("boom on rank 1")
        comm.barrier()
    """
    proc = _run(["-n", "3"], program)
    ended = time.time()
    assert proc.returncode == 1
    raised = float(proc.stdout.split("raising at ")[1].split()[0])
    assert ended - raised < 1.0
    err = proc.stderr
    assert err.index("Traceback (most recent call last)") < err.index("ValueError: boom on rank 1")
    assert err.index("ValueError: boom on rank 1") < err.index(
        "treecast: rank 1 exited with code 1"
    )


def _foreign_process_is_refused():
    comm = treecast.world()
    result = None
    if comm.rank == 0:
        name = f"/dev/shm/treecast-{os.environ['TREECAST_JOB']}-world"
        out = subprocess.run(
            ["head", "-c", "1", name], user=65534, capture_output=True, text=True, timeout=30
        )
        assert out.returncode != 0
        result = "refused" if "Permission denied" in out.stderr else out.stderr
    comm.barrier()  # the job goes on
    return comm.bcast(result, root=0)


@pytest.mark.skipif(os.geteuid() != 0, reason="switching to another user needs root")
def test_a_process_of_another_user_cannot_open_the_segment_and_the_job_goes_on():
    assert run_ranks(_foreign_process_is_refused, 2) == ["refused", "refused"]


CHAOS_PROGRAM = """
    import os, random, sys, time
    import numpy as np
    import treecast
    comm = treecast.world()
    path = os.path.join(sys.argv[1], f"pid-{comm.rank}")
    with open(path + ".part", "w") as f:
        f.write(f"{os.getpid()} {os.environ['TREECAST_JOB']}")
    os.replace(path + ".part", path)  # the test never reads half of it
    rng = random.Random(int(sys.argv[2]))
    deadline = time.monotonic() + 20
    try:
        while time.monotonic() < deadline:
            op = rng.randrange(4)
            root = rng.randrange(comm.size)
            if op == 0:
                comm.bcast({"x": rng.random()}, root=root)
            elif op == 1:
                comm.Bcast(np.zeros(rng.choice([1, 1000, 300_000])), root=root)
            elif op == 2:
                comm.barrier()
            else:
                other = (comm.rank + 1) % comm.size
                comm.sendrecv(comm.rank, other, source=(comm.rank - 1) % comm.size)
    except treecast.ProcessFailedError as exc:
        print(f"survivor {comm.rank}: {exc}", flush=True)
    else:
        print(f"completed {comm.rank}", flush=True)
"""


def _job_segments(job: str) -> list[str]:
    return [e for e in os.listdir("/dev/shm") if e.startswith(f"treecast-{job}-")]


def _chaos_run(n: int, rng: random.Random, run: int) -> None:
    """Start a job of ``n`` ranks running random collectives, SIGKILL a random rank at a
    random moment once every rank runs, and check what everybody saw."""
    with tempfile.TemporaryDirectory() as tmp:
        seed = rng.randrange(1 << 30)
        proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "treecast",
                "run",
                "--keep-going",
                "-n",
                str(n),
                "-c",
                textwrap.dedent(CHAOS_PROGRAM),
                tmp,
                str(seed),
            ],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        job = None
        try:
            pids = {}
            start = time.monotonic()
            while len(pids) < n and time.monotonic() - start < 30 + n:
                for r in range(n):
                    path = os.path.join(tmp, f"pid-{r}")
                    if r not in pids and os.path.exists(path):
                        with open(path) as fh:
                            text = fh.read()
                        pid, job = text.split()
                        pids[r] = int(pid)
                time.sleep(0.01)
            assert len(pids) == n, f"run {run}: ranks did not start"
            time.sleep(rng.uniform(0.0, 0.4))
            victim = rng.randrange(n)
            os.kill(pids[victim], signal.SIGKILL)
            out, err = proc.communicate(timeout=30 + 2 * n)
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.communicate()
    assert proc.returncode == 128 + signal.SIGKILL, (run, proc.returncode, err)
    assert f"treecast: rank {victim} was killed by signal SIGKILL" in err, (run, err)
    lines = out.splitlines()
    survivors = [line for line in lines if line.startswith("survivor")]
    completed = [line for line in lines if line.startswith("completed")]
    assert len(survivors) + len(completed) == n - 1, (run, victim, out, err)
    assert f"survivor {victim}:" not in out and f"completed {victim}" not in out, (run, out)
    for line in survivors:
        assert f"rank(s) {victim} died" in line, (run, line)
    for pid in pids.values():  # no rank is left running
        with pytest.raises(ProcessLookupError):
            os.kill(pid, 0)
    assert job is not None and not _job_segments(job), (run, job, _job_segments(job))


def test_chaos_sigkill_a_random_rank_at_a_random_moment(chaos_runs):
    rng = random.Random(20261123)
    for run in range(chaos_runs):
        _chaos_run(4, rng, run)


@pytest.mark.timeout(240)
def test_chaos_sigkill_one_of_16_oversubscribed_ranks(chaos_runs_oversubscribed):
    # 16 ranks on a machine of a few cores: most ranks wait descheduled when the kill comes
    rng = random.Random(20261204)
    for run in range(chaos_runs_oversubscribed):
        _chaos_run(16, rng, run)
