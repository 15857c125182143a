"""Import cycles among coverforge's modules, read from the source with `ast`; what the training
loop and the sampler load.

Every import counts: module level, inside functions, and under `if TYPE_CHECKING:` (a cycle that
only type checkers follow is still two modules that each need the other to be read).
"""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import networkx as nx
import pytest

SRC = Path(__file__).resolve().parents[1] / "src"

ALLOWED_CYCLES: list[set[str]] = []  # none: a cycle found here is a module that belongs elsewhere


def _modules(root: Path) -> dict[str, tuple[Path, bool]]:
    """Dotted name -> (file, is a package) for every .py file under root/coverforge."""
    found = {}
    for path in (root / "coverforge").rglob("*.py"):
        parts = list(path.relative_to(root).with_suffix("").parts)
        is_package = parts[-1] == "__init__"
        found[".".join(parts[:-1] if is_package else parts)] = (path, is_package)
    return found


def _imported(node: ast.AST, package: str, modules: dict) -> list[str]:
    """The module names an import statement names (`from pkg import mod` names pkg.mod)."""
    if isinstance(node, ast.Import):
        return [alias.name for alias in node.names]
    if not isinstance(node, ast.ImportFrom):
        return []
    base = node.module or ""
    if node.level:  # relative: drop one package level per dot after the first
        anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
        base = ".".join(anchor + ([base] if base else []))
    return [f"{base}.{alias.name}" if f"{base}.{alias.name}" in modules else base for alias in node.names]


def import_graph(root: Path = SRC) -> nx.DiGraph:
    modules = _modules(root)
    graph = nx.DiGraph()
    graph.add_nodes_from(modules)
    for name, (path, is_package) in modules.items():
        package = name if is_package else name.rpartition(".")[0]
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), filename=str(path))):
            for target in _imported(node, package, modules):
                while target and target not in modules:  # `import a.b.fn`-style names: the module part
                    target = target.rpartition(".")[0]
                if target and target != name:
                    graph.add_edge(name, target)
    return graph


def cycles(graph: nx.DiGraph) -> list[set[str]]:
    """Groups of modules that import each other, directly or around a loop."""
    return [group for group in nx.strongly_connected_components(graph) if len(group) > 1]


def test_no_import_cycles_beyond_the_allowed_ones():
    graph = import_graph()
    unexpected = [sorted(group) for group in cycles(graph) if group not in ALLOWED_CYCLES]
    assert not unexpected, "import cycles: " + "; ".join(" <-> ".join(group) for group in unexpected)


def test_the_cache_stage_depends_only_on_data_and_text():
    """Training and `coverforge cache` share one set-up (training/inputs.py) that calls the cache,
    never the other way round (issue 22 item 3)."""
    graph = import_graph()
    allowed = ("coverforge.cache", "coverforge.data", "coverforge.text", "coverforge.config", "coverforge.errors", "coverforge.hashing")
    outside = sorted({(a, b) for a, b in graph.edges if a.startswith("coverforge.cache") and not b.startswith(allowed)})
    assert not outside, outside


def test_the_graph_sees_every_kind_of_import(tmp_path):
    """A cycle closed only by a function-level import, or only under TYPE_CHECKING, is found."""
    package = tmp_path / "coverforge"
    (package / "sub").mkdir(parents=True)
    (package / "__init__.py").write_text("")
    (package / "sub" / "__init__.py").write_text("")
    (package / "a.py").write_text("from coverforge.sub import b\n")
    (package / "sub" / "b.py").write_text("def f():\n    from .. import a\n")
    (package / "c.py").write_text("import coverforge.d\n")
    (package / "d.py").write_text(
        "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from coverforge.c import thing\n"
    )
    (package / "e.py").write_text("import coverforge.a\n")
    found = sorted(sorted(group) for group in cycles(import_graph(tmp_path)))
    assert found == [["coverforge.a", "coverforge.sub.b"], ["coverforge.c", "coverforge.d"]]


def _loaded_after_import(module: str) -> set[str]:
    """Names in sys.modules after importing `module` in a fresh interpreter."""
    code = f"import sys, {module}; print('\\n'.join(sys.modules))"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300, check=True)
    return set(done.stdout.split())


@pytest.mark.parametrize("module", ["coverforge.training.loop", "coverforge.sampling.generate", "coverforge.sampling.batch"])
def test_training_and_sampling_do_not_load_the_metrics(module):
    loaded = _loaded_after_import(module)
    assert not sorted(m for m in loaded if m.startswith("coverforge.evaluation"))
    # The training loop needs diffusers, which loads scipy itself (through peft and transformers);
    # the sampler imports diffusers lazily, so scipy there could only come from a metric.
    if module.startswith("coverforge.sampling"):
        assert "scipy" not in loaded
