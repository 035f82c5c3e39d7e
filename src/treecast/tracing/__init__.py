"""Timelines of a job: every call, wait and message of every rank, in one trace file.

``treecast run --trace out.json`` (or ``TREECAST_TRACE=out.json``, also for
:func:`treecast.launch`) makes each rank record its calls (:mod:`.recorder`, installed only
when tracing is on, so a job without it runs the code it always ran) and write them to a
file of its own when it exits; the launcher then merges those files into one Chrome /
Perfetto trace-event file (:mod:`.merge`): one track per rank, a slice per call, a flow
arrow per message, clocks of different machines aligned. ``treecast trace-merge DIR OUT``
merges rank files written without treecast's launcher (under ``mpiexec``).
"""

from __future__ import annotations

from collections.abc import Mapping

ENV_TRACE = "TREECAST_TRACE"
"""The merged trace file of a job (``treecast run --trace FILE`` sets the same)."""
ENV_TRACE_DIR = "TREECAST_TRACE_DIR"
"""The directory where each rank writes ``trace-rank-N.json`` (the launcher sets it)."""
ENV_TRACE_EVENTS = "TREECAST_TRACE_EVENTS"
"""Most events one rank records (slices and message ends); later ones are only counted."""


def tracing_wanted(environ: Mapping[str, str]) -> bool:
    """Whether this process records a trace (``TREECAST_TRACE_DIR`` or ``TREECAST_TRACE``)."""
    return bool(environ.get(ENV_TRACE_DIR, "").strip() or environ.get(ENV_TRACE, "").strip())
