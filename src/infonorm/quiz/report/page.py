"""index.html: one page that opens offline, its figures as SVG files beside it.

Read from the top, the page answers first what in the quiz holds and what does not (the
verdict, then each wrong line beside its correction); then one card per claim, grouped by
problem, each followed by its numbered figures; then, apart, benchmark results recorded
earlier; then how to reproduce the page.
"""

from __future__ import annotations

from collections.abc import Callable
from html import escape
from pathlib import Path
from types import ModuleType
from typing import Any

from infonorm.quiz.report import benchmarks, geometric, layer_norm, mutual_information
from infonorm.quiz.report.figures import Figures
from infonorm.quiz.report.latex import prose, typeset_symbols
from infonorm.quiz.report.markup import evidence_summary, number, shown, table, verdict_badge
from infonorm.quiz.report.style import STYLE

SECTIONS: dict[str, ModuleType] = {
    "P1": geometric,
    "P2": mutual_information,
    "P3": layer_norm,
}
PROBLEM_NAMES = {"P1": "Problem 1", "P2": "Problem 2", "P3": "Problem 3"}
# the claims about the quiz's printed solution to problem 3, rather than about infonorm
SOLUTION_IDS = (*layer_norm.LINE_IDS, "P3.chain")


def render_page(entries: list[dict[str, Any]], meta: dict[str, Any], folder: Path) -> str:
    fig = Figures(folder)
    by_id = {e["id"]: e for e in entries}
    present = [p for p in SECTIONS if any(e["problem"] == p for e in entries)]
    sections = "".join(
        _problem_section(p, {e["id"]: e for e in entries if e["problem"] == p}, fig)
        for p in present
    )
    appendix = benchmarks.appendix(meta.get("results"), fig)
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>infonorm — Quiz 1 checked</title><style>{STYLE}</style></head>
<body><div class="layout">
{_navigation(present, entries)}
<main>
<header><h1>Quiz 1, checked</h1>
<p class="muted">TTIC 31230 Fundamentals of Deep Learning, Quiz 1: every statement of the quiz
and of its printed solution, checked by infonorm against references outside it (scipy,
scikit-learn, torch's autograd).</p></header>
{_verdict(entries, by_id)}
<h2 id="summary">Every claim at a glance</h2>
{_summary_table(entries)}
{sections}
{appendix}
<h2 id="reproduce">How to reproduce</h2>
{_reproduce(meta)}
</main></div></body></html>
"""


# ---------------------------------------------------------------------------- navigation


def _navigation(present: list[str], entries: list[dict[str, Any]]) -> str:
    """A table of contents that stays in view: a side column on wide screens, a bar on top
    of narrow ones (which then shows the sections only)."""
    links = [("verdict", "Verdict"), ("summary", "Summary")]
    links += [(p, PROBLEM_NAMES[p]) for p in present]
    links += [("benchmarks", "Benchmarks"), ("reproduce", "Reproduce")]
    items = []
    for anchor, text in links:
        claims = "".join(
            f"<li><a href='#{escape(e['id'])}'>{escape(e['id'])}</a> "
            f"<span class='dot {escape(e['verdict'])}' title='{escape(e['verdict'])}'></span></li>"
            for e in entries
            if e["problem"] == anchor
        )
        nested = f"<ul class='claims'>{claims}</ul>" if claims else ""
        items.append(f"<li><a href='#{anchor}'>{escape(text)}</a>{nested}</li>")
    return f"<nav aria-label='contents'><ul>{''.join(items)}</ul></nav>"


# ---------------------------------------------------------------------------- the verdict


def _verdict(entries: list[dict[str, Any]], by_id: dict[str, dict[str, Any]]) -> str:
    """What holds and what does not, in words, then each wrong line beside its fix."""
    answers = "".join(
        f"<li><b>{PROBLEM_NAMES[p]}.</b> {_answer(p, of_problem, by_id)}</li>"
        for p in SECTIONS
        if (of_problem := [e for e in entries if e["problem"] == p])
    )
    fixes = layer_norm.corrections(by_id)
    pairs = "".join(layer_norm.side_by_side(c) for c in fixes)
    fixes_block = (
        "<h3>The wrong lines and their corrections</h3>"
        "<p class='muted'>Each line as printed and as corrected: what is wrong is marked in "
        "red, what the correction changes in green.</p>" + pairs
        if pairs
        else ""
    )
    return (
        "<section id='verdict'><div class='verdict-box'>"
        "<h2>What in the quiz holds, and what does not</h2>"
        f"<ul class='answers'>{answers}</ul>{_tally(entries, by_id)}</div>"
        f"{fixes_block}</section>"
    )


def _answer(problem: str, entries: list[dict[str, Any]], by_id: dict[str, dict]) -> str:
    """One problem's verdict in words: what holds, then each claim that does not."""
    solution = [e for e in entries if e["id"] in SOLUTION_IDS]
    others = [e for e in entries if e["id"] not in SOLUTION_IDS]
    parts = [_solution_sentence(solution, by_id)] if solution else []
    if others:
        parts.append(_holds_sentence(others, SECTIONS[problem].CLAIMS_IN_BRIEF))
    return " ".join(parts)


def _holds_sentence(entries: list[dict[str, Any]], what: str) -> str:
    """'It holds: …' with the count of checks, or how many hold and what the others found."""
    failed = [e for e in entries if e["verdict"] != "confirmed"]
    if not failed:
        return f"It holds that {prose(what)} (all {len(entries)} checks confirmed)."
    wrong = "; ".join(
        f"<a href='#{escape(e['id'])}'>{escape(e['id'])}</a> {escape(e['verdict'])}: "
        f"{prose(evidence_summary(e))}"
        for e in failed
    )
    return (
        f"Claimed: {prose(what)}. {len(entries) - len(failed)} of {len(entries)} checks "
        f"hold; {wrong}."
    )


def _title(entry: dict[str, Any]) -> str:
    return prose(typeset_symbols(entry["title"]))


def _solution_sentence(entries: list[dict[str, Any]], by_id: dict[str, dict]) -> str:
    lines = [e for e in entries if e["id"] in layer_norm.LINE_IDS]
    wrong = [e for e in lines if e["verdict"] != "confirmed"]
    fixes = {c.id: c for c in layer_norm.corrections(by_id)}
    head = f"The printed solution: {len(lines) - len(wrong)} of {len(lines)} equations hold"
    if not wrong:
        items = ""
    else:
        items = "".join(
            f"<li><a href='#fix-{escape(e['id'])}'>{_line_name(e)}</a>: "
            + (
                prose("; ".join(fixes[e["id"]].comparison.changes))
                if e["id"] in fixes
                else prose(evidence_summary(e))
            )
            + ".</li>"
            for e in wrong
        )
        items = f"; {len(wrong)} do not:<ul>{items}</ul>"
    return head + (items or ". ") + prose(layer_norm.chain_explanation(by_id))


def _line_name(entry: dict[str, Any]) -> str:
    """'line 3, σ.grad' (typeset) from the claim's title."""
    return prose(typeset_symbols(entry["title"].replace(": ", ", ", 1)))


def _tally(entries: list[dict[str, Any]], by_id: dict[str, dict]) -> str:
    counts = {v: sum(e["verdict"] == v for e in entries) for v in ("confirmed", "refuted", "error")}
    refuted = [e["id"] for e in entries if e["verdict"] == "refuted"]
    consequence = layer_norm.chain_is_consequence(by_id)
    errors = len(refuted) - (1 if consequence else 0)
    split = (
        f" ({errors} error{'s' if errors != 1 else ''} in the printed solution and P3.chain, "
        "which follows from them)"
        if consequence
        else ""
    )
    broken = (
        f", {counts['error']} could not be evaluated: "
        + ", ".join(e["id"] for e in entries if e["verdict"] == "error")
        if counts["error"]
        else ""
    )
    return (
        f"<p class='tally'>{len(entries)} claims: {counts['confirmed']} confirmed, "
        f"{counts['refuted']} refuted{split}{escape(broken)}.</p>"
    )


# ---------------------------------------------------------------------------- summary and cards


def _summary_table(entries: list[dict[str, Any]]) -> str:
    rows = [
        [
            f"<a href='#{escape(e['id'])}'>{escape(e['id'])}</a> {_title(e)}",
            verdict_badge(e["verdict"]),
            prose(evidence_summary(e)),
            prose(e["reference"]) or "—",
        ]
        for e in entries
    ]
    header = ["claim", "verdict", "evidence", "checked against"]
    return table(header, rows, raw=True, kind="summary")


def _problem_section(problem: str, entries: dict[str, dict[str, Any]], fig: Figures) -> str:
    module = SECTIONS[problem]
    figures: dict[str, list[Callable]] = module.FIGURES
    extra: dict[str, Callable] = getattr(module, "EXTRA_DETAILS", {})
    blocks = [f"<h2 id='{problem}'>{prose(module.TITLE)}</h2><p>{prose(module.INTRO)}</p>"]
    if problem == "P3":
        blocks.append(layer_norm.CHECK_YOUR_OWN)
    corrected = {c.id for c in layer_norm.corrections(entries)}
    for claim_id, entry in entries.items():
        if claim_id == layer_norm.LINE_IDS[0]:
            blocks.append(layer_norm.method(entries))
        # the figures first, so that they are numbered before the card links to them
        shown_figures = "".join(make(entries, fig) for make in figures.get(claim_id, []))
        more = extra[claim_id](entries) if claim_id in extra else ""
        card = _card(entry, fig, entries, more, corrected=claim_id in corrected)
        blocks.append(card + shown_figures)
    return "<section>" + "".join(blocks) + "</section>"


def _card(
    entry: dict[str, Any], fig: Figures, entries: dict[str, dict], more: str, *, corrected: bool
) -> str:
    claim_id = entry["id"]
    d = entry["details"]
    if d.get("latex"):  # a line of the printed solution: its equation, typeset
        statement = "<p>As printed in the solution:</p>" + layer_norm.equation(entry)
        lead = layer_norm.line_evidence(entry)
        evidence = (f"{lead}: " if lead else "") + prose(evidence_summary(entry)) + "."
    else:
        statement = f"<p class='statement'>{prose(entry['statement'])}</p>"
        evidence = prose(evidence_summary(entry)) + "."
    if claim_id == "P3.chain":
        evidence += " " + prose(layer_norm.chain_explanation(entries))
    elif entry["note"] and not d.get("latex"):
        note = entry["note"]
        evidence += (
            f" <code>{escape(note)}</code>"
            if entry["verdict"] == "error"
            else " " + prose(note[:1].upper() + note[1:])
        )
    figures = ", ".join(
        f"<a href='#{anchor}'>Figure {n}</a>" for n, anchor in fig.of_claim.get(claim_id, [])
    )
    fix = (
        f" <a href='#fix-{escape(claim_id)}'>The correction</a> is shown at the top."
        if corrected
        else ""
    )
    reference = prose(entry["reference"]) or "—"
    return (
        f"<article class='card {escape(entry['verdict'])}' id='{escape(claim_id)}'>"
        f"<div class='card-head'><span class='claim-id'>{escape(claim_id)}</span> "
        f"<h3>{_title(entry)}</h3> {verdict_badge(entry['verdict'])}</div>"
        f"{statement}<p><b>Evidence.</b> {evidence}{fix}</p>"
        f"<p><b>Checked against:</b> {reference}.</p>"
        + (f"<p class='see'>See {figures}.</p>" if figures else "")
        + _numbers(entry, more)
        + "</article>"
    )


def _numbers(entry: dict[str, Any], more: str) -> str:
    """The numbers behind the verdict, folded away: each part with its own tolerance, what
    each side gives, anything the section adds; the full arrays stay in claims.json."""
    checks = entry["details"].get("checks") or []
    parts = (
        table(
            ["part", "largest difference", "allowed", "verdict", "reference"],
            [
                [
                    escape(c["label"] or "—"),
                    number(c["max_error"]) + (" (relative)" if c["relative"] else ""),
                    number(c["tolerance"]),
                    escape(c["verdict"]),
                    prose(c["reference"]),
                ]
                for c in checks
            ],
            raw=True,
        )
        if checks
        else ""
    )
    said, found = (
        ("the quiz says", "what was found")
        if isinstance(entry["expected"], (str, dict))
        else ("the quiz's formula gives", "the independent reference gives")
    )
    sides = ""
    # a combined check's sides are lists of its parts' values: its table says more
    if not checks and (entry["expected"] is not None or entry["measured"] is not None):
        sides = (
            f"<dl><dt>{said}</dt><dd>{prose(shown(entry['expected']))}</dd>"
            f"<dt>{found}</dt><dd>{prose(shown(entry['measured']))}</dd></dl>"
        )
    tolerance = (
        f"<p>Allowed difference: {number(entry['tolerance'])}.</p>"
        if isinstance(entry["tolerance"], (int, float))
        else ""
    )
    return (
        "<details><summary>The numbers behind the verdict</summary>"
        f"{sides}{tolerance}{parts}{more}"
        f"<p class='muted'>Checked in {entry['seconds']:.2f} s; every value is in claims.json "
        "beside this page.</p></details>"
    )


# ---------------------------------------------------------------------------- reproducing


def _command(meta: dict[str, Any]) -> str:
    """The command that makes this page, without this machine's own paths."""
    words = ["infonorm", "reproduce"]
    problems = meta.get("problems")
    if problems and list(problems) != list(SECTIONS):
        words += ["--only", ",".join(problems)]
    if meta.get("seed"):
        words += ["--seed", str(meta["seed"])]
    if meta.get("quick"):
        words.append("--quick")
    results = meta.get("results")
    if results:
        words += ["--results", results if not Path(results).is_absolute() else "DIR"]
    return " ".join(words)


def _reproduce(meta: dict[str, Any]) -> str:
    versions = ", ".join(f"{k} {v}" for k, v in meta.get("versions", {}).items())
    mode = "a quick run" if meta.get("quick") else "a full run"
    seconds = meta.get("seconds")
    took = f", {seconds:.0f} s" if isinstance(seconds, (int, float)) else ""
    return (
        f"<pre><code>{escape(_command(meta))}</code></pre>"
        f"<p>This page: seed {escape(str(meta.get('seed', 0)))}, {mode}, "
        f"{escape(str(meta.get('date', '')))}{took} on "
        f"{escape(str(meta.get('platform', 'an unnamed machine')))}.</p>"
        f"<p class='muted'>{escape(versions)}</p>"
        "<p>From a fresh clone, <code>make run</code> sets up <code>.venv</code>, installs and "
        "writes this page to <code>infonorm-report/</code>; <code>make test</code> runs the "
        "test suite. <code>--out DIR</code> writes the page elsewhere.</p>"
    )
