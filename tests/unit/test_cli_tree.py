from treecast.cli import main


def test_tree_draws_the_requested_shape(capsys):
    assert main(["tree", "-n", "6", "--root", "2", "--shape", "knomial", "-k", "3"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0] == "knomial tree, 6 ranks, root 2, depth 2:"
    assert out[1] == "2"
    assert sorted(int(line.split()[-1]) for line in out[1:]) == list(range(6))


def test_two_tree_prints_both_trees(capsys):
    assert main(["tree", "-n", "5", "--shape", "two-tree"]) == 0
    assert capsys.readouterr().out.count("(tree ") == 2


def test_tree_rejects_a_bad_root(capsys):
    assert main(["tree", "-n", "4", "--root", "9"]) == 2
    assert "root must be in [0, 3], got 9" in capsys.readouterr().err


def test_algorithms_lists_every_collective_with_restrictions(capsys):
    from treecast.algorithms.registry import ALGORITHMS

    assert main(["algorithms"]) == 0
    out = capsys.readouterr().out
    for collective, algos in ALGORITHMS.items():
        assert f"{collective} (TREECAST_{collective.upper()}_ALGORITHM" in out
        for name in algos:
            assert f"  {name} " in out
    assert "restriction: commutative operators" in out


def test_algorithms_shows_the_default_choice(capsys):
    assert main(["algorithms", "allreduce", "-n", "4", "--bytes", "8"]) == 0
    out = capsys.readouterr().out
    assert "default for n=4, 8 B: recursive_doubling" in out
    assert "bcast (" not in out


def test_algorithms_rejects_an_unknown_collective(capsys):
    assert main(["algorithms", "allscatter"]) == 2
    assert "unknown collective 'allscatter'" in capsys.readouterr().err


def test_algorithms_shows_the_choice_on_several_nodes(capsys):
    assert main(["algorithms", "bcast", "-n", "8", "--nodes", "2"]) == 0
    out = capsys.readouterr().out
    assert "default for n=8 on 2 nodes, 1024 B: two_level" in out
    assert "restriction: communicators that span several nodes" in out
    assert main(["algorithms", "bcast", "--nodes", "0"]) == 2
    assert "--nodes must be >= 1, got 0" in capsys.readouterr().err
