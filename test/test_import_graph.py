"""The package's import graph is a clean stack: no import runs from a foundation
folder up to one that builds on it, and no modules import each other in a circle.

Read from the source (every ``import`` / ``from ... import`` of ``espnet2_use``,
also those inside functions), so nothing is imported to check it.
"""
import ast
from pathlib import Path
from typing import Dict, List, Set

PACKAGE = Path(__file__).resolve().parents[1] / "espnet2_use"

# Each folder (or top-level module) of espnet2_use/ and its floor: a module may import
# its own folder and folders on lower floors only. A new folder needs its floor here.
FLOORS: Dict[str, int] = {
    "version": 0,
    "utils": 0,  # small shared utilities: audio I/O, atomic file writing
    "data": 1,  # the data layout table, Kaldi-dir reader/writer, validator, corpus synthesis
    "layers": 2,
    "attractor": 2,
    "loss": 2,
    "cue": 2,
    "counting": 2,  # the comparison's count peer: a log-mel CNN counter, its trainer, inference
    "separator": 3,
    "extractor": 4,
    # USE's network and its inference (network, inference, batch plumbing)...
    "model": 4,
    # ... and the trainable ESPnet model built on them (forward -> losses).
    "espnet_model": 5,
    "train": 6,
    # USEModel from a config, for the training task and for inference alike: below
    # both, so that inference builds a model without ESPnet's task modules.
    "model_builder": 6,
    "tasks": 7,
    "inference": 8,
    "scoring": 8,
    "espnet_hooks": 9,
    "registry": 10,
    "": 11,  # espnet2_use/__init__.py
    "bin": 12,
}
# Known exceptions, each with its reason.
ALLOWED: set = set()


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts = parts[:-1]
    return ".".join(parts)


def _folder(module: str) -> str:
    """``espnet2_use.cue.cue_network`` -> ``cue``; the package itself -> ``""``."""
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else ""


def _graph() -> Dict[str, Set[str]]:
    """module -> the espnet2_use modules it imports."""
    files = {_module_name(p): p for p in PACKAGE.rglob("*.py")}
    graph: Dict[str, Set[str]] = {m: set() for m in files}
    for module, path in files.items():
        is_package = path.name == "__init__.py"
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            targets: List[str] = []
            if isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:  # relative import
                    anchor = module.split(".")[: len(module.split(".")) - node.level + is_package]
                    base = ".".join(anchor + ([base] if base else []))
                targets.append(base)
                targets += [f"{base}.{alias.name}" for alias in node.names]
            elif isinstance(node, ast.Import):
                targets += [alias.name for alias in node.names]
            graph[module] |= {t for t in targets if t in files and t != module}
    return graph


def test_every_folder_has_a_floor():
    graph = _graph()
    folders = {_folder(m) for m in graph}
    assert folders <= set(FLOORS), f"folders without a floor in FLOORS: {folders - set(FLOORS)}"


def test_no_import_runs_up_the_stack():
    graph = _graph()
    upward = []
    for module, imported in sorted(graph.items()):
        for target in sorted(imported):
            src, dst = _folder(module), _folder(target)
            if src != dst and FLOORS[dst] >= FLOORS[src] and (module, target) not in ALLOWED:
                upward.append(f"{module} (floor {FLOORS[src]}) imports {target} (floor {FLOORS[dst]})")
    assert not upward, "imports up the stack:\n" + "\n".join(upward)


def test_no_import_circle():
    graph = _graph()
    # Tarjan's strongly connected components; a component of more than one module is a circle.
    index: Dict[str, int] = {}
    low: Dict[str, int] = {}
    stack: List[str] = []
    on_stack: Set[str] = set()
    circles: List[List[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in graph[v]:
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
                circles.append(sorted(component))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    assert not circles, f"import circles: {circles}"
