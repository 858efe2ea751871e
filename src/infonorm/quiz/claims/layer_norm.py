"""Problem 3 claims: layer normalization and the quiz's backpropagation equations.

Two kinds of check:

- our implementation (`infonorm.layer_norm`): the forward against torch's native layer
  norm, the hand backward against autograd on a float64 composite and against central
  finite differences, for both scopes and every activation;
- the derivation checker: each equation of the quiz's printed solution, transcribed exactly
  as printed (typos included), evaluated on one layer with the true value of every quantity
  it reads, and compared with the true value of what it claims. The truth comes from
  autograd on the quiz's graph L → μ → σ → L̃ with μ and σ as explicit nodes; each edge's
  contribution from autograd on the partial graph that holds the other nodes fixed. So a
  line is judged alone: an error in one line does not spill into the lines that read it.
  The quiz writes σ for both the standard deviation and the activation; here the activation
  is ReLU, written σ' where the quiz writes it, and A, B have both signs so that σ'(h) and
  σ'(A h + B) differ.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from typing import Any

import torch
import torch.nn.functional as F

from infonorm.activations import ACTIVATIONS, derivative
from infonorm.layer_norm import SCOPES, layer_norm, layer_norm_backward, layer_norm_reference
from infonorm.quiz.claims.engine import Claim, Context, Evidence, holds, max_error

F64 = torch.float64
# the derivation checker's layer: (T, I), T positions t and I neurons i
SHAPE = (8, 6)
# the float64 comparisons: relative to the largest |entry| of the true value
EXACT = 1e-10
FINITE_DIFFERENCE_STEP = 1e-6
FINITE_DIFFERENCE_TOLERANCE = 1e-7
SHOWN = 4  # entries of a vector or matrix shown in the claim's expected/measured


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


@dataclass(frozen=True)
class Layer:
    """One layer's forward values and the true adjoints of every node, in float64.

    `true` holds, by autograd: the full gradients ("A.grad", "B.grad", "L.grad"), the total
    adjoints of the intermediate nodes ("σ.grad", "μ.grad"), and each edge's contribution
    ("μ.grad via L̃", "μ.grad via σ", "L.grad via L̃", "L.grad via σ", "L.grad via μ").
    """

    L: torch.Tensor
    A: torch.Tensor
    B: torch.Tensor
    L_tilde_grad: torch.Tensor
    mu: torch.Tensor
    sigma: torch.Tensor
    h: torch.Tensor
    true: dict[str, torch.Tensor]

    @property
    def TI(self) -> int:
        return self.L.numel()


def _L_tilde(L, mu, sigma, A, B):
    # L̃[t, i] = σ(A[i]/σ (L[t, i] − μ) + B[i]), the activation σ = ReLU, torch's own
    return torch.relu(A / sigma * (L - mu) + B)


def _sigma_of(L, mu):
    # σ = sqrt((1/TI) Σ_{t,i} (L[t, i] − μ)²), reading μ as a node (eps = 0: the quiz)
    return (L - mu).square().mean().sqrt()


def _mu_of(L):
    # μ = (1/TI) Σ_{t,i} L[t, i]
    return L.mean()


def _true_adjoints(L, A, B, L_tilde_grad) -> dict[str, torch.Tensor]:
    mu = _mu_of(L)
    sigma = _sigma_of(L, mu)

    def leaves(*tensors):
        return [t.detach().clone().requires_grad_() for t in tensors]

    def objective(L_tilde):
        # ⟨L̃.grad, L̃⟩: its gradient is each node's adjoint for the given L̃.grad
        return (L_tilde_grad * L_tilde).sum()

    # the last edge alone: L, μ, σ, A, B as independent nodes into L̃
    L_, mu_, sigma_, A_, B_ = leaves(L, mu, sigma, A, B)
    L_direct, mu_direct, sigma_grad = torch.autograd.grad(
        objective(_L_tilde(L_, mu_, sigma_, A_, B_)), (L_, mu_, sigma_)
    )
    # σ = σ(L, μ): its partial derivatives, times σ.grad, are the edges through σ
    L_, mu_ = leaves(L, mu)
    dsigma_dL, dsigma_dmu = torch.autograd.grad(_sigma_of(L_, mu_), (L_, mu_))
    mu_via_sigma = sigma_grad * dsigma_dmu
    mu_grad = mu_direct + mu_via_sigma
    # μ = μ(L): its partial derivative, times μ.grad, is the edge through μ
    (L_,) = leaves(L)
    (dmu_dL,) = torch.autograd.grad(_mu_of(L_), L_)
    # the whole graph L → μ → σ → L̃ at once
    L_, A_, B_ = leaves(L, A, B)
    mu_ = _mu_of(L_)
    L_full, A_full, B_full = torch.autograd.grad(
        objective(_L_tilde(L_, mu_, _sigma_of(L_, mu_), A_, B_)), (L_, A_, B_)
    )
    return {
        "A.grad": A_full,
        "B.grad": B_full,
        "L.grad": L_full,
        "σ.grad": sigma_grad,
        "μ.grad": mu_grad,
        "μ.grad via L̃": mu_direct,
        "μ.grad via σ": mu_via_sigma,
        "L.grad via L̃": L_direct,
        "L.grad via σ": sigma_grad * dsigma_dL,
        "L.grad via μ": mu_grad * dmu_dL,
    }


def _layer(ctx: Context) -> Layer:
    g = ctx.generator("P3.layer")
    L = torch.randn(SHAPE, generator=g, dtype=F64) * 1.5 + 0.7
    # A and B of both signs: σ'(h) and σ'(A h + B) then differ wherever the signs differ
    A = torch.randn(SHAPE[1], generator=g, dtype=F64)
    B = torch.randn(SHAPE[1], generator=g, dtype=F64)
    L_tilde_grad = torch.randn(SHAPE, generator=g, dtype=F64)
    mu = _mu_of(L)
    sigma = _sigma_of(L, mu)
    h = (L - mu) / sigma
    true = _true_adjoints(L, A, B, L_tilde_grad)
    return Layer(L, A, B, L_tilde_grad, mu, sigma, h, true)


Adjoints = dict[str, torch.Tensor]  # what a line reads: "σ.grad", "μ.grad"
Formula = Callable[[Layer, Adjoints], torch.Tensor]


@dataclass(frozen=True)
class PrintedLine:
    """One equation of the quiz's solution: `target` (op)= formula, as printed.

    `latex` is the seed's text with its alignment marks (& and the line break inside the
    last equation) dropped; nothing else is changed. `claims` names the entry of
    `Layer.true` that is the true value of what the line computes.
    """

    id: str
    title: str
    latex: str
    target: str
    accumulate: bool  # "+=" rather than "="
    claims: str
    reads: str
    printed: Formula
    corrected_latex: str = ""
    corrected: Formula | None = None
    diagnostics: tuple[tuple[str, Formula], ...] = ()
    text: str = ""  # the printed line in plain text
    corrected_text: str = ""

    @property
    def statement(self) -> str:
        return f"As printed in the solution: {self.text}"


def _act_grad(z: torch.Tensor) -> torch.Tensor:
    # σ'(z) of the activation σ = ReLU, by hand (σ'(0) = 0)
    return derivative("relu", z)


def _G(ly: Layer) -> torch.Tensor:
    # L̃.grad[t, i] σ'(A[i]h[t, i] + B[i])
    return ly.L_tilde_grad * _act_grad(ly.A * ly.h + ly.B)


def _line1(ly: Layer, _: Adjoints) -> torch.Tensor:
    # A.grad[i] += Σ_t L̃.grad[t, i] σ'(A[i]h[t, i] + B[i]) (L[t, i] − μ)/σ
    return (_G(ly) * (ly.L - ly.mu) / ly.sigma).sum(0)


def _line2(ly: Layer, _: Adjoints) -> torch.Tensor:
    # B.grad[i] += Σ_t L̃.grad[t, i] σ'(A[i]h[t, i] + B[i])
    return _G(ly).sum(0)


def _line3(ly: Layer, _: Adjoints) -> torch.Tensor:
    # σ.grad = Σ_{t,i} L̃.grad[t, i] σ'(h[t, i]) A[i](L[t, i] − μ)/σ²   (σ' of h, as printed)
    return (ly.L_tilde_grad * _act_grad(ly.h) * ly.A * (ly.L - ly.mu) / ly.sigma**2).sum()


def _line3_corrected(ly: Layer, _: Adjoints) -> torch.Tensor:
    # σ.grad = −Σ_{t,i} L̃.grad[t, i] σ'(A[i]h[t, i] + B[i]) A[i](L[t, i] − μ)/σ²
    return -(_G(ly) * ly.A * (ly.L - ly.mu) / ly.sigma**2).sum()


def _line3_sign_only(ly: Layer, adjoints: Adjoints) -> torch.Tensor:
    # the printed line with only its sign changed: −Σ L̃.grad σ'(h) A (L − μ)/σ²
    return -_line3(ly, adjoints)


def _line3_argument_only(ly: Layer, _: Adjoints) -> torch.Tensor:
    # the printed line with only σ'(h) changed to σ'(A h + B): +Σ L̃.grad σ'(A h + B) A (L − μ)/σ²
    return (_G(ly) * ly.A * (ly.L - ly.mu) / ly.sigma**2).sum()


def _line4(ly: Layer, _: Adjoints) -> torch.Tensor:
    # μ.grad = Σ_{t,i} L̃.grad[t, i] σ'(A[i]h[t, i] + B[i]) A[i]/σ
    return (_G(ly) * ly.A / ly.sigma).sum()


def _line4_corrected(ly: Layer, _: Adjoints) -> torch.Tensor:
    # μ.grad = −Σ_{t,i} L̃.grad[t, i] σ'(A[i]h[t, i] + B[i]) A[i]/σ
    return -(_G(ly) * ly.A / ly.sigma).sum()


def _line5(ly: Layer, _: Adjoints) -> torch.Tensor:
    # L.grad[t, i] += L̃.grad[t, i] σ'(A[i]h[t, i] + B[i]) A[i]/σ
    return _G(ly) * ly.A / ly.sigma


def _line6(ly: Layer, adjoints: Adjoints) -> torch.Tensor:
    # μ.grad += Σ_{t,i} σ.grad (1/(TIσ)) (μ − L[t, i])   (= 0, says the quiz)
    return (adjoints["σ.grad"] / (ly.TI * ly.sigma) * (ly.mu - ly.L)).sum()


def _line7(ly: Layer, adjoints: Adjoints) -> torch.Tensor:
    # L.grad[t, i] += σ.grad (1/(TIσ)) (L[t, i] − μ)
    return adjoints["σ.grad"] / (ly.TI * ly.sigma) * (ly.L - ly.mu)


def _line8(ly: Layer, adjoints: Adjoints) -> torch.Tensor:
    # L.grad[t, i] += μ.grad (1/(TI))
    return (adjoints["μ.grad"] / ly.TI).expand(ly.L.shape)


def _combined_A(ly: Layer, _: Adjoints) -> torch.Tensor:
    # A.grad[i] += Σ_t L̃.grad[t, i] σ'(A[i]h[t, i] + B[i]) h[t, i]
    return (_G(ly) * ly.h).sum(0)


def _combined_L(ly: Layer, _: Adjoints) -> torch.Tensor:
    # L.grad[t, i] += (1/σ)(L̃.grad σ'(A h + B) A − Σ_{t,i} L̃.grad σ'(A h + B) A/TI
    #                       − h Σ_{t,i} L̃.grad σ'(A h + B) A h/TI)
    GA = _G(ly) * ly.A
    return (GA - GA.sum() / ly.TI - ly.h * (GA * ly.h).sum() / ly.TI) / ly.sigma


_TRUE = "the true adjoints, by autograd"
LINES = (
    PrintedLine(
        "P3.line1",
        "line 1: A.grad",
        r"A.grad[i] += \sum_t \tilde{L}.grad[t, i] \sigma'(A[i]h[t, i] + B[i]) "
        r"\frac{L[t, i] - \mu}{\sigma}",
        "A.grad",
        True,
        "A.grad",
        "L̃.grad (given), L, μ, σ, h, A, B (forward values)",
        _line1,
        text="A.grad[i] += Σ_t L̃.grad[t, i] σ'(A[i]h[t, i] + B[i]) (L[t, i] − μ)/σ",
    ),
    PrintedLine(
        "P3.line2",
        "line 2: B.grad",
        r"B.grad[i] += \sum_t \tilde{L}.grad[t, i] \sigma'(A[i]h[t, i] + B[i])",
        "B.grad",
        True,
        "B.grad",
        "L̃.grad (given), h, A, B (forward values)",
        _line2,
        text="B.grad[i] += Σ_t L̃.grad[t, i] σ'(A[i]h[t, i] + B[i])",
    ),
    PrintedLine(
        "P3.line3",
        "line 3: σ.grad",
        r"\sigma.grad = \sum_{t,i} \tilde{L}.grad[t, i] \sigma'(h[t, i]) "
        r"\frac{A[i](L[t, i] - \mu)}{\sigma^2}",
        "σ.grad",
        False,
        "σ.grad",
        "L̃.grad (given), L, μ, σ, h, A (forward values)",
        _line3,
        corrected_latex=r"\sigma.grad = -\sum_{t,i} \tilde{L}.grad[t, i] "
        r"\sigma'(A[i]h[t, i] + B[i]) \frac{A[i](L[t, i] - \mu)}{\sigma^2}",
        corrected=_line3_corrected,
        diagnostics=(
            ("only the sign changed (σ'(h) kept)", _line3_sign_only),
            ("only σ'(h) changed to σ'(A[i]h[t, i] + B[i]) (sign kept)", _line3_argument_only),
        ),
        text="σ.grad = Σ_{t,i} L̃.grad[t, i] σ'(h[t, i]) A[i](L[t, i] − μ)/σ²",
        corrected_text="σ.grad = −Σ_{t,i} L̃.grad[t, i] σ'(A[i]h[t, i] + B[i]) A[i](L[t, i] − μ)/σ²",
    ),
    PrintedLine(
        "P3.line4",
        "line 4: μ.grad, direct term",
        r"\mu.grad = \sum_{t,i} \tilde{L}.grad[t, i] \sigma'(A[i]h[t, i] + B[i]) "
        r"\frac{A[i]}{\sigma}",
        "μ.grad",
        False,
        "μ.grad via L̃",
        "L̃.grad (given), σ, h, A, B (forward values)",
        _line4,
        corrected_latex=r"\mu.grad = -\sum_{t,i} \tilde{L}.grad[t, i] "
        r"\sigma'(A[i]h[t, i] + B[i]) \frac{A[i]}{\sigma}",
        corrected=_line4_corrected,
        text="μ.grad = Σ_{t,i} L̃.grad[t, i] σ'(A[i]h[t, i] + B[i]) A[i]/σ",
        corrected_text="μ.grad = −Σ_{t,i} L̃.grad[t, i] σ'(A[i]h[t, i] + B[i]) A[i]/σ",
    ),
    PrintedLine(
        "P3.line5",
        "line 5: L.grad, direct term",
        r"L.grad[t, i] += \tilde{L}.grad[t, i] \sigma'(A[i]h[t, i] + B[i]) \frac{A[i]}{\sigma}",
        "L.grad",
        True,
        "L.grad via L̃",
        "L̃.grad (given), σ, h, A, B (forward values)",
        _line5,
        text="L.grad[t, i] += L̃.grad[t, i] σ'(A[i]h[t, i] + B[i]) A[i]/σ",
    ),
    PrintedLine(
        "P3.line6",
        "line 6: μ.grad through σ (= 0)",
        r"\mu.grad += \sum_{t,i} \sigma.grad \frac{1}{TI\sigma} (\mu - L[t, i]) = 0",
        "μ.grad",
        True,
        "μ.grad via σ",
        f"σ.grad ({_TRUE}), L, μ, σ (forward values)",
        _line6,
        text="μ.grad += Σ_{t,i} σ.grad (1/(TIσ)) (μ − L[t, i]) = 0",
    ),
    PrintedLine(
        "P3.line7",
        "line 7: L.grad through σ",
        r"L.grad[t, i] += \sigma.grad \frac{1}{TI\sigma} (L[t, i] - \mu)",
        "L.grad",
        True,
        "L.grad via σ",
        f"σ.grad ({_TRUE}), L, μ, σ (forward values)",
        _line7,
        text="L.grad[t, i] += σ.grad (1/(TIσ)) (L[t, i] − μ)",
    ),
    PrintedLine(
        "P3.line8",
        "line 8: L.grad through μ",
        r"L.grad[t, i] += \mu.grad \frac{1}{TI}",
        "L.grad",
        True,
        "L.grad via μ",
        f"μ.grad ({_TRUE}: both of its terms)",
        _line8,
        text="L.grad[t, i] += μ.grad (1/(TI))",
    ),
)
COMBINED = (
    PrintedLine(
        "P3.combined.A",
        "combined: A.grad",
        r"A.grad[i] += \sum_t \tilde{L}.grad[t, i] \sigma'(A[i]h[t, i] + B[i]) h[t, i]",
        "A.grad",
        True,
        "A.grad",
        "L̃.grad (given), h, A, B (forward values)",
        _combined_A,
        text="A.grad[i] += Σ_t L̃.grad[t, i] σ'(A[i]h[t, i] + B[i]) h[t, i]",
    ),
    PrintedLine(
        "P3.combined.B",
        "combined: B.grad",
        r"B.grad[i] += \sum_t \tilde{L}.grad[t, i] \sigma'(A[i]h[t, i] + B[i])",
        "B.grad",
        True,
        "B.grad",
        "L̃.grad (given), h, A, B (forward values)",
        _line2,
        text="B.grad[i] += Σ_t L̃.grad[t, i] σ'(A[i]h[t, i] + B[i])",
    ),
    PrintedLine(
        "P3.combined.L",
        "combined: L.grad",
        r"L.grad[t, i] += \frac{1}{\sigma} \left(\tilde{L}.grad[t, i] \sigma'(A[i]h[t, i] + B[i]) "
        r"A[i] - \frac{\sum_{t,i} \tilde{L}.grad[t, i] \sigma'(A[i]h[t, i] + B[i]) A[i]}{TI} "
        r"- h[t, i] \frac{\sum_{t,i} \tilde{L}.grad[t, i] \sigma'(A[i]h[t, i] + B[i]) A[i] "
        r"h[t, i]}{TI} \right)",
        "L.grad",
        True,
        "L.grad",
        "L̃.grad (given), σ, h, A, B (forward values)",
        _combined_L,
        text="L.grad[t, i] += (1/σ)(L̃.grad[t, i] σ'(A[i]h[t, i] + B[i]) A[i] "
        "− Σ_{t,i} L̃.grad[t, i] σ'(A[i]h[t, i] + B[i]) A[i]/TI "
        "− h[t, i] Σ_{t,i} L̃.grad[t, i] σ'(A[i]h[t, i] + B[i]) A[i] h[t, i]/TI)",
    ),
)


def _shown(t: torch.Tensor) -> float | list[float]:
    """A scalar, or the first few entries of a vector or matrix (row-major)."""
    return t.item() if t.numel() == 1 else t.flatten()[:SHOWN].tolist()


def _brief(t: torch.Tensor) -> str:
    shown = _shown(t)
    if isinstance(shown, float):
        return f"{shown:.6g}"
    more = ", …" if t.numel() > SHOWN else ""
    return "[" + ", ".join(f"{v:.4g}" for v in shown) + more + "]"


def _relu_disagreements(ly: Layer) -> int:
    """Entries where σ'(h) ≠ σ'(A h + B) for ReLU: where line 3's argument matters."""
    return int(((ly.h > 0) != (ly.A * ly.h + ly.B > 0)).sum())


def check_line(line: PrintedLine, ctx: Context) -> Evidence:
    ly = ctx.shared("P3.layer", partial(_layer, ctx))
    true = ly.true[line.claims]
    printed = line.printed(ly, ly.true)
    tolerance = EXACT * max(1.0, true.abs().max().item())
    error = max_error(true, printed)
    holds_as_printed = error <= tolerance
    details: dict[str, Any] = {
        "latex": line.latex,
        "reads": line.reads,
        "true_value_of": line.claims,
        "shape": list(true.shape),
        "printed": _shown(printed),
        "true": _shown(true),
        "max_error": error,
        "relative": False,
        "layer": {"T": SHAPE[0], "I": SHAPE[1], "relu_disagreements": _relu_disagreements(ly)},
    }
    note = ""
    if line.corrected is not None:
        corrected_error = max_error(true, line.corrected(ly, ly.true))
        details |= {
            "corrected_latex": line.corrected_latex,
            "corrected": _shown(line.corrected(ly, ly.true)),
            "corrected_max_error": corrected_error,
            "corrected_verdict": "confirmed" if corrected_error <= tolerance else "refuted",
        }
    if line.diagnostics:
        details["diagnostics"] = [
            {
                "form": name,
                "value": _shown(f(ly, ly.true)),
                "max_error": max_error(true, f(ly, ly.true)),
            }
            for name, f in line.diagnostics
        ]
    if not holds_as_printed:
        note = f"as printed it gives {_brief(printed)}; the true {line.claims} is {_brief(true)}"
        if line.corrected is not None:
            note += (
                f". Corrected: {line.corrected_text} ({details['corrected_verdict']}, error "
                f"{details['corrected_max_error']:.2g})"
            )
    return holds(
        holds_as_printed,
        expected=_shown(printed),
        measured=_shown(true),
        tolerance=tolerance,
        reference=f"autograd (float64) on the graph L → μ → σ → L̃ with μ, σ as nodes: the true "
        f"{line.claims}; ReLU, eps = 0, one {SHAPE[0]}×{SHAPE[1]} layer",
        details=details,
        note=note,
    )


def _run_in_order(ly: Layer, corrected: bool) -> Adjoints:
    """Lines 1–8 as a program: each reads the adjoints the lines before it computed."""
    values: Adjoints = {}
    for line in LINES:
        formula = line.corrected if corrected and line.corrected is not None else line.printed
        value = formula(ly, values)
        values[line.target] = values.get(line.target, 0) + value if line.accumulate else value
    return values


def check_chain(ctx: Context) -> Evidence:
    ly = ctx.shared("P3.layer", partial(_layer, ctx))
    combined = {line.target: line.printed(ly, ly.true) for line in COMBINED}
    runs = {"printed": _run_in_order(ly, corrected=False), "corrected": _run_in_order(ly, True)}
    errors = {
        run: {key: max_error(combined[key], values[key]) for key in combined}
        for run, values in runs.items()
    }
    tolerance = EXACT * max(1.0, max(ly.true[key].abs().max().item() for key in combined))
    worst = max(errors["printed"].values())
    return holds(
        worst <= tolerance,
        expected={key: _shown(runs["printed"][key]) for key in combined},
        measured={key: _shown(combined[key]) for key in combined},
        tolerance=tolerance,
        reference="the combined equations evaluated on the same layer (each confirmed against "
        "autograd: P3.combined.A/B/L)",
        details={
            "max_error": worst,
            "relative": False,
            "errors": errors,
            "corrected_lines": [line.id for line in LINES if line.corrected is not None],
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
        "μ = (1/TI) Σ_{t,i} L[t, i], σ = sqrt((1/TI) Σ_{t,i} (L[t, i] − μ)²), "
        "L̃[t, i] = σ(A[i]/σ (L[t, i] − μ) + B[i]): infonorm's forward, over the whole layer or "
        "per position, with every activation.",
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
