"""The source tree's layers point one way: a module never imports one from a higher layer.

Lowest first: shared basics (parameters, pretrained-model names, atomic files, the saved-model
folder) → features (the converted table's schema, one-hot, batching) → models (plain
``nn.Module``s, inference, baselines) → training (Lightning) → packaging → pipelines (thin
nodes) → Kedro datasets (I/O only) → the Kedro project (settings, hooks, CLI, scaffold).
Imports inside functions count too: a lazy import is still a dependency.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[1] / "src" / "reprotrain"

LAYERS = [
    ("basics", ["params", "pretrained", "atomic", "artifact"]),
    ("features", ["features", "batches"]),
    ("models", ["models", "inference", "baselines"]),
    ("training", ["training"]),
    ("packaging", ["packaging"]),
    ("pipelines", ["pipelines"]),
    ("datasets", ["datasets"]),
    (
        "project",
        [
            "settings",
            "hooks",
            "cli",
            "scaffold",
            "tune_apply",
            "pipeline_registry",
            "demo_data",
            "__main__",
        ],
    ),
]
RANK = {top: i for i, (_, tops) in enumerate(LAYERS) for top in tops}


def _layer(module: str) -> int:
    """The layer of ``reprotrain.<top>...``."""
    top = module.split(".")[1] if "." in module else ""
    if top not in RANK:
        raise AssertionError(f"reprotrain.{top} has no layer: add it to LAYERS in {__file__}")
    return RANK[top]


def _imports(path: Path) -> list[tuple[int, str]]:
    """``(line, module)`` of every ``reprotrain`` import in ``path``, lazy ones included."""
    found = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names = [node.module]
            if node.module == "reprotrain":  # from reprotrain import params
                names = [f"reprotrain.{a.name}" for a in node.names]
            found += [(node.lineno, n) for n in names]
        elif isinstance(node, ast.Import):
            found += [(node.lineno, a.name) for a in node.names]
    return [(line, m) for line, m in found if m.startswith("reprotrain.")]


def _modules() -> list[Path]:
    return sorted(p for p in SRC.rglob("*.py") if p.name != "__init__.py" or p.parent != SRC)


@pytest.mark.parametrize("path", _modules(), ids=lambda p: str(p.relative_to(SRC)))
def test_no_import_from_a_higher_layer(path: Path):
    module = "reprotrain." + ".".join(path.relative_to(SRC).with_suffix("").parts)
    own = _layer(module)
    upward = [
        f"line {line}: {name} ({LAYERS[_layer(name)][0]})"
        for line, name in _imports(path)
        if _layer(name) > own
    ]
    assert not upward, f"{module} ({LAYERS[own][0]}) imports a higher layer: {upward}"


def test_relative_imports_are_not_used():
    """The layer check reads absolute imports only."""
    relative = [
        str(p.relative_to(SRC))
        for p in _modules()
        if any(
            isinstance(n, ast.ImportFrom) and n.level for n in ast.walk(ast.parse(p.read_text()))
        )
    ]
    assert not relative
