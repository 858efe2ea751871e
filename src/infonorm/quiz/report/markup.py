"""Small HTML pieces shared by the report's sections."""

from __future__ import annotations

import math
from html import escape
from typing import Any


def value(v: Any) -> float:
    """A number read back from claims.json, where non-finite floats are strings."""
    if isinstance(v, str):
        return {"inf": math.inf, "-inf": -math.inf, "nan": math.nan}[v]
    return float(v)


def short(v: Any, limit: int = 4) -> str:
    """A compact rendering of an expected or measured value for a table cell."""
    if isinstance(v, float):
        return f"{v:.6g}"
    if isinstance(v, list):
        shown = ", ".join(short(x, limit) for x in v[:limit])
        more = f", … ({len(v)} values)" if len(v) > limit else ""
        return f"[{shown}{more}]"
    if isinstance(v, dict):
        return "{" + ", ".join(f"{k}: {short(x, limit)}" for k, x in v.items()) + "}"
    if v is None:
        return "—"
    return str(v)


def evidence_summary(entry: dict[str, Any]) -> str:
    """One line on how a claim was decided: its largest error against the tolerance."""
    error = entry["details"].get("max_error")
    tolerance = entry["tolerance"]
    if isinstance(error, (int, float)) and isinstance(tolerance, (int, float)):
        kind = "relative " if entry["details"].get("relative") else ""
        return f"{kind}error {error:.2g} (tolerance {tolerance:.0g})"
    if entry["verdict"] == "error":
        return entry["note"]
    return f"measured {short(entry['measured'], 3)}"


def verdict_badge(verdict: str) -> str:
    return f"<span class='verdict {escape(verdict)}'>{escape(verdict)}</span>"


def figure_block(path: str, caption: str) -> str:
    return (
        f"<figure><img src='{escape(path)}' alt='{escape(caption[:120])}'>"
        f"<figcaption>{escape(caption)}</figcaption></figure>"
    )


def table(header: list[str], rows: list[list[str]], *, raw: bool = False) -> str:
    """An HTML table; cells are escaped unless `raw` (for cells that already hold markup)."""
    cell = (lambda c: c) if raw else escape
    head = "".join(f"<th>{escape(h)}</th>" for h in header)
    body = "".join("<tr>" + "".join(f"<td>{cell(c)}</td>" for c in row) + "</tr>" for row in rows)
    return f"<table><tr>{head}</tr>{body}</table>"
