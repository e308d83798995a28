"""The one place that turns library exceptions into one-line messages and exit codes.

Library code raises; commands never catch. :class:`ErrorHandlingGroup` wraps the whole command
tree, so every command, including sub-apps registered later, gets the same behaviour:

* bad input (``ValueError``, ``LookupError``, ``OSError`` and their subclasses, which the
  library uses for invalid arguments, unknown names and missing or unreadable files): one line
  ``error: …`` on stderr, exit code 2, the code click uses for usage errors; what Python
  raises itself is reworded into plain language naming the path (:func:`plain`);
* usage errors typer catches itself while parsing (missing or unknown option, missing
  argument, a value of the wrong type, unknown command): the same one line and exit code 2,
  instead of typer's multi-line usage box; ``--help`` and "no arguments shows help" are kept;
* runs of a plan that failed (:class:`~vinfo.experiments.plan.PlanError`: a crashed worker, a
  cancelled SLURM job): one line ``error: …`` naming each run with its reason (and log),
  exit code 1; the other runs finished, and a rerun does only what is missing;
* anything else is a bug: one line ``internal error: …`` and exit code 1.

``vinfo --debug …`` (or ``VINFO_DEBUG=1``) re-raises library errors instead, showing the
traceback; usage errors stay one line, they have no traceback worth showing.
"""

from __future__ import annotations

import json
import os
from typing import Any, NoReturn

import typer

try:  # typer >= 0.29 vendors click (no separate ``click`` package); a private module
    from typer._click.exceptions import NoArgsIsHelpError, UsageError
except ImportError:  # typer on top of a separate click
    from click.exceptions import NoArgsIsHelpError, UsageError
from typer.core import TyperGroup

from vinfo.experiments.plan import PlanError

USAGE_EXIT_CODE = 2
INTERNAL_EXIT_CODE = 1
FAILED_RUNS_EXIT_CODE = 1
BAD_INPUT_ERRORS: tuple[type[BaseException], ...] = (ValueError, LookupError, OSError)


def debug_enabled(ctx: typer.Context) -> bool:
    root = ctx.find_root()
    return bool((root.obj or {}).get("debug")) or os.environ.get("VINFO_DEBUG") == "1"


def one_line(error: BaseException) -> str:
    """The error's message on one line (multi-line messages are joined with '; ')."""
    text = str(error).strip() or type(error).__name__
    return "; ".join(line.strip() for line in text.splitlines() if line.strip())


def plain(error: BaseException) -> str:
    """One plain-language line for a bad-input error, naming the path where there is one.

    The library's own messages are kept; what Python itself raises is reworded: an ``OSError``
    from the system (``[Errno 2] No such file or directory: 'x'``) becomes ``x: no such file or
    directory``, a ``KeyError`` of a bare key (``'kind'``) ``missing entry 'kind'``, and a JSON
    decode error says it is one (the library names the file where it reads one).
    """
    if isinstance(error, OSError) and error.strerror and error.errno is not None:
        reason = error.strerror[:1].lower() + error.strerror[1:]
        if error.filename is None:
            return reason
        if error.filename2 is not None:
            return f"{error.filename} -> {error.filename2}: {reason}"
        return f"{error.filename}: {reason}"
    if type(error) is KeyError and len(error.args) == 1 and not (
        isinstance(error.args[0], str) and " " in error.args[0]
    ):
        return f"missing entry {error.args[0]!r}"
    if isinstance(error, json.JSONDecodeError):
        return f"not valid JSON: {error.msg} (line {error.lineno}, column {error.colno})"
    return one_line(error)


def exit_on_usage_error(error: UsageError) -> NoReturn:
    """Print a parsing error as one ``error: …`` line with a pointer to ``--help``; exit 2."""
    hint = f" (see '{error.ctx.command_path} --help')" if error.ctx is not None else ""
    typer.echo(f"error: {one_line(error.format_message())}{hint}", err=True)
    raise typer.Exit(USAGE_EXIT_CODE) from None


class ErrorHandlingGroup(TyperGroup):
    """Typer group that reports library exceptions and usage errors as one line on stderr.

    Usage errors are raised in two places: parsing the root's own options
    (:meth:`make_context`, e.g. ``vinfo --bogus``) and resolving and parsing a sub-command,
    which happens inside :meth:`invoke` for every nested sub-app too.
    """

    def make_context(  # type: ignore[override]
        self, info_name: str | None, args: list[str], parent: Any = None, **extra: Any
    ) -> typer.Context:
        try:
            return super().make_context(info_name, args, parent=parent, **extra)
        except NoArgsIsHelpError:
            raise  # not an error: typer shows the help
        except UsageError as error:
            exit_on_usage_error(error)

    def invoke(self, ctx: typer.Context):  # type: ignore[override]
        try:
            return super().invoke(ctx)
        except NoArgsIsHelpError:
            raise
        except UsageError as error:
            exit_on_usage_error(error)
        except (typer.Exit, typer.Abort, typer.TyperException):
            raise  # exits, aborts and typer's other exceptions keep their behaviour
        except BAD_INPUT_ERRORS as error:
            if debug_enabled(ctx):
                raise
            typer.echo(f"error: {plain(error)}", err=True)
            raise typer.Exit(USAGE_EXIT_CODE) from None
        except PlanError as error:
            if debug_enabled(ctx):
                raise
            typer.echo(f"error: {error} (the other runs finished; rerun to retry only these)",
                       err=True)
            raise typer.Exit(FAILED_RUNS_EXIT_CODE) from None
        except Exception as error:
            if debug_enabled(ctx):
                raise
            typer.echo(
                f"internal error: {type(error).__name__}: {one_line(error)} "
                "(run with --debug for the traceback)",
                err=True,
            )
            raise typer.Exit(INTERNAL_EXIT_CODE) from None
