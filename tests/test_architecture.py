"""The shape of the code (../shared/DESIGN.md), read from its source: one door into the engine, no cycles.

Every `import` counts, at module level or deferred into a function, so a deferred import
cannot hide a cycle or a reach into an engine submodule.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).parents[1] / "diffusers_tui"
#: The libraries that hold models and tensors: only the engine touches them.
MODEL_LIBRARIES = {"torch", "diffusers", "transformers", "accelerate", "huggingface_hub", "safetensors", "torchsde"}
MAX_LINES = 400


def module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def modules(under: str = "") -> dict[str, Path]:
    root = PACKAGE / under if under else PACKAGE
    return {module_name(path): path for path in sorted(root.rglob("*.py"))}


def imports_of(path: Path) -> set[str]:
    """Every module `path` imports, anywhere in it (`from a import b` gives a, and a.b when that is a module)."""
    found = set()
    tree = ast.parse(path.read_text(encoding="utf-8"))
    package = module_name(path) if path.name == "__init__.py" else module_name(path).rpartition(".")[0]
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                base = ".".join(package.split(".")[: len(package.split(".")) - node.level + 1] + ([base] if base else []))
            found.add(base)
            found.update(f"{base}.{alias.name}" for alias in node.names)
    return found


ALL = modules()


def ours(names: set[str]) -> set[str]:
    return {name for name in names if name in ALL}


@pytest.mark.parametrize("room", ["ui", "commands"])
def test_the_ui_and_the_commands_use_only_the_engines_public_surface(room):
    reaching_in = {
        module: sorted(name for name in ours(imports_of(path)) if name.startswith("diffusers_tui.engine."))
        for module, path in modules(room).items()
    }
    assert {module: names for module, names in reaching_in.items() if names} == {}


@pytest.mark.parametrize("room", ["ui", "commands"])
def test_the_ui_and_the_commands_never_touch_a_model_library(room):
    touching = {module: sorted({name.split(".")[0] for name in imports_of(path)} & MODEL_LIBRARIES)
                for module, path in modules(room).items()}
    assert {module: names for module, names in touching.items() if names} == {}
    # The engine's own LoadedModel (which holds the pipeline) is for the engine and its tests.
    holding = [module for module, path in modules(room).items() if "loaded_model(" in path.read_text()]
    assert holding == []


def test_the_engine_imports_neither_the_ui_nor_the_commands_nor_the_settings():
    outward = {module: sorted(name for name in ours(imports_of(path))
                              if not name.startswith("diffusers_tui.engine"))
               for module, path in modules("engine").items()}
    assert {module: names for module, names in outward.items() if names} == {}


def test_no_import_cycle_anywhere_in_the_package():
    graph = {module: {name for name in ours(imports_of(path)) if name != module} for module, path in ALL.items()}
    # A package's __init__ importing its own submodules is how a public surface is built;
    # a submodule importing its package back is a cycle only if the package needs it first.
    for module in graph:
        graph[module] = {name for name in graph[module] if not module.startswith(name + ".")}
    cycle = _find_cycle(graph)
    assert cycle is None, " -> ".join(cycle)


def _find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    state: dict[str, str] = {}
    stack: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = "open"
        stack.append(node)
        for nxt in sorted(graph.get(node, ())):
            if state.get(nxt) == "open":
                return stack[stack.index(nxt):] + [nxt]
            if nxt not in state and (found := visit(nxt)):
                return found
        stack.pop()
        state[node] = "done"
        return None

    for node in sorted(graph):
        if node not in state and (found := visit(node)):
            return found
    return None


def test_the_commands_package_is_not_imported_back_by_its_commands():
    back = [module for module, path in modules("commands").items()
            if module != "diffusers_tui.commands" and "diffusers_tui.commands" in imports_of(path)]
    assert back == []


def test_every_module_says_its_job_and_stays_short():
    for module, path in ALL.items():
        tree = ast.parse(path.read_text(encoding="utf-8"))
        docstring = ast.get_docstring(tree)
        assert docstring, f"{module} has no docstring saying its job"
        lines = len(path.read_text(encoding="utf-8").splitlines())
        assert lines <= MAX_LINES or "long because" in docstring, f"{module} is {lines} lines"
