"""Run mpi4py test modules on one rank and write what happened as JSON.

Usage (under ``treecast run --mpi4py -n N``)::

    python mpi4py_runner.py TESTDIR OUTPREFIX MODULE [MODULE...]

Each rank imports the modules from TESTDIR (mpi4py's ``test/`` directory, with its
``mpiunittest`` helper), runs every test case with :mod:`unittest`, and writes
``OUTPREFIX.<rank>.json``: the numbers run, passed, failed, errored and skipped, and the ids
and tracebacks of the failures. The exit status is 0 if every test passed or was skipped.
"""

from __future__ import annotations

import io
import json
import sys
import unittest


def main(argv: list[str]) -> int:
    testdir, prefix, *modules = argv
    sys.path.insert(0, testdir)
    from mpi4py import MPI

    rank = MPI.COMM_WORLD.Get_rank()
    loader = unittest.TestLoader()
    suite = unittest.TestSuite()
    for name in modules:
        suite.addTests(loader.loadTestsFromName(name))
    stream = io.StringIO()
    result = unittest.TextTestRunner(stream=stream, verbosity=2).run(suite)
    bad = [(str(t), tb) for t, tb in (*result.failures, *result.errors)]
    report = {
        "rank": rank,
        "run": result.testsRun,
        "failed": len(result.failures),
        "errors": len(result.errors),
        "skipped": len(result.skipped),
        "passed": result.testsRun - len(result.failures) - len(result.errors) - len(result.skipped),
        "problems": bad,
        "log": stream.getvalue()[-20000:],
    }
    with open(f"{prefix}.{rank}.json", "w", encoding="utf-8") as f:
        json.dump(report, f)
    return 0 if result.wasSuccessful() else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
