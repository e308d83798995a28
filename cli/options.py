"""Help texts and option checks shared by several commands (one definition, the same words
everywhere)."""

from __future__ import annotations

from collections.abc import Callable

import typer

from vinfo.data import PRESETS
from vinfo.models.base import check_beta, check_lmbda

SYNTHETIC_PRESET_HELP = f"Synthetic preset: {', '.join(PRESETS)}."


def _checked(check: Callable[[float], float]) -> Callable[..., object]:
    """A typer callback applying the library's ``check`` to an option (one value or a list).

    Typer's ``min=`` cannot say "> 0" and lets NaN through; this runs while the command line is
    parsed, so a bad value is one usage line (exit 2) before any work or file.
    """

    def callback(value: float | list[float] | None) -> float | list[float] | None:
        try:
            for item in value if isinstance(value, list) else [] if value is None else [value]:
                check(item)
        except ValueError as error:
            raise typer.BadParameter(str(error)) from None
        return value

    return callback


check_lmbda_option = _checked(check_lmbda)
"""Callback of every ``--lmbda`` option: each λ finite and > 0."""

check_beta_option = _checked(check_beta)
"""Callback of every ``--beta`` option: β finite and ≥ 0."""
