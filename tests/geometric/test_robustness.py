"""Bad input to `infonorm.geometric` (the rows of cases.py), numbers of every kind, devices."""

import warnings

import numpy as np
import pytest
import torch

from infonorm import geometric
from tests.geometric.cases import CASES

requires_cuda = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_bad_input_gets_the_documented_error(case):
    with pytest.raises(case.error) as info:
        case.call()
    assert type(info.value) is case.error
    assert str(info.value).startswith(case.prefix), str(info.value)


def test_geometric_accepts_numbers_of_every_kind_and_computes_in_float64():
    expected = geometric.cross_entropy(2.0, 0.5)
    assert isinstance(expected, float)
    for mu, lam in [
        (np.float32(2.0), np.float64(0.5)),
        (torch.tensor(2), torch.tensor(0.5, dtype=torch.bfloat16)),
        (torch.tensor(2.0, dtype=torch.float16), 0.5),
        (torch.tensor([2, 2], dtype=torch.int32), torch.tensor([0.5, 0.5])),
    ]:
        H = geometric.cross_entropy(mu, lam)
        assert isinstance(H, float) or H.dtype == torch.float64
        H = torch.as_tensor(H, dtype=torch.float64)
        torch.testing.assert_close(H, torch.full_like(H, expected))


def test_geometric_keeps_a_gradient_through_lam():
    lam = torch.tensor([0.25, 0.5], requires_grad=True)
    H = geometric.cross_entropy(torch.tensor([1.0, 3.0]), lam)
    H.sum().backward()
    expected = geometric.cross_entropy_grad(torch.tensor([1.0, 3.0]), lam.detach())
    torch.testing.assert_close(lam.grad, expected.float())
    empirical = geometric.empirical_cross_entropy([1, 3], lam)
    assert empirical.requires_grad


def test_empty_lam_gives_empty_results():
    assert geometric.cross_entropy(1.0, []).shape == (0,)
    assert geometric.empirical_cross_entropy([1, 2], torch.empty(0, 3)).shape == (0, 3)


def test_float16_counts_are_checked_without_overflow_warnings():
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        fit = geometric.fit(np.array([65504, 0], dtype=np.float16))
    assert fit.mu == 32752.0


@pytest.mark.parametrize("largest", [10**8, 10**12])
def test_total_variation_of_huge_counts_is_immediate(largest):
    # it used to allocate one float64 per k up to the largest count: 8 TB for 1e12
    samples = [0, largest]
    lam = geometric.fit(samples).lam
    Q = geometric.distribution(lam).log_prob(torch.tensor([0.0, float(largest)])).exp()
    expected = 0.5 * (abs(Q[0].item() - 0.5) + abs(Q[1].item() - 0.5) + 1 - Q.sum().item())
    assert geometric.total_variation(samples, lam) == pytest.approx(expected, abs=1e-12)


def test_non_contiguous_and_requires_grad_samples_are_read_as_counts():
    samples = torch.arange(10.0, requires_grad=True)[::2]
    assert geometric.fit(samples).mu == 4.0


@requires_cuda
@pytest.mark.gpu
def test_geometric_parameters_on_two_devices():
    with pytest.raises(ValueError, match=r"^mu is on cuda:0 but lam is on cpu: put both on one"):
        geometric.cross_entropy(torch.ones(3, device="cuda"), torch.full((3,), 0.5))


@pytest.mark.parametrize("method", ["closed-form", "gradient"])
def test_a_histogram_fits_as_the_samples_it_counts(method):
    samples = [0, 3, 3, 7, 0, 0, 12, 3]
    values, weights = [12, 0, 3, 7, 5], [1, 3, 3, 1, 0]  # any order, a zero weight, repeats
    whole = geometric.fit(samples, method=method)
    histogram = geometric.fit(values, method=method, weights=weights)
    assert histogram == whole
    assert geometric.fit([3, 0, 3], weights=[2, 3, 1]) == geometric.fit([3, 3, 0, 0, 0, 3])
    lam = torch.tensor([0.2, 0.6], dtype=torch.float64)
    torch.testing.assert_close(
        geometric.empirical_cross_entropy(values, lam, weights=weights),
        geometric.empirical_cross_entropy(samples, lam),
    )
    assert geometric.total_variation(values, 0.6, weights=weights) == pytest.approx(
        geometric.total_variation(samples, 0.6), abs=1e-15
    )


def test_the_mean_is_exact_however_large_the_counts():
    # Σ k·n(k) = 999999999999000001 needs 60 bits: float64 would round it before dividing
    fit = geometric.fit([999_999_999_999, 1], weights=[10**6, 1])
    assert fit.mu == 999_999_999_999_000_001 / 1_000_001  # correctly rounded, once
    assert fit.mu != float(np.dot([999_999_999_999.0, 1.0], [1e6, 1.0])) / 1_000_001
    assert fit.n == 1_000_001
