"""``vinfo probe``: predictive V-information of frozen representations, and the registries.

``vinfo probe --repr A --repr B --target depth --family linear,resnet`` runs the probes (the
group's callback is the main action: it runs when no sub-command is named), while
``vinfo probe families`` and ``vinfo probe targets`` list the registries.
"""

from __future__ import annotations

import inspect
from pathlib import Path

import pandas as pd
import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from cli.options import (
    check_executor,
    executor_option,
    slurm_cpus_per_task_option,
    slurm_executor,
    slurm_folder_option,
    slurm_gpus_per_node_option,
    slurm_partition_option,
    slurm_time_option,
    workers_option,
)
from probes import (
    DEFAULT_SEEDS,
    ESTIMATORS,
    FAMILIES,
    TARGETS,
    FitEvent,
    Representation,
    VInfoProbe,
    probe_files,
)
from probes.estimator import NULLS
from probes.grid import GridExecutor
from vinfo.experiments.plan import ProcessExecutor
from vinfo.io import FIGURE_SUFFIXES, check_output_file, write_table_atomic
from vinfo.lock import folder_lock

app = typer.Typer(invoke_without_command=True, no_args_is_help=True)


def _library_default(function, name: str):
    """The default of ``function``'s parameter ``name``: the library is the one source of the
    defaults the options' help states (an option left out is not passed on)."""
    return inspect.signature(function).parameters[name].default


_TABLE_COLUMNS = {
    "repr": "repr", "target": "target", "family": "family", "capacity_rank": "rank",
    "params": "params", "h_null": "H(Z|∅)", "h_cond": "H(Z|Y)", "gap": "gap", "iv": "I_V",
    "iv_ci": "CI", "iv_best": "I_V best", "selectivity": "select.", "iv_normalized": "I_V/H",
    "task_metric": "metric",
    "null": "null",
    "flags": "flags",
}


def _names(values: list[str] | None) -> list[str] | None:
    """Comma-separated and repeated options → one list (``None`` if not given)."""
    if not values:
        return None
    return [name.strip() for value in values for name in value.split(",") if name.strip()]


_PAIRED_COLUMNS = {
    "target": "target", "family": "family", "capacity_rank": "rank", "repr": "repr",
    "repr_iv": "I_V", "anchor_iv": "I_V anchor", "delta_iv": "ΔI_V", "delta_ci": "CI",
}


def _paired_table(paired: pd.DataFrame) -> str:
    table = paired.assign(
        delta_ci=[f"[{low:+.4f}, {high:+.4f}]" for low, high in
                  zip(paired["delta_iv_ci_low"], paired["delta_iv_ci_high"], strict=True)],
    )[list(_PAIRED_COLUMNS)].rename(columns=_PAIRED_COLUMNS)
    return table.to_string(index=False, float_format=lambda value: f"{value:+.4f}", na_rep="-")


FLAGS = {
    "no_gain_flag": "N",
    "budget_flag": "B",
    "shuffled_flag": "S",
    "capacity_flag": "C",
}
"""Table letter of each boolean flag column of :func:`probes.study.run_probes`."""


def _flags(frame: pd.DataFrame) -> list[str]:
    present = [(column, letter) for column, letter in FLAGS.items() if column in frame]
    return ["".join(letter for column, letter in present if bool(row[column])) or "-"
            for _, row in frame.iterrows()]


_MDL_COLUMNS = {
    "repr": "repr", "target": "target", "family": "family", "capacity_rank": "rank",
    "params": "params", "online_bits_per_pixel": "online", "online_ci": "CI",
    "null_per_pixel": "null online", "mdl_iv": "online I_V", "mdl_iv_ci": "CI ",
    "compression": "vs uniform", "compression_null": "vs null", "first_block": "block 1",
}


def _mdl_table(frame: pd.DataFrame) -> str:
    def ci(name: str) -> list[str]:
        return [f"[{low:+.4f}, {high:+.4f}]" for low, high in
                zip(frame[f"{name}_ci_low"], frame[f"{name}_ci_high"], strict=True)]

    table = frame.assign(online_ci=ci("online_bits_per_pixel"), mdl_iv_ci=ci("mdl_iv"),
                         null_per_pixel=frame["null_online_bits"] / frame["pixels"])
    table = table[list(_MDL_COLUMNS)].rename(columns=_MDL_COLUMNS)
    return table.to_string(index=False, float_format=lambda value: f"{value:.4f}", na_rep="-")


def _table(frame: pd.DataFrame) -> str:
    table = frame.assign(
        iv_ci=[f"[{low:+.4f}, {high:+.4f}]" for low, high in
               zip(frame["iv_ci_low"], frame["iv_ci_high"], strict=True)],
        flags=_flags(frame),
        task_metric=[f"{name} {value:.3g}" for name, value in
                     zip(frame["metric"], frame["metric_value"], strict=True)],
    )
    columns = {key: name for key, name in _TABLE_COLUMNS.items() if key in table}
    table = table[list(columns)].rename(columns=columns)
    return table.to_string(index=False, float_format=lambda value: f"{value:.4f}", na_rep="-")


@app.callback()
def probe(
    ctx: typer.Context,
    representations: list[Path] = typer.Option(
        None, "--repr", "-r", show_default=False,
        help="A vinfo base-codec checkpoint (.safetensors + .json), a representation bundle, "
        "a CompressAI model compressai:ARCH:weights=PATH[:q=Q][:latent=y|z], or any torch "
        "encoder MODULE:FUNCTION / FILE.py:FUNCTION (repeatable: several are probed on the "
        "same images and seeds, paired)."),
    target: list[str] = typer.Option(
        None, "--target", "-t", show_default=False,
        help=f"Target(s), comma-separated or repeated: {', '.join(TARGETS.names())}."),
    family: list[str] = typer.Option(
        None, "--family", "-f", show_default=False,
        help=f"Probe families, comma-separated: {', '.join(FAMILIES.names())}. "
        "Default: linear."),
    dataset: str = typer.Option(
        None, "--dataset", show_default=False,
        help="Dataset (default: the one recorded in the checkpoint, else synthetic); images: "
        "a folder (--data-root), centre-cropped to its smallest size."),
    data_root: Path = typer.Option(None, "--data-root", show_default=False,
                                   help="Dataset root (COCO, Cityscapes, an image folder)."),
    split: str = typer.Option(None, "--split", show_default=False,
                              help="Dataset split (default: recorded, else the dataset's "
                              "validation split: val, COCO val2017)."),
    preset: str = typer.Option(None, "--preset", show_default=False,
                               help="Synthetic preset (default: recorded, else tiny)."),
    n_images: int = typer.Option(None, "--n-images", show_default=False, min=1,
                                 help="Use only the first N images of the split."),
    downscale: int = typer.Option(
        None, "--downscale", show_default=False,
        help="Shrink images and targets by this factor, the codec's input resolution "
        "(default: recorded in the checkpoint, else 1)."),
    seeds: int = typer.Option(None, "--seeds", show_default=False, min=1,
                              help="Training seeds per probe (default "
                              f"{DEFAULT_SEEDS['iv']}); with --estimator mdl the block orders "
                              f"(default {DEFAULT_SEEDS['mdl']})."),
    bootstrap: int = typer.Option(None, "--bootstrap", show_default=False, min=1,
                                  help="Bootstrap resamples of the CIs (default "
                                  f"{_library_default(probe_files, 'n_resamples')})."),
    null: str = typer.Option(None, "--null", show_default=False,
                             help=f"Null predictor: {', '.join(NULLS)} (the only one: a free "
                             "distribution per target pixel, the null of every family)."),
    width: int = typer.Option(None, "--width", show_default=False, min=1,
                              help="Hidden width of the families (default: family default)."),
    max_epochs: int = typer.Option(None, "--max-epochs", show_default=False, min=1,
                                   help="Epoch budget of every conditional fit (default "
                                   f"{_library_default(VInfoProbe, 'max_epochs')}; the null is "
                                   "fitted to convergence)."),
    cache_dir: Path = typer.Option(
        None, "--cache-dir", show_default=False,
        help="Representation cache (default $VINFO_CACHE_DIR or ~/.cache/vinfo)."),
    out: Path = typer.Option(None, "--out", "-o", show_default=False,
                             help="Write the full table (.csv or .json)."),
    anchor: str = typer.Option(
        None, "--anchor", show_default=False,
        help="Representation the others are compared with (name or --repr path; default: "
        "the first)."),
    paired_out: Path = typer.Option(
        None, "--paired-out", show_default=False,
        help="Write the paired ΔI_V table against the anchor (.csv or .json)."),
    as_json: bool = typer.Option(False, "--json", help="Print JSON records instead of a table."),
    plot: Path = typer.Option(None, "--plot", show_default=False,
                              help="Plot I_V (mdl: the online I_V) against the parameter count "
                              "of each family, with CI bands (.png, .pdf, .svg)."),
    estimator: str = typer.Option(
        "iv", "--estimator", show_default=True,
        help="iv: held-out V-information; mdl: online code length (Voita & Titov 2020) of the "
        "training targets in blocks of growing size, --seeds block orders."),
    pvi_maps: Path = typer.Option(
        None, "--pvi-maps", show_default=False,
        help="Directory for per-pixel PVI maps (.npy + .png) and per-image totals."),
    pvi_images: int = typer.Option(None, "--pvi-images", show_default=False, min=0,
                                   help="PVI maps written per probe (default "
                                   f"{_library_default(probe_files, 'pvi_images')})."),
    executor: str = executor_option("the probe fits run", "local: one after another in "
                                    "this process"),
    workers: int = workers_option("one per core"),
    grid_dir: Path = typer.Option(
        None, "--grid-dir", show_default=False,
        help="With --executor processes|slurm: where every fit (one cell) writes its result; a "
        r"rerun fits only the cells without one \[default: OUT's name + -cells, else "
        "./probe-cells]."),
    slurm_partition: str = slurm_partition_option(),
    slurm_gpus_per_node: int = slurm_gpus_per_node_option(),
    slurm_time: int = slurm_time_option(),
    slurm_cpus_per_task: int = slurm_cpus_per_task_option(),
    slurm_folder: Path = slurm_folder_option("GRID_DIR/slurm"),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="No progress on stderr."),
) -> None:
    """V-information probes: H_V(Z|∅), H_V(Z|Y), I_V = H_V(Z|∅) − H_V(Z|Y), bits per pixel.

    Run with --repr …, or list the registries: 'vinfo probe families', 'vinfo probe targets'.

    Fit on a train split, early-stop on validation NLL, score the test images once.

    CIs bootstrap the test images and the seeds (paired between representations).

    I_V is the mean over seeds; "I_V best" the seed with the best validation NLL (H_V is an
    infimum). select. = I_V − I_V on the control task (random target patches per
    representation type, Hewitt & Liang 2019).

    Flags: N = no fit beat the null on validation by 1.645 standard errors (I_V is the raw test
    difference), B = a fit stopped on its epoch budget (may not have converged), S = the
    shuffled-representation control above 0.01 bits with its CI above 0, C = below a
    lower-capacity family.

    With several --repr: ΔI_V = I_V(repr) − I_V(anchor) with a paired CI (same images, seeds).

    --estimator mdl: the online code length of the training targets, blocks of 0.1 %, 0.2 %,
    ..., 100 % of the images, each sent with the family fitted on the blocks before it (the
    first with the uniform code; left out for depth, which has none). Columns: online bits per
    target pixel, the null's, online I_V = their difference, compression against the uniform
    code and the null; CIs across --seeds block orders (default 3).

    --executor processes|slurm: every (repr, target, family, seed) fit is a cell of a grid,
    fitted by worker processes or as one SLURM job array; each writes its result to
    --grid-dir, the table is the same as in this process, a rerun fits only what is missing.

    Example: vinfo probe --repr b0.safetensors --repr b01.safetensors --target depth
    --family linear,resnet --seeds 3 --out probes.csv --plot iv.png
    """
    if ctx.invoked_subcommand is not None:
        return
    from probes.report import plot_iv_by_capacity
    from vinfo.figures import save_figure

    targets, families = _names(target), _names(family) or ["linear"]
    if estimator not in ESTIMATORS:
        raise ValueError(f"--estimator must be one of {', '.join(ESTIMATORS)}, got {estimator!r}")
    mdl = estimator == "mdl"
    if mdl:
        refused = [name for name, given in (("--paired-out", paired_out), ("--pvi-maps", pvi_maps),
                                            ("--bootstrap", bootstrap), ("--anchor", anchor),
                                            ("--pvi-images", pvi_images)) if given is not None]
        if refused:
            raise ValueError(f"{', '.join(refused)}: not with --estimator mdl (held-out fits "
                             "only)")
    if not representations:
        raise ValueError("give at least one --repr (or a sub-command: families, targets)")
    if not targets:
        raise ValueError(f"give --target: {', '.join(TARGETS.names())}")
    for name in targets:  # looked up before the progress display starts: one error line
        TARGETS.get(name)
    for name in families:
        FAMILIES.get(name)
    check_output_file(out, (".csv", ".json"), "the table")
    check_output_file(paired_out, (".csv", ".json"), "the paired table")
    check_output_file(plot, FIGURE_SUFFIXES, "a plot")
    if pvi_maps is not None and pvi_maps.exists() and not pvi_maps.is_dir():
        raise ValueError(f"{pvi_maps}: --pvi-maps must be a directory")
    if seeds is not None and seeds < 1:
        raise ValueError(f"--seeds must be at least 1, got {seeds}")
    grid, grid_dir = _grid(check_executor(executor), workers, grid_dir, out, mdl, pvi_maps,
                           {"folder": slurm_folder, "partition": slurm_partition,
                            "gpus_per_node": slurm_gpus_per_node, "time_min": slurm_time,
                            "cpus_per_task": slurm_cpus_per_task})
    # one writer per folder: the folders receiving outputs are locked until the command ends
    outputs = {path.parent for path in (out, paired_out, plot) if path is not None}
    outputs |= {grid_dir} if grid_dir is not None else set()
    for folder in sorted({path.resolve() for path in outputs | {pvi_maps} if path is not None}):
        ctx.with_resource(folder_lock(folder))
    probe_kwargs = {key: value for key, value in
                    (("null", null), ("width", width), ("max_epochs", max_epochs))
                    if value is not None}
    options = {key: value for key, value in
               (("n_resamples", bootstrap), ("pvi_images", pvi_images)) if value is not None}
    console = Console(stderr=True)

    def loaded(representation: Representation) -> None:
        if not quiet:
            origin = "from cache" if representation.from_cache else "computed"
            console.print(f"{representation.name}: ŷ {tuple(representation.bundle.y_hat.shape)} "
                          f"{origin} ({representation.path})", highlight=False,
                          soft_wrap=True)

    with Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                  TimeElapsedColumn(), console=console, disable=quiet) as progress:
        seeds = seeds or DEFAULT_SEEDS[estimator]
        total = len(representations) * len(targets) * len(families) * seeds
        task = progress.add_task("fitting probes", total=None if mdl else total)

        def grid_message(message: str) -> None:
            console.print(message, markup=False, highlight=False, soft_wrap=True)

        def fitted(event: FitEvent) -> None:
            progress.update(task, advance=1, description=f"{event.repr} {event.target} "
                            f"{event.family} seed {event.seed}")

        run = probe_files(
            representations, targets, families, tuple(range(seeds)),
            estimator=estimator, dataset=dataset,
            root=data_root, split=split, preset=preset, n_images=n_images, downscale=downscale,
            cache_dir=cache_dir, probe_kwargs=probe_kwargs, pvi_dir=pvi_maps,
            on_representation=loaded, callback=fitted, anchor=anchor, grid=grid,
            grid_dir=grid_dir, progress=None if quiet else grid_message, **options)
    frame, paired = run.frame, run.paired
    if out is not None:
        write_table_atomic(out, frame)
    if paired_out is not None:
        write_table_atomic(paired_out, paired)
    if plot is not None:
        save_figure(plot_iv_by_capacity(frame, "mdl_iv" if mdl else "iv"), plot)
    if as_json:
        typer.echo(frame.to_json(orient="records", indent=2))
        return
    if mdl:
        first = frame.iloc[0]
        typer.echo(f"data: {first['source']}; online code of {first['n_train_images']} training "
                   f"images in {first['n_blocks']} blocks, {first['n_orders']} block order(s); "
                   "bits per target pixel")
        typer.echo(_mdl_table(frame))
        typer.echo("online: online code length per target pixel (Voita & Titov 2020); null "
                   "online: the same with the per-pixel null of each fit; online I_V = null − "
                   "family; vs uniform / vs null: compression ratios (code length of the uniform "
                   "code or the null over the family's). block 1: sent with the uniform code, or "
                   "excluded (a density has no uniform code). CIs: Student t across block "
                   "orders.")
        return
    typer.echo(f"data: {frame['source'].iloc[0]}; bits per target pixel; "
               f"{frame['n_test_images'].iloc[0]} test images, {frame['n_seeds'].iloc[0]} "
               f"seed(s), {frame['n_resamples'].iloc[0]} bootstrap resamples")
    typer.echo(_table(frame))
    typer.echo("H(Z|∅), H(Z|Y), I_V: bits per target pixel (depth: differential bits). "
               "gap: test − train H(Z|Y). I_V/H: I_V / H(Z|∅) (discrete targets). metric: of the "
               "probe's prediction (psnr dB, rmse depth unit, miou). I_V best: the seed with the "
               "best validation NLL. select.: I_V − I_V of the control task (Hewitt & Liang). "
               "flags: N no fit clearly beat the null on validation (I_V is the raw test "
               "difference), B budget-stopped fit, S shuffled control above 0.01 with its CI above "
               "0, C capacity "
               "drop. null: every H(Z|∅) is the positional null, a free distribution per target "
               "pixel fitted to convergence.")
    if len(run.representations) > 1:
        typer.echo("")
        typer.echo(f"paired ΔI_V vs {paired['anchor'].iloc[0]}")
        typer.echo(_paired_table(paired))
        typer.echo("ΔI_V = I_V(repr) − I_V(anchor), bits per target pixel; CI: paired bootstrap "
                   "over the same test images and seeds.")


def _default_grid_dir(out: Path | None) -> Path:
    """Where the cells of a grid write their results without --grid-dir."""
    return Path("probe-cells") if out is None else out.with_name(f"{out.stem}-cells")


def _grid(executor: str | None, workers: int | None, grid_dir: Path | None, out: Path | None,
          mdl: bool, pvi_maps: Path | None, slurm: dict[str, object]
          ) -> tuple[GridExecutor | None, Path | None]:
    """The grid executor the options name and its folder (``None, None``: every fit in this
    process)."""
    folder = grid_dir or _default_grid_dir(out)
    on_slurm = slurm_executor(executor, folder / "slurm", **slurm)  # type: ignore[arg-type]
    if executor not in ("processes", "slurm"):
        given = [name for name, value in (("--workers", workers), ("--grid-dir", grid_dir))
                 if value is not None]
        if given:
            raise ValueError(f"{', '.join(given)}: only with --executor processes or slurm")
        return None, None
    if mdl or pvi_maps is not None:
        raise ValueError(f"--executor {executor} fits held-out cells: not with --estimator mdl "
                         "or --pvi-maps")
    return on_slurm or ProcessExecutor(workers), folder


@app.command()
def families() -> None:
    """List the probe families, by capacity rank."""
    for name, entry in sorted(FAMILIES.items(), key=lambda item: item[1].capacity_rank):
        typer.echo(f"{entry.capacity_rank}  {name:<10} {entry.description}")


@app.command()
def targets() -> None:
    """List the probe targets, with the dataset field and metric each reads."""
    for name, entry in TARGETS.items():
        mask = f" (mask {entry.mask_field})" if entry.mask_field else ""
        typer.echo(f"{name:<15} field {entry.field}{mask}, metric {entry.metric}: "
                   f"{entry.description}")
