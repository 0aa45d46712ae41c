"""aibrain: auth and per-user event memory for AI assistants, wire-compatible with Better Auth."""

__version__ = "0.1.0"

__all__ = ["__version__"]
