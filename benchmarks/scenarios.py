"""The benchmark scenarios: aibrain and its peers under the same load, one after the other."""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from benchmarks import aibrain_servers, betterauth, pocketbase, stub_tokens
from benchmarks.loadgen import LoadResult, run_sequential, run_wrk
from benchmarks.procs import Server, Usage, Watch, child_running

log = logging.getLogger(__name__)

AIBRAIN = "aibrain"
PASSWORD = "bench-password-123"
EVENT_DATA = '{"text":"benchmark event {n}","tags":["bench","load"],"n":{n}}'
STUB_ISSUER = "http://aibrain-bench.invalid"


@dataclass
class Row:
    """One system's result in one scenario."""

    system: str
    load: LoadResult
    usage: Usage
    counts: dict[str, int] = field(default_factory=dict)
    # req/s of every measured run when a row keeps the median of several runs.
    runs_rps: list[float] = field(default_factory=list)


@dataclass
class Scenario:
    key: str
    title: str
    method: str
    rows: list[Row] = field(default_factory=list)

    def row(self, system: str) -> Row | None:
        return next((row for row in self.rows if row.system == system), None)


@dataclass
class Context:
    duration: int
    work_dir: Path
    sequential_count: int
    scale_sizes: Sequence[int]
    real_users: int = 0
    repeats: int = 1
    versions: dict[str, str] = field(default_factory=dict)
    servers: list[dict[str, str]] = field(default_factory=list)

    @property
    def warmup(self) -> int:
        # wrk takes whole seconds only ("-d1.5s" is a usage error).
        return max(1, min(2, round(self.duration / 3)))

    def record_server(self, server: Server, system: str, note: str = "") -> None:
        """Keep the command line of a server for the report, with the temp dir shown as <tmp>."""
        root = str(Path(__file__).resolve().parent.parent) + "/"
        words = [f"{name}={value}" for name, value in server.env_shown.items()]
        words += [arg.replace(str(self.work_dir), "<tmp>").replace(root, "") for arg in server.command]
        self.servers.append({"system": system, "command": " ".join(words), "note": note})


def measure(system: str, watched: Sequence[int], run: Callable[[], LoadResult]) -> Row:
    """Run one measured load while sampling CPU, RSS and open files of the watched process trees."""
    with Watch(watched) as watch:
        load = run()
    row = Row(system, load, watch.usage())
    log.info(
        "  %-22s %8.0f req/s  p50 %7.2f ms  p99 %7.2f ms  errors %d",
        system, load.rps, load.p50_ms, load.p99_ms, load.errors,
    )
    if load.errors:
        log.warning("  %s had %d failed requests out of %d", system, load.errors, load.requests)
    return row


def expect_status(method: str, url: str, status: int, **kwargs: object) -> httpx.Response:
    """Send one request and raise when the status differs, so that no load run measures error pages."""
    response = httpx.request(method, url, timeout=30, **kwargs)  # type: ignore[arg-type]
    if response.status_code != status:
        raise RuntimeError(f"{method} {url} returned {response.status_code}, expected {status}: {response.text[:300]}")
    return response


def measure_wrk(ctx: Context, system: str, watched: Sequence[int], url: str, **kwargs: object) -> Row:
    """Warm up with the same load for a short while, then measure it `ctx.repeats` times.

    Only the measured runs are watched. The row of the median run by req/s is kept, because on a
    shared machine one run can be slowed by other people's jobs.
    """
    run_wrk(url, duration=ctx.warmup, **kwargs)  # type: ignore[arg-type]
    rows = [
        measure(system, watched, lambda: run_wrk(url, duration=ctx.duration, **kwargs))  # type: ignore[arg-type]
        for _ in range(ctx.repeats)
    ]
    rows.sort(key=lambda row: row.load.rps)
    median = rows[len(rows) // 2]
    if len(rows) > 1:
        median.runs_rps = [row.load.rps for row in rows]
    return median


def measure_users(
    ctx: Context, system: str, pid: int, url: str, tokens: Path, body: str, data_dir: Path
) -> Row:
    """Measure POST /events from many users and count the user files that the measured run created."""
    load = {"method": "POST", "auth": "bearer", "tokens_file": tokens, "body": body}
    run_wrk(url, duration=ctx.warmup, **load)  # type: ignore[arg-type]
    before = aibrain_servers.user_dirs(data_dir)
    row = measure(system, [pid], lambda: run_wrk(url, duration=ctx.duration, **load))  # type: ignore[arg-type]
    after = aibrain_servers.user_dirs(data_dir)
    row.counts = {"user_files": after, "new_user_files": after - before}
    return row


def write_tokens(path: Path, pairs: Sequence[tuple[str, str]]) -> Path:
    path.write_text("".join(f"{token}\t{user}\n" for token, user in pairs))
    return path


# aibrain and Better Auth speak the same auth protocol, so one client serves both.


@dataclass
class AuthUser:
    user_id: str
    session_token: str
    signed_token: str
    jwt: str | None


def sign_up(auth_url: str, email: str) -> AuthUser:
    response = expect_status(
        "POST", f"{auth_url}/api/auth/sign-up/email", 200, json={"name": "Bench", "email": email, "password": PASSWORD}
    )
    body = response.json()
    return AuthUser(
        body["user"]["id"], body["token"], response.headers.get("set-auth-token", body["token"]), body.get("jwt")
    )


def fresh_jwt(auth_url: str, user: AuthUser) -> str:
    response = expect_status(
        "GET", f"{auth_url}/api/auth/token", 200, headers={"Authorization": f"Bearer {user.signed_token}"}
    )
    return str(response.json()["token"])


def run_events(ctx: Context) -> list[Scenario]:
    """Measure creating and listing events on aibrain and PocketBase, and GET /me on aibrain."""
    scenarios = []
    with ExitStack() as running:
        serve, auth_url, api_url = aibrain_servers.start_serve(ctx.work_dir, rate_limit=False)
        running.callback(serve.stop)
        ctx.record_server(
            serve, AIBRAIN,
            f"rate limit off for the sign-ups of the setup, otherwise default settings: {aibrain_servers.worker_note()}",
        )
        api_pid = child_running(serve.pid, "aibrain", "api")
        pb = pocketbase.start(ctx.work_dir)
        running.callback(pb.stop)
        ctx.record_server(pb, f"PocketBase {ctx.versions.get('PocketBase', '')}")

        users = [sign_up(auth_url, f"events{i}@bench.local") for i in range(32)]
        aibrain_tokens = write_tokens(
            ctx.work_dir / "aibrain-jwts.tsv", [(fresh_jwt(auth_url, u), u.user_id) for u in users]
        )
        pb_users = pocketbase.setup(pb, 32)
        pb_tokens = write_tokens(ctx.work_dir / "pb-tokens.tsv", [(u.token, u.id) for u in pb_users])
        first_jwt = aibrain_tokens.read_text().split("\t", 1)[0]
        pb_system = f"PocketBase {ctx.versions['PocketBase']}"

        create = Scenario("create", "Create one event", "POST with a JSON body of about 85 bytes (PocketBase's also carries the user id), 32 connections, 32 users")
        aibrain_body = f'{{"type":"{{type}}","data":{EVENT_DATA}}}'
        pb_body = f'{{"user":"{{user}}","type":"{{type}}","data":{EVENT_DATA}}}'
        expect_status(
            "POST", f"{api_url}/events", 201, headers={"Authorization": f"Bearer {first_jwt}"},
            json={"type": "note", "data": {"n": 0}},
        )
        expect_status(
            "POST", f"{pb.base_url}{pocketbase.CREATE_PATH}", 200, headers={"Authorization": pb_users[0].token},
            json={"user": pb_users[0].id, "type": "note", "data": {"n": 0}},
        )
        log.info("scenario: create event")
        create.rows.append(measure_wrk(
            ctx, AIBRAIN, [api_pid], f"{api_url}/events",
            method="POST", auth="bearer", tokens_file=aibrain_tokens, body=aibrain_body,
        ))
        create.rows.append(measure_wrk(
            ctx, pb_system, [pb.pid], f"{pb.base_url}{pocketbase.CREATE_PATH}",
            method="POST", auth="bearer", tokens_file=pb_tokens, body=pb_body,
        ))
        scenarios.append(create)

        # The create runs wrote a few hundred events per user, but a short run may write fewer than 50 notes.
        seed_events(f"{api_url}/events", [(f"Bearer {jwt}", {}) for jwt, _ in _pairs(aibrain_tokens)])
        seed_events(
            f"{pb.base_url}{pocketbase.CREATE_PATH}", [(f"Bearer {u.token}", {"user": u.id}) for u in pb_users]
        )
        listing = Scenario(
            "list", "List the 50 newest events of one type",
            "GET, 32 connections, 32 users who each own at least 100 events of two types (written by the create "
            "scenario, then 50 of each type more)",
        )
        aibrain_list = f"{api_url}/events?type=note&limit=50"
        pb_list = f"{pb.base_url}{pocketbase.LIST_PATH}"
        _check_page(expect_status("GET", aibrain_list, 200, headers={"Authorization": f"Bearer {first_jwt}"}), "events")
        _check_page(expect_status("GET", pb_list, 200, headers={"Authorization": pb_users[0].token}), "items")
        log.info("scenario: list events")
        listing.rows.append(measure_wrk(ctx, AIBRAIN, [api_pid], aibrain_list, auth="bearer", tokens_file=aibrain_tokens))
        listing.rows.append(measure_wrk(ctx, pb_system, [pb.pid], pb_list, auth="bearer", tokens_file=pb_tokens))
        scenarios.append(listing)

        me = Scenario("me", "GET /me", "GET with a Bearer JWT, 32 connections, 32 users")
        expect_status("GET", f"{api_url}/me", 200, headers={"Authorization": f"Bearer {first_jwt}"})
        log.info("scenario: GET /me")
        me.rows.append(measure_wrk(ctx, AIBRAIN, [api_pid], f"{api_url}/me", auth="bearer", tokens_file=aibrain_tokens))
        scenarios.append(me)
    return scenarios


def _pairs(tokens_file: Path) -> list[tuple[str, str]]:
    return [tuple(line.split("\t", 1)) for line in tokens_file.read_text().splitlines()]  # type: ignore[misc]


def seed_events(url: str, users: Sequence[tuple[str, dict[str, str]]], per_user: int = 50) -> None:
    """POST `per_user` notes and as many tasks for every (authorization, extra body fields) pair."""

    def post(job: tuple[str, dict[str, str], int]) -> None:
        authorization, extra, i = job
        body = {**extra, "type": "note" if i % 2 else "task", "data": {"text": f"seed event {i}", "n": i}}
        response = client.post(url, json=body, headers={"Authorization": authorization})
        if response.status_code not in (200, 201):
            raise RuntimeError(f"seeding POST {url} returned {response.status_code}: {response.text[:200]}")

    jobs = [(authorization, extra, i) for authorization, extra in users for i in range(2 * per_user)]
    with httpx.Client(timeout=30, limits=httpx.Limits(max_connections=8)) as client:
        with ThreadPoolExecutor(max_workers=8) as pool:
            list(pool.map(post, jobs))


def _check_page(response: httpx.Response, key: str) -> None:
    count = len(response.json()[key])
    if count != 50:
        raise RuntimeError(f"expected a page of 50 events before the list scenario, got {count}")


def run_auth(ctx: Context) -> list[Scenario]:
    """Measure sign-up and sign-in latency and get-session and token throughput on aibrain and Better Auth."""
    sign_up_s = Scenario(
        "sign-up", "Sign up (sequential)", f"POST /api/auth/sign-up/email, one connection, up to {ctx.sequential_count} "
        "requests one after another, each with a new email",
    )
    sign_in_s = Scenario(
        "sign-in", "Sign in (sequential)", f"POST /api/auth/sign-in/email, one connection, up to {ctx.sequential_count} "
        "requests one after another over 16 existing users",
    )
    session_s = Scenario(
        "get-session", "Get session", "GET /api/auth/get-session with `Authorization: Bearer <signed session token>`, "
        "16 connections, 16 sessions",
    )
    token_s = Scenario("token", "Get a JWT", "GET /api/auth/token with a Bearer session token, 16 connections, 16 sessions")
    with ExitStack() as running:
        serve, auth_url, _ = aibrain_servers.start_serve(ctx.work_dir, rate_limit=False)
        running.callback(serve.stop)
        ctx.record_server(serve, AIBRAIN, "auth scenarios: rate limit off, otherwise default settings")
        # Only the auth service's processes are watched, not the idle events API beside it.
        peers = [(AIBRAIN, child_running(serve.pid, "aibrain", "auth"), auth_url)]
        if betterauth.available():
            ba = betterauth.start(ctx.work_dir)
            running.callback(ba.stop)
            ba_system = f"Better Auth {ctx.versions['Better Auth']}"
            ctx.record_server(ba, ba_system, "RS256 signing keys, SQLite file, rate limit off")
            peers.append((ba_system, ba.pid, ba.base_url))
        else:
            log.warning("tests/interop/server.mjs or its node_modules is missing: skipping Better Auth")

        for system, pid, url in peers:
            slug = system.split()[0].lower()
            users = [sign_up(url, f"{slug}-user{i}@bench.local") for i in range(16)]
            tokens = write_tokens(ctx.work_dir / f"{slug}-sessions.tsv", [(u.signed_token, u.user_id) for u in users])
            headers = {"Content-Type": "application/json"}
            max_seconds = max(10.0, 2 * ctx.duration)

            def sign_up_request(i: int, slug: str = slug) -> tuple[str, str, dict[str, str], bytes]:
                body = json.dumps({"name": "Bench", "email": f"{slug}-signup{i}@bench.local", "password": PASSWORD})
                return "POST", "/api/auth/sign-up/email", headers, body.encode()

            def sign_in_request(i: int, slug: str = slug) -> tuple[str, str, dict[str, str], bytes]:
                body = json.dumps({"email": f"{slug}-user{i % 16}@bench.local", "password": PASSWORD})
                return "POST", "/api/auth/sign-in/email", headers, body.encode()

            log.info("scenario: sign-up and sign-in, %s", system)
            run_sequential(url, sign_up_request, count=5, max_seconds=max_seconds)  # warm-up
            sign_up_s.rows.append(measure(system, [pid], lambda: run_sequential(
                url, lambda i: sign_up_request(i + 5), count=ctx.sequential_count, max_seconds=max_seconds,
            )))
            run_sequential(url, sign_in_request, count=5, max_seconds=max_seconds)
            sign_in_s.rows.append(measure(system, [pid], lambda: run_sequential(
                url, sign_in_request, count=ctx.sequential_count, max_seconds=max_seconds,
            )))

            log.info("scenario: get-session and token, %s", system)
            bearer = {"Authorization": f"Bearer {users[0].signed_token}"}
            expect_status("GET", f"{url}/api/auth/get-session", 200, headers=bearer)
            expect_status("GET", f"{url}/api/auth/token", 200, headers=bearer)
            session_s.rows.append(measure_wrk(
                ctx, system, [pid], f"{url}/api/auth/get-session", auth="bearer", tokens_file=tokens, connections=16
            ))
            token_s.rows.append(measure_wrk(
                ctx, system, [pid], f"{url}/api/auth/token", auth="bearer", tokens_file=tokens, connections=16
            ))
    return [sign_up_s, sign_in_s, session_s, token_s]


def run_scale(ctx: Context) -> Scenario:
    """Measure POST /events from 1,000 to 100,000 distinct users, each size on a fresh `aibrain api`."""
    scenario = Scenario(
        "users", "Create one event, many distinct users",
        "POST /events, 32 connections, each request from a user drawn at random. Rows named by a number "
        "alone use RS256 JWTs signed with a test key that a JWKS stub serves, on a fresh `aibrain api` and "
        "data dir per size. Signing up 100,000 users for real would cost at least 18 minutes of argon2id "
        "hashing here (100,000 hashes of about 22 ms on 2 threads). "
        "The row with real sign-ups uses JWTs from `aibrain serve`'s own sign-up, as a check on the stub rows",
    )
    largest = max(ctx.scale_sizes)
    log.info("minting %d stub tokens (cached in %s)", largest, ctx.work_dir.parent / "stub-tokens")
    key, _ = stub_tokens.load_or_mint(ctx.work_dir.parent / "stub-tokens", STUB_ISSUER, largest)
    body = f'{{"type":"{{type}}","data":{EVENT_DATA}}}'
    with stub_tokens.serve_jwks(key) as jwks_url:
        for run_number, size in enumerate(ctx.scale_sizes, start=1):
            _, tokens = stub_tokens.load_or_mint(ctx.work_dir.parent / "stub-tokens", STUB_ISSUER, size)
            name = f"aibrain-api-{run_number}-{size}"
            api = aibrain_servers.start_api(ctx.work_dir, jwks_base_url=jwks_url, issuer=STUB_ISSUER, name=name)
            if run_number == 1:
                ctx.record_server(api, AIBRAIN, "many-user runs: `aibrain api` alone with a JWKS stub")
            try:
                first = tokens.read_text().split("\t", 1)[0]
                expect_status("POST", f"{api.base_url}/events", 201, headers={"Authorization": f"Bearer {first}"},
                              json={"type": "note", "data": {}})
                log.info("scenario: %d users", size)
                row = measure_users(
                    ctx, f"{size:,} users", api.pid, f"{api.base_url}/events", tokens, body, ctx.work_dir / f"{name}-data"
                )
                scenario.rows.append(row)
            finally:
                api.stop()
    if ctx.real_users:
        scenario.rows.append(_scale_with_real_users(ctx, ctx.real_users, body))
    return scenario


def _scale_with_real_users(ctx: Context, count: int, body: str) -> Row:
    """Sign up `count` users on `aibrain serve` and let them all write, to check the stub runs against it."""
    serve, auth_url, api_url = aibrain_servers.start_serve(ctx.work_dir / "real-users", rate_limit=False)
    try:
        log.info("signing up %d users on aibrain", count)
        with ThreadPoolExecutor(max_workers=4) as pool:
            users = list(pool.map(lambda i: sign_up(auth_url, f"many{i}@bench.local"), range(count)))
        pairs = [(user.jwt or fresh_jwt(auth_url, user), user.user_id) for user in users]
        tokens = write_tokens(ctx.work_dir / "real-users-jwts.tsv", pairs)
        expect_status("POST", f"{api_url}/events", 201, headers={"Authorization": f"Bearer {pairs[0][0]}"},
                      json={"type": "note", "data": {}})
        log.info("scenario: %d signed-up users", count)
        row = measure_users(
            ctx, f"{count:,} users, real sign-ups", child_running(serve.pid, "aibrain", "api"), f"{api_url}/events",
            tokens, body, ctx.work_dir / "real-users" / "aibrain-data",
        )
        return row
    finally:
        serve.stop()
