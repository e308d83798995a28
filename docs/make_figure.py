"""Regenerate the README picture, docs/img/iv_across_beta.png, with the tool itself.

    .venv/bin/python docs/make_figure.py [--results results/tiny --preset tiny] [--out ...png]

Reuses the finished ``vinfo reproduce`` run in ``--results`` (``make demo`` writes
results/tiny), or runs (resumes) ``--preset`` into it first, takes the probe tables it wrote
and draws I_V against probe capacity for the similar-rate pair with the same function
``vinfo report`` uses (:func:`vinfo.experiments.analysis.plot_iv_across_beta`). The figure
stays under 150 KB.
"""

from __future__ import annotations

import argparse
import textwrap
from pathlib import Path

from vinfo.experiments.analysis import iv_across_beta, plot_iv_across_beta
from vinfo.experiments.demo import demo_results
from vinfo.experiments.results import load_results, probe_tables
from vinfo.figures import save_figure

ROOT = Path(__file__).resolve().parent.parent
MAX_BYTES = 150_000


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--results", type=Path, default=ROOT / "results" / "tiny",
                        help="results directory of `vinfo reproduce` (run into if unfinished)")
    parser.add_argument("--preset", default="tiny", help="reproduce preset of --results")
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "img" / "iv_across_beta.png")
    args = parser.parse_args()
    results = load_results(demo_results(None, args.results, preset=args.preset, progress=print))
    probes, _ = probe_tables(results)
    figure = plot_iv_across_beta(iv_across_beta(probes, results.pair_lmbdas))
    title = (f"I_V against probe capacity at the similar-rate pair, bands: 95% bootstrap CIs "
             f"({results.description})")
    figure.suptitle("\n".join(textwrap.wrap(title, 150)), fontsize="small")
    figure.tight_layout()
    args.out.parent.mkdir(parents=True, exist_ok=True)
    (path,) = save_figure(figure, args.out.with_suffix(".png"))
    size = path.stat().st_size
    if size > MAX_BYTES:
        raise SystemExit(f"{path}: {size} bytes, more than the {MAX_BYTES} allowed in docs/img")
    print(f"wrote {path} ({size // 1000} KB)")


if __name__ == "__main__":
    main()
