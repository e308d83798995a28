"""The pure logic of ``benchmarks/timing.py``: order of the rounds, medians, ratios, verdicts."""

import importlib.util
import itertools
from pathlib import Path

import pytest

_PATH = Path(__file__).resolve().parents[2] / "benchmarks" / "timing.py"
_SPEC = importlib.util.spec_from_file_location("benchmarks_timing", _PATH)
timing = importlib.util.module_from_spec(_SPEC)
_SPEC.loader.exec_module(timing)


def test_schedule_interleaves_and_alternates_who_goes_first():
    order = timing.schedule(["anchor", "candidate"], rounds=3, warmup=1)
    assert order == [
        (0, "anchor"), (0, "candidate"),
        (1, "candidate"), (1, "anchor"),
        (2, "anchor"), (2, "candidate"),
        (3, "candidate"), (3, "anchor"),
    ]


@pytest.mark.parametrize("names, rounds, warmup", [([], 3, 1), (["a", "a"], 3, 1),
                                                   (["a"], 0, 1), (["a"], 3, -1)])
def test_schedule_refuses_bad_arguments(names, rounds, warmup):
    with pytest.raises(ValueError):
        timing.schedule(names, rounds, warmup)


def test_interleaved_runs_in_schedule_order_and_drops_the_warmup():
    # a fake clock: CPU time advances by the call's cost, wall time by twice that
    cost = {"anchor": 10.0, "candidate": 1.0}
    ran, now = [], [0.0]

    def call(name):
        def run():
            ran.append(name)
            now[0] += cost[name] + len(ran) * 1e-3  # later rounds slightly slower
        return run

    rounds = timing.interleaved({name: call(name) for name in cost}, rounds=4, warmup=2,
                                clock=lambda: (now[0], 2 * now[0]))
    assert ran == [name for _, name in timing.schedule(list(cost), 4, 2)]
    assert [len(v) for v in rounds.cpu.values()] == [4, 4]
    # the warm-up rounds (calls 1-4) are not among the kept times
    expected_anchor = [10.0 + i * 1e-3 for i in (5, 8, 9, 12)]
    assert rounds.cpu["anchor"] == pytest.approx(expected_anchor)
    assert rounds.wall["anchor"] == pytest.approx([2 * v for v in expected_anchor])
    ratios = rounds.ratios("anchor", "candidate")
    assert len(ratios) == 4 and all(9.9 < r < 10.0 for r in ratios)
    assert "anchor" in rounds.table() and "candidate" in rounds.table()


def test_interleaved_measures_real_cpu_time():
    rounds = timing.interleaved({"spin": lambda: sum(range(20000))}, rounds=2)
    assert all(v >= 0 for v in rounds.cpu["spin"] + rounds.wall["spin"])


def test_spread_is_median_and_range():
    assert timing.Spread.of([3.0, 1.0, 2.0, 10.0]) == (2.5, 1.0, 10.0)
    assert timing.Spread.of([4.0]) == (4.0, 4.0, 4.0)
    assert timing.Spread.of([1.0, 2.0, 4.0]).format(".1f", "x") == "2.0x (1.0-4.0x)"
    assert timing.Spread.of([-2.0, 1.0]).format(".1f", " %") == "-0.5 % (-2.0 to 1.0 %)"
    assert timing.Spread.of([1.0, 2.0]).format("+.1f") == "+1.5 (+1.0 to +2.0)"
    for bad in ([], [1.0, float("nan")]):
        with pytest.raises(ValueError):
            timing.Spread.of(bad)


def test_paired_ratios_are_taken_per_round():
    assert timing.paired_ratios([2.0, 9.0], [1.0, 3.0]) == [2.0, 3.0]
    with pytest.raises(ValueError):
        timing.paired_ratios([1.0], [1.0, 2.0])
    with pytest.raises(ValueError):
        timing.paired_ratios([1.0], [0.0])


@pytest.mark.parametrize("values, goal, higher, verdict", [
    ([9.0, 10.0, 11.0], 10.0, True, "met"),  # the median decides, not the best round
    ([9.0, 9.9, 11.0], 10.0, True, "not met"),
    ([1.02, 1.04, 1.2], 1.05, False, "met"),
    ([1.06, 1.0, 1.07], 1.05, False, "not met"),
])
def test_goal_line_format_and_verdict(values, goal, higher, verdict):
    line = timing.goal_line("speed-up", values, goal, higher_is_better=higher)
    sign = ">=" if higher else "<="
    median = sorted(values)[1]
    assert line == (f"speed-up: {median:.2f}x ({min(values):.2f}-{max(values):.2f}x) "
                    f"goal {sign} {goal:g}: {verdict}")


def test_goal_line_without_goal_and_with_units():
    assert timing.goal_line("rate", [2.0, 3.0, 2.5], None, unit=" s", spec=".1f") == \
        "rate: 2.5 s (2.0-3.0 s) (no goal)"
    assert timing.goal_line("demo", [285.0], 900, higher_is_better=False, spec=".0f",
                            unit=" s") == "demo: 285 s (1 run) goal <= 900: met"


def test_session_prints_load_at_start_and_end(capsys):
    with pytest.raises(RuntimeError), timing.session("title", with_torch=False):
        raise RuntimeError
    lines = capsys.readouterr().out.splitlines()
    assert lines[0] == "title"
    assert lines[1].startswith("load average (1, 5, 15 min) at start: ")
    assert lines[-1].startswith("load average (1, 5, 15 min) at end: ")


def test_threads_states_torch_and_omp_counts():
    text = timing.threads()
    assert text.startswith("torch threads ") and "OMP_NUM_THREADS=" in text


def test_goal_met_both_directions():
    for value, goal in itertools.product([0.5, 1.0, 2.0], [1.0]):
        assert timing.goal_met(value, goal) == (value >= goal)
        assert timing.goal_met(value, goal, higher_is_better=False) == (value <= goal)


def test_once_returns_the_value_and_both_clocks():
    ticks = iter([(1.0, 10.0), (1.5, 12.0)])
    result = timing.once(lambda: "done", clock=lambda: next(ticks))
    assert result == ("done", 0.5, 2.0)


def test_flops_counts_convolutions_by_their_closed_form():
    """2 FLOPs per multiply-add: a k×k convolution ``C_in → C_out`` on an ``H × W`` output does
    ``C_in·C_out·k²·H·W`` of them; a 5×5 stride-2 transposed convolution does ``C_in·C_out·25``
    per input pixel; a backward pass (inputs and weights) doubles a forward's count."""
    import torch

    conv = torch.nn.Conv2d(6, 4, 3, padding=1)
    x = torch.rand(2, 6, 10, 12)
    assert timing.flops(lambda: conv(x)) == 2 * 2 * 6 * 4 * 9 * 10 * 12
    transposed = torch.nn.ConvTranspose2d(6, 4, 5, stride=2, padding=2, output_padding=1)
    assert timing.flops(lambda: transposed(x)) == 2 * 2 * 6 * 4 * 25 * 10 * 12
    leaf = x.clone().requires_grad_(True)
    assert timing.flops(lambda: conv(leaf).sum().backward()) == 3 * 2 * 2 * 6 * 4 * 9 * 10 * 12
