"""Fixtures shared by every test folder."""

from __future__ import annotations

import itertools

import pytest

_counter = itertools.count()


@pytest.fixture
def unique_email() -> str:
    """Return an email address no other test in this run uses."""
    return f"user{next(_counter)}-{id(object())}@example.com"
