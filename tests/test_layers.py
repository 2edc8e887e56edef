"""The core reads top-down: each folder imports only from the layers below it (and itself),
never upward or sideways, and hosts and the CLI use the public API."""

from __future__ import annotations

import ast
from pathlib import Path

CORE = Path(__file__).resolve().parent.parent / "core"
# Lowest first. A module may import from its own part and from any earlier layer.
LAYERS: list[set[str]] = [
    {"version"},
    {"errors"},
    {"config"},
    {"jobs"},
    {"net"},
    {"comfyui"},
    {"runcomfy", "comfyicu", "comfyapi"},
    {"pool"},
    {"kinds"},
    {"host"},
    {"cli"},
    {"__init__", "__main__"},
]


def part(module: Path) -> str:
    """The top-level folder or module a file belongs to: "jobs", "errors", ..."""
    return module.relative_to(CORE).parts[0].removesuffix(".py")


def layer(name: str) -> int:
    return next(i for i, names in enumerate(LAYERS) if name in names)


def imported_parts(module: Path) -> set[str]:
    """The core parts a module imports, from its relative imports."""
    depth = len(module.relative_to(CORE).parts) - 1  # 0: a top-level module
    found: set[str] = set()
    for node in ast.walk(ast.parse(module.read_text())):
        if isinstance(node, ast.ImportFrom) and node.level:
            if node.level - 1 < depth:  # within its own folder
                found.add(part(module))
                continue
            if node.module:
                found.add(node.module.split(".")[0])
            else:
                found.update(alias.name for alias in node.names)
    return found


def test_every_part_has_a_layer() -> None:
    parts = {part(m) for m in CORE.rglob("*.py")}
    assert parts == set().union(*LAYERS)


def test_no_module_imports_upward_or_sideways() -> None:
    wrong = []
    for module in sorted(CORE.rglob("*.py")):
        own = part(module)
        for target in imported_parts(module):
            if target != own and layer(target) >= layer(own):
                wrong.append(f"{module.relative_to(CORE)} imports {target}")
    assert wrong == []


def test_each_module_says_what_it_holds() -> None:
    missing = [str(m.relative_to(CORE)) for m in CORE.rglob("*.py")
               if ast.get_docstring(ast.parse(m.read_text())) is None]
    assert missing == []
