#!/usr/bin/env python3
"""Checks the JSON of the CI's latency smoke run (scripts/test.sh): each
setting measured twice with its summary, every figure the docs read
present, and the broker's threads back at their own priority afterwards.
It checks that the benchmark works, not how fast anything is."""
import json
import pathlib
import sys

figures = json.load(open(sys.argv[1]))
run = figures["latency_at"][0]
assert run["records"] >= 300 and run["p99_ms"] is not None and run["worker"]["p99_ms"] is not None, run
assert run["warm_up"]["seconds"] > 0, run
assert sorted(run["worker_stages"]) == ["buffered", "lane", "placing"], run
# The scheduler's account: the worker and Postgres ran during the phase,
# so each has a wait per second run (zero or more), and a mean wait.
waits = run["core_waits"]
for name in ("postgres", "worker", "broker", "load"):
    assert waits[name]["waited_per_run"] is not None and waits[name]["waited_per_run"] >= 0, waits
    assert waits[name]["mean_wait_ms"] is not None and waits[name]["mean_wait_ms"] >= 0, waits

summary = [s for s in figures["summary"] if "runs" in s]
assert [s["variant"] for s in summary] == ["default", "BENCH_OTHERS_NICE=5"], summary
for s in summary:
    assert s["runs"] == 2 and s["p99_min_ms"] <= s["p99_median_ms"] <= s["p99_max_ms"], s
    assert sorted(s["waited_per_run_median"]) == ["postgres", "worker"], s

pid = (pathlib.Path.home() / ".cache/switchboard/kafka-broker-9092/pid").read_text().strip()
nice = {t.read_text().rsplit(")", 1)[1].split()[16] for t in pathlib.Path(f"/proc/{pid}/task").glob("*/stat")}
assert nice == {"0"}, f"the broker's threads are left at niceness {nice}"
print("test: the latency smoke run has every figure, and the broker is back at niceness 0.")
