"""One size parser (``treecast.units``) for every size a user gives: the command line's
options and the ``TREECAST_*`` variables that are sizes."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from treecast.cli import main
from treecast.errors import InvalidArgumentError
from treecast.units import format_size, parse_size, size_from_env


@pytest.mark.parametrize(
    ("text", "nbytes"),
    [
        ("0", 0),
        ("4096", 4096),
        ("64M", 64 << 20),
        ("1K", 1024),
        ("1k", 1024),
        ("1KB", 1024),
        ("1KiB", 1024),
        ("1MiB", 1 << 20),
        ("1 MiB", 1 << 20),
        (" 2gb ", 2 << 30),
        ("1T", 1 << 40),
        ("1.5K", 1536),
        ("0.5M", 512 << 10),
        ("7B", 7),
    ],
)
def test_parse_size_accepts_numbers_with_binary_suffixes(text, nbytes):
    assert parse_size(text) == nbytes


@pytest.mark.parametrize("text", ["", "lots", "-1", "1Q", "K", "64iB", "1e6", "1,5M", "0x10"])
def test_parse_size_names_the_bad_text_and_the_forms(text):
    with pytest.raises(InvalidArgumentError, match="expected a number of bytes") as info:
        parse_size(text)
    assert repr(text) in str(info.value)
    assert isinstance(info.value, ValueError)


def test_parse_size_refuses_a_fraction_of_a_byte():
    with pytest.raises(InvalidArgumentError, match=r"'1\.5' is not a whole number of bytes"):
        parse_size("1.5")


def test_format_size():
    assert format_size(64 << 20) == "64 MiB"
    assert format_size(1536) == "1536 B"
    assert format_size(0) == "0 B"


def test_size_from_env_reads_suffixes_and_names_a_bad_variable():
    env = {"TREECAST_X_BYTES": "3M", "TREECAST_BLANK": " ", "TREECAST_BAD": "many"}
    assert size_from_env("TREECAST_X_BYTES", 7, environ=env) == 3 << 20
    assert size_from_env("TREECAST_BLANK", 7, environ=env) == 7
    assert size_from_env("TREECAST_UNSET", 7, environ=env) == 7
    with pytest.raises(InvalidArgumentError) as info:
        size_from_env("TREECAST_BAD", 256 << 20, environ=env)
    message = str(info.value)
    assert "TREECAST_BAD='many' is not a size" in message and "64K" in message
    assert "default, 256 MiB" in message
    with pytest.raises(InvalidArgumentError, match="TREECAST_X_BYTES='3M' is below"):
        size_from_env("TREECAST_X_BYTES", 7, at_least=4 << 20, environ=env)


def test_algorithms_bytes_takes_a_suffix(capsys):
    assert main(["algorithms", "bcast", "-n", "4", "--bytes", "64M"]) == 0
    assert f"default for n=4, {64 << 20} B: shm_one_write" in capsys.readouterr().out
    assert main(["algorithms", "bcast", "-n", "4", "--bytes", "1KiB"]) == 0
    assert "default for n=4, 1024 B: binomial" in capsys.readouterr().out


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["algorithms", "--bytes", "64Q"], "argument --bytes: '64Q' is not a size; expected"),
        (["run", "-n", "2", "--ring-bytes", "lots", "-c", "pass"], "argument --ring-bytes: 'lots'"),
        (
            ["run", "-n", "2", "--ring-bytes", "1K", "-c", "pass"],
            "argument --ring-bytes: expected a size of at least 4096 bytes, got '1K'",
        ),
        (["bench", "--sizes", "1K:lots"], "argument --sizes: 'lots' is not a size"),
    ],
)
def test_a_bad_size_option_is_a_usage_error_naming_it(capsys, argv, message):
    with pytest.raises(SystemExit) as info:
        main(argv)
    assert info.value.code == 2
    assert message in capsys.readouterr().err


@pytest.mark.timeout(60)
def test_run_ring_bytes_takes_a_suffix():
    code = "import treecast; c = treecast.world(); print(c.allreduce(c.rank))"
    proc = subprocess.run(
        [sys.executable, "-m", "treecast", "run", "-n", "2", "--ring-bytes", "64K", "-c", code],
        capture_output=True,
        text=True,
        timeout=50,
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.split() == ["1", "1"]


@pytest.mark.timeout(90)
@pytest.mark.parametrize(
    "variable", ["TREECAST_SHARE_POOL_BYTES", "TREECAST_FRAME_POOL_BYTES", "TREECAST_SHM_CHUNK"]
)
def test_a_size_variable_takes_a_suffix_and_a_bad_one_is_named(variable):
    def job(value: str) -> subprocess.CompletedProcess[str]:
        code = "import treecast; c = treecast.world(); print(c.allreduce(c.rank))"
        return subprocess.run(
            [sys.executable, "-m", "treecast", "run", "-n", "2", "-c", code],
            capture_output=True,
            text=True,
            env={**os.environ, variable: value},
            timeout=40,
        )

    good = job("64KiB")
    assert good.returncode == 0 and good.stdout.split() == ["1", "1"], good.stderr
    bad = job("lots")
    assert bad.returncode != 0 and not bad.stdout
    last = bad.stderr.strip().splitlines()[-1]
    assert f"environment variable {variable}='lots' is not a size; expected" in last


def test_mpi_ring_bytes_variable_is_read_with_the_same_parser(monkeypatch):
    from treecast.transports import mpi

    segment = mpi._make_node_segment(2, 0, {"TREECAST_RING_BYTES": "64 parsecs"})
    assert segment[:2] == ("", "")
    assert "TREECAST_RING_BYTES='64 parsecs' is not a size" in str(segment[2])
    segment = mpi._make_node_segment(2, 0, {"TREECAST_RING_BYTES": "1K"})
    assert "TREECAST_RING_BYTES='1K' is below the least size, 4096 bytes" in str(segment[2])
