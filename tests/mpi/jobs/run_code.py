"""``run_code.py CODE``: run CODE; an exception is reported as one line on stderr,
``[rank R] Type: message`` (R from the launcher's PMI_RANK: the world may not exist), written
in one piece so that the lines of several ranks do not interleave, and exit status 1."""

import os
import sys

try:
    exec(compile(sys.argv[1], "<job>", "exec"))
except Exception as exc:
    rank = os.environ.get("PMI_RANK", "?")
    sys.stderr.write(f"[rank {rank}] {type(exc).__name__}: {exc}\n")
    sys.stderr.flush()
    os._exit(1)
