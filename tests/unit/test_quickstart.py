"""The README's quickstart: CI runs exactly its commands, and its install brings what the
README's other commands need."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def _quickstart() -> list[str]:
    readme = (ROOT / "README.md").read_text()
    section = readme.split("## Quickstart", 1)[1].split("\n## ", 1)[0]
    block = re.search(r"```bash\n(.*?)```", section, re.DOTALL)
    assert block is not None, "the quickstart has no bash block"
    return [line for line in block.group(1).splitlines() if line.strip()]


def test_ci_runs_exactly_the_quickstart_commands():
    ci = (ROOT / ".ci" / "run").read_text().splitlines()
    commands = [line for line in ci if line.strip() and not line.startswith(("#", "set ", "cd "))]
    assert commands == _quickstart()


def test_the_quickstart_install_brings_what_the_readme_commands_use():
    tomllib = pytest.importorskip("tomllib")
    install = _quickstart()[0]
    found = re.search(r"pip install -e '\.\[([\w,]+)\]'", install)
    assert found is not None, install
    extras = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"][
        "optional-dependencies"
    ]
    brought = {
        re.split(r"[<>=!\[ ;]", requirement, maxsplit=1)[0].lower()
        for extra in found.group(1).split(",")
        for requirement in extras[extra]
    }
    readme = (ROOT / "README.md").read_text()
    assert "--compare mpi4py --plot" in readme  # treecast bench's line
    # --plot draws with matplotlib; --compare mpi4py runs MPICH's mpiexec; the tests run
    # under pytest with its timeout plugin; the progress bar uses rich
    assert {"matplotlib", "mpi4py", "mpich", "pytest", "pytest-timeout", "rich"} <= brought
