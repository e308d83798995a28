"""The one place that turns library exceptions into one-line messages and exit codes.

Library code raises; commands never catch. :class:`ErrorHandlingGroup` wraps the whole command
tree, so every command, including sub-apps registered later, gets the same behaviour:

* bad input (``ValueError``, ``LookupError``, ``OSError`` and their subclasses, which the
  library uses for invalid arguments, unknown names and missing or unreadable files): one line
  ``error: …`` on stderr, exit code 2, the code click uses for usage errors;
* anything else is a bug: one line ``internal error: …`` and exit code 1.

``vinfo --debug …`` (or ``VINFO_DEBUG=1``) re-raises instead, showing the traceback.
"""

from __future__ import annotations

import os

import typer
from typer.core import TyperGroup

USAGE_EXIT_CODE = 2
INTERNAL_EXIT_CODE = 1
BAD_INPUT_ERRORS: tuple[type[BaseException], ...] = (ValueError, LookupError, OSError)


def debug_enabled(ctx: typer.Context) -> bool:
    root = ctx.find_root()
    return bool((root.obj or {}).get("debug")) or os.environ.get("VINFO_DEBUG") == "1"


def one_line(error: BaseException) -> str:
    """The error's message on one line (multi-line messages are joined with '; ')."""
    text = str(error).strip() or type(error).__name__
    return "; ".join(line.strip() for line in text.splitlines() if line.strip())


class ErrorHandlingGroup(TyperGroup):
    """Typer group that reports library exceptions as one line on stderr."""

    def invoke(self, ctx: typer.Context):  # type: ignore[override]
        try:
            return super().invoke(ctx)
        except (typer.Exit, typer.Abort, typer.TyperException):
            raise  # typer's own usage errors and exits keep their behaviour
        except BAD_INPUT_ERRORS as error:
            if debug_enabled(ctx):
                raise
            typer.echo(f"error: {one_line(error)}", err=True)
            raise typer.Exit(USAGE_EXIT_CODE) from None
        except Exception as error:
            if debug_enabled(ctx):
                raise
            typer.echo(
                f"internal error: {type(error).__name__}: {one_line(error)} "
                "(run with --debug for the traceback)",
                err=True,
            )
            raise typer.Exit(INTERNAL_EXIT_CODE) from None
