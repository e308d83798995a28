"""The one timing helper of the benchmarks: interleaved rounds, CPU time, goals met or not.

Every benchmark in this folder times its sides with :func:`interleaved` and prints its verdicts
with :func:`goal_line`, so that their figures mean the same thing and survive a shared machine:

- **interleaved rounds**: each round runs every call once, in the order of :func:`schedule`
  (the order is reversed on every other round, so neither side always runs first, after the
  other has warmed or cooled the caches); a slow minute of load then hits anchor and candidate
  alike instead of one side's whole series;
- **CPU time of the process** (:func:`time.process_time`: user + system time of all its
  threads), with the wall clock beside it: other processes on the machine lengthen wall time
  but hardly the CPU time a call needs. With several torch threads the CPU time sums them,
  so it measures work, not latency; the benchmarks state their thread counts (:func:`threads`);
- the first ``warmup`` rounds are dropped (allocator, oneDNN primitive caches, lazy imports);
- the **median** of the kept rounds is reported, with their **range** (min–max); a ratio is
  taken per round (anchor and candidate of the same round saw the same load), then its median;
- :func:`session` prints the machine's load average (``os.getloadavg``) at the start and the
  end of the benchmark and the thread counts, so a reader can tell a quiet run from a busy one.

One summary line per goal, in one format (:func:`goal_line`)::

    decode speed-up vs mbt2018, 256x256: 10.41x (10.12-10.77) goal >= 10: met

Run a benchmark as ``python benchmarks/bench_<name>.py``: the script's folder is on
``sys.path``, so ``import timing`` finds this file.
"""

from __future__ import annotations

import contextlib
import math
import os
import statistics
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import NamedTuple

WARMUP = 1
"""Rounds dropped at the start of :func:`interleaved`."""


class Spread(NamedTuple):
    """Median and range of a series of measurements (any unit)."""

    median: float
    low: float
    high: float

    @classmethod
    def of(cls, values: Sequence[float]) -> Spread:
        """The median, minimum and maximum of ``values`` (at least one, no NaN).

        Raises:
            ValueError: ``values`` is empty or holds NaN.
        """
        if len(values) == 0:
            raise ValueError("no values to summarise")
        if any(math.isnan(v) for v in values):
            raise ValueError("NaN among the values")
        return cls(statistics.median(values), min(values), max(values))

    def format(self, spec: str = ".2f", unit: str = "") -> str:
        """``"median (low-high)"``, each number formatted with ``spec`` and followed by
        ``unit`` (``"low to high"`` where a sign would make the dash ambiguous)."""
        low, high = f"{self.low:{spec}}", f"{self.high:{spec}}"
        dash = " to " if low.startswith(("-", "+")) or high.startswith(("-", "+")) else "-"
        return f"{self.median:{spec}}{unit} ({low}{dash}{high}{unit})"


class Rounds(NamedTuple):
    """Seconds per call name, one entry per kept round, in CPU time and in wall time."""

    cpu: dict[str, list[float]]
    wall: dict[str, list[float]]

    def spread(self, name: str, clock: str = "cpu") -> Spread:
        """Median and range of one call's seconds (``clock``: ``"cpu"`` or ``"wall"``)."""
        return Spread.of(self._clock(clock)[name])

    def ratios(self, numerator: str, denominator: str, clock: str = "cpu") -> list[float]:
        """Per-round ``numerator / denominator`` seconds (e.g. anchor / candidate: speed-up)."""
        times = self._clock(clock)
        return paired_ratios(times[numerator], times[denominator])

    def table(self, spec: str = ".3f") -> str:
        """One line per call: CPU and wall seconds, each as median (range)."""
        width = max(len(name) for name in self.cpu)
        lines = [f"{'call':<{width}}  {'CPU s, median (range)':>26}  "
                 f"{'wall s, median (range)':>26}"]
        for name in self.cpu:
            lines.append(f"{name:<{width}}  {self.spread(name, 'cpu').format(spec):>26}  "
                         f"{self.spread(name, 'wall').format(spec):>26}")
        return "\n".join(lines)

    def _clock(self, clock: str) -> dict[str, list[float]]:
        if clock not in ("cpu", "wall"):
            raise ValueError(f"clock must be 'cpu' or 'wall', got {clock!r}")
        return self.cpu if clock == "cpu" else self.wall


def schedule(names: Sequence[str], rounds: int, warmup: int = WARMUP) -> list[tuple[int, str]]:
    """``(round, name)`` in the order :func:`interleaved` runs them, warm-up rounds first.

    Round ``r`` (counting the warm-up rounds) runs every name once, in the given order for even
    ``r`` and reversed for odd ``r``, so anchor and candidate alternate who goes first.

    Raises:
        ValueError: no names, repeated names, fewer than one kept round or a negative warm-up.
    """
    if not names:
        raise ValueError("nothing to time")
    if len(set(names)) != len(names):
        raise ValueError(f"names must be distinct, got {list(names)}")
    if rounds < 1 or warmup < 0:
        raise ValueError(f"need rounds >= 1 and warmup >= 0, got {rounds} and {warmup}")
    order = []
    for index in range(warmup + rounds):
        names_now = names if index % 2 == 0 else list(reversed(names))
        order.extend((index, name) for name in names_now)
    return order


def interleaved(
    calls: Mapping[str, Callable[[], object]],
    rounds: int,
    warmup: int = WARMUP,
    clock: Callable[[], tuple[float, float]] | None = None,
) -> Rounds:
    """Time every call once per round, in the order of :func:`schedule`.

    Args:
        calls: name → call without arguments (anchor and candidate, and any parts).
        rounds: rounds kept; the medians are over these.
        warmup: rounds run first and dropped.
        clock: ``() → (cpu seconds, wall seconds)``; default :func:`process_and_wall_time`
            (a parameter so that tests can pass a fake clock).

    Returns:
        The CPU and wall seconds of every call in every kept round.
    """
    clock = clock or process_and_wall_time
    cpu: dict[str, list[float]] = {name: [] for name in calls}
    wall: dict[str, list[float]] = {name: [] for name in calls}
    for index, name in schedule(list(calls), rounds, warmup):
        cpu_start, wall_start = clock()
        calls[name]()
        cpu_end, wall_end = clock()
        if index >= warmup:
            cpu[name].append(cpu_end - cpu_start)
            wall[name].append(wall_end - wall_start)
    return Rounds(cpu, wall)


class Once(NamedTuple):
    """What :func:`once` returns: the call's value, its CPU and wall seconds."""

    value: object
    cpu: float
    wall: float


def once(call: Callable[[], object],
         clock: Callable[[], tuple[float, float]] | None = None) -> Once:
    """Run ``call`` once (a run too long to repeat, e.g. a whole sweep) and time it."""
    clock = clock or process_and_wall_time
    cpu_start, wall_start = clock()
    value = call()
    cpu_end, wall_end = clock()
    return Once(value, cpu_end - cpu_start, wall_end - wall_start)


def process_and_wall_time() -> tuple[float, float]:
    """``(CPU seconds of this process, all threads; wall-clock seconds)``."""
    return time.process_time(), time.perf_counter()


def paired_ratios(numerator: Sequence[float], denominator: Sequence[float]) -> list[float]:
    """``numerator[i] / denominator[i]`` for every round ``i``.

    Raises:
        ValueError: the series differ in length, or a denominator is not positive.
    """
    if len(numerator) != len(denominator):
        raise ValueError(f"{len(numerator)} against {len(denominator)} rounds")
    if any(not d > 0 for d in denominator):
        raise ValueError("a denominator is not positive")
    return [n / d for n, d in zip(numerator, denominator, strict=True)]


def flops(call: Callable[[], object]) -> int:
    """FLOPs of the aten operations that ``call()`` runs, as counted by
    :class:`torch.utils.flop_counter.FlopCounterMode` (convolutions, transposed convolutions
    and matrix products, 2 FLOPs per multiply-add; element-wise operations are not counted).
    Run a forward pass with autograd on to count a model's architecture rather than an
    inference path that computes the same layer with more multiplications (a sub-pixel
    convolution's zero taps), and call ``.backward()`` inside ``call`` to count both passes."""
    from torch.utils.flop_counter import FlopCounterMode  # torch only where FLOPs are counted

    with FlopCounterMode(display=False) as counter:
        call()
    return counter.get_total_flops()


def goal_met(value: float, goal: float, higher_is_better: bool = True) -> bool:
    """``value ≥ goal`` (or ``value ≤ goal`` where lower is better)."""
    return value >= goal if higher_is_better else value <= goal


def goal_line(
    metric: str,
    values: Sequence[float],
    goal: float | None,
    higher_is_better: bool = True,
    spec: str = ".2f",
    unit: str = "x",
) -> str:
    """``"metric: median (low-high) goal >= X: met|not met"``, judged on the median
    (``"metric: value (1 run) ..."`` for a single value).

    Args:
        metric: what is measured, e.g. ``"decode speed-up vs mbt2018, 256x256"``.
        values: one value per round (or a single value of a run that cannot be repeated).
        goal: the threshold, or ``None`` for a figure without a goal (printed as such).
        higher_is_better: the goal is ``≥`` (else ``≤``).
        spec: format of each number (``".2f"``, ``".1e"``).
        unit: printed after each number (``"x"`` for ratios, ``" s"``, ``" %"``).
    """
    spread = Spread.of(values)
    if len(values) == 1:  # a run too long to repeat (or a single check): no range
        text = f"{metric}: {spread.median:{spec}}{unit} (1 run)"
    else:
        text = f"{metric}: {spread.format(spec, unit)}"
    if goal is None:
        return f"{text} (no goal)"
    sign = ">=" if higher_is_better else "<="
    verdict = "met" if goal_met(spread.median, goal, higher_is_better) else "not met"
    return f"{text} goal {sign} {goal:g}: {verdict}"


def load_average() -> str:
    """The load average over 1, 5 and 15 minutes, ``"1.23, 0.98, 0.77"`` (``"n/a"`` where the
    platform has none)."""
    try:
        return ", ".join(f"{value:.2f}" for value in os.getloadavg())
    except OSError:
        return "n/a"


def threads() -> str:
    """Thread counts in force: torch intra- and inter-op, ``OMP_NUM_THREADS``, cores."""
    import torch  # here: bench_bdrate and bench_demo's --results mode need no torch

    return (f"torch threads {torch.get_num_threads()} (inter-op "
            f"{torch.get_num_interop_threads()}), OMP_NUM_THREADS="
            f"{os.environ.get('OMP_NUM_THREADS', 'unset')}, {os.cpu_count()} cores")


@contextlib.contextmanager
def session(title: str, with_torch: bool = True) -> Iterator[None]:
    """Print ``title``, the thread counts and the load average, run the block, then print the
    load average at the end (also when the block raises)."""
    print(title)
    if with_torch:
        print(threads())
    print(f"load average (1, 5, 15 min) at start: {load_average()}")
    try:
        yield
    finally:
        print(f"load average (1, 5, 15 min) at end: {load_average()}")


__all__ = [
    "WARMUP",
    "Once",
    "Rounds",
    "Spread",
    "goal_line",
    "goal_met",
    "interleaved",
    "load_average",
    "once",
    "paired_ratios",
    "process_and_wall_time",
    "schedule",
    "session",
    "threads",
]
