"""The main job's time: how long ``vinfo reproduce`` takes, split by phase.

Runs a reproduce preset into a temporary folder (or reads the ``timings.json`` of a finished
run with ``--results DIR``) and prints the wall time of each phase (data, training, evaluation,
tables and figures, probes, report), its share of the total, the worker processes used and the
machine's load average at the start and the end, then the goal (issue #13: ``tiny`` in at most
15 minutes of wall time on 2 cores) as met or not met.

    .venv/bin/python benchmarks/bench_demo.py                       # runs the tiny preset
    .venv/bin/python benchmarks/bench_demo.py --results results/tiny  # reads a finished run
    .venv/bin/python benchmarks/bench_demo.py --preset micro
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
from pathlib import Path

GOAL_SECONDS = {"tiny": 15 * 60}
"""Wall-time goals per preset (seconds)."""


def _load() -> str:
    return ", ".join(f"{value:.2f}" for value in os.getloadavg())


def _print_split(timings: dict, label: str) -> float:
    seconds = timings["seconds"]
    total = sum(seconds.values())
    print(f"{label}: {total:.0f} s wall ({total / 60:.1f} min), "
          f"{timings.get('workers', 1)} worker process(es)")
    for phase, value in seconds.items():
        print(f"  {phase:<20} {value:8.1f} s  {100 * value / total:5.1f} %")
    return total


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--preset", default="tiny")
    parser.add_argument("--results", type=Path, default=None,
                        help="a finished reproduce folder: read its timings.json, run nothing")
    parser.add_argument("--workers", type=int, default=None)
    args = parser.parse_args()
    preset = args.preset  # with --results: the preset that folder was run with
    if args.results is not None:
        if not (args.results / "timings.json").is_file():
            parser.error(f"{args.results}: no timings.json (not a finished reproduce folder)")
        timings = json.loads((args.results / "timings.json").read_text())
        print(f"load average now (1, 5, 15 min): {_load()} (the run's own load is not recorded)")
        total = _print_split(timings, f"{args.results}")
    else:
        from vinfo.experiments.reproduce import reproduce

        print(f"load average at start (1, 5, 15 min): {_load()}")
        with tempfile.TemporaryDirectory() as folder:
            started = time.perf_counter()
            reproduce(preset, Path(folder) / preset, workers=args.workers)
            wall = time.perf_counter() - started
            timings = json.loads((Path(folder) / preset / "timings.json").read_text())
        print(f"load average at end (1, 5, 15 min): {_load()}")
        total = _print_split(timings, f"reproduce --preset {preset} ({wall:.0f} s incl. set-up)")
    goal = GOAL_SECONDS.get(preset)
    if goal is not None:
        verdict = "met" if total <= goal else "not met"
        print(f"demo wall time: {total:.0f} s goal <= {goal} s: {verdict}")


if __name__ == "__main__":
    main()
