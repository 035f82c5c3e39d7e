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

Under an MPI launcher each node's leader rank starts it for its node (:func:`start`) and
writes ``last`` first: the leader may end before the node's other ranks, which still use
the node's segments, so at end-of-file the script waits for every listed rank to stop, then
sweeps once.

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


def read_pids(fd: int) -> tuple[list[int], set[bytes]]:
    """Read lines from ``fd`` until end-of-file: ``PID`` (a rank started), ``-PID`` (it has
    been reaped), ``done`` (the launcher cleaned up), ``last`` (sweep only once every rank
    has stopped). Return the pids still to wait for and the words that came."""
    data = b""
    while chunk := os.read(fd, 4096):
        data += chunk
    pids: dict[int, None] = {}
    words: set[bytes] = set()
    for word in data.split():
        if word.isdigit():
            pids[int(word)] = None
        elif word.startswith(b"-") and word[1:].isdigit():
            pids.pop(int(word[1:]), None)
        elif word in (b"done", b"last"):
            words.add(word)
    return list(pids), words


def main(argv: list[str]) -> int:
    """``reaper.py DIR STEM``: see the module docstring."""
    if len(argv) != 2 or not argv[1]:
        print("usage: reaper.py DIR STEM", file=sys.stderr)
        return 2
    directory, stem = argv
    pids, words = read_pids(0)
    if b"done" in words:  # a normal end: the launcher has waited for its ranks and unlinked
        sweep(directory, stem)
        return 0
    if b"last" in words:
        while any(running(pid) for pid in pids):
            time.sleep(POLL)
        sweep(directory, stem)
        return 0
    deadline = time.monotonic() + LINGER
    while True:
        live = [pid for pid in pids if running(pid)]
        sweep(directory, stem)
        if not live or time.monotonic() > deadline:
            return 0
        time.sleep(POLL)


def start(directory: str, stem: str, pids: list[int]) -> None:
    """Start this script in ``last`` mode for ``pids`` (see the module docstring): it sweeps
    ``directory/stem*`` once this process has exited and every pid has stopped. The pipe's
    write end stays open, unused, until this process exits; nothing happens if the script
    cannot start (only a crash would then leave segments behind).
    """
    import subprocess

    if not sys.executable:
        return
    try:
        proc = subprocess.Popen(
            [sys.executable, "-I", "-S", __file__, directory, stem],
            stdin=subprocess.PIPE,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            bufsize=0,
            start_new_session=True,
            pass_fds=(),
        )
        assert proc.stdin is not None
        proc.stdin.write(("last\n" + "".join(f"{pid}\n" for pid in pids)).encode())
    except OSError:
        return
    _started.append(proc)  # the pipe's write end must outlive this call


_started: list[object] = []


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
