"""Run every benchmark and write docs/benchmarks.md: `python -m benchmarks [--duration S] [--only ...]`."""

from __future__ import annotations

import argparse
import dataclasses
import json
import logging
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from importlib import metadata
from pathlib import Path

from benchmarks import betterauth, micro, pocketbase, report
from benchmarks.loadgen import ensure_wrk, wrk_version
from benchmarks.scenarios import Context, Scenario, run_auth, run_events, run_scale

log = logging.getLogger("benchmarks")

ROOT = Path(__file__).resolve().parent.parent
REQUIREMENTS = Path(__file__).with_name("requirements.txt")
WORK_ROOT = Path(__file__).with_name(".work")
GROUPS = ("events", "auth", "users", "micro")


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m benchmarks", description=__doc__)
    parser.add_argument("--duration", type=int, default=5, help="whole seconds each throughput run is measured (default 5)")
    parser.add_argument(
        "--repeats", type=int, default=3,
        help="measured runs per throughput row; the median run by req/s is kept (default 3)",
    )
    parser.add_argument(
        "--sequential-count", type=int, default=200,
        help="maximum requests of a sequential sign-up or sign-in run, which also stops after max(10, 2 × duration) s",
    )
    parser.add_argument(
        "--only", default=",".join(GROUPS), help=f"comma-separated groups to run, from {', '.join(GROUPS)} (default all)"
    )
    parser.add_argument(
        "--users", default="1000,10000,100000", help="comma-separated user counts of the many-user runs"
    )
    parser.add_argument(
        "--real-users", type=int, default=1000,
        help="users signed up for real on `aibrain serve` for one more many-user run (0 skips it)",
    )
    parser.add_argument("--output", type=Path, default=ROOT / "docs" / "benchmarks.md", help="Markdown report path")
    parser.add_argument("--note", default="", help="sentence added under the machine description, e.g. who else ran")
    parser.add_argument("--keep", action="store_true", help="keep the temp data dirs and server logs after the run")
    args = parser.parse_args(argv)
    unknown = set(args.only.split(",")) - set(GROUPS)
    if unknown:
        parser.error(f"unknown group(s) {', '.join(sorted(unknown))}: choose from {', '.join(GROUPS)}")
    if args.duration < 1 or args.repeats < 1 or args.sequential_count < 1 or args.real_users < 0:
        parser.error("--duration, --repeats and --sequential-count must be at least 1, --real-users at least 0")
    try:
        sizes = [int(size) for size in args.users.split(",")]
    except ValueError:
        parser.error(f"invalid --users {args.users!r}: expected comma-separated integers such as 1000,10000")
    if min(sizes) < 1:
        parser.error(f"invalid --users {args.users!r}: every user count must be at least 1")
    return args


def ensure_requirements() -> None:
    """Install benchmarks/requirements.txt into this interpreter's environment unless already there."""
    missing = []
    for line in REQUIREMENTS.read_text().splitlines():
        line = line.split("#", 1)[0].strip()
        if not line:
            continue
        name, _, version = line.partition("==")
        try:
            if metadata.version(name) == version:
                continue
        except metadata.PackageNotFoundError:
            pass
        missing.append(line)
    if missing:
        log.info("installing %s", " ".join(missing))
        subprocess.run([sys.executable, "-m", "pip", "install", "--quiet", *missing], check=True)


def machine() -> dict[str, str]:
    cpuinfo = Path("/proc/cpuinfo").read_text()
    model = next((line.split(":", 1)[1].strip() for line in cpuinfo.splitlines() if line.startswith("model name")), "?")
    memory_kib = next(
        int(line.split()[1]) for line in Path("/proc/meminfo").read_text().splitlines() if line.startswith("MemTotal")
    )
    return {
        "cores": str(os.cpu_count()),
        "CPU model (/proc/cpuinfo)": model,
        "memory": f"{memory_kib / 1024 / 1024:.0f} GiB",
        "kernel": platform.release(),
    }


def versions() -> dict[str, str]:
    found = {
        "aibrain": _git_revision(),
        "Python": platform.python_version(),
    }
    for package in ("granian", "starlette", "uvloop", "joserfc", "argon2-cffi", "msgspec", "SQLAlchemy"):
        try:
            found[package] = metadata.version(package)
        except metadata.PackageNotFoundError:
            pass
    found["PocketBase"] = pocketbase.version()
    if betterauth.available():
        found["Better Auth"] = betterauth.version()
        found["Node.js"] = betterauth.node_version()
    found["wrk"] = wrk_version()
    return found


def _git_revision() -> str:
    result = subprocess.run(["git", "-C", str(ROOT), "rev-parse", "--short", "HEAD"], capture_output=True, text=True)
    dirty = subprocess.run(["git", "-C", str(ROOT), "status", "--porcelain", "src"], capture_output=True, text=True)
    revision = result.stdout.strip() or "unknown"
    return f"{revision} (src/ has uncommitted changes)" if dirty.stdout.strip() else revision


def _load_average() -> str:
    return " ".join(Path("/proc/loadavg").read_text().split()[:3])


def main(argv: list[str] | None = None) -> int:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s", datefmt="%H:%M:%S")
    logging.getLogger("httpx").setLevel(logging.WARNING)
    args = parse_args(argv)
    groups = args.only.split(",")

    ensure_requirements()
    ensure_wrk()
    WORK_ROOT.mkdir(exist_ok=True)
    work_dir = Path(tempfile.mkdtemp(prefix="run-", dir=WORK_ROOT))
    ctx = Context(
        duration=args.duration,
        work_dir=work_dir,
        sequential_count=args.sequential_count,
        scale_sizes=[int(size) for size in args.users.split(",")],
        real_users=args.real_users,
        repeats=args.repeats,
        versions=versions(),
    )
    info = machine()
    info["load average (1, 5, 15 min) before the run"] = _load_average()
    started = time.time()

    scenarios: list[Scenario] = []
    failures: list[str] = []
    micro_result = None
    runners = {
        "events": lambda: scenarios.extend(run_events(ctx)),
        "auth": lambda: scenarios.extend(run_auth(ctx)),
        "users": lambda: scenarios.append(run_scale(ctx)),
    }
    for group in groups:
        if group == "micro":
            log.info("micro-benchmark: token verification")
            try:
                micro_result = micro.run()
            except ImportError as exc:
                failures.append(f"micro: the API's verifier could not be imported ({exc})")
            continue
        try:
            runners[group]()
        except Exception as exc:  # one broken group must not lose the others' results
            log.exception("group %s failed", group)
            failures.append(f"{group}: {exc}".splitlines()[0])

    info["load average after the run"] = _load_average()
    info["run time"] = f"{(time.time() - started) / 60:.1f} min"
    if args.note:
        info["note"] = args.note
    command = "python -m benchmarks" + "".join(f" {arg}" for arg in (argv if argv is not None else sys.argv[1:]))
    text = report.render(ctx, scenarios, micro_result, info, command)
    if failures:
        text += "\n## Failed groups\n\n" + "\n".join(f"- {failure}" for failure in failures) + "\n"
    output = args.output
    if failures:
        # A broken run must not replace the published page, so its report goes beside the temp data.
        output = WORK_ROOT / "benchmarks-failed.md"
        log.error("%d group(s) failed, so %s is unchanged; this run's report is %s", len(failures), args.output, output)
    output.parent.mkdir(parents=True, exist_ok=True)
    output.write_text(text)
    (WORK_ROOT / "results.json").write_text(
        json.dumps({"scenarios": [dataclasses.asdict(s) for s in scenarios],
                    "micro": dataclasses.asdict(micro_result) if micro_result else None,
                    "machine": info, "versions": ctx.versions, "failures": failures}, indent=2)
    )
    log.info("wrote %s", output)
    if not args.keep:
        shutil.rmtree(work_dir, ignore_errors=True)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
