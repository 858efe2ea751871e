"""index.html: one page that opens offline, its figures as SVG files beside it."""

from __future__ import annotations

from collections.abc import Callable
from html import escape
from pathlib import Path
from typing import Any

from infonorm.quiz.report import geometric, layer_norm, mutual_information
from infonorm.quiz.report.figures import Figures
from infonorm.quiz.report.markup import short, verdict_badge

PROBLEMS: dict[str, tuple[str, str, Callable[[dict[str, dict], Figures], str]]] = {
    "P1": (
        "Problem 1 — optimizing cross-entropy for Q_λ(k) = (1 − λ)λ^k",
        "For a population Pop on k ≥ 0 with mean μ, the quiz derives H(Pop, Q_λ) = −(ln(1−λ) + "
        "μ ln λ), its minimizer λ* = μ/(μ+1) and the mean of Q_λ*, which equals μ. Each step "
        "is checked on four parametric populations and three real count data sets.",
        geometric.figures,
    ),
    "P2": (
        "Problem 2 — maximum mutual information training",
        "The quiz compares cross-entropy training with maximizing I(y; ŷ) of the joint "
        "P(y, ŷ) = E_x Pop(y|x) Q(ŷ|x): a perfect predictor is optimal for both, and a perfect "
        "anti-predictor is optimal for mutual information too. Both are checked by "
        "computation on several populations and by training runs from many seeds.",
        mutual_information.figures,
    ),
    "P3": (
        "Problem 3 — backpropagation for layer normalization",
        "The quiz normalizes a layer L[t, i] by its mean μ and standard deviation σ over all "
        "t and i, applies a per-feature affine map A[i], B[i] and an activation, and writes the "
        "backpropagation equations. Each printed line is checked on its own; infonorm's own "
        "forward and hand-written backward are checked against autograd and finite "
        "differences, and timed against what users run today.",
        layer_norm.figures,
    ),
}

STYLE = """
body { font: 15px/1.55 system-ui, -apple-system, "Segoe UI", sans-serif; margin: 0;
       color: #1d2330; background: #fbfbfd; }
main { max-width: 76rem; margin: 0 auto; padding: 1.5rem 1.2rem 4rem; }
h1 { font-size: 1.75rem; margin: .2rem 0; } h2 { margin-top: 2.6rem; border-bottom: 2px solid
#e3e7ee; padding-bottom: .3rem; } h3 { margin: 1.6rem 0 .3rem; font-size: 1.05rem; }
nav a { margin-right: 1rem; }
table { border-collapse: collapse; width: 100%; margin: .8rem 0; font-size: 13.5px;
        background: white; }
th, td { border-bottom: 1px solid #e3e7ee; padding: .35rem .5rem; text-align: left;
         vertical-align: top; }
th { background: #f1f4f8; font-weight: 600; }
td.num, .num { font-family: ui-monospace, SFMono-Regular, Menlo, monospace; font-size: 12.5px; }
.verdict { font-weight: 600; padding: .05rem .45rem; border-radius: .3rem; font-size: 12.5px;
           white-space: nowrap; }
.confirmed { background: #dcf3e3; color: #14532d; }
.refuted { background: #fde7d9; color: #9a3412; }
.error { background: #fde2e2; color: #7f1d1d; }
.muted { color: #5b6474; } .note { margin: .3rem 0 0; }
.cards { display: flex; gap: .8rem; flex-wrap: wrap; margin: 1rem 0; }
.card { background: white; border: 1px solid #e3e7ee; border-radius: .5rem; padding: .6rem 1rem; }
.card b { font-size: 1.4rem; display: block; }
figure { margin: 1.2rem 0; background: white; border: 1px solid #e3e7ee; border-radius: .5rem;
         padding: .8rem; }
figure img { max-width: 100%; height: auto; display: block; margin: 0 auto; }
figcaption { color: #4b5563; font-size: 13.5px; margin-top: .4rem; }
img.eq { vertical-align: middle; max-width: 100%; }
p.fix { margin: .5rem 0 0; padding-top: .4rem; border-top: 1px dashed #e3e7ee; }
.line { background: white; border: 1px solid #e3e7ee; border-radius: .5rem; padding: .3rem .8rem
        .6rem; margin: .5rem 0; overflow-x: auto; }
.line p { margin: .3rem 0; }
.findings li { margin: .5rem 0; }
code { background: #eef1f5; padding: .1rem .3rem; border-radius: .25rem; }
"""


def render_page(entries: list[dict[str, Any]], meta: dict[str, Any], folder: Path) -> str:
    fig = Figures(folder)
    counts = {v: sum(e["verdict"] == v for e in entries) for v in ("confirmed", "refuted", "error")}
    present = [p for p in PROBLEMS if any(e["problem"] == p for e in entries)]
    sections = "".join(
        _problem_section(p, {e["id"]: e for e in entries if e["problem"] == p}, fig)
        for p in present
    )
    nav = " ".join(f"<a href='#{p}'>{p}</a>" for p in present)
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>infonorm — Quiz 1 reproduced</title><style>{STYLE}</style></head>
<body><main>
<h1>infonorm — Quiz 1 reproduced</h1>
<p class="muted">TTIC 31230 Fundamentals of Deep Learning, Quiz 1: every claim of the quiz and of
its printed solution, checked against a reference independent of the quiz's own formulas.</p>
<nav><a href="#findings">Findings</a> <a href="#summary">Summary</a> {nav}
<a href="#reproduce">Reproduce</a></nav>
<div class="cards">
<div class="card"><b>{len(entries)}</b>claims checked</div>
<div class="card"><b>{counts["confirmed"]}</b>confirmed</div>
<div class="card"><b>{counts["refuted"]}</b>refuted (the source does not hold)</div>
<div class="card"><b>{counts["error"]}</b>could not be evaluated</div>
</div>
{_findings(entries)}
<h2 id="summary">Summary</h2>
{_summary_table(entries)}
{sections}
<h2 id="reproduce">How to reproduce</h2>
{_reproduce(meta)}
</main></body></html>
"""


def _findings(entries: list[dict[str, Any]]) -> str:
    """The claims of the source that do not hold, first, in words."""
    refuted = [e for e in entries if e["verdict"] == "refuted"]
    if not refuted:
        return ""
    items = "".join(
        f"<li><a href='#{escape(e['id'])}'>{escape(e['id'])}</a> — {escape(e['statement'])}"
        f"<br><span class='muted'>{escape(e['note'])}</span></li>"
        for e in refuted
    )
    return (
        "<h2 id='findings'>Where the quiz's printed solution does not hold</h2>"
        f"<ul class='findings'>{items}</ul>"
    )


def _summary_table(entries: list[dict[str, Any]]) -> str:
    rows = "".join(
        f"<tr><td><a href='#{escape(e['id'])}'>{escape(e['id'])}</a></td>"
        f"<td>{escape(e['statement'])}</td><td>{verdict_badge(e['verdict'])}</td>"
        f"<td class='num'>{escape(short(e['expected']))}</td>"
        f"<td class='num'>{escape(short(e['measured']))}</td>"
        f"<td>{escape(e['reference'])}</td></tr>"
        for e in entries
    )
    return (
        "<table><tr><th>claim</th><th>the quiz says</th><th>verdict</th><th>expected</th>"
        f"<th>measured</th><th>independent reference</th></tr>{rows}</table>"
    )


def _problem_section(problem: str, entries: dict[str, dict], fig: Figures) -> str:
    title, intro, figures = PROBLEMS[problem]
    blocks = "".join(_claim_block(e) for e in entries.values())
    return (
        f"<h2 id='{problem}'>{escape(title)}</h2><p>{escape(intro)}</p>"
        f"{figures(entries, fig)}{blocks}"
    )


def _claim_block(entry: dict[str, Any]) -> str:
    note = f"<p class='note'>{escape(entry['note'])}</p>" if entry["note"] else ""
    tolerance = entry["tolerance"]
    tol = f"tolerance {escape(short(tolerance))}; " if tolerance is not None else ""
    error = entry["details"].get("max_error")
    err = f"largest difference {error:.3g}; " if isinstance(error, float) else ""
    return (
        f"<h3 id='{escape(entry['id'])}'>{escape(entry['id'])} — {escape(entry['title'])} "
        f"{verdict_badge(entry['verdict'])}</h3>"
        f"<p>{escape(entry['statement'])}</p>"
        f"<p class='muted'>{err}{tol}checked against {escape(entry['reference'])}; "
        f"{entry['seconds']:.2f} s</p>{note}"
    )


def _reproduce(meta: dict[str, Any]) -> str:
    versions = ", ".join(f"{k} {v}" for k, v in meta.get("versions", {}).items())
    mode = "quick" if meta.get("quick") else "full"
    return (
        f"<p><code>{escape(str(meta.get('command', 'infonorm reproduce')))}</code></p>"
        f"<p>seed {meta.get('seed')}, {mode} run, {escape(str(meta.get('date', '')))}, "
        f"{meta.get('seconds', 0):.1f} s on {escape(str(meta.get('platform', '')))}.</p>"
        f"<p class='muted'>{escape(versions)}</p>"
        "<p>From a fresh clone: <code>make run</code> sets up <code>.venv</code>, installs, "
        "and runs the command above; <code>make test</code> runs the test suite.</p>"
    )
