"""`vinfo report` library: every file the Markdown and HTML reference exists, the HTML is well
formed, both carry the same content, missing probe tables become notes, and the generated
reading states only what the intervals show."""

from __future__ import annotations

import json
import math
import re
from html.parser import HTMLParser

import pytest
from test_analysis import paired_frame, probes_frame, write_results  # same directory

from vinfo.experiments.document import (
    Code,
    Heading,
    Image,
    Paragraph,
    Table,
    render_html,
    render_markdown,
)
from vinfo.experiments.report import write_report
from vinfo.experiments.results import load_results

VOID = {"meta", "img", "br", "hr", "link", "input", "col", "source", "wbr"}
MD_LINK = re.compile(r"!?\[(?:\\.|[^\]\\])*\]\(([^)\s]+)\)")


class StrictHTML(HTMLParser):
    """Collects references and text; fails on a closing tag that does not close the last
    open element (html.parser itself accepts anything)."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.stack: list[str] = []
        self.references: list[str] = []
        self.text: list[str] = []
        self.tags: list[str] = []

    def handle_starttag(self, tag, attrs):
        self.tags.append(tag)
        attributes = dict(attrs)
        if tag == "img":
            self.references.append(attributes["src"])
        if tag == "a":
            self.references.append(attributes["href"])
        if tag not in VOID:
            self.stack.append(tag)

    def handle_endtag(self, tag):
        assert self.stack and self.stack[-1] == tag, f"</{tag}> closes {self.stack[-1:]}"
        self.stack.pop()

    def handle_data(self, data):
        self.text.append(data)


def parse_html(text: str) -> StrictHTML:
    parser = StrictHTML()
    parser.feed(text)
    parser.close()
    assert parser.stack == [], f"unclosed elements {parser.stack}"
    return parser


def markdown_references(text: str) -> list[str]:
    return MD_LINK.findall(text)


def check_references_exist(report_dir, references):
    assert references
    for reference in references:
        assert not re.match(r"^[a-z]+:", reference), f"{reference}: not a relative path"
        assert (report_dir / reference).is_file(), f"{reference} is referenced but missing"


@pytest.fixture(scope="module")
def report(tmp_path_factory):
    root = tmp_path_factory.mktemp("results") / "run"
    write_results(root)
    path = write_report(root)
    return root, path


def test_report_references_only_existing_files_and_the_html_is_well_formed(report):
    root, path = report
    out = root / "report"
    assert path == out / "report.md"
    markdown = path.read_text(encoding="utf-8")
    html = parse_html((out / "report.html").read_text(encoding="utf-8"))
    check_references_exist(out, markdown_references(markdown))
    check_references_exist(out, html.references)
    assert sorted(markdown_references(markdown)) == sorted(html.references)
    images = {"fig2.png", "fig3.png", "iv_across_beta.png", "paired_delta.png",
              "co_adaptation.png"}
    assert images <= set(html.references)
    # the same tables in both documents
    assert html.tags.count("table") == len(re.findall(r"^\|(?:---:?\|)+$", markdown, re.M))
    assert html.tags[:2] == ["html", "head"] and "script" not in html.tags


def test_report_sections_and_numbers(report):
    root, path = report
    text = " ".join(parse_html((root / "report" / "report.html").read_text()).text)
    for heading in ("What was run", "BD table", "RD curves", "Conditional-coding gain",
                    "I_V across beta", "Paired difference", "Co-adaptation", "Reading",
                    "Configuration", "Software"):
        assert heading in text
    # the conditional-coding gain of the fixture is exactly −50 % for β = 0.1
    assert "Conditioning on the beta=0.1 base saves 50.0 % of the reconstruction rate" in text
    assert "'base beta=0.1' needs 12.5 % fewer bits than 'base beta=0'" in text
    # the overlap beside each BD value, flagged below min_overlap, and said in the reading
    assert "60.0 (low)" in text and "90.0" in text
    assert "1 of 1 BD values rest on curves that overlap on less than min_overlap" in text
    # the reading lists the intervals that exclude 0, and only those
    assert ("reconstruction/linear at lambda=0.01: ΔI_V +0.0200 [+0.0100, +0.0300] bits/px "
            "(CI above 0)") in text
    assert "depth/conv at lambda=0.01: ΔI_V -0.0200 [-0.0300, -0.0100]" in text
    assert "reconstruction/linear at lambda=0.1:" not in text  # its CI contains 0
    assert "of 8 comparisons (null family excluded), 2 have a CI above 0, 2 below 0 and 4 " \
           "contain 0" in text
    # the I_V table is at the pair's λ: β=0 at λ=0.1, β=0.1 at λ=0.01
    iv_rows = (root / "report" / "iv_across_beta.csv").read_text().splitlines()
    assert len(iv_rows) == 1 + len(set(probes_frame()["target"])) * 3 * 2
    assert "python" in text and "vinfo-toolkit" in text and "torch" in text


def test_report_shows_the_config_it_was_run_with(report):
    root, path = report
    markdown = path.read_text(encoding="utf-8")
    blocks = re.findall(r"^```json\n(.*?)\n```$", markdown, re.M | re.S)
    assert json.loads(blocks[0]) == dict(load_results(root).config)


def test_missing_probe_tables_become_notes(tmp_path):
    root = tmp_path / "run"
    write_results(root, probes=False)
    path = write_report(root, tmp_path / "out")
    markdown = path.read_text(encoding="utf-8")
    assert "No probes.csv in the results directory" in markdown
    assert "co-adaptation figure is skipped" in markdown
    html = parse_html((tmp_path / "out" / "report.html").read_text(encoding="utf-8"))
    check_references_exist(tmp_path / "out", markdown_references(markdown))
    check_references_exist(tmp_path / "out", html.references)
    assert not (tmp_path / "out" / "iv_across_beta.png").exists()
    assert "fig2.png" in html.references  # the RD part is still there


def test_a_directory_without_reproduce_json_is_refused_before_any_output(tmp_path):
    (tmp_path / "run").mkdir()
    with pytest.raises(ValueError, match="no reproduce.json"):
        write_report(tmp_path / "run", tmp_path / "out")
    with pytest.raises(FileNotFoundError):
        write_report(tmp_path / "absent", tmp_path / "out")
    assert not (tmp_path / "out").exists() and not (tmp_path / "run" / "report").exists()
    write_results(tmp_path / "run")
    with pytest.raises(ValueError, match="must differ from the results directory"):
        write_report(tmp_path / "run", tmp_path / "run")


def test_renderers_escape_what_would_change_the_structure():
    blocks = [Heading("I_V of <b>", 1), Paragraph("H_V(Z|Y) and *stars*"),
              Table(("a|b", "n"), (("x_y", "1"),), (False, True)),
              Image("fig.png", "alt_text", "caption"), Code("```\n<tag>", "text")]
    markdown = render_markdown(blocks)
    assert markdown.startswith("# I\\_V of \\<b\\>\n")
    assert "H\\_V(Z\\|Y) and \\*stars\\*" in markdown
    header = markdown.splitlines()[4]
    assert len(re.split(r"(?<!\\)\|", header)) == 4  # two cells: | a\|b | n |
    assert "|---|---:|" in markdown
    assert "````text\n```\n<tag>\n````" in markdown  # a longer fence around a fence
    html = render_html(blocks, "t<")
    parsed = parse_html(html)
    assert "I_V of <b>" in parsed.text and "<tag>" in "".join(parsed.text)
    assert parsed.references == ["fig.png"] and "b" not in parsed.tags


def test_reading_flags_a_difference_that_comes_from_a_negative_iv(tmp_path):
    root = tmp_path / "run"
    write_results(root)
    paired = paired_frame().assign(repr_iv=0.0, anchor_iv=0.0, confidence=0.9)
    index = paired[(paired["target"] == "reconstruction") & (paired["family"] == "linear")
                   & (paired["lmbda"] == 0.01)].index
    paired.loc[index, "anchor_iv"] = -0.02  # ΔI_V = 0 − (−0.02): a probe below its null
    paired.to_csv(root / "probes_paired.csv", index=False)
    text = write_report(root).read_text(encoding="utf-8").replace("\\", "")
    assert ("reconstruction/linear at lambda=0.01: ΔI_V +0.0200 [+0.0100, +0.0300] bits/px (CI "
            "above 0). Note I_V(beta=0/lmbda=0.01) = -0.0200 < 0") in text
    assert "depth/linear at lambda=0.01: ΔI_V -0.0200 [-0.0300, -0.0100] bits/px (CI below 0).\n" \
        in text  # no note where both I_V are non-negative
    assert "at 90% coverage, about 0.8 of 8 intervals" in text  # the recorded coverage


def test_controls_are_reported_when_run_and_noted_when_not(tmp_path, report):
    root, path = report  # the fixture's probe table has no controls
    assert "The controls were not run for this study" in path.read_text(encoding="utf-8")
    root = tmp_path / "run"
    write_results(root)
    probes = probes_frame()
    real = probes["family"] != "null"
    probes["control_iv"] = [0.8 * iv if real_row else math.nan
                            for iv, real_row in zip(probes["iv"], real, strict=True)]
    probes["control_iv_ci_low"] = probes["control_iv"] - 0.01
    probes["control_iv_ci_high"] = probes["control_iv"] + 0.01
    probes["selectivity"] = probes["iv"] - probes["control_iv"]
    probes["shuffled_iv"] = probes["shuffled_iv_ci_low"] = probes["shuffled_iv_ci_high"] = \
        [-0.001 if real_row else math.nan for real_row in real]
    leak = probes.index[real & (probes["target"] == "depth") & (probes["family"] == "conv")
                        & (probes["beta"] == 0.0) & (probes["lmbda"] == 0.1)]
    probes.loc[leak, ["shuffled_iv", "shuffled_iv_ci_low", "shuffled_iv_ci_high"]] = \
        [0.05, 0.02, 0.08]
    probes["shuffled_flag"] = probes.index.isin(leak)
    probes.to_csv(root / "probes.csv", index=False)
    text = " ".join(parse_html(
        (write_report(root).parent / "report.html").read_text(encoding="utf-8")).text)
    assert "Controls" in text and "The controls were not run" not in text
    # rows at the pair's λ (β=0 at 0.1, β=0.1 at 0.01), families above null
    pair = probes[real & (((probes["beta"] == 0.0) & (probes["lmbda"] == 0.1))
                          | ((probes["beta"] == 0.1) & (probes["lmbda"] == 0.01)))]
    low = int(((pair["iv"] > 0) & (pair["selectivity"] < 0.5 * pair["iv"])).sum())
    assert f"1 of {len(pair)} rows flag a leak; {low} with I_V > 0 have a selectivity" in text
    row = probes.loc[leak[0]]
    assert "+0.0500 [+0.020, +0.080]" in text
    assert f"{row['control_iv']:+.4f} [{row['control_iv'] - 0.01:+.3f}, " \
           f"{row['control_iv'] + 0.01:+.3f}]" in text
    assert f"{row['selectivity']:+.4f}" in text
