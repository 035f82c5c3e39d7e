"""Checks of a merged trace file: what Perfetto's and chrome://tracing's JSON importers need
(complete events that nest on each thread, flows whose two ends lie inside a slice of their
own thread), and views of it by rank for the tests' assertions."""

from __future__ import annotations

import json
from collections import Counter, defaultdict
from pathlib import Path
from typing import Any

Event = dict[str, Any]


def load(path: str | Path) -> dict[str, Any]:
    with open(path, encoding="utf-8") as f:
        return json.load(f)


def _ns(us: float) -> int:
    return round(us * 1000)


def check_trace(trace: dict[str, Any]) -> None:
    """Raise AssertionError where ``trace`` is not a well-formed trace-event file."""
    assert set(trace) >= {"traceEvents", "displayTimeUnit"}, sorted(trace)
    events = trace["traceEvents"]
    assert isinstance(events, list)
    named = {e["pid"] for e in events if e["ph"] == "M" and e["name"] == "process_name"}
    by_thread: dict[tuple[int, int], list[tuple[int, int]]] = defaultdict(list)
    for e in events:
        assert e["ph"] in {"M", "X", "s", "f"}, e
        if e["ph"] == "M":
            continue
        assert isinstance(e["pid"], int) and isinstance(e["tid"], int), e
        assert e["pid"] in named, f"no process_name for pid {e['pid']}"
        assert isinstance(e["ts"], int | float) and e["ts"] >= 0, e
        if e["ph"] == "X":
            assert isinstance(e["name"], str) and isinstance(e["cat"], str), e
            assert isinstance(e["args"], dict) and e["dur"] >= 0, e
            start = _ns(e["ts"])
            by_thread[e["pid"], e["tid"]].append((start, start + _ns(e["dur"])))
    for key, spans in by_thread.items():
        _check_nesting(key, spans)
    _check_flows(events, by_thread)


def _check_nesting(key: tuple[int, int], spans: list[tuple[int, int]]) -> None:
    """Slices of one thread nest: none ends inside another that it started before."""
    open_: list[tuple[int, int]] = []
    for start, end in sorted(spans, key=lambda s: (s[0], -s[1])):
        while open_ and open_[-1][1] < start:
            open_.pop()
        if open_:
            assert end <= open_[-1][1], f"thread {key}: {start, end} overlaps {open_[-1]}"
        open_.append((start, end))


def _check_flows(events: list[Event], spans: dict[tuple[int, int], list[tuple[int, int]]]) -> None:
    ends: dict[Any, list[Event]] = defaultdict(list)
    for e in events:
        if e["ph"] in "sf":
            ends[e["id"]].append(e)
    for flow_id, pair in ends.items():
        assert sorted(e["ph"] for e in pair) == ["f", "s"], f"flow {flow_id}: {pair}"
        assert len({(e["cat"], e["name"]) for e in pair}) == 1, pair
        for e in pair:
            if e["ph"] == "f":
                assert e.get("bp") == "e", e
            ts = _ns(e["ts"])
            inside = any(s <= ts <= t for s, t in spans[e["pid"], e["tid"]])
            assert inside, f"flow end outside every slice of its thread: {e}"


def ranks(trace: dict[str, Any]) -> dict[int, int]:
    """pid -> rank, from the process names ("rank N")."""
    out = {}
    for e in trace["traceEvents"]:
        if e["ph"] == "M" and e["name"] == "process_name" and "no trace" not in e["args"]["name"]:
            out[e["pid"]] = int(e["args"]["name"].split()[1])
    return out


def slices(trace: dict[str, Any], cat: str | None = None) -> list[Event]:
    """The complete events (of category ``cat``), each with its ``rank``."""
    rank_of = ranks(trace)
    return [
        {**e, "rank": rank_of[e["pid"]]}
        for e in trace["traceEvents"]
        if e["ph"] == "X" and (cat is None or e["cat"] == cat)
    ]


def messages(trace: dict[str, Any]) -> list[Event]:
    """Each flow's start event (its args name both ranks), with its finish as ``finish``."""
    finish = {e["id"]: e for e in trace["traceEvents"] if e["ph"] == "f"}
    return [{**e, "finish": finish[e["id"]]} for e in trace["traceEvents"] if e["ph"] == "s"]


def count_by(items: list[Event], *keys: str) -> Counter[tuple[Any, ...]]:
    return Counter(tuple(i[k] for k in keys) for i in items)


def outermost(items: list[Event]) -> list[Event]:
    """The calls (categories collective, p2p, comm, request) that no other call of their
    thread holds: the program's own calls, not those a call makes."""
    calls = [e for e in items if e["cat"] in ("collective", "p2p", "comm", "request")]
    by_thread: dict[tuple[int, int], list[Event]] = defaultdict(list)
    for e in calls:
        by_thread[e["pid"], e["tid"]].append(e)
    out = []
    for spans in by_thread.values():
        spans.sort(key=lambda e: (_ns(e["ts"]), -_ns(e["dur"])))
        end = -1
        for e in spans:
            if _ns(e["ts"]) > end:
                out.append(e)
                end = _ns(e["ts"]) + _ns(e["dur"])
    return out
