"""``treecast run``: program forms, stdin, output forwarding and --tag-output."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
from launcher_helpers import RunTreecast, Script

pytestmark = pytest.mark.timeout(60)

PRINT_ARGV = "import os, sys; print(os.environ['TREECAST_RANK'], sys.argv[1:])"


def test_script_form(run_treecast: RunTreecast, script: Script) -> None:
    prog = script(PRINT_ARGV)
    proc = run_treecast("-n", "2", prog, "-n", "5", "--tag-output")
    assert proc.returncode == 0, proc.stderr
    assert sorted(proc.stdout.splitlines()) == [
        "0 ['-n', '5', '--tag-output']",
        "1 ['-n', '5', '--tag-output']",
    ]


@pytest.mark.parametrize("python", ["python", "python3", sys.executable])
def test_python_script_form(run_treecast: RunTreecast, script: Script, python: str) -> None:
    prog = script("import sys; print(sys.executable, sys.argv[1:])")
    proc = run_treecast("-n", "2", python, prog, "a", "-b")
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.splitlines() == [f"{sys.executable} ['a', '-b']"] * 2


def test_module_form(run_treecast: RunTreecast, tmp_path: Path) -> None:
    (tmp_path / "treecast_test_mod.py").write_text(PRINT_ARGV)
    proc = run_treecast("-n", "2", "-m", "treecast_test_mod", "-x", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert sorted(proc.stdout.splitlines()) == ["0 ['-x']", "1 ['-x']"]


def test_python_module_form(run_treecast: RunTreecast, tmp_path: Path) -> None:
    (tmp_path / "treecast_test_mod.py").write_text(PRINT_ARGV)
    proc = run_treecast("-n", "2", "python", "-m", "treecast_test_mod", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert sorted(proc.stdout.splitlines()) == ["0 []", "1 []"]


@pytest.mark.parametrize("prefix", [(), ("python",), ("python3",)])
def test_code_form(run_treecast: RunTreecast, prefix: tuple[str, ...]) -> None:
    proc = run_treecast("-n", "2", *prefix, "-c", "print(1)")
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout == "1\n1\n"


def test_executable_form(run_treecast: RunTreecast) -> None:
    proc = run_treecast("-n", "2", "sh", "-c", 'echo "rank=$TREECAST_RANK of $TREECAST_SIZE"')
    assert proc.returncode == 0, proc.stderr
    assert sorted(proc.stdout.splitlines()) == ["rank=0 of 2", "rank=1 of 2"]


def test_environment_contract(run_treecast: RunTreecast) -> None:
    code = (
        "import os\n"
        "e = os.environ\n"
        "print(e['TREECAST_RANK'], e['TREECAST_SIZE'], e['TREECAST_JOB'], e['TREECAST_SHM'],"
        " e['TREECAST_LAUNCHER_PID'] == str(os.getppid()), e['PYTHONUNBUFFERED'],"
        " os.path.exists('/dev/shm' + e['TREECAST_SHM']))\n"
    )
    proc = run_treecast("-n", "2", "-c", code)
    assert proc.returncode == 0, proc.stderr
    rows = sorted(line.split() for line in proc.stdout.splitlines())
    assert [r[0] for r in rows] == ["0", "1"]
    job = rows[0][2]
    assert all(r[1:] == ["2", job, f"/treecast-{job}-world", "True", "1", "True"] for r in rows)


def test_stdin_goes_to_rank_0_only(run_treecast: RunTreecast) -> None:
    code = "import os, sys; print(os.environ['TREECAST_RANK'], repr(sys.stdin.read()))"
    proc = run_treecast("-n", "3", "--tag-output", "-c", code, input="hello\nworld\n")
    assert proc.returncode == 0, proc.stderr
    assert sorted(proc.stdout.splitlines()) == [
        "[0] 0 'hello\\nworld\\n'",
        "[1] 1 ''",
        "[2] 2 ''",
    ]


def test_tag_output_on_both_streams(run_treecast: RunTreecast) -> None:
    code = (
        "import os, sys\n"
        "r = os.environ['TREECAST_RANK']\n"
        "print('out', r)\n"
        "print('err', r, file=sys.stderr)\n"
    )
    proc = run_treecast("-n", "2", "--tag-output", "-c", code)
    assert proc.returncode == 0, proc.stderr
    assert sorted(proc.stdout.splitlines()) == ["[0] out 0", "[1] out 1"]
    assert sorted(proc.stderr.splitlines()) == ["[0] err 0", "[1] err 1"]


def test_last_line_without_newline_is_flushed(run_treecast: RunTreecast) -> None:
    code = "import os, sys; sys.stdout.write('partial ' + os.environ['TREECAST_RANK'])"
    proc = run_treecast("-n", "2", "-c", code)
    assert proc.returncode == 0, proc.stderr
    assert sorted(proc.stdout.splitlines()) == ["partial 0", "partial 1"]


def test_lines_of_different_ranks_never_mix(run_treecast: RunTreecast, script: Script) -> None:
    prog = script(
        "import os, sys\n"
        "line = 'R' + os.environ['TREECAST_RANK'] + ':' + 'x' * 500\n"
        "for _ in range(2000):\n"
        "    for i in range(0, len(line), 37):\n"
        "        sys.stdout.write(line[i:i + 37])\n"
        "        sys.stdout.flush()\n"
        "    sys.stdout.write('\\n')\n"
        "    sys.stdout.flush()\n"
    )
    proc = run_treecast("-n", "4", prog)
    assert proc.returncode == 0, proc.stderr
    expected = {f"R{r}:" + "x" * 500 for r in range(4)}
    lines = proc.stdout.split("\n")
    assert lines.pop() == ""
    bad = [line[:60] for line in lines if line not in expected]
    assert not bad, f"{len(bad)} mixed or broken lines, e.g. {bad[:3]}"
    for r in range(4):
        assert lines.count(f"R{r}:" + "x" * 500) == 2000
