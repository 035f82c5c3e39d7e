"""Start the ranks of a job on this machine, supervise them, forward their output, clean up.

Used by ``treecast run`` (:mod:`treecast.cli`) and :func:`treecast.launch`.
"""

from __future__ import annotations

from .output import STDERR, STDOUT, FdSink, LineForwarder, Sink, TextSink
from .program import resolve_command
from .supervisor import EXIT_TIMEOUT, JobResult, describe_exit, exit_status, run_job

__all__ = [
    "EXIT_TIMEOUT",
    "STDERR",
    "STDOUT",
    "FdSink",
    "JobResult",
    "LineForwarder",
    "Sink",
    "TextSink",
    "describe_exit",
    "exit_status",
    "resolve_command",
    "run_job",
]
