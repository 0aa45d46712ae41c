"""One auth service and one events API per test module, as real processes on free ports."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.servers import Service, start_api, start_auth


@dataclass
class Services:
    auth: Service
    api: Service
    data_dir: Path


@pytest.fixture(scope="module")
def services(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Services]:
    data_dir = tmp_path_factory.mktemp("services")
    auth = start_auth(data_dir)
    api = start_api(data_dir, auth.url)
    yield Services(auth, api, data_dir)
    api.stop()
    auth.stop()
