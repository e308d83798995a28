import math

import numpy as np
import pandas as pd
import pytest
import scipy.stats

from vinfo.experiments.verdict import (
    interval_verdict,
    paper_verdicts,
    seed_interval,
    sign_verdict,
)


@pytest.mark.parametrize(("values", "sign", "expected"), [
    ([1.0, 2.0], +1, "reproduced"),
    ([-1.0, -0.5], +1, "not reproduced"),
    ([1.0, -0.5], +1, "inconclusive"),
    ([1.0, math.nan], +1, "inconclusive"),
    ([0.0], +1, "inconclusive"),
    ([-3.0], -1, "reproduced"),
])
def test_sign_verdict(values, sign, expected):
    assert sign_verdict(values, sign) == expected


@pytest.mark.parametrize(("low", "high", "expected"), [
    (0.1, 0.5, "reproduced"),
    (-0.5, -0.1, "not reproduced"),
    (-0.1, 0.5, "inconclusive"),
    (math.nan, 0.5, "inconclusive"),
])
def test_interval_verdict(low, high, expected):
    assert interval_verdict(low, high, +1) == expected


def _bd(direct=-20.0, scalable=math.nan, base=5.0):
    rows = [("Fig. 2b", "direct beta=0", "direct beta=0.1", direct, "reconstruction"),
            ("Fig. 2d", "scalable beta=0", "scalable beta=0.1", scalable, "reconstruction"),
            ("Fig. 2f", "base beta=0", "base beta=0.1", base, "depth")]
    return pd.DataFrame(rows, columns=["figure", "anchor", "test", "bd_rate_percent", "task"]
                        ).assign(note="")


def _probes(depth_ci_low):
    rows = []
    for index, low in enumerate(depth_ci_low):
        rows.append({"beta": 0.0, "lmbda": float(index + 1), "target": "depth",
                     "family": "linear", "iv": low + 0.1, "iv_ci_low": low,
                     "iv_ci_high": low + 0.2})
        rows.append({"beta": 0.0, "lmbda": float(index + 1), "target": "reconstruction",
                     "family": "linear", "iv": -1.0, "iv_ci_low": -2.0, "iv_ci_high": -0.5})
    return pd.DataFrame(rows)


def test_paper_verdicts_rules():
    seeds = pd.DataFrame({"seed": [0, 0, 1, 1], "beta": [0.0, 0.1, 0.0, 0.1],
                          "direct_psnr": [17.0, 19.5, 17.2, 18.9]})
    pair = pd.DataFrame({"target": ["reconstruction"], "family": ["conv"], "delta_iv": [0.3],
                         "delta_iv_ci_low": [0.1], "delta_iv_ci_high": [0.5]})
    table = paper_verdicts(base_task="depth", betas=(0.0, 0.1), bd=_bd(), pair_seeds=seeds,
                           pair_probes=pair, probes=_probes([0.05, 0.2]))
    # control first: both base models' depth CIs are above 0 (the reconstruction rows of the
    # probe table, negative on purpose, must not count)
    assert table["claim"].iloc[0].startswith("control: every base model holds I_V(depth")
    assert table["verdict"].iloc[0] == "reproduced"
    assert "lambda=1" in table["spread"].iloc[0]  # the weakest model is named
    # direct: both seeds positive (+2.5, +1.7 dB) and BD-rate -20 % (negative = fewer bits)
    direct = table[table["claim"].str.contains("direct")].iloc[0]
    assert direct["verdict"] == "reproduced"
    assert "+2.50 dB" in direct["spread"] and "+1.70 dB" in direct["spread"]
    assert "-20.00 %" in direct["measured"]
    # scalable undefined: inconclusive, never hidden; base BD-rate +5 %: not reproduced
    assert table[table["claim"].str.contains("scalable")]["verdict"].item() == "inconclusive"
    assert table[table["claim"].str.contains("base task")]["verdict"].item() == "not reproduced"
    assert table[table["claim"].str.contains("conv probes")]["verdict"].item() == "reproduced"
    assert len(table) == 5  # control, direct, scalable, base, one probe family


def test_control_fails_when_a_base_model_learned_nothing():
    table = paper_verdicts(base_task="depth", betas=(0.0, 0.1), bd=None,
                           probes=_probes([0.3, -0.1]))
    assert table["verdict"].iloc[0] == "inconclusive"  # CI [-0.1, 0.1] contains 0
    table = paper_verdicts(base_task="depth", betas=(0.0, 0.1), bd=None,
                           probes=_probes([0.3, -0.5]))
    assert table["verdict"].iloc[0] == "not reproduced"  # CI [-0.5, -0.3] below 0
    # without probes there is no control row, and the I_V claim says so
    table = paper_verdicts(base_task="depth", betas=(0.0, 0.1), bd=None)
    assert not table["claim"].str.startswith("control").any()
    assert table["measured"].iloc[-1] == "no probe step"


def test_seed_interval_is_the_student_t_interval():
    # [1, 2, 3]: mean 2, s = 1, n = 3; t(2) at 0.975 is 4.302653 (any t table)
    low, high = seed_interval([1.0, 2.0, 3.0])
    half = 4.302652729911275 / math.sqrt(3)
    assert low == pytest.approx(2 - half, rel=1e-9) and high == pytest.approx(2 + half, rel=1e-9)
    # 90 %: t(2) at 0.95 is 2.919986
    low, high = seed_interval([1.0, 2.0, 3.0], confidence=0.9)
    assert high - 2 == pytest.approx(2.919985580355516 / math.sqrt(3), rel=1e-9)
    assert all(math.isnan(v) for v in seed_interval([1.0]))
    with pytest.raises(ValueError, match="confidence"):
        seed_interval([1.0, 2.0], confidence=1.0)


def _direct_row(gaps):
    seeds = pd.DataFrame({
        "seed": [s for s in range(len(gaps)) for _ in (0, 1)],
        "beta": [0.0, 0.1] * len(gaps),
        "direct_psnr": [v for g in gaps for v in (20.0, 20.0 + g)],
    })
    table = paper_verdicts(base_task="depth", betas=(0.0, 0.1), bd=_bd(direct=math.nan),
                           pair_seeds=seeds)
    return table[table["claim"].str.contains("direct")].iloc[0]


@pytest.mark.parametrize(
    ("gaps", "expected"),
    [
        # every seed positive, but the t-interval of the mean reaches below 0: mean 0.56,
        # s = 0.3384, half width 4.302653 * 0.3384 / sqrt(3) = 0.8407 (a run of issue #13)
        ([0.87, 0.61, 0.20], "inconclusive"),
        ([-0.87, -0.61, -0.20], "inconclusive"),
        ([-0.6, -0.9, -0.75], "not reproduced"),
        ([0.6, 0.9, 0.75], "reproduced"),
        ([0.87, 0.20], "reproduced"),  # two seeds: the sign rule alone
    ],
)
def test_direct_claim_from_three_seeds_needs_its_t_interval_to_exclude_zero(gaps, expected):
    row = _direct_row(gaps)
    assert row["verdict"] == expected
    if len(gaps) >= 3:
        array = np.asarray(gaps)
        low, high = scipy.stats.t.interval(0.95, len(gaps) - 1, loc=array.mean(),
                                           scale=scipy.stats.sem(array))
        assert f"t-interval [{low:+.2f}, {high:+.2f}] dB" in row["spread"]
        assert (low > 0 or high < 0) == (expected != "inconclusive")


def test_direct_claim_gives_the_seed_interval_from_three_seeds():
    gaps = [0.6, 0.9, 0.75, 0.8]
    assert "t-interval" not in _direct_row(gaps[:2])["spread"]
    row = _direct_row(gaps[:3])
    # mean 0.75, s = 0.15, half width 4.302653 * 0.15 / sqrt(3) = 0.3726
    assert "t-interval [+0.38, +1.12] dB" in row["spread"]
    assert row["verdict"] == "reproduced"  # every seed positive and the interval above 0


def test_shuffled_control_rows_pass_unless_a_fit_is_flagged():
    def with_controls(flags, family="conv"):
        frame = _probes([0.2] * len(flags)).query("target == 'depth'").assign(family=family)
        ci_high = [0.02 if flag else 0.004 for flag in flags]
        return frame.assign(shuffled_iv=[0.015 if f else -0.002 for f in flags],
                            shuffled_iv_ci_low=[0.011 if f else -0.008 for f in flags],
                            shuffled_iv_ci_high=ci_high, shuffled_flag=flags)

    def shuffled_row(probes):
        table = paper_verdicts(base_task="depth", betas=(0.0, 0.1), bd=None, probes=probes)
        return table[table["claim"].str.startswith("control: shuffled")]

    passed = shuffled_row(with_controls([False, False]))
    assert passed["verdict"].item() == "reproduced"
    assert "0 flagged" in passed["measured"].item()
    failed = shuffled_row(with_controls([False, True]))
    assert failed["verdict"].item() == "not reproduced"
    assert "1 flagged" in failed["measured"].item()
    assert "lambda=2" in failed["spread"].item()  # the highest CI names its model
    # read back from CSV the flags are strings or bools; a study without controls has NaNs
    # in the control columns and gets no row
    assert shuffled_row(with_controls([False, True]).astype({"shuffled_flag": str}))[
        "verdict"].item() == "not reproduced"
    no_controls = with_controls([False, False]).assign(shuffled_iv=math.nan,
                                                       shuffled_flag=math.nan)
    assert shuffled_row(no_controls).empty
    assert shuffled_row(_probes([0.2])).empty


def test_bd_claims_follow_their_bootstrap_interval_when_the_table_has_one():
    bd = _bd(scalable=-4.0, base=-3.0).assign(
        bd_rate_ci_low=[math.nan, -6.0, -7.0], bd_rate_ci_high=[math.nan, -2.0, 1.5],
        ci_resamples=[1000, 1000, 1000], ci_undefined=[600, 0, 3], ci_images=128,
        ci_confidence=0.95)
    table = paper_verdicts(base_task="depth", betas=(0.0, 0.1), bd=bd)
    scalable = table[table["claim"].str.contains("scalable")].iloc[0]
    assert scalable["verdict"] == "reproduced"  # the whole interval is below 0
    assert "95% bootstrap CI over the 128 test images [-6.00, -2.00] %" in scalable["spread"]
    base = table[table["claim"].str.contains("base task")].iloc[0]
    assert base["verdict"] == "inconclusive"  # -3 % but the interval holds 0
    assert "3 undefined" in base["spread"]
    # too many undefined draws: no interval, the sign decides, and the spread says why
    without = paper_verdicts(base_task="depth", betas=(0.0, 0.1), bd=bd.assign(
        ci_undefined=[600, 60, 3]))
    scalable = without[without["claim"].str.contains("scalable")].iloc[0]
    assert scalable["verdict"] == "reproduced"
    assert "no CI (60 of 1000 bootstrap draws undefined)" in scalable["spread"]
