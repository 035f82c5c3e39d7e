"""The launcher's part of a traced job.

Before the ranks start, :class:`JobTrace` checks that the trace file can be written and makes
a private directory (mode 0700) for the ranks' files (``TREECAST_TRACE_DIR``); once the job
has ended, however it ended, it merges whatever the ranks wrote into the trace file, names
the ranks that left none and how they ended, and removes the directory.
"""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Mapping

from . import ENV_TRACE, ENV_TRACE_DIR
from .merge import merge_directory, output_path

UNTRACED = {ENV_TRACE: "", ENV_TRACE_DIR: ""}
"""The ranks' tracing variables in a job that is not traced: whatever the launcher's own
environment says, a rank never traces on its own."""


def requested(explicit: str | None, env: Mapping[str, str], base: Mapping[str, str]) -> str:
    """The trace file a job writes: ``explicit`` (``--trace``), else ``TREECAST_TRACE`` of
    the job's extra variables ``env``, else of the launcher's environment ``base``; ``""``
    for none."""
    if explicit is not None:
        return explicit
    return (env.get(ENV_TRACE) or base.get(ENV_TRACE) or "").strip()


class JobTrace:
    """The trace of one job (see the module docstring).

    Args:
        out: the trace file to write.

    Raises:
        ValueError: ``out`` cannot be written (its directory does not exist, ...).
    """

    def __init__(self, out: str) -> None:
        self.out = output_path(out)
        self.directory = tempfile.mkdtemp(prefix="treecast-trace-")

    def rank_env(self) -> dict[str, str]:
        """The variables that make every rank write its trace into the job's directory."""
        return {ENV_TRACE_DIR: self.directory, ENV_TRACE: ""}

    def finish(self, size: int, ended: Mapping[int, str]) -> str:
        """Merge the ranks' files into the trace file and remove them; return the launcher's
        note (what was written, and each rank that left no trace with ``ended[rank]``, how
        it ended)."""
        why = {r: _why_none(how) for r, how in ended.items()}
        try:
            return merge_directory(self.directory, self.out, size, why).summary()
        except (OSError, ValueError) as exc:
            return f"cannot write the trace file {self.out}: {exc}"
        finally:
            self.discard()

    def discard(self) -> None:
        """Remove the ranks' files (the job could not start)."""
        shutil.rmtree(self.directory, ignore_errors=True)


def _why_none(how: str) -> str:
    """Why a rank that ended ``how`` (``exited with code 0``, ``was killed by signal
    SIGKILL``) left no trace."""
    if how == "exited with code 0":
        return (
            "it exited with code 0 without writing one (a rank writes its trace at exit, "
            "once it has called treecast.world(); os._exit skips it)"
        )
    return f"it {how}"
