"""Problem 3 in the report: the quiz's equations line by line, their fixes, gradient checks."""

from __future__ import annotations

from dataclasses import dataclass
from html import escape
from typing import Any

import numpy as np

from infonorm.quiz.report.figures import COLORS, Figures, Key
from infonorm.quiz.report.latex import Comparison, compare, mathml, prose, typeset_symbols
from infonorm.quiz.report.markup import details_of, number, shown

# what infonorm's own claims of the problem say, for the verdict at the top of the page
CLAIMS_IN_BRIEF = (
    "infonorm's layer norm matches torch's, and its hand-written backward matches autograd "
    "and finite differences"
)
TITLE = "Problem 3 — backpropagation for layer normalization"
INTRO = (
    r"The quiz normalizes a layer $L[t, i]$ by its mean $\mu = \frac{1}{TI}\sum_{t,i} L[t, i]$ "
    r"and standard deviation $\sigma = \sqrt{\frac{1}{TI}\sum_{t,i} (L[t, i] - \mu)^2}$ over all "
    r"$t$ and $i$, with $h[t, i] = (L[t, i] - \mu)/\sigma$, applies a per-feature affine map "
    r"and an activation, $\tilde{L}[t, i] = \sigma(A[i] h[t, i] + B[i])$, and writes the "
    "backpropagation equations. Each printed line is checked on its own; infonorm's own "
    "forward and hand-written backward are checked against torch and finite differences."
)
CHECK_YOUR_OWN = (
    "<p class='aside'><b>Check your own derivation.</b> Write your backward pass as a small "
    "Python file and run <code>infonorm check-backprop FILE.py</code>: each of your lines is "
    "evaluated the same way as the quiz's lines below, against autograd, and the command "
    "names the ones that do not hold. Worked examples, right and wrong, are in "
    "<code>examples/backprop/</code>.</p>"
)
LINE_IDS = (
    *(f"P3.line{n}" for n in range(1, 9)),
    "P3.combined.A",
    "P3.combined.B",
    "P3.combined.L",
)
COMBINED_IDS = ("P3.combined.A", "P3.combined.B", "P3.combined.L")
# where the correct term comes from, for the lines the solution gets wrong
DERIVATIONS = {
    "P3.line3": r"$\sigma.grad = \sum_{t,i} \tilde{L}.grad[t, i]\,"
    r"\frac{\partial \tilde{L}[t, i]}{\partial h[t, i]}\,\frac{\partial h[t, i]}{\partial \sigma}$"
    r" with $\frac{\partial \tilde{L}}{\partial h} = \sigma'(A h + B)\,A$ and "
    r"$\frac{\partial h}{\partial \sigma} = -\frac{L - \mu}{\sigma^2}$",
    "P3.line4": r"$\mu.grad = \sum_{t,i} \tilde{L}.grad[t, i]\,"
    r"\frac{\partial \tilde{L}[t, i]}{\partial h[t, i]}\,\frac{\partial h[t, i]}{\partial \mu}$"
    r" (its direct term) with $\frac{\partial \tilde{L}}{\partial h} = \sigma'(A h + B)\,A$ and "
    r"$\frac{\partial h}{\partial \mu} = -\frac{1}{\sigma}$",
}


@dataclass(frozen=True)
class Correction:
    """A printed line that does not hold, its corrected form and what changed."""

    id: str
    title: str
    comparison: Comparison
    entry: dict[str, Any]

    @property
    def derivation(self) -> str:
        return DERIVATIONS.get(self.id, "")


def corrections(entries: dict[str, dict[str, Any]]) -> list[Correction]:
    """The refuted lines with a corrected form, in the solution's order."""
    out = []
    for claim_id in LINE_IDS:
        entry = entries.get(claim_id)
        if entry is None or entry["verdict"] != "refuted":
            continue
        d = entry["details"]
        if d.get("latex") and d.get("corrected_latex"):
            comparison = compare(d["latex"], d["corrected_latex"])
            out.append(Correction(claim_id, entry["title"], comparison, entry))
    return out


def side_by_side(correction: Correction) -> str:
    """The printed and corrected forms one above the other, what changed marked."""
    d = correction.entry["details"]
    target = typeset_symbols(d.get("true_value_of", "the true value"))
    changes = "; ".join(correction.comparison.changes)
    derivation = (
        f"<p class='derivation'><b>Why.</b> {prose(correction.derivation)}.</p>"
        if correction.derivation
        else ""
    )
    return (
        f"<div class='fix' id='fix-{escape(correction.id)}'>"
        f"<p class='fix-head'>{prose(typeset_symbols(correction.title))}: {prose(changes)}."
        f" <a href='#{escape(correction.id)}'>{escape(correction.id)}</a></p>"
        "<div class='pair'>"
        f"<p class='side'>As printed<br><span>gives {escape(shown(d.get('printed')))}; "
        f"the true {prose(target)} is {escape(shown(d.get('true')))}</span></p>"
        f"<div class='eq'>{mathml(correction.comparison.printed, display=True)}</div>"
        f"<p class='side'>Corrected<br><span>gives {escape(shown(d.get('corrected')))}: "
        f"{escape(d.get('corrected_verdict', ''))}, difference "
        f"{number(d.get('corrected_max_error'))}</span></p>"
        f"<div class='eq'>{mathml(correction.comparison.corrected, display=True)}</div>"
        f"</div>{derivation}{_diagnostics(d)}</div>"
    )


def _diagnostics(d: dict[str, Any]) -> str:
    """How far each change alone is from the truth: evidence that each error is real."""
    rows = d.get("diagnostics") or []
    if not rows:
        return ""
    items = "; ".join(
        f"{prose(typeset_symbols(row['form']))}: still off by {number(row['max_error'])}"
        for row in rows
    )
    return f"<p class='muted'>One change alone is not enough — {items}.</p>"


def chain_is_consequence(entries: dict[str, dict[str, Any]]) -> bool:
    """P3.chain is refuted, and lines 1–8 with the corrected lines give the combined
    equations: the chain fails because of those lines, not by an error of its own."""
    chain = entries.get("P3.chain")
    if chain is None or chain["verdict"] != "refuted":
        return False
    fixed = chain["details"].get("errors", {}).get("corrected", {})
    tolerance = chain.get("tolerance")
    return bool(fixed) and isinstance(tolerance, float) and max(fixed.values()) <= tolerance


def chain_explanation(entries: dict[str, dict[str, Any]]) -> str:
    """Whether the combined equations follow from the printed lines, and if not, whether
    the corrected lines account for the gap."""
    chain = entries.get("P3.chain")
    combined = [entries[i] for i in COMBINED_IDS if i in entries]
    if chain is None or not combined:
        return ""
    right = sum(e["verdict"] == "confirmed" for e in combined)
    head = (
        f"The combined equations are right ({right} of {len(combined)} confirmed against autograd)"
    )
    if chain["verdict"] == "confirmed":
        return head + " and follow from the printed lines."
    errors = chain["details"].get("errors", {})
    gap = max(errors.get("printed", {}).values(), default=None)
    text = (
        f"{head}, but they do not follow from the printed lines: run in order, lines 1–8 "
        f"give gradients off by up to {number(gap)}."
    )
    if chain_is_consequence(entries):
        numbers = [i.removeprefix("P3.line") for i in chain["details"].get("corrected_lines", [])]
        lines = ("line " if len(numbers) == 1 else "lines ") + " and ".join(numbers)
        lines = lines if numbers else "the wrong lines"
        fixed = max(errors["corrected"].values())
        text += (
            f" With {lines} corrected they give the combined equations "
            f"(largest difference {number(fixed)}): P3.chain fails only because of those "
            "lines, not because of a third error."
        )
    return text


def equation(entry: dict[str, Any]) -> str:
    """A line's equation as printed, typeset, in a box that scrolls if it is wide."""
    latex = entry["details"].get("latex")
    if not latex:
        return ""
    return f"<div class='eq'>{mathml(latex, display=True)}</div>"


def line_evidence(entry: dict[str, Any]) -> str:
    """'As printed it gives −3.81; the true σ.grad is 7.5' for a line's card."""
    d = entry["details"]
    if "printed" not in d or "true" not in d:
        return ""
    target = typeset_symbols(d.get("true_value_of", "the true value"))
    return (
        f"As printed it gives {_entries(d['printed'], d.get('shape'))}; the true "
        f"{prose(target)} is {_entries(d['true'], d.get('shape'))}"
    )


def _entries(value: Any, shape: list[int] | None) -> str:
    """A line's value: a number, or the first entries of a vector or matrix, said so."""
    if not isinstance(value, list):
        return escape(shown(value))
    total = int(np.prod(shape)) if shape else len(value)
    more = f" (the first {len(value)} of {total} entries)" if total > len(value) else ""
    return escape(shown(value, limit=len(value))) + more


def method(entries: dict[str, dict[str, Any]]) -> str:
    """How each line is evaluated, with the layer it is evaluated on."""
    layer = next((entries[i]["details"].get("layer") for i in LINE_IDS if i in entries), None)
    if not layer:
        return ""
    text = (
        "Each equation is transcribed exactly as the solution prints it and evaluated on one "
        f"{layer['T']}×{layer['I']} layer (float64, ReLU, eps = 0, random $A$ and $B$ of both "
        r"signs, so that $\sigma'(h)$ and $\sigma'(A h + B)$ differ at "
        f"{layer['relu_disagreements']} entries) with the true value of every quantity it "
        "reads. The true value of what it computes comes from autograd on the graph "
        r"$L \to \mu \to \sigma \to \tilde{L}$, each edge on its own, so that an error in one "
        "line does not spill into the next."
    )
    return f"<p>{prose(text)}</p>"


def gradient_checks(entries: dict[str, dict[str, Any]], fig: Figures) -> str:
    rows = details_of(entries, "P3.backward").get("rows")
    if not rows:
        return ""
    floor = 1e-18
    scopes = sorted({r["scope"] for r in rows})
    activations = list(dict.fromkeys(r["activation"] for r in rows))
    names = []
    for scope in scopes:
        name = f"p3_gradient_checks-{scope}"
        names.append(name)
        with fig.panel(name, size=(4.8, 3.4)) as ax:
            for ref_index, reference in enumerate(("autograd", "finite_differences")):
                for grad_index, grad in enumerate(("dx", "dA", "dB")):
                    offset = (ref_index * 3 + grad_index - 2.5) * 0.12
                    errors = np.array(
                        [
                            max(
                                r[reference][grad]
                                for r in rows
                                if r["scope"] == scope and r["activation"] == a
                            )
                            for a in activations
                        ]
                    )
                    x = np.arange(len(activations)) + offset
                    exact = errors == 0
                    marker = "os^"[grad_index]
                    color = COLORS[ref_index]
                    ax.semilogy(x[~exact], errors[~exact], marker, color=color, ms=5, ls="none")
                    ax.semilogy(
                        x[exact], np.full(exact.sum(), floor), marker, mfc="none", color=color
                    )
            ax.axhline(3e-18, color="gray", lw=0.6, ls="--")
            ticks = [floor, 1e-16, 1e-14, 1e-12, 1e-10, 1e-8, 1e-6]
            labels = ["exactly 0"] + [f"$10^{{{round(np.log10(t))}}}$" for t in ticks[1:]]
            ax.set_yticks(ticks, labels)
            ax.set_ylim(5e-19, 1e-5)
            ax.minorticks_off()
            ax.set_xticks(range(len(activations)), activations, fontsize=8.5)
            ax.set_title(f"statistics over the {'whole layer' if scope == 'layer' else scope}")
            ax.set_ylabel("relative error (largest over eps)")
    return fig.block(
        "p3_gradient_checks",
        names,
        "infonorm's hand-written backward (dx, dA, dB: circles, squares, triangles) against "
        "autograd on the float64 composite (blue: rounding level) and against central finite "
        "differences (orange: the differencing error of a 1e-6 step), for every activation "
        "and both scopes. Hollow markers on the bottom row are exact agreement (an error of "
        "0, which a log scale cannot draw).",
        claims=["P3.backward"],
        keys=[
            Key(COLORS[0], "against autograd", "dot"),
            Key(COLORS[1], "against finite differences", "dot"),
        ],
        alt="relative error of the hand backward",
    )


FIGURES = {"P3.backward": [gradient_checks]}
