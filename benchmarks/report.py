"""Render the benchmark results as docs/benchmarks.md."""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass

from benchmarks.micro import MicroResult
from benchmarks.scenarios import AIBRAIN, Context, Row, Scenario

MIB = 1024 * 1024

# "Open files bounded" means that the largest run keeps at most 10 % more files open than the smallest.
# The API closes its least recently used per-user stores, so the count must not grow with users.
FD_GROWTH = 1.1


@dataclass
class Target:
    name: str
    goal: str
    measured: str
    met: bool | None  # None: not measured in this run


def _ms(value: float) -> str:
    return f"{value:.2f}" if value < 10 else f"{value:.1f}"


def _cpu_per_request(row: Row) -> str:
    if not row.load.requests:
        return "n/a"
    return f"{row.usage.cpu_seconds / row.load.requests * 1000:.3f}"


def other_cpu_share(row: Row) -> float:
    """Return the share of the machine's CPU that processes other than this row's server and client used."""
    usage = row.usage
    if not usage.wall_seconds:
        return 0.0
    client = row.load.client_cpu_seconds if row.load.separate_client else 0.0
    other = usage.machine_cpu_seconds - usage.cpu_seconds - usage.own_cpu_seconds - client
    return max(0.0, other) / (usage.wall_seconds * (os.cpu_count() or 1))


def _client_cpu(row: Row) -> str:
    return f"{row.load.client_cpu_seconds / row.load.seconds * 100:.0f} %" if row.load.seconds else "n/a"


def _ratio(value: float | None) -> str:
    return f"{value:.2f}×" if value is not None else "n/a"


def _times(repeats: int) -> str:
    if repeats == 1:
        return "once"
    return f"{repeats} times in a row, and the table shows the median run by req/s"


def _share(part: int, whole: int) -> str:
    # Requests still running when wrk stopped can add a few folders after the count of completed
    # requests was taken, so the share is capped at 100 %.
    return f"{min(part / whole, 1) * 100:.0f} %" if whole else "n/a"


def rps_ratio(scenario: Scenario | None) -> float | None:
    """Return aibrain's req/s divided by the first peer's, or None when either is missing."""
    if scenario is None or len(scenario.rows) < 2 or AIBRAIN != scenario.rows[0].system:
        return None
    peer = scenario.rows[1].load.rps
    return scenario.rows[0].load.rps / peer if peer else None


def scenario_table(scenario: Scenario) -> list[str]:
    lines = [
        f"### {scenario.title}",
        "",
        scenario.method + ".",
        "",
        "| system | requests | req/s | p50 ms | p99 ms | server CPU ms/request | server peak RSS MiB "
        "| load generator CPU | other processes' CPU | errors | aibrain/peer req/s |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    base = scenario.rows[0].load.rps if scenario.rows else 0
    for row in scenario.rows:
        ratio = "" if row.system == AIBRAIN or not row.load.rps else _ratio(base / row.load.rps)
        lines.append(
            f"| {row.system} | {row.load.requests:,} | {row.load.rps:,.0f} | {_ms(row.load.p50_ms)} "
            f"| {_ms(row.load.p99_ms)} | {_cpu_per_request(row)} | {row.usage.peak_rss_bytes / MIB:.0f} "
            f"| {_client_cpu(row)} | {other_cpu_share(row) * 100:.0f} % | {row.load.errors} | {ratio} |"
        )
    lines.append("")
    for row in scenario.rows:
        if row.runs_rps:
            runs = ", ".join(f"{rps:,.0f}" for rps in row.runs_rps)
            lines.append(f"{row.system}: median of {len(row.runs_rps)} runs, which gave {runs} req/s.")
            lines.append("")
    lines += [f"Command (last row): `{scenario.rows[-1].load.command}`" if scenario.rows else "", ""]
    return lines


def scale_table(scenario: Scenario) -> list[str]:
    lines = [
        f"### {scenario.title}",
        "",
        scenario.method + ".",
        "",
        "| users | requests | req/s | p50 ms | p99 ms | p99 ÷ first size | server CPU ms/request "
        "| peak RSS MiB | peak open fds | user files at the end | requests that created a user file "
        "| other processes' CPU | errors |",
        "|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    first_p99 = scenario.rows[0].load.p99_ms if scenario.rows else 0
    for row in scenario.rows:
        ratio = _ratio(row.load.p99_ms / first_p99) if first_p99 else "n/a"
        lines.append(
            f"| {row.system.replace(' users', '', 1)} | {row.load.requests:,} | {row.load.rps:,.0f} "
            f"| {_ms(row.load.p50_ms)} | {_ms(row.load.p99_ms)} | {ratio} | {_cpu_per_request(row)} "
            f"| {row.usage.peak_rss_bytes / MIB:.0f} | {row.usage.peak_open_fds} "
            f"| {row.counts.get('user_files', 0):,} | {_share(row.counts.get('new_user_files', 0), row.load.requests)} "
            f"| {other_cpu_share(row) * 100:.0f} % | {row.load.errors} |"
        )
    lines += ["", f"Command (last row): `{scenario.rows[-1].load.command}`" if scenario.rows else "", ""]
    return lines


def targets(scenarios: dict[str, Scenario], micro: MicroResult | None) -> list[Target]:
    found: list[Target] = []

    for key, name in (("create", "create event"), ("list", "list 50 newest")):
        ratio = rps_ratio(scenarios.get(key))
        found.append(Target(f"{name} vs PocketBase", "≥ 2× req/s", _ratio(ratio), None if ratio is None else ratio >= 2))

    sign_in = scenarios.get("sign-in")
    own = sign_in.row(AIBRAIN) if sign_in else None
    if own is not None:
        found.append(Target("sign-in p50", "≤ 25 ms", f"{own.load.p50_ms:.1f} ms", own.load.p50_ms <= 25))
    else:
        found.append(Target("sign-in p50", "≤ 25 ms", "n/a", None))
    peer = sign_in.rows[1] if sign_in and len(sign_in.rows) > 1 else None
    speedup = peer.load.p50_ms / own.load.p50_ms if own and peer and own.load.p50_ms else None
    found.append(Target("sign-in vs Better Auth", "p50 ≥ 4× faster", _ratio(speedup), None if speedup is None else speedup >= 4))

    for key in ("get-session", "token"):
        ratio = rps_ratio(scenarios.get(key))
        found.append(Target(f"{key} vs Better Auth", "≥ 2× req/s", _ratio(ratio), None if ratio is None else ratio >= 2))

    if micro is not None:
        found.append(Target(
            "repeated-token verification (`cached`)", "< 1 µs", f"{micro.cached_sync_us:.2f} µs", micro.cached_sync_us < 1
        ))
        found.append(Target("cold-token verification", "< 70 µs", f"{micro.cold_us:.1f} µs", micro.cold_us < 70))
    else:
        found.append(Target("token verification", "cached < 1 µs, cold < 70 µs", "not measured", None))

    users = scenarios.get("users")
    stub_rows = [row for row in users.rows if row.system.endswith(" users")] if users else []
    if len(stub_rows) >= 2:
        first, last = stub_rows[0], stub_rows[-1]
        fds, base = last.usage.peak_open_fds, first.usage.peak_open_fds
        found.append(Target(
            f"{last.system}: open files", f"≤ {FD_GROWTH:g} × the {first.system} run ({base})", str(fds),
            fds <= FD_GROWTH * base,
        ))
        ratio = last.load.p99_ms / first.load.p99_ms if first.load.p99_ms else None
        found.append(Target(f"{last.system}: p99 vs {first.system}", "≤ 2×", _ratio(ratio), None if ratio is None else ratio <= 2))
    return found


def _sharing(scenarios: Sequence[Scenario]) -> list[str]:
    """Say how busy other processes kept the machine during the measured runs."""
    shares = [other_cpu_share(row) for scenario in scenarios for row in scenario.rows]
    if not shares:
        return []
    mean, peak = sum(shares) / len(shares), max(shares)
    verdict = (
        "The machine was shared: other processes competed with the measured runs, so the numbers are lower "
        "and noisier than on an idle machine."
        if peak >= 0.05
        else "Other processes stayed below 5 % of the machine's CPU during every measured run."
    )
    return [
        f"- other processes' CPU during the measured runs: {mean * 100:.0f} % of the machine on average, "
        f"{peak * 100:.0f} % in the busiest run",
        "",
        verdict,
    ]


def render(
    ctx: Context, scenarios: Sequence[Scenario], micro: MicroResult | None, machine: dict[str, str], command: str
) -> str:
    """Return the whole Markdown page: targets, machine, method, servers, then one table per scenario."""
    by_key = {scenario.key: scenario for scenario in scenarios}
    lines = [
        "# Benchmarks",
        "",
        "aibrain's two services beside PocketBase (events) and Better Auth (auth), all on one machine. "
        f"This page was generated by `{command}`. Each throughput scenario warms up for "
        f"{ctx.warmup:g} s and then measures for {ctx.duration:g} s, {_times(ctx.repeats)}. "
        "The many-user runs measure once, because every run adds user files and changes what the next "
        "one measures.",
        "",
        "To run it again, use `make bench`, which installs the Python and Node packages and then runs "
        "`.venv/bin/python -m benchmarks`. The benchmark installs its own pinned packages "
        "(`benchmarks/requirements.txt`) and wrk (`apt-get install -y wrk`, as root) when they are missing, "
        "starts every server on free loopback ports and stops them by PID at the end. "
        "`python -m benchmarks --help` lists the options (`--duration`, `--only`, `--users`, `--real-users`).",
        "",
        "## Targets",
        "",
        "| target | goal | measured | met |",
        "|---|---|---|---|",
    ]
    for target in targets(by_key, micro):
        verdict = {True: "met", False: "**not met**", None: "not measured"}[target.met]
        lines.append(f"| {target.name} | {target.goal} | {target.measured} | {verdict} |")

    lines += ["", "## Machine", ""]
    lines += [f"- {name}: {value}" for name, value in machine.items()]
    lines += _sharing(scenarios)
    lines += [
        "",
        "Client and server share the same cores: wrk runs with one thread pinned to CPU 1 "
        "(`taskset -c 1`), and the servers are not pinned, so they use both cores, CPU 1 included. "
        "Requests per second are therefore lower than on a machine where the load generator has its own "
        "cores, for every system alike.",
        "",
        "## How to read the tables",
        "",
        "- req/s, p50 and p99 come from wrk (throughput scenarios) or from a sequential Python client over "
        "one keep-alive connection (sign-up and sign-in). Latency is from sending a request to reading its "
        "whole response.",
        "- Server CPU per request is the change in utime + stime (from `/proc/<pid>/stat`) of every process "
        "in the server's process tree during the measured run, divided by the requests completed.",
        "- Peak RSS is the largest sum of the tree's resident memory, sampled every 100 ms during the run.",
        "- Load generator CPU is wrk's own user + system time over the run, as a share of one core.",
        "- Other processes' CPU is the busy time of the whole machine (`/proc/stat`) during the run, less "
        "the server's, the load generator's and this benchmark's own, as a share of all cores. It shows "
        "how much other people's jobs (and idle servers of this benchmark) competed with a run.",
        "- Errors count socket errors, timeouts and responses with status 400 or above. Every run starts "
        "only after one request of the same kind got the expected status.",
        "- The ratio column is aibrain's req/s divided by that peer's (above 1 means aibrain is faster). "
        "For the sequential scenarios req/s is the number of requests divided by the run's length.",
        "- In the many-user table, \"requests that created a user file\" is the number of per-user "
        "folders that appeared during the measured run divided by its requests. Such a request pays for "
        "creating a SQLite file, while the others reopen an existing file or find it open.",
        "",
        "## Servers and versions",
        "",
    ]
    for server in ctx.servers:
        note = f" ({server['note']})" if server["note"] else ""
        lines.append(f"- {server['system']}{note}: `{server['command']}`")
    lines += [""]
    lines += [f"- {name} {version}" for name, version in ctx.versions.items()]
    lines += ["", "## Results", ""]
    for scenario in scenarios:
        lines += scale_table(scenario) if scenario.key == "users" else scenario_table(scenario)
    if micro is not None:
        lines += micro.markdown()
    return "\n".join(lines).rstrip() + "\n"
