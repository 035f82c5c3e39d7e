"""``python -m mpi4py.futures PROGRAM`` under ``treecast run --mpi4py``: rank 0 runs PROGRAM
(``script.py``, ``-m module`` or ``-c code``) with ``MPIPoolExecutor`` backed by every other
rank; the other ranks load the script as ``__mp_main__`` (so that functions it defines can
be unpickled, as multiprocessing does) and run calls until rank 0's program ends.
"""

from __future__ import annotations

import runpy
import sys
import types

from treecast import MPI
from treecast.futures import Manager, serve

from . import _STATIC


def _load_as_mp_main(path: str) -> None:
    """Run the script as module ``__mp_main__``, also installed as ``__main__``, so that
    pickles of its functions resolve here (code under ``if __name__ == "__main__"`` does
    not run)."""
    module = types.ModuleType("__mp_main__")
    module.__file__ = path
    sys.modules["__mp_main__"] = sys.modules["__main__"] = module
    with open(path, encoding="utf-8") as f:
        code = compile(f.read(), path, "exec")
    exec(code, module.__dict__)


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
        if argv[0] not in ("-m", "-c"):
            sys.argv = list(argv)
            _load_as_mp_main(argv[0])
        serve(comm, 0)
        comm.Free()
        return 0
    manager = Manager(comm, list(range(1, world.Get_size())))
    manager.start()
    _STATIC["manager"] = manager
    try:
        if argv[0] == "-m":
            sys.argv = [argv[1], *argv[2:]]
            runpy.run_module(argv[1], run_name="__main__", alter_sys=True)
        elif argv[0] == "-c":
            sys.argv = ["-c", *argv[2:]]
            exec(compile(argv[1], "<string>", "exec"), {"__name__": "__main__"})
        else:
            sys.argv = list(argv)
            runpy.run_path(argv[0], run_name="__main__")
    finally:
        _STATIC.pop("manager", None)
        manager.stop(wait=True)
        comm.Free()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
