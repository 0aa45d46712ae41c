"""The SDK's public surface: exactly these names, each defined inside aibrain.client."""

import aibrain.client

EXPECTED = [
    "AIBrainError",
    "APIError",
    "AsyncClient",
    "AuthenticationError",
    "Client",
    "Conflict",
    "DecodeError",
    "Event",
    "NotFound",
    "Page",
    "PermissionDenied",
    "RateLimited",
    "ServiceUnavailable",
    "Session",
    "TransportError",
    "User",
]


def test_exported_members_all_is_pinned():
    assert aibrain.client.__all__ == EXPECTED


def test_exported_members_defined_in_the_sdk():
    outside = [name for name in EXPECTED if not getattr(aibrain.client, name).__module__.startswith("aibrain.client.")]
    assert outside == []


def test_exported_members_errors_share_one_base():
    errors = [name for name in EXPECTED if name.endswith(("Error", "Denied", "Found", "Conflict", "Limited", "Unavailable"))]
    outside_tree = [name for name in errors if not issubclass(getattr(aibrain.client, name), aibrain.client.AIBrainError)]
    assert outside_tree == []


def test_exported_members_no_public_module_besides_the_package():
    modules = [name for name in dir(aibrain.client) if not name.startswith("_") and name not in EXPECTED]
    assert modules == []
