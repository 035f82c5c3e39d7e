"""Forward the ranks' output to the launcher's own streams, one whole line at a time.

Each rank's stdout and stderr arrive through a pipe in chunks of any size. A
:class:`LineForwarder` per (rank, stream) keeps the last incomplete line and hands only
complete lines to a :class:`Sink`, so that a line on the terminal never mixes two ranks.
The sink decides where lines go: :class:`FdSink` writes bytes to fd 1 and fd 2 (``treecast
run``); :class:`TextSink` writes text to whatever ``sys.stdout``/``sys.stderr`` are at the
time (``treecast.launch`` in a notebook, or under pytest's capture).
"""

from __future__ import annotations

import os
import select
import sys
from typing import Protocol

STDOUT = 1
"""Stream id of standard output (the fd number)."""
STDERR = 2
"""Stream id of standard error (the fd number)."""

MAX_LINE_BYTES = 1 << 20
"""A line longer than this is forwarded in pieces rather than held in memory without bound."""


class Sink(Protocol):
    """Where the launcher writes complete lines: ``write(stream, data)``, stream STDOUT/STDERR."""

    def write(self, stream: int, data: bytes) -> None:
        """Write ``data`` (one or more complete lines) to ``stream``."""


class FdSink:
    """Writes bytes straight to file descriptors 1 and 2, bypassing Python's buffers.

    If a reader goes away (``treecast run ... | head``) the stream's further output is
    dropped; the job itself goes on, and the exit status still reports the ranks.
    """

    def __init__(self) -> None:
        self._closed: set[int] = set()

    def write(self, stream: int, data: bytes) -> None:
        """Write all of ``data`` to fd ``stream``."""
        if stream in self._closed:
            return
        view = memoryview(data)
        while view:
            try:
                view = view[os.write(stream, view) :]
            except BlockingIOError:  # someone made our stdout non-blocking; wait for room
                select.select([], [stream], [])
            except OSError:
                self._closed.add(stream)
                return


class TextSink:
    """Writes decoded text to the current ``sys.stdout``/``sys.stderr`` and flushes.

    The streams are looked up on every write, so replacements made after the job started
    (Jupyter's kernel streams, pytest's capsys) receive the output.
    """

    def write(self, stream: int, data: bytes) -> None:
        """Decode ``data`` as UTF-8 (bad bytes replaced) and write it to ``stream``."""
        target = sys.stdout if stream == STDOUT else sys.stderr
        if target is None:  # pythonw, or a closed stream
            return
        target.write(data.decode("utf-8", errors="replace"))
        target.flush()


class LineForwarder:
    """Assembles the chunks of one rank's stream into lines and forwards whole lines.

    Args:
        sink: where complete lines go.
        stream: STDOUT or STDERR.
        prefix: bytes put in front of every line (``b"[3] "`` with ``--tag-output``), or b"".
    """

    def __init__(self, sink: Sink, stream: int, prefix: bytes = b"") -> None:
        self._sink = sink
        self._stream = stream
        self._prefix = prefix
        self._pending = bytearray()

    def feed(self, chunk: bytes) -> None:
        """Add ``chunk``; forward every line it completes."""
        self._pending += chunk
        end = self._pending.rfind(b"\n") + 1
        if end == 0 and len(self._pending) > MAX_LINE_BYTES:
            end = len(self._pending)
        if end:
            self._emit(bytes(self._pending[:end]))
            del self._pending[:end]

    def close(self) -> None:
        """Forward the last line even if it lacks a newline; one is added so lines stay whole."""
        if self._pending:
            self._emit(bytes(self._pending) + b"\n")
            self._pending.clear()

    def _emit(self, lines: bytes) -> None:
        if self._prefix:
            parts = lines.split(b"\n")
            tail = parts.pop()  # empty unless a forced flush of an over-long line
            lines = b"".join(self._prefix + p + b"\n" for p in parts)
            if tail:
                lines += self._prefix + tail
        self._sink.write(self._stream, lines)
