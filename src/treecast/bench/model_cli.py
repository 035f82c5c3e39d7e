"""The command lines of the cost model: ``treecast calibrate``, ``treecast predict``,
``treecast tune``, and ``treecast algorithms --rules FILE`` (each an ``add_arguments`` and
``run`` pair that ``cli.py`` registers)."""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Sequence

from ..algorithms import registry
from ..errors import InvalidArgumentError
from ..model import machine as stored
from ..model.machine import Machine
from ..model.predict import FORMS, MAX_STEPS, check_call, predict
from ..model.tuning import differences, packaged_table
from ..selection.rules import load_rules, select
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


def _size(text: str) -> int:
    try:
        return parse_size(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def _count(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a whole number >= 1, got {value}")
    return value


def _machine(path: str | None, cores: int | None) -> tuple[Machine, str]:
    """The stored model (or the defaults) with ``cores``, and a line saying which."""
    where = path or stored.default_path()
    machine, found = stored.load(where)
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
    parser.add_argument("--model", metavar="FILE", help="figures to use (default: stored ones)")
    parser.add_argument(
        "--max-steps",
        type=_count,
        default=MAX_STEPS,
        help=f"skip algorithms that take more steps to simulate (default {MAX_STEPS})",
    )


def run_predict(args: argparse.Namespace) -> int:
    """Run ``treecast predict``; return the exit status."""
    try:
        nbytes = parse_size(args.bytes)
        check_call(args.collective, args.nprocs, nbytes, args.form)
        machine, line = _machine(args.model, args.cores)
        forecast = predict(
            args.collective,
            args.nprocs,
            nbytes,
            machine,
            form=args.form,
            commutative=not args.non_commutative,
            max_steps=args.max_steps,
        )
    except (ValueError, InvalidArgumentError) as exc:
        print(f"treecast predict: {exc}", file=sys.stderr)
        return 2
    cores = f"{machine.cores} cores" if machine.cores else "a core per rank"
    print(f"{args.collective} ({args.form}), n = {args.nprocs}, {nbytes} bytes, on {cores}")
    print(line)
    default = select(
        args.collective,
        args.nprocs,
        nbytes if args.form == "buffer" else -1,
        commutative=not args.non_commutative,
        buffer=args.form == "buffer",
    )
    width = max([len(p.algorithm) for p in forecast.predictions] + [9])
    print(f"  {'algorithm':<{width}}  {'predicted':>10}  {'messages':>10}  how")
    for p in forecast.predictions:
        mark = "  <- rule table's choice" if p.algorithm == default.name else ""
        print(
            f"  {p.algorithm:<{width}}  {_seconds(p.seconds):>10}  {p.messages:>10}  {p.how}{mark}"
        )
    for name, why in forecast.skipped:
        print(f"  skipped {name}: {why}")
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
    parser.add_argument("--model", metavar="FILE", help="figures to use (default: stored ones)")


def _tune_plan(args: argparse.Namespace) -> Plan:
    """The :class:`~treecast.bench.tune.Plan` of ``args``.

    Raises:
        ValueError: a bad option, named.
    """
    names = [c.strip() for c in args.collectives.split(",") if c.strip()]
    bad = [c for c in names if c not in registry.ALGORITHMS]
    if bad:
        raise ValueError(
            f"unknown collective(s) {bad}; expected some of {sorted(registry.ALGORITHMS)}"
        )
    measure_n = tuple(_count(w) for w in args.measure_n.split(",") if w.strip())
    if args.budget <= 0:
        raise ValueError(f"--budget must be > 0 seconds, got {args.budget}")
    return Plan(
        collectives=tuple(tunable(names or registry.ALGORITHMS)),
        sizes=tuple(size_range(args.sizes)),
        grid_n=grid_of(args.max_n, measure_n),
        measure_n=measure_n,
        measure_max_bytes=args.measure_max_bytes,
        budget=args.budget,
    )


def run_tune(args: argparse.Namespace) -> int:
    """Run ``treecast tune``; return the exit status."""
    try:
        plan = _tune_plan(args)
        machine, line = _machine(args.model, None)
    except (ValueError, argparse.ArgumentTypeError, InvalidArgumentError) as exc:
        print(f"treecast tune: {exc}", file=sys.stderr)
        return 2
    print(line, file=sys.stderr)
    try:
        table, _ = tune(plan, machine, lambda t: print(t, file=sys.stderr))
    except RuntimeError as exc:
        print(f"treecast tune: {exc}", file=sys.stderr)
        return 1
    os.makedirs(os.path.dirname(os.path.abspath(args.out)), exist_ok=True)
    with open(args.out, "w", encoding="utf-8") as fh:
        json.dump({"_about": _about(plan, line), **table}, fh, indent=1)
        fh.write("\n")
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
def print_rule_differences(path: str, collectives: Sequence[str]) -> int:
    """Print where the rule table at ``path`` chooses otherwise than the packaged one;
    return the exit status (2 if the file is not a valid table)."""
    try:
        table = load_rules(path)
    except (OSError, ValueError, KeyError, InvalidArgumentError) as exc:
        print(f"treecast algorithms: {path}: {exc}", file=sys.stderr)
        return 2
    base, sizes = packaged_table(), size_range(COMPARE_SIZES)
    print(f"{path} against the packaged rules (one node, node memory, commutative operator):")
    for collective in collectives:
        diff = differences(base, table, collective, COMPARE_N, sizes)
        print(f"{collective}: {len(diff) or 'no'} difference(s)")
        for form, n, nbytes, was, now in diff:
            at = f"{nbytes} B" if nbytes >= 0 else "objects"
            print(f"  n={n:<4} {form:<6} {at:>12}: {was} -> {now}")
    return 0
