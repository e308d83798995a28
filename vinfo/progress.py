"""The one progress event of the pipeline (issue #18): a line that says what it reports.

Every long step (training a model, evaluating one, fitting a probe, a cell of a job array
finishing or failing, a note such as the chosen similar-rate pair) reports a
:class:`ProgressEvent` to a :data:`Progress` callback. The event *is* its line (a ``str``), so
``print``, ``typer.echo`` or ``list.append`` are callbacks as they are; its :attr:`kind` lets a
consumer count or time the steps without parsing the text (the reproduce pipeline numbers the
``train`` events and gives an ETA from them), as :class:`probes.FitEvent` does for probe fits.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Literal, get_args

Kind = Literal["train", "evaluate", "probe", "submitted", "finished", "failed", "note"]
"""What an event reports: a model starts training, a model is evaluated, a probe was fitted,
jobs were submitted, a job finished, a job failed, or anything else worth a line."""

KINDS: tuple[str, ...] = get_args(Kind)


class ProgressEvent(str):
    """One progress line and its :attr:`kind`.

    Args:
        kind: one of :data:`KINDS`.
        text: the line.
    """

    kind: Kind

    def __new__(cls, kind: Kind, text: str) -> ProgressEvent:
        if kind not in KINDS:
            raise ValueError(f"unknown progress kind {kind!r}; valid: {', '.join(KINDS)}")
        event = super().__new__(cls, text)
        event.kind = kind
        return event

    def __getnewargs__(self) -> tuple[str, str]:  # type: ignore[override]  # pickles as (kind, text)
        return self.kind, str(self)

    def __repr__(self) -> str:
        return f"ProgressEvent({self.kind!r}, {str(self)!r})"

    def retext(self, text: str) -> ProgressEvent:
        """The same kind of event with another line (a prefix, a counter added)."""
        return ProgressEvent(self.kind, text)


Progress = Callable[[ProgressEvent], None]
"""A progress callback: called with one :class:`ProgressEvent` per step."""


def note(text: str) -> ProgressEvent:
    """An event of kind ``note``."""
    return ProgressEvent("note", text)


def silent(event: ProgressEvent) -> None:
    """The progress callback that reports nothing."""


__all__ = ["KINDS", "Kind", "Progress", "ProgressEvent", "note", "silent"]
