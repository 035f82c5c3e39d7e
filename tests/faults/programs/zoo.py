"""One rank of a hang-zoo case: ``python zoo.py CASE``. No timeout is set anywhere.

Each rank writes one line ``RESULT rank=R outcome=O elapsed=S`` (in one write, so lines of
ranks never mix), where O is ``returned`` or the name of the treecast error it raised and
S the seconds from the start of the case's faulty call to that moment; a rank that raised
exits with status 3.
"""

import sys
import threading
import time

import numpy as np

import treecast

comm = treecast.world()
r, n = comm.rank, comm.size
case = sys.argv[1]
start = time.monotonic()


def report(outcome: str) -> None:
    sys.stdout.write(f"RESULT rank={r} outcome={outcome} elapsed={time.monotonic() - start:.2f}\n")
    sys.stdout.flush()


def run() -> None:
    global start
    if case == "gather_vs_bcast":
        if r == 0:
            comm.gather(1, root=0)
        else:
            comm.bcast(None, root=0)
    elif case == "recv_ring":  # every rank receives first: the textbook deadlock
        comm.recv(source=(r + 1) % n)
    elif case == "ssend_ring":
        comm.ssend(r, dest=(r + 1) % n)
        comm.recv(source=(r - 1) % n)
    elif case == "barrier_after_timeout":
        if r == 0:
            time.sleep(1.0)
        else:
            try:
                comm.barrier(timeout=0.5)
            except treecast.TimeoutError:
                pass
        start = time.monotonic()
        comm.barrier()
    elif case == "roots":
        comm.bcast("x", root=0 if r == 0 else 1)
    elif case == "counts":
        comm.Bcast(np.zeros(10 if r == 0 else 5), root=0)
    elif case == "dtypes":
        out = np.zeros(8, dtype="f8" if r == 0 else "f4")
        comm.Allreduce(np.ones_like(out), out)
    elif case == "reduce_vs_allreduce":
        if r == 0:
            comm.reduce(1, root=0)
        else:
            comm.allreduce(1)
    elif case == "bcast_vs_gather":  # no rank waits: only the exit check can see it
        if r == 0:
            comm.bcast(1, root=0)
        else:
            comm.gather(r, root=0)
    elif case == "p2p_left":  # allowed by MPI: a warning at exit
        if r == 0:
            comm.send("never received", dest=1, tag=7)
    elif case == "free_mismatch":
        sub = comm.dup()
        if r == 0:
            sub.bcast(1, root=0)
        else:
            sub.gather(r, root=0)
        comm.barrier()
        sub.free()
    # ---- not deadlocks: each must complete ----
    elif case == "compute":  # rank 0 computes (no treecast call) while the others wait
        if r == 0:
            end = time.monotonic() + 2.0
            while time.monotonic() < end:
                pass
        comm.bcast("go" if r == 0 else None, root=0)
    elif case == "sleep":
        if r == 0:
            time.sleep(2.0)
        comm.barrier()
    elif case == "input":  # rank 0 reads stdin, which arrives after 2 s
        line = input() if r == 0 else None
        assert comm.bcast(line, root=0) == "hello"
    elif case == "slow_transfer":  # 64 MiB through 4 KiB rings: slow, never stuck
        data = np.arange(8 << 20, dtype="f8") if r == 0 else np.empty(8 << 20)
        if r == 0:
            for dest in range(1, n):
                comm.Send(data, dest=dest)
        else:
            comm.Recv(data, source=0)
            assert data[-1] == (8 << 20) - 1
    elif case == "thread":  # rank 0's main thread waits for what its other thread causes
        sub = comm.dup()
        if r == 0:
            helper = threading.Thread(target=lambda: (time.sleep(2.0), sub.send("x", dest=1)))
            helper.start()
            comm.recv(source=1)
            helper.join()
        elif r == 1:
            sub.recv(source=0)
            comm.send("y", dest=0)
    else:
        raise SystemExit(f"unknown case {case!r}")


try:
    run()
except treecast.TreecastError as exc:
    report(type(exc).__name__)
    sys.stderr.write(f"{type(exc).__name__}: {exc}\n")
    sys.exit(3)
report("returned")
