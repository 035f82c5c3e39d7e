"""The command lines of the cost model: ``treecast calibrate``, ``treecast predict``,
``treecast tune``, and ``treecast algorithms --rules FILE`` (each an ``add_arguments`` and
``run`` pair that ``cli.py`` registers)."""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
from collections.abc import Sequence

from ..algorithms import registry
from ..errors import InvalidArgumentError
from ..model import machine as stored
from ..model.machine import Machine
from ..model.predict import FORMS, MAX_IDS, MAX_STEPS, check_call, predict
from ..model.tuning import differences, packaged_table
from ..selection.rules import forced_from_env, load_rules, select
from ..units import number_type, size_arg
from . import parse_size, size_range
from .tune import Plan, grid_of, tunable, tune

COMPARE_N = (2, 3, 4, 8, 16, 64)
"""Rank counts ``treecast algorithms --rules`` compares."""
COMPARE_SIZES = "8,64,512,4K,32K,256K,2M,16M,64M"
"""Sizes it compares (and ``treecast tune``'s grid): powers of 8 to 64 MiB."""


def _seconds(s: float) -> str:
    if s < 1e-3:
        return f"{s * 1e6:.1f} us"
    if s < 1:
        return f"{s * 1e3:.2f} ms"
    return f"{s:.3g} s"


_size = size_arg()
_count = number_type(int, at_least=1)


def _machine(path: str | None, cores: int | None) -> tuple[Machine, str]:
    """The model at ``path`` (which must exist), else the stored one or the defaults, with
    ``cores``, and a line saying which.

    Raises:
        InvalidArgumentError: ``path`` is missing or not a model; a stored one is invalid.
    """
    where = path or stored.default_path()
    machine, found = stored.load(where, required=bool(path))
    line = (
        f"model: {where} ({machine.note})"
        if found
        else (f"model: defaults (no {where}; run 'treecast calibrate' to measure this machine)")
    )
    return (machine if cores is None else machine.with_cores(cores)), line


# ------------------------------------------------------------------------- calibrate
def add_calibrate_arguments(parser: argparse.ArgumentParser) -> None:
    """The options of ``treecast calibrate``."""
    parser.add_argument(
        "--out",
        metavar="FILE",
        help=f"where to store the figures (default $TREECAST_MODEL or {stored.default_path()})",
    )
    parser.add_argument(
        "--quick",
        action="store_true",
        help="about half the time: two ranks, fewer sizes, the default steal; for tests",
    )


def run_calibrate(args: argparse.Namespace) -> int:
    """Run ``treecast calibrate``; return the exit status."""
    from .calibrate import calibrate

    try:
        machine, measured = calibrate(
            quick=args.quick, progress=lambda t: print(t, file=sys.stderr)
        )
    except RuntimeError as exc:
        print(f"treecast calibrate: {exc}", file=sys.stderr)
        return 1
    path = stored.save(machine, args.out, measured)
    print(f"{machine.note}, {machine.cores} cores:")
    for line in describe(machine):
        print(f"  {line}")
    print(f"stored in {path}")
    return 0


def describe(m: Machine) -> list[str]:
    """The figures of ``m``, one per line, for people."""
    mib = 1 << 20
    return [
        f"alpha (per message)          {_seconds(m.alpha)}",
        f"beta (per byte copied)       {m.beta * 1e9:.3f} ns in cache, {m.beta_mem * 1e9:.3f} ns "
        f"beyond {m.cache_bytes / mib:.0f} MiB",
        f"gamma (per byte reduced)     {m.gamma * 1e9:.3f} ns in cache, {m.gamma_mem * 1e9:.3f} ns beyond",
        f"alloc (per fresh byte)       {m.alloc * 1e9:.3f} ns",
        f"overhead (per call)          {_seconds(m.overhead)} (bcast; others: {len(m.overheads)} measured)",
        f"object (per message)         {_seconds(m.object_overhead)}",
        f"node sync                    {_seconds(m.node_sync)}",
        f"steal (ranks > cores)        {m.steal:.2f}",
        f"sleep (beyond asked)         {_seconds(m.sleep_extra)}",
    ]


# --------------------------------------------------------------------------- predict
def add_predict_arguments(parser: argparse.ArgumentParser) -> None:
    """The options of ``treecast predict``."""
    parser.add_argument("collective", help="e.g. bcast, allreduce (treecast algorithms lists them)")
    parser.add_argument("-n", "--nprocs", type=int, required=True, help="ranks")
    parser.add_argument(
        "--bytes",
        default="8",
        help="bytes the rule table sees: the buffer, the vector, the whole gathered buffer "
        "(suffixes K, M, G; default 8)",
    )
    parser.add_argument("--form", choices=FORMS, default="buffer", help="buffers or objects")
    parser.add_argument(
        "--non-commutative", action="store_true", help="an operator that needs rank order"
    )
    parser.add_argument(
        "--cores",
        type=int,
        default=None,
        help="cores the ranks share (default: the model's; 0: one per rank, as on a cluster)",
    )
    parser.add_argument(
        "--model", metavar="FILE", help="figures to use (must exist; default: the stored ones)"
    )
    parser.add_argument(
        "--max-steps",
        type=_count,
        default=MAX_STEPS,
        help=f"skip algorithms that take more steps to simulate (default {MAX_STEPS})",
    )
    parser.add_argument(
        "--max-ids",
        type=_count,
        default=MAX_IDS,
        help="skip algorithms whose steps list more block ids to simulate, all ranks "
        f"together (memory: an alltoall lists O(p^2); default {MAX_IDS})",
    )


def _choice(args: argparse.Namespace, nbytes: int) -> tuple[str, str]:
    """(the algorithm a call like this one runs, why: the rule table (``TREECAST_RULES``'s
    when set) or ``TREECAST_<COLLECTIVE>_ALGORITHM``).

    Raises:
        InvalidArgumentError: the environment names an unknown algorithm or a bad table.
    """
    buffer = args.form == "buffer"
    forced = forced_from_env(args.collective)
    algo = select(
        args.collective,
        args.nprocs,
        nbytes if buffer else -1,
        commutative=buffer and not args.non_commutative,  # objects reduce in rank order
        buffer=buffer,
    )
    if forced is None:
        table = "TREECAST_RULES" if os.environ.get("TREECAST_RULES") else "rule table"
        return algo.name, f"{table}'s choice"
    variable = f"TREECAST_{args.collective.upper()}_ALGORITHM={forced}"
    if algo.name == forced:
        return algo.name, f"forced by {variable}"
    return algo.name, f"runs instead of {forced}, which cannot run here ({variable})"


def run_predict(args: argparse.Namespace) -> int:
    """Run ``treecast predict``; return the exit status."""
    try:
        nbytes = parse_size(args.bytes)
        check_call(args.collective, args.nprocs, nbytes, args.form)
        machine, line = _machine(args.model, args.cores)
        chosen, why = _choice(args, nbytes)
        forecast = predict(
            args.collective,
            args.nprocs,
            nbytes,
            machine,
            form=args.form,
            commutative=not args.non_commutative,
            max_steps=args.max_steps,
            max_ids=args.max_ids,
        )
    except (ValueError, InvalidArgumentError) as exc:
        print(f"treecast predict: {exc}", file=sys.stderr)
        return 2
    cores = f"{machine.cores} cores" if machine.cores else "a core per rank"
    print(f"{args.collective} ({args.form}), n = {args.nprocs}, {nbytes} bytes, on {cores}")
    print(line)
    width = max([len(p.algorithm) for p in forecast.predictions] + [9])
    print(f"  {'algorithm':<{width}}  {'predicted':>10}  {'messages':>10}  how")
    for p in forecast.predictions:
        mark = f"  <- {why}" if p.algorithm == chosen else ""
        print(
            f"  {p.algorithm:<{width}}  {_seconds(p.seconds):>10}  {p.messages:>10}  {p.how}{mark}"
        )
    for name, reason in forecast.skipped:
        mark = f" ({why})" if name == chosen else ""
        print(f"  skipped {name}{mark}: {reason}")
    return 0


# ------------------------------------------------------------------------------ tune
def add_tune_arguments(parser: argparse.ArgumentParser) -> None:
    """The options of ``treecast tune``."""
    default_out = os.path.join(os.path.dirname(stored.default_path()), "rules.json")
    parser.add_argument("--out", metavar="FILE", default=default_out, help=f"default {default_out}")
    parser.add_argument(
        "--collectives", default="", help="comma-separated (default: every one with a choice)"
    )
    parser.add_argument("--measure-n", default="2,4", help="rank counts to measure ('' for none)")
    parser.add_argument(
        "--measure-max-bytes", type=_size, default=256 << 10, help="largest size measured (256K)"
    )
    parser.add_argument("--sizes", default=COMPARE_SIZES, help=f"grid sizes ({COMPARE_SIZES})")
    parser.add_argument("--max-n", type=_count, default=64, help="largest rank count (64)")
    parser.add_argument(
        "--budget", type=float, default=0.02, help="seconds per measured cell (0.02)"
    )
    parser.add_argument(
        "--model", metavar="FILE", help="figures to use (must exist; default: the stored ones)"
    )


def _tune_collectives(text: str) -> tuple[str, ...]:
    """The collectives ``--collectives`` names (default: every one with a choice).

    Raises:
        ValueError: an unknown one, or one with nothing to tune (one algorithm on a node).
    """
    names = [c.strip() for c in text.split(",") if c.strip()]
    bad = [c for c in names if c not in registry.ALGORITHMS]
    if bad:
        raise ValueError(
            f"unknown collective(s) {bad}; expected some of {sorted(registry.ALGORITHMS)}"
        )
    choices = tunable(registry.ALGORITHMS)
    fixed = [c for c in names if c not in choices]
    if fixed:
        raise ValueError(
            f"--collectives: nothing to tune for {fixed} (one algorithm on one node); "
            f"collectives with a choice: {choices}"
        )
    return tuple(names or choices)


def _tune_plan(args: argparse.Namespace) -> Plan:
    """The :class:`~treecast.bench.tune.Plan` of ``args``, checked before any work.

    Raises:
        ValueError: a bad option, named.
    """
    collectives = _tune_collectives(args.collectives)
    measure_n = tuple(_count(w) for w in args.measure_n.split(",") if w.strip())
    if args.max_n < 2:
        raise ValueError(
            f"--max-n must be >= 2 (the grid's rank counts start at 2), got {args.max_n}"
        )
    for n in measure_n:
        if not 2 <= n <= args.max_n:
            raise ValueError(
                f"--measure-n: rank counts must be from 2 to --max-n ({args.max_n}), got {n}"
            )
    if not (math.isfinite(args.budget) and args.budget > 0):
        raise ValueError(f"--budget must be > 0 seconds (a finite number), got {args.budget}")
    return Plan(
        collectives=collectives,
        sizes=tuple(size_range(args.sizes)),
        grid_n=grid_of(args.max_n, measure_n),
        measure_n=measure_n,
        measure_max_bytes=args.measure_max_bytes,
        budget=args.budget,
    )


def _check_out(path: str) -> None:
    """Make ``--out``'s directory if needed and check that the file can be written there,
    before the work.

    Raises:
        ValueError: it cannot (the message names the path).
    """
    if not path:
        raise ValueError("--out: expected a file name, got ''")
    if os.path.isdir(path):
        raise ValueError(f"--out {path}: is a directory; expected a file name")
    folder = os.path.dirname(os.path.abspath(path))
    try:
        os.makedirs(folder, exist_ok=True)
    except OSError as exc:
        raise ValueError(f"--out {path}: cannot make {folder}: {exc.strerror or exc}") from None
    target = path if os.path.exists(path) else folder
    if not os.access(target, os.W_OK):
        raise ValueError(f"--out {path}: {target} is not writable")


def run_tune(args: argparse.Namespace) -> int:
    """Run ``treecast tune``; return the exit status."""
    try:
        plan = _tune_plan(args)
        machine, line = _machine(args.model, None)
        _check_out(args.out)
    except (ValueError, argparse.ArgumentTypeError, InvalidArgumentError) as exc:
        print(f"treecast tune: {exc}", file=sys.stderr)
        return 2
    print(line, file=sys.stderr)
    try:
        table, _ = tune(plan, machine, lambda t: print(t, file=sys.stderr))
    except RuntimeError as exc:
        print(f"treecast tune: {exc}", file=sys.stderr)
        return 1
    text = json.dumps({"_about": _about(plan, line), **table}, indent=1) + "\n"
    try:
        with open(args.out, "w", encoding="utf-8") as fh:
            fh.write(text)
    except OSError as exc:
        print(f"treecast tune: cannot write {args.out}: {exc.strerror or exc}", file=sys.stderr)
        return 1
    print(f"wrote {args.out}; use it with TREECAST_RULES={args.out}")
    print(f"what it changes: treecast algorithms --rules {args.out}")
    return 0


def _about(plan: Plan, line: str) -> str:
    measured = ", ".join(map(str, plan.measure_n)) or "no"
    return (
        f"Written by treecast tune: measured on {measured} ranks up to "
        f"{plan.measure_max_bytes} bytes, the cost model elsewhere ({line}); "
        f"collectives tuned: {', '.join(plan.collectives)}. Same format as "
        "selection/default.json; use with TREECAST_RULES."
    )


# ------------------------------------------------------------------- algorithms --rules
def print_rule_differences(
    path: str,
    collectives: Sequence[str],
    size: int | None = None,
    nbytes: int | None = None,
    nodes: int = 1,
) -> int:
    """Print where the rule table at ``path`` chooses otherwise than the packaged one, at
    ``size`` ranks (default :data:`COMPARE_N`) and ``nbytes`` (default
    :data:`COMPARE_SIZES`) on ``nodes`` nodes; return the exit status (2 if the file is
    not a valid table)."""
    try:
        table = load_rules(path)
    except InvalidArgumentError as exc:  # it names the file, the rule and the key
        print(f"treecast algorithms: {exc}", file=sys.stderr)
        return 2
    ns = COMPARE_N if size is None else (size,)
    sizes = size_range(COMPARE_SIZES) if nbytes is None else [nbytes]
    base = packaged_table()
    where = "one node" if nodes == 1 else f"{nodes} nodes"
    print(f"{path} against the packaged rules ({where}, node memory, commutative operator):")
    for collective in collectives:
        diff = differences(base, table, collective, ns, sizes, nodes)
        print(f"{collective}: {len(diff) or 'no'} difference(s)")
        for form, n, b, was, now in diff:
            at = f"{b} B" if b >= 0 else "objects"
            print(f"  n={n:<4} {form:<6} {at:>12}: {was} -> {now}")
    return 0
