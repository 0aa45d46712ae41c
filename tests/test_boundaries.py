"""The package's import rules: auth and api never import each other; the SDK imports neither."""

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "src" / "aibrain"

FORBIDDEN = {
    "auth": ("aibrain.api", "aibrain.client"),
    "api": ("aibrain.auth", "aibrain.client"),
    "client": ("aibrain.auth", "aibrain.api"),
}


def imported_modules(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
    return names


@pytest.mark.parametrize("folder", sorted(FORBIDDEN))
def test_boundaries_folder_imports_no_sibling(folder):
    offenders = []
    for path in sorted((PACKAGE / folder).rglob("*.py")):
        for name in imported_modules(path):
            if name.startswith(FORBIDDEN[folder]):
                offenders.append(f"{path.relative_to(PACKAGE)} imports {name}")
    assert offenders == []


def test_boundaries_checker_sees_imports(tmp_path):
    sample = tmp_path / "sample.py"
    sample.write_text("import aibrain.api.app\nfrom aibrain.auth import db\n")
    assert imported_modules(sample) == {"aibrain.api.app", "aibrain.auth"}


def test_boundaries_modules_stay_small():
    long_modules = [
        f"{path.relative_to(PACKAGE)}: {count} lines"
        for path in sorted(PACKAGE.rglob("*.py"))
        if (count := len(path.read_text(encoding="utf-8").splitlines())) > 450
    ]
    assert long_modules == []
