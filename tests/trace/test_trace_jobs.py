"""Traced jobs end to end: ``treecast run --trace``, ``TREECAST_TRACE`` with ``launch()``, a
world of one and ``mpiexec``; the trace file is loaded and its structure checked against
what the ranks did (slices per rank and call, flows along the algorithm's edges, waits,
copies, a rank that died)."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from collections import Counter
from pathlib import Path

import pytest
from trace_checks import check_trace, count_by, load, messages, outermost, ranks, slices

import treecast
from treecast.algorithms import registry

pytestmark = pytest.mark.timeout(150)

JOB_TIMEOUT = 90
CALLS = """
import os, signal, sys, time
import numpy as np
import treecast

comm = treecast.world()
r = comm.rank
comm.bcast({"payload": list(range(10))} if r == 1 else None, root=1, algorithm="binomial")
small = np.full(1 << 14, r, dtype=np.uint8)
comm.Bcast(small, root=2, algorithm="scatter_ring_allgather")
big = np.full(4 << 20, r, dtype=np.uint8)  # through node memory (its arena: more calls)
comm.Bcast(big, root=0)
assert small[0] == 2 and big[-1] == 0
comm.barrier()
if r == 0:
    time.sleep(0.05)  # rank 3 waits for this message
    comm.send("hello", dest=3, tag=7)
elif r == 3:
    assert comm.recv(source=0, tag=7) == "hello"
elif r == 1:
    comm.Send(big, dest=2, tag=9)  # 4 MiB through a ring: copies
else:
    comm.Recv(big, source=1, tag=9)
assert comm.allreduce(r) == 6
req = comm.Ibcast(np.arange(4.0) if r == 0 else np.empty(4), root=0)
req.wait()
sub = comm.split(r % 2)
assert sub.allgather(r) == [r % 2, r % 2 + 2]
"""


def _run(args: list[str], env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith("TREECAST_")}
    return subprocess.run(
        [sys.executable, "-m", "treecast", *args],
        capture_output=True,
        text=True,
        timeout=JOB_TIMEOUT,
        stdin=subprocess.DEVNULL,
        env={**clean, "TREECAST_TIMEOUT": "60", **(env or {})},
    )


def _script(tmp_path: Path, source: str, name: str = "job.py") -> str:
    path = tmp_path / name
    path.write_text(textwrap.dedent(source))
    return str(path)


@pytest.fixture(scope="module")
def calls_trace(tmp_path_factory: pytest.TempPathFactory) -> dict:
    """The trace of CALLS on 4 ranks, and the launcher's stderr."""
    tmp = tmp_path_factory.mktemp("calls")
    out = tmp / "calls.json"
    proc = _run(["run", "-n", "4", "--trace", str(out), "python", _script(tmp, CALLS)])
    assert proc.returncode == 0, proc.stderr
    return {"trace": load(out), "stderr": proc.stderr, "out": out}


def test_the_trace_is_well_formed_with_a_track_per_rank(calls_trace: dict) -> None:
    trace = calls_trace["trace"]
    check_trace(trace)
    assert sorted(ranks(trace).values()) == [0, 1, 2, 3]
    threads = [e["args"]["name"] for e in trace["traceEvents"] if e["name"] == "thread_name"]
    assert sorted(threads) == ["rank 0", "rank 1", "rank 2", "rank 3"]
    assert f"trace of 4 ranks written to {calls_trace['out']}" in calls_trace["stderr"]
    assert trace["otherData"]["treecast"]["clock_offsets_ns"] == {str(r): 0 for r in range(4)}


def test_every_rank_has_a_slice_per_call_with_its_facts(calls_trace: dict) -> None:
    calls = [
        s for s in outermost(slices(calls_trace["trace"])) if s["cat"] in ("collective", "comm")
    ]
    names = ["bcast", "Bcast", "barrier", "allreduce", "Ibcast", "split", "allgather"]
    assert count_by(calls, "name") == {(n,): 8 if n == "Bcast" else 4 for n in names}
    for call in calls:
        args = call["args"]
        assert {"comm", "seq", "algorithm", "bytes"} <= set(args), call
        if call["name"] in ("bcast", "Ibcast"):
            assert args["root"] == {"bcast": 1, "Ibcast": 0}[call["name"]]
    first = {c["name"]: c["args"]["seq"] for c in calls}
    assert first["bcast"] == 1 and first["barrier"] == first["Ibcast"] - 2
    # a call: one number and algorithm on every rank
    seqs = Counter((c["name"], c["args"]["seq"], c["args"]["algorithm"]) for c in calls)
    assert all(n == 4 for n in seqs.values()), seqs
    (big,) = {c["args"]["seq"]: c for c in calls if c["args"].get("bytes") == 4 << 20}.values()
    assert big["args"]["root"] == 0 and big["args"]["algorithm"] == "shm_one_write"


def test_a_node_memory_broadcast_shows_its_parts(calls_trace: dict) -> None:
    trace = calls_trace["trace"]
    for rank in range(4):
        (big,) = [
            s
            for s in slices(trace)
            if s["rank"] == rank and s["args"].get("bytes") == 4 << 20 and s["cat"] == "collective"
        ]
        inside = [
            s
            for s in slices(trace)
            if s["rank"] == rank and big["ts"] <= s["ts"] <= big["ts"] + big["dur"] and s is not big
        ]
        assert any(s["cat"] == "node" and s["args"]["bytes"] == 4 << 20 for s in inside), inside


@pytest.mark.parametrize("name", ["bcast", "Bcast"])
def test_a_broadcasts_flows_are_its_algorithms_edges(calls_trace: dict, name: str) -> None:
    trace = calls_trace["trace"]
    call = next(s for s in outermost(slices(trace)) if s["name"] == name)
    seq, root, algo = call["args"]["seq"], call["args"]["root"], call["args"]["algorithm"]
    nbytes = -1 if name == "bcast" else call["args"]["bytes"]
    steps = registry.get("bcast", algo).steps
    edges = {
        (rank, step.peer)
        for rank in range(4)
        for step in steps(rank, 4, root, nbytes)
        if type(step).__name__ == "Send"
    }
    flows = [
        m
        for m in messages(trace)
        if m["args"]["kind"] == "collective"
        and m["args"]["comm"] == "world"
        and m["args"]["tag"] == seq
    ]
    assert {(m["args"]["from"], m["args"]["to"]) for m in flows} == edges
    assert algo == {"bcast": "binomial", "Bcast": "scatter_ring_allgather"}[name]
    if name == "bcast":
        assert len(flows) == 3  # one message into each other rank


def test_point_to_point_waits_and_copies(calls_trace: dict) -> None:
    trace = calls_trace["trace"]
    rank_of = ranks(trace)
    (p2p,) = [
        m
        for m in messages(trace)
        if m["args"]["kind"] == "point-to-point" and m["args"]["tag"] == 7
    ]
    assert (p2p["args"]["from"], p2p["args"]["to"]) == (0, 3)
    assert rank_of[p2p["pid"]] == 0 and rank_of[p2p["finish"]["pid"]] == 3
    (recv,) = [s for s in slices(trace, "p2p") if s["name"] == "recv"]
    assert recv["args"]["peer"] == 0 and recv["args"]["tag"] == 7 and recv["rank"] == 3
    waits = [s for s in slices(trace, "wait") if s["rank"] == 3]
    inside = [w for w in waits if recv["ts"] <= w["ts"] <= recv["ts"] + recv["dur"]]
    assert inside and inside[0]["args"]["for"].startswith("recv from rank 0")
    assert inside[0]["dur"] >= 10_000  # rank 0 slept 50 ms before sending
    (send,) = [s for s in slices(trace, "p2p") if s["name"] == "Send"]
    copies = [s for s in slices(trace, "copy") if s["rank"] in (1, 2)]
    assert send["args"]["bytes"] == 4 << 20 and copies, "4 MiB moved through a ring"


def test_a_rank_that_dies_leaves_a_partial_trace(tmp_path: Path) -> None:
    source = """
    import os, signal
    import treecast
    comm = treecast.world()
    comm.barrier()
    if comm.rank == 1:
        os.kill(os.getpid(), signal.SIGKILL)
    comm.barrier()
    """
    out = tmp_path / "failed.json"
    proc = _run(["run", "-n", "3", "--trace", str(out), "python", _script(tmp_path, source)])
    assert proc.returncode != 0
    assert "trace of 2 of 3 ranks written to" in proc.stderr, proc.stderr
    assert "rank 1 left no trace: it was killed by signal SIGKILL" in proc.stderr
    trace = load(out)
    check_trace(trace)
    assert sorted(ranks(trace).values()) == [0, 2]
    assert trace["otherData"]["treecast"]["missing_ranks"] == {
        "1": "it was killed by signal SIGKILL"
    }
    failed = [s for s in slices(trace, "collective") if s["args"]["seq"] == 2]
    assert {s["rank"] for s in failed} == {0, 2}
    assert all(s["args"].get("error") == "ProcessFailedError" for s in failed), failed


def test_launch_honours_treecast_trace(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    out = tmp_path / "launch.json"
    monkeypatch.setenv("TREECAST_TRACE", str(out))
    assert treecast.launch(_allreduce_rank, 2, timeout=JOB_TIMEOUT) == [1, 1]
    trace = load(out)
    check_trace(trace)
    assert count_by(slices(trace, "collective"), "rank", "name") == {
        (0, "allreduce"): 1,
        (1, "allreduce"): 1,
    }


def _allreduce_rank() -> int:
    return treecast.world().allreduce(treecast.world().rank)


def test_without_tracing_nothing_is_wrapped_or_recorded(tmp_path: Path) -> None:
    source = """
    import sys
    import treecast
    comm = treecast.world()
    comm.barrier()
    print("hooks:", "treecast.tracing.hooks" in sys.modules, comm._t._rec is not None)
    """
    proc = _run(
        ["run", "-n", "2", "python", _script(tmp_path, source)],
        env={"TREECAST_TRACE_DIR": str(tmp_path)},
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.count("hooks: False False") == 2
    assert not list(tmp_path.glob("trace-rank-*"))


def test_an_unwritable_trace_file_is_refused_before_any_rank_starts(tmp_path: Path) -> None:
    out = tmp_path / "missing" / "t.json"
    proc = _run(["run", "-n", "2", "--trace", str(out), "python", "-c", "print('ran')"])
    assert proc.returncode == 2 and "ran" not in proc.stdout
    assert "does not exist" in proc.stderr and str(out.parent) in proc.stderr


def test_a_world_of_one_writes_the_merged_file_itself(tmp_path: Path) -> None:
    out = tmp_path / "one.json"
    code = "import treecast; c = treecast.world(); c.bcast(1); c.barrier()"
    clean = {k: v for k, v in os.environ.items() if not k.startswith("TREECAST_")}
    subprocess.run(
        [sys.executable, "-c", code],
        check=True,
        timeout=JOB_TIMEOUT,
        env={**clean, "TREECAST_TRACE": str(out)},
    )
    trace = load(out)
    check_trace(trace)
    assert count_by(slices(trace), "rank", "name") == {(0, "bcast"): 1, (0, "barrier"): 1}


def test_under_mpiexec_each_rank_writes_its_file_for_trace_merge(tmp_path: Path) -> None:
    mpi_helpers = pytest.importorskip("mpi_helpers")
    out = tmp_path / "mpi.json"
    script = _script(tmp_path, "import treecast\nc = treecast.world()\nc.bcast(c.rank, root=0)\n")
    proc = mpi_helpers.run_job(
        Path(script), n=4, timeout=JOB_TIMEOUT, env={"TREECAST_TRACE": str(out)}
    )
    assert proc.returncode == 0, proc.stderr
    directory = tmp_path / "mpi.json.ranks"
    assert f"treecast trace-merge {directory} {out}" in proc.stderr
    assert sorted(p.name for p in directory.iterdir()) == [f"trace-rank-{r}.json" for r in range(4)]
    merged = _run(["trace-merge", str(directory), str(out)])
    assert merged.returncode == 0, merged.stderr
    trace = load(out)
    check_trace(trace)
    assert len(messages(trace)) == 3  # across the two fake nodes too


def test_a_rank_ended_while_it_waits_shows_the_unfinished_call(tmp_path: Path) -> None:
    source = """
    import time
    import treecast
    comm = treecast.world()
    comm.barrier()
    if comm.rank == 0:
        comm.recv(source=1, tag=5)  # never sent: the job's timeout ends it
    else:
        time.sleep(60)
    """
    out = tmp_path / "hung.json"
    proc = _run(
        [
            "run",
            "-n",
            "2",
            "--timeout",
            "3",
            "--trace",
            str(out),
            "python",
            _script(tmp_path, source),
        ]
    )
    assert proc.returncode == 124, proc.stderr
    trace = load(out)
    check_trace(trace)
    assert sorted(ranks(trace).values()) == [0, 1]  # both wrote theirs on SIGTERM
    (recv,) = [s for s in slices(trace, "p2p") if s["name"] == "recv"]
    assert recv["rank"] == 0 and recv["args"]["unfinished"] is True
    waits = [s for s in slices(trace, "wait") if s["rank"] == 0]
    assert waits and waits[-1]["ts"] + waits[-1]["dur"] >= recv["ts"] + recv["dur"] - 1e3
