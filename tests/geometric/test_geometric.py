import math

import numpy as np
import pytest
import torch
from scipy import stats

from infonorm import geometric


def _reference_cross_entropy(mu: float, lam: float) -> float:
    """H(Pop, Q_λ) for a two-point population of mean μ, summed with scipy's NB(1, 1−λ)."""
    low = math.floor(mu)
    weights = np.array([1 - (mu - low), mu - low])
    k = np.array([low, low + 1])
    terms = np.where(weights > 0, -weights * stats.nbinom.logpmf(k, 1, 1 - lam), 0.0)
    return float(terms.sum())


def test_distribution_is_torch_geometric_with_success_probability_one_minus_lambda():
    Q = geometric.distribution(0.3)
    assert isinstance(Q, torch.distributions.Geometric)
    k = torch.arange(6, dtype=torch.float64)
    torch.testing.assert_close(Q.log_prob(k).exp(), (1 - 0.3) * 0.3**k)


@pytest.mark.parametrize(
    ("mu", "lam"), [(0.0, 0.4), (3.7, 0.2), (3.7, 0.78), (12.25, 0.95), (0.5, 1e-6)]
)
def test_cross_entropy_matches_direct_sum(mu, lam):
    # scipy forms 1 − p from p = 1 − λ, which costs it ~1e-16/λ of relative accuracy
    rel = max(1e-12, 1e-15 / lam)
    assert geometric.cross_entropy(mu, lam) == pytest.approx(
        _reference_cross_entropy(mu, lam), rel=rel
    )


def test_cross_entropy_limits_at_lambda_zero():
    assert geometric.cross_entropy(0.0, 0.0) == 0.0
    assert geometric.cross_entropy(2.0, 0.0) == math.inf


def test_cross_entropy_broadcasts_over_tensors():
    mu = torch.tensor([[0.0], [1.0], [4.0]])
    lam = torch.tensor([0.0, 0.25, 0.5])
    H = geometric.cross_entropy(mu, lam)
    assert H.shape == (3, 3)
    assert H.dtype == torch.float64
    expected = [
        [
            _reference_cross_entropy(m, v) if v > 0 else (0.0 if m == 0 else math.inf)
            for v in lam.tolist()
        ]
        for m in mu.flatten().tolist()
    ]
    torch.testing.assert_close(H, torch.tensor(expected, dtype=torch.float64))


@pytest.mark.parametrize(("mu", "lam"), [(0.0, 0.3), (2.5, 0.1), (2.5, 0.9), (100.0, 0.99)])
def test_cross_entropy_grad_matches_autograd_of_closed_form(mu, lam):
    lam_t = torch.tensor(lam, dtype=torch.float64, requires_grad=True)
    (g,) = torch.autograd.grad(geometric.cross_entropy(mu, lam_t), lam_t)
    assert geometric.cross_entropy_grad(mu, lam) == pytest.approx(g.item(), rel=1e-12)


def test_cross_entropy_grad_at_boundary():
    assert geometric.cross_entropy_grad(0.0, 0.0) == 1.0
    assert geometric.cross_entropy_grad(1.0, 0.0) == -math.inf


@pytest.mark.parametrize("mu", [0.0, 1e-9, 0.3, 1.0, 7.5, 1e6])
def test_optimal_lambda_zeroes_the_gradient_and_keeps_the_mean(mu):
    lam = geometric.optimal_lambda(mu)
    assert lam == pytest.approx(mu / (mu + 1))
    if mu > 0:
        assert abs(geometric.cross_entropy_grad(mu, lam)) < 1e-9 * (1 + mu)
    assert geometric.distribution(lam).mean.item() == pytest.approx(mu, rel=1e-9, abs=1e-12)


def test_optimal_lambda_is_the_grid_minimum():
    lams = torch.linspace(0.001, 0.999, 9999, dtype=torch.float64)
    for mu in (0.2, 3.0, 40.0):
        grid_best = lams[torch.argmin(geometric.cross_entropy(mu, lams))].item()
        assert grid_best == pytest.approx(geometric.optimal_lambda(mu), abs=2e-4)


def test_empirical_cross_entropy_is_mean_negative_log_probability():
    samples = [0, 1, 1, 2, 3, 5, 8]
    lam = 0.6
    direct = -np.mean(stats.nbinom.logpmf(samples, 1, 1 - lam))
    assert geometric.empirical_cross_entropy(samples, lam) == pytest.approx(direct, rel=1e-12)
    lams = torch.tensor([0.2, 0.6], dtype=torch.float64)
    values = geometric.empirical_cross_entropy(samples, lams)
    assert values.shape == (2,)
    assert values[1].item() == pytest.approx(direct, rel=1e-12)


def test_empirical_cross_entropy_is_differentiable_in_lambda():
    lam = torch.tensor(0.4, dtype=torch.float64, requires_grad=True)
    H = geometric.empirical_cross_entropy([2, 2, 4], lam)
    (g,) = torch.autograd.grad(H, lam)
    assert g.item() == pytest.approx(geometric.cross_entropy_grad(8 / 3, 0.4), rel=1e-12)


@pytest.mark.parametrize(
    "samples",
    [
        [0],
        [0, 0, 0],
        [7],
        [0, 1],
        list(range(50)),
        [0, 10**9],
        np.random.default_rng(3).poisson(0.02, 997),
    ],
)
def test_gradient_fit_lands_on_closed_form(samples):
    closed = geometric.fit(samples)
    numeric = geometric.fit(samples, method="gradient")
    assert numeric.lam == pytest.approx(closed.lam, abs=1e-6)
    assert abs(numeric.lam - closed.mu / (closed.mu + 1)) < 1e-6
    assert numeric.cross_entropy == pytest.approx(closed.cross_entropy, rel=1e-9, abs=1e-12)
    assert numeric.path
    assert numeric.path[-1] == numeric.lam


def test_fit_reports_sample_statistics():
    counts = np.random.default_rng(0).poisson(3.7, 5000)
    fit = geometric.fit(torch.as_tensor(counts))
    assert fit.n == 5000
    assert fit.mu == pytest.approx(counts.mean())
    assert fit.mean == pytest.approx(fit.mu)
    assert fit.cross_entropy == pytest.approx(geometric.cross_entropy(fit.mu, fit.lam), rel=1e-12)
    torch.testing.assert_close(
        fit.pmf([0, 1]), torch.tensor([1 - fit.lam, (1 - fit.lam) * fit.lam], dtype=torch.float64)
    )


def test_fit_accepts_integral_floats_and_tuples():
    assert geometric.fit((1.0, 2.0, 3.0)).mu == 2.0
    assert geometric.fit(np.array([4], dtype=np.uint8)).lam == pytest.approx(0.8)


def test_total_variation_counts_the_tail_beyond_the_largest_sample():
    lam = 0.5
    samples = [0, 0, 1, 3]
    Q = [(1 - lam) * lam**k for k in range(4)]
    empirical = [0.5, 0.25, 0.0, 0.25]
    expected = 0.5 * (sum(abs(q - e) for q, e in zip(Q, empirical, strict=True)) + lam**4)
    assert geometric.total_variation(samples, lam) == pytest.approx(expected)
    assert geometric.total_variation([0], 0.0) == 0.0


@pytest.mark.parametrize(
    ("samples", "message"),
    [
        ([], "empty"),
        ([1, -2], "negative"),
        ([1, 2.5], "fractional"),
        ([1, float("nan")], "NaN"),
        ([1, float("inf")], "NaN or infinite"),
        (["a", "b"], "integers"),
        ("123", "string"),
        ([[1, 2], [3, 4]], "1-D"),
        (None, "sequence"),
        (torch.tensor([True, False]), "bool"),
        ([10**13], "1e12"),
    ],
)
def test_bad_samples_raise_value_error_naming_samples(samples, message):
    with pytest.raises(ValueError, match=f"samples.*{message}|{message}.*samples"):
        geometric.fit(samples)


def test_unknown_method_lists_valid_ones():
    with pytest.raises(ValueError, match="'closed-form', 'gradient'"):
        geometric.fit([1, 2], method="newton")


@pytest.mark.parametrize("lam", [-0.1, 1.0, 1.5, float("nan")])
def test_lambda_outside_unit_interval_is_rejected(lam):
    with pytest.raises(ValueError, match="lam"):
        geometric.cross_entropy(1.0, lam)
    with pytest.raises(ValueError, match="lam"):
        geometric.distribution(lam)


@pytest.mark.parametrize("mu", [-1.0, float("nan")])
def test_negative_mean_is_rejected(mu):
    with pytest.raises(ValueError, match="mu"):
        geometric.optimal_lambda(mu)


def test_non_numeric_parameters_are_type_errors():
    with pytest.raises(TypeError, match="mu"):
        geometric.cross_entropy("1", 0.5)
    with pytest.raises(TypeError, match="lam"):
        geometric.cross_entropy(1.0, True)
