"""Small HTML pieces shared by the report's sections, and the one-line evidence of a claim."""

from __future__ import annotations

import math
from html import escape
from typing import Any

from infonorm.quiz.claims.engine import difference_sentence
from infonorm.quiz.claims.engine import number as _number


def value(v: Any) -> float:
    """A number read back from claims.json, where non-finite floats are strings."""
    if isinstance(v, str):
        return {"inf": math.inf, "-inf": -math.inf, "nan": math.nan}[v]
    return float(v)


def number(v: Any) -> str:
    """A number from claims.json for a sentence (6e−16), or a dash if there is none."""
    if isinstance(v, (int, float, str)) and not isinstance(v, bool):
        try:
            return _number(value(v))
        except (KeyError, ValueError):
            return str(v)
    return "—"


def shown(v: Any, limit: int = 3) -> str:
    """A compact rendering of a value: numbers to 3 digits, long lists cut."""
    if isinstance(v, bool) or v is None:
        return "—" if v is None else str(v)
    if isinstance(v, (int, float)):
        return f"{v:.3g}".replace("-", "−")
    if isinstance(v, list):
        more = f", … ({len(v)} values)" if len(v) > limit else ""
        return "[" + ", ".join(shown(x, limit) for x in v[:limit]) + more + "]"
    if isinstance(v, dict):
        return "; ".join(f"{k}: {shown(x, limit)}" for k, x in v.items())
    return str(v)


def details_of(entries: dict[str, dict[str, Any]], claim_id: str) -> dict[str, Any]:
    return entries[claim_id]["details"] if claim_id in entries else {}


def cell(value: Any) -> str:
    """A benchmark figure in a table: 3 significant digits, — where there is none."""
    if value is None:
        return "—"
    if isinstance(value, float):
        return f"{value:.3g}"
    return str(value)


def evidence_summary(entry: dict[str, Any]) -> str:
    """One sentence, plain text, on how a claim was decided.

    The claim's own summary when it wrote one; else its largest error against its
    tolerance; for a check that could not run, its error message.
    """
    if entry["verdict"] == "error":
        return entry["note"]
    if entry.get("summary"):
        return entry["summary"]
    error = entry["details"].get("max_error")
    tolerance = entry["tolerance"]
    if isinstance(error, (int, float)) and isinstance(tolerance, (int, float)):
        relative = bool(entry["details"].get("relative"))
        return difference_sentence(float(error), float(tolerance), relative=relative)
    return f"measured {shown(entry['measured'])}"


def verdict_badge(verdict: str) -> str:
    return f"<span class='verdict {escape(verdict)}'>{escape(verdict)}</span>"


def table(header: list[str], rows: list[list[str]], *, raw: bool = False, kind: str = "") -> str:
    """An HTML table in a box that scrolls sideways on its own when the table is wider than
    the screen. Cells are escaped unless `raw`; every cell carries its column's name, so
    that a narrow screen can show each row as a list."""
    cell = (lambda c: c) if raw else escape
    head = "".join(f"<th>{escape(h)}</th>" for h in header)
    body = "".join(
        "<tr>"
        + "".join(
            f"<td data-label='{escape(h)}'>{cell(c)}</td>" for h, c in zip(header, row, strict=True)
        )
        + "</tr>"
        for row in rows
    )
    css = f" class='{escape(kind)}'" if kind else ""
    return f"<div class='scroll'><table{css}><tr>{head}</tr>{body}</table></div>"
