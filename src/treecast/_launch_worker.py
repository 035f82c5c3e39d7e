"""The process that :func:`treecast.launch` starts for each rank.

Run as ``python -m treecast._launch_worker WORKDIR``. ``WORKDIR`` (private to the user,
mode 0700) holds the payload written by the caller: a plain pickle of the caller's
``sys.path``, then the pickled ``(fn, args)``. The worker restores the path, calls
``fn(*args)`` and writes ``("ok", value)`` or ``("error", traceback_text, summary)`` to its
rank's result file. It exits 0 after a return, 1 after an exception.
"""

from __future__ import annotations

import os
import pickle
import sys
import traceback
from collections.abc import Sequence

from .launcher.lifeline import die_with_parent
from .launcher.payload import PAYLOAD_FILE, dumps, result_file
from .runtime.env import ENV_LAUNCHER_PID, ENV_RANK
from .transports.base import note_failure


def _write_atomically(path: str, data: bytes) -> None:
    partial = path + ".partial"
    with open(partial, "wb") as f:
        f.write(data)
    os.replace(partial, path)


def _error(exc: BaseException, summary: str) -> bytes:
    """The outcome for ``exc``, its traceback without this module's own frames on top."""
    tb = exc.__traceback__
    while tb is not None and tb.tb_next is not None and tb.tb_frame.f_code.co_filename == __file__:
        tb = tb.tb_next
    text = "".join(traceback.format_exception(type(exc), exc, tb))
    return pickle.dumps(("error", text, summary))


def main(argv: Sequence[str] | None = None) -> int:
    """Run the payload of ``argv[0]`` (the work directory) as this rank; return the exit status."""
    words = sys.argv[1:] if argv is None else argv
    if len(words) != 1:
        print(
            f"usage: python -m {__spec__.name if __spec__ else __name__} WORKDIR", file=sys.stderr
        )
        return 2
    workdir = words[0]
    rank = int(os.environ[ENV_RANK])
    die_with_parent(int(os.environ[ENV_LAUNCHER_PID]))
    try:
        with open(os.path.join(workdir, PAYLOAD_FILE), "rb") as f:
            sys.path[:] = pickle.load(f)
            fn, args = pickle.load(f)
        value = fn(*args)
    except BaseException as exc:  # the caller gets every failure, SystemExit included
        note_failure()  # exit at once: do not wait for the other ranks at exit
        _write_atomically(result_file(workdir, rank), _error(exc, f"{type(exc).__name__}: {exc}"))
        return 1
    try:
        outcome = dumps(("ok", value))
    except Exception as exc:
        summary = f"an unpicklable return value ({type(value).__name__}): {exc}"
        note_failure()
        _write_atomically(result_file(workdir, rank), _error(exc, summary))
        return 1
    _write_atomically(result_file(workdir, rank), outcome)
    return 0


if __name__ == "__main__":
    sys.exit(main())
