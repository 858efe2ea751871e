"""Problem 1 claims: cross-entropy of Q_λ(k) = (1 − λ)λ^k, its minimizer and the fitted mean.

Every check evaluates the quiz's formula (through `infonorm.geometric`) against a reference
outside infonorm, named in the claim's `reference`: scipy.stats' negative binomial (Q_λ is
NB(n=1, p=1 − λ)) summed over the population, scipy.optimize, autograd through
torch.distributions, or a series summed by math.fsum. Checks inside infonorm (its gradient
fit) are kept beside them as cross-checks, labeled as such.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from functools import cache, partial

import numpy as np
import torch
from scipy import optimize, stats
from sklearn.datasets import load_digits, load_linnerud
from torch.distributions import Geometric

from infonorm import geometric
from infonorm.quiz.claims.engine import Claim, Context, Evidence, combine, holds, number, within

LAMBDA_GRID = (0.05, 0.25, 0.5, 0.75, 0.95)


@dataclass(frozen=True)
class Population:
    """A population on k >= 0: its mean, E_Pop[f(k)] evaluated by scipy, and a sampler."""

    name: str
    kind: str  # "model" (a parametric law) or "data" (a real data set's counts)
    mean: float
    expect: Callable[[Callable[[np.ndarray], np.ndarray]], float]
    sample: Callable[[np.random.Generator, int], np.ndarray]
    counts: np.ndarray | None = None


def _law(name: str, law: stats.rv_discrete) -> Population:
    def sample(rng: np.random.Generator, n: int) -> np.ndarray:
        return law.rvs(size=n, random_state=rng)

    return Population(name, "model", float(law.mean()), law.expect, sample)


def _mixture(name: str, weights: tuple[float, ...], laws: tuple) -> Population:
    def expect(f):
        return sum(w * law.expect(f) for w, law in zip(weights, laws, strict=True))

    def sample(rng: np.random.Generator, n: int) -> np.ndarray:
        component = rng.choice(len(laws), size=n, p=weights)
        draws = [law.rvs(size=n, random_state=rng) for law in laws]
        return np.choose(component, draws)

    mean = sum(w * law.mean() for w, law in zip(weights, laws, strict=True))
    return Population(name, "model", float(mean), expect, sample)


def _data(name: str, counts: np.ndarray) -> Population:
    counts = np.asarray(counts, dtype=np.int64)
    values, multiplicity = np.unique(counts, return_counts=True)
    freq = multiplicity / counts.size

    def expect(f):
        return float(np.sum(freq * f(values)))

    def sample(rng: np.random.Generator, n: int) -> np.ndarray:
        return counts

    return Population(name, "data", float(counts.mean()), expect, sample, counts)


@cache
def populations() -> tuple[Population, ...]:
    """The populations every P1 claim is checked on: four laws and three real data sets."""
    linnerud = load_linnerud()
    exercise = dict(zip(linnerud.feature_names, linnerud.data.T, strict=True))
    return (
        _law("Poisson(3.7)", stats.poisson(3.7)),
        _law("negative binomial(n=2.5, p=0.35)", stats.nbinom(2.5, 0.35)),
        _mixture(
            "mixture 0.6·Poisson(1) + 0.4·Poisson(12)",
            (0.6, 0.4),
            (stats.poisson(1.0), stats.poisson(12.0)),
        ),
        _law("uniform on {0, …, 20}", stats.randint(0, 21)),
        _data("digits: on-pixels per 4×4 block (sklearn)", load_digits().data.ravel()),
        _data("Linnerud: chin-ups (sklearn)", exercise["Chins"]),
        _data("Linnerud: sit-ups (sklearn)", exercise["Situps"]),
    )


def _direct_cross_entropy(population: Population, lam: float) -> float:
    # H(Pop, Q_λ) = E_Pop[−ln Q_λ(k)], with Q_λ = NB(n=1, p=1 − λ) from scipy.stats
    return population.expect(lambda k: -stats.nbinom.logpmf(k, 1, 1 - lam))


# what the checks below compare with, outside infonorm
SCIPY_SUM = (
    r"scipy.stats, summing $\mathrm{Pop}(k)\,(-\ln Q_\lambda(k))$ over $k$ with "
    r"$\ln Q_\lambda(k)$ = nbinom.logpmf$(k, 1, 1 - \lambda)$"
)


def check_closed_form(ctx: Context) -> Evidence:
    rows, expected, measured = [], [], []
    for population in ctx.track(populations(), "P1.a populations"):
        mu = population.mean
        lams = [*LAMBDA_GRID, geometric.optimal_lambda(mu)]
        closed = [geometric.cross_entropy(mu, lam) for lam in lams]
        direct = [_direct_cross_entropy(population, lam) for lam in lams]
        expected += closed
        measured += direct
        rows.append(
            {
                "population": population.name,
                "kind": population.kind,
                "mu": mu,
                "lam": lams,
                "closed_form": closed,
                "scipy": direct,
            }
        )
    return within(
        expected,
        measured,
        1e-9,
        relative=True,
        reference=SCIPY_SUM,
        over=f"{len(rows)} populations",
        details={"populations": rows, "empirical": _empirical_frequencies()},
    )


def _empirical_frequencies() -> list[dict]:
    """Frequencies of the real data sets, for the fitted-pmf figure of the report."""
    out = []
    for population in populations():
        if population.counts is None:
            continue
        values, multiplicity = np.unique(population.counts, return_counts=True)
        fit = geometric.fit(population.counts)
        out.append(
            {
                "population": population.name,
                "values": values,
                "frequency": multiplicity / fit.n,
                "lam": fit.lam,
                "mu": fit.mu,
                "total_variation": geometric.total_variation(population.counts, fit.lam),
            }
        )
    return out


def check_minimizer(ctx: Context) -> Evidence:
    n = 2_000 if ctx.quick else 20_000
    scipy_parts, gradient_parts, paths = [], [], []
    for population in ctx.track(populations(), "P1.b minimizers"):
        # scipy's bounded Brent on H(Pop, Q_λ) evaluated directly, never through λ*
        best = optimize.minimize_scalar(
            partial(_direct_cross_entropy, population),
            bounds=(1e-12, 1 - 1e-12),
            method="bounded",
            options={"xatol": 1e-12},
        )
        scipy_parts.append(
            within(
                geometric.optimal_lambda(population.mean),
                best.x,
                1e-6,
                reference="scipy.optimize.minimize_scalar",
                label=f"scipy's minimizer, {population.name}",
            )
        )
        # our gradient fit on a sample of the population, against μ̂/(μ̂ + 1) of that sample
        sample = population.sample(ctx.rng(f"P1.b/{population.name}"), n)
        fitted = geometric.fit(sample, method="gradient")
        gradient_parts.append(
            within(
                geometric.optimal_lambda(fitted.mu),
                fitted.lam,
                1e-6,
                reference="infonorm's geometric.fit(method='gradient'), a cross-check inside "
                "infonorm: Newton steps on autograd derivatives of the empirical cross-entropy",
                label=f"infonorm's gradient fit, {population.name}",
            )
        )
        paths.append({"population": population.name, "mu": fitted.mu, "path": fitted.path})
    evidence = combine(
        scipy_parts + gradient_parts,
        reference=r"scipy.optimize.minimize_scalar (bounded Brent) on $H(\mathrm{Pop}, Q_\lambda)$ "
        "summed directly by scipy.stats, never through the closed form",
        over=f"{len(scipy_parts)} populations",
    )
    evidence.details["populations"] = [p.name for p in populations()]
    evidence.details["gradient_paths"] = paths
    return evidence


def _autograd_derivatives(mu: float, lam: float) -> tuple[float, float]:
    """∂_λ H and ∂²_λ H by autograd, for a two-point population {⌊μ⌋, ⌈μ⌉} of mean μ."""
    low = math.floor(mu)
    weight_high = mu - low
    k = torch.tensor([low, low + 1.0], dtype=torch.float64)
    weights = torch.tensor([1 - weight_high, weight_high], dtype=torch.float64)
    lam_t = torch.tensor(lam, dtype=torch.float64, requires_grad=True)
    H = -(weights * Geometric(probs=1 - lam_t).log_prob(k)).sum()
    (g,) = torch.autograd.grad(H, lam_t, create_graph=True)
    (h,) = torch.autograd.grad(g, lam_t)
    return g.item(), h.item()


def _grid(quick: bool) -> tuple[np.ndarray, np.ndarray]:
    lams = np.concatenate([[1e-6, 1e-3], np.linspace(0.01, 0.99, 25 if quick else 99), [1 - 1e-6]])
    mus = np.concatenate([[0.0, 1e-3, 0.5], np.geomspace(1, 1000, 10 if quick else 40)])
    return lams, mus


def check_derivatives(ctx: Context) -> Evidence:
    lams, mus = _grid(ctx.quick)
    printed_first, printed_second, auto_first, auto_second = [], [], [], []
    for mu in ctx.track(mus, "P1.b derivatives"):
        for lam in lams:
            g, h = _autograd_derivatives(mu, lam)
            auto_first.append(g)
            auto_second.append(h)
            # the quiz: ∂_λ H = 1/(1 − λ) − μ/λ and ∂²_λ H = 1/(1 − λ)² + μ/λ²
            printed_first.append(1 / (1 - lam) - mu / lam)
            printed_second.append(1 / (1 - lam) ** 2 + mu / lam**2)
    return combine(
        [
            within(
                printed_first,
                auto_first,
                1e-9,
                relative=True,
                reference="torch.autograd",
                label="first derivative",
            ),
            within(
                printed_second,
                auto_second,
                1e-9,
                relative=True,
                reference="torch.autograd",
                label="second derivative",
            ),
        ],
        reference="torch.autograd through torch.distributions.Geometric (first and second "
        "derivative)",
        over=f"a {len(mus)} × {len(lams)} grid of means in [0, 1000] and parameters in (0, 1)",
    )


# λ of the second differences of scipy's H: a step of 0.02 across (0, 1)
CONVEXITY_LAMBDAS = np.linspace(0.02, 0.98, 49)


def check_convexity(ctx: Context) -> Evidence:
    lams, mus = _grid(ctx.quick)
    curvature = np.array([[_autograd_derivatives(mu, lam)[1] for lam in lams] for mu in mus])
    smallest = float(curvature.min())
    where = np.unravel_index(curvature.argmin(), curvature.shape)
    grid = holds(
        smallest > 0,
        expected="the second derivative is > 0 everywhere on the grid",
        measured=smallest,
        reference="torch.autograd through torch.distributions.Geometric",
        summary=f"smallest second derivative {number(smallest)} on a {len(mus)} × {len(lams)} grid",
        label="autograd",
        details={"min_mu": float(mus[where[0]]), "min_lambda": float(lams[where[1]])},
    )
    return combine(
        [grid, _scipy_second_differences()],
        reference=r"torch.autograd's second derivative on a grid of $\mu$ and $\lambda$; "
        f"second differences of {SCIPY_SUM}",
    )


def _scipy_second_differences() -> Evidence:
    """H(λ − δ) − 2H(λ) + H(λ + δ) > 0 along a λ grid for every population, H summed by scipy:
    convexity seen without any derivative, ours or autograd's."""
    rows = []
    for population in populations():
        H = np.array([_direct_cross_entropy(population, lam) for lam in CONVEXITY_LAMBDAS])
        rows.append({"population": population.name, "smallest": float(np.diff(H, 2).min())})
    smallest = min(row["smallest"] for row in rows)
    return holds(
        smallest > 0,
        expected="every second difference > 0",
        measured=smallest,
        reference=SCIPY_SUM,
        summary=f"smallest second difference {number(smallest)} over "
        f"{len(CONVEXITY_LAMBDAS)} points in (0, 1) on {len(rows)} populations",
        label="scipy's H",
        details={"lambda": CONVEXITY_LAMBDAS, "populations": rows},
    )


def check_mean(ctx: Context) -> Evidence:
    mus = [*(p.mean for p in populations()), 0.0, 1e-3, 1e3]
    lam_star = [geometric.optimal_lambda(mu) for mu in mus]
    means = [
        Geometric(probs=torch.tensor(1 - lam, dtype=torch.float64)).mean.item() for lam in lam_star
    ]
    return within(
        mus,
        means,
        1e-12,
        relative=True,
        reference=r"torch.distributions.Geometric(probs $= 1 - \lambda^*$).mean",
        over="means from 0 to 1000",
        details={"lambda_star": lam_star},
    )


def _series_mean(lam: float, tail_bound: float) -> tuple[float, float, int]:
    """Σ_{k=0}^{K} k(1 − λ)λ^k, the bound on the rest, and K, with the rest below tail_bound."""

    # Σ_{k>K} k(1 − λ)λ^k = λ^(K+1)((K+1)(1 − λ) + λ)/(1 − λ) decreases to 0 in K
    def tail(K: int) -> float:
        return lam ** (K + 1) * ((K + 1) * (1 - lam) + lam) / (1 - lam)

    K = 0
    while tail(K) > tail_bound:
        K = max(2 * K, 16)
    k = np.arange(K + 1, dtype=np.float64)
    terms = k * (1 - lam) * lam**k
    return math.fsum(terms), tail(K), K


def check_mean_series(ctx: Context) -> Evidence:
    mus = [*(p.mean for p in populations()), 0.0, 1e-3, 1e3]
    rows, ok = [], True
    for mu in mus:
        lam = geometric.optimal_lambda(mu)
        partial_sum, tail, K = _series_mean(lam, tail_bound=1e-12 * max(mu, 1.0))
        # the truncated sum undershoots μ by the tail, up to float64 rounding of K terms
        rounding = 8 * np.finfo(np.float64).eps * max(mu, 1.0) * math.log2(K + 2)
        ok &= -rounding <= mu - partial_sum <= tail + rounding
        rows.append(
            {"mu": mu, "lambda_star": lam, "partial_sum": partial_sum, "K": K, "tail_bound": tail}
        )
    worst = max(abs(r["mu"] - r["partial_sum"]) for r in rows)
    return holds(
        ok,
        expected=mus,
        measured=[r["partial_sum"] for r in rows],
        tolerance=max(r["tail_bound"] for r in rows),
        reference=r"the series $\sum_{k \le K} k (1 - \lambda^*) \lambda^{*k}$ summed by "
        r"Python's math.fsum, its rest $\sum_{k > K}$ bounded in closed form",
        summary=f"every partial sum is below the mean by at most its tail bound (largest gap "
        f"{number(worst)}) for {len(rows)} means from 0 to 1000",
        details={"series": rows, "max_error": worst},
    )


CLAIMS = [
    Claim(
        "P1.a",
        "P1",
        r"$H(\mathrm{Pop}, Q_\lambda) = -(\ln(1 - \lambda) + \mu \ln \lambda)$, "
        r"with $\mu = E_{k \sim \mathrm{Pop}}[k]$.",
        check_closed_form,
        "closed-form cross-entropy",
    ),
    Claim(
        "P1.b",
        "P1",
        r"$\lambda^* = \mu/(\mu + 1)$ minimizes $H(\mathrm{Pop}, Q_\lambda)$.",
        check_minimizer,
        "the minimizer",
    ),
    Claim(
        "P1.b.derivative",
        "P1",
        r"$\partial_\lambda H(\mathrm{Pop}, Q_\lambda) = 1/(1 - \lambda) - \mu/\lambda$ and "
        r"$\partial^2_\lambda H(\mathrm{Pop}, Q_\lambda) = 1/(1 - \lambda)^2 + \mu/\lambda^2$.",
        check_derivatives,
        "first and second derivatives",
    ),
    Claim(
        "P1.b.convexity",
        "P1",
        r"$\partial^2_\lambda H(\mathrm{Pop}, Q_\lambda) > 0$ for all $\lambda \in [0, 1)$ and "
        r"$\mu \in [0, \infty)$: $H$ is strictly convex in $\lambda$, so the stationary point "
        "is the minimum.",
        check_convexity,
        "strict convexity",
    ),
    Claim(
        "P1.c",
        "P1",
        r"The mean of $Q_{\lambda^*}$ is $\mu$: $E_{k \sim Q_\lambda}[k] = \lambda/(1 - \lambda)$, "
        r"and $\lambda^* = \mu/(\mu + 1)$ gives $\mu$.",
        check_mean,
        "mean of the fitted distribution",
    ),
    Claim(
        "P1.c.series",
        "P1",
        r"$\sum_k k (1 - \lambda) \lambda^k = \lambda/(1 - \lambda)$, the series behind the "
        "mean.",
        check_mean_series,
        "the mean by its series",
    ),
]
