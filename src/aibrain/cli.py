"""The `aibrain` command: thin wrappers that parse options, call one function and print the result."""

from __future__ import annotations

import json
import os
import sys
from datetime import datetime, timedelta
from typing import Any

import click
from pydantic import AliasChoices, ValidationError

from aibrain.logs import configure_logging
from aibrain.settings import Settings, load_settings


def environment_name(name: str, field: Any) -> str:
    alias = field.validation_alias
    if isinstance(alias, AliasChoices):
        return str(alias.choices[0])
    return f"AIBRAIN_{name.upper()}"


def settings_table() -> str:
    """Return every setting as `VARIABLE (default): description`, for the help text."""
    lines = []
    for name, field in Settings.model_fields.items():
        if field.default_factory is not None:
            default = "number of cores" if name == "hash_threads" else "empty"
        elif field.default is None:
            default = "unset"
        else:
            default = str(field.default)
        lines.append(f"  {environment_name(name, field)} (default {default}): {field.description}")
    # "\b" stops click from re-wrapping the paragraph that follows, so each setting keeps its line.
    return "Settings (environment variables, also read from .env):\n\n\b\n" + "\n".join(lines)


def _settings(**overrides: object) -> Settings:
    """Load settings, turning a validation error into a one-line message and exit code 1."""
    values = {key: value for key, value in overrides.items() if value is not None}
    try:
        return load_settings(**values)
    except ValidationError as error:
        problems = "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in error.errors())
        raise click.ClickException(f"invalid settings: {problems}") from None


def _check_secret(settings: Settings) -> None:
    from aibrain.auth.secret import SecretError, resolve_secret

    try:
        resolve_secret(settings)
    except SecretError as error:
        raise click.ClickException(str(error)) from None


@click.group(epilog=settings_table())
@click.version_option(package_name="aibrain")
def main() -> None:
    """aibrain: auth (Better Auth protocol) and per-user event memory for AI assistants."""


@main.command(epilog=settings_table())
@click.option("--data-dir", type=click.Path(file_okay=False), help="Data folder [AIBRAIN_DATA_DIR, default ./data].")
def serve(data_dir: str | None) -> None:
    """Start the auth service (port 3000) and the events API (port 8080) until Ctrl-C.

    Example: aibrain serve --data-dir ./data
    """
    from aibrain.runner import child_environment, serve_both

    settings = _settings(data_dir=data_dir)
    configure_logging(settings.log_level)
    _check_secret(settings)
    code = serve_both(child_environment({"data_dir": data_dir}), (settings.auth_host, settings.auth_port))
    sys.exit(code)


def _service_command(name: str, default_port: str) -> click.Command:
    @click.option("--host", help=f"Listen address [AIBRAIN_{name.upper()}_HOST, default 127.0.0.1].")
    @click.option("--port", type=int, help=f"Listen port [AIBRAIN_{name.upper()}_PORT, default {default_port}].")
    @click.option("--workers", type=int, help=f"Worker processes [AIBRAIN_{name.upper()}_WORKERS, default 1].")
    @click.option("--data-dir", type=click.Path(file_okay=False), help="Data folder [AIBRAIN_DATA_DIR].")
    def command(host: str | None, port: int | None, workers: int | None, data_dir: str | None) -> None:
        from aibrain.runner import run_service

        overrides = {f"{name}_host": host, f"{name}_port": port, f"{name}_workers": workers, "data_dir": data_dir}
        settings = _settings(**overrides)
        configure_logging(settings.log_level)
        # Granian's workers build the app from the environment, so hand the options on that way.
        for field, value in overrides.items():
            if value is not None:
                os.environ[f"AIBRAIN_{field.upper()}"] = str(value)
        if name == "auth":
            _check_secret(settings)
        run_service(
            name,
            host=getattr(settings, f"{name}_host"),
            port=getattr(settings, f"{name}_port"),
            workers=getattr(settings, f"{name}_workers"),
            log_level=settings.log_level,
            max_header_bytes=settings.max_header_bytes,
        )

    return command


main.command(
    "auth",
    help="Start only the auth service (Better Auth wire protocol) on port 3000.\n\nExample: aibrain auth --port 3000",
    epilog=settings_table(),
)(_service_command("auth", "3000"))
main.command(
    "api",
    help="Start only the events API on port 8080; it fetches keys from AUTH_SERVER_URL.\n\nExample: aibrain api --port 8080",
    epilog=settings_table(),
)(_service_command("api", "8080"))


DATA_DIR_OPTION = click.option(
    "--data-dir", type=click.Path(file_okay=False), help="Data folder [AIBRAIN_DATA_DIR, default ./data]."
)


def _database_label(settings: Settings) -> str:
    from sqlalchemy.engine import make_url

    return make_url(settings.auth_database_url).render_as_string(hide_password=True)


@main.command(epilog=settings_table())
@DATA_DIR_OPTION
def migrate(data_dir: str | None) -> None:
    """Create or upgrade the auth database's tables; safe to run any number of times.

    Example: aibrain migrate --data-dir ./data
    """
    from aibrain.auth.db import create_database_engine
    from aibrain.auth.migrations import migrate as run_migrations

    settings = _settings(data_dir=data_dir)
    configure_logging(settings.log_level)
    applied = run_migrations(create_database_engine(settings.auth_database_url))
    names = f": {', '.join(applied)}" if applied else ""
    click.echo(f"{_database_label(settings)}: applied {len(applied)} migration(s){names}")


@main.group(epilog=settings_table())
def keys() -> None:
    """List or rotate the JWT signing keys in the auth database.

    Run it with the same AIBRAIN_DATA_DIR (or --data-dir) and BETTER_AUTH_SECRET as the auth
    service, or it reads another database. Both commands print the database they used.
    """


def _key_store(settings: Settings, *, must_exist: bool = True) -> Any:
    from aibrain.auth.db import create_database_engine
    from aibrain.auth.keys import KeyStore
    from aibrain.auth.migrations import migrate as run_migrations
    from aibrain.auth.secret import resolve_secret

    if must_exist and settings.database_url is None and not (settings.data_dir / "auth.db").exists():
        raise click.ClickException(
            f"no auth database at {settings.data_dir / 'auth.db'}; run this from the folder the services "
            "run in, or pass --data-dir (or AIBRAIN_DATA_DIR / AIBRAIN_DATABASE_URL)"
        )
    _check_secret(settings)
    engine = create_database_engine(settings.auth_database_url)
    run_migrations(engine)
    store = KeyStore(
        engine,
        resolve_secret(settings),
        alg=settings.jwt_algorithm,
        rotation_interval=settings.key_rotation_interval,
        grace_period=settings.key_grace_period,
    )
    store.load()
    return store


def _utc(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


@keys.command("list", epilog=settings_table())
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of a table.")
@DATA_DIR_OPTION
def keys_list(as_json: bool, data_dir: str | None) -> None:
    """Show every signing key: kid, algorithm, created, expires, and whether the JWKS publishes it.

    An expired key stays published, so tokens it signed keep verifying, until the grace period
    (AIBRAIN_KEY_GRACE_PERIOD) after its expiry. Example: aibrain keys list --data-dir ./data
    """
    settings = _settings(data_dir=data_dir)
    configure_logging("WARNING")
    store = _key_store(settings)
    published = {entry["kid"] for entry in store.published()}
    rows = []
    for key in store._keys:
        published_until = None
        if key.expires_at is not None:
            published_until = _utc(key.expires_at + timedelta(seconds=settings.key_grace_period))
        rows.append(
            {
                "kid": key.kid,
                "alg": key.alg,
                "created_at": _utc(key.created_at),
                "expires_at": _utc(key.expires_at) if key.expires_at else None,
                "published": key.kid in published,
                "published_until": published_until,
            }
        )
    if as_json:
        click.echo(json.dumps({"database": _database_label(settings), "keys": rows}, indent=2))
        return
    click.echo(f"signing keys in {_database_label(settings)}:")
    if not rows:
        click.echo("  none yet; the auth service creates one at start")
        return
    click.echo(f"  {'kid':32}  {'alg':6}  {'created':20}  {'expires':20}  published")
    for row in rows:
        expires = row["expires_at"] or "never"
        if not row["published"]:
            status = "no"
        elif row["published_until"]:
            status = f"until {row['published_until']}"
        else:
            status = "yes"
        click.echo(f"  {row['kid']:32}  {row['alg']:6}  {row['created_at']:20}  {expires:20}  {status}")


@keys.command("rotate", epilog=settings_table())
@DATA_DIR_OPTION
def keys_rotate(data_dir: str | None) -> None:
    """Add a new signing key; current keys expire now and stay in the JWKS for the grace period.

    Running services pick up the new key within 10 seconds. Example: aibrain keys rotate --data-dir ./data
    """
    settings = _settings(data_dir=data_dir)
    configure_logging(settings.log_level)
    key = _key_store(settings).rotate_sync()
    click.echo(
        f"{_database_label(settings)}: new signing key {key.kid} ({key.alg}); "
        f"old keys stay published for {settings.key_grace_period} s"
    )


if __name__ == "__main__":
    main()
