"""The package's layers (pipeline/__init__.py): no module imports from a layer below its own."""

import ast
import sys
from pathlib import Path

import pytest

import pipeline

PACKAGE = Path(pipeline.__file__).parent
RANK = {name: rank for rank, layer in enumerate(pipeline.LAYERS)
        for name in (layer if isinstance(layer, tuple) else (layer,))}


def _layer(module: str) -> str | None:
    """'pipeline.classify.stage' -> 'classify'; the package root (its version) has no layer."""
    parts = module.split(".")
    return parts[1] if len(parts) > 1 and parts[0] == "pipeline" else None


def _imports(path: Path) -> list[tuple[int, str]]:
    """(line, imported pipeline module) for every import in the file, at any depth."""
    module = "pipeline." + ".".join(path.relative_to(PACKAGE).with_suffix("").parts)
    module = module.removesuffix(".__init__")
    found = []
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name) for alias in node.names if alias.name.startswith("pipeline")]
        elif isinstance(node, ast.ImportFrom):
            if node.level:  # relative: resolve against this module's package
                base = module.split(".")[:len(module.split(".")) - node.level + (path.name == "__init__.py")]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            if not target.startswith("pipeline"):
                continue
            if target == "pipeline":  # from pipeline import classify, io, __version__
                found += [(node.lineno, f"pipeline.{alias.name}") for alias in node.names]
            else:
                found.append((node.lineno, target))
    return found


def _modules() -> list[Path]:
    return sorted(PACKAGE.rglob("*.py"))


def _own_layer(path: Path) -> str:
    """'classify' for pipeline/classify/stage.py, 'config' for pipeline/config.py."""
    return path.relative_to(PACKAGE).parts[0].removesuffix(".py")


def test_every_module_sits_in_a_layer():
    unplaced = [str(p.relative_to(PACKAGE)) for p in _modules()
                if p != PACKAGE / "__init__.py" and _own_layer(p) not in RANK]
    assert unplaced == [], f"modules outside every layer of pipeline.LAYERS: {unplaced}"


@pytest.mark.parametrize("path", _modules(), ids=lambda p: str(p.relative_to(PACKAGE)))
def test_no_module_imports_from_a_lower_layer(path):
    own = _own_layer(path)
    if own == "__init__":
        assert _imports(path) == [], "pipeline/__init__.py must import nothing of the package"
        return
    upward = [f"line {line}: {target}" for line, target in _imports(path)
              if (layer := _layer(target)) is not None and layer in RANK and RANK[layer] > RANK[own]]
    assert upward == [], f"{own} (layer {RANK[own]}) imports from lower layers: {upward}"


def test_the_check_sees_an_upward_import(tmp_path, monkeypatch):
    """The walk itself: an import of the runner inside ingest is found, a relative one too."""
    room = tmp_path / "pipeline" / "ingest"
    room.mkdir(parents=True)
    (room / "bad.py").write_text("def f():\n    from pipeline.runner import run\n    from ..video import frames\n")
    monkeypatch.setattr(sys.modules[__name__], "PACKAGE", tmp_path / "pipeline")
    targets = [target for _, target in _imports(room / "bad.py")]
    assert targets == ["pipeline.runner", "pipeline.video"]
