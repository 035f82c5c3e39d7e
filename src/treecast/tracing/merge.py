"""Merge the ranks' trace files into one Chrome / Perfetto trace-event file.

Each rank writes ``trace-rank-N.json`` (:mod:`.recorder`): its slices (calls, waits,
copies) and its messages, with timestamps in nanoseconds of its own monotonic clock and one
``(monotonic, wall)`` pair taken when tracing started. :func:`merge` turns them into the
Trace Event Format that ui.perfetto.dev and chrome://tracing open as they are::

    {"traceEvents": [...], "displayTimeUnit": "ns", "otherData": {"treecast": {...}}}

- one process per rank (``process_name`` "rank N", sorted by rank), a track per thread;
- a complete event (``ph: "X"``, microseconds) per slice, with the call's facts as args
  (communicator, sequence number, algorithm, bytes, root); the merge adds to each call the
  bytes and messages it sent and received, and the peer and tag of point-to-point calls;
- a flow (``ph: "s"`` in the sending slice, ``ph: "f"``, ``bp: "e"`` in the receiving one)
  per message whose two ends were both recorded. A message is named on both ends without any
  communication: ``(source, destination, k)``, where ``k`` counts the earlier messages from
  source to destination; messages between two ranks arrive in the order they were sent in
  every treecast transport (one ring, queue or MPI channel per pair), so both ends count
  alike.

Clocks (:func:`clock_offsets`): ranks with the same boot id read one ``CLOCK_MONOTONIC``
(Linux: system-wide), so their offsets are 0 and exact. A rank of another machine is first
placed by its wall clock, then, where messages went both ways between the machines, by the
smallest one-way delays (as NTP: half the difference of the two minima), and where they went
one way only it is moved just enough that no message arrives before it was sent.
"""

from __future__ import annotations

import bisect
import json
import os
from collections import defaultdict
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

FORMAT = "treecast-trace-rank"
"""The ``format`` field of a rank's trace file."""
VERSION = 1
CALLS = frozenset({"collective", "p2p", "comm", "request"})
"""Slice categories that are user-visible calls: messages are counted in the innermost one."""
FLOW = "message"
"""Name and category of the flow events of messages."""
SYNTHETIC_ID = 1 << 22
"""Process and thread ids from here on are made up (above Linux's largest pid): for a rank
whose pid or thread id another rank already uses (ranks on other machines), or that left no
trace."""
_JS_SAFE = 1 << 53
_NEVER = 1 << 80


def rank_file(directory: str, rank: int) -> str:
    """Where rank ``rank`` writes its trace in ``directory``."""
    return os.path.join(directory, f"trace-rank-{rank}.json")


def output_path(path: str, what: str = "trace file") -> str:
    """``path`` made absolute, once checked to be a writable file path.

    Raises:
        ValueError: ``path`` is empty, a directory, or in a directory that does not exist
            or cannot be written.
    """
    if not path:
        raise ValueError(f"the {what} must be a file path, got {path!r}")
    full = os.path.abspath(path)
    parent = os.path.dirname(full)
    if os.path.isdir(full):
        raise ValueError(f"the {what} {path!r} is a directory; expected a file path")
    if not os.path.isdir(parent):
        raise ValueError(f"cannot write the {what} {path!r}: directory {parent!r} does not exist")
    if not os.access(parent, os.W_OK):
        raise ValueError(f"cannot write the {what} {path!r}: directory {parent!r} is not writable")
    return full


def write_json(path: str, data: Any) -> None:
    """Write ``data`` as compact JSON to ``path`` atomically (a reader never sees half)."""
    partial = f"{path}.partial{os.getpid()}"
    with open(partial, "w", encoding="utf-8") as f:
        json.dump(data, f, separators=(",", ":"))
    os.replace(partial, path)


@dataclass
class RankTrace:
    """One rank's trace file, as written by :mod:`.recorder` (timestamps: its monotonic ns).

    ``slices``: ``[tid, t0, t1, category, name, args]``; ``sends``: ``[tid, ts, dest,
    context, tag, k, nbytes]``; ``recvs``: ``[tid, ts, source, context, tag, k, nbytes]``,
    ``k`` numbering the messages of one pair of ranks.
    """

    rank: int
    size: int
    pid: int
    host: str
    boot_id: str
    clock: str
    monotonic_ns: int
    wall_ns: int
    threads: list[list[Any]]
    contexts: dict[int, str]
    groups: dict[str, list[int]]
    slices: list[list[Any]]
    sends: list[list[Any]]
    recvs: list[list[Any]]
    dropped: int = 0


def parse_rank_trace(data: Any, where: str) -> RankTrace:
    """The :class:`RankTrace` of a decoded rank file.

    Raises:
        ValueError: it is not a treecast rank trace of this version, naming ``where``.
    """
    if not isinstance(data, dict) or data.get("format") != FORMAT:
        raise ValueError(f"{where} is not a treecast rank trace (no format {FORMAT!r})")
    if data.get("version") != VERSION:
        raise ValueError(f"{where} is version {data.get('version')!r}; expected {VERSION}")
    try:
        clock = data["clock"]
        return RankTrace(
            rank=int(data["rank"]),
            size=int(data["size"]),
            pid=int(data["pid"]),
            host=str(data["host"]),
            boot_id=str(data.get("boot_id", "")),
            clock=str(clock["source"]),
            monotonic_ns=int(clock["monotonic_ns"]),
            wall_ns=int(clock["wall_ns"]),
            threads=list(data["threads"]),
            contexts={int(k): str(v) for k, v in data["contexts"]},
            groups={str(k): list(v) for k, v in data["groups"].items()},
            slices=list(data["slices"]),
            sends=list(data["sends"]),
            recvs=list(data["recvs"]),
            dropped=int(data.get("dropped", 0)),
        )
    except (KeyError, TypeError, ValueError) as exc:
        raise ValueError(f"{where} is a damaged treecast rank trace: {exc!r}") from None


def read_rank_files(directory: str) -> tuple[dict[int, RankTrace], list[str]]:
    """Every rank trace in ``directory`` by rank, and a line for each file that could not
    be read (a rank killed while writing leaves none: files are written atomically)."""
    traces: dict[int, RankTrace] = {}
    problems: list[str] = []
    try:
        names = sorted(os.listdir(directory))
    except OSError as exc:
        return traces, [f"cannot read the trace directory {directory!r}: {exc}"]
    for name in names:
        if not (name.startswith("trace-rank-") and name.endswith(".json")):
            continue
        path = os.path.join(directory, name)
        try:
            with open(path, encoding="utf-8") as f:
                trace = parse_rank_trace(json.load(f), path)
        except (OSError, ValueError) as exc:  # parse_rank_trace's errors name the file
            problems.append(str(exc) if path in str(exc) else f"cannot read {path}: {exc}")
            continue
        traces[trace.rank] = trace
    return traces, problems


# ---- clocks ---------------------------------------------------------------------------------
Message = tuple[int, int, int, int]
"""A matched message: (sending rank, its send time, receiving rank, its receive time), each
time on its own rank's clock."""


def _domain(t: RankTrace) -> str:
    """Ranks of one domain read the same clock."""
    if t.boot_id and "CLOCK_MONOTONIC" in t.clock:
        return f"boot {t.boot_id}"
    return f"rank {t.rank}"


def clock_offsets(traces: Mapping[int, RankTrace], messages: Iterable[Message]) -> dict[int, int]:
    """Nanoseconds to add to each rank's timestamps to put them on the clock of the lowest
    rank (see the module docstring)."""
    domain = {r: _domain(t) for r, t in traces.items()}
    members: dict[str, list[int]] = defaultdict(list)
    for r in sorted(traces):
        members[domain[r]].append(r)
    if len(members) <= 1:
        return dict.fromkeys(traces, 0)
    wall = {
        d: _median([traces[r].wall_ns - traces[r].monotonic_ns for r in rs])
        for d, rs in members.items()
    }
    least: dict[tuple[str, str], int] = {}  # (from, to) -> least (receive - send) time
    for src, sent, dst, got in messages:
        key = (domain[src], domain[dst])
        if key[0] != key[1]:
            least[key] = min(least.get(key, got - sent), got - sent)
    ref = domain[min(traces)]
    offset = {ref: 0}
    frontier = [ref]
    while frontier:
        a = frontier.pop()
        for b in members:
            if b in offset or ((a, b) not in least and (b, a) not in least):
                continue
            offset[b] = _placed(
                offset[a], wall[b] - wall[ref], least.get((a, b)), least.get((b, a))
            )
            frontier.append(b)
    for d in members:  # no message links it to the others: its wall clock alone
        offset.setdefault(d, wall[d] - wall[ref])
    return {r: offset[domain[r]] for r in traces}


def _median(values: list[int]) -> int:
    return sorted(values)[len(values) // 2]


def _placed(known: int, by_wall: int, a_to_b: int | None, b_to_a: int | None) -> int:
    """The offset of domain b from that of a (``known``), the least receive-minus-send times
    of the messages each way (None: none went that way) and b's wall-clock estimate."""
    if a_to_b is not None and b_to_a is not None:
        return known + (b_to_a - a_to_b) // 2
    if a_to_b is not None:  # a message a -> b arrives after it was sent
        return max(by_wall, known - a_to_b)
    assert b_to_a is not None
    return min(by_wall, known + b_to_a)


# ---- the merged trace -----------------------------------------------------------------------
@dataclass
class MergeReport:
    """What a merge found and wrote."""

    path: str
    size: int
    ranks: list[int]
    missing: dict[int, str]
    slices: int = 0
    messages: int = 0
    unmatched: int = 0
    offsets_ns: dict[int, int] = field(default_factory=dict)
    problems: list[str] = field(default_factory=list)

    def summary(self) -> str:
        """One line (and one per problem) for the launcher's stderr."""
        of = f"{len(self.ranks)} of {self.size} ranks" if self.missing else f"{self.size} ranks"
        text = (
            f"trace of {of} written to {self.path} ({self.slices} slices, {self.messages} messages)"
        )
        for rank, why in sorted(self.missing.items()):
            text += f"\n  rank {rank} left no trace: {why}"
        return "\n".join([text, *(f"  {p}" for p in self.problems)])


class _Ids:
    """Process and thread ids of the merged trace: the real ones where unique."""

    def __init__(self) -> None:
        self.used: set[int] = set()
        self.next = SYNTHETIC_ID

    def take(self, wanted: int) -> int:
        if wanted in self.used or wanted <= 0 or wanted >= SYNTHETIC_ID:
            while self.next in self.used:
                self.next += 1
            wanted = self.next
        self.used.add(wanted)
        return wanted


def _metadata(name: str, pid: int, tid: int | None, args: dict[str, Any]) -> dict[str, Any]:
    event: dict[str, Any] = {"ph": "M", "name": name, "pid": pid, "args": args}
    if tid is not None:
        event["tid"] = tid
    return event


def _js(value: int) -> int | str:
    """An integer as JSON readers in JavaScript keep it exactly (a string if too large)."""
    return value if -_JS_SAFE < value < _JS_SAFE else str(value)


class _Merger:
    """Builds the events of one merged trace (see :func:`merge`)."""

    def __init__(self, traces: Mapping[int, RankTrace], size: int) -> None:
        self.traces = traces
        self.size = size
        self.events: list[dict[str, Any]] = []
        self.pid: dict[int, int] = {}
        self.tid: dict[tuple[int, int], int] = {}
        self.ids = _Ids()
        self.flows, self.unmatched = _match(traces)
        self.offsets = clock_offsets(traces, ((f[0], f[1][1], f[2], f[3][1]) for f in self.flows))
        self.base = min(
            (
                min((e[1] for e in (*t.slices, *t.sends, *t.recvs)), default=_NEVER)
                + self.offsets[r]
                for r, t in traces.items()
            ),
            default=0,
        )

    def us(self, rank: int, ns: int) -> float:
        return round((ns + self.offsets[rank] - self.base) / 1000, 3)

    def tracks(self, missing: Mapping[int, str]) -> None:
        """A labelled process per rank (sorted by rank) and thread per recorded thread."""
        for rank in sorted(self.traces):
            t = self.traces[rank]
            pid = self.pid[rank] = self.ids.take(t.pid)
            self.events.append(_metadata("process_name", pid, None, {"name": f"rank {rank}"}))
            self.events.append(_metadata("process_sort_index", pid, None, {"sort_index": rank}))
            for i, (tid, name) in enumerate(t.threads):
                mine = self.tid[rank, tid] = pid if tid == t.pid else self.ids.take(tid)
                label = f"rank {rank}" if i == 0 else f"rank {rank}: {name}"
                self.events.append(_metadata("thread_name", pid, mine, {"name": label}))
                self.events.append(_metadata("thread_sort_index", pid, mine, {"sort_index": i}))
        for rank, why in sorted(missing.items()):
            pid = self.ids.take(0)
            label = f"rank {rank} (no trace: {why})"
            self.events.append(_metadata("process_name", pid, None, {"name": label}))
            self.events.append(_metadata("process_sort_index", pid, None, {"sort_index": rank}))

    def thread(self, rank: int, tid: int) -> int:
        key = (rank, tid)
        if key not in self.tid:  # a thread the rank did not list: give it an id of its own
            self.tid[key] = self.ids.take(tid)
        return self.tid[key]

    def slices(self) -> int:
        """A complete event per slice, calls with their message counts."""
        count = 0
        for rank, t in sorted(self.traces.items()):
            counts = _message_counts(t)
            for i, (tid, t0, t1, cat, name, args) in enumerate(t.slices):
                args = dict(args or {})
                if i in counts:
                    args.update(_call_args(t, args, counts[i], cat))
                self.events.append(
                    {
                        "ph": "X",
                        "pid": self.pid[rank],
                        "tid": self.thread(rank, tid),
                        "ts": self.us(rank, t0),
                        "dur": round((t1 - t0) / 1000, 3),
                        "name": name,
                        "cat": cat,
                        "args": args,
                    }
                )
                count += 1
        return count

    def arrows(self) -> None:
        """A flow per matched message, from the sending slice to the receiving one."""
        spans = {
            (rank, tid): Nesting(found)
            for rank, t in self.traces.items()
            for tid, found in spans_by_thread(t.slices, lambda cat: True).items()
        }
        for n, (src, send, dst, recv) in enumerate(self.flows, 1):
            tid, ts, _, ctx, tag, _, nbytes = send
            comm = _comm_name(self.traces[src].contexts, ctx)
            args = {"from": src, "to": dst, "bytes": nbytes, "tag": _js(tag), "comm": comm}
            args["kind"] = "collective" if ctx % 2 else "point-to-point"
            common = {"id": n, "cat": FLOW, "name": FLOW}
            start = self.end(spans, src, tid, ts, "sent outside a call") | {"ph": "s"}
            self.events.append(start | common | {"args": args})
            finish = self.end(spans, dst, recv[0], recv[1], "received outside a call")
            self.events.append(finish | {"ph": "f", "bp": "e"} | common)

    def end(
        self, spans: dict[tuple[int, int], Nesting], rank: int, tid: int, ts: int, label: str
    ) -> dict[str, Any]:
        """Where one end of a flow lies; outside every slice of its thread (a request
        completed by a poll, ``test``) it gets a slice of its own (1 ns) to bind to."""
        where = {"pid": self.pid[rank], "tid": self.thread(rank, tid), "ts": self.us(rank, ts)}
        nesting = spans.get((rank, tid))
        if nesting is None or nesting.innermost(ts) is None:
            self.events.append(
                where | {"ph": "X", "dur": 0.001, "name": label, "cat": "progress", "args": {}}
            )
        return where


def _comm_name(contexts: Mapping[int, str], ctx: int) -> str:
    """The communicator of context ``ctx`` (a collective context is its point-to-point
    context + 1)."""
    name = contexts.get(ctx - (ctx % 2))
    return name if name is not None else f"context {ctx:#x}"


def _match(
    traces: Mapping[int, RankTrace],
) -> tuple[list[tuple[int, list[Any], int, list[Any]]], int]:
    """The messages recorded at both ends, as (source, send record, destination, receive
    record) in send order, and how many ends found no partner."""
    received: dict[tuple[int, int, int], list[Any]] = {}
    for dst, t in traces.items():
        for r in t.recvs:
            received[(r[2], dst, r[5])] = r
    flows, unmatched = [], 0
    for src, t in sorted(traces.items()):
        for s in t.sends:
            got = received.pop((src, s[2], s[5]), None)
            if got is None:
                unmatched += 1
            else:
                flows.append((src, s, s[2], got))
    return flows, unmatched + len(received)


def _message_counts(t: RankTrace) -> dict[int, list[Any]]:
    """For each call slice (by index) that sent or received: ``[sent bytes, sent messages,
    received bytes, received messages, largest message, first peer, first tag]``; a message
    counts in the innermost call slice of its thread that spans it."""
    nesting = {
        tid: Nesting(found) for tid, found in spans_by_thread(t.slices, CALLS.__contains__).items()
    }
    counts: dict[int, list[Any]] = {}
    for out, events in ((True, t.sends), (False, t.recvs)):
        for tid, ts, peer, _, tag, _, nbytes in events:
            spans = nesting.get(tid)
            where = None if spans is None else spans.innermost(ts)
            if where is None:
                continue
            c = counts.setdefault(where, [0, 0, 0, 0, 0, peer, tag])
            c[0 if out else 2] += nbytes
            c[1 if out else 3] += 1
            c[4] = max(c[4], nbytes)
    return counts


def spans_by_thread(
    slices: Sequence[Any], kept: Callable[[str], bool]
) -> dict[int, list[tuple[int, int, int]]]:
    """``(start, -end, index)`` of each slice whose category is ``kept``, by thread."""
    by_thread: dict[int, list[tuple[int, int, int]]] = defaultdict(list)
    for i, s in enumerate(slices):
        if kept(s[3]):
            by_thread[s[0]].append((s[1], -s[2], i))
    return by_thread


class Nesting:
    """The call slices of one thread, which nest: the innermost one at a time.

    Args:
        spans: ``(start, -end, slice index)`` of each slice.
    """

    def __init__(self, spans: list[tuple[int, int, int]]) -> None:
        spans.sort()  # by start, the longest first
        self.spans = spans
        self.position = {i: j for j, (_, _, i) in enumerate(spans)}
        """Slice index -> its place in :attr:`spans`."""
        self.parent: list[int] = []
        """For each span, the place of the innermost span that holds it (-1: none)."""
        open_: list[int] = []
        for j, (start, _, _) in enumerate(spans):
            while open_ and -spans[open_[-1]][1] < start:
                open_.pop()
            self.parent.append(open_[-1] if open_ else -1)
            open_.append(j)

    def innermost(self, ts: int) -> int | None:
        """The slice index of the innermost span that holds ``ts``, if any: the latest
        starting one before it, or, if that one has ended, the nearest enclosing one."""
        j = bisect.bisect_right(self.spans, (ts, 1, 0)) - 1
        while j >= 0:
            _, neg_end, i = self.spans[j]
            if -neg_end >= ts:
                return i
            j = self.parent[j]
        return None


def _call_args(t: RankTrace, args: dict[str, Any], c: list[Any], cat: str) -> dict[str, Any]:
    """What the merge adds to a call's args from the messages counted in it."""
    extra: dict[str, Any] = {
        "sent_bytes": c[0],
        "sent_messages": c[1],
        "recv_bytes": c[2],
        "recv_messages": c[3],
    }
    if args.get("bytes", -1) < 0 and cat != "p2p":  # an object payload: its largest message
        extra["bytes"] = c[4]
    if cat == "p2p":
        group = t.groups.get(str(args.get("comm")), [])
        extra["peer"] = group.index(c[5]) if c[5] in group else c[5]
        extra["tag"] = _js(c[6])
        extra["bytes"] = c[0] + c[2]
    return extra


def merge(
    traces: Mapping[int, RankTrace],
    size: int | None = None,
    missing: Mapping[int, str] | None = None,
    path: str = "",
) -> tuple[dict[str, Any], MergeReport]:
    """The merged trace of ``traces`` (by rank) and its report.

    Args:
        traces: the rank traces found.
        size: the job's number of ranks (default: what the traces say, or 0).
        missing: why each rank without a trace left none (the launcher knows how each
            ended); ranks below ``size`` with neither are reported as "no trace file".
        path: where the trace will be written, for the report.
    """
    if size is None:
        size = max((t.size for t in traces.values()), default=0)
    gone = {r: "no trace file" for r in range(size) if r not in traces}
    gone.update({r: why for r, why in (missing or {}).items() if r not in traces})
    m = _Merger(traces, size)
    m.tracks(gone)
    report = MergeReport(path, size, sorted(traces), gone, offsets_ns=dict(m.offsets))
    report.slices = m.slices()
    m.arrows()
    report.messages, report.unmatched = len(m.flows), m.unmatched
    for rank, t in sorted(traces.items()):
        if t.dropped:
            report.problems.append(
                f"rank {rank} stopped recording after its first events ({t.dropped} not "
                f"recorded; TREECAST_TRACE_EVENTS raises the limit)"
            )
    m.events.sort(key=lambda e: (e.get("ts", -1.0), -e.get("dur", 0.0)))
    info = {
        "ranks": size,
        "traced_ranks": report.ranks,
        "missing_ranks": {str(r): why for r, why in sorted(gone.items())},
        "clock_offsets_ns": {str(r): off for r, off in sorted(m.offsets.items())},
        "unmatched_message_ends": m.unmatched,
    }
    trace = {"traceEvents": m.events, "displayTimeUnit": "ns", "otherData": {"treecast": info}}
    return trace, report


def merge_directory(
    directory: str, out: str, size: int | None = None, missing: Mapping[int, str] | None = None
) -> MergeReport:
    """Merge the rank traces in ``directory`` into the trace file ``out``.

    Raises:
        ValueError: ``out`` cannot be written (see :func:`output_path`).
        OSError: writing it failed.
    """
    out = output_path(out)
    traces, problems = read_rank_files(directory)
    trace, report = merge(traces, size, missing, out)
    report.problems[:0] = problems
    write_json(out, trace)
    return report
