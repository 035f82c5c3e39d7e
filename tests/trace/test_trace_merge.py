"""Merging rank trace files (no processes): tracks, slices with their messages, flows that
pair the two ends of each message, missing ranks, clock offsets between machines."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from trace_checks import check_trace, messages, ranks, slices

from treecast.cli import main
from treecast.tracing.merge import (
    FORMAT,
    VERSION,
    RankTrace,
    clock_offsets,
    merge,
    merge_directory,
    output_path,
    parse_rank_trace,
    rank_file,
    read_rank_files,
)

WORLD_CTX = 0  # point-to-point; its collectives use context 1


def rank_trace(
    rank: int,
    size: int,
    slices_: list[list[Any]],
    sends: list[list[Any]] = (),  # type: ignore[assignment]
    recvs: list[list[Any]] = (),  # type: ignore[assignment]
    *,
    boot: str = "boot-a",
    wall_minus_mono: int = 10**18,
) -> dict[str, Any]:
    """A rank's file as the recorder writes it (pid 1000 + rank, one thread)."""
    pid = 1000 + rank
    return {
        "format": FORMAT,
        "version": VERSION,
        "rank": rank,
        "size": size,
        "pid": pid,
        "host": "h",
        "boot_id": boot,
        "clock": {
            "source": "clock_gettime(CLOCK_MONOTONIC)",
            "monotonic_ns": 0,
            "wall_ns": wall_minus_mono,
        },
        "threads": [[pid, "MainThread"]],
        "contexts": [[WORLD_CTX, "world"]],
        "groups": {"world": list(range(size))},
        "slices": [[pid, *s] for s in slices_],
        "sends": [[pid, *s] for s in sends],
        "recvs": [[pid, *r] for r in recvs],
        "dropped": 0,
    }


def parsed(*files: dict[str, Any]) -> dict[int, RankTrace]:
    return {f["rank"]: parse_rank_trace(f, f"rank {f['rank']}") for f in files}


BCAST = {"comm": "world", "seq": 1, "root": 0, "algorithm": "binomial", "bytes": -1}


def two_ranks() -> dict[int, RankTrace]:
    """Rank 0 broadcasts (one message to rank 1) and sends a point-to-point message."""
    r0 = rank_trace(
        0,
        2,
        [
            [1000, 5000, "collective", "bcast", BCAST],
            [6000, 7000, "p2p", "send", {"comm": "world"}],
        ],
        sends=[[2000, 1, 1, 1, 0, 21], [6500, 1, WORLD_CTX, 7, 1, 17]],
    )
    r1 = rank_trace(
        1,
        2,
        [
            [1500, 3000, "wait", "wait", {"for": "bcast #1 on world root 0", "peer": 0}],
            [1000, 5200, "collective", "bcast", BCAST],
            [6000, 9000, "p2p", "recv", {"comm": "world"}],
        ],
        recvs=[[2900, 0, 1, 1, 0, 21], [8000, 0, WORLD_CTX, 7, 1, 17]],
    )
    return parsed(r0, r1)


def test_tracks_slices_and_flows() -> None:
    trace, report = merge(two_ranks(), path="x.json")
    check_trace(trace)
    assert sorted(ranks(trace).values()) == [0, 1]
    assert report.ranks == [0, 1] and not report.missing and report.messages == 2
    calls = {(s["rank"], s["name"]): s for s in slices(trace) if s["cat"] != "wait"}
    assert (
        calls[0, "bcast"]["args"].items()
        >= {
            "seq": 1,
            "root": 0,
            "algorithm": "binomial",
            "sent_bytes": 21,
            "sent_messages": 1,
            "bytes": 21,  # an object payload: the size of its message
        }.items()
    )
    assert calls[1, "bcast"]["args"]["recv_messages"] == 1
    assert calls[0, "send"]["args"].items() >= {"peer": 1, "tag": 7, "bytes": 17}.items()
    assert calls[1, "recv"]["args"].items() >= {"peer": 0, "tag": 7, "recv_bytes": 17}.items()
    assert calls[1, "bcast"]["ts"] == 0.0 and calls[1, "bcast"]["dur"] == 4.2  # microseconds
    flows = {(m["args"]["kind"], m["args"]["from"], m["args"]["to"]) for m in messages(trace)}
    assert flows == {("collective", 0, 1), ("point-to-point", 0, 1)}
    wait = slices(trace, "wait")[0]
    assert wait["args"]["for"] == "bcast #1 on world root 0"


def test_a_message_counts_in_the_innermost_call() -> None:
    outer = {"comm": "world", "seq": 3, "bytes": 8}
    inner = {"comm": "world", "seq": 2, "bytes": -1}
    r0 = rank_trace(
        0,
        2,
        [
            [100, 200, "collective", "allgather", inner],
            [0, 1000, "collective", "Reduce_scatter", outer],
        ],
        sends=[[150, 1, 1, 2, 0, 5], [500, 1, 1, 3, 1, 8]],
    )
    r1 = rank_trace(
        1, 2, [[0, 1000, "collective", "x", {}]], recvs=[[160, 0, 1, 2, 0, 5], [600, 0, 1, 3, 1, 8]]
    )
    trace, _ = merge(parsed(r0, r1))
    check_trace(trace)
    by_name = {s["name"]: s["args"] for s in slices(trace) if s["rank"] == 0}
    assert by_name["allgather"]["sent_bytes"] == 5 and by_name["Reduce_scatter"]["sent_bytes"] == 8


def test_missing_ranks_are_named_and_shown() -> None:
    traces = two_ranks()
    trace, report = merge(traces, size=3, missing={2: "it was killed by signal SIGKILL"})
    check_trace(trace)
    assert report.missing == {2: "it was killed by signal SIGKILL"}
    assert "2 of 3 ranks" in report.summary() and "rank 2 left no trace" in report.summary()
    names = [e["args"]["name"] for e in trace["traceEvents"] if e["name"] == "process_name"]
    assert "rank 2 (no trace: it was killed by signal SIGKILL)" in names
    assert trace["otherData"]["treecast"]["missing_ranks"] == {
        "2": "it was killed by signal SIGKILL"
    }


def test_message_ends_without_a_partner_make_no_flow() -> None:
    traces = two_ranks()
    traces[1].recvs = traces[1].recvs[:1]  # rank 1 never received the point-to-point message
    trace, report = merge(traces)
    check_trace(trace)
    assert report.messages == 1 and report.unmatched == 1


def test_a_message_received_outside_any_call_gets_a_slice_to_end_in() -> None:
    traces = two_ranks()
    traces[1].recvs[1][1] = 9500  # after rank 1's recv slice: a request completed by a poll
    trace, _ = merge(traces)
    check_trace(trace)
    (outside,) = slices(trace, "progress")
    assert outside["name"] == "received outside a call" and outside["rank"] == 1


def test_colliding_pids_of_ranks_on_other_machines_are_replaced() -> None:
    a = rank_trace(0, 2, [[0, 10, "collective", "barrier", {}]])
    b = rank_trace(1, 2, [[0, 10, "collective", "barrier", {}]], boot="boot-b")
    b["pid"] = a["pid"]
    b["threads"] = a["threads"]
    b["slices"][0][0] = a["pid"]
    trace, _ = merge(parsed(a, b))
    check_trace(trace)
    assert len(ranks(trace)) == 2


def _exchange(
    skew: int, wall_error: int, there: int = 10_000, back: int = 10_000
) -> dict[int, RankTrace]:
    """Rank 1's clock reads ``skew`` ns more than rank 0's, its wall clock ``wall_error`` ns
    more than it should; a message each way with one-way delays ``there`` and ``back``."""
    r0 = rank_trace(
        0,
        2,
        [[0, 100_000, "collective", "x", {}]],
        sends=[[1000, 1, 1, 1, 0, 8]],
        recvs=[[50_000 + back, 1, 1, 2, 0, 8]],
    )
    r1 = rank_trace(
        1,
        2,
        [[skew, skew + 100_000, "collective", "x", {}]],
        sends=[[skew + 50_000, 0, 1, 2, 0, 8]],
        recvs=[[skew + 1000 + there, 0, 1, 1, 0, 8]],
        boot="boot-b",
        wall_minus_mono=10**18 - skew + wall_error,
    )
    return parsed(r0, r1)


def _messages(traces: dict[int, RankTrace]) -> list[tuple[int, int, int, int]]:
    received = {(r[2], dst, r[4]): r[1] for dst, t in traces.items() for r in t.recvs}
    return [
        (src, s[1], s[2], received[(src, s[2], s[4])]) for src, t in traces.items() for s in t.sends
    ]


def test_one_machine_needs_no_offsets() -> None:
    traces = two_ranks()
    assert clock_offsets(traces, _messages(traces)) == {0: 0, 1: 0}


def test_messages_both_ways_align_two_machines() -> None:
    traces = _exchange(skew=7_000_000, wall_error=3_000_000)
    assert clock_offsets(traces, _messages(traces)) == {0: 0, 1: -7_000_000}
    trace, _ = merge(traces)
    check_trace(trace)
    for m in messages(trace):
        assert m["finish"]["ts"] >= m["ts"]


def test_one_way_messages_keep_causality() -> None:
    traces = _exchange(skew=7_000_000, wall_error=-3_000_000)
    traces[1].sends, traces[0].recvs = [], []
    offsets = clock_offsets(traces, _messages(traces))
    # the wall clock puts rank 1 3 ms early, where message 0 -> 1 would arrive before it
    # left: moved just enough that it does not
    assert offsets[1] == -7_000_000 - 10_000
    late = _exchange(skew=7_000_000, wall_error=3_000_000)
    late[1].sends, late[0].recvs = [], []
    assert clock_offsets(late, _messages(late))[1] == -7_000_000 + 3_000_000


def test_without_messages_the_wall_clock_places_a_machine() -> None:
    traces = _exchange(skew=7_000_000, wall_error=3_000_000)
    for t in traces.values():
        t.sends, t.recvs = [], []
    assert clock_offsets(traces, []) == {0: 0, 1: -7_000_000 + 3_000_000}


def test_merge_directory_and_the_cli(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    files = tmp_path / "ranks"
    files.mkdir()
    for rank in (0, 1):
        Path(rank_file(str(files), rank)).write_text(json.dumps(rank_trace(rank, 2, [])))
    (files / "trace-rank-5.json").write_text("{not json")
    traces, problems = read_rank_files(str(files))
    assert sorted(traces) == [0, 1] and len(problems) == 1 and "trace-rank-5.json" in problems[0]
    report = merge_directory(str(files), str(tmp_path / "out.json"), size=3)
    assert report.missing == {2: "no trace file"}
    check_trace(json.loads((tmp_path / "out.json").read_text()))
    assert main(["trace-merge", str(files), str(tmp_path / "cli.json"), "-n", "2"]) == 0
    assert "trace of 2 ranks written to" in capsys.readouterr().err
    assert main(["trace-merge", str(tmp_path / "nowhere"), str(tmp_path / "x.json")]) == 2
    assert main(["trace-merge", str(tmp_path), str(tmp_path / "empty.json")]) == 1


def test_bad_output_paths_are_refused(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="does not exist"):
        output_path(str(tmp_path / "no" / "such" / "out.json"))
    with pytest.raises(ValueError, match="is a directory"):
        output_path(str(tmp_path))
    with pytest.raises(ValueError, match="not a treecast rank trace"):
        parse_rank_trace({"traceEvents": []}, "x.json")


def test_a_rank_over_its_event_limit_is_reported() -> None:
    traces = two_ranks()
    traces[1].dropped = 5
    _, report = merge(traces)
    assert "rank 1 stopped recording" in report.summary() and "5 not recorded" in report.summary()


def test_tracing_settings_are_checked_before_anything_starts(tmp_path: Path) -> None:
    from treecast.errors import InvalidArgumentError
    from treecast.tracing.hooks import settings

    assert settings({}) is None
    assert settings({"TREECAST_TRACE": "", "TREECAST_TRACE_DIR": ""}) is None
    assert (
        settings({"TREECAST_TRACE_DIR": str(tmp_path), "TREECAST_TRACE_EVENTS": "10"}).limit == 10
    )
    with pytest.raises(InvalidArgumentError, match="TREECAST_TRACE_EVENTS='many'"):
        settings({"TREECAST_TRACE_DIR": str(tmp_path), "TREECAST_TRACE_EVENTS": "many"})
    with pytest.raises(InvalidArgumentError, match="does not exist"):
        settings({"TREECAST_TRACE": str(tmp_path / "no" / "t.json")})
