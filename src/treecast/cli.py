"""The ``treecast`` command line: ``treecast SUBCOMMAND ...``.

Each subcommand is one :class:`Subcommand` entry in :data:`SUBCOMMANDS`: a name, a help
line, a function that adds its arguments to its parser and a function that runs it and
returns the exit status. To add one (``bench``, ``algorithms``, ``tree``, ``compat``), write those two
functions and append an entry.
"""

from __future__ import annotations

import argparse
import os
import re
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from .launcher import (
    REAL_MPI4PY_WARNING,
    FdSink,
    missing_program,
    mpi4py_env,
    resolve_command,
    run_job,
    wants_real_mpi4py,
)
from .launcher.supervisor import GRACE_SECONDS
from .tracing import command as trace_command
from .transports.shm_layout import MIN_RING_CAPACITY
from .units import number_type, size_arg


@dataclass(frozen=True)
class Subcommand:
    """One ``treecast`` subcommand.

    Attributes:
        name: the word after ``treecast``.
        help: one line for ``treecast --help``.
        add_arguments: adds the subcommand's options to its parser.
        run: runs the subcommand with the parsed arguments; returns the exit status.
        split_program: for commands that run a program (``treecast run``): splits the words
            after the subcommand into (our options, PROGRAM and its ARGS), so that the
            program's own options are never parsed by us. The second part becomes
            ``args.program``.
    """

    name: str
    help: str
    add_arguments: Callable[[argparse.ArgumentParser], None]
    run: Callable[[argparse.Namespace], int]
    split_program: Callable[[list[str]], tuple[list[str], list[str]]] | None = None


# ---------------------------------------------------------------------------- treecast run

_RUN_FLAGS = frozenset(
    {"--tag-output", "--keep-going", "--mpi4py", "--real-mpi4py", "-h", "--help"}
)
_RUN_VALUED = frozenset({"-n", "-np", "--np", "--timeout", "--ring-bytes", "--grace", "--trace"})
_ATTACHED_COUNT = re.compile(r"-np?\d+")


_positive_int = number_type(int, at_least=1)
_positive_float = number_type(float, above=0)
_nonnegative_float = number_type(float, at_least=0)


def _add_run_arguments(parser: argparse.ArgumentParser) -> None:
    parser.usage = "treecast run -n N [options] PROGRAM [ARGS...]"
    parser.description = (
        "Start N ranks of PROGRAM on this machine, connected through shared memory. PROGRAM "
        "is 'script.py', '-m module', '-c code', 'python ...' (run with this interpreter) "
        "or any executable. The launcher's options must come before PROGRAM."
    )
    parser.add_argument(
        "-n",
        "-np",
        "--np",
        dest="nprocs",
        type=_positive_int,
        required=True,
        metavar="N",
        help="number of ranks",
    )
    parser.add_argument(
        "--tag-output", action="store_true", help="prefix every output line with '[rank] '"
    )
    parser.add_argument(
        "--timeout",
        type=_positive_float,
        metavar="SECONDS",
        help="end the job after SECONDS and exit with status 124",
    )
    parser.add_argument(
        "--ring-bytes",
        type=size_arg(at_least=MIN_RING_CAPACITY),
        metavar="BYTES",
        help="capacity of each pairwise shared-memory ring, e.g. 4M (default: 1 MiB up to 8 "
        f"ranks; at least {MIN_RING_CAPACITY})",
    )
    which = parser.add_mutually_exclusive_group()
    which.add_argument(
        "--mpi4py",
        action="store_true",
        help="'from mpi4py import MPI' in the ranks gives treecast.MPI, so unmodified mpi4py "
        "programs run (the default; the flag is kept for scripts that pass it)",
    )
    which.add_argument(
        "--real-mpi4py",
        action="store_true",
        help="the ranks import the installed mpi4py instead (also TREECAST_MPI4PY=real); "
        "it sees a world of 1 in every rank here",
    )
    parser.add_argument(
        "--keep-going",
        action="store_true",
        help="when a rank fails, let the others finish (default: end them after --grace)",
    )
    parser.add_argument(
        "--grace",
        type=_nonnegative_float,
        default=GRACE_SECONDS,
        metavar="SECONDS",
        help="when a rank fails, the others' calls with it raise ProcessFailedError; they "
        f"get SECONDS to handle it and exit before they are terminated (default {GRACE_SECONDS:g})",
    )
    trace_command.add_trace_option(parser)


def _split_run_argv(words: list[str]) -> tuple[list[str], list[str]]:
    """Split ``run``'s words at the first one that is not a launcher option (or at ``--``)."""
    i = 0
    while i < len(words):
        word = words[i]
        if word == "--":
            return words[:i], words[i + 1 :]
        if word in _RUN_FLAGS or _ATTACHED_COUNT.fullmatch(word):
            i += 1
        elif word in _RUN_VALUED:
            i += 2
        elif word.startswith("--") and word.partition("=")[0] in _RUN_VALUED:
            i += 1
        else:
            break
    return words[:i], words[i:]


def _run(args: argparse.Namespace) -> int:
    try:
        command = resolve_command(args.program)
    except ValueError as exc:
        print(f"treecast run: error: {exc}", file=sys.stderr)
        return 2
    try:
        from_env = wants_real_mpi4py()  # checked even when a flag decides
        real = args.real_mpi4py or (not args.mpi4py and from_env)
    except ValueError as exc:
        print(f"treecast run: error: {exc}", file=sys.stderr)
        return 2
    if real:
        print(f"treecast run: warning: {REAL_MPI4PY_WARNING}", file=sys.stderr, flush=True)
    env = None if real else mpi4py_env()
    missing = missing_program(command, env)
    if missing is not None:  # said once, before any rank starts
        print(f"treecast run: error: {missing[0]}", file=sys.stderr)
        return missing[1]
    try:
        result = run_job(
            command,
            args.nprocs,
            sink=FdSink(),
            tag_output=args.tag_output,
            timeout=args.timeout,
            ring_bytes=args.ring_bytes,
            keep_going=args.keep_going,
            grace=args.grace,
            env=env,
            handle_signals=True,
            die_with_launcher=True,
            trace=args.trace,
        )
    except ValueError as exc:
        print(f"treecast run: error: {exc}", file=sys.stderr)
        return 2
    except OSError as exc:
        print(f"treecast run: cannot create the job's shared memory: {exc}", file=sys.stderr)
        return 1
    return result.returncode


# ------------------------------------------------------------------------------- registry


def _bench_module() -> Any:
    from . import bench

    return bench


def _compat_module() -> Any:
    from . import compat

    return compat


def _model_cli() -> Any:
    from .bench import model_cli

    return model_cli


def _tree_module() -> Any:
    from . import tree_pictures

    return tree_pictures


def _add_algorithms_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("collective", nargs="?", help="only this collective (e.g. allreduce)")
    parser.add_argument(
        "-n",
        "--size",
        type=int,
        default=None,
        help="also show the default choice for N ranks (with --rules: compare at N only)",
    )
    parser.add_argument(
        "--bytes",
        type=size_arg(),
        default=None,
        metavar="BYTES",
        help="message size for the default choice, e.g. 64K or 1MiB (default 1024; with "
        "--rules: compare at this size only)",
    )
    parser.add_argument(
        "--nodes",
        type=int,
        default=1,
        help="nodes the N ranks span, for the default choice and --rules (1)",
    )
    parser.add_argument(
        "--rules", metavar="FILE", help="show where this rule table (treecast tune) differs"
    )


def _algorithms(args: argparse.Namespace) -> int:
    from .algorithms import registry
    from .errors import InvalidArgumentError
    from .selection.rules import forced_from_env, select

    if args.collective and args.collective not in registry.ALGORITHMS:
        print(
            f"treecast algorithms: unknown collective {args.collective!r}; expected one of "
            f"{', '.join(sorted(registry.ALGORITHMS))}",
            file=sys.stderr,
        )
        return 2
    if args.nodes < 1:
        print(f"treecast algorithms: --nodes must be >= 1, got {args.nodes}", file=sys.stderr)
        return 2
    if args.size is not None and args.size < 1:
        print(f"treecast algorithms: -n must be >= 1, got {args.size}", file=sys.stderr)
        return 2
    names = [args.collective] if args.collective else list(registry.ALGORITHMS)
    if args.rules:
        return _model_cli().print_rule_differences(
            args.rules, names, args.size, args.bytes, args.nodes
        )
    args.bytes = 1024 if args.bytes is None else args.bytes
    for collective in names:
        algos = registry.ALGORITHMS[collective]
        header = f"{collective} (TREECAST_{collective.upper()}_ALGORITHM"
        forced = forced_from_env(collective)
        header += f"={forced})" if forced else ")"
        if args.size:
            try:
                chosen = select(collective, args.size, args.bytes, nodes=args.nodes).name
            except InvalidArgumentError as exc:
                chosen = f"error: {exc}"
            on = f" on {args.nodes} nodes" if args.nodes > 1 else ""
            header += f"  default for n={args.size}{on}, {args.bytes} B: {chosen}"
        print(header)
        width = max(len(n) for n in algos)
        for name, algo in algos.items():
            safe = "  [safe fallback]" if registry.SAFE.get(collective) == name else ""
            print(f"  {name:<{width}}  {algo.summary}{safe}")
            if algo.restriction:
                print(f"  {'':<{width}}  restriction: {algo.restriction}")
        print()
    return 0


SUBCOMMANDS: list[Subcommand] = [
    Subcommand(
        name="run",
        help="start N ranks of a program on this machine",
        add_arguments=_add_run_arguments,
        run=_run,
        split_program=_split_run_argv,
    ),
    Subcommand(
        name="bench",
        help="OSU-style latency of an operation against size (--compare mpi4py, --plot)",
        add_arguments=lambda parser: _bench_module().add_arguments(parser),
        run=lambda args: _bench_module().run(args),
    ),
    Subcommand(
        name="tree",
        help="draw a communication tree (binomial, knomial, kary, chain, inorder, two-tree) "
        "as text, SVG or PNG",
        add_arguments=lambda parser: _tree_module().add_arguments(parser),
        run=lambda args: _tree_module().run(args),
    ),
    Subcommand(
        name="algorithms",
        help="list every collective's algorithms, their restrictions and the default choice",
        add_arguments=_add_algorithms_arguments,
        run=_algorithms,
    ),
    Subcommand(
        name="trace-merge",
        help="merge the rank trace files of a job started by another launcher (mpiexec)",
        add_arguments=trace_command.add_arguments,
        run=trace_command.run,
    ),
    Subcommand(
        name="compat",
        help="what treecast.MPI has of mpi4py's API; 'compat NAME' says whether it has NAME",
        add_arguments=lambda parser: _compat_module().add_arguments(parser),
        run=lambda args: _compat_module().run(args),
    ),
    Subcommand(
        name="calibrate",
        help="measure this machine for the cost model (a few seconds)",
        add_arguments=lambda parser: _model_cli().add_calibrate_arguments(parser),
        run=lambda args: _model_cli().run_calibrate(args),
    ),
    Subcommand(
        name="predict",
        help="predict every algorithm's time for a collective, best first",
        add_arguments=lambda parser: _model_cli().add_predict_arguments(parser),
        run=lambda args: _model_cli().run_predict(args),
    ),
    Subcommand(
        name="tune",
        help="write a rule table for this machine (use with TREECAST_RULES)",
        add_arguments=lambda parser: _model_cli().add_tune_arguments(parser),
        run=lambda args: _model_cli().run_tune(args),
    ),
]
"""Every ``treecast`` subcommand, in the order ``treecast --help`` lists them."""


def build_parser() -> tuple[argparse.ArgumentParser, dict[str, argparse.ArgumentParser]]:
    """Return the ``treecast`` parser and each subcommand's parser by name."""
    parser = argparse.ArgumentParser(
        prog="treecast",
        description="Fast, safe collective communication for Python processes.",
        allow_abbrev=False,
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    parsers = {}
    for command in SUBCOMMANDS:
        subparser = sub.add_parser(
            command.name, help=command.help, description=command.help, allow_abbrev=False
        )
        command.add_arguments(subparser)
        subparser.set_defaults(_subcommand=command)
        parsers[command.name] = subparser
    return parser, parsers


def main(argv: Sequence[str] | None = None) -> int:
    """Run ``treecast`` with ``argv`` (default: ``sys.argv[1:]``); return the exit status."""
    words = list(sys.argv[1:] if argv is None else argv)
    parser, parsers = build_parser()
    program: list[str] = []
    chosen = next((c for c in SUBCOMMANDS if words and c.name == words[0]), None)
    if chosen is not None and chosen.split_program is not None:
        options, program = chosen.split_program(words[1:])
        if not program and not {"-h", "--help"} & set(options):
            parsers[chosen.name].error("no PROGRAM given")
        if program and program[0].startswith("-") and not program[0].startswith(("-m", "-c")):
            # PROGRAM is a script, '-m module', '-c code' or a command: never an option
            parsers[chosen.name].error(
                f"unknown option {program[0]!r}; the launcher's options come before PROGRAM"
            )
        words = [chosen.name, *options]
    args = parser.parse_args(words)
    args.program = program
    subcommand: Subcommand = args._subcommand
    try:
        return subcommand.run(args)
    except BrokenPipeError:  # output piped into a reader that stopped (`| head`): not an error
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())  # Python's flush at exit must not fail again
        return 0
