"""Automatic verdicts on the paper's claims that a reproduce run covers.

One row per claim: the measured value, its spread across seeds or its CI, and whether the
paper's sign is ``reproduced``, ``not reproduced`` or ``inconclusive``. The rules are
deliberately plain, so a reader can check them against the tables:

- a claim measured in several seeds is *reproduced* when every seed has the paper's sign,
  *not reproduced* when every seed has the opposite sign, and *inconclusive* otherwise; from
  3 seeds on, the mean's t-interval across seeds (:func:`seed_interval`) stands in the spread
  column and must also exclude 0 on that side, else the claim is *inconclusive* (three
  positive seeds alone happen one time in eight when there is no effect);
- a claim with a CI is reproduced / not reproduced when the CI excludes 0 on the paper's /
  the other side, and inconclusive when it contains 0;
- a BD-rate comes from curves trained in one seed; where the BD table carries its bootstrap
  interval over the test images (:mod:`vinfo.experiments.bd_bootstrap`), that interval is
  its CI and the rule above applies; without one (or with too many undefined draws) its sign
  decides, and the spread column says "no CI" so that nobody reads more into it; an
  undefined BD-rate is inconclusive.

The claims (de Andrade & Bajić, §4): with β = 0.1 instead of 0, (1) reconstruction *directly*
from the base representation is better (PSNR up at the similar-rate pair, BD-rate of Fig. 2b
negative); (2) *scalable* reconstruction needs fewer bits (BD-rate < 0); (3) the base task
does not pay for it — the paper finds it improves too (base BD-rate < 0); (4) the base
representation holds more V-information about the image, ``I_V(X → ŷ_b)`` higher for β = 0.1
(paired CI above 0). A control precedes them: (0) every base representation holds
V-information about its own task, ``I_V(Z_b | ŷ_b) > 0`` with its CI above 0 (a base that
learned nothing would make every other row meaningless).
Where the probes ran with their controls, a second control follows for each family: a probe
fitted on shuffled representations (each target paired with another image's ``ŷ_b``) finds
nothing, no fit flagged by :func:`probes.controls.shuffled_control`'s rule (a probe that
finds information there measures its own overfitting, and so would every I_V row).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass

import numpy as np
import pandas as pd
import scipy.stats

from vinfo.experiments.bd_bootstrap import MAX_UNDEFINED
from vinfo.experiments.results import csv_flag

VERDICTS = ("reproduced", "not reproduced", "inconclusive")
MIN_SEEDS_FOR_INTERVAL = 3
"""Seeds from which a claim's spread also gives the t-interval of its mean (with 2 the
interval is ±12.7 standard errors wide, which says nothing the range does not)."""


@dataclass(frozen=True)
class Verdict:
    """One claim of the paper checked against a run.

    Attributes:
        claim: what the paper says, in one line.
        measured: the measured value(s), with units.
        spread: the spread across seeds, or the CI, or why there is none.
        verdict: one of :data:`VERDICTS`.
    """

    claim: str
    measured: str
    spread: str
    verdict: str

    def __post_init__(self) -> None:
        if self.verdict not in VERDICTS:
            raise ValueError(f"verdict must be one of {VERDICTS}, got {self.verdict!r}")


def sign_verdict(values: Sequence[float], paper_sign: int) -> str:
    """Reproduced when every value has ``paper_sign`` (+1 / −1), not reproduced when every
    value has the other sign, inconclusive otherwise (a zero, a NaN or mixed signs)."""
    signs = {int(np.sign(v)) if not math.isnan(v) else 0 for v in values}
    if signs == {paper_sign}:
        return "reproduced"
    if signs == {-paper_sign}:
        return "not reproduced"
    return "inconclusive"


def interval_verdict(low: float, high: float, paper_sign: int) -> str:
    """Reproduced when the CI ``[low, high]`` lies strictly on the paper's side of 0, not
    reproduced when it lies strictly on the other side, inconclusive when it contains 0."""
    if math.isnan(low) or math.isnan(high):
        return "inconclusive"
    if low > 0 or high < 0:
        return sign_verdict([(low + high) / 2], paper_sign)
    return "inconclusive"


def seed_interval(values: Sequence[float], confidence: float = 0.95) -> tuple[float, float]:
    """The Student-t interval of the mean of ``values`` (one per training seed) at
    ``confidence``: ``mean ± t_{n-1} · s / √n`` with ``s`` the sample standard deviation.
    NaN bounds for fewer than 2 values."""
    if not 0 < confidence < 1:
        raise ValueError(f"confidence must be in (0, 1), got {confidence}")
    array = np.asarray(values, dtype=float)
    if array.size < 2:
        return math.nan, math.nan
    half = (float(scipy.stats.t.ppf((1 + confidence) / 2, array.size - 1))
            * float(array.std(ddof=1)) / math.sqrt(array.size))
    mean = float(array.mean())
    return mean - half, mean + half


def _bd_row(bd: pd.DataFrame | None, task: str, anchor: str, test: str) -> pd.Series | None:
    if bd is None:
        return None
    rows = bd[(bd["anchor"] == anchor) & (bd["test"] == test)]
    if "task" in bd.columns:
        rows = rows[rows["task"] == task]
    return None if rows.empty else rows.iloc[0]


def bd_interval(row: pd.Series) -> tuple[float, float] | None:
    """The bootstrap interval of a BD table row's BD-rate (:mod:`vinfo.experiments.
    bd_bootstrap`), or ``None``: no interval columns, an undefined bound, or more than
    :data:`~vinfo.experiments.bd_bootstrap.MAX_UNDEFINED` of the draws undefined."""
    if pd.isna(row.get("bd_rate_ci_low", math.nan)) or pd.isna(row.get("bd_rate_ci_high",
                                                                       math.nan)):
        return None
    if float(row["ci_undefined"]) > MAX_UNDEFINED * float(row["ci_resamples"]):
        return None
    return float(row["bd_rate_ci_low"]), float(row["bd_rate_ci_high"])


def _bd_spread(row: pd.Series) -> str:
    interval = bd_interval(row)
    if interval is None:
        if pd.isna(row.get("ci_resamples", math.nan)):
            return "one seed, no CI"
        return (f"one seed; no CI ({int(row['ci_undefined'])} of {int(row['ci_resamples'])} "
                "bootstrap draws undefined)")
    undefined = int(row["ci_undefined"])
    return (f"one seed; {float(row['ci_confidence']):.0%} bootstrap CI over the "
            f"{int(row['ci_images'])} test images [{interval[0]:+.2f}, {interval[1]:+.2f}] % "
            f"({int(row['ci_resamples'])} draws" + (f", {undefined} undefined)" if undefined
                                                    else ")"))


def _bd_verdict(claim: str, row: pd.Series | None) -> Verdict:
    """Reproduced when the BD-rate is negative; with a bootstrap interval, when the whole
    interval is (inconclusive when it holds 0)."""
    if row is None or pd.isna(row["bd_rate_percent"]):
        why = "no BD table" if row is None else str(row.get("note") or "undefined")
        return Verdict(claim, f"BD-rate undefined ({why})", "one seed, no CI", "inconclusive")
    value = float(row["bd_rate_percent"])
    interval = bd_interval(row)
    verdict = (sign_verdict([-value], +1) if interval is None
               else interval_verdict(-interval[1], -interval[0], +1))
    return Verdict(claim, f"BD-rate {value:+.2f} % ({row['figure']})", _bd_spread(row), verdict)


def _shuffled_controls(probes: pd.DataFrame | None) -> list[Verdict]:
    """One row per family: the shuffled-representation control of every probed base model
    and target (:func:`probes.controls.shuffled_control`) must not be flagged
    (``shuffled_flag``: above :data:`~probes.controls.SHUFFLE_TOLERANCE` with its CI above 0).
    No row where the study ran without controls."""
    if probes is None or "shuffled_flag" not in probes.columns:
        return []
    ran = probes[(probes["family"] != "null")
                 & pd.to_numeric(probes["shuffled_iv"], errors="coerce").notna()]
    rows = []
    for family, group in ran.groupby("family", sort=False):
        flagged = group[group["shuffled_flag"].map(csv_flag)]
        worst = group.loc[pd.to_numeric(group["shuffled_iv_ci_high"]).idxmax()]
        rows.append(Verdict(
            f"control: shuffled representations hold no V-information ({family} probes)",
            f"shuffled I_V {group['shuffled_iv'].min():+.4f} to "
            f"{group['shuffled_iv'].max():+.4f} bits/px over {len(group)} fits "
            f"({len(flagged)} flagged)",
            f"highest CI [{worst['shuffled_iv_ci_low']:+.4f}, "
            f"{worst['shuffled_iv_ci_high']:+.4f}] ({worst['target']}, beta={worst['beta']:g}, "
            f"lambda={worst['lmbda']:g})",
            "reproduced" if flagged.empty else "not reproduced",
        ))
    return rows


def paper_verdicts(
    *,
    base_task: str,
    betas: tuple[float, float],
    bd: pd.DataFrame | None,
    pair_seeds: pd.DataFrame | None = None,
    pair_probes: pd.DataFrame | None = None,
    probes: pd.DataFrame | None = None,
) -> pd.DataFrame:
    """The verdicts of a run, one row per claim (columns of :class:`Verdict`).

    Args:
        base_task: the base task of the study.
        betas: ``(baseline, proposed)``.
        bd: the BD table (``bd_table.csv``: ``figure, anchor, test, bd_rate_percent, note,
            task``).
        pair_seeds: ``pair_seeds.csv`` (``seed, beta, direct_psnr``…), or ``None``.
        pair_probes: the paired ``ΔI_V`` of the similar-rate pair (proposed minus baseline;
            ``target, family, delta_iv, delta_iv_ci_low, delta_iv_ci_high``), or ``None``.
        probes: the probes of every base model (``probes.csv``: ``beta, lmbda, target,
            family, iv, iv_ci_low, iv_ci_high``), or ``None``.
    """
    b0, b1 = betas
    label = {strategy: (f"{strategy} beta={b0:g}", f"{strategy} beta={b1:g}")
             for strategy in ("direct", "scalable", "base")}
    rows: list[Verdict] = []

    # (0) control: every base representation carries its own task
    if probes is not None and not probes.empty:
        own = probes[(probes["target"] == base_task) & (probes["family"] != "null")]
        for family, group in own.groupby("family", sort=False):
            weakest = group.loc[group["iv_ci_low"].idxmin()]
            rows.append(Verdict(
                f"control: every base model holds I_V({base_task} | y_b) > 0 ({family} probes)",
                f"I_V {group['iv'].min():.4f} to {group['iv'].max():.4f} bits/px over "
                f"{len(group)} base models",
                f"lowest CI [{weakest['iv_ci_low']:+.4f}, {weakest['iv_ci_high']:+.4f}] "
                f"(beta={weakest['beta']:g}, lambda={weakest['lmbda']:g})",
                "reproduced" if bool((group["iv_ci_low"] > 0).all())
                else "inconclusive" if bool((group["iv_ci_high"] > 0).all()) else "not reproduced",
            ))

    # (0b) zero control: shuffled representations hold nothing, for every target
    rows.extend(_shuffled_controls(probes))

    # (1) direct reconstruction from the base, per seed and as a BD-rate
    claim = f"beta={b1:g} helps direct reconstruction from the base (PSNR at the pair, Fig. 2b)"
    if pair_seeds is not None and "direct_psnr" in pair_seeds.columns:
        wide = pair_seeds.pivot(index="seed", columns="beta", values="direct_psnr")
        gaps = (wide[b1] - wide[b0]).dropna()
        bd_row = _bd_row(bd, "reconstruction", *label["direct"])
        bd_value = math.nan if bd_row is None else float(bd_row["bd_rate_percent"])
        per_seed = ", ".join(f"seed {int(s)}: {g:+.2f} dB" for s, g in gaps.items())
        values = [*gaps.tolist()] + ([] if math.isnan(bd_value) else [-bd_value])
        measured = f"PSNR gap {gaps.mean():+.2f} dB (mean of {len(gaps)} seeds)"
        if not math.isnan(bd_value):
            measured += f"; direct BD-rate {bd_value:+.2f} %"
        spread = (f"{per_seed}; range {gaps.min():+.2f} to {gaps.max():+.2f} dB"
                  if len(gaps) else "no seeds")
        verdict = sign_verdict(values, +1)
        if len(gaps) >= MIN_SEEDS_FOR_INTERVAL:
            low, high = seed_interval(gaps.to_numpy())
            spread += f"; mean's 95 % t-interval [{low:+.2f}, {high:+.2f}] dB"
            if interval_verdict(low, high, +1) != verdict:
                verdict = "inconclusive"
        rows.append(Verdict(claim, measured, spread, verdict))
    else:
        rows.append(_bd_verdict(claim, _bd_row(bd, "reconstruction", *label["direct"])))

    # (2) scalable reconstruction
    rows.append(_bd_verdict(f"beta={b1:g} helps scalable reconstruction (BD-rate < 0, Fig. 2d)",
                            _bd_row(bd, "reconstruction", *label["scalable"])))

    # (3) the base task's cost
    rows.append(_bd_verdict(
        f"the base task ({base_task}) does not pay for beta={b1:g}; the paper finds it improves "
        "(base BD-rate < 0, Fig. 2f)",
        _bd_row(bd, base_task, *label["base"]),
    ))

    # (4) V-information of the base representation toward reconstruction, per family
    if pair_probes is not None and not pair_probes.empty:
        recon = pair_probes[(pair_probes["target"] == "reconstruction")
                            & (pair_probes["family"] != "null")]
        for row in recon.itertuples():
            level = float(getattr(row, "confidence", 0.95))
            rows.append(Verdict(
                f"I_V(reconstruction | y_b) higher for beta={b1:g} ({row.family} probes)",
                f"ΔI_V {row.delta_iv:+.4f} bits/px",
                f"paired {level:.0%} CI [{row.delta_iv_ci_low:+.4f}, "
                f"{row.delta_iv_ci_high:+.4f}]",
                interval_verdict(row.delta_iv_ci_low, row.delta_iv_ci_high, +1),
            ))
    else:
        rows.append(Verdict(f"I_V(reconstruction | y_b) higher for beta={b1:g}",
                            "no probe step", "-", "inconclusive"))
    return pd.DataFrame([asdict(v) for v in rows])


__all__ = ["MIN_SEEDS_FOR_INTERVAL", "VERDICTS", "Verdict", "bd_interval", "interval_verdict",
           "paper_verdicts", "seed_interval", "sign_verdict"]
