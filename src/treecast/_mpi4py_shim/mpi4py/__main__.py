"""``python -m mpi4py PROGRAM`` under ``treecast run --mpi4py``: run PROGRAM (``script.py
ARGS``, ``-m module ARGS`` or ``-c code ARGS``) as mpi4py's runner does. An uncaught
exception prints its traceback and ends this rank with status 1, which makes the launcher
end the job (mpi4py calls ``MPI_Abort``).
"""

from __future__ import annotations

import os
import runpy
import sys


def main(argv: list[str]) -> int:
    words = list(argv)
    while words and words[0].startswith("--rc"):  # mpi4py's runtime options: accepted, unused
        del words[: 1 if "=" in words[0] else 2]
    if not words:
        print(
            "usage: python -m mpi4py [-m module | -c code | script.py] [args ...]", file=sys.stderr
        )
        return 2
    first = words[0]
    if first in ("-m", "-c"):
        if len(words) < 2:
            print(f"python -m mpi4py: {first} needs an argument", file=sys.stderr)
            return 2
        sys.argv = [first if first == "-c" else words[1], *words[2:]]
        if first == "-m":
            runpy.run_module(words[1], run_name="__main__", alter_sys=True)
        else:
            exec(compile(words[1], "<string>", "exec"), {"__name__": "__main__"})
        return 0
    sys.argv = words
    sys.path[0] = os.path.realpath(os.path.dirname(first))  # as `python script.py` does
    runpy.run_path(first, run_name="__main__")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
