"""Turn the PROGRAM words of ``treecast run`` into the command each rank executes.

Like ``mpiexec``, the launcher accepts a Python program in any of the forms people type::

    script.py ARGS          -> sys.executable script.py ARGS
    -m module ARGS          -> sys.executable -m module ARGS
    -c CODE ARGS            -> sys.executable -c CODE ARGS
    python[3[.X]] ARGS      -> sys.executable ARGS   (the launcher's own interpreter)
    anything-else ARGS      -> executed as given (looked up on PATH)

Replacing a bare ``python`` by ``sys.executable`` makes every rank run in the launcher's
environment (virtualenv, conda), which is what ``treecast run`` users mean.
"""

from __future__ import annotations

import importlib.machinery
import importlib.util
import os
import re
import sys
from collections.abc import Mapping, Sequence

_PYTHON_NAME = re.compile(r"python(\d+(\.\d+)?)?")


def _is_python(word: str) -> bool:
    """True if ``word`` names the Python interpreter: a bare ``python*`` or sys.executable."""
    if os.path.basename(word) == word:
        return _PYTHON_NAME.fullmatch(word) is not None
    return bool(sys.executable) and os.path.abspath(word) == os.path.abspath(sys.executable)


def resolve_command(program: Sequence[str]) -> list[str]:
    """Return the argv that runs ``program`` (PROGRAM and its ARGS) on each rank.

    Args:
        program: the words after the launcher's own options, e.g. ``["-m", "pkg.app", "-v"]``.

    Returns:
        The command, with ``sys.executable`` in front of Python programs.

    Raises:
        ValueError: ``program`` is empty, or ``-m``/``-c`` is not followed by its argument.
    """
    if not program:
        raise ValueError("no program given: expected e.g. 'app.py', '-m module' or '-c code'")
    first = program[0]
    if first in ("-m", "-c"):
        if len(program) < 2:
            what = "a module name" if first == "-m" else "the code to run"
            raise ValueError(f"{first} must be followed by {what}")
        return [sys.executable, *program]
    if _is_python(first):
        return [sys.executable, *program[1:]]
    if first.endswith(".py"):
        return [sys.executable, *program]
    return list(program)


# interpreter options that take no argument / one argument (as separate word or attached)
_PY_FLAGS = frozenset(
    {"-u", "-O", "-OO", "-B", "-E", "-s", "-S", "-I", "-b", "-bb", "-q", "-v", "-vv", "-d", "-P"}
)
_PY_VALUED = frozenset({"-W", "-X"})


def missing_program(
    command: Sequence[str], env: Mapping[str, str] | None = None
) -> tuple[str, int] | None:
    """What is missing for a Python ``command`` (of :func:`resolve_command`) to start, so
    that the launcher reports it once instead of every rank failing the same way.

    Checks the script of ``python script.py`` and the top-level package of ``python -m
    mod``, looked up as a rank would (the current directory, ``PYTHONPATH``, this
    interpreter's path and finders). Anything it cannot judge (``-c``, stdin, options it
    does not know, other executables) passes: the rank reports it.

    Args:
        command: the rank's argv.
        env: extra environment of the ranks (its ``PYTHONPATH`` is searched too).

    Returns:
        None, or (the message, the exit status Python itself would give: 2 for a missing
        script, 1 for a missing module).
    """
    if not command or not sys.executable or command[0] != sys.executable:
        return None
    words = list(command[1:])
    while words and words[0].startswith("-") and words[0] != "-":
        word = words.pop(0)
        if word == "-m":
            return _missing_module(words[0], env) if words else None
        if word in _PY_VALUED:
            del words[:1]
        elif word not in _PY_FLAGS and not (word[:2] in _PY_VALUED and len(word) > 2):
            return None  # -c CODE, or an option this check does not know
    if not words or words[0] == "-" or os.path.exists(words[0]):
        return None
    path = os.path.abspath(words[0])
    return f"can't open file {path!r}: [Errno 2] No such file or directory", 2


def _missing_module(name: str, env: Mapping[str, str] | None) -> tuple[str, int] | None:
    top = name.partition(".")[0]
    extra = (env or {}).get("PYTHONPATH", "") + os.pathsep + os.environ.get("PYTHONPATH", "")
    path = [os.getcwd(), *(p for p in extra.split(os.pathsep) if p)]
    try:
        if importlib.machinery.PathFinder.find_spec(top, path) is not None:
            return None
        if importlib.util.find_spec(top) is not None:
            return None
    except (ImportError, ValueError):  # a broken finder or name: the rank will say
        return None
    return f"No module named {top!r} (for -m {name})", 1


MPI4PY_SHIM = os.path.join(
    os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "_mpi4py_shim"
)
"""The directory holding treecast's stand-in ``mpi4py`` package."""


ENV_MPI4PY = "TREECAST_MPI4PY"
"""Which ``mpi4py`` the ranks of ``treecast run`` and :func:`treecast.launch` import:
``treecast`` (the default: treecast's stand-in) or ``real`` (the installed one)."""

REAL_MPI4PY_WARNING = (
    "the ranks import the installed mpi4py, which cannot see the other ranks of a treecast "
    "job: every rank's MPI.COMM_WORLD has size 1. Run such a program under mpiexec, or "
    "without --real-mpi4py / TREECAST_MPI4PY=real to get treecast's stand-in"
)
"""What is said once when a job's ranks are to import the real mpi4py."""


def wants_real_mpi4py(environ: Mapping[str, str] | None = None) -> bool:
    """True if ``TREECAST_MPI4PY=real`` asks for the installed mpi4py in the ranks.

    Raises:
        ValueError: the variable holds something other than ``treecast`` or ``real``.
    """
    value = (os.environ if environ is None else environ).get(ENV_MPI4PY, "").strip().lower()
    if value not in ("", "treecast", "real"):
        raise ValueError(
            f"{ENV_MPI4PY}={value!r}: expected 'treecast' (the default: 'import mpi4py' "
            f"gives treecast's stand-in) or 'real' (the installed mpi4py)"
        )
    return value == "real"


def mpi4py_env(environ: Mapping[str, str] | None = None) -> dict[str, str]:
    """Environment for ranks that import treecast's stand-in as ``mpi4py`` (the default
    of ``treecast run`` and :func:`treecast.launch`): :data:`MPI4PY_SHIM` first on
    ``PYTHONPATH``."""
    current = (os.environ if environ is None else environ).get("PYTHONPATH", "")
    return {"PYTHONPATH": MPI4PY_SHIM + (os.pathsep + current if current else "")}
