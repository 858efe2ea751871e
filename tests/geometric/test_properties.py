"""Properties of the Problem 1 fit over random samples (hypothesis)."""

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from infonorm import geometric

counts = st.lists(st.integers(min_value=0, max_value=10**6), min_size=1, max_size=60)
means = st.floats(min_value=0.0, max_value=1e12, allow_nan=False)


@settings(max_examples=60, deadline=None)
@given(counts)
def test_fit_lambda_lies_in_unit_interval_and_matches_the_mean(samples):
    fit = geometric.fit(samples)
    assert 0.0 <= fit.lam < 1.0
    assert fit.mu == pytest.approx(np.mean(samples), rel=1e-12)
    assert fit.mean == pytest.approx(fit.mu, rel=1e-9, abs=1e-12)


@settings(max_examples=60, deadline=None)
@given(means, means)
def test_optimal_lambda_increases_with_the_mean(mu1, mu2):
    low, high = sorted((mu1, mu2))
    assert geometric.optimal_lambda(low) <= geometric.optimal_lambda(high)


@settings(max_examples=40, deadline=None)
@given(counts)
def test_gradient_fit_agrees_with_closed_form(samples):
    closed = geometric.fit(samples)
    numeric = geometric.fit(samples, method="gradient")
    assert abs(numeric.lam - closed.lam) < 1e-6


@settings(max_examples=60, deadline=None)
@given(means, st.floats(min_value=0.0, max_value=1.0, exclude_max=True))
def test_optimum_is_never_beaten(mu, lam):
    best = geometric.cross_entropy(mu, geometric.optimal_lambda(mu))
    other = geometric.cross_entropy(mu, lam)
    assert best <= other * (1 + 1e-12) + 1e-12 or math.isinf(other)
