"""Drive HTTP load: wrk for throughput, a sequential Python client for per-request latency."""

from __future__ import annotations

import http.client
import json
import logging
import os
import shutil
import statistics
import subprocess
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

log = logging.getLogger(__name__)

LUA_SCRIPT = Path(__file__).with_name("lua") / "load.lua"

# wrk runs on this core alone. The servers are not pinned, so they use both cores and share
# core 1 with wrk, which means that on a 2-core machine client and server compete for CPU time.
WRK_CPU = "1"


def ensure_wrk() -> str:
    """Return the path of wrk, installing Debian's package when it is missing and this process runs as root."""
    path = shutil.which("wrk")
    if path:
        return path
    if os.geteuid() != 0:
        raise RuntimeError("wrk is missing: install it with `apt-get install -y wrk` and run again")
    log.info("installing wrk with apt-get")
    subprocess.run(["apt-get", "install", "-y", "-q", "wrk"], check=True, stdout=subprocess.DEVNULL)
    path = shutil.which("wrk")
    if not path:
        raise RuntimeError("apt-get install wrk finished but wrk is still not on PATH")
    return path


def wrk_version() -> str:
    result = subprocess.run([ensure_wrk(), "--version"], capture_output=True, text=True)
    first_line = (result.stdout or result.stderr).splitlines()[0]
    return first_line.split(" Copyright")[0].removeprefix("wrk ").strip()


@dataclass
class LoadResult:
    """Client-side view of one measured run."""

    requests: int
    seconds: float
    errors: int
    p50_ms: float
    p99_ms: float
    client_cpu_seconds: float
    command: str
    # False when the client ran inside this process, whose CPU time is then counted once, as its own.
    separate_client: bool = True

    @property
    def rps(self) -> float:
        return self.requests / self.seconds if self.seconds else 0.0


def run_wrk(
    url: str,
    *,
    method: str = "GET",
    auth: str = "none",
    tokens_file: Path | None = None,
    body: str | None = None,
    connections: int = 32,
    duration: int = 5,
) -> LoadResult:
    """Run wrk with one thread pinned to WRK_CPU and return its counts and latency percentiles.

    `errors` counts socket errors, timeouts and responses with status >= 400.
    """
    parts = urlsplit(url)
    path = parts.path + (f"?{parts.query}" if parts.query else "")
    base = f"{parts.scheme}://{parts.netloc}"
    script_args = [method, path, auth, str(tokens_file) if tokens_file else "-"]
    if body is not None:
        script_args.append(body)
    command = [
        "taskset", "-c", WRK_CPU, ensure_wrk(), "-t1", f"-c{connections}", f"-d{duration}s",
        "--timeout", "10s", "-s", str(LUA_SCRIPT), base, "--", *script_args,
    ]
    with tempfile.TemporaryFile() as output:
        process = subprocess.Popen(command, stdout=output, stderr=subprocess.STDOUT)
        _, status, usage = os.wait4(process.pid, 0)
        process.returncode = os.waitstatus_to_exitcode(status)
        output.seek(0)
        text = output.read().decode(errors="replace")
    if process.returncode != 0:
        raise RuntimeError(f"wrk failed with code {process.returncode}:\n{text}")
    summary = _last_json_line(text)
    errors = summary["errors"]
    return LoadResult(
        requests=summary["requests"],
        seconds=summary["duration_us"] / 1e6,
        errors=sum(errors.values()),
        p50_ms=summary["p50_us"] / 1000,
        p99_ms=summary["p99_us"] / 1000,
        client_cpu_seconds=usage.ru_utime + usage.ru_stime,
        command=_shell_line(command, tokens_file),
    )


def _last_json_line(text: str) -> dict:
    for line in reversed(text.splitlines()):
        if line.startswith("{"):
            return json.loads(line)
    raise RuntimeError(f"wrk printed no summary line:\n{text}")


def _shell_line(command: Sequence[str], tokens_file: Path | None) -> str:
    display_args = []
    for arg in command:
        if tokens_file is not None and arg == str(tokens_file):
            arg = "TOKENS.tsv"
        elif arg == str(LUA_SCRIPT):
            arg = "benchmarks/lua/load.lua"
        elif arg.startswith("/") and arg.endswith("/wrk"):
            arg = "wrk"
        display_args.append(f"'{arg}'" if any(c in arg for c in " {}\"?&=$'") else arg)
    return " ".join(display_args)


def run_sequential(
    url: str,
    make_request: Callable[[int], tuple[str, str, dict[str, str], bytes | None]],
    *,
    count: int,
    max_seconds: float,
    expect_status: int = 200,
) -> LoadResult:
    """Send up to `count` requests one after another on one keep-alive connection.

    `make_request(i)` returns (method, path, headers, body) for the i-th request. The run stops
    early once `max_seconds` have passed, so a slow server still finishes in bounded time.
    Latency is measured from sending the request to reading the whole body.
    """
    parts = urlsplit(url)
    connection = http.client.HTTPConnection(parts.hostname, parts.port, timeout=30)
    # The client runs on wrk's core, like wrk does, and goes back to its old CPUs afterwards.
    cpus = os.sched_getaffinity(0)
    os.sched_setaffinity(0, {int(WRK_CPU)})
    latencies: list[float] = []
    errors = 0
    cpu_before = time.process_time()
    started = time.perf_counter()
    try:
        for i in range(count):
            if time.perf_counter() - started > max_seconds:
                break
            method, path, headers, body = make_request(i)
            sent = time.perf_counter_ns()
            connection.request(method, path, body=body, headers=headers)
            response = connection.getresponse()
            response.read()
            latencies.append((time.perf_counter_ns() - sent) / 1e6)
            if response.status != expect_status:
                errors += 1
                if errors == 1:
                    log.warning("%s %s returned %d, expected %d", method, path, response.status, expect_status)
    finally:
        connection.close()
        os.sched_setaffinity(0, cpus)
    elapsed = time.perf_counter() - started
    return LoadResult(
        requests=len(latencies),
        seconds=elapsed,
        errors=errors,
        p50_ms=statistics.median(latencies) if latencies else 0.0,
        p99_ms=_percentile(latencies, 99),
        client_cpu_seconds=time.process_time() - cpu_before,
        command=f"sequential http.client loop pinned to CPU {WRK_CPU}: at most {count} requests or {max_seconds:g} s",
        separate_client=False,
    )


def _percentile(values: list[float], percent: float) -> float:
    """Return the nearest-rank percentile, as wrk reports it."""
    if not values:
        return 0.0
    ordered = sorted(values)
    rank = max(1, -(-len(ordered) * percent // 100))
    return ordered[int(rank) - 1]
