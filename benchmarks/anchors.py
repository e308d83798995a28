"""The codecs the speed benchmarks compare: vinfo's at each transform layout, and the size of
CompressAI's ``mbt2018`` anchor.

``linear`` is vinfo's codec at the anchor's own ``N = 96, M = 192`` (identical size: the
comparison of issue #17). ``authors`` is the ``paper`` preset, the authors' transforms
(widths 24, 48, 192 and the latent's 192; ``CodecConfig.layout``), which has no single ``N``
to match: it is timed against the same anchor, the one of the same ``M``.
"""

from __future__ import annotations

import argparse

from vinfo.models import CodecConfig, codec_preset

ANCHOR_N, ANCHOR_M = 96, 192
"""``N, M`` of the ``mbt2018`` anchor."""

LAYOUT_CONFIGS: dict[str, CodecConfig] = {
    "linear": CodecConfig(N=ANCHOR_N, M=ANCHOR_M),
    "authors": codec_preset("paper"),
}


def add_layout_argument(parser: argparse.ArgumentParser) -> None:
    """``--layout``: which of :data:`LAYOUT_CONFIGS` is timed (default ``linear``)."""
    parser.add_argument("--layout", choices=tuple(LAYOUT_CONFIGS), default="linear",
                        help="vinfo's codec: linear (N = 96, M = 192, the anchor's size) or "
                             "authors (the paper preset: widths 24, 48, 192, 192)")


def anchor_n(config: CodecConfig) -> int:
    """``N`` of the ``mbt2018`` to compare ``config`` with: its own in the linear layout, else
    :data:`ANCHOR_N` (the authors' layout has no single ``N``)."""
    return config.N if config.layout == "linear" else ANCHOR_N


def anchor_size(config: CodecConfig) -> str:
    """What the anchor shares with ``config``: ``same N, M``, ``same M`` or ``another M``."""
    if config.M != ANCHOR_M:
        return "another M"
    return "same N, M" if config.layout == "linear" and config.N == ANCHOR_N else "same M"
