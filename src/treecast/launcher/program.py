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

import os
import re
import sys
from collections.abc import Sequence

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


MPI4PY_SHIM = os.path.join(
    os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "_mpi4py_shim"
)
"""The directory holding treecast's stand-in ``mpi4py`` package."""


def mpi4py_env(environ: dict[str, str] | None = None) -> dict[str, str]:
    """Environment for ``treecast run --mpi4py``: :data:`MPI4PY_SHIM` first on
    ``PYTHONPATH``, so that ``import mpi4py`` in the ranks gives treecast's stand-in."""
    current = (os.environ if environ is None else environ).get("PYTHONPATH", "")
    return {"PYTHONPATH": MPI4PY_SHIM + (os.pathsep + current if current else "")}
