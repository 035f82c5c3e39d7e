"""The communicator stays thin: no class over 600 lines and no function over 60 lines
(docstrings not counted: documentation is never a reason to split) outside the engine,
whose interpreter loop is one function on purpose (one frame per step on the hot path)."""

from __future__ import annotations

import ast
from pathlib import Path

SRC = Path(__file__).resolve().parents[2] / "src" / "treecast"
MAX_CLASS, MAX_FUNCTION = 600, 60
EXEMPT = ("engine/",)


def _length(node: ast.AST) -> int:
    """Lines of a def or class, less its docstring."""
    n = node.end_lineno - node.lineno + 1  # type: ignore[attr-defined]
    body = getattr(node, "body", [])
    first = body[0] if body else None
    if isinstance(first, ast.Expr) and isinstance(getattr(first.value, "value", None), str):
        n -= first.end_lineno - first.lineno + 1  # type: ignore[operator]
    return n


def too_long(src: Path) -> list[str]:
    """``file:line name (n lines)`` for every class and function over the limits."""
    found = []
    for path in sorted(src.rglob("*.py")):
        rel = path.relative_to(src).as_posix()
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.ClassDef):
                limit = MAX_CLASS
            elif isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                if rel.startswith(EXEMPT):
                    continue
                limit = MAX_FUNCTION
            else:
                continue
            n = _length(node)
            if n > limit:
                found.append(f"{rel}:{node.lineno} {node.name} ({n} lines > {limit})")
    return found


def test_no_class_or_function_over_the_limits() -> None:
    assert not too_long(SRC), "split these: " + "; ".join(too_long(SRC))


def test_the_check_finds_a_long_function(tmp_path: Path) -> None:
    body = "\n".join(f"    x{i} = {i}" for i in range(MAX_FUNCTION + 1))
    (tmp_path / "m.py").write_text(f'def f():\n    """Doc."""\n{body}\n')
    assert too_long(tmp_path) == [f"m.py:1 f ({MAX_FUNCTION + 2} lines > {MAX_FUNCTION})"]
    (tmp_path / "m.py").write_text('def f():\n    """' + "\n" * 80 + '"""\n    return 1\n')
    assert too_long(tmp_path) == []


def test_the_check_finds_a_long_class(tmp_path: Path) -> None:
    limit = MAX_CLASS
    body = "\n".join(f"    x{i} = {i}" for i in range(limit))
    (tmp_path / "c.py").write_text(f"class C:\n{body}\n")
    assert too_long(tmp_path) == [f"c.py:1 C ({limit + 1} lines > {limit})"]
