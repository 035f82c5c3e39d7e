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
