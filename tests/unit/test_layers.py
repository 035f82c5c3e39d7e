"""Imports point down the layers, and the package's import graph has no cycles.

Every module of ``src/treecast`` is parsed with :mod:`ast`; every ``import`` counts, also one
inside a function. The layers, low to high (a module may import its own layer and below):

0. errors, constants, mpi4py's name lists, info objects, error handlers, environment names,
   units (sizes), the merging of trace files (tracing/, tracing/merge, tracing/job), the
   events a traced rank records (tracing/events: the hot paths of every layer append them)
1. message/ (frames, buffer specs), status, ops
2. transports/
3. topology/ (pure shapes), algorithms/, selection/, engine/ (with the node-level sharing
   of segments), plans (pure planning of collective calls), routes (what a call would run), request, launcher/ (the supervisor: transports' segments, never a comm)
4. communicators: group, matched, comm, p2p, collectives, topocomm, runtime/world, aio (the
   asyncio view that ``Comm.aio`` returns), and the recording of a trace (tracing/recorder,
   tracing/hooks: they wrap the calls that do not record themselves)
5. features over communicators: shared, futures, launch, testing, the launch worker
6. the package face (``treecast/__init__.py``) and the MPI facade (MPI.py, _mpi4py_shim/)
7. cli, bench/, tree_pictures, compat, __main__, tracing/command

Imports under ``if TYPE_CHECKING:`` count too: a module that needs a higher one's type
declares a Protocol of what it uses instead (``engine/node.py``, ``matched.py``).
"""

from __future__ import annotations

import ast
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[2] / "src"

LAYERS: dict[str, int] = {
    "treecast.errors": 0,
    "treecast.constants": 0,
    "treecast._mpi4py_names": 0,
    "treecast.info": 0,
    "treecast.errhandler": 0,
    "treecast.runtime": 0,
    "treecast.runtime.env": 0,
    "treecast.tracing": 0,
    "treecast.tracing.merge": 0,
    "treecast.tracing.job": 0,
    "treecast.tracing.events": 0,
    "treecast.units": 0,
    "treecast.message.*": 1,
    "treecast.status": 1,
    "treecast.ops": 1,
    "treecast.transports.*": 2,
    "treecast.topology.*": 3,
    "treecast.algorithms.*": 3,
    "treecast.selection.*": 3,
    "treecast.engine.*": 3,
    "treecast.plans": 3,
    "treecast.routes": 3,
    "treecast.model.*": 3,
    "treecast.request": 3,
    "treecast.launcher.*": 3,
    "treecast.group": 4,
    "treecast.aio": 4,
    "treecast.matched": 4,
    "treecast.comm": 4,
    "treecast.p2p": 4,
    "treecast.collectives": 4,
    "treecast.topocomm": 4,
    "treecast.runtime.world": 4,
    "treecast.tracing.recorder": 4,
    "treecast.tracing.hooks": 4,
    "treecast.shared": 5,
    "treecast.futures": 5,
    "treecast.launch": 5,
    "treecast.testing": 5,
    "treecast._launch_worker": 5,
    "treecast": 6,
    "treecast.MPI": 6,
    "treecast._mpi4py_shim.*": 6,
    "treecast.cli": 7,
    "treecast.tracing.command": 7,
    "treecast.tree_pictures": 7,
    "treecast.bench.*": 7,
    "treecast.compat": 7,
    "treecast.__main__": 7,
}
"""Module -> layer; ``pkg.*`` places the package ``pkg`` and every module under it."""


@dataclass(frozen=True)
class Import:
    """One import of a package module by another."""

    importer: str
    imported: str
    path: Path
    line: int
    type_only: bool


def module_names(src: Path, package: str) -> dict[str, Path]:
    """Every module of ``src/<package>``, by dotted name (a package by its own name)."""
    names = {}
    for path in sorted((src / package).rglob("*.py")):
        parts = list(path.relative_to(src).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts.pop()
        names[".".join(parts)] = path
    return names


def _type_checking_nodes(tree: ast.AST) -> set[int]:
    """ids of the nodes under ``if TYPE_CHECKING:`` (or ``typing.TYPE_CHECKING``)."""
    inside: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.If):
            test = node.test
            name = test.attr if isinstance(test, ast.Attribute) else getattr(test, "id", None)
            if name == "TYPE_CHECKING":
                for stmt in node.body:
                    inside.update(id(n) for n in ast.walk(stmt))
    return inside


def _resolve(name: str, modules: Mapping[str, Path]) -> str:
    """The listed module that ``name`` (a module, or a name inside one) belongs to."""
    while name not in modules and "." in name:
        name = name.rsplit(".", 1)[0]
    return name


def imports(src: Path, package: str) -> Iterator[Import]:
    """Every import of a module of ``package`` by one of its modules (relative imports
    resolved; ``from . import x`` counts as importing ``x`` when it is a module)."""
    modules = module_names(src, package)
    for importer, path in modules.items():
        tree = ast.parse(path.read_text(), str(path))
        type_only = _type_checking_nodes(tree)
        here = importer.split(".") if path.name == "__init__.py" else importer.split(".")[:-1]
        for node in ast.walk(tree):
            targets: list[str] = []
            if isinstance(node, ast.Import):
                targets = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom):
                if node.level:
                    base = ".".join(here[: len(here) - node.level + 1])
                    base = f"{base}.{node.module}" if node.module else base
                else:
                    base = node.module or ""
                targets = [f"{base}.{alias.name}" for alias in node.names]
            for target in targets:
                if target == package or target.startswith(package + "."):
                    yield Import(
                        importer,
                        _resolve(target, modules),
                        path,
                        node.lineno,
                        id(node) in type_only,
                    )


def layer_of(module: str, layers: Mapping[str, int]) -> int | None:
    """The layer of ``module``: its own entry, else that of the innermost ``pkg.*`` that
    holds it (None if neither is listed)."""
    if module in layers:
        return layers[module]
    parts = module.split(".")
    for n in range(len(parts), 0, -1):
        layer = layers.get(".".join(parts[:n]) + ".*")
        if layer is not None:
            return layer
    return None


def unplaced(src: Path, package: str, layers: Mapping[str, int]) -> list[str]:
    """The modules of ``package`` that no entry of ``layers`` places."""
    return [m for m in module_names(src, package) if layer_of(m, layers) is None]


def upward(src: Path, package: str, layers: Mapping[str, int]) -> list[str]:
    """``file:line imports X (layer a -> layer b)`` for every import that points up."""
    found = []
    for imp in imports(src, package):
        low, high = layer_of(imp.importer, layers), layer_of(imp.imported, layers)
        if low is None or high is None or high <= low:
            continue
        where = imp.path.relative_to(src)
        found.append(f"{where}:{imp.line} imports {imp.imported} (layer {low} -> layer {high})")
    return found


def cycles(src: Path, package: str) -> list[list[str]]:
    """The strongly connected components of more than one module of the import graph
    (imports under ``TYPE_CHECKING`` too), each sorted (Tarjan's algorithm)."""
    graph: dict[str, set[str]] = {m: set() for m in module_names(src, package)}
    for imp in imports(src, package):
        if imp.imported != imp.importer:
            graph[imp.importer].add(imp.imported)
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in sorted(graph[v]):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return found


# ---- the package ---------------------------------------------------------------------------
def test_every_module_has_a_layer() -> None:
    missing = unplaced(SRC, "treecast", LAYERS)
    assert not missing, f"place these modules in LAYERS of {__file__}: {missing}"


def test_imports_point_down() -> None:
    found = upward(SRC, "treecast", LAYERS)
    assert not found, "imports that point up a layer:\n" + "\n".join(found)


def test_import_graph_has_no_cycles() -> None:
    found = cycles(SRC, "treecast")
    assert not found, "import cycles: " + "; ".join(" <-> ".join(c) for c in found)


# ---- node memory is the transports' ----------------------------------------------------------
SEGMENT_OWNERS = ("treecast.transports", "treecast.launcher")
"""Where shared-memory segments may be handled by name: the transports (node memory) and the
launcher (it removes a job's segments). Everything else asks its transport's node memory."""


def segments_by_path(src: Path, package: str, owners: tuple[str, ...]) -> list[str]:
    """``file:line what`` for every module outside ``owners`` that mentions ``/dev/shm`` or
    imports ``<package>.transports.segments`` (also under ``TYPE_CHECKING``)."""

    def outside(module: str) -> bool:
        return not any(module == o or module.startswith(o + ".") for o in owners)

    found = []
    for module, path in module_names(src, package).items():
        if outside(module):
            for line, text in enumerate(path.read_text().splitlines(), 1):
                if "/dev/shm" in text:
                    found.append(f"{path.relative_to(src)}:{line} mentions /dev/shm")
    for imp in imports(src, package):
        if imp.imported == f"{package}.transports.segments" and outside(imp.importer):
            found.append(f"{imp.path.relative_to(src)}:{imp.line} imports {imp.imported}")
    return found


def test_only_transports_and_the_launcher_handle_segments_by_path() -> None:
    found = segments_by_path(SRC, "treecast", SEGMENT_OWNERS)
    assert not found, "use the transport's node memory instead:\n" + "\n".join(found)


def test_segment_checker_finds_paths_and_imports(tmp_path: Path) -> None:
    src = _fake_package(
        tmp_path,
        {
            "transports/__init__.py": "",
            "transports/segments.py": "SHM_DIR = '/dev/shm'\n",
            "engine.py": "def f():\n    from .transports import segments\n",
            "shared.py": '"""Segments live in /dev/shm."""\n',
            "launcher.py": "from .transports.segments import SHM_DIR\n",
        },
    )
    found = segments_by_path(src, "pkg", ("pkg.transports", "pkg.launcher"))
    assert sorted(found) == [
        "pkg/engine.py:2 imports pkg.transports.segments",
        "pkg/shared.py:1 mentions /dev/shm",
    ]


# ---- the checker itself --------------------------------------------------------------------
def _fake_package(tmp_path: Path, files: dict[str, str]) -> Path:
    for name, text in {"__init__.py": "", **files}.items():
        path = tmp_path / "pkg" / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    return tmp_path


FAKE_LAYERS = {"pkg": 2, "pkg.low": 0, "pkg.sub.*": 1, "pkg.high": 2}


def test_checker_finds_an_upward_import_inside_a_function(tmp_path: Path) -> None:
    src = _fake_package(
        tmp_path,
        {
            "low.py": "def f():\n    from .sub import mid\n",
            "sub/__init__.py": "",
            "sub/mid.py": "from ..low import f\nfrom .. import low\n",
            "high.py": "import pkg.sub.mid\n",
        },
    )
    assert upward(src, "pkg", FAKE_LAYERS) == [
        "pkg/low.py:2 imports pkg.sub.mid (layer 0 -> layer 1)"
    ]
    assert cycles(src, "pkg") == [["pkg.low", "pkg.sub.mid"]]


def test_checker_counts_type_checking_imports_too(tmp_path: Path) -> None:
    """An annotation that needs a higher layer is a dependency all the same: a Protocol in
    the lower module says what it needs instead."""
    src = _fake_package(
        tmp_path,
        {
            "low.py": "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from .high import g\n",
            "high.py": "from .low import TYPE_CHECKING\n",
        },
    )
    assert upward(src, "pkg", FAKE_LAYERS) == ["pkg/low.py:3 imports pkg.high (layer 0 -> layer 2)"]
    assert cycles(src, "pkg") == [["pkg.high", "pkg.low"]]


def test_checker_names_a_module_without_a_layer(tmp_path: Path) -> None:
    src = _fake_package(tmp_path, {"low.py": "", "stray.py": ""})
    assert unplaced(src, "pkg", FAKE_LAYERS) == ["pkg.stray"]


@pytest.mark.parametrize(
    ("module", "layer"),
    [
        ("treecast", 6),
        ("treecast.runtime.world", 4),
        ("treecast.engine", 3),
        ("treecast.engine.node", 3),
        ("treecast.runtime.new", None),
    ],
)
def test_layer_of_places_packages_and_listed_modules(module: str, layer: int | None) -> None:
    assert layer_of(module, LAYERS) == layer
