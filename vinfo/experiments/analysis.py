"""Analysis of a ``vinfo reproduce`` results directory: shared by ``vinfo report`` and notebooks.

A results directory (:func:`vinfo.experiments.results.load_results`) holds the RD tables, the
BD table, the similar-rate base pair and, once the probe step has run, the V-information
tables ``probes.csv`` (one row per representation × target × probe family) and
``probes_paired.csv`` (``ΔI_V = I_V(β = 0.1) − I_V(β = 0)`` at the same λ, with a paired
bootstrap CI). From these:

* :func:`iv_across_beta`: ``I_V`` per target × family × β with its CI, at the pair's λ or all λ;
* :func:`conditional_coding_gain`: for each secondary task and β, the BD-rate of the scalable
  curve against the standalone curve, i.e. the rate saved by conditioning the enhancement
  latent on the base at equal quality (§4 of the paper; negative = conditioning saves bits);
* :func:`co_adaptation_table`: for each base representation (β, λ), ``I_V`` under the simplest
  probe family next to the quality of the ``direct`` model trained on that base and, where a
  scalable curve was built on it (the similar-rate pair only), the conditional-coding gain;
* figures (seaborn; the caller saves them with :func:`vinfo.figures.save_figure`):
  :func:`plot_iv_across_beta`, :func:`plot_paired_delta`, :func:`plot_co_adaptation`.

Reading the directory is :mod:`vinfo.experiments.results`'s job; this module only computes.

Units: ``I_V`` and ``ΔI_V`` in bits per target pixel, rates in bpp, BD-rate in percent.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import matplotlib.figure
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import seaborn as sns

from bdrate.core import DEFAULT_METHOD
from bdrate.directions import is_known_metric, metric_direction
from vinfo.experiments.rd import Comparison, bd_table
from vinfo.experiments.results import (
    BASE_STRATEGY,
    PAIRED_COLUMNS,
    PROBE_COLUMNS,
    RD_REQUIRED,
    join_key,
    with_beta_lmbda,
)
from vinfo.models.tasks import get_task

# tables -------------------------------------------------------------------------------------


CONTROL_COLUMNS = ("shuffled_iv", "shuffled_iv_ci_low", "shuffled_iv_ci_high", "control_iv",
                   "control_iv_ci_low", "control_iv_ci_high", "selectivity")
"""The controls of :func:`probes.study.run_probes` (NaN where they were not run)."""


def iv_across_beta(probes: pd.DataFrame,
                   lmbdas: Mapping[float, float] | None = None) -> pd.DataFrame:
    """``I_V`` per target × family × β with its CI.

    Args:
        probes: a probe table (``probes.csv``) with ``beta`` and ``lmbda`` columns (see
            :func:`with_beta_lmbda`).
        lmbdas: β → λ to keep, e.g. :attr:`Results.pair_lmbdas` (each β at the λ of the
            similar-rate pair); ``None`` keeps every λ.

    Returns:
        One row per (target, family, β, λ), sorted by target (in table order), capacity
        rank, β and λ: ``target``, ``family``, ``capacity_rank``, ``beta``, ``lmbda``, ``repr``,
        ``iv``, ``iv_ci_low``, ``iv_ci_high`` (bits per target pixel) and, where present,
        ``h_null``, ``h_cond``, ``n_seeds``, ``n_resamples``, ``n_test_images``, the controls
        (:data:`CONTROL_COLUMNS`), ``no_gain_flag``, ``budget_flag``, ``shuffled_flag``,
        ``capacity_flag``.

    Raises:
        ValueError: missing columns, or no row left at ``lmbdas``.
    """
    frame = with_beta_lmbda(_require(probes, PROBE_COLUMNS, "probe table"))
    if lmbdas is not None:
        wanted = {(join_key(b), join_key(v)) for b, v in lmbdas.items()}
        keys = zip(frame["beta"].map(join_key), frame["lmbda"].map(join_key), strict=True)
        frame = frame[[key in wanted for key in keys]]
        if frame.empty:
            chosen = ", ".join(f"beta={b:g} lambda={v:g}" for b, v in lmbdas.items())
            raise ValueError(f"the probe table has no row at {chosen}")
    optional = [c for c in ("h_null", "h_cond", "n_seeds", "n_resamples", "n_test_images",
                            *CONTROL_COLUMNS, "no_gain_flag", "budget_flag", "shuffled_flag",
                            "capacity_flag") if c in frame.columns]
    columns = ["target", "family", "capacity_rank", "beta", "lmbda", "repr", "iv", "iv_ci_low",
               "iv_ci_high", *optional]
    order = {target: i for i, target in enumerate(dict.fromkeys(frame["target"]))}
    return (frame.assign(_order=frame["target"].map(order))
            .sort_values(["_order", "capacity_rank", "beta", "lmbda"], kind="stable")
            [columns].reset_index(drop=True))


def _require(frame: pd.DataFrame, columns: Iterable[str], what: str) -> pd.DataFrame:
    missing = [c for c in columns if c not in frame.columns]
    if missing:
        raise ValueError(f"the {what} lacks column(s) {', '.join(missing)}")
    return frame


def delta_verdict(low: float, high: float) -> str:
    """How a CI of ``ΔI_V`` sits against 0: ``"above 0"``, ``"below 0"``, ``"contains 0"``,
    ``"exactly 0"`` (both ends 0: e.g. neither probe beat its null) or ``"undefined"`` (NaN
    ends). Only a CI that excludes 0 is read as a difference."""
    if math.isnan(low) or math.isnan(high):
        return "undefined"
    if low == 0.0 and high == 0.0:
        return "exactly 0"
    if low > 0:
        return "above 0"
    if high < 0:
        return "below 0"
    return "contains 0"


def paired_summary(paired: pd.DataFrame) -> pd.DataFrame:
    """The paired ``ΔI_V`` table sorted by target, capacity rank and λ, with a ``verdict``
    column (:func:`delta_verdict`)."""
    frame = _require(paired, PAIRED_COLUMNS, "paired table")
    order = {target: i for i, target in enumerate(dict.fromkeys(frame["target"]))}
    frame = (frame.assign(_order=frame["target"].map(order))
             .sort_values(["_order", "capacity_rank", "lmbda"], kind="stable")
             .drop(columns="_order").reset_index(drop=True))
    frame["verdict"] = [delta_verdict(lo, hi) for lo, hi in
                        zip(frame["delta_iv_ci_low"], frame["delta_iv_ci_high"], strict=True)]
    return frame


def primary_metric(task: str) -> str:
    """The metric the RD curves of ``task`` are drawn with (``psnr``, ``rmse``, ``miou``…)."""
    return get_task(task).metric


def conditional_coding_gain(
    rd: Mapping[str, pd.DataFrame],
    *,
    method: str = DEFAULT_METHOD,
    rate_column: str = "bpp",
) -> pd.DataFrame:
    """BD-rate of each scalable curve against the standalone curve, per task and β.

    The scalable and standalone codecs share their transforms; standalone codes the
    enhancement latent with the base zeroed out (§4), so the BD-rate is the rate saved by
    conditioning on the base at equal quality: negative = conditioning saves bits. Where a
    curve is not monotone the Pareto fronts are compared (said in ``note``); where the value is
    undefined (too few points, no overlap) it is NaN with the reason in ``note``
    (:func:`vinfo.experiments.rd.bd_table`).

    Args:
        rd: task → tidy RD table; tasks without both a ``standalone`` and a ``scalable`` curve
            are skipped.
        method: BD interpolation method.
        rate_column: the rate axis, ``bpp`` (base + enhancement, as the paper plots) or
            ``bpp_enhancement``.

    Returns:
        One row per (task, β): ``task``, ``beta``, ``lmbda_base`` (λ of the base the scalable
        curve was built on; NaN if the table does not say), ``metric``, ``anchor``, ``test``,
        ``method``, ``rate_column``, ``bd_rate_percent``, ``bd_metric``, ``bd_rate_overlap``,
        ``bd_metric_overlap``, ``min_overlap`` (as in :func:`vinfo.experiments.rd.bd_table`),
        ``note``.
    """
    values = ["bd_rate_percent", "bd_metric", "bd_rate_overlap", "bd_metric_overlap",
              "min_overlap", "note"]
    columns = ["task", "beta", "lmbda_base", "metric", "anchor", "test", "method",
               "rate_column", *values]
    rows = []
    for task, frame in rd.items():
        _require(frame, (*RD_REQUIRED, rate_column), f"RD table of {task}")
        standalone = frame[frame["strategy"] == "standalone"]
        scalable = frame[frame["strategy"] == "scalable"]
        if standalone.empty or scalable.empty:
            continue
        metric = primary_metric(task)
        # a fresh index: rd.pareto_front selects rows by label
        curves = frame.assign(bpp=frame[rate_column]).reset_index(drop=True)
        anchor = str(standalone["label"].iloc[0])
        for beta, group in scalable.groupby("beta", sort=True):
            label = str(group["label"].iloc[0])
            table = bd_table(curves, [Comparison("", anchor, label, metric)], method=method,
                             prune_dominated=True)
            lmbda_base = (float(group["lmbda_base"].iloc[0]) if "lmbda_base" in group
                          else math.nan)
            rows.append({"task": task, "beta": float(beta), "lmbda_base": lmbda_base,
                         "metric": metric, "anchor": anchor, "test": label, "method": method,
                         "rate_column": rate_column,
                         **table.iloc[0][values].to_dict()})
    return pd.DataFrame(rows, columns=columns)


def simplest_family(probes: pd.DataFrame) -> str:
    """The non-null family of lowest capacity rank in a probe table (``linear`` when present).

    Raises:
        ValueError: the table has only the ``null`` family.
    """
    ranked = probes[probes["family"] != "null"].sort_values("capacity_rank", kind="stable")
    if ranked.empty:
        raise ValueError("the probe table has no family other than null")
    return str(ranked["family"].iloc[0])


def co_adaptation_table(
    probes: pd.DataFrame,
    rd: Mapping[str, pd.DataFrame],
    gain: pd.DataFrame | None = None,
    *,
    families: Sequence[str] | None = None,
    pair: Mapping[float, float] | None = None,
) -> pd.DataFrame:
    """Per base representation (β, λ): ``I_V`` under simple probe families next to what the
    secondary tasks achieve on that base.

    Args:
        probes: probe table with ``beta`` and ``lmbda`` (see :func:`with_beta_lmbda`).
        rd: task → tidy RD table. Base rows (``strategy == "base"``) give ``bpp_base``;
            ``direct`` rows (one per base λ, ``lmbda_base``) give the direct model's quality.
        gain: :func:`conditional_coding_gain`; joined where its ``(beta, lmbda_base)`` is this
            base (the reproduce pipeline builds scalable curves on the similar-rate pair only,
            so other rows get NaN).
        families: probe families to keep (default: :func:`simplest_family`).
        pair: β → λ of the similar-rate pair, to mark its rows (``in_pair``).

    Returns:
        One row per (β, λ, target, family, secondary task): ``beta``, ``lmbda``, ``repr``,
        ``bpp_base``, ``in_pair``, ``target``, ``family``, ``capacity_rank``, ``iv``,
        ``iv_ci_low``, ``iv_ci_high``, ``task``, ``metric`` (the task's primary metric),
        ``direct_value`` (the direct model's metric on this base; NaN without one),
        ``gain_bd_rate_percent``, ``gain_bd_metric``, ``gain_note`` (NaN / "" where no scalable
        curve was built on this base). Secondary tasks are those with ``direct`` or
        ``scalable`` rows.

    Raises:
        ValueError: missing columns, or none of ``families`` in the table.
    """
    frame = with_beta_lmbda(_require(probes, PROBE_COLUMNS, "probe table"))
    keep = list(families) if families is not None else [simplest_family(frame)]
    frame = frame[frame["family"].isin(keep)]
    if frame.empty:
        raise ValueError(f"the probe table has no family {', '.join(keep)}")
    frame = frame.assign(key_beta=frame["beta"].map(join_key),
                         key_lmbda=frame["lmbda"].map(join_key))

    bases = pd.concat([f[f["strategy"] == BASE_STRATEGY] for f in rd.values()] or [pd.DataFrame()])
    bpp_base = {(join_key(r.beta), join_key(r.lmbda)): float(r.bpp)
                for r in bases.itertuples()}
    pair_keys = {(join_key(b), join_key(v)) for b, v in (pair or {}).items()}
    tasks = [task for task, f in rd.items() if f["strategy"].isin(["direct", "scalable"]).any()]

    rows = []
    for row in frame.itertuples():
        key = (row.key_beta, row.key_lmbda)
        common = {
            "beta": float(row.beta), "lmbda": float(row.lmbda), "repr": row.repr,
            "bpp_base": bpp_base.get(key, math.nan), "in_pair": key in pair_keys,
            "target": row.target, "family": row.family, "capacity_rank": int(row.capacity_rank),
            "iv": float(row.iv), "iv_ci_low": float(row.iv_ci_low),
            "iv_ci_high": float(row.iv_ci_high),
        }
        if not tasks:
            rows.append(common | {"task": None, "metric": None, "direct_value": math.nan,
                                  "gain_bd_rate_percent": math.nan,
                                  "gain_bd_metric": math.nan, "gain_note": ""})
        for task in tasks:
            metric = primary_metric(task)
            rows.append(common | {"task": task, "metric": metric,
                                  "direct_value": _direct_value(rd[task], key, metric),
                                  **_gain(gain, task, key)})
    return pd.DataFrame(rows)


def _direct_value(frame: pd.DataFrame, key: tuple[float, float], metric: str) -> float:
    if "lmbda_base" not in frame.columns:
        return math.nan
    direct = frame[frame["strategy"] == "direct"]
    match = direct[(direct["beta"].map(join_key) == key[0]) & (direct["lmbda_base"].map(join_key)
                                                            == key[1])]
    return float(match[metric].iloc[0]) if len(match) else math.nan


def _gain(gain: pd.DataFrame | None, task: str, key: tuple[float, float]) -> dict[str, Any]:
    empty = {"gain_bd_rate_percent": math.nan, "gain_bd_metric": math.nan, "gain_note": ""}
    if gain is None or gain.empty:
        return empty
    match = gain[(gain["task"] == task) & (gain["beta"].map(join_key) == key[0])
                 & (gain["lmbda_base"].map(join_key) == key[1])]
    if match.empty:
        return empty
    first = match.iloc[0]
    return {"gain_bd_rate_percent": float(first["bd_rate_percent"]),
            "gain_bd_metric": float(first["bd_metric"]),
            "gain_note": "" if pd.isna(first["note"]) else str(first["note"])}


# figures ------------------------------------------------------------------------------------


def _beta_palette(betas: Iterable[float]) -> dict[float, Any]:
    values = sorted({float(b) for b in betas})
    return dict(zip(values, sns.color_palette(n_colors=max(len(values), 1)), strict=False))


def _unit(metric: str) -> str:
    unit = metric_direction(metric).unit if is_known_metric(metric) else ""
    return f"{metric} [{unit}]" if unit else metric


def plot_iv_across_beta(table: pd.DataFrame) -> matplotlib.figure.Figure:
    """``I_V`` against probe capacity rank with CI bands, one line per (β, λ) coloured by β,
    one panel per target.

    Args:
        table: :func:`iv_across_beta`.

    Raises:
        ValueError: an empty table.
    """
    if table.empty:
        raise ValueError("no probe rows to plot")
    targets = list(dict.fromkeys(table["target"]))
    palette = _beta_palette(table["beta"])
    sns.set_theme(style="whitegrid", context="paper")
    figure, axes = plt.subplots(1, len(targets), figsize=(4.2 * len(targets), 3.3),
                                squeeze=False, layout="constrained")
    for axis, target in zip(axes.flat, targets, strict=True):
        rows = table[table["target"] == target]
        for (beta, lmbda), group in rows.groupby(["beta", "lmbda"], sort=True):
            group = group.sort_values("capacity_rank")
            color = palette[float(beta)]
            axis.plot(group["capacity_rank"], group["iv"], marker="o", color=color,
                      label=f"β={beta:g}, λ={lmbda:g}")
            axis.fill_between(group["capacity_rank"], group["iv_ci_low"], group["iv_ci_high"],
                              color=color, alpha=0.2, linewidth=0)
        ticks = rows.drop_duplicates("capacity_rank").sort_values("capacity_rank")
        axis.set_xticks(ticks["capacity_rank"], ticks["family"])
        axis.axhline(0.0, color="0.5", linewidth=0.8)
        axis.set(title=target, xlabel="probe family (capacity rank →)",
                 ylabel="I_V [bits / target pixel]")
        axis.legend(fontsize="small", title=None)
    return figure


def plot_paired_delta(paired: pd.DataFrame) -> matplotlib.figure.Figure:
    """``ΔI_V = I_V(β = 0.1) − I_V(β = 0)`` with its paired CI per probe family (x, by
    capacity rank), one marker colour per λ, one panel per target; the 0 line marks no
    difference.

    Args:
        paired: ``probes_paired.csv``.

    Raises:
        ValueError: an empty table or missing columns.
    """
    frame = paired_summary(paired)
    frame = frame[frame["family"] != "null"]  # ΔI_V of the null family is 0 by definition
    if frame.empty:
        raise ValueError("no paired rows to plot (other than the null family)")
    targets = list(dict.fromkeys(frame["target"]))
    lmbdas = sorted(frame["lmbda"].unique())
    colors = dict(zip(lmbdas, sns.color_palette("viridis", n_colors=len(lmbdas)), strict=True))
    width = 0.6 / max(len(lmbdas), 1)
    sns.set_theme(style="whitegrid", context="paper")
    figure, axes = plt.subplots(1, len(targets), figsize=(4.2 * len(targets), 3.3),
                                squeeze=False, layout="constrained")
    for axis, target in zip(axes.flat, targets, strict=True):
        rows = frame[frame["target"] == target]
        families = list(rows.drop_duplicates("family").sort_values("capacity_rank")["family"])
        position = {family: i for i, family in enumerate(families)}
        for j, lmbda in enumerate(lmbdas):
            group = rows[rows["lmbda"] == lmbda]
            if group.empty:
                continue
            x = group["family"].map(position) + (j - (len(lmbdas) - 1) / 2) * width
            y = group["delta_iv"].to_numpy(float)
            error = np.vstack([y - group["delta_iv_ci_low"], group["delta_iv_ci_high"] - y])
            axis.errorbar(x, y, yerr=np.maximum(error, 0.0), fmt="o", capsize=3,
                          color=colors[lmbda], label=f"λ={lmbda:g}")
        axis.axhline(0.0, color="0.3", linewidth=0.9)
        axis.set_xticks(range(len(families)), families)
        axis.set(title=target, xlabel="probe family (capacity rank →)",
                 ylabel="ΔI_V = I_V(β=0.1) − I_V(β=0) [bits/px]")
        axis.legend(fontsize="small", title=None)
    return figure


def plot_co_adaptation(table: pd.DataFrame,
                       gain: pd.DataFrame | None = None) -> matplotlib.figure.Figure:
    """Co-adaptation: ``I_V`` of the simplest probe family (x, with its CI) against the direct
    model's quality on the same base (y), one point per base representation, coloured by β,
    marker by λ; one panel per probe target (rows: tasks with direct models). A last panel
    shows the conditional-coding gain of the similar-rate pair (BD-rate, scalable vs
    standalone; "n/a" where undefined).

    Args:
        table: :func:`co_adaptation_table`.
        gain: :func:`conditional_coding_gain` (optional last panel).

    Raises:
        ValueError: no row with a direct-model value.
    """
    direct = table[table["direct_value"].notna()]
    if direct.empty:
        raise ValueError("no base representation has a direct model: nothing to plot")
    tasks = list(dict.fromkeys(direct["task"]))
    targets = list(dict.fromkeys(direct["target"]))
    with_gain = gain is not None and not gain.empty
    columns = len(targets) + int(with_gain)
    palette = _beta_palette(direct["beta"])
    markers = dict(zip(sorted(direct["lmbda"].unique()), "osD^vP*X<>", strict=False))
    sns.set_theme(style="whitegrid", context="paper")
    figure, axes = plt.subplots(len(tasks), columns, figsize=(3.6 * columns, 3.2 * len(tasks)),
                                squeeze=False, layout="constrained")
    for i, task in enumerate(tasks):
        rows = direct[direct["task"] == task]
        metric = str(rows["metric"].iloc[0])
        for j, target in enumerate(targets):
            axis = axes[i, j]
            data = rows[rows["target"] == target]
            for r in data.itertuples():
                axis.errorbar(r.iv, r.direct_value,
                              xerr=[[max(r.iv - r.iv_ci_low, 0.0)],
                                    [max(r.iv_ci_high - r.iv, 0.0)]],
                              fmt="none", ecolor=palette[float(r.beta)], alpha=0.5, capsize=2)
            sns.scatterplot(data=data.assign(β=data["beta"].map(lambda b: f"{b:g}"),
                                             λ=data["lmbda"].map(lambda v: f"{v:g}")),
                            x="iv", y="direct_value", hue="β", style="λ",
                            palette={f"{b:g}": c for b, c in palette.items()},
                            markers={f"{v:g}": m for v, m in markers.items()},
                            s=60, ax=axis, legend=(i == 0 and j == 0))
            pair = data[data["in_pair"]]
            axis.scatter(pair["iv"], pair["direct_value"], s=160, facecolors="none",
                         edgecolors="0.2", linewidths=1.0,
                         label="similar-rate pair" if i == 0 and j == 0 else None)
            family = str(data["family"].iloc[0]) if len(data) else ""
            axis.set(title=f"{target} probe ({family})" if family else target,
                     xlabel="I_V [bits / target pixel]",
                     ylabel=f"direct {task}: {_unit(metric)}")
    handles, labels = axes[0, 0].get_legend_handles_labels()
    if axes[0, 0].get_legend() is not None:
        axes[0, 0].get_legend().remove()
    figure.legend(handles, labels, loc="outside right upper", fontsize="small")
    if with_gain:
        _gain_panel(axes[0, -1], gain)
        for axis in axes[1:, -1]:
            axis.set_visible(False)
    return figure


def _gain_panel(axis: Any, gain: pd.DataFrame) -> None:
    palette = _beta_palette(gain["beta"])
    labels = [f"{r.task} β={r.beta:g}" for r in gain.itertuples()]
    values = gain["bd_rate_percent"].to_numpy(float)
    colors = [palette[float(b)] for b in gain["beta"]]
    axis.bar(range(len(values)), np.nan_to_num(values), color=colors)
    for x, value in enumerate(values):
        text = "n/a" if math.isnan(value) else f"{value:+.1f}%"
        axis.annotate(text, (x, 0 if math.isnan(value) else value), ha="center",
                      va="bottom", fontsize="small", xytext=(0, 2), textcoords="offset points")
    axis.axhline(0.0, color="0.3", linewidth=0.9)
    axis.set_xticks(range(len(labels)), labels, fontsize="x-small", rotation=30, ha="right")
    axis.set(title="conditional-coding gain of the pair",
             ylabel="BD-rate scalable vs standalone [%]\n(< 0: conditioning saves bits)")


__all__ = [
    "CONTROL_COLUMNS",
    "co_adaptation_table",
    "conditional_coding_gain",
    "delta_verdict",
    "iv_across_beta",
    "paired_summary",
    "plot_co_adaptation",
    "plot_iv_across_beta",
    "plot_paired_delta",
    "primary_metric",
    "simplest_family",
]
