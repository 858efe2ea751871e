"""index.html: one self-contained page that opens offline."""

from __future__ import annotations

from html import escape
from pathlib import Path
from typing import Any

PROBLEM_TITLES = {
    "P1": "Problem 1 — optimizing cross-entropy for Q_λ(k) = (1 − λ)λ^k",
    "P2": "Problem 2 — maximum mutual information training",
    "P3": "Problem 3 — backpropagation for layer normalization",
}

STYLE = """
body { font: 15px/1.5 system-ui, sans-serif; margin: 2rem auto; max-width: 72rem;
       padding: 0 1rem; color: #1d2330; }
h1 { font-size: 1.7rem; margin-bottom: .2rem; } h2 { margin-top: 2.2rem; }
table { border-collapse: collapse; width: 100%; margin: .8rem 0; font-size: 14px; }
th, td { border-bottom: 1px solid #dde1e8; padding: .35rem .5rem; text-align: left;
         vertical-align: top; }
th { background: #f3f5f8; }
td.num { font-family: ui-monospace, monospace; white-space: nowrap; }
.verdict { font-weight: 600; padding: .05rem .45rem; border-radius: .3rem; }
.confirmed { background: #dcf3e3; color: #14532d; }
.refuted { background: #fde7d9; color: #7c2d12; }
.error { background: #fde2e2; color: #7f1d1d; }
.muted { color: #5b6474; } .note { margin: .3rem 0 0; }
"""


def render_page(entries: list[dict[str, Any]], meta: dict[str, Any], folder: Path) -> str:
    counts = {v: sum(e["verdict"] == v for e in entries) for v in ("confirmed", "refuted", "error")}
    sections = "".join(
        _problem_section(problem, [e for e in entries if e["problem"] == problem])
        for problem in PROBLEM_TITLES
        if any(e["problem"] == problem for e in entries)
    )
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>infonorm — Quiz 1 reproduced</title><style>{STYLE}</style></head>
<body>
<h1>infonorm — Quiz 1 reproduced</h1>
<p class="muted">{len(entries)} claims: {counts["confirmed"]} confirmed, {counts["refuted"]}
refuted, {counts["error"]} in error. Each is checked against a reference independent of the
quiz's own formulas.</p>
<h2>Summary</h2>
{_summary_table(entries)}
{sections}
<h2>How to reproduce</h2>
{_reproduce(meta)}
</body></html>
"""


def _summary_table(entries: list[dict[str, Any]]) -> str:
    rows = "".join(
        f"<tr><td><a href='#{escape(e['id'])}'>{escape(e['id'])}</a></td>"
        f"<td>{escape(e['statement'])}</td><td>{_verdict(e['verdict'])}</td>"
        f"<td class='num'>{escape(short(e['expected']))}</td>"
        f"<td class='num'>{escape(short(e['measured']))}</td>"
        f"<td>{escape(e['reference'])}</td></tr>"
        for e in entries
    )
    return (
        "<table><tr><th>claim</th><th>the quiz says</th><th>verdict</th><th>expected</th>"
        f"<th>measured</th><th>independent reference</th></tr>{rows}</table>"
    )


def _problem_section(problem: str, entries: list[dict[str, Any]]) -> str:
    body = "".join(_claim_block(e) for e in entries)
    return f"<h2>{escape(PROBLEM_TITLES[problem])}</h2>{body}"


def _claim_block(entry: dict[str, Any]) -> str:
    note = f"<p class='note'>{escape(entry['note'])}</p>" if entry["note"] else ""
    tolerance = entry["tolerance"]
    tol = f"tolerance {escape(short(tolerance))}; " if tolerance is not None else ""
    return (
        f"<h3 id='{escape(entry['id'])}'>{escape(entry['id'])} — {escape(entry['title'])} "
        f"{_verdict(entry['verdict'])}</h3>"
        f"<p>{escape(entry['statement'])}</p>"
        f"<p class='muted'>{tol}checked against {escape(entry['reference'])}; "
        f"{entry['seconds']:.2f} s</p>{note}"
    )


def _reproduce(meta: dict[str, Any]) -> str:
    versions = ", ".join(f"{k} {v}" for k, v in meta.get("versions", {}).items())
    return (
        f"<p><code>{escape(str(meta.get('command', '')))}</code> — seed {meta.get('seed')}, "
        f"{'quick' if meta.get('quick') else 'full'} run, {escape(str(meta.get('date', '')))}, "
        f"{meta.get('seconds', 0):.1f} s.</p><p class='muted'>{escape(versions)}</p>"
    )


def _verdict(verdict: str) -> str:
    return f"<span class='verdict {escape(verdict)}'>{escape(verdict)}</span>"


def short(value: Any, limit: int = 4) -> str:
    """A compact rendering of an expected or measured value for a table cell."""
    if isinstance(value, float):
        return f"{value:.6g}"
    if isinstance(value, list):
        shown = ", ".join(short(v, limit) for v in value[:limit])
        more = f", … ({len(value)} values)" if len(value) > limit else ""
        return f"[{shown}{more}]"
    if value is None:
        return "—"
    return str(value)
