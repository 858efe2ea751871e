"""Problem 3 in the report: the quiz's equations line by line, gradient checks, benchmarks."""

from __future__ import annotations

import re
from html import escape
from typing import Any

import numpy as np

from infonorm.quiz.report.benchmarks import benchmark_figures
from infonorm.quiz.report.figures import COLORS, Figures
from infonorm.quiz.report.markup import figure_block, short, verdict_badge

LINE_IDS = (
    *(f"P3.line{n}" for n in range(1, 9)),
    "P3.combined.A",
    "P3.combined.B",
    "P3.combined.L",
)


def figures(entries: dict[str, dict[str, Any]], fig: Figures) -> str:
    blocks = [_derivation_table(entries, fig)]
    chain = entries.get("P3.chain")
    if chain is not None and chain["verdict"] != "error":
        blocks.append(f"<p>{verdict_badge(chain['verdict'])} {escape(chain['note'])}</p>")
    backward = entries.get("P3.backward", {}).get("details", {})
    if "rows" in backward:
        blocks.append(_gradient_checks(backward["rows"], fig))
    blocks.append(benchmark_figures("layer_norm", fig))
    return "".join(blocks)


def _mathtext(latex: str) -> str:
    """The transcription typeset for reading: `.grad` upright, `+=` as one operator,
    fractions in display size. The text in claims.json stays exactly as printed."""
    latex = re.sub(r"\.grad\b", r".\\mathrm{grad}", latex)
    latex = latex.replace("+=", "{+}{=}").replace(r"\frac", r"\dfrac")
    return "$" + latex + "$"


def _equation(fig: Figures, name: str, latex: str) -> str:
    path = fig.equation(name, _mathtext(latex))
    if path is None:  # a construct mathtext cannot set: show the source instead
        return f"<code>{escape(latex)}</code>"
    return f"<img class='eq' src='{escape(path)}' alt='{escape(latex)}'>"


def _derivation_table(entries: dict[str, dict[str, Any]], fig: Figures) -> str:
    """One block per line: id, verdict and evidence above the equation at full width."""
    blocks = [
        _line_block(claim_id, entries[claim_id], fig)
        for claim_id in LINE_IDS
        if claim_id in entries and "latex" in entries[claim_id]["details"]
    ]
    if not blocks:
        return ""
    layer = next(entries[i]["details"]["layer"] for i in LINE_IDS if i in entries)
    caption = (
        "<p>Each equation is transcribed exactly as the solution prints it and evaluated on "
        f"one {layer['T']}×{layer['I']} layer (float64, ReLU, eps = 0, random A and B of both "
        f"signs: σ′(h) and σ′(Ah + B) differ at {layer['relu_disagreements']} entries) with "
        "the true value of every quantity it reads. The true value of what it computes comes "
        "from autograd on the graph L → μ → σ → L̃, each edge on its own.</p>"
    )
    return caption + "<div class='lines'>" + "".join(blocks) + "</div>"


def _line_block(claim_id: str, entry: dict[str, Any], fig: Figures) -> str:
    d = entry["details"]
    slug = claim_id.replace(".", "_")
    evidence = (
        f"as printed {escape(short(d['printed']))} · true {escape(d['true_value_of'])} "
        f"{escape(short(d['true']))} · max error {d['max_error']:.2g}"
    )
    fix = ""
    if d.get("corrected_latex") and entry["verdict"] == "refuted":
        fix = (
            "<p class='fix'>The form that holds "
            f"{verdict_badge(d['corrected_verdict'])} <span class='num'>max error "
            f"{d['corrected_max_error']:.2g}</span><br>"
            + _equation(fig, f"eq_{slug}_corrected", d["corrected_latex"])
            + "</p>"
        )
    return (
        f"<div class='line'><p><a href='#{escape(claim_id)}'>{escape(claim_id)}</a> "
        f"{verdict_badge(entry['verdict'])} <span class='num'>{evidence}</span></p>"
        f"{_equation(fig, f'eq_{slug}', d['latex'])}{fix}</div>"
    )


def _gradient_checks(rows: list[dict[str, Any]], fig: Figures) -> str:
    scopes = sorted({r["scope"] for r in rows})
    activations = list(dict.fromkeys(r["activation"] for r in rows))
    with fig.figure("p3_gradient_checks", ncols=len(scopes), size=(11.5, 3.8)) as (_, axes):
        for ax, scope in zip(np.atleast_1d(axes), scopes, strict=True):
            for ref_index, reference in enumerate(("autograd", "finite_differences")):
                for grad_index, grad in enumerate(("dx", "dA", "dB")):
                    offset = (ref_index * 3 + grad_index - 2.5) * 0.1
                    errors = [
                        max(
                            r[reference][grad]
                            for r in rows
                            if r["scope"] == scope and r["activation"] == a
                        )
                        for a in activations
                    ]
                    ax.semilogy(
                        np.arange(len(activations)) + offset,
                        np.maximum(errors, 1e-18),
                        "os^"[grad_index],
                        color=COLORS[ref_index],
                        ms=5,
                        label=f"{grad} vs {reference.replace('_', ' ')}",
                    )
            ax.set_xticks(range(len(activations)), activations)
            ax.set_ylim(1e-18, 1e-5)
            ax.set_title(f"scope = {scope!r}")
            ax.set_ylabel("relative error (max over eps)")
        np.atleast_1d(axes)[0].legend(ncol=2, fontsize=7.5, loc="upper left")
    return figure_block(
        fig.path("p3_gradient_checks"),
        "The hand-written backward (dx, dA, dB) against autograd on the float64 composite "
        "(blue: rounding level) and against central finite differences (orange: the "
        "differencing error of a 1e-6 step), for every activation and both scopes.",
    )
