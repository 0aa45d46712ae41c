"""One frozen Settings object for both services, read from the environment and `.env`.

Better Auth's own variable names (`BETTER_AUTH_SECRET`, `BETTER_AUTH_URL`) are honoured so that a
deployment can switch between aibrain and a Better Auth server without renaming anything. Every
other setting is `AIBRAIN_<FIELD>` in upper case, for example `AIBRAIN_API_PORT=9000`.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Literal
from urllib.parse import urlsplit

from pydantic import AliasChoices, Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict
from typing_extensions import Annotated

SigningAlgorithm = Literal["RS256", "PS256", "ES256", "EdDSA"]
PasswordHasher = Literal["argon2id", "scrypt"]
SynchronousMode = Literal["OFF", "NORMAL", "FULL", "EXTRA"]

MIN_SECRET_LENGTH = 32


def _csv(value: object) -> object:
    """Split a comma-separated environment value into a list of stripped, non-empty items."""
    if isinstance(value, str):
        return [item.strip() for item in value.split(",") if item.strip()]
    return value


class Settings(BaseSettings):
    """Every setting of both services, with its default. `aibrain serve --help` prints this table."""

    model_config = SettingsConfigDict(
        env_prefix="AIBRAIN_",
        env_file=".env",
        extra="ignore",
        frozen=True,
        populate_by_name=True,
    )

    # Shared
    env: Literal["development", "production"] = Field(
        "development", description="development creates a missing secret; production stops at start-up without one"
    )
    data_dir: Path = Field(Path("data"), description="folder for auth.db, the generated secret and users/<id>/events.db")
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = Field("INFO", description="log level of both services")
    secret: SecretStr | None = Field(
        None,
        validation_alias=AliasChoices("BETTER_AUTH_SECRET", "AUTH_SECRET", "AIBRAIN_SECRET"),
        description="signs session cookies and encrypts signing keys (32+ characters)",
    )
    base_url: str = Field(
        "http://127.0.0.1:3000",
        validation_alias=AliasChoices("BETTER_AUTH_URL", "AIBRAIN_BASE_URL"),
        description="public URL of the auth service; its origin is the JWT issuer and audience",
    )

    # Auth service
    auth_host: str = Field("127.0.0.1", description="address the auth service listens on")
    auth_port: int = Field(3000, ge=0, le=65535, description="port of the auth service")
    auth_workers: int = Field(1, ge=1, description="auth service worker processes")
    database_url: str | None = Field(
        None, description="SQLAlchemy URL of the auth database (default sqlite:///<data_dir>/auth.db)"
    )
    jwt_algorithm: SigningAlgorithm = Field("RS256", description="algorithm of new signing keys")
    jwt_expires_in: int = Field(900, gt=0, description="JWT lifetime in seconds")
    key_rotation_interval: int | None = Field(
        None, gt=0, description="seconds until a signing key is replaced on next use (unset: never)"
    )
    key_grace_period: int = Field(
        2_592_000, ge=0, description="seconds an expired signing key stays published in the JWKS"
    )
    password_hasher: PasswordHasher = Field(
        "argon2id", description="hash for new passwords; scrypt keeps a database usable by Better Auth"
    )
    # OWASP's password storage cheat sheet lists m=47104/t=1, 19456/t=2, 12288/t=3, 9216/t=4 and
    # 7168/t=5 (KiB, p=1) as equally strong. 7168/t=5 verified in 16 ms against 23 ms for 19456/t=2 on
    # a 2-core EPYC test machine, and needs less memory per concurrent sign-in.
    argon2_memory_kib: int = Field(
        7_168, ge=8, description="argon2id memory cost in KiB (OWASP: 7168 with 5 iterations, or 19456 with 2)"
    )
    argon2_iterations: int = Field(5, ge=1, description="argon2id time cost (iterations)")
    hash_threads: int = Field(
        default_factory=lambda: max(1, os.cpu_count() or 1), ge=1, description="threads that hash passwords"
    )
    session_expires_in: int = Field(604_800, gt=0, description="session lifetime in seconds")
    session_update_age: int = Field(86_400, gt=0, description="seconds after which a used session is extended")
    trusted_origins: Annotated[list[str], NoDecode] = Field(
        default_factory=list, description="extra origins allowed on POST, comma-separated (the base URL is always)"
    )
    trusted_proxies: Annotated[list[str], NoDecode] = Field(
        default_factory=list, description="proxy addresses whose X-Forwarded-For is believed, comma-separated"
    )
    rate_limit_enabled: bool = Field(True, description="rate-limit the auth service per client address and path")
    rate_limit_window: int = Field(10, gt=0, description="rate-limit window in seconds")
    rate_limit_max: int = Field(100, gt=0, description="requests per window on most auth paths")
    rate_limit_auth_max: int = Field(3, gt=0, description="requests per window on sign-in and sign-up")
    rate_limit_storage: str = Field("memory://", description="limits storage URI, e.g. redis://host:6379")

    # Events API
    api_host: str = Field("127.0.0.1", description="address the events API listens on")
    api_port: int = Field(8080, ge=0, le=65535, description="port of the events API")
    api_workers: int = Field(1, ge=1, description="events API worker processes")
    auth_server_url: str | None = Field(
        None,
        validation_alias=AliasChoices("AUTH_SERVER_URL", "AIBRAIN_AUTH_SERVER_URL"),
        description="where the API fetches /api/auth/jwks (default: the base URL)",
    )
    jwks_path: str = Field("/api/auth/jwks", description="JWKS path on the auth server")
    jwt_issuer: str | None = Field(None, description="required iss claim (default: the base URL's origin)")
    jwt_audience: str | None = Field(None, description="required aud claim (default: the base URL's origin)")
    jwt_leeway: int = Field(30, ge=0, description="clock skew allowed on exp, nbf and iat, in seconds")
    jwks_refresh_interval: float = Field(300, gt=0, description="seconds between background JWKS refreshes")
    jwks_refetch_cooldown: float = Field(10, ge=0, description="minimum seconds between refetches for unknown kids")
    jwks_fetch_timeout: float = Field(5, gt=0, description="timeout of one JWKS fetch in seconds")
    token_cache_size: int = Field(10_000, ge=0, description="verified tokens kept in memory")
    store_cache_size: int = Field(
        1024, ge=1, description="per-user SQLite files kept open (3 descriptors each; capped by the open-file limit)"
    )
    sqlite_synchronous: SynchronousMode = Field(
        "NORMAL", description="PRAGMA synchronous of event stores (FULL survives power loss)"
    )
    sqlite_busy_timeout_ms: int = Field(5_000, ge=0, description="SQLite busy timeout in milliseconds")
    max_body_bytes: int = Field(1_048_576, gt=0, description="largest request body in bytes")
    max_header_bytes: int = Field(
        65_536, ge=8192, description="largest request head (request line and headers) in bytes; larger get 431"
    )
    max_token_bytes: int = Field(16_384, gt=0, description="largest bearer token in bytes")
    max_json_depth: int = Field(64, gt=0, description="deepest nesting of arrays and objects in a request body")
    max_type_length: int = Field(128, gt=0, description="maximum length of an event type in characters")
    user_events_per_minute: int = Field(
        60_000, ge=0, description="events one user may store per minute (0: unlimited)"
    )
    user_bytes_per_day: int = Field(
        1_073_741_824, ge=0, description="bytes of event data one user may store per day (0: unlimited)"
    )
    quota_storage: str = Field("memory://", description="limits storage URI of the per-user write budgets")
    max_page_size: int = Field(500, gt=0, description="largest limit on GET /events")
    default_page_size: int = Field(50, gt=0, description="limit on GET /events when none is given")

    @field_validator("trusted_origins", "trusted_proxies", mode="before")
    @classmethod
    def _split_csv(cls, value: object) -> object:
        return _csv(value)

    @field_validator("base_url", "auth_server_url")
    @classmethod
    def _strip_slash(cls, value: str | None) -> str | None:
        return value.rstrip("/") if value else value

    @property
    def origin(self) -> str:
        """Return the scheme, host and port of the base URL, which Better Auth uses as iss and aud."""
        parts = urlsplit(self.base_url)
        return f"{parts.scheme}://{parts.netloc}"

    @property
    def issuer(self) -> str:
        return self.jwt_issuer or self.origin

    @property
    def audience(self) -> str:
        return self.jwt_audience or self.origin

    @property
    def jwks_url(self) -> str:
        return (self.auth_server_url or self.origin) + self.jwks_path

    @property
    def auth_database_url(self) -> str:
        return self.database_url or f"sqlite:///{self.data_dir / 'auth.db'}"

    @property
    def users_dir(self) -> Path:
        return self.data_dir / "users"


def load_settings(**overrides: object) -> Settings:
    """Read the settings from the environment and `.env`, with keyword overrides on top."""
    return Settings(**overrides)  # type: ignore[arg-type]
