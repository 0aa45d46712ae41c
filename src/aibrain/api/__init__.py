"""The events API: per-user event storage behind JWTs from the auth service."""

from aibrain.api.app import app_from_env, create_app

__all__ = ["app_from_env", "create_app"]
