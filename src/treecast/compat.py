"""``treecast compat [NAME]``: what treecast.MPI has of mpi4py's API, from the installed package.

The errors for mpi4py names treecast lacks point here (``_mpi4py_names.COMPAT_POINTER``), so
the pointer works wherever treecast is installed: the text is package data
(``compatibility.txt``, a short form of the source repository's ``docs/compatibility.md``)
and the verdict for a name is computed from :mod:`treecast.MPI` itself.
"""

from __future__ import annotations

import argparse
from importlib import resources
from typing import Any

from . import _mpi4py_names as names

_PREFIXES = ("treecast.MPI.", "mpi4py.MPI.", "MPI.")

_TOPO = names.CARTCOMM | names.COMM
_TOPOLOGIES = ("Topocomm", "Cartcomm", "Graphcomm", "Distgraphcomm")
_OWN = {
    "Comm": names.COMM,
    "Cartcomm": names.CARTCOMM,
    "Request": names.REQUEST,
    "Datatype": names.DATATYPE,
    "Group": names.GROUP,
}
"""The owners a bare name is looked up on, each with the names that are its own."""
_KNOWN: dict[str, frozenset[str]] = {
    "Comm": names.COMM,
    "Intracomm": names.COMM,
    "Topocomm": _TOPO,
    "Cartcomm": _TOPO,
    "Graphcomm": _TOPO | names.GRAPHCOMM,
    "Distgraphcomm": _TOPO | names.DISTGRAPHCOMM,
    "Request": names.REQUEST,
    "Prequest": names.REQUEST,
    "Datatype": names.DATATYPE,
    "Group": names.GROUP,
}
"""Owner -> mpi4py 4.1's names on it, for the owners whose names treecast records."""


def summary() -> str:
    """The packaged text: what treecast.MPI has, what it lacks, what differs on purpose."""
    return resources.files(__package__).joinpath("compatibility.txt").read_text("utf-8")


def _probe(mpi: Any, owner: str, attr: str) -> Any:
    """The object to look ``owner.attr`` up on: an instance where instances carry names that
    the class does not (``COMM_WORLD.rank``); a topology communicator has a communicator's
    names besides its own."""
    if owner in _TOPOLOGIES:  # its own names on the class, a communicator's on an instance
        cls = getattr(mpi, owner)
        return cls if hasattr(cls, attr) or attr not in names.COMM else mpi.COMM_WORLD
    if owner in ("Comm", "Intracomm"):
        return mpi.COMM_WORLD
    instances = {"Request": "REQUEST_NULL", "Datatype": "BYTE", "Group": "GROUP_EMPTY"}
    return getattr(mpi, instances.get(owner, owner))


def missing() -> dict[str, list[str]]:
    """Owner (``"MPI"`` for the module) -> mpi4py 4.1's names that treecast.MPI lacks."""
    from . import MPI

    out = {"MPI": sorted(n for n in names.MODULE if not hasattr(MPI, n))}
    for owner, own in _OWN.items():
        out[owner] = sorted(n for n in own if not hasattr(_probe(MPI, owner, n), n))
    return out


def lookup(name: str) -> tuple[int, str]:
    """``(status, verdict)`` for an mpi4py name: ``"Win"``, ``"MPI.Win"``, ``"Comm.Spawn"``,
    ``"Datatype.Create_vector"``, or a bare method name such as ``"Spawn"``. Status 0: treecast.MPI
    has it; 1: mpi4py 4.1 has it and treecast does not; 2: neither is known to have it."""
    from . import MPI

    for prefix in _PREFIXES:
        name = name.removeprefix(prefix)
    owner, _, attr = name.rpartition(".")
    if owner:
        return _lookup_on(MPI, owner, attr)
    if hasattr(MPI, attr):
        return 0, f"MPI.{attr}: treecast.MPI has it{_what(getattr(MPI, attr))}"
    if attr in names.MODULE:
        return 1, f"MPI.{attr}: not implemented in treecast.MPI (mpi4py 4.1 has it)"
    owners = [owner for owner, own in _OWN.items() if attr in own]
    if not owners:
        return 2, f"{attr}: neither mpi4py 4.1 nor treecast.MPI has a name {attr!r}"
    found = [_lookup_on(MPI, o, attr) for o in owners]
    return min(status for status, _ in found), "\n".join(line for _, line in found)


def _lookup_on(mpi: Any, owner: str, attr: str) -> tuple[int, str]:
    where = f"{owner}.{attr}"
    if not hasattr(mpi, owner):
        if owner in names.MODULE:
            return 1, f"{where}: not implemented in treecast.MPI (it has no MPI.{owner})"
        return 2, f"{where}: neither mpi4py 4.1 nor treecast.MPI has MPI.{owner}"
    probe = _probe(mpi, owner, attr)
    if hasattr(probe, attr):
        return 0, f"{where}: treecast.MPI has it{_what(getattr(probe, attr))}"
    if attr in _KNOWN.get(owner, ()):
        return 1, f"{where}: not implemented in treecast.MPI (mpi4py 4.1 has it)"
    if owner in _KNOWN:
        return 2, f"{where}: neither mpi4py 4.1 nor treecast.MPI has it"
    return 2, f"{where}: treecast.MPI does not have it"


def _what(obj: Any) -> str:
    """``": "`` and the first line of the docstring of a function or class; ``""`` for
    values."""
    doc = (getattr(obj, "__doc__", None) or "").strip() if callable(obj) else ""
    return f": {doc.splitlines()[0]}" if doc else ""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The options of ``treecast compat``."""
    parser.description = (
        "What treecast.MPI has of mpi4py 4.1's API. With NAME: whether it has that name "
        "(exit status 0: yes; 1: not implemented; 2: unknown name)."
    )
    parser.add_argument(
        "name", nargs="?", help="an mpi4py name: Win, MPI.Win, Comm.Spawn, Create_vector, ..."
    )
    parser.add_argument(
        "--missing", action="store_true", help="list every mpi4py 4.1 name treecast.MPI lacks"
    )


def run(args: argparse.Namespace) -> int:
    """Run ``treecast compat``; return the exit status."""
    if args.name:
        status, verdict = lookup(args.name)
        print(verdict)
        if status == 1:
            not_there = summary().split("\nNot implemented", 1)[1].split("\n\n", 1)[0]
            print(f"\nNot implemented{not_there}")
        return status
    if args.missing:
        for owner, lacking in missing().items():
            print(f"{owner} ({len(lacking)}): {' '.join(lacking) or '-'}")
        return 0
    print(summary(), end="")
    return 0
