"""Mint RS256 JWTs for many users with a test key, and serve that key from a tiny JWKS stub.

Signing up 100,000 users for real would cost at least 18 minutes of argon2id hashing on 2 cores
(about 22 ms per hash), so the many-user runs point the events API at this stub instead of the auth service. The tokens have
the claims and header the auth service issues (RS256, `kid`, the user object, `sub`, `iss`,
`aud`, `iat`, `exp`), so the API verifies them the same way.
"""

from __future__ import annotations

import base64
import json
import secrets
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa

TOKEN_LIFETIME = 86_400
ID_ALPHABET = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _b64url_uint(value: int) -> str:
    return _b64url(value.to_bytes((value.bit_length() + 7) // 8, "big"))


@dataclass
class StubKey:
    private_key: rsa.RSAPrivateKey
    kid: str

    @classmethod
    def generate(cls) -> StubKey:
        key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        return cls(key, "".join(secrets.choice(ID_ALPHABET) for _ in range(32)))

    def jwks(self) -> bytes:
        numbers = self.private_key.public_key().public_numbers()
        jwk = {"alg": "RS256", "kty": "RSA", "n": _b64url_uint(numbers.n), "e": _b64url_uint(numbers.e), "kid": self.kid}
        return json.dumps({"keys": [jwk]}).encode()

    def pem(self) -> bytes:
        return self.private_key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )

    def sign(self, claims: dict[str, object]) -> str:
        header = _b64url(json.dumps({"alg": "RS256", "kid": self.kid}, separators=(",", ":")).encode())
        payload = _b64url(json.dumps(claims, separators=(",", ":")).encode())
        signing_input = f"{header}.{payload}".encode()
        signature = self.private_key.sign(signing_input, padding.PKCS1v15(), hashes.SHA256())
        return f"{header}.{payload}.{_b64url(signature)}"


def user_claims(user_id: str, origin: str, now: int) -> dict[str, object]:
    """Return the claims of a token for one user, in the auth service's layout."""
    created = time.strftime("%Y-%m-%dT%H:%M:%S.000Z", time.gmtime(now))
    return {
        "iat": now,
        "name": f"Bench {user_id[:6]}",
        "email": f"{user_id.lower()}@bench.local",
        "emailVerified": False,
        "image": None,
        "createdAt": created,
        "updatedAt": created,
        "id": user_id,
        "sub": user_id,
        "exp": now + TOKEN_LIFETIME,
        "iss": origin,
        "aud": origin,
    }


def load_or_mint(cache_dir: Path, origin: str, count: int) -> tuple[StubKey, Path]:
    """Return the stub key and a file of `count` "<jwt>\\t<user id>" lines, reusing a fresh cache.

    Minting costs about 0.3 ms per token (RSA-2048 signature), so the cache saves half a minute
    per 100,000 users on a rerun. A cache whose tokens expire within an hour is minted anew.
    """
    cache_dir.mkdir(parents=True, exist_ok=True)
    key_path, tokens_path, meta_path = cache_dir / "key.pem", cache_dir / "tokens.tsv", cache_dir / "meta.json"
    now = int(time.time())
    if meta_path.exists():
        meta = json.loads(meta_path.read_text())
        if meta["origin"] == origin and meta["count"] >= count and meta["expires"] > now + 3600:
            private_key = serialization.load_pem_private_key(key_path.read_bytes(), password=None)
            assert isinstance(private_key, rsa.RSAPrivateKey)
            return StubKey(private_key, meta["kid"]), _prefix(tokens_path, count, cache_dir)

    key = StubKey.generate()
    with tokens_path.open("w") as out:
        for _ in range(count):
            user_id = "".join(secrets.choice(ID_ALPHABET) for _ in range(32))
            out.write(f"{key.sign(user_claims(user_id, origin, now))}\t{user_id}\n")
    key_path.write_bytes(key.pem())
    meta_path.write_text(
        json.dumps({"origin": origin, "count": count, "kid": key.kid, "expires": now + TOKEN_LIFETIME})
    )
    return key, _prefix(tokens_path, count, cache_dir)


def _prefix(tokens_path: Path, count: int, cache_dir: Path) -> Path:
    """Write the first `count` lines of the token file to their own file (wrk reads whole files)."""
    if count == json.loads((cache_dir / "meta.json").read_text())["count"]:
        return tokens_path
    target = cache_dir / f"tokens-{count}.tsv"
    with tokens_path.open() as source, target.open("w") as out:
        for i, line in enumerate(source):
            if i == count:
                break
            out.write(line)
    return target


@contextmanager
def serve_jwks(key: StubKey) -> Iterator[str]:
    """Serve `key` at /api/auth/jwks on a free loopback port in a thread, and yield the base URL."""
    document = key.jwks()

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            if self.path.split("?")[0] != "/api/auth/jwks":
                self.send_error(404)
                return
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(document)))
            self.end_headers()
            self.wfile.write(document)

        def log_message(self, format: str, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
