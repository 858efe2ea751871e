"""Problem 1: fitting Q_λ(k) = (1 − λ) λ^k, k = 0, 1, 2, …, to counts by cross-entropy.

For a population Pop on k >= 0 with mean μ:

    H(Pop, Q_λ) = −E_{k~Pop}[ln Q_λ(k)] = −(ln(1 − λ) + μ ln λ)
    ∂_λ H       = 1/(1 − λ) − μ/λ
    λ*          = μ/(μ + 1)            (the unique minimizer on [0, 1))
    E_{Q_λ*}[k] = λ*/(1 − λ*) = μ

Q_λ is the geometric distribution counting failures before the first success, with
success probability p = 1 − λ; `distribution` returns torch's own.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import torch
from torch.distributions import Geometric

from infonorm._validation import as_counts, as_float64, check_choice, check_in_range

__all__ = [
    "FIT_METHODS",
    "GeometricFit",
    "cross_entropy",
    "cross_entropy_grad",
    "distribution",
    "empirical_cross_entropy",
    "fit",
    "optimal_lambda",
    "total_variation",
]

FIT_METHODS = ("closed-form", "gradient")


def _lambda(lam: Any) -> tuple[torch.Tensor, bool]:
    lam_t, scalar = as_float64(lam, "lam")
    check_in_range(lam_t.detach(), "lam", low=0.0, high=1.0, high_open=True)
    return lam_t, scalar


def _mean(mu: Any) -> tuple[torch.Tensor, bool]:
    mu_t, scalar = as_float64(mu, "mu")
    check_in_range(mu_t.detach(), "mu", low=0.0, high=math.inf, high_open=True)
    return mu_t, scalar


def _mean_and_lambda(mu: Any, lam: Any) -> tuple[torch.Tensor, bool, torch.Tensor, bool]:
    """Both parameters checked, and checked to combine: one device, broadcastable shapes."""
    mu_t, mu_scalar = as_float64(mu, "mu")
    lam_t, lam_scalar = as_float64(lam, "lam")
    if mu_t.device != lam_t.device and not (mu_scalar or lam_scalar):
        raise ValueError(f"mu is on {mu_t.device} but lam is on {lam_t.device}: put both on one")
    try:
        torch.broadcast_shapes(mu_t.shape, lam_t.shape)
    except RuntimeError:
        raise ValueError(
            f"mu of shape {tuple(mu_t.shape)} and lam of shape {tuple(lam_t.shape)} "
            "do not broadcast together"
        ) from None
    mu_t, _ = _mean(mu_t)
    lam_t, _ = _lambda(lam_t)
    return mu_t, mu_scalar, lam_t, lam_scalar


def _result(value: torch.Tensor, scalar: bool) -> torch.Tensor | float:
    return value.item() if scalar else value


def distribution(lam: Any) -> Geometric:
    """Q_λ as `torch.distributions.Geometric(probs=1 − λ)`, for 0 <= λ < 1."""
    lam_t, _ = _lambda(lam)
    # Q_λ(k) = (1 − λ) λ^k = p (1 − p)^k with p = 1 − λ
    return Geometric(probs=1 - lam_t)


def cross_entropy(mu: Any, lam: Any) -> torch.Tensor | float:
    """H(Pop, Q_λ) = −(ln(1 − λ) + μ ln λ) in nats, for a population of mean μ.

    Broadcasts over tensors; a float in gives a float out. At λ = 0 the limits are exact:
    0 when μ = 0, +inf when μ > 0.
    """
    mu_t, mu_scalar, lam_t, lam_scalar = _mean_and_lambda(mu, lam)
    # H = −(ln(1 − λ) + μ ln λ); xlogy makes μ ln λ = 0 at μ = 0, λ = 0
    H = -(torch.log1p(-lam_t) + torch.xlogy(mu_t, lam_t))
    return _result(H, mu_scalar and lam_scalar)


def cross_entropy_grad(mu: Any, lam: Any) -> torch.Tensor | float:
    """∂_λ H(Pop, Q_λ) = 1/(1 − λ) − μ/λ (−inf at λ = 0 when μ > 0; 1 when μ = 0)."""
    mu_t, mu_scalar, lam_t, lam_scalar = _mean_and_lambda(mu, lam)
    # μ/λ with the limit 0 at μ = 0, so that the derivative at the boundary λ = 0 is 1
    mu_over_lam = torch.where(mu_t == 0, torch.zeros_like(mu_t), mu_t / lam_t)
    # ∂_λ H = 1/(1 − λ) − μ/λ
    grad = 1 / (1 - lam_t) - mu_over_lam
    return _result(grad, mu_scalar and lam_scalar)


def optimal_lambda(mu: Any) -> torch.Tensor | float:
    """λ* = μ/(μ + 1), the minimizer of H(Pop, Q_λ) over 0 <= λ < 1.

    ValueError for μ = inf, and for μ so large (about 9e15 and beyond) that λ* rounds to 1
    in float64."""
    mu_t, scalar = _mean(mu)
    if torch.isinf(mu_t).any():
        raise ValueError("mu must be finite: λ* = μ/(μ + 1) reaches 1, outside [0, 1)")
    # λ* = μ/(μ + 1)
    lam = mu_t / (mu_t + 1)
    if (lam >= 1).any():
        too_large = mu_t[lam >= 1].flatten()[0].item()
        raise ValueError(
            f"mu = {too_large:g} is too large: λ* = μ/(μ + 1) rounds to 1 in float64, "
            "outside [0, 1)"
        )
    return _result(lam, scalar)


@dataclass(frozen=True)
class _Sample:
    """A sample of counts as its histogram: distinct values k, ascending, and how many
    times each occurs."""

    values: torch.Tensor
    times: torch.Tensor

    @property
    def n(self) -> int:
        return int(self.times.sum())

    def support(self) -> tuple[torch.Tensor, torch.Tensor]:
        """The values k and their frequencies Pop̂(k), in float64."""
        return self.values.to(torch.float64), self.times.to(torch.float64) / self.n

    def mean(self) -> float:
        """μ̂ = Σ_k k·times(k) / n, summed exactly in integers and rounded once."""
        total = 0
        for start in range(0, self.values.numel(), 1 << 16):
            piece = slice(start, start + (1 << 16))
            pairs = zip(self.values[piece].tolist(), self.times[piece].tolist(), strict=True)
            total += sum(k * t for k, t in pairs)
        return total / self.n


def _sample(samples: Any, weights: Any = None) -> _Sample:
    """`samples` as a histogram; with `weights`, samples[i] occurs weights[i] times."""
    counts = as_counts(samples)
    if weights is None:
        return _Sample(*torch.unique(counts, return_counts=True))
    times = as_counts(weights, "weights")
    if times.numel() != counts.numel():
        raise ValueError(
            f"weights must hold one entry per sample: {times.numel()} for {counts.numel()} samples"
        )
    values, where = torch.unique(counts, return_inverse=True)
    total = torch.zeros_like(values).index_add_(0, where, times)
    if not (total > 0).any():
        raise ValueError("weights are all 0: at least one count is needed")
    return _Sample(values[total > 0], total[total > 0])


def _weighted_nll(values: torch.Tensor, freq: torch.Tensor, lam: torch.Tensor) -> torch.Tensor:
    # Ĥ(λ) = Σ_k Pop̂(k) · (−ln Q_λ(k)), ln Q_λ from torch.distributions, not from our formula
    return -(freq * Geometric(probs=1 - lam).log_prob(values)).sum()


def empirical_cross_entropy(samples: Any, lam: Any, *, weights: Any = None) -> torch.Tensor | float:
    """Mean of −ln Q_λ(k) over `samples`, evaluated with torch.distributions.

    With `weights`, samples[i] counts weights[i] times (a histogram). Differentiable in
    `lam` when it is a tensor that requires grad.
    """
    values, freq = _sample(samples, weights).support()
    lam_t, scalar = _lambda(lam)
    if lam_t.numel() == 0:
        return lam_t.new_empty(lam_t.shape)
    nll = torch.stack([_weighted_nll(values, freq, one) for one in lam_t.reshape(-1)])
    return _result(nll.reshape(lam_t.shape), scalar)


def total_variation(samples: Any, lam: float, *, weights: Any = None) -> float:
    """½ Σ_k |Q_λ(k) − Pop̂(k)| between Q_λ and the empirical frequencies of `samples`
    (with `weights`, samples[i] counts weights[i] times).

    The sum runs over every k >= 0. Both sides sum to 1, so it equals Σ_k max(Pop̂(k) − Q_λ(k), 0),
    whose terms vanish wherever Pop̂(k) = 0: a sum over the distinct samples only, however
    large they are (a count of 1e12 costs no more than a count of 1).
    """
    values, freq = _sample(samples, weights).support()
    lam_t, _ = _lambda(lam)
    if lam_t.numel() != 1:
        raise ValueError(f"lam must be a single number, got shape {tuple(lam_t.shape)}")
    Q = distribution(lam_t.detach().reshape(())).log_prob(values).exp()
    # ½ Σ_k |Q(k) − Pop̂(k)| = Σ_k (Pop̂(k) − Q(k))⁺, Pop̂ = 0 off the sample's support
    return (freq - Q).clamp_min(0).sum().item()


@dataclass(frozen=True)
class GeometricFit:
    """Q_λ fitted to a sample of counts by minimizing the empirical cross-entropy."""

    lam: float
    mu: float
    cross_entropy: float
    n: int
    method: str
    path: tuple[float, ...] = field(default=(), repr=False)

    @property
    def mean(self) -> float:
        """E_{k~Q_λ}[k] = λ/(1 − λ), the mean of the fitted distribution."""
        return self.lam / (1 - self.lam)

    def distribution(self) -> Geometric:
        return distribution(self.lam)

    def pmf(self, k: Any) -> torch.Tensor:
        """Q_λ(k) for whole numbers k >= 0."""
        k_t, _ = as_float64(k, "k")
        check_in_range(k_t, "k", low=0.0, high=math.inf, high_open=True)
        if (k_t != k_t.floor()).any():
            raise ValueError("k must hold whole numbers, got fractional values")
        return self.distribution().log_prob(k_t).exp()


def fit(samples: Any, method: str = "closed-form", *, weights: Any = None) -> GeometricFit:
    """Fit Q_λ to counts by cross-entropy.

    `samples` are the counts; or, with `weights`, a histogram: samples[i] occurs weights[i]
    times (what `infonorm fit` passes, having read a file of any size into its histogram).
    method="closed-form": λ = μ̂/(μ̂ + 1) with μ̂ the sample mean.
    method="gradient": minimizes the empirical cross-entropy Ĥ(λ) numerically (Newton steps
    on the autograd derivatives of Ĥ, safeguarded by bisection), without using λ*; it is
    independent evidence that the closed form is the minimizer. `path` holds its iterates.
    """
    check_choice(method, "method", FIT_METHODS)
    sample = _sample(samples, weights)
    values, freq = sample.support()
    mu = sample.mean()
    if method == "closed-form":
        lam, path = mu / (mu + 1), ()
    else:
        lam, path = _minimize_empirical_cross_entropy(values, freq)
    H = _weighted_nll(values, freq, torch.tensor(lam, dtype=torch.float64)).item()
    return GeometricFit(lam=lam, mu=mu, cross_entropy=H, n=sample.n, method=method, path=path)


def _derivatives(values: torch.Tensor, freq: torch.Tensor, lam: float) -> tuple[float, float]:
    """(∂_λ Ĥ, ∂²_λ Ĥ) at λ by autograd through torch.distributions' log-probability."""
    lam_t = torch.tensor(lam, dtype=torch.float64, requires_grad=True)
    (g,) = torch.autograd.grad(_weighted_nll(values, freq, lam_t), lam_t, create_graph=True)
    if not g.requires_grad:  # Ĥ is linear in λ only at degenerate points; no curvature term
        return g.item(), 0.0
    (h,) = torch.autograd.grad(g, lam_t)
    return g.item(), h.item()


def _minimize_empirical_cross_entropy(
    values: torch.Tensor, freq: torch.Tensor, max_steps: int = 200
) -> tuple[float, tuple[float, ...]]:
    # Ĥ is convex on [0, 1): if it does not decrease at λ = 0, the boundary is the minimum.
    g0, _ = _derivatives(values, freq, 0.0)
    if g0 >= 0:
        return 0.0, (0.0,)
    # From λ = 1/2 one Newton step on this family lands exactly on μ/(μ + 1); starting
    # elsewhere makes the path show the minimization rather than that coincidence.
    low, high, lam = 0.0, 1.0, 0.1
    path = [lam]
    for _ in range(max_steps):
        g, h = _derivatives(values, freq, lam)
        if g == 0:
            break
        # the sign of the derivative of a convex function brackets its minimizer
        if g > 0:
            high = lam
        else:
            low = lam
        newton = lam - g / h if h > 0 else math.nan
        if abs(newton - lam) <= 1e-15 * lam or high - low <= 1e-16:
            break
        lam = newton if low < newton < high else 0.5 * (low + high)
        path.append(lam)
    return lam, tuple(path)
