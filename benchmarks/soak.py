"""Soak test (issue 18, proof under stress): jobs of random collectives, one after another,
until the time is up; in some of them one rank is SIGKILLed at a random moment.

    python benchmarks/soak.py --minutes 3 -n 4 [--seed S]

Each job is ``python -m treecast run -n N`` of the rank program below. Its ranks draw the
same plan from the job's seed: a sequence of operations (bcast, bcast(copy=False), gather,
allgather, allreduce, reduce, scatter, alltoall, barrier, Bcast and Allreduce of NumPy
arrays, send/recv between pairs of ranks) with random sizes from 0 B to 4 MiB and random
roots; each rank pauses for a few random milliseconds before some of them. Every rank checks
every result against what it computes itself.

A job ends in one of these ways:

- ``ok``: it exited 0 (a job without a kill), or as a kill requires: the launcher exited
  non-zero naming the killed rank and, under ``--keep-going``, every other rank either
  finished its plan or raised ``ProcessFailedError`` naming the killed rank, and exited 0;
- ``HANG``: the launcher had not exited after ``--job-deadline`` seconds (its process group
  and the job's ranks are then SIGKILLed);
- ``WRONG``: a rank found a wrong value (it exits with status 3 and says which);
- ``FAILED``: anything else (a rank raised, a launcher status or message that is not the
  expected one).

After each job the segments of that job (``/dev/shm/treecast-<job>-*``; the job's token is
read from its ranks) that are still there are LEAKS: counted, then removed so that the next
job starts clean. Segments of other jobs on the machine are never touched.

The last line is the summary; the exit status is 0 only if there were no hangs, leaks,
wrong results or failures.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import random
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field

from treecast.cli import number_type

WRONG_STATUS = 3
"""Exit status of a rank that found a wrong value."""
SHM_DIR = "/dev/shm"
OPS = (
    "bcast",
    "bcast_shared",
    "gather",
    "allgather",
    "allreduce",
    "reduce",
    "scatter",
    "alltoall",
    "barrier",
    "Bcast",
    "Allreduce",
    "sendrecv",
)

RANK_PROGRAM = r"""
import os, random, sys, time
import numpy as np
import treecast

WRONG_STATUS = 3
out_dir, seed, mode, OPS = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4].split(",")
comm = treecast.world()
rank, size = comm.rank, comm.size


def note(name, text):
    path = os.path.join(out_dir, f"{name}-{rank}")
    with open(path + ".part", "w") as f:
        f.write(text)
    os.replace(path + ".part", path)  # the soak never reads half a note


note("ready", f"{os.getpid()} {os.environ['TREECAST_JOB']}")
plan = random.Random(seed)  # the same on every rank: operations, sizes, roots
pauses = random.Random(seed * 7919 + rank)  # this rank's own
BASE = np.arange(256, dtype=np.uint8)


def pattern(nbytes, salt):
    return np.resize(np.roll(BASE, -(salt % 256)), nbytes)


def ints(nbytes, salt):
    return np.arange(nbytes // 8, dtype=np.int64) + salt


def check(ok, what):
    if not ok:
        note("wrong", f"rank {rank}: wrong result of {what}")
        sys.stderr.write(f"rank {rank}: WRONG result of {what}\n")
        sys.exit(WRONG_STATUS)


def step(i):
    op = plan.choice(OPS)
    root = plan.randrange(size)
    nbytes = 0 if plan.random() < 0.1 else int(2 ** plan.uniform(0, 22))
    if pauses.random() < 0.3:
        time.sleep(pauses.uniform(0, 0.02))
    what = f"{op} #{i} root {root} {nbytes} B"
    if op == "bcast":
        obj = {"i": i, "a": pattern(nbytes, i)} if rank == root else None
        got = comm.bcast(obj, root=root)
        check(got["i"] == i and np.array_equal(got["a"], pattern(nbytes, i)), what)
    elif op == "bcast_shared":
        got = comm.bcast(pattern(nbytes, i) if rank == root else None, root=root, copy=False)
        check(np.array_equal(got, pattern(nbytes, i)), what)
    elif op in ("gather", "allgather"):
        part = pattern(nbytes // size, i + rank)
        got = comm.gather(part, root=root) if op == "gather" else comm.allgather(part)
        if op == "allgather" or rank == root:
            check(
                len(got) == size
                and all(np.array_equal(g, pattern(nbytes // size, i + r)) for r, g in enumerate(got)),
                what,
            )
        else:
            check(got is None, what)
    elif op in ("allreduce", "reduce"):
        v = ints(nbytes, i + rank)
        got = comm.allreduce(v, op=treecast.SUM) if op == "allreduce" else comm.reduce(
            v, op=treecast.SUM, root=root
        )
        want = ints(nbytes, 0) * size + i * size + size * (size - 1) // 2
        if op == "allreduce" or rank == root:
            check(np.array_equal(got, want), what)
        else:
            check(got is None, what)
    elif op == "scatter":
        items = [pattern(nbytes // size, i + r) for r in range(size)] if rank == root else None
        got = comm.scatter(items, root=root)
        check(np.array_equal(got, pattern(nbytes // size, i + rank)), what)
    elif op == "alltoall":
        m = nbytes // size
        got = comm.alltoall([pattern(m, i + 7 * rank + j) for j in range(size)])
        check(
            len(got) == size
            and all(np.array_equal(g, pattern(m, i + 7 * j + rank)) for j, g in enumerate(got)),
            what,
        )
    elif op == "barrier":
        comm.barrier()
    elif op == "Bcast":
        buf = ints(nbytes, i + 1) if rank == root else np.zeros(nbytes // 8, np.int64)
        comm.Bcast(buf, root=root)
        check(np.array_equal(buf, ints(nbytes, i + 1)), what)
    elif op == "Allreduce":
        out = np.zeros(nbytes // 8, np.int64)
        comm.Allreduce(ints(nbytes, i + rank), out, op=treecast.SUM)
        check(np.array_equal(out, ints(nbytes, 0) * size + i * size + size * (size - 1) // 2), what)
    else:  # sendrecv: ranks 2k and 2k + 1 swap (the lower sends first), a last odd one rests
        partner = rank ^ 1
        if partner < size:
            tag = i % 30000
            mine = pattern(nbytes, i + rank)
            if plan.random() < 0.5:
                if rank < partner:
                    comm.send(mine, dest=partner, tag=tag)
                    got = comm.recv(source=partner, tag=tag)
                else:
                    got = comm.recv(source=partner, tag=tag)
                    comm.send(mine, dest=partner, tag=tag)
            else:
                got = np.zeros(nbytes, np.uint8)
                if rank < partner:
                    comm.Send(mine, dest=partner, tag=tag)
                    comm.Recv(got, source=partner, tag=tag)
                else:
                    comm.Recv(got, source=partner, tag=tag)
                    comm.Send(mine, dest=partner, tag=tag)
            check(np.array_equal(got, pattern(nbytes, i + partner)), what)
        else:
            plan.random()  # keep the plan in step with the pairs' ranks


# a job with a kill runs until the soak kills a rank (within seconds; the plan is long)
steps = 5000 if mode == "kill" else plan.randrange(10, 60)
try:
    for i in range(steps):
        step(i)
    comm.barrier()
    note("done", str(steps))
except treecast.ProcessFailedError as exc:
    if mode != "kill":
        raise
    note("failed", str(exc))
"""


@dataclass
class Tally:
    """What the soak has seen so far."""

    jobs: int = 0
    killed: int = 0
    hangs: int = 0
    leaks: int = 0
    wrong: int = 0
    failed: int = 0
    seconds: list[float] = field(default_factory=list)

    def bad(self) -> int:
        return self.hangs + self.leaks + self.wrong + self.failed

    def summary(self, args: argparse.Namespace) -> str:
        median = statistics.median(self.seconds) if self.seconds else 0.0
        return (
            f"soak: jobs {self.jobs} killed {self.killed} hangs {self.hangs} leaks "
            f"{self.leaks} wrong {self.wrong} failed {self.failed} median {median:.2f} s "
            f"per job (n={args.n}, seed {args.seed}, {args.minutes:g} min)"
        )


@dataclass
class Job:
    """One job: its seed, whether and how a rank is killed, what came out."""

    number: int
    seed: int
    kill: bool
    keep_going: bool
    directory: str
    proc: subprocess.Popen[bytes] | None = None
    ranks: dict[int, int] = field(default_factory=dict)
    token: str | None = None
    victim: int | None = None
    outcome: str = "ok"
    why: str = ""

    def note(self, name: str, rank: int) -> str | None:
        try:
            with open(os.path.join(self.directory, f"{name}-{rank}")) as fh:
                return fh.read()
        except FileNotFoundError:
            return None

    def read_ready(self, n: int) -> None:
        for r in range(n):
            if r not in self.ranks:
                text = self.note("ready", r)
                if text is not None:
                    pid, self.token = text.split()
                    self.ranks[r] = int(pid)

    def stderr(self) -> str:
        with open(os.path.join(self.directory, "stderr"), errors="replace") as fh:
            return fh.read()


_positive = number_type(float, above=0)
_ranks = number_type(int, at_least=2)  # a kill needs a survivor
_share = number_type(float, at_least=0, at_most=1)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description="Run jobs of random collectives (random sizes, roots, delays; a random "
        "SIGKILL in some) until the time is up; count hangs, leaked /dev/shm segments and "
        "wrong results. Exits 0 only if there were none (and no other failure).",
    )
    parser.add_argument(
        "--minutes", type=_positive, required=True, help="how long to start new jobs"
    )
    parser.add_argument("-n", type=_ranks, default=4, help="ranks per job (default 4)")
    parser.add_argument(
        "--seed", type=int, default=None, help="seed of the whole run (default: random)"
    )
    parser.add_argument(
        "--kill-share",
        type=_share,
        default=0.3,
        help="share of jobs in which one rank is SIGKILLed (default 0.3)",
    )
    parser.add_argument(
        "--job-deadline",
        type=_positive,
        default=60.0,
        help="seconds after which a job that has not ended is a hang (default 60)",
    )
    parser.add_argument("-v", "--verbose", action="store_true", help="a line for every job")
    args = parser.parse_args(argv)
    if args.seed is None:
        args.seed = random.randrange(1 << 31)
    return args


def _segments(token: str) -> list[str]:
    try:
        return [e for e in os.listdir(SHM_DIR) if e.startswith(f"treecast-{token}-")]
    except FileNotFoundError:
        return []


def _token_from_children(launcher: int) -> str | None:
    """The job token of a launcher whose ranks never said it: from the environment of its
    children (the ranks and the reaper carry ``TREECAST_JOB`` or the segments' stem)."""
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as fh:
                parent = int(fh.read().rsplit(")", 1)[1].split()[1])
            if parent != launcher:
                continue
            with open(f"/proc/{entry}/environ", "rb") as fh:
                for item in fh.read().split(b"\0"):
                    if item.startswith(b"TREECAST_JOB="):
                        return item.split(b"=", 1)[1].decode()
            with open(f"/proc/{entry}/cmdline", "rb") as fh:
                args = fh.read().split(b"\0")
            for arg in args:
                if arg.startswith(b"treecast-") and arg.endswith(b"-"):
                    return arg.decode()[len("treecast-") : -1]
        except (OSError, ValueError, IndexError):
            continue
    return None


def _kill_job(job: Job) -> None:
    """SIGKILL a hung job: the launcher's process group and every rank it said it has."""
    assert job.proc is not None
    if job.token is None:
        job.token = _token_from_children(job.proc.pid)
    with contextlib.suppress(ProcessLookupError):
        os.killpg(job.proc.pid, signal.SIGKILL)
    for pid in job.ranks.values():
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
    job.proc.wait()


def run_job(job: Job, n: int, deadline: float, rng: random.Random) -> float:
    """Start ``job``, kill a rank if it is a kill job, wait for its end (at most
    ``deadline`` seconds) and classify it; returns its seconds."""
    out = open(os.path.join(job.directory, "stdout"), "wb")  # noqa: SIM115 - closed below
    err = open(os.path.join(job.directory, "stderr"), "wb")  # noqa: SIM115
    cmd = [sys.executable, "-m", "treecast", "run", "-n", str(n)]
    if job.keep_going:
        cmd.append("--keep-going")
    cmd += ["-c", RANK_PROGRAM, job.directory, str(job.seed), "kill" if job.kill else "plain"]
    cmd.append(",".join(OPS))
    start = time.monotonic()
    try:
        job.proc = subprocess.Popen(cmd, stdout=out, stderr=err, start_new_session=True)
        end = start + deadline
        if job.kill:
            while len(job.ranks) < n and time.monotonic() < end and job.proc.poll() is None:
                job.read_ready(n)
                time.sleep(0.01)
            if len(job.ranks) == n:
                time.sleep(rng.uniform(0.0, 1.5))
                job.victim = rng.randrange(n)
                with contextlib.suppress(ProcessLookupError):  # gone: the launcher says why
                    os.kill(job.ranks[job.victim], signal.SIGKILL)
        try:
            job.proc.wait(timeout=max(0.0, end - time.monotonic()))
        except subprocess.TimeoutExpired:
            job.read_ready(n)
            _kill_job(job)
            job.outcome, job.why = "HANG", f"still running after {deadline:g} s"
    finally:
        if job.proc is not None and job.proc.poll() is None:  # interrupted: leave nothing
            _kill_job(job)
        out.close()
        err.close()
    seconds = time.monotonic() - start
    job.read_ready(n)
    if job.outcome == "ok":
        _classify(job, n)
    return seconds


def _classify(job: Job, n: int) -> None:
    """Set ``job.outcome`` and ``job.why`` from its exit status, output and notes."""
    assert job.proc is not None
    status = job.proc.returncode
    stderr = job.stderr()
    wrong = [w for r in range(n) if (w := job.note("wrong", r)) is not None]
    if wrong:
        job.outcome, job.why = "WRONG", "; ".join(wrong)
        return
    if not job.kill or job.victim is None:
        if job.kill:
            job.outcome, job.why = "FAILED", "the ranks never all started"
        elif status != 0:
            job.outcome, job.why = "FAILED", f"exit status {status}: {stderr[-2000:]}"
        return
    victim = job.victim
    if status == 0 or f"rank {victim} was killed by signal SIGKILL" not in stderr:
        job.outcome = "FAILED"
        job.why = f"rank {victim} killed, launcher exit {status}: {stderr[-2000:]}"
        return
    if not job.keep_going:
        return
    for r in range(n):
        if r == victim:
            continue
        done, failed = job.note("done", r), job.note("failed", r)
        exited = f"treecast: rank {r} exited with code"
        if failed is not None and f"rank(s) {victim} died" not in failed:
            job.outcome, job.why = "FAILED", f"rank {r} raised, not naming {victim}: {failed}"
        elif done is None and failed is None:
            job.outcome, job.why = (
                "FAILED",
                f"rank {r} neither finished nor raised: {stderr[-2000:]}",
            )
        elif exited in stderr:
            job.outcome, job.why = "FAILED", f"rank {r} exited non-zero: {stderr[-2000:]}"
        else:
            continue
        return


def _leaks(job: Job) -> list[str]:
    """The job's segments still there once it has ended (a killed launcher's reaper gets a
    few seconds), removed."""
    if job.token is None:
        return []
    settle = time.monotonic() + (10.0 if job.outcome == "HANG" else 2.0)
    left = _segments(job.token)
    while left and time.monotonic() < settle:
        time.sleep(0.05)
        left = _segments(job.token)
    for name in left:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(os.path.join(SHM_DIR, name))
    return left


def _one_job(args: argparse.Namespace, rng: random.Random, tally: Tally) -> None:
    """Run one job of the soak and count how it ended."""
    kill = rng.random() < args.kill_share
    with tempfile.TemporaryDirectory(prefix="treecast-soak-") as tmp:
        job = Job(
            number=tally.jobs,
            seed=rng.randrange(1 << 31),
            kill=kill,
            keep_going=kill and rng.random() < 0.5,
            directory=tmp,
        )
        seconds = run_job(job, args.n, args.job_deadline, rng)
        left = _leaks(job)
    tally.jobs += 1
    tally.killed += job.victim is not None
    tally.seconds.append(seconds)
    if job.outcome == "HANG":
        tally.hangs += 1
    elif job.outcome == "WRONG":
        tally.wrong += 1
    elif job.outcome == "FAILED":
        tally.failed += 1
    if left:
        tally.leaks += 1
    kind = "plain"
    if job.kill:
        kind = f"kill rank {job.victim}" + (" --keep-going" if job.keep_going else "")
    if args.verbose or job.outcome != "ok" or left:
        line = f"job {job.number} seed {job.seed} ({kind}): {job.outcome} in {seconds:.2f} s"
        if left:
            line += f"; LEAKED {', '.join(left)}"
        if job.why:
            line += f"\n    {job.why.strip()}"
        print(line, flush=True)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    rng = random.Random(args.seed)
    tally = Tally()
    stop = time.monotonic() + 60 * args.minutes
    print(
        f"soak: {args.minutes:g} min of jobs of {args.n} ranks, seed {args.seed}, "
        f"{args.kill_share:g} of them with a SIGKILL",
        flush=True,
    )
    try:
        while time.monotonic() < stop:
            _one_job(args, rng, tally)
    except KeyboardInterrupt:  # the job was ended (run_job's finally); say what was seen
        print("soak: interrupted", flush=True)
        print(tally.summary(args), flush=True)
        return 130
    print(tally.summary(args), flush=True)
    return 1 if tally.bad() else 0


if __name__ == "__main__":
    sys.exit(main())
