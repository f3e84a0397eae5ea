"""The package's architecture: no import circles, and no import from a higher layer.

Every module of ``detect_track`` is parsed with :mod:`ast` (nothing is imported), and each
``import``/``from ... import`` naming a ``detect_track`` module becomes an edge. Imports at
module level and imports inside functions (lazy imports, which keep start-up fast) are
told apart; imports under ``if TYPE_CHECKING:`` are type-only and never run.

Layers, bottom to top (a module may import its own layer and the layers below):

0. foundation: types, errors, configuration, finding model files, file formats, trust,
   registries, the optional ML runtimes;
1. stages: detection, tracking, measuring, morphology, the simulator, evaluation;
2. assembly: the video pipeline, its results, still images;
3. applications: training, command line, batch runs, reports.

A module not covered by :data:`LAYERS` fails :func:`test_every_module_has_a_layer`: add a
line for it there.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

PACKAGE = "detect_track"
ROOT = Path(__file__).resolve().parent.parent / PACKAGE

FOUNDATION, STAGES, ASSEMBLY, APPLICATIONS = 0, 1, 2, 3

#: Layer of each unit (a module or a subpackage with everything in it), by dotted name
#: below ``detect_track``; "" is the package's own ``__init__`` (its version).
LAYERS: dict[str, int] = {
    "": FOUNDATION,  # detect_track/__init__.py: the version, nothing else
    "types": FOUNDATION,  # Detections, VideoMeta: the data passed between stages
    "errors": FOUNDATION,  # the exception hierarchy every layer raises
    "config": FOUNDATION,  # frozen settings per stage, presets, overrides, validation
    "weights": FOUNDATION,  # finding model files by name or path, per backend
    "io": FOUNDATION,  # file formats: video frames, detections, CSV export, datasets
    "trust": FOUNDATION,  # which pickled model files may be loaded
    "registry": FOUNDATION,  # name -> factory registries of detectors and trackers
    "ml": FOUNDATION,  # optional torch / ONNX Runtime / OpenVINO, imported on demand
    "detectors": STAGES,  # frame -> head boxes (classical, YOLO, EfficientDet, tails)
    "tracking": STAGES,  # boxes per frame -> track ids (SORT, ByteTrack, trackpy)
    "measure": STAGES,  # tracks -> CASA kinematics, WHO motility, sample statistics
    "kinematics": STAGES,  # CASA kinematics (before it moved into measure/)
    "motility": STAGES,  # WHO motility classes (before it moved into measure/)
    "morphology": STAGES,  # head crops -> head-shape classes
    "synth": STAGES,  # simulated videos, smears and heads with ground truth
    "eval": STAGES,  # scoring detections and tracks against ground truth
    "pipeline": ASSEMBLY,  # video -> detections -> tracks -> measurements, one call
    "results": ASSEMBLY,  # the result tables of a run: written, read back
    "stills": ASSEMBLY,  # still images: detect, classify, count (no tracking)
    "training": APPLICATIONS,  # training, calibrating and exporting the models
    "cli": APPLICATIONS,  # the detect-track command
    "__main__": APPLICATIONS,  # python -m detect_track, where there is one
    "batch": APPLICATIONS,  # many videos: jobs, executors, combined tables
    "report": APPLICATIONS,  # HTML report and overlay videos of finished runs
}

LAYER_NAMES = ("foundation", "stages", "assembly", "applications")


@dataclass(frozen=True)
class Import:
    """One import of a ``detect_track`` module by another."""

    source: str  # the importing module
    target: str  # the imported module (or package)
    line: int  # where
    lazy: bool  # inside a function
    type_only: bool  # under ``if TYPE_CHECKING:``


def module_name(path: Path) -> str:
    """Dotted module name of a file of the package."""
    parts = list(path.relative_to(ROOT.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


MODULES: dict[str, Path] = {module_name(p): p for p in sorted(ROOT.rglob("*.py"))}


def _is_type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING")


def _targets(module: str, node: ast.Import | ast.ImportFrom) -> Iterator[str]:
    """The ``detect_track`` modules an import statement names."""
    if isinstance(node, ast.Import):
        names = [alias.name for alias in node.names]
    else:
        base = node.module or ""
        if node.level:
            package = module.split(".")
            if not MODULES[module].name == "__init__.py":
                package = package[:-1]
            package = package[:len(package) - (node.level - 1)]
            base = ".".join([*package, *([base] if base else [])])
        # "from pkg import sub" depends on the submodule, "from pkg import name" on pkg
        subs = [f"{base}.{a.name}" for a in node.names if f"{base}.{a.name}" in MODULES]
        names = subs if len(subs) == len(node.names) else [base, *subs]
    for name in names:
        if name == PACKAGE or name.startswith(PACKAGE + "."):
            yield name


def _walk(module: str, node: ast.AST, lazy: bool, type_only: bool) -> Iterator[Import]:
    for child in ast.iter_child_nodes(node):
        if isinstance(child, (ast.Import, ast.ImportFrom)):
            for target in _targets(module, child):
                if target != module:
                    yield Import(module, target, child.lineno, lazy, type_only)
        elif isinstance(child, ast.If) and _is_type_checking(child.test):
            for stmt in child.body:
                yield from _walk(module, ast.Module(body=[stmt], type_ignores=[]), lazy, True)
            for stmt in child.orelse:
                yield from _walk(module, ast.Module(body=[stmt], type_ignores=[]), lazy,
                                 type_only)
        else:
            inner = lazy or isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef,
                                               ast.Lambda))
            yield from _walk(module, child, inner, type_only)


IMPORTS: list[Import] = [imp for name, path in MODULES.items()
                         for imp in _walk(name, ast.parse(path.read_text(), str(path)),
                                          False, False)]


def unit(module: str) -> str | None:
    """The :data:`LAYERS` key covering ``module`` (the longest matching prefix), or None."""
    rel = module[len(PACKAGE) + 1:] if module != PACKAGE else ""
    parts = rel.split(".") if rel else []
    for n in range(len(parts), -1, -1):
        key = ".".join(parts[:n])
        if key in LAYERS:
            return key
    return None


def layer(module: str) -> int:
    """Layer number of a module (-1: not in :data:`LAYERS`, reported by its own test)."""
    key = unit(module)
    return -1 if key is None else LAYERS[key]


def cycles(edges: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one node (Tarjan), each sorted."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []
    counter = 0

    def visit(v: str) -> None:
        nonlocal counter
        index[v] = low[v] = counter
        counter += 1
        stack.append(v)
        on_stack.add(v)
        for w in sorted(edges.get(v, ())):
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

    for v in sorted(edges):
        if v not in index:
            visit(v)
    return found


def graph(keep: bool | None = None, by_unit: bool = False) -> dict[str, set[str]]:
    """Import edges that run (not type-only); ``keep=False``: module-level ones only."""
    edges: dict[str, set[str]] = {}
    for imp in IMPORTS:
        if imp.type_only or (keep is False and imp.lazy):
            continue
        a, b = (str(unit(imp.source)), str(unit(imp.target))) if by_unit else \
            (imp.source, imp.target)
        if a != b:
            edges.setdefault(a, set()).add(b)
    return edges


def test_the_package_is_parsed():
    assert {"detect_track.config", "detect_track.weights", "detect_track.types"} <= set(MODULES)
    assert any(imp.lazy for imp in IMPORTS) and any(not imp.lazy for imp in IMPORTS)


def test_every_module_has_a_layer():
    missing = sorted(m for m in MODULES if unit(m) is None)
    assert not missing, f"give these modules a layer in LAYERS (tests/test_architecture.py): " \
                        f"{missing}"


def test_every_import_names_an_existing_module():
    unknown = sorted({f"{i.source}:{i.line} -> {i.target}" for i in IMPORTS
                      if i.target not in MODULES})
    assert not unknown, f"imports of detect_track modules that do not exist: {unknown}"


def test_no_import_cycles_at_module_level():
    found = cycles(graph(keep=False))
    assert not found, f"module-level import circles: {found}"


def test_no_import_cycles_with_function_level_imports():
    found = cycles(graph())
    assert not found, f"import circles through function-level imports: {found}"


def test_no_import_cycles_between_units():
    """Packages and top-level modules (config, detectors, synth ...) form no circle."""
    found = cycles(graph(by_unit=True))
    assert not found, f"circles between packages/modules of LAYERS: {found}"


@pytest.mark.parametrize("lazy", [False, True], ids=["module-level", "function-level"])
def test_no_import_from_a_higher_layer(lazy: bool):
    upward = [f"{i.source}:{i.line} ({LAYER_NAMES[layer(i.source)]}) imports {i.target} "
              f"({LAYER_NAMES[layer(i.target)]})"
              for i in IMPORTS if i.lazy == lazy and layer(i.target) > layer(i.source)]
    assert not upward, "imports from a higher layer:\n" + "\n".join(upward)


def test_the_checks_catch_a_circle_and_an_upward_import():
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
    assert cycles({"a": {"b"}, "b": set()}) == []
    assert layer("detect_track.config") < layer("detect_track.detectors.yolo") \
        < layer("detect_track.pipeline") < layer("detect_track.cli")
    assert unit("detect_track.io.video") == "io" and unit(PACKAGE) == ""
