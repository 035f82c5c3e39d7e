"""treecast.MPI: mpi4py's names, error classes, topologies and launcher support."""

from __future__ import annotations

import subprocess
import sys
import textwrap
import time
import warnings
from typing import Any

import numpy as np
import pytest

import treecast
from treecast import MPI
from treecast.testing import run_ranks

pytestmark = pytest.mark.timeout(120)

ISSUE_NAMES = [
    "COMM_WORLD",
    "COMM_SELF",
    "COMM_NULL",
    "Comm",
    "Intracomm",
    "Cartcomm",
    "Request",
    "Prequest",
    "Status",
    "Op",
    "Datatype",
    "SUM",
    "PROD",
    "MAX",
    "MIN",
    "LAND",
    "LOR",
    "LXOR",
    "BAND",
    "BOR",
    "BXOR",
    "MAXLOC",
    "MINLOC",
    "REPLACE",
    "NO_OP",
    "OP_NULL",
    "INT",
    "DOUBLE",
    "FLOAT",
    "LONG",
    "CHAR",
    "BYTE",
    "BOOL",
    "COMPLEX",
    "DOUBLE_COMPLEX",
    "INT64_T",
    "UINT8_T",
    "DOUBLE_INT",
    "IN_PLACE",
    "ANY_SOURCE",
    "ANY_TAG",
    "PROC_NULL",
    "UNDEFINED",
    "ROOT",
    "Wtime",
    "Wtick",
    "Exception",
    "ERR_ROOT",
    "ERR_RANK",
    "ERR_TAG",
    "ERR_COUNT",
    "ERR_COMM",
    "ERR_TRUNCATE",
    "ERR_DIMS",
    "ERR_ARG",
    "ERR_TYPE",
    "ERR_OP",
    "Compute_dims",
    "Get_processor_name",
    "Is_initialized",
    "Is_finalized",
    "Finalize",
    "Init",
    "Init_thread",
    "Query_thread",
    "THREAD_SINGLE",
    "THREAD_MULTIPLE",
    "Get_version",
    "get_vendor",
    "CART",
    "TAG_UB",
    "Get_error_string",
    "Get_error_class",
    "Alloc_mem",
    "Free_mem",
    "Attach_buffer",
    "Detach_buffer",
    "pickle",
]

COMM_METHODS = [
    "Get_rank",
    "Get_size",
    "send",
    "recv",
    "isend",
    "irecv",
    "issend",
    "ssend",
    "sendrecv",
    "probe",
    "iprobe",
    "Send",
    "Recv",
    "Isend",
    "Irecv",
    "Sendrecv",
    "Ssend",
    "Issend",
    "Probe",
    "Iprobe",
    "barrier",
    "Barrier",
    "bcast",
    "Bcast",
    "gather",
    "Gather",
    "Gatherv",
    "scatter",
    "Scatter",
    "Scatterv",
    "allgather",
    "Allgather",
    "Allgatherv",
    "alltoall",
    "Alltoall",
    "Alltoallv",
    "reduce",
    "Reduce",
    "allreduce",
    "Allreduce",
    "scan",
    "Scan",
    "exscan",
    "Exscan",
    "Reduce_scatter",
    "Reduce_scatter_block",
    "Ibarrier",
    "Ibcast",
    "Igather",
    "Igatherv",
    "Iscatter",
    "Iscatterv",
    "Iallgather",
    "Iallgatherv",
    "Ialltoall",
    "Ialltoallv",
    "Ireduce",
    "Iallreduce",
    "Iscan",
    "Iexscan",
    "Ireduce_scatter",
    "Ireduce_scatter_block",
    "Create_cart",
    "Split",
    "Dup",
    "Clone",
    "Free",
    "Abort",
    "Get_topology",
    "Compare",
    "Get_attr",
    "Get_name",
    "Split_type",
]

REQUEST_METHODS = [
    "Wait",
    "Test",
    "wait",
    "test",
    "Waitall",
    "waitall",
    "Testall",
    "testall",
    "Waitany",
    "waitany",
    "Testany",
    "testany",
    "Waitsome",
    "waitsome",
    "Testsome",
    "testsome",
    "Cancel",
    "Free",
    "Get_status",
]


def test_the_issue_names_exist_and_are_treecast_s_own():
    missing = [n for n in ISSUE_NAMES if not hasattr(MPI, n)]
    assert missing == []
    comm_missing = [n for n in COMM_METHODS if not hasattr(MPI.COMM_WORLD, n)]
    assert comm_missing == []
    assert [n for n in REQUEST_METHODS if not hasattr(MPI.Request, n)] == []
    assert MPI.COMM_WORLD is treecast.world()
    assert MPI.Comm is MPI.Intracomm is treecast.Comm
    assert MPI.Exception is treecast.errors.MPIError
    assert isinstance(MPI.COMM_SELF, MPI.Intracomm)
    assert MPI.COMM_SELF.Get_size() == 1


def test_unimplemented_mpi4py_names_raise_not_implemented_naming_them():
    with pytest.raises(NotImplementedError, match=r"MPI\.Win\b"):
        _ = MPI.Win
    with pytest.raises(NotImplementedError, match=r"Comm\.Spawn\b"):
        _ = MPI.COMM_WORLD.Spawn
    assert not hasattr(MPI, "File")  # absent to hasattr, as an AttributeError
    cart = MPI.COMM_SELF.Create_cart([1], periods=[True])
    with pytest.raises(NotImplementedError, match="Neighbor_alltoallw"):
        _ = cart.Neighbor_alltoallw
    with pytest.raises(AttributeError, match="no_such_thing"):
        _ = MPI.no_such_thing
    with pytest.raises(AttributeError, match="no_such_method"):
        _ = MPI.COMM_WORLD.no_such_method


def _error_class(call):
    with pytest.raises(MPI.Exception) as info:
        call()
    return info.value.Get_error_class()


def test_error_classes_for_bad_ranks_roots_tags_counts_and_communicators():
    comm = MPI.COMM_SELF
    assert _error_class(lambda: comm.bcast(1, root=1)) == MPI.ERR_ROOT
    assert _error_class(lambda: comm.reduce(1, op=MPI.SUM, root=-1)) == MPI.ERR_ROOT
    assert _error_class(lambda: comm.Bcast(np.zeros(3), root=5)) == MPI.ERR_ROOT
    assert _error_class(lambda: comm.send(1, dest=3)) == MPI.ERR_RANK
    assert _error_class(lambda: comm.recv(source=7)) == MPI.ERR_RANK
    assert _error_class(lambda: comm.send(1, dest=0, tag=-5)) == MPI.ERR_TAG
    buf = np.zeros(4, dtype=np.int32)
    assert _error_class(lambda: comm.Send([buf, 9, MPI.INT], dest=0)) == MPI.ERR_COUNT
    dup = comm.Dup()
    dup.Free()
    assert not dup and dup == MPI.COMM_NULL
    assert _error_class(lambda: dup.bcast(1)) == MPI.ERR_COMM
    assert _error_class(lambda: MPI.COMM_NULL.Get_rank()) == MPI.ERR_COMM
    assert _error_class(lambda: MPI.COMM_WORLD.Free()) == MPI.ERR_COMM
    assert _error_class(lambda: MPI.Compute_dims(7, [2, 0])) == MPI.ERR_DIMS
    req = comm.Isend(np.arange(8, dtype=np.int32), dest=0, tag=3)
    small = np.zeros(2, dtype=np.int32)
    assert _error_class(lambda: comm.Recv(small, source=0, tag=3)) == MPI.ERR_TRUNCATE
    req.Wait()
    e = MPI.Exception(MPI.ERR_ROOT)
    assert e.Get_error_class() == MPI.ERR_ROOT and MPI.Get_error_string(MPI.ERR_ROOT) == str(e)


def test_datatype_buffer_specs_and_status_counts():
    comm = MPI.COMM_SELF
    send = np.arange(10, dtype=np.float64)
    recv = np.zeros(10)
    req = comm.Isend([send, 6, MPI.DOUBLE], dest=0, tag=1)
    status = MPI.Status()
    comm.Recv([recv, MPI.DOUBLE], source=MPI.ANY_SOURCE, tag=MPI.ANY_TAG, status=status)
    req.Wait()
    assert recv[:6].tolist() == list(range(6)) and recv[6:].tolist() == [0] * 4
    assert (status.Get_source(), status.Get_tag()) == (0, 1)
    assert status.Get_count(MPI.DOUBLE) == 6 and status.Get_count(MPI.BYTE) == 48
    assert MPI.INT.Get_size() == 4 and MPI.DOUBLE.Get_extent() == (0, 8)
    assert MPI.Datatype.fromcode("i") == MPI.INT and MPI.DOUBLE.tocode() == "d"
    with pytest.raises(MPI.Exception):
        MPI.DATATYPE_NULL.Get_size()


def test_recv_with_a_buffer_warns_and_an_empty_message_is_none():
    comm = MPI.COMM_SELF
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        with pytest.raises(UserWarning, match="buf argument is ignored"):
            comm.recv(bytearray(8), MPI.PROC_NULL)
    req = comm.Isend([None, 0, MPI.BYTE], dest=0)
    assert comm.recv(source=0) is None
    assert req.Wait() is True
    assert not MPI.Request() and MPI.Request.Waitany([MPI.Request()]) == MPI.UNDEFINED


def test_environment_functions():
    assert MPI.Is_initialized() and MPI.Get_version() == (3, 1)
    assert MPI.get_vendor()[0] == "treecast"
    t0 = MPI.Wtime()
    time.sleep(0.01)
    assert 0.005 < MPI.Wtime() - t0 < 5 and 0 < MPI.Wtick() < 0.01
    assert MPI.Get_processor_name()
    assert MPI.Query_thread() in (MPI.THREAD_SERIALIZED, MPI.THREAD_MULTIPLE)
    assert MPI.COMM_WORLD.Get_attr(MPI.TAG_UB) == treecast.TAG_UB
    assert MPI.Compute_dims(12, 2) == [4, 3] and MPI.Compute_dims(12, [0, 2, 0]) == [3, 2, 2]
    assert MPI.pickle.loads(MPI.pickle.dumps({"a": 1})) == {"a": 1}
    assert MPI.COMM_SELF.Compare(MPI.COMM_SELF) == MPI.IDENT
    assert MPI.COMM_SELF.Compare(MPI.COMM_SELF.Dup()) == MPI.CONGRUENT


def _cart_2x2():
    from treecast import MPI

    comm = MPI.COMM_WORLD
    cart = comm.Create_cart([2, 2], periods=[True, True])
    coords = cart.Get_coords(cart.Get_rank())
    shifts = [cart.Shift(0, 1), cart.Shift(1, 1), cart.Shift(1, -1)]
    line = comm.Create_cart([2], periods=False)  # ranks 2 and 3 are outside this grid
    edge = line.Shift(0, 1) if line else None
    rows = cart.Sub([False, True])
    return (
        coords,
        cart.Get_topo(),
        shifts,
        line == MPI.COMM_NULL,
        edge,
        rows.Get_size(),
        cart.Get_topology() == MPI.CART,
    )


def test_periodic_two_by_two_grid_and_shift():
    got = run_ranks(_cart_2x2, 4)
    assert [g[0] for g in got] == [[0, 0], [0, 1], [1, 0], [1, 1]]
    assert got[3][1] == ([2, 2], [1, 1], [1, 1])
    assert got[0][2] == [(2, 2), (1, 1), (1, 1)]  # periodic: behind and ahead are the same
    assert got[1][2] == [(3, 3), (0, 0), (0, 0)]
    assert [g[3] for g in got] == [False, False, True, True]
    assert got[0][4] == (MPI.PROC_NULL, 1) and got[1][4] == (0, MPI.PROC_NULL)
    assert all(g[5] == 2 and g[6] for g in got)


def _ssend_waits_for_the_match():
    from treecast import MPI

    comm = MPI.COMM_WORLD
    if comm.rank == 0:
        req = comm.issend("payload", dest=1, tag=5)
        time.sleep(0.3)
        matched_early = req.Test()
        comm.send("go", dest=1, tag=6)
        req.Wait()
        return matched_early
    assert comm.recv(source=0, tag=6) == "go"  # the tag-5 message waits, unmatched
    return comm.recv(source=0, tag=5)


def test_synchronous_send_completes_only_once_a_receive_matches():
    assert run_ranks(_ssend_waits_for_the_match, 2) == [False, "payload"]


def _split_gives_comm_null():
    from treecast import MPI

    comm = MPI.COMM_WORLD
    sub = comm.Split(MPI.UNDEFINED if comm.rank == 0 else 1, key=-comm.rank)
    if comm.rank == 0:
        return sub == MPI.COMM_NULL and not sub
    return sub.Get_rank(), sub.allreduce(comm.rank, op=MPI.SUM)


def test_split_with_undefined_color_gives_comm_null():
    assert run_ranks(_split_gives_comm_null, 3) == [True, (1, 3), (0, 3)]


def _treecast_run(*words: str, cwd: str | None = None) -> subprocess.CompletedProcess[str]:
    """``python -m treecast run WORDS...``, output captured, 60 s at most."""
    return subprocess.run(
        [sys.executable, "-m", "treecast", "run", *words],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=cwd,
    )


def _futures_run(script: Any, cwd: str | None = None) -> subprocess.CompletedProcess[str]:
    """``python -m mpi4py.futures SCRIPT`` on 3 ranks under ``treecast run --mpi4py``."""
    return _treecast_run(
        "-n",
        "3",
        "--mpi4py",
        "--timeout",
        "50",
        sys.executable,
        "-m",
        "mpi4py.futures",
        str(script),
        cwd=cwd,
    )


def _launch(code: str, n: int, *extra: str) -> subprocess.CompletedProcess[str]:
    return _treecast_run(
        "-np", str(n), "--mpi4py", *extra, sys.executable, "-c", textwrap.dedent(code)
    )


def test_run_mpi4py_resolves_mpi4py_to_treecast():
    proc = _launch(
        """
        import mpi4py, mpi4py.MPI
        from mpi4py import MPI
        import treecast.MPI
        assert MPI is mpi4py.MPI is treecast.MPI
        c = MPI.COMM_WORLD
        print(f"rank {c.Get_rank()} of {c.Get_size()}", mpi4py.__version__)
        """,
        2,
    )
    assert proc.returncode == 0, proc.stderr
    assert sorted(proc.stdout.splitlines()) == ["rank 0 of 2 4.1.2", "rank 1 of 2 4.1.2"]


def test_abort_ends_the_job_with_the_error_code_and_names_the_rank():
    start = time.monotonic()
    proc = _launch(
        """
        from mpi4py import MPI
        c = MPI.COMM_WORLD
        if c.rank == 1:
            c.Abort(3)
        c.recv(source=1)  # would wait forever
        """,
        2,
        "--timeout",
        "50",
    )
    assert proc.returncode == 3, (proc.returncode, proc.stderr)
    assert "rank 1 called Abort(3)" in proc.stderr
    assert time.monotonic() - start < 30


def _graphs():
    from treecast import MPI

    comm = MPI.COMM_WORLD
    r, n = comm.rank, comm.size
    ring = comm.Create_graph([2, 4], [1, 1, 0, 0])  # two nodes, each the other's neighbour
    graph = (ring.Get_topology() == MPI.GRAPH, ring.neighbors) if ring else None
    adj = comm.Create_dist_graph_adjacent([(r - 1) % n], [(r + 1) % n], [5], [7])
    # every edge named by rank 0 alone: 0 -> 1 -> 2 -> 0
    named = ([0, 1, 2], [1, 1, 1], [1, 2, 0]) if r == 0 else ([], [], [])
    dist = comm.Create_dist_graph(*named, MPI.UNWEIGHTED)
    with pytest.raises(ValueError, match="sourceweights"):
        comm.Create_dist_graph_adjacent([0], [0], [1, 2], None)
    # unknown attributes are plain AttributeErrors (hasattr works), and they free
    assert not hasattr(adj, "no_such_thing") and getattr(dist, "nothing", 3) == 3
    if ring:
        assert not hasattr(ring, "no_such_thing")
        ring.Free()
    adj.Free()
    return (
        graph,
        adj.Get_dist_neighbors(),
        dist.Get_dist_neighbors(),
        comm.Graph_map([2, 4], [1, 1, 0, 0]),
    )


def test_graph_and_distributed_graph_topologies():
    got = run_ranks(_graphs, 3)
    assert [g[0] for g in got] == [(True, [1, 1]), (True, [0, 0]), None]
    assert got[1][1] == ([0], [2], ([5], [7]))
    assert [g[2] for g in got] == [([2], [1], None), ([0], [2], None), ([1], [0], None)]
    assert [g[3] for g in got] == [0, 1, MPI.UNDEFINED]


def test_python_dash_m_mpi4py_runs_a_program_and_fails_the_job_on_an_exception(tmp_path):
    ok = _treecast_run(
        "-n",
        "2",
        "--mpi4py",
        sys.executable,
        "-m",
        "mpi4py",
        "--rc",
        "threads=false",
        "-c",
        "from mpi4py import MPI; import sys; print(MPI.COMM_WORLD.rank, sys.argv[1:])",
        "x",
    )
    assert ok.returncode == 0, ok.stderr
    assert sorted(ok.stdout.splitlines()) == ["0 ['x']", "1 ['x']"]
    script = tmp_path / "boom.py"
    script.write_text(
        "from mpi4py import MPI\n"
        "if MPI.COMM_WORLD.rank == 1:\n    raise RuntimeError('boom')\n"
        "MPI.COMM_WORLD.recv(source=1)\n"
    )
    bad = _treecast_run(
        "-n", "2", "--mpi4py", "--timeout", "50", sys.executable, "-m", "mpi4py", str(script)
    )
    assert bad.returncode == 1 and "RuntimeError: boom" in bad.stderr


def _groups():
    from treecast import MPI

    comm = MPI.COMM_WORLD
    world = comm.Get_group()
    evens = world.Incl([0, 2])
    odd = world.Excl([0, 2])
    sub = comm.Create(evens)  # collective over COMM_WORLD
    got = [sub.Get_rank(), sub.allreduce(comm.rank)] if sub else None
    if comm.rank in (0, 2):  # collective over the group's members only
        rev = comm.Create_group(world.Incl([2, 0]), tag=7)
        got = [*got, rev.Get_rank(), rev.allgather(comm.rank)]
    with pytest.raises(ValueError, match="repeat"):
        world.Incl([1, 1])
    return got, odd.Get_rank(), MPI.Group.Translate_ranks(evens, [0, 1], odd)


def test_groups_and_communicators_made_from_them():
    got = run_ranks(_groups, 3)
    assert got[0] == ([0, 2, 1, [2, 0]], MPI.UNDEFINED, [MPI.UNDEFINED, MPI.UNDEFINED])
    assert got[1] == (None, 0, [MPI.UNDEFINED, MPI.UNDEFINED])
    assert got[2] == ([1, 2, 0, [2, 0]], MPI.UNDEFINED, [MPI.UNDEFINED, MPI.UNDEFINED])


def _neighbors():
    from treecast import MPI

    comm = MPI.COMM_WORLD
    r, n = comm.rank, comm.size
    ring = comm.Create_cart([n], periods=[True])
    line = comm.Create_cart([n], periods=[False])
    # objects: (sender, direction) tells which send landed in which slot
    got_ring = ring.neighbor_alltoall([(r, "back"), (r, "ahead")])
    got_line = line.neighbor_allgather(r)
    # buffers, blocking and non-blocking; PROC_NULL blocks are left untouched
    send = np.array([10 * r, 10 * r + 1], dtype=np.int64)
    out = np.full(2, -1, dtype=np.int64)
    line.Neighbor_alltoall(send, out)
    out2 = np.full(2, -1, dtype=np.int64)
    line.Ineighbor_allgather(send[:1], out2).Wait()
    return got_ring, got_line, out.tolist(), out2.tolist()


def test_neighbourhood_collectives_on_grids():
    got = run_ranks(_neighbors, 3)
    # slot 0 holds what the rank behind sent "ahead", slot 1 what the rank ahead sent "back"
    assert [g[0] for g in got] == [
        [(2, "ahead"), (1, "back")],
        [(0, "ahead"), (2, "back")],
        [(1, "ahead"), (0, "back")],
    ]
    assert [g[1] for g in got] == [[None, 1], [0, 2], [1, None]]
    assert [g[2] for g in got] == [[-1, 10], [1, 20], [11, -1]]
    assert [g[3] for g in got] == [[-1, 10], [0, 20], [10, -1]]
    two = run_ranks(_neighbors, 2)  # both neighbours are the same rank: order still holds
    assert two[0][0] == [(1, "ahead"), (1, "back")] and two[1][0] == [(0, "ahead"), (0, "back")]


def _neighbours_that_cannot_pickle():
    import threading

    from treecast import MPI

    line = MPI.COMM_WORLD.Create_cart([3], periods=[False])  # 0 - 1 - 2
    bad = threading.Lock() if line.rank == 1 else line.rank
    got = []
    for call in (
        lambda: line.neighbor_allgather(bad),
        lambda: line.neighbor_alltoall([bad, bad]),
    ):
        try:
            got.append(("ok", call()))
        except treecast.SenderFailedError as exc:
            got.append(("told", "rank 1 could not send" in str(exc)))
        except treecast.SerializationError:
            got.append(("own", True))
    return got, line.neighbor_allgather(line.rank)  # in step afterwards


def test_a_neighbour_that_cannot_pickle_is_reported_to_its_neighbours():
    results = run_ranks(_neighbours_that_cannot_pickle, 3)
    for rank, (got, _) in enumerate(results):
        assert got == [("own", True) if rank == 1 else ("told", True)] * 2, rank
    assert [after for _, after in results] == [[None, 1], [0, 2], [1, None]]


def test_info_and_the_mpi4py_util_modules():
    info = MPI.Info.Create({"a": "1"})
    info["b"] = "2"
    assert sorted(info.items()) == [("a", "1"), ("b", "2")] and not MPI.INFO_NULL
    dup = MPI.COMM_SELF.Dup_with_info(info)
    assert dup.Get_info().Get("b") == "2" and dup.Get_size() == 1
    proc = _launch(
        """
        import numpy as np
        from mpi4py import MPI
        from mpi4py.util import dtlib, pkl5
        comm = pkl5.Intracomm(MPI.COMM_WORLD)
        big = comm.bcast(np.arange(10) if comm.rank == 0 else None, root=0)
        assert dtlib.from_numpy_dtype("f8") == MPI.DOUBLE
        assert dtlib.to_numpy_dtype(MPI.INT) == np.dtype("i4")
        print(comm.Get_rank(), int(big.sum()))
        """,
        2,
    )
    assert proc.returncode == 0, proc.stderr
    assert sorted(proc.stdout.splitlines()) == ["0 45", "1 45"]


FUTURES_SCRIPT = """
import os
from mpi4py.futures import MPIPoolExecutor, as_completed


def square(x):
    return x * x, os.getpid()


def boom(x):
    raise ValueError(f"bad {x}")


if __name__ == "__main__":
    with MPIPoolExecutor() as pool:
        results = list(pool.map(square, range(40)))
        futures = [pool.submit(square, 3), pool.submit(boom, 4)]
        done = list(as_completed(futures, timeout=30))
        print(sum(r[0] for r in results), len({r[1] for r in results}), pool.num_workers)
        print(futures[0].result()[0], repr(futures[1].exception()), len(done))
        unpicklable = pool.submit(lambda: 1)
        print(type(unpicklable.exception()).__name__)
"""


def test_python_dash_m_mpi4py_futures_runs_calls_on_the_other_ranks(tmp_path):
    script = tmp_path / "squares.py"
    script.write_text(FUTURES_SCRIPT)
    proc = _futures_run(script)
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.splitlines()
    assert lines[0] == "20540 2 2"  # both workers ran calls
    assert lines[1] == "9 ValueError('bad 4') 2"
    assert lines[2] == "SerializationError"  # a lambda does not pickle: its future fails


def _comm_executor():
    import treecast
    from treecast.futures import CommExecutor

    comm = treecast.world()
    with CommExecutor(comm, root=1 % comm.size) as pool:
        got = None if pool is None else sorted(pool.map(abs, [-3, -2, -1]))
    return got


def test_comm_executor_gives_the_root_a_pool_and_the_others_none():
    assert run_ranks(_comm_executor, 3) == [None, [1, 2, 3], None]
    assert run_ranks(_comm_executor, 1) == [[1, 2, 3]]  # one rank: the calls run on a thread


def _matched_probe():
    from treecast import MPI

    comm = MPI.COMM_WORLD
    if comm.rank == 0:
        req = comm.issend("first", dest=1, tag=3)
        comm.send("second", dest=1, tag=3)
        req.wait()  # matched by rank 1's mprobe, before it receives
        return None
    status = MPI.Status()
    msg = comm.mprobe(source=0, tag=3, status=status)
    later = comm.recv(source=0, tag=3)  # cannot take the probed message
    first = msg.recv()
    return first, later, status.Get_source(), bool(msg), comm.improbe(0, 3)


def test_matched_probe_takes_the_message_out_of_matching():
    assert run_ranks(_matched_probe, 2) == [None, ("first", "second", 0, False, None)]
    assert MPI.COMM_SELF.mprobe(MPI.PROC_NULL) == MPI.MESSAGE_NO_PROC
    assert MPI.MESSAGE_NO_PROC.recv() is None and not MPI.MESSAGE_NULL


def _ack_behind_data():
    import time

    from treecast import MPI

    comm = MPI.COMM_WORLD
    n = 16 * 65536 - 32  # fills the small ring: the acknowledgement queues behind it
    if comm.rank == 0:
        req = comm.Issend(np.zeros(1), 1, tag=2)
        comm.Recv(np.empty(n, np.uint8), 1, tag=1)
        time.sleep(0.5)  # rank 1 has exited by now
        req.Wait(timeout=10)
        return "completed"
    big = comm.Isend(np.ones(n, np.uint8), 0, tag=1)
    comm.Recv(np.empty(1), 0, tag=2)
    big.Wait()
    return "exited"


def test_a_synchronous_send_completes_when_the_receiver_exits_right_after_matching(tmp_path):
    script = tmp_path / "ack.py"
    script.write_text(
        "import numpy as np\n"
        + textwrap.dedent(__import__("inspect").getsource(_ack_behind_data))
        + "print(_ack_behind_data())\n"
    )
    proc = _treecast_run(
        "-n", "2", "--ring-bytes", "65536", "--timeout", "50", sys.executable, str(script)
    )
    assert proc.returncode == 0, proc.stderr
    assert sorted(proc.stdout.split()) == ["completed", "exited"]


def _reduce_scatter_block_specs():
    from treecast import MPI

    comm = MPI.COMM_WORLD
    r, p = comm.rank, comm.size
    send = np.arange(2 * p, dtype="d") + r
    out = np.zeros(2)
    comm.Reduce_scatter_block([send, 2, MPI.DOUBLE], [out, 2, MPI.DOUBLE])
    inplace = np.arange(2 * p, dtype="d") + r
    comm.Reduce_scatter_block(MPI.IN_PLACE, [inplace, 2, MPI.DOUBLE])
    return out.tolist(), inplace[:2].tolist()


def test_reduce_scatter_block_spec_counts_are_per_block():
    got = run_ranks(_reduce_scatter_block_specs, 3)
    # block r of the sum over ranks of (arange(6) + rank): 3 * arange(6) + 3
    assert got == [
        ([3.0, 6.0], [3.0, 6.0]),
        ([9.0, 12.0], [9.0, 12.0]),
        ([15.0, 18.0], [15.0, 18.0]),
    ]


def test_the_world_cannot_be_freed_even_renamed():
    world = MPI.COMM_WORLD
    name = world.Get_name()
    world.Set_name("mine")
    try:
        with pytest.raises(MPI.Exception):
            world.Free()
        assert world.bcast(5) == 5
    finally:
        world.Set_name(name)


FUTURES_EDGE_SCRIPT = """
import dataclasses
from helper import offset
from mpi4py.futures import MPIPoolExecutor


@dataclasses.dataclass
class Result:
    value: int


class TwoArgError(Exception):
    def __init__(self, a, b):
        super().__init__(f"{a}-{b}")


def work(x):
    if x == 2:
        raise TwoArgError(1, 2)  # pickles on the worker, cannot be rebuilt on the root
    return Result(x + offset)


if __name__ == "__main__":
    with MPIPoolExecutor() as pool:
        futures = [pool.submit(work, i) for i in range(4)]
        print([type(f.exception()).__name__ if f.exception() else f.result().value for f in futures])
        print(sorted(r.value for r in pool.map(work, [0, 1, 3], unordered=True)))
"""


def test_futures_results_of_script_classes_and_unbuildable_errors(tmp_path):
    (tmp_path / "helper.py").write_text("offset = 100\n")  # imported from the script's dir
    script = tmp_path / "edge.py"
    script.write_text(FUTURES_EDGE_SCRIPT)
    proc = _futures_run(script, cwd="/")
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.splitlines() == [
        "[100, 101, 'DeserializationError', 103]",
        "[100, 101, 103]",
    ]


POOL_EXIT_SCRIPT = """
import time
from treecast import world
from treecast.futures import Manager, PoolExecutor, serve
comm = world().Dup()
if comm.rank == 0:
    manager = Manager(comm, list(range(1, comm.size)))
    manager.start()
    pool = PoolExecutor(manager)
    futures = [pool.submit(time.sleep, 0.1) for _ in range(4)]
    pool.shutdown(wait=False)  # and exit at once: the exit hook lets the calls finish
else:
    print("ran", serve(comm, 0), flush=True)
"""


def test_a_pool_shut_down_without_waiting_finishes_its_calls_at_exit(tmp_path):
    script = tmp_path / "exit.py"
    script.write_text(POOL_EXIT_SCRIPT)
    proc = _treecast_run("-n", "2", "--timeout", "50", sys.executable, str(script))
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "ran 4"
