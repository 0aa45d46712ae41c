"""Run the services: one with Granian in this process, or both as child processes for `serve`."""

from __future__ import annotations

import logging
import os
import signal
import socket
import subprocess
import sys
import time
from types import FrameType

from aibrain.logs import FORMAT

log = logging.getLogger(__name__)

TARGETS = {
    "auth": "aibrain.auth.app:app_from_env",
    "api": "aibrain.api.app:app_from_env",
}


# Granian's own records ("Listening at ...") in the same one-line format as ours, on stderr.
GRANIAN_LOGGING = {
    "formatters": {
        "generic": {"()": "logging.Formatter", "fmt": FORMAT},
        "access": {"()": "logging.Formatter", "fmt": "%(message)s"},
    },
    "handlers": {
        "console": {"formatter": "generic", "class": "logging.StreamHandler", "stream": "ext://sys.stderr"},
        "access": {"formatter": "access", "class": "logging.StreamHandler", "stream": "ext://sys.stderr"},
    },
}


# Each open event store uses three descriptors, so a default soft limit of 1,024 would cap the
# events API at 170 open stores. Servers therefore raise it toward the hard limit at start.
WANTED_OPEN_FILES = 65_536


def raise_open_file_limit() -> None:
    """Raise the soft RLIMIT_NOFILE toward WANTED_OPEN_FILES, within the hard limit, for this process and its workers."""
    try:
        import resource
    except ImportError:
        return
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    wanted = WANTED_OPEN_FILES if hard == resource.RLIM_INFINITY else min(hard, WANTED_OPEN_FILES)
    if soft != resource.RLIM_INFINITY and soft < wanted:
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (wanted, hard))
        except (OSError, ValueError) as error:
            log.warning("could not raise the open-file limit from %d to %d: %s", soft, wanted, error)
            return
        log.info("raised the open-file limit from %d to %d", soft, wanted)


def run_service(
    name: str, *, host: str, port: int, workers: int, log_level: str, max_header_bytes: int = 65_536
) -> None:
    """Serve one service with Granian (uvloop, ASGI) until SIGINT or SIGTERM.

    A worker that dies (a crash in native code, say) is started again instead of leaving the port
    open with no process serving it. Request heads larger than `max_header_bytes` get Granian's 431.
    """
    from granian import Granian
    from granian.constants import Interfaces, Loops
    from granian.http import HTTP1Settings
    from granian.log import LogLevels

    loop = Loops.uvloop if sys.platform != "win32" else Loops.asyncio
    server = Granian(
        TARGETS[name],
        address=host,
        port=port,
        interface=Interfaces.ASGI,
        workers=workers,
        loop=loop,
        factory=True,
        log_level=LogLevels(log_level.lower()),
        log_access=False,
        log_dictconfig=GRANIAN_LOGGING,
        # Several hundred keep-alive clients are normal for an agent fleet; the default backlog of
        # 1024 is shared by the workers.
        backlog=2048,
        respawn_failed_workers=True,
        # Granian's HTTP/1 read buffer bounds the request head; hyper needs at least 8 KiB.
        http1_settings=HTTP1Settings(max_buffer_size=max(8192, max_header_bytes)),
    )
    raise_open_file_limit()
    log.info("starting %s service on http://%s:%d with %d worker(s)", name, host, port, workers)
    server.serve()
    log.info("%s service stopped", name)


def serve_both(env: dict[str, str], auth_address: tuple[str, int]) -> int:
    """Start `aibrain auth` and `aibrain api` as children and stop both when either stops or on a signal.

    Returns 0 after a requested stop, or the exit code of a child that stopped by itself.
    """
    # The API fetches the auth service's JWKS at start, so the auth service goes first.
    children = {"auth": subprocess.Popen([sys.executable, "-m", "aibrain", "auth"], env=env)}
    _wait_until_listening(auth_address, children["auth"])
    children["api"] = subprocess.Popen([sys.executable, "-m", "aibrain", "api"], env=env)
    stopping = False

    def request_stop(signum: int, _frame: FrameType | None) -> None:
        nonlocal stopping
        stopping = True
        log.info("received %s; stopping both services", signal.Signals(signum).name)

    signal.signal(signal.SIGINT, request_stop)
    signal.signal(signal.SIGTERM, request_stop)

    failed: tuple[str, int] | None = None
    while not stopping and failed is None:
        for name, child in children.items():
            code = child.poll()
            if code is not None:
                failed = (name, code)
                log.error("%s service exited with code %d; stopping the other one", name, code)
                break
        time.sleep(0.2)

    for child in children.values():
        if child.poll() is None:
            child.send_signal(signal.SIGTERM)
    for name, child in children.items():
        try:
            child.wait(timeout=20)
        except subprocess.TimeoutExpired:
            log.error("%s service did not stop within 20 s; killing it", name)
            child.kill()
            child.wait()
    if failed is not None:
        return failed[1] or 1
    return 0


def _wait_until_listening(address: tuple[str, int], child: subprocess.Popen[bytes], timeout: float = 30.0) -> None:
    """Wait until the auth service accepts connections, it exits, or `timeout` seconds pass."""
    host, port = address
    host = "127.0.0.1" if host in ("0.0.0.0", "::") else host
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and child.poll() is None:
        try:
            with socket.create_connection((host, port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.1)
    log.warning("auth service not listening on port %d after %.0f s; starting the API anyway", port, timeout)


def child_environment(overrides: dict[str, object]) -> dict[str, str]:
    """Return this process's environment with settings overrides as AIBRAIN_* variables."""
    env = dict(os.environ)
    for field, value in overrides.items():
        if value is not None:
            env[f"AIBRAIN_{field.upper()}"] = str(value)
    return env
