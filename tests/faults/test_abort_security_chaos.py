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
    with open(os.path.join(sys.argv[1], f"pid-{comm.rank}"), "w") as f:
        f.write(str(os.getpid()))
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
"""


def test_chaos_sigkill_a_random_rank_at_a_random_moment(chaos_runs):
    rng = random.Random(20261123)
    for run in range(chaos_runs):
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
                    "4",
                    "-c",
                    textwrap.dedent(CHAOS_PROGRAM),
                    tmp,
                    str(seed),
                ],
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
            )
            try:
                pids = {}
                start = time.monotonic()
                while len(pids) < 4 and time.monotonic() - start < 30:
                    for r in range(4):
                        path = os.path.join(tmp, f"pid-{r}")
                        if r not in pids and os.path.exists(path):
                            with open(path) as fh:
                                text = fh.read()
                            if text:
                                pids[r] = int(text)
                    time.sleep(0.01)
                assert len(pids) == 4, f"run {run}: ranks did not start"
                time.sleep(rng.uniform(0.0, 0.4))
                victim = rng.randrange(4)
                os.kill(pids[victim], signal.SIGKILL)
                out, err = proc.communicate(timeout=30)
            finally:
                if proc.poll() is None:
                    proc.kill()
                    proc.communicate()
            assert proc.returncode == 128 + signal.SIGKILL, (run, proc.returncode, err)
            assert f"treecast: rank {victim} was killed by signal SIGKILL" in err, (run, err)
            survivors = [line for line in out.splitlines() if line.startswith("survivor")]
            assert len(survivors) == 3, (run, victim, out, err)
            for line in survivors:
                assert f"rank(s) {victim} died" in line, (run, line)
            for pid in pids.values():  # no rank is left running
                with pytest.raises(ProcessLookupError):
                    os.kill(pid, 0)
