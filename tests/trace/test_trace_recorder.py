"""The recording itself, in one process: ranks of an in-process world (a thread each) with a
:class:`~treecast.tracing.recorder.Recorder` attached to each transport (nothing wrapped),
their rank files merged and checked; the events' decoding; the limit; and tracing off."""

from __future__ import annotations

import gc
import threading
from collections.abc import Callable
from typing import Any

import numpy as np
import pytest
from trace_checks import check_trace, messages, slices

from treecast import Comm
from treecast.algorithms import registry
from treecast.tracing import events as ev
from treecast.tracing import recorder
from treecast.tracing.merge import merge, parse_rank_trace
from treecast.tracing.recorder import Recorder, decode
from treecast.transports.inproc import InprocWorld

pytestmark = pytest.mark.timeout(60)


def _traced(n: int, body: Callable[[Comm], Any], limit: int = 10_000) -> list[Recorder]:
    """Run ``body`` on every rank of an in-process world of ``n`` with recording on."""
    world = InprocWorld(n)
    recs = [Recorder(world[r], limit) for r in range(n)]
    comms = [Comm(world[r], range(n), 0, "world") for r in range(n)]
    for rec, comm in zip(recs, comms, strict=True):
        rec.comms[comm._ctx] = comm
        rec.attach()
    errors: list[BaseException] = []

    def run(comm: Comm) -> None:
        try:
            body(comm)
        except BaseException as exc:  # reported below
            errors.append(exc)
            world.kill(comm.rank)

    threads = [threading.Thread(target=run, args=(c,)) for c in comms]
    for th in threads:
        th.start()
    for th in threads:
        th.join(30)
    assert not errors, errors
    return recs


def _merged(recs: list[Recorder]) -> dict[str, Any]:
    traces = {r: parse_rank_trace(rec.contents(), f"rank {r}") for r, rec in enumerate(recs)}
    trace, _ = merge(traces)
    check_trace(trace)
    return trace


def _calls(comm: Comm) -> None:
    comm.bcast({"x": 1} if comm.rank == 1 else None, root=1, algorithm="binomial")
    buf = np.full(64, comm.rank, dtype=np.uint8)
    comm.Bcast(buf, root=2, algorithm="scatter_ring_allgather")
    comm.barrier()
    assert comm.allreduce(comm.rank) == 6
    if comm.rank == 0:
        comm.send("hi", dest=3, tag=5)
    elif comm.rank == 3:
        assert comm.recv(source=0, tag=5) == "hi"
    comm.Ibcast(buf, root=0).wait()


def test_calls_carry_their_facts_and_flows_follow_the_algorithms_edges() -> None:
    trace = _merged(_traced(4, _calls))
    calls = [s for s in slices(trace, "collective") if s["name"] != "Request.wait"]
    by_name: dict[str, list[dict[str, Any]]] = {}
    for s in calls:
        by_name.setdefault(s["name"], []).append(s)
    assert {k: len(v) for k, v in by_name.items()} == {
        n: 4 for n in ("bcast", "Bcast", "barrier", "allreduce", "Ibcast")
    }
    for name, (seq, root, algo, nbytes) in {
        "bcast": (1, 1, "binomial", None),
        "Bcast": (2, 2, "scatter_ring_allgather", 64),
        "barrier": (3, None, None, 0),
        "allreduce": (4, None, None, None),
        "Ibcast": (5, 0, None, 64),
    }.items():
        for s in by_name[name]:
            args = s["args"]
            assert args["comm"] == "world" and args["seq"] == seq, s
            assert args.get("root") == root, s
            assert algo is None or args["algorithm"] == algo, s
            assert "algorithm" in args, s
            assert nbytes is None or args["bytes"] == nbytes, s
    for name, nbytes in (("bcast", -1), ("Bcast", 64)):
        algo = by_name[name][0]["args"]["algorithm"]
        root = by_name[name][0]["args"]["root"]
        seq = by_name[name][0]["args"]["seq"]
        edges = {
            (rank, step.peer)
            for rank in range(4)
            for step in registry.get("bcast", algo).steps(rank, 4, root, nbytes)
            if type(step).__name__ == "Send"
        }
        flows = [
            m
            for m in messages(trace)
            if m["args"]["tag"] == seq and m["args"]["kind"] == "collective"
        ]
        assert {(m["args"]["from"], m["args"]["to"]) for m in flows} == edges
    (p2p,) = [m for m in messages(trace) if m["args"]["kind"] == "point-to-point"]
    assert (p2p["args"]["from"], p2p["args"]["to"], p2p["args"]["tag"]) == (0, 3, 5)
    names = {(s["rank"], s["name"]) for s in slices(trace, "p2p")}
    assert names == {(0, "send"), (3, "recv")}


def test_a_reduce_scatter_without_counts_holds_its_count_exchange() -> None:
    """The counts' allgather is numbered first and runs inside the Reduce_scatter's slice,
    which carries the number after it (as the untraced call numbers them)."""

    def body(comm: Comm) -> None:
        out = np.zeros(2, dtype=np.int64)
        comm.Reduce_scatter(np.arange(6, dtype=np.int64), out)
        assert list(out) == [3 * 2 * comm.rank, 3 * (2 * comm.rank + 1)]
        assert comm.bcast(7, root=0) == 7  # numbering stays aligned after it

    trace = _merged(_traced(3, body))
    calls = slices(trace, "collective")
    for rank in range(3):
        mine = {s["name"]: s for s in calls if s["rank"] == rank}
        rs, ag, bc = mine["Reduce_scatter"], mine["allgather"], mine["bcast"]
        assert (ag["args"]["seq"], rs["args"]["seq"], bc["args"]["seq"]) == (1, 2, 3)
        assert rs["ts"] <= ag["ts"] and ag["ts"] + ag["dur"] <= rs["ts"] + rs["dur"]
        assert rs["args"]["algorithm"] is not None


def test_a_failed_call_names_its_error() -> None:
    def body(comm: Comm) -> None:
        with pytest.raises(Exception, match="root"):
            comm.bcast(1, root=9)

    (rec,) = _traced(1, body)
    (row,) = rec.contents()["slices"]
    assert row[4] == "bcast" and row[5]["error"] == "InvalidRootError"


def test_held_messages_are_numbered_on_arrival_and_noted_on_delivery() -> None:
    big = 1 << 17
    events = [
        (ev.ARRIVE, 11, 1, 0, 7, big),  # a large message from rank 1, waiting
        (ev.RECV, 5, 100, 1, 0, 8, 3),  # then a small one, received at once
        (ev.SEND, 5, 110, 1, 0, 9, 4),
        (ev.DELIVER, 5, 120, 150, 11, False),  # the large one copied into its buffer
        (ev.DELIVER, 5, 160, 170, 99, True),  # never seen arriving: ignored
    ]
    slices_, sends, recvs, fills = decode(events, 2)
    assert recvs == [[5, 100, 1, 0, 8, 1, 3], [5, 150, 1, 0, 7, 0, big]]
    assert sends == [[5, 110, 1, 0, 9, 0, 4]]
    assert slices_ == [(5, 120, 150, "copy", "copy", big, 1)] and fills == []


def test_fast_path_ends_take_the_next_moment_and_the_thread_of_their_call() -> None:
    # threads 1 and 2 each in a bcast (contexts 0 and 2, numbers 4 and 9) at the same time;
    # thread 2's message is noted just before thread 1 ends its call: the calls decide
    events = [
        (ev.SEND_INLINE, 1, 1, 4, 5),  # thread 1's bcast: context 0 + 1, tag 4
        (ev.WAIT, 1, 13, 15, "operation", None, None),
        (ev.RECV_INLINE, 0, 3, 9, 5),  # thread 2's bcast: context 2 + 1, tag 9
        (ev.BCAST, 1, 10, 20, 0, 4, 0, "binomial"),
        (ev.BCAST, 2, 12, 22, 2, 9, 0, "binomial"),
        (ev.RECV_INLINE, 0, 1, 5, 5),  # between calls: the next moment's thread
        (ev.P2P, 2, 31, 32, "send", 2),
        (ev.RECV_INLINE, 0, 1, 6, 5),  # the last event: the end of the trace
    ]
    raw, sends, recvs, _ = decode(events, 2, 40)
    recorder.place(raw, recorder._nestings(raw), sends, recvs)
    assert sends == [[1, 15, 1, 1, 4, 0, 5]]
    assert recvs == [[2, 20, 0, 3, 9, 0, 5], [2, 32, 0, 1, 5, 1, 5], [2, 40, 0, 1, 6, 2, 5]]
    assert [s[:5] for s in raw if s[3] != "wait"] == [
        (1, 10, 20, "collective", "bcast"),
        (2, 12, 22, "collective", "bcast"),
        (2, 31, 32, "p2p", "send"),
    ]
    assert raw[1][5:] == (0, 3, 4, 0, None, "binomial", -1)


def test_past_the_limit_events_are_counted_not_kept() -> None:
    def body(comm: Comm) -> None:
        for _ in range(200):  # a bcast and its message each: past the limit of 100
            comm.bcast(1)
        comm.barrier()
        gc.collect()  # the limit is checked off the hot paths: garbage collections, waits
        comm.barrier()
        for _ in range(200):
            comm.bcast(1)

    recs = _traced(2, body, limit=100)
    for rec in recs:
        assert rec.transport._rec is rec.spill
        assert rec.dropped >= 400  # the later calls and messages, counted
        kept = len(list(recorder._records(rec.events)))
        assert 100 <= kept < 500, kept  # the first ones, up to a check past the limit
        assert rec.contents()["dropped"] == rec.dropped
        rec.detach()


def test_off_records_nothing() -> None:
    world = InprocWorld(2)
    comms = [Comm(world[r], range(2), 0, "world") for r in range(2)]
    assert all(c._t._rec is None for c in comms)
    threads = [threading.Thread(target=c.bcast, args=(1,)) for c in comms]
    for th in threads:
        th.start()
    for th in threads:
        th.join(30)
    assert all(c._t._rec is None for c in comms)
