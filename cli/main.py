"""The ``vinfo`` command: one Typer app, sub-commands registered from the modules beside it."""

from __future__ import annotations

import warnings

import matplotlib
import typer

from bdrate import DEFAULT_METHOD
from cli import bdrate as bdrate_command
from cli import data as data_command
from cli import eval as eval_command
from cli import probe as probe_command
from cli import rd as rd_command
from cli import report as report_command
from cli import reproduce as reproduce_command
from cli import train as train_command
from cli.bdrate import METHOD_HELP
from cli.errors import ErrorHandlingGroup

app = typer.Typer(
    name="vinfo",
    cls=ErrorHandlingGroup,
    help=(
        "vinfo: task-compatible compressible representations. Bjøntegaard metrics, learned "
        "codecs and V-information probes for learned scalable coding.\n\n"
        "Sign conventions: BD-rate is in percent, negative = the test curve needs fewer bits "
        "for the same quality (better). BD-metric is in the metric's unit, positive = the test "
        "curve is better at equal rate, whatever the metric's direction.\n\n"
        "Interpolation methods (vinfo bdrate --method), named as in the bjontegaard package: "
        f"{METHOD_HELP} (default {DEFAULT_METHOD}). Each value comes with the curves' overlap; "
        "one the data cannot support is an error."
    ),
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)


@app.callback()
def main(
    ctx: typer.Context,
    debug: bool = typer.Option(
        False, "--debug", help="Show tracebacks instead of one-line errors."
    ),
) -> None:
    # commands write figures to files and never open windows; the library selects no backend,
    # so that notebooks keep their inline one
    matplotlib.use("Agg")
    warnings.formatwarning = _one_line_warning
    ctx.obj = {"debug": debug}


def _one_line_warning(message: Warning | str, category: type[Warning], *_: object,
                      **__: object) -> str:
    """Warnings on stderr as one ``warning: …`` line (e.g. an unreadable image skipped)."""
    return f"warning: {message}\n"


app.command(name="bdrate")(bdrate_command.bdrate)
app.add_typer(data_command.app, name="data")
app.add_typer(probe_command.app, name="probe")
app.add_typer(train_command.app, name="train")
app.command(name="eval")(eval_command.eval_command)
app.command(name="rd")(rd_command.rd)
app.command(name="reproduce")(reproduce_command.reproduce_command)
app.command(name="report")(report_command.report_command)


if __name__ == "__main__":  # pragma: no cover
    app()
