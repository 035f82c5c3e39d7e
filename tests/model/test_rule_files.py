"""Rule tables from files (treecast tune's output, TREECAST_RULES): every mistake is named
with the file, the collective, the rule's index and the key, before any call uses it."""

from __future__ import annotations

import json

import pytest

from treecast.cli import main
from treecast.errors import InvalidArgumentError
from treecast.selection import rules
from treecast.selection.rules import load_rules, select

BAD_TABLES = [
    ([], "expected a JSON object mapping each collective to its list of rules, got list"),
    ({"bcast": "binomial"}, "bcast: expected a list of rules"),
    ({"gossip": []}, "unknown collective 'gossip'"),
    ({"bcast": ["binomial"]}, "bcast rule 0: expected an object"),
    ({"bcast": [{"if": {"size_lt": 8}}]}, "bcast rule 0: no 'use'"),
    ({"bcast": [{"use": "binomial"}, {"use": "nosuch"}]}, "bcast rule 1: 'use': unknown bcast"),
    ({"bcast": [{"use": ["binomial"]}]}, "bcast rule 0: 'use': unknown bcast algorithm"),
    (
        {"bcast": [{"if": {"size_lt": "8"}, "use": "binomial"}]},
        "bcast rule 0: condition 'size_lt' must be an integer, got '8'",
    ),
    (
        {"bcast": [{"if": {"bytes_ge": 1.5}, "use": "binomial"}]},
        "condition 'bytes_ge' must be an integer, got 1.5",
    ),
    (
        {"bcast": [{"if": {"nodes_ge": True}, "use": "binomial"}]},
        "condition 'nodes_ge' must be an integer, got True",
    ),
    (
        {"allgather": [{"if": {"pof2": 1}, "use": "ring"}]},
        "allgather rule 0: condition 'pof2' must be true or false, got 1",
    ),
    (
        {"reduce": [{"if": {"commutative": "yes"}, "use": "binomial"}]},
        "condition 'commutative' must be true or false",
    ),
    (
        {"bcast": [{"if": {"form": "objects"}, "use": "binomial"}]},
        "condition 'form' must be \"object\" or \"buffer\", got 'objects'",
    ),
    ({"bcast": [{"if": {"form": ["object"]}, "use": "binomial"}]}, "condition 'form' must be"),
    (
        {"bcast": [{"if": {"colour": 1}, "use": "binomial"}]},
        "bcast rule 0: unknown condition 'colour'",
    ),
    ({"bcast": [{"if": [], "use": "binomial"}]}, "bcast rule 0: 'if' must be an object"),
    ({"bcast": [{"when": {}, "use": "binomial"}]}, "bcast rule 0: unknown key(s) ['when']"),
]


@pytest.mark.parametrize(("table", "message"), BAD_TABLES)
def test_a_bad_table_is_named_by_file_collective_rule_and_key(tmp_path, table, message):
    path = tmp_path / "rules.json"
    path.write_text(json.dumps(table))
    with pytest.raises(InvalidArgumentError) as info:
        load_rules(str(path))
    assert str(info.value).startswith(f"rule table {path}: ")
    assert message in str(info.value)


def test_files_that_are_not_tables_are_named(tmp_path):
    (tmp_path / "latin1.json").write_bytes(b'{"_about": "caf\xe9"}')
    (tmp_path / "text.json").write_text("bcast: binomial")
    for name, message in [
        ("none.json", "cannot read it: No such file"),
        (".", "cannot read it: Is a directory"),
        ("latin1.json", "not UTF-8 text"),
        ("text.json", "not JSON"),
    ]:
        path = tmp_path / name
        with pytest.raises(InvalidArgumentError, match=message) as info:
            load_rules(str(path))
        assert str(path) in str(info.value)


def test_a_table_with_comments_and_good_rules_loads(tmp_path):
    path = tmp_path / "rules.json"
    table = {
        "_about": "mine",
        "bcast": [
            {"if": {"size_lt": 8, "pof2": True, "form": "buffer"}, "use": "binomial", "_why": "x"},
            {"use": "linear"},
        ],
    }
    path.write_text(json.dumps(table))
    assert load_rules(str(path)) == {"bcast": table["bcast"]}


def test_a_bad_table_in_treecast_rules_is_refused_with_its_name_not_a_type_error(
    tmp_path, monkeypatch
):
    path = tmp_path / "rules.json"
    path.write_text(json.dumps({"bcast": [{"if": {"size_lt": "8"}, "use": "binomial"}]}))
    monkeypatch.setenv("TREECAST_RULES", str(path))
    rules.clear_caches()
    try:
        with pytest.raises(InvalidArgumentError, match=r"\(TREECAST_RULES\): bcast rule 0"):
            select("bcast", 4, 8)
    finally:
        monkeypatch.delenv("TREECAST_RULES")
        rules.clear_caches()


@pytest.mark.parametrize(("table", "message"), BAD_TABLES[:3] + BAD_TABLES[4:5] + BAD_TABLES[7:8])
def test_algorithms_rules_prints_what_is_wrong_not_a_traceback(capsys, tmp_path, table, message):
    path = tmp_path / "rules.json"
    path.write_text(json.dumps(table))
    assert main(["algorithms", "--rules", str(path)]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"treecast algorithms: rule table {path}: ") and message in err
    assert "Traceback" not in err
