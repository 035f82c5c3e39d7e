"""``python -m mpi4py.futures PROGRAM`` under ``treecast run --mpi4py``: rank 0 runs PROGRAM
(``script.py``, ``-m module`` or ``-c code``) with ``MPIPoolExecutor`` backed by every other
rank; the other ranks load the script as ``__mp_main__`` (so that functions it defines can
be unpickled, as multiprocessing does) and run calls until rank 0's program ends.
"""

from __future__ import annotations

import importlib.util
import os
import sys
import types

from treecast import MPI
from treecast.futures import Manager, serve

from . import _STATIC


def _load_as_mp_main(argv: list[str]) -> None:
    """On a worker: run the program (a script path, or ``-m module``) as module
    ``__mp_main__``, also installed as ``__main__``, so that pickles of its functions and
    classes resolve here; code under ``if __name__ == "__main__"`` does not run."""
    module = types.ModuleType("__mp_main__")
    sys.modules["__mp_main__"] = sys.modules["__main__"] = module
    if argv[0] == "-m":
        spec = importlib.util.find_spec(argv[1])
        if spec is None or spec.origin is None:
            raise ModuleNotFoundError(f"No module named {argv[1]!r}")
        path = spec.origin
    else:
        path = argv[0]
        sys.path[0] = os.path.realpath(os.path.dirname(path))
    module.__file__ = path
    with open(path, encoding="utf-8") as f:
        code = compile(f.read(), path, "exec")
    exec(code, module.__dict__)


def _as_main_module(name: str, path: str) -> types.ModuleType:
    """A fresh ``__main__`` module, also known as ``__mp_main__`` (the name workers give
    the program), so that results of classes the program defines unpickle here."""
    module = types.ModuleType("__main__")
    module.__file__ = path
    sys.modules["__main__"] = sys.modules["__mp_main__"] = module
    return module


def _run_path_as_main(path: str) -> None:
    module = _as_main_module("__main__", path)
    with open(path, encoding="utf-8") as f:
        code = compile(f.read(), path, "exec")
    exec(code, module.__dict__)


def _run_module_as_main(name: str) -> None:
    spec = importlib.util.find_spec(name)
    if spec is None or spec.origin is None:
        raise ModuleNotFoundError(f"No module named {name!r}")
    _run_path_as_main(spec.origin)


def main(argv: list[str]) -> int:
    if not argv:
        print(
            "usage: python -m mpi4py.futures [-m module | -c code | script.py] [args ...]",
            file=sys.stderr,
        )
        return 2
    world = MPI.COMM_WORLD
    comm = world.Dup()
    if world.Get_rank() != 0:
        if argv[0] != "-c":
            sys.argv = list(argv)
            _load_as_mp_main(argv)
        serve(comm, 0)
        comm.Free()
        return 0
    manager = Manager(comm, list(range(1, world.Get_size())))
    manager.start()
    _STATIC["manager"] = manager
    try:
        if argv[0] == "-m":
            sys.argv = [argv[1], *argv[2:]]
            _run_module_as_main(argv[1])
        elif argv[0] == "-c":
            sys.argv = ["-c", *argv[2:]]
            exec(compile(argv[1], "<string>", "exec"), {"__name__": "__main__"})
        else:
            sys.argv = list(argv)
            sys.path[0] = os.path.realpath(os.path.dirname(argv[0]))
            _run_path_as_main(argv[0])
    finally:
        _STATIC.pop("manager", None)
        manager.stop(wait=True)
        comm.Free()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
