"""The Python examples in docs/sdk.md run as written against real services."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from aibrain.client import ServiceUnavailable

DOC = Path(__file__).resolve().parents[2] / "docs" / "sdk.md"


def python_examples() -> list[str]:
    return re.findall(r"```python\n(.*?)```", DOC.read_text(encoding="utf-8"), flags=re.DOTALL)


def point_at(source: str, auth_url: str, api_url: str) -> str:
    """Replace the default addresses in an example with those of the test services."""
    source = source.replace('"http://127.0.0.1:3000", "http://127.0.0.1:8080"', f'"{auth_url}", "{api_url}"')
    return source.replace("Client()", f'Client("{auth_url}", "{api_url}")')


def test_docs_has_three_examples():
    assert len(python_examples()) == 3


def test_docs_examples_run(services, capsys):
    namespace: dict[str, object] = {}
    for source in python_examples():
        exec(compile(point_at(source, services.auth.url, services.api.url), str(DOC), "exec"), namespace)

    assert "remember the milk" in capsys.readouterr().out
    with pytest.raises(ServiceUnavailable, match="AUTH_UNAVAILABLE"):
        namespace["client"].me()  # type: ignore[attr-defined]
