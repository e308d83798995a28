"""The main job's time: how long ``vinfo reproduce`` takes, split by phase.

Runs a reproduce preset into a temporary folder (or reads the ``timings.json`` of a finished
run with ``--results DIR``) and prints the wall time of each phase (data, training, evaluation,
tables and figures, probes, report), its share of the total, the worker processes used and the
machine's load average at the start and the end, then the goal (issue #13: ``tiny`` in at most
15 minutes of wall time on 2 cores) as met or not met. One run, too long to repeat: the header,
the CPU time of this process beside the wall time (the worker processes' CPU time is not in
it) and the goal line come from :mod:`timing` (this folder).

    .venv/bin/python benchmarks/bench_demo.py                       # runs the tiny preset
    .venv/bin/python benchmarks/bench_demo.py --results results/tiny  # reads a finished run
    .venv/bin/python benchmarks/bench_demo.py --preset micro
"""

from __future__ import annotations

import argparse
import json
import tempfile
from pathlib import Path

from timing import goal_line, load_average, once, session

GOAL_SECONDS = {"tiny": 15 * 60}
"""Wall-time goals per preset (seconds)."""


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
        print(f"load average (1, 5, 15 min) now: {load_average()} (the run's own load is not "
              "recorded)")
        total = _print_split(timings, f"{args.results}")
        _print_goal(preset, total)
        return
    from vinfo.experiments.reproduce import reproduce

    with session(f"reproduce --preset {preset}"), tempfile.TemporaryDirectory() as folder:
        run = once(lambda: reproduce(preset, Path(folder) / preset, workers=args.workers))
        timings = json.loads((Path(folder) / preset / "timings.json").read_text())
        total = _print_split(timings, f"reproduce --preset {preset} ({run.wall:.0f} s wall "
                             f"incl. set-up, {run.cpu:.0f} s CPU of the main process)")
        _print_goal(preset, total)


def _print_goal(preset: str, total: float) -> None:
    goal = GOAL_SECONDS.get(preset)
    print(goal_line(f"demo wall time, preset {preset}", [total], goal,
                    higher_is_better=False, spec=".0f", unit=" s"))


if __name__ == "__main__":
    main()
