"""The events API must not depend on the auth service's code."""

from __future__ import annotations

import ast
from pathlib import Path

import aibrain.api

API_DIR = Path(aibrain.api.__file__).parent


def imported_modules(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module is not None:
            names.add(node.module)
    return names


def test_api_never_imports_auth() -> None:
    offenders = {
        path.name: sorted(name for name in imported_modules(path) if name == "aibrain.auth" or name.startswith("aibrain.auth."))
        for path in API_DIR.glob("*.py")
    }

    assert {name: found for name, found in offenders.items() if found} == {}


def test_api_modules_found() -> None:
    assert len(list(API_DIR.glob("*.py"))) >= 10
