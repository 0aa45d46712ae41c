"""Benchmarks of aibrain beside PocketBase and Better Auth; run with `python -m benchmarks`."""
