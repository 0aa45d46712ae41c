"""Find the service secret: from the environment, or generated into the data folder in development."""

from __future__ import annotations

import logging
import os
import secrets
import tempfile
from pathlib import Path

from aibrain.settings import MIN_SECRET_LENGTH, Settings

log = logging.getLogger(__name__)

SECRET_FILE = "secret"


class SecretError(RuntimeError):
    """Raised at start-up when production mode has no usable secret."""


def resolve_secret(settings: Settings) -> str:
    """Return the secret that signs session tokens and encrypts signing keys.

    Production refuses a missing or short secret. Development creates one in `<data dir>/secret`
    (mode 0600) on first start and reuses it, so sessions and keys survive restarts.
    """
    if settings.secret is not None:
        value = settings.secret.get_secret_value()
        if len(value) >= MIN_SECRET_LENGTH:
            return value
        if settings.env == "production":
            raise SecretError(
                f"BETTER_AUTH_SECRET has {len(value)} characters; production needs at least "
                f"{MIN_SECRET_LENGTH}. Generate one with: openssl rand -base64 32"
            )
        log.warning("BETTER_AUTH_SECRET is shorter than %d characters; use a longer one in production", MIN_SECRET_LENGTH)
        return value

    if settings.env == "production":
        raise SecretError(
            "BETTER_AUTH_SECRET is not set and AIBRAIN_ENV=production. Set it to 32 or more random "
            "characters, e.g. export BETTER_AUTH_SECRET=$(openssl rand -base64 32)"
        )
    return _development_secret(settings.data_dir / SECRET_FILE)


def _development_secret(path: Path) -> str:
    if path.exists():
        return path.read_text(encoding="utf-8").strip()

    path.parent.mkdir(parents=True, exist_ok=True)
    value = secrets.token_urlsafe(48)
    # Write a private temp file, then hard-link it into place: the link fails if another process
    # won the race, and no process ever reads a half-written secret.
    descriptor, temp_name = tempfile.mkstemp(dir=path.parent, prefix=".secret-")
    try:
        with os.fdopen(descriptor, "w", encoding="utf-8") as handle:
            handle.write(value + "\n")
        os.link(temp_name, path)
    except FileExistsError:
        return path.read_text(encoding="utf-8").strip()
    finally:
        os.unlink(temp_name)
    log.info("generated a development secret in %s; set BETTER_AUTH_SECRET in production", path)
    return value
