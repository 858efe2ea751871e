"""Problem 3 claims: layer normalization and the quiz's backpropagation equations.

Two kinds of check:

- our implementation (`infonorm.layer_norm`): the forward against torch's native layer
  norm, the hand backward against autograd on a float64 composite and against central
  finite differences, for both scopes and every activation;
- the derivation checker: each equation of the quiz's printed solution, transcribed exactly
  as printed (typos included) in a derivation file (`derivations/`), checked by
  `infonorm.backprop`, the engine that checks anyone's derivation: each line alone,
  reading the true adjoints, against autograd's contribution of the edge it claims on the
  graph L → μ → σ → L̃, each node a separate leaf; at the forward's values and with the
  other nodes moved off them (μ off the mean of L, so that Σ(μ − L) = 0 cannot hide a wrong
  line 6); then lines 1–8 run in order. So a line is judged alone, and the lines that
  inherit another's error are named. The quiz writes σ for both the standard deviation
  and the activation; here the activation is ReLU, and A, B have both signs so that
  σ'(h) and σ'(A h + B) differ.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import cache, partial
from importlib import resources
from typing import Any

import torch
import torch.nn.functional as F

from infonorm import backprop
from infonorm.activations import ACTIVATIONS
from infonorm.layer_norm import SCOPES, layer_norm, layer_norm_backward, layer_norm_reference
from infonorm.quiz.claims.engine import Claim, Context, Evidence, holds, max_error

F64 = torch.float64
# the float64 comparisons: relative to the largest |entry| of the true value
EXACT = 1e-10
FINITE_DIFFERENCE_STEP = 1e-6
FINITE_DIFFERENCE_TOLERANCE = 1e-7
# entries of a vector or matrix shown in the claim's expected/measured: the checker's
SHOWN, _shown = backprop.SHOWN, backprop._shown


# ---------------------------------------------------------------------------- our implementation


def _inputs(ctx: Context, salt: str, shape: tuple[int, ...]) -> tuple[torch.Tensor, ...]:
    g = ctx.generator(salt)
    x = torch.randn(shape, generator=g, dtype=F64) * 1.5 + 0.3
    A = torch.randn(shape[-1], generator=g, dtype=F64)
    B = torch.randn(shape[-1], generator=g, dtype=F64)
    dy = torch.randn(shape, generator=g, dtype=F64)
    return x, A, B, dy


def _relative_error(reference: torch.Tensor, value: torch.Tensor) -> float:
    return max_error(reference, value) / max(reference.abs().max().item(), 1e-300)


def _native_forward(x, A, B, *, scope: str, activation: str, eps: float) -> torch.Tensor:
    # torch's own layer norm over (T, I) or (I,), then the affine map and torch's activation
    shape = x.shape[-2:] if scope == "layer" else x.shape[-1:]
    return ACTIVATIONS[activation].forward(A * F.layer_norm(x, shape, eps=eps) + B)


def check_forward(ctx: Context) -> Evidence:
    rows = []
    cases = [(s, a, eps) for s in SCOPES for a in ACTIVATIONS for eps in (0.0, 1e-5)]
    for scope, activation, eps in ctx.track(cases, "P3 forward"):
        x, A, B, _ = _inputs(ctx, f"P3.forward/{scope}/{activation}", (3, 5, 7))
        native = _native_forward(x, A, B, scope=scope, activation=activation, eps=eps)
        ours = layer_norm(x, A, B, scope=scope, activation=activation, eps=eps, backend="torch")
        rows.append(
            {
                "scope": scope,
                "activation": activation,
                "eps": eps,
                "error": _relative_error(native, ours),
            }
        )
    worst = max(row["error"] for row in rows)
    return holds(
        worst <= EXACT,
        expected="the same L̃ (relative error 0)",
        measured=worst,
        tolerance=EXACT,
        reference="torch.nn.functional.layer_norm (no affine) over (T, I) or (I,), then A·+B "
        "and torch's activation; float64, x of shape (3, 5, 7), eps 0 and 1e-5",
        details={"max_error": worst, "relative": True, "rows": rows},
    )


def _autograd_gradients(x, A, B, dy, *, scope: str, activation: str, eps: float):
    leaves = [t.clone().requires_grad_() for t in (x, A, B)]
    y = layer_norm_reference(*leaves, scope=scope, activation=activation, eps=eps)
    return torch.autograd.grad(y, leaves, dy)


def _finite_difference_gradients(x, A, B, dy, *, scope: str, activation: str, eps: float):
    """∂⟨dy, L̃⟩/∂p for every entry p of x, A, B by (f(p + δ) − f(p − δ))/2δ."""

    def f(inputs: list[torch.Tensor]) -> float:
        y = layer_norm_reference(*inputs, scope=scope, activation=activation, eps=eps)
        return (dy * y).sum().item()

    inputs = [x, A, B]
    grads = []
    for k, p in enumerate(inputs):
        grad = torch.empty(p.numel(), dtype=p.dtype)
        for j in range(p.numel()):
            step = torch.zeros(p.numel(), dtype=p.dtype)
            step[j] = FINITE_DIFFERENCE_STEP
            up, down = list(inputs), list(inputs)
            up[k], down[k] = p + step.view(p.shape), p - step.view(p.shape)
            grad[j] = (f(up) - f(down)) / (2 * FINITE_DIFFERENCE_STEP)
        grads.append(grad.view(p.shape))
    return grads


def check_backward(ctx: Context) -> Evidence:
    rows = []
    cases = [(s, a, eps) for s in SCOPES for a in ACTIVATIONS for eps in (0.0, 1e-5)]
    for scope, activation, eps in ctx.track(cases, "P3 backward"):
        x, A, B, dy = _inputs(ctx, f"P3.backward/{scope}/{activation}", (2, 5, 7))
        kw = {"scope": scope, "activation": activation, "eps": eps}
        hand = layer_norm_backward(dy, x, A, B, **kw)
        row: dict[str, Any] = {"scope": scope, "activation": activation, "eps": eps}
        for peer, reference in (
            ("autograd", _autograd_gradients(x, A, B, dy, **kw)),
            ("finite_differences", _finite_difference_gradients(x, A, B, dy, **kw)),
        ):
            row[peer] = {
                name: _relative_error(ref, ours)
                for name, ref, ours in zip(("dx", "dA", "dB"), reference, hand, strict=True)
            }
        rows.append(row)
    worst_autograd = max(max(row["autograd"].values()) for row in rows)
    worst_fd = max(max(row["finite_differences"].values()) for row in rows)
    return holds(
        worst_autograd <= EXACT and worst_fd <= FINITE_DIFFERENCE_TOLERANCE,
        expected="the same (dx, dA, dB) (relative error 0)",
        measured={"autograd": worst_autograd, "finite_differences": worst_fd},
        tolerance=EXACT,
        reference="autograd on the float64 composite (layer_norm_reference) and central finite "
        f"differences (step {FINITE_DIFFERENCE_STEP:g}) of ⟨L̃.grad, L̃⟩; x of shape (2, 5, 7), "
        "eps 0 and 1e-5",
        details={"max_error": worst_autograd, "relative": True, "rows": rows},
        note=f"errors relative to the largest |entry| of each reference gradient; against "
        f"finite differences the worst is {worst_fd:.2g} (tolerance "
        f"{FINITE_DIFFERENCE_TOLERANCE:g}), against autograd {worst_autograd:.2g} "
        f"(tolerance {EXACT:g})",
    )


# ---------------------------------------------------------------------------- derivation checker

DERIVATIONS = "infonorm.quiz.claims.derivations"
DRAWS = 3  # random layers, each checked at the forward's values and off them
# the quiz's symbols for the derivation files' names
SYMBOLS = {"Lt": "L̃", "mu": "μ", "sigma": "σ"}


@cache
def derivation(name: str) -> backprop.Derivation:
    """One of Problem 3's derivation files: "printed", "corrected" or "combined"."""
    path = resources.files(DERIVATIONS) / f"layer_norm_{name}.py"
    return backprop.parse(path.read_text(encoding="utf-8"), str(path))


@dataclass(frozen=True)
class PrintedLine:
    """One equation of the quiz's solution: update `number` of a derivation file.

    The file holds the line's LaTeX as printed (alignment marks dropped) and the same line
    in torch; `text` is the line in plain text for the claim's statement. `diagnostics`
    are variants of the line (a name and the right-hand side in torch) whose values tell
    which of its errors matters.
    """

    id: str
    title: str
    derivation: str  # "printed" or "combined"
    number: int
    text: str
    corrected_text: str = ""
    diagnostics: tuple[tuple[str, str], ...] = ()

    @property
    def statement(self) -> str:
        return f"As printed in the solution: {self.text}"


LINES = (
    PrintedLine(
        "P3.line1",
        "line 1: A.grad",
        "printed",
        1,
        "A.grad[i] += Σ_t L̃.grad[t, i] σ'(A[i]h[t, i] + B[i]) (L[t, i] − μ)/σ",
    ),
    PrintedLine(
        "P3.line2",
        "line 2: B.grad",
        "printed",
        2,
        "B.grad[i] += Σ_t L̃.grad[t, i] σ'(A[i]h[t, i] + B[i])",
    ),
    PrintedLine(
        "P3.line3",
        "line 3: σ.grad",
        "printed",
        3,
        "σ.grad = Σ_{t,i} L̃.grad[t, i] σ'(h[t, i]) A[i](L[t, i] − μ)/σ²",
        corrected_text="σ.grad = −Σ_{t,i} L̃.grad[t, i] σ'(A[i]h[t, i] + B[i]) A[i](L[t, i] − μ)/σ²",
        diagnostics=(
            (
                "only the sign changed (σ'(h) kept)",
                '-sum_over("t i", Lt.grad * relu_prime(h) * A * (L - mu) / sigma**2)',
            ),
            (
                "only σ'(h) changed to σ'(A[i]h[t, i] + B[i]) (sign kept)",
                'sum_over("t i", Lt.grad * relu_prime(A * h + B) * A * (L - mu) / sigma**2)',
            ),
        ),
    ),
    PrintedLine(
        "P3.line4",
        "line 4: μ.grad, direct term",
        "printed",
        4,
        "μ.grad = Σ_{t,i} L̃.grad[t, i] σ'(A[i]h[t, i] + B[i]) A[i]/σ",
        corrected_text="μ.grad = −Σ_{t,i} L̃.grad[t, i] σ'(A[i]h[t, i] + B[i]) A[i]/σ",
    ),
    PrintedLine(
        "P3.line5",
        "line 5: L.grad, direct term",
        "printed",
        5,
        "L.grad[t, i] += L̃.grad[t, i] σ'(A[i]h[t, i] + B[i]) A[i]/σ",
    ),
    PrintedLine(
        "P3.line6",
        "line 6: μ.grad through σ (= 0)",
        "printed",
        6,
        "μ.grad += Σ_{t,i} σ.grad (1/(TIσ)) (μ − L[t, i]) = 0",
    ),
    PrintedLine(
        "P3.line7",
        "line 7: L.grad through σ",
        "printed",
        7,
        "L.grad[t, i] += σ.grad (1/(TIσ)) (L[t, i] − μ)",
    ),
    PrintedLine(
        "P3.line8",
        "line 8: L.grad through μ",
        "printed",
        8,
        "L.grad[t, i] += μ.grad (1/(TI))",
    ),
)
COMBINED = (
    PrintedLine(
        "P3.combined.A",
        "combined: A.grad",
        "combined",
        1,
        "A.grad[i] += Σ_t L̃.grad[t, i] σ'(A[i]h[t, i] + B[i]) h[t, i]",
    ),
    PrintedLine(
        "P3.combined.B",
        "combined: B.grad",
        "combined",
        2,
        "B.grad[i] += Σ_t L̃.grad[t, i] σ'(A[i]h[t, i] + B[i])",
    ),
    PrintedLine(
        "P3.combined.L",
        "combined: L.grad",
        "combined",
        3,
        "L.grad[t, i] += (1/σ)(L̃.grad[t, i] σ'(A[i]h[t, i] + B[i]) A[i] "
        "− Σ_{t,i} L̃.grad[t, i] σ'(A[i]h[t, i] + B[i]) A[i]/TI "
        "− h[t, i] Σ_{t,i} L̃.grad[t, i] σ'(A[i]h[t, i] + B[i]) A[i] h[t, i]/TI)",
    ),
)
_BY_NUMBER = {line.number: line for line in LINES}


def _seed(ctx: Context) -> int:
    return ctx.generator("P3.layer").initial_seed()


def _reports(ctx: Context) -> dict[str, backprop.Report]:
    """The three derivation files checked by one engine on the same draws."""
    return {
        name: backprop.check(derivation(name), draws=DRAWS, seed=_seed(ctx))
        for name in ("printed", "corrected", "combined")
    }


def _variant(ctx: Context, line: PrintedLine, expression: str) -> backprop.LineResult:
    """The printed derivation with one line's right-hand side replaced, checked alike."""
    variant = derivation(line.derivation).with_update(line.number, expression)
    return backprop.check(variant, draws=DRAWS, seed=_seed(ctx)).line(line.number)


def _symbols(text: str) -> str:
    for name, symbol in SYMBOLS.items():
        text = re.sub(rf"\b{name}\b", symbol, text)
    return text


def _reads(d: backprop.Derivation, u: backprop.Update) -> str:
    adjoints = ", ".join(f"{_symbols(r)}.grad" for r in u.reads)
    given = "given" if u.reads == (d.output,) else "the true adjoints, by autograd"
    values = ", ".join(_symbols(v) for v in u.values)
    return f"{adjoints} ({given}), {values} (forward values)" if values else f"{adjoints} ({given})"


def _brief(shown: float | list[float], numel: int = 1) -> str:
    if isinstance(shown, float):
        return f"{shown:.6g}"
    more = ", …" if numel > SHOWN else ""
    return "[" + ", ".join(f"{v:.4g}" for v in shown) + more + "]"


def _relu_disagreements(values: dict[str, torch.Tensor]) -> int:
    """Entries where σ'(h) ≠ σ'(A h + B) for ReLU: where line 3's argument matters."""
    h, A, B = values["h"], values["A"], values["B"]
    return int(((h > 0) != (A * h + B > 0)).sum())


def _ids(numbers: list[int]) -> list[str]:
    return [_BY_NUMBER[n].id for n in numbers]


def check_line(line: PrintedLine, ctx: Context) -> Evidence:
    reports = ctx.shared("P3.derivations", partial(_reports, ctx))
    report = reports[line.derivation]
    result = report.line(line.number)
    u = result.update
    true = result.true
    printed = result.value.expand(true.shape)
    details: dict[str, Any] = {
        "latex": u.printed,
        "reads": _reads(report.derivation, u),
        "true_value_of": _symbols(result.claims),
        "shape": list(true.shape),
        "printed": _shown(printed),
        "true": _shown(true),
        "max_error": result.max_error,
        "relative": False,
        "layer": {
            "T": report.derivation.axes["t"],
            "I": report.derivation.axes["i"],
            "relu_disagreements": _relu_disagreements(report.draws[0]),
        },
        "code": u.source,
        "file": f"layer_norm_{line.derivation}.py",
        "file_line": u.line,
        "draws": len(report.draws),
        "max_error_at_forward": result.max_error_at_forward,
        "max_error_off_forward": result.max_error_off_forward,
        "worst": result.worst,
        "failure": result.failure,
        "chained_max_error": result.chained_max_error,
    }
    if line.derivation == "printed":
        details["inherits_from"] = _ids(result.inherits_from)
        details["passes_error_to"] = _ids(result.passes_error_to)
    if result.assertions:
        details["assertions"] = [
            {
                "code": a.assertion.source,
                "value": _shown(a.left),
                "expected": _shown(a.right),
                "max_error": a.max_error,
                "verdict": "confirmed" if a.holds else "refuted",
            }
            for a in result.assertions
        ]
    corrected = reports["corrected"].line(line.number) if line.derivation == "printed" else None
    if corrected is not None and corrected.update.source != u.source:
        details |= {
            "corrected_latex": corrected.update.printed,
            "corrected": _shown(corrected.value.expand(true.shape)),
            "corrected_max_error": corrected.max_error,
            "corrected_verdict": "confirmed" if corrected.holds_with_assertions else "refuted",
        }
    if line.diagnostics:
        details["diagnostics"] = []
        for form, expression in line.diagnostics:
            variant = ctx.shared(f"P3.{line.id}.{form}", partial(_variant, ctx, line, expression))
            details["diagnostics"].append(
                {"form": form, "value": _shown(variant.value), "max_error": variant.max_error}
            )
    return holds(
        result.holds_with_assertions,
        expected=_shown(printed),
        measured=_shown(true),
        tolerance=result.tolerance,
        reference="autograd (float64) on the graph L → μ → σ → L̃, each of L, μ, σ, A, B a "
        f"separate leaf: the true {_symbols(result.claims)}; ReLU, eps = 0, {DRAWS} random "
        f"{report.derivation.axes['t']}×{report.derivation.axes['i']} layers, each at the "
        "forward's values and with μ, σ moved off them",
        details=details,
        note=_line_note(line, result, details),
    )


def _line_note(line: PrintedLine, result: backprop.LineResult, details: dict[str, Any]) -> str:
    claims = _symbols(result.claims)
    failure = result.failure
    if failure is not None:
        n = result.true.numel()
        if failure["where"] == backprop.AT_FORWARD:
            note = f"as printed it gives {_brief(failure['value'], n)} (draw {failure['draw']}); "
            note += f"the true {claims} is {_brief(failure['true'], n)}"
        else:
            note = (
                f"at the forward's values it agrees, but with μ, σ moved off them (draw "
                f"{failure['draw']}) it gives {_brief(failure['value'], n)} where the true "
                f"{claims} is {_brief(failure['true'], n)}"
            )
        if "corrected_latex" in details:
            note += (
                f". Corrected: {line.corrected_text} ({details['corrected_verdict']}, error "
                f"{details['corrected_max_error']:.2g})"
            )
        return note
    failed = [a for a in details.get("assertions", []) if a["verdict"] == "refuted"]
    if failed:
        return f"{failed[0]['code']} does not hold at the forward's values"
    if details.get("inherits_from"):
        read = " and ".join(f"{_symbols(r)}.grad" for r in result.update.reads)
        return (
            f"holds alone; run in order it reads the {read} that "
            + " and ".join(details["inherits_from"])
            + f" leaves, which is wrong, and is off by {result.chained_max_error:.3g}"
        )
    return ""


def _chain_errors(report: backprop.Report) -> dict[str, float]:
    return {f"{n}.grad": report.chain.errors[n] for n in ("A", "B", "L")}


def check_chain(ctx: Context) -> Evidence:
    reports = ctx.shared("P3.derivations", partial(_reports, ctx))
    printed, combined = reports["printed"].chain, reports["combined"].chain
    errors = {run: _chain_errors(reports[run]) for run in ("printed", "corrected")}
    tolerance = max(printed.tolerances[n] for n in ("A", "B", "L"))
    worst = max(errors["printed"].values())
    wrong = [line.update.number for line in reports["printed"].lines if not line.holds]
    return holds(
        worst <= tolerance,
        expected={f"{n}.grad": _shown(printed.values[n]) for n in ("A", "B", "L")},
        measured={f"{n}.grad": _shown(combined.values[n]) for n in ("A", "B", "L")},
        tolerance=tolerance,
        reference="autograd (float64) on the whole graph L → μ → σ → L̃, which the combined "
        "equations give (P3.combined.A/B/L) and central finite differences confirm",
        details={
            "max_error": worst,
            "relative": False,
            "errors": errors,
            "combined_errors": _chain_errors(reports["combined"]),
            "corrected_lines": [line.id for line in LINES if line.corrected_text],
            "caused_by": _ids(wrong),
            "inherited": {
                _BY_NUMBER[line.update.number].id: _ids(line.inherits_from)
                for line in reports["printed"].lines
                if line.inherits_from
            },
            "finite_differences": reports["printed"].finite_differences.to_dict(),
        },
        note=(
            "lines 1–8 run in order as printed give A.grad, B.grad, L.grad with errors "
            + ", ".join(f"{key} {error:.2g}" for key, error in errors["printed"].items())
            + "; with the corrected lines 3 and 4: "
            + ", ".join(f"{key} {error:.2g}" for key, error in errors["corrected"].items())
        ),
    )


CLAIMS: list[Claim] = [
    Claim(
        "P3.forward",
        "P3",
        r"$\mu = \frac{1}{TI} \sum_{t,i} L[t, i]$, "
        r"$\sigma = \sqrt{\frac{1}{TI} \sum_{t,i} (L[t, i] - \mu)^2}$, "
        r"$\tilde{L}[t, i] = \sigma(\frac{A[i]}{\sigma} (L[t, i] - \mu) + B[i])$: infonorm's "
        "forward, over the whole layer or per position, with every activation.",
        check_forward,
        "forward",
    ),
    Claim(
        "P3.backward",
        "P3",
        "The combined backpropagation equations, implemented by hand (layer_norm_backward), give "
        "the gradients of the forward in x, A and B, for both scopes and every activation.",
        check_backward,
        "hand backward",
    ),
    *(
        Claim(line.id, "P3", line.statement, partial(check_line, line), line.title)
        for line in (*LINES, *COMBINED)
    ),
    Claim(
        "P3.chain",
        "P3",
        "“Combining the above, we get” the combined equations: lines 1–8, run in order as "
        "printed, give the combined A.grad, B.grad and L.grad.",
        check_chain,
        "lines 1–8 combined",
    ),
]
