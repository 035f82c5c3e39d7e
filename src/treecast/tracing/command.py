"""``treecast trace-merge DIR OUT``: merge rank trace files written without treecast's
launcher (``TREECAST_TRACE=out.json mpiexec -n 4 python app.py`` leaves them in
``out.json.ranks/``) into one trace file."""

from __future__ import annotations

import argparse
import os
import sys

from .merge import merge_directory


def add_trace_option(parser: argparse.ArgumentParser) -> None:
    """``treecast run``'s ``--trace FILE``."""
    parser.add_argument(
        "--trace",
        metavar="FILE",
        help="write the job's timeline (every call, wait and message of every rank) to FILE, "
        "for ui.perfetto.dev or chrome://tracing (also TREECAST_TRACE=FILE)",
    )


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The options of ``treecast trace-merge``."""
    parser.description = (
        "Merge the trace-rank-N.json files that the ranks of a traced job wrote in DIR into "
        "one trace file OUT (open it in ui.perfetto.dev or chrome://tracing)."
    )
    parser.add_argument("directory", metavar="DIR", help="the directory of the rank files")
    parser.add_argument("out", metavar="OUT", help="the trace file to write")
    parser.add_argument(
        "-n",
        "--size",
        type=int,
        default=None,
        metavar="N",
        help="the job's number of ranks, if some left no file (default: what the files say)",
    )


def run(args: argparse.Namespace) -> int:
    """Merge; print what was written (and which ranks are missing). Returns 0, 1 if no rank
    file was found, 2 for bad arguments."""
    if not os.path.isdir(args.directory):
        print(f"treecast trace-merge: {args.directory!r} is not a directory", file=sys.stderr)
        return 2
    if args.size is not None and args.size < 1:
        print(f"treecast trace-merge: --size must be >= 1, got {args.size}", file=sys.stderr)
        return 2
    try:
        report = merge_directory(args.directory, args.out, args.size)
    except (OSError, ValueError) as exc:
        print(f"treecast trace-merge: {exc}", file=sys.stderr)
        return 2
    print(f"treecast trace-merge: {report.summary()}", file=sys.stderr)
    return 0 if report.ranks else 1
