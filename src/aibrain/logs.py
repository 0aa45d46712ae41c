"""Logging set-up for the entry points. Library modules only call `logging.getLogger(__name__)`."""

from __future__ import annotations

import logging
import sys

FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"


def configure_logging(level: str = "INFO") -> None:
    """Send log records to stderr, one line each; later calls only change the level."""
    root = logging.getLogger()
    if not any(getattr(handler, "_aibrain", False) for handler in root.handlers):
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(logging.Formatter(FORMAT))
        handler._aibrain = True  # type: ignore[attr-defined]
        root.addHandler(handler)
    root.setLevel(level)
    # httpx logs every request at INFO; the JWKS cache logs what matters about its fetches itself.
    logging.getLogger("httpx").setLevel(logging.WARNING)


def shorten(value: object, limit: int = 64) -> str:
    """Return a printable, escaped and shortened form of an untrusted value for a log line."""
    text = repr(value)
    if len(text) > limit:
        return f"{text[:limit]}...({len(text)} chars)"
    return text
