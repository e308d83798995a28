"""A document as a list of blocks, rendered as Markdown and as one HTML page from the same
blocks (so the two cannot drift): the report (:mod:`vinfo.experiments.report`) and the
reproduce summary (``summary.md``) are written with it.

Blocks: :class:`Heading`, :class:`Paragraph`, :class:`Note` (one italic line),
:class:`Bullets`, :class:`Links`, :class:`Table` (formatted cells; :func:`frame_table` makes
one of a DataFrame), :class:`Image`, :class:`Code`. Plain text is escaped for Markdown.
"""

from __future__ import annotations

import html
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import pandas as pd


@dataclass(frozen=True)
class Heading:
    text: str
    level: int = 2


@dataclass(frozen=True)
class Paragraph:
    text: str


@dataclass(frozen=True)
class Note:
    """A one-line remark (a skipped section, a caveat), rendered in italics."""

    text: str


@dataclass(frozen=True)
class Bullets:
    items: tuple[str, ...]


@dataclass(frozen=True)
class Links:
    """A list of ``(text, relative path)`` links to files in the report directory."""

    items: tuple[tuple[str, str], ...]


@dataclass(frozen=True)
class Table:
    """A table of already formatted cells; ``numeric`` columns are right-aligned."""

    header: tuple[str, ...]
    rows: tuple[tuple[str, ...], ...]
    numeric: tuple[bool, ...]


@dataclass(frozen=True)
class Image:
    """A figure: ``path`` relative to the report directory."""

    path: str
    alt: str
    caption: str


@dataclass(frozen=True)
class Code:
    text: str
    language: str = ""


Block = Heading | Paragraph | Note | Bullets | Links | Table | Image | Code


_MD_SPECIAL = "\\`*_[]<>|#"


def _md(text: str) -> str:
    """Escape Markdown syntax in plain text (``I_V`` must not start emphasis)."""
    return "".join(f"\\{c}" if c in _MD_SPECIAL else c for c in text)


def render_markdown(blocks: Sequence[Block]) -> str:
    """The blocks as Markdown (CommonMark with GitHub tables)."""
    parts = []
    for block in blocks:
        if isinstance(block, Heading):
            parts.append(f"{'#' * block.level} {_md(block.text)}")
        elif isinstance(block, Paragraph):
            parts.append(_md(block.text))
        elif isinstance(block, Note):
            parts.append(f"*{_md(block.text)}*")
        elif isinstance(block, Bullets):
            parts.append("\n".join(f"- {_md(item)}" for item in block.items))
        elif isinstance(block, Links):
            parts.append("\n".join(f"- [{_md(text)}]({path})" for text, path in block.items))
        elif isinstance(block, Table):
            lines = ["| " + " | ".join(_md(h) for h in block.header) + " |",
                     "|" + "|".join("---:" if n else "---" for n in block.numeric) + "|"]
            lines += ["| " + " | ".join(_md(cell) for cell in row) + " |" for row in block.rows]
            parts.append("\n".join(lines))
        elif isinstance(block, Image):
            parts.append(f"![{_md(block.alt)}]({block.path})\n\n*{_md(block.caption)}*")
        elif isinstance(block, Code):
            fence = "````" if "```" in block.text else "```"
            parts.append(f"{fence}{block.language}\n{block.text.rstrip()}\n{fence}")
        else:  # pragma: no cover - the Block union is closed
            raise TypeError(f"unknown block {block!r}")
    return "\n\n".join(parts) + "\n"


_CSS = """
body { font-family: system-ui, sans-serif; max-width: 60rem; margin: 2rem auto;
       padding: 0 1rem; line-height: 1.45; color: #222; }
table { border-collapse: collapse; margin: 1rem 0; font-size: 0.9rem; }
th, td { border: 1px solid #ccc; padding: 0.25rem 0.5rem; vertical-align: top; }
th { background: #f2f2f2; }
td.num { text-align: right; font-variant-numeric: tabular-nums; }
figure { margin: 1rem 0; } img { max-width: 100%; }
figcaption, .note { color: #555; font-style: italic; }
pre { background: #f6f6f6; padding: 0.75rem; overflow-x: auto; font-size: 0.85rem; }
"""


def render_html(blocks: Sequence[Block], title: str) -> str:
    """The blocks as one HTML5 page (inline CSS; images and links relative)."""
    e = html.escape
    body = []
    for block in blocks:
        if isinstance(block, Heading):
            body.append(f"<h{block.level}>{e(block.text)}</h{block.level}>")
        elif isinstance(block, Paragraph):
            body.append(f"<p>{e(block.text)}</p>")
        elif isinstance(block, Note):
            body.append(f'<p class="note">{e(block.text)}</p>')
        elif isinstance(block, Bullets):
            items = "".join(f"<li>{e(item)}</li>" for item in block.items)
            body.append(f"<ul>{items}</ul>")
        elif isinstance(block, Links):
            items = "".join(f'<li><a href="{e(path)}">{e(text)}</a></li>'
                            for text, path in block.items)
            body.append(f"<ul>{items}</ul>")
        elif isinstance(block, Table):
            head = "".join(f"<th>{e(h)}</th>" for h in block.header)
            rows = "".join(
                "<tr>" + "".join(f'<td class="num">{e(c)}</td>' if n else f"<td>{e(c)}</td>"
                                 for c, n in zip(row, block.numeric, strict=True)) + "</tr>"
                for row in block.rows)
            body.append(f"<table><thead><tr>{head}</tr></thead><tbody>{rows}</tbody></table>")
        elif isinstance(block, Image):
            body.append(f'<figure><img src="{e(block.path)}" alt="{e(block.alt)}">'
                        f"<figcaption>{e(block.caption)}</figcaption></figure>")
        elif isinstance(block, Code):
            body.append(f"<pre><code>{e(block.text.rstrip())}</code></pre>")
        else:  # pragma: no cover - the Block union is closed
            raise TypeError(f"unknown block {block!r}")
    return ("<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n"
            f"<title>{e(title)}</title>\n<style>{_CSS}</style>\n</head>\n<body>\n"
            + "\n".join(body) + "\n</body>\n</html>\n")


def frame_table(frame: pd.DataFrame, digits: int = 4) -> Table:
    """``frame`` as a :class:`Table`: floats with ``digits`` significant digits, numbers
    right-aligned, everything else as text."""
    def cell(value: Any) -> str:
        return f"{value:.{digits}g}" if isinstance(value, float) else str(value)

    numeric = tuple(pd.api.types.is_numeric_dtype(frame[column])
                    and not pd.api.types.is_bool_dtype(frame[column]) for column in frame.columns)
    return Table(tuple(map(str, frame.columns)),
                 tuple(tuple(cell(value) for value in row)
                       for row in frame.itertuples(index=False)), numeric)


__all__ = ["Block", "Bullets", "Code", "Heading", "Image", "Links", "Note", "Paragraph", "Table",
           "frame_table", "render_html", "render_markdown"]
