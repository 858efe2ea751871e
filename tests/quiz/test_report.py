import json
import re
from html import unescape
from html.parser import HTMLParser
from types import SimpleNamespace

import pytest

from infonorm.quiz import report as report_module
from infonorm.quiz.claims import Claim, Context, run
from infonorm.quiz.claims.engine import holds
from infonorm.quiz.report import write_report
from infonorm.quiz.report.latex import compare, mathml, plain, prose, typeset_symbols


def _results():
    claims = [
        Claim(
            "P1.a",
            "P1",
            "a statement <with> markup & more",
            lambda ctx: holds(True, expected=1.0, measured=1.0, reference="ref"),
        ),
        Claim(
            "P3.line3",
            "P3",
            "σ.grad = …",
            lambda ctx: holds(
                False,
                expected=[1.0, 2.0],
                measured=[1.0, -2.0],
                reference="autograd",
                note="sign error",
            ),
        ),
    ]
    return run(claims, Context())


def test_report_writes_claims_meta_and_escaped_page(tmp_path):
    out = write_report(_results(), tmp_path / "r", {"seed": 3, "command": "infonorm reproduce"})
    entries = json.loads((out / "claims.json").read_text())
    assert [e["id"] for e in entries] == ["P1.a", "P3.line3"]
    assert entries[1]["verdict"] == "refuted"
    page = (out / "index.html").read_text()
    assert "&lt;with&gt; markup &amp; more" in page
    assert "sign error" in page.lower()
    assert json.loads((out / "meta.json").read_text())["seed"] == 3


def test_failed_render_leaves_previous_report_intact(tmp_path, monkeypatch):
    out = tmp_path / "r"
    write_report(_results(), out, {"seed": 1})
    before = (out / "claims.json").read_text()

    def broken(*args):
        raise RuntimeError("render failed")

    monkeypatch.setattr(report_module, "render_page", broken)
    with pytest.raises(RuntimeError, match="render failed"):
        write_report(_results()[:1], out, {"seed": 2})
    assert (out / "claims.json").read_text() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["r"]


def test_report_replaces_previous_one(tmp_path):
    out = tmp_path / "r"
    write_report(_results(), out, {})
    write_report(_results()[:1], out, {})
    assert len(json.loads((out / "claims.json").read_text())) == 1
    assert sorted(p.name for p in tmp_path.iterdir()) == ["r"]


def test_report_refuses_a_file_as_folder(tmp_path):
    target = tmp_path / "f"
    target.write_text("x")
    with pytest.raises(ValueError, match="folder"):
        write_report(_results(), target, {})


# ---------------------------------------------------------------------------- the real page


class _Page(HTMLParser):
    """What the structural checks need from index.html: figures with their captions, tables
    with the boxes around them, ids, links and the text a reader sees outside math."""

    # elements whose text is not prose: math is typeset, code is code
    NOT_PROSE = frozenset({"math", "code", "pre", "style", "title"})

    def __init__(self):
        super().__init__()
        self.stack: list[tuple[str, dict]] = []
        self.figures: list[dict] = []
        self.tables_outside_scroll = 0
        self.ids: list[str] = []
        self.links: list[str] = []
        self.images: list[str] = []
        self.prose: list[str] = []
        self.sections: list[str] = []

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if "id" in attrs:
            self.ids.append(attrs["id"])
        if tag == "a" and attrs.get("href", "").startswith("#"):
            self.links.append(attrs["href"][1:])
        if tag == "img":
            self.images.append(attrs["src"])
        if tag == "figure":
            self.figures.append({"id": attrs.get("id"), "caption": ""})
        if tag == "table" and not any("scroll" in a.get("class", "") for _, a in self.stack):
            self.tables_outside_scroll += 1
        if tag in ("h2", "section") and "id" in attrs:
            self.sections.append(attrs["id"])
        if tag not in ("img", "br", "meta", "input"):
            self.stack.append((tag, attrs))

    def handle_endtag(self, tag):
        while self.stack:
            if self.stack.pop()[0] == tag:
                break

    def handle_data(self, data):
        tags = [t for t, _ in self.stack]
        if any(t == "figcaption" for t in tags) and self.figures:
            self.figures[-1]["caption"] += data
        in_statement = any("statement" in a.get("class", "") for _, a in self.stack)
        if not self.NOT_PROSE & set(tags) and not in_statement:
            self.prose.append(data)


# LaTeX or its plain-text imitations, outside typeset math: a command, a braced script, a
# one-letter symbol with a subscript (Q_λ, E_x, y_b), λ*, Σ_
PSEUDO_LATEX = re.compile(r"\\[A-Za-z]+|[_^]\{|\$|(?<![\w.])[A-Za-zλμσΣΛ]_[\wλμσ{(]|λ\*|Σ_")
# math marked for typesetting, which the page turns into MathML
INLINE_MATH = re.compile(r"(?<!\\)\$.+?(?<!\\)\$")
RECORD = {
    "command": "infonorm bench --op layer_norm --device cpu --out /home/someone/out/x.json",
    "environment": {"date": "2026-11-26 01:37 UTC", "processor": "a test CPU", "threads": 2,
                    "torch": "2.13.0"},
    "columns": ["scope", "shape", "ours ms", "composite ms"],
    "rows": [{"scope": "layer", "shape": "2×3×4", "ours ms": 1.5, "composite ms": 3.0}],
    "notes": ["median wall time over alternating rounds", "target: ours <= 0.7 (met)",
              "goal 2× the fastest peer: missed"],
}  # fmt: skip


@pytest.fixture(scope="module")
def page(tmp_path_factory):
    """One quick reproduce for all the checks below, with one recorded benchmark."""
    from infonorm.quiz.cli import main

    root = tmp_path_factory.mktemp("page")
    results = root / "results"
    results.mkdir()
    (results / "layer_norm-cpu.json").write_text(json.dumps(RECORD), encoding="utf-8")
    out = root / "report"
    assert main(["reproduce", "--quick", "--out", str(out), "--results", str(results)]) == 0
    html = (out / "index.html").read_text(encoding="utf-8")
    parsed = _Page()
    parsed.feed(html)
    return SimpleNamespace(
        out=out,
        root=root,
        html=html,
        parsed=parsed,
        entries=json.loads((out / "claims.json").read_text()),
    )


def test_every_claim_has_a_card_and_nothing_failed_to_run(page):
    from infonorm.quiz.claims import all_claims

    assert [e["id"] for e in page.entries] == [c.id for c in all_claims()]
    assert not [e["id"] for e in page.entries if e["verdict"] == "error"]
    for entry in page.entries:
        assert entry["id"] in page.parsed.ids


def test_every_figure_is_numbered_in_order_and_its_panels_exist(page):
    figures = page.parsed.figures
    assert len(figures) >= 10
    numbers = [int(re.match(r"Figure (\d+)\.", f["caption"]).group(1)) for f in figures]
    assert numbers == list(range(1, len(figures) + 1))
    assert len(page.parsed.images) >= 20
    assert not [src for src in page.parsed.images if not (page.out / src).is_file()]


def test_every_link_inside_the_page_has_its_target(page):
    missing = sorted(set(page.parsed.links) - set(page.parsed.ids))
    assert not missing


def test_no_table_outside_a_box_that_scrolls(page):
    assert page.html.count("<table") >= 2
    assert page.parsed.tables_outside_scroll == 0


def test_no_math_left_as_latex_or_its_plain_text_imitation(page):
    text = " ".join(page.parsed.prose)
    assert not PSEUDO_LATEX.findall(text)
    assert page.html.count("<math") >= 50


def test_the_page_opens_with_the_verdict_then_the_summary(page):
    sections = page.parsed.sections
    assert sections.index("verdict") < sections.index("summary") < sections.index("P1")
    verdict = page.html[page.html.index("id='verdict'") : page.html.index('id="summary"')]
    assert "missing minus sign" in verdict
    assert "is meant" in verdict  # line 3: one activation derivative where another is meant
    assert "P3.chain fails only because of those lines" in verdict
    assert 'class="wrong"' in verdict
    assert 'class="changed"' in verdict


def test_the_summary_shows_sentences_not_data(page):
    summary = page.html[page.html.index("class='summary'") :]
    summary = summary[: summary.index("</table>")]
    assert "values)]" not in summary
    assert "expected" not in summary
    assert "measured" not in summary
    assert not re.search(r"\d\.\d{5,}", summary)  # no tolerance like 2.01481e-10


def test_benchmarks_are_an_appendix_of_recorded_results_without_goals(page):
    appendix = page.html[page.html.index("id='benchmarks'") : page.html.index('id="reproduce"')]
    assert "recorded earlier" in appendix
    assert "Not measured by this run" in appendix
    assert "2026-11-26 01:37 UTC" in appendix
    assert "a test CPU" in appendix
    assert "infonorm bench --op layer_norm --device cpu</code>" in appendix
    assert "median wall time" in appendix
    assert "target" not in appendix
    assert "goal" not in appendix
    # the benchmarks sit after every claim
    assert page.html.index("id='benchmarks'") > page.html.index("id='P3.chain'")


def test_the_page_shows_no_path_of_the_machine_that_made_it(page):
    assert str(page.root) not in page.html
    assert "/home/someone" not in page.html
    assert "<code>infonorm reproduce --quick --results DIR</code>" in page.html


def test_without_results_the_appendix_says_none_were_recorded(tmp_path):
    from infonorm.quiz.report.benchmarks import appendix
    from infonorm.quiz.report.figures import Figures

    html = appendix(None, Figures(tmp_path))
    assert "No benchmark results were recorded for this report" in html
    assert "<figure" not in html
    empty = appendix(str(tmp_path), Figures(tmp_path))
    assert "No benchmark results were recorded" in empty


def test_results_must_name_a_folder(tmp_path, capsys):
    from infonorm.quiz.cli import main

    code = main(["reproduce", "--quick", "--results", str(tmp_path / "nowhere")])
    assert code == 2
    assert "--results" in capsys.readouterr().err


# ---------------------------------------------------------------------------- math


def test_prose_typesets_math_and_escapes_the_rest():
    html = prose(r"a <b> & $x^2 + \lambda$ and \$5")
    assert html.startswith("a &lt;b&gt; &amp; <math")
    assert "<msup>" in html
    assert "λ" in unescape(html)
    assert html.endswith("and $5")


def test_math_that_cannot_be_parsed_is_shown_as_its_source():
    assert mathml(r"\frac{") == r"<code>\frac{</code>"


def test_compare_names_a_missing_sign_and_a_wrong_argument_and_marks_them():
    printed = r"y.grad = \sum_i a[i] f'(h[i]) w"
    corrected = r"y.grad = -\sum_i a[i] f'(W h[i] + b) w"
    comparison = compare(printed, corrected)
    assert comparison.changes == (
        "missing minus sign",
        "$f ' ( h [ i ] )$ where $f ' ( W h [ i ] + b )$ is meant",
    )
    assert r"\class{changed}{-}" in comparison.corrected
    assert r"\class{changed}{W}" in comparison.corrected
    assert r"\class{changed}{+ b}" in comparison.corrected
    assert r"\class{wrong}{f ' ( h [ i ] )}" in comparison.printed
    for marked in (comparison.printed, comparison.corrected):
        assert "<code>" not in mathml(marked, display=True)


def test_compare_of_equal_formulas_finds_nothing():
    comparison = compare(r"\mu.grad = \frac{1}{\sigma}", r"\mu.grad = \frac{1}{\sigma}")
    assert comparison.changes == ()
    assert r"\class" not in comparison.corrected


def test_the_quizs_plain_symbols_are_typeset():
    assert typeset_symbols("line 3: σ.grad") == r"line 3: $\sigma .grad$"
    assert typeset_symbols("only σ'(h) changed") == r"only $\sigma '(h)$ changed"
    assert typeset_symbols("μ.grad via L̃") == r"$\mu .grad\text{ via }\tilde{L}$"
    assert typeset_symbols("A and B") == "A and B"


@pytest.mark.parametrize(
    ("text", "shown"),
    [
        (r"scipy on $H(\mathrm{Pop}, Q_\lambda)$", "scipy on H(Pop, Q_λ)"),
        (r"$\sum_{k \le K} k (1 - \lambda^*) \lambda^{*k}$", "Σ_(k ≤ K) k (1 − λ^*) λ^(*k)"),
        (r"$\mathrm{Pop}(k)\,(-\ln Q_\lambda(k))$", "Pop(k) (−ln Q_λ(k))"),
        (r"$I \ge 0$ costs \$5 - not math", "I ≥ 0 costs $5 - not math"),
    ],
)
def test_plain_writes_inline_math_for_a_terminal(text, shown):
    assert plain(text) == shown
