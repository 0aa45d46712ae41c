"""Start, watch and stop the server processes of a benchmark.

Every process is started by this module and stopped by its PID (and the PIDs of its
descendants), never by name, because other people run servers on the same machine.
CPU time, RSS and open file descriptors are read from /proc, so this module is Linux-only.
"""

from __future__ import annotations

import json
import logging
import os
import signal
import socket
import subprocess
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import httpx

log = logging.getLogger(__name__)

CLOCK_TICKS = os.sysconf("SC_CLK_TCK")
PAGE_SIZE = os.sysconf("SC_PAGE_SIZE")


def free_port() -> int:
    """Return a loopback port that was free a moment ago (bind port 0 and read it back)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _children_by_parent() -> dict[int, list[int]]:
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            stat = Path(f"/proc/{entry}/stat").read_text()
        except OSError:
            continue
        # The command name in field 2 may contain spaces and parentheses, so split after the last ")".
        parent = int(stat.rsplit(")", 1)[1].split()[1])
        children.setdefault(parent, []).append(int(entry))
    return children


def process_tree(pid: int) -> list[int]:
    """Return `pid` and all of its live descendants."""
    children = _children_by_parent()
    tree, pending = [], [pid]
    while pending:
        current = pending.pop()
        tree.append(current)
        pending.extend(children.get(current, []))
    return tree


def command_line(pid: int) -> list[str]:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().decode(errors="replace").split("\0")[:-1]
    except OSError:
        return []


def child_running(root: int, *args: str) -> int:
    """Return the PID of the first child of `root` whose command line ends with `args`."""
    for pid in process_tree(root)[1:]:
        if tuple(command_line(pid)[-len(args):]) == args:
            return pid
    raise RuntimeError(f"pid {root} has no child running {' '.join(args)}")


def start_time(pid: int) -> int | None:
    """Return the start time of a process in clock ticks since boot, or None if it has exited."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return None
    # fields[19] is proc(5) field 22, starttime.
    return int(fields[19])


def cpu_seconds(pid: int) -> float:
    """Return user plus system CPU seconds used so far by one process (0 if it has exited)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    # After the command name: fields[11] is utime and fields[12] is stime (proc(5) fields 14 and 15).
    return (int(fields[11]) + int(fields[12])) / CLOCK_TICKS


def machine_busy_seconds() -> float:
    """Return the CPU seconds all cores have spent busy since boot (the "cpu" line of /proc/stat)."""
    fields = [int(value) for value in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    # The fields are user, nice, system, idle, iowait, irq, softirq and steal. All but idle and iowait are busy.
    busy = fields[0] + fields[1] + fields[2] + fields[5] + fields[6] + fields[7]
    return busy / CLOCK_TICKS


def rss_bytes(pid: int) -> int:
    try:
        return int(Path(f"/proc/{pid}/statm").read_text().split()[1]) * PAGE_SIZE
    except OSError:
        return 0


def open_fds(pid: int) -> int:
    try:
        return len(os.listdir(f"/proc/{pid}/fd"))
    except OSError:
        return 0


@dataclass
class Usage:
    """Resources a process tree used during one measured interval."""

    cpu_seconds: float
    peak_rss_bytes: int
    peak_open_fds: int
    processes: int
    # Busy CPU seconds of the whole machine, of this benchmark process, and the interval's length.
    machine_cpu_seconds: float = 0.0
    own_cpu_seconds: float = 0.0
    wall_seconds: float = 0.0


class Watch:
    """Sample a process tree's RSS and open file descriptors while a scenario runs.

    CPU comes from utime + stime deltas of every process seen in the tree. Processes that exit
    during the interval lose their last ticks, which undercounts CPU slightly.
    """

    def __init__(self, root_pids: Sequence[int], interval: float = 0.1) -> None:
        self._roots = list(root_pids)
        self._interval = interval
        self._start_cpu: dict[int, float] = {}
        self._last_cpu: dict[int, float] = {}
        self._peak_rss = 0
        self._peak_fds = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _pids(self) -> list[int]:
        return [pid for root in self._roots for pid in process_tree(root)]

    def _sample(self) -> None:
        pids = self._pids()
        for pid in pids:
            seconds = cpu_seconds(pid)
            self._start_cpu.setdefault(pid, seconds)
            self._last_cpu[pid] = max(seconds, self._last_cpu.get(pid, 0.0))
        self._peak_rss = max(self._peak_rss, sum(rss_bytes(pid) for pid in pids))
        self._peak_fds = max(self._peak_fds, sum(open_fds(pid) for pid in pids))

    def _run(self) -> None:
        while not self._stop.wait(self._interval):
            self._sample()

    def __enter__(self) -> Watch:
        self._sample()
        self._machine = -machine_busy_seconds()
        self._own = -time.process_time()
        self._wall = -time.monotonic()
        self._thread.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._stop.set()
        self._thread.join()
        self._machine += machine_busy_seconds()
        self._own += time.process_time()
        self._wall += time.monotonic()
        self._sample()

    def usage(self) -> Usage:
        cpu = sum(self._last_cpu[pid] - self._start_cpu[pid] for pid in self._last_cpu)
        return Usage(
            cpu, self._peak_rss, self._peak_fds, len(self._last_cpu), self._machine, self._own, self._wall
        )


@dataclass
class Server:
    """A server process this benchmark started, with the address it listens on."""

    name: str
    process: subprocess.Popen[bytes]
    port: int
    log_path: Path
    command: list[str]
    env_shown: dict[str, str] = field(default_factory=dict)

    @property
    def pid(self) -> int:
        return self.process.pid

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def stop(self, timeout: float = 10.0) -> None:
        """Send SIGTERM to the server, wait, then SIGKILL whatever is left of its tree by PID.

        A descendant is killed only while its start time is the one seen before SIGTERM, so a PID
        that the kernel gave to another process in the meantime is left alone.
        """
        if self.process.poll() is not None:
            return
        tree = {pid: start_time(pid) for pid in process_tree(self.pid)[1:]}
        self.process.send_signal(signal.SIGTERM)
        try:
            self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            log.warning("%s (pid %d) ignored SIGTERM for %.0f s, killing it", self.name, self.pid, timeout)
            self.process.kill()
            self.process.wait(timeout)
        for pid, started in tree.items():
            if started is not None and start_time(pid) == started:
                log.warning("%s left pid %d running, killing it", self.name, pid)
                try:
                    os.kill(pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass


def start_server(
    name: str,
    command: Sequence[str],
    port: int,
    log_dir: Path,
    ready: Callable[[], bool],
    env: Mapping[str, str] | None = None,
    env_shown: Mapping[str, str] | None = None,
    cwd: Path | None = None,
    timeout: float = 60.0,
) -> Server:
    """Start `command` with its output in `log_dir/<name>.log` and wait until `ready()` is true.

    `env` is added to this process's environment. `env_shown` is the part worth printing in the
    report (no secrets). Raises RuntimeError with the log's tail when the process exits or the
    timeout passes first.
    """
    log_path = log_dir / f"{name}.log"
    full_env = {**os.environ, **(env or {})}
    with log_path.open("wb") as log_file:
        process = subprocess.Popen(
            list(command), stdout=log_file, stderr=subprocess.STDOUT, env=full_env, cwd=cwd
        )
    server = Server(name, process, port, log_path, list(command), dict(env_shown or {}))
    try:
        _wait_until_ready(server, ready, timeout)
    except BaseException:
        # Whatever went wrong, Ctrl-C included, the process must not outlive this call.
        server.stop()
        raise
    log.info("%s ready on port %d (pid %d)", name, port, process.pid)
    return server


def _wait_until_ready(server: Server, ready: Callable[[], bool], timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if server.process.poll() is not None:
            raise RuntimeError(
                f"{server.name} exited with code {server.process.returncode}:\n{_tail(server.log_path)}"
            )
        try:
            if ready():
                return
        except (OSError, httpx.TransportError):
            pass  # not listening yet
        time.sleep(0.1)
    raise RuntimeError(f"{server.name} was not ready after {timeout:.0f} s:\n{_tail(server.log_path)}")


def _tail(path: Path, lines: int = 30) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no log)"


def read_json_line(path: Path, key: str) -> dict[str, object] | None:
    """Return the first JSON object line in a log file that has `key`, or None."""
    try:
        text = path.read_text(errors="replace")
    except OSError:
        return None
    for line in text.splitlines():
        line = line.strip()
        if line.startswith("{") and key in line:
            try:
                value = json.loads(line)
            except ValueError:
                continue
            if isinstance(value, dict) and key in value:
                return value
    return None
