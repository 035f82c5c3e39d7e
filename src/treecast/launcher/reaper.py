"""Unlink a job's shared memory when its launcher dies without doing so (SIGKILL, the OOM
killer, a restarted notebook kernel, a CI runner killing the process group).

The launcher starts this script before it creates any segment, as
``python -I -S reaper.py DIR STEM``, in a session of its own (a signal to the launcher's
process group does not reach it), with a pipe as its standard input whose write end only the
launcher holds. The launcher writes each rank's pid to the pipe, one per line, as it starts
the rank. The pipe reads end-of-file when the launcher exits, however it exits. Then, until
every listed rank has stopped running (the kernel SIGKILLs them when their launcher dies; at
most :data:`LINGER` seconds), this script unlinks every ``DIR/STEM*`` entry, and once more
after the last rank is gone, so that a segment a rank created in its last instant goes too.
The launcher also writes ``-PID`` once it has reaped a rank (so that a reused pid does not
hold the script up) and, after a normal end, ``done``: it has already unlinked everything
and waited for its ranks, and the script sweeps once, finds nothing and exits.

Standard library only, and no import of treecast (which would load NumPy), so that it starts
in a few milliseconds and needs nothing from the job's environment.
"""

from __future__ import annotations

import os
import sys
import time

LINGER = 30.0
"""Longest wait for the ranks to go after the launcher died (a pid may have been reused)."""
POLL = 0.05
"""Seconds between two sweeps while ranks still run."""


def sweep(directory: str, stem: str) -> list[str]:
    """Unlink every entry of ``directory`` whose name starts with ``stem``; return their
    names."""
    try:
        entries = os.listdir(directory)
    except OSError:
        return []
    removed = []
    for entry in entries:
        if entry.startswith(stem):
            try:
                os.unlink(os.path.join(directory, entry))
            except OSError:  # gone meanwhile, or not ours to remove
                continue
            removed.append(entry)
    return removed


def running(pid: int) -> bool:
    """Whether process ``pid`` exists and is not a zombie."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's: not one of our ranks (a reused pid)
        return False
    try:
        with open(f"/proc/{pid}/stat", "rb") as fh:
            state = fh.read().rpartition(b")")[2].split()[0]
    except (OSError, IndexError):
        return True
    return state not in (b"Z", b"X")


def read_pids(fd: int) -> tuple[list[int], bool]:
    """Read lines from ``fd`` until end-of-file: ``PID`` (a rank started), ``-PID`` (it has
    been reaped), ``done`` (the launcher cleaned up). Return the pids still to wait for and
    whether ``done`` came."""
    data = b""
    while chunk := os.read(fd, 4096):
        data += chunk
    pids: dict[int, None] = {}
    done = False
    for word in data.split():
        if word.isdigit():
            pids[int(word)] = None
        elif word.startswith(b"-") and word[1:].isdigit():
            pids.pop(int(word[1:]), None)
        elif word == b"done":
            done = True
    return list(pids), done


def main(argv: list[str]) -> int:
    """``reaper.py DIR STEM``: see the module docstring."""
    if len(argv) != 2 or not argv[1]:
        print("usage: reaper.py DIR STEM", file=sys.stderr)
        return 2
    directory, stem = argv
    pids, done = read_pids(0)
    if done:  # a normal end: the launcher has waited for its ranks and unlinked
        sweep(directory, stem)
        return 0
    deadline = time.monotonic() + LINGER
    while True:
        live = [pid for pid in pids if running(pid)]
        sweep(directory, stem)
        if not live or time.monotonic() > deadline:
            return 0
        time.sleep(POLL)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
