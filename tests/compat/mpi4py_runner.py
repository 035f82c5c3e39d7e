"""Run mpi4py test modules on one rank and write what happened as JSON.

Usage (under ``treecast run --mpi4py -n N``)::

    python mpi4py_runner.py TESTDIR OUTPREFIX MODULE [MODULE...]

Each rank imports the modules from TESTDIR (mpi4py's ``test/`` directory, with its
``mpiunittest`` helper), runs every test case with :mod:`unittest`, and writes
``OUTPREFIX.<rank>.json``: the numbers run, passed, failed, errored and skipped (distinct
test ids: a test whose subtests fail counts once), and the ids and tracebacks of the
failures. The exit status is 0 if every test passed or was skipped.

Under ``mpiexec`` (``TREECAST_MPI4PY_UNDER_MPI=1``) treecast's world starts on the real
mpi4py first, then ``mpi4py.MPI`` is :mod:`treecast.MPI` for the tests.

``TREECAST_MPI4PY_BACKENDS=ArrayArray,ArrayNumPy`` keeps only those array backends of
mpi4py's ``arrayimpl`` helper (its other backends are DLPack and GPU arrays, which treecast
does not take as buffers); unset, every backend runs, as in mpi4py's own CI.
"""

from __future__ import annotations

import io
import json
import os
import sys
import unittest
from typing import Any


def _treecast_as_mpi4py() -> None:
    """Under ``mpiexec``: start treecast's world on the real mpi4py, then make
    ``from mpi4py import MPI`` give :mod:`treecast.MPI` to the tests."""
    import mpi4py

    import treecast
    from treecast import MPI as treecast_mpi

    treecast.world()
    mpi4py.MPI = treecast_mpi  # type: ignore[attr-defined]
    sys.modules["mpi4py.MPI"] = treecast_mpi


def main(argv: list[str]) -> int:
    testdir, prefix, *modules = argv
    sys.path.insert(0, testdir)
    if os.environ.get("TREECAST_MPI4PY_UNDER_MPI"):
        _treecast_as_mpi4py()
    from mpi4py import MPI

    rank = MPI.COMM_WORLD.Get_rank()
    backends = os.environ.get("TREECAST_MPI4PY_BACKENDS")
    if backends:
        import arrayimpl

        keep = set(backends.split(","))
        arrayimpl.ArrayBackends[:] = [b for b in arrayimpl.ArrayBackends if b.__name__ in keep]
    loader = unittest.TestLoader()
    suite = unittest.TestSuite()
    for name in modules:
        suite.addTests(loader.loadTestsFromName(name))
    stream = io.StringIO()
    runner = unittest.TextTestRunner(stream=stream, verbosity=2, resultclass=_CountingResult)
    result = runner.run(suite)
    bad = [(str(t), tb) for t, tb in (*result.failures, *result.errors)]
    per_module = {name: _counts(result, name) for name in modules}
    report = {
        "rank": rank,
        **_counts(result, None),
        "modules": per_module,
        "problems": bad,
        "log": stream.getvalue()[-20000:],
    }
    with open(f"{prefix}.{rank}.json", "w", encoding="utf-8") as f:
        json.dump(report, f)
    return 0 if result.wasSuccessful() else 1


def _test_id(test: Any) -> str:
    """The id of a test, or of the test a failed subtest belongs to."""
    return str(getattr(test, "test_case", test).id())


def _counts(result: unittest.TestResult, module: str | None) -> dict[str, int]:
    """Distinct tests run, passed, failed, errored and skipped (of ``module`` only, if
    given); a test whose subtests fail counts once."""

    def ids(pairs: Any) -> set[str]:
        out = {_test_id(t) for t, _ in pairs}
        return {i for i in out if module is None or i.split(".")[0] == module}

    failed = ids(result.failures)
    errors = ids(result.errors) - failed
    skipped = ids(result.skipped) - failed - errors
    run = result.testsRun if module is None else _RUN.get(module, 0)
    return {
        "run": run,
        "failed": len(failed),
        "errors": len(errors),
        "skipped": len(skipped),
        "passed": run - len(failed) - len(errors) - len(skipped),
    }


_RUN: dict[str, int] = {}
"""Tests started per module (filled by the counting result class)."""


class _CountingResult(unittest.TextTestResult):
    def startTest(self, test: unittest.TestCase) -> None:
        module = test.id().split(".")[0]
        _RUN[module] = _RUN.get(module, 0) + 1
        super().startTest(test)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
