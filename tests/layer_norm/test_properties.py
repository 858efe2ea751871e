"""Properties of layer_norm over random shapes, values and scales (hypothesis)."""

import pytest
import torch
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from infonorm.activations import ACTIVATIONS
from infonorm.layer_norm import layer_norm, layer_norm_reference

dims = st.integers(min_value=1, max_value=6)
scales = st.sampled_from([1e-30, 1e-12, 1e-3, 1.0, 1e3, 1e12, 1e30])


@st.composite
def problems(draw):
    scope = draw(st.sampled_from(["layer", "position"]))
    shape = (draw(dims), draw(dims), draw(st.integers(min_value=2, max_value=9)))
    seed = draw(st.integers(min_value=0, max_value=2**31 - 1))
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(shape, generator=g, dtype=torch.float64)
    A = torch.randn(shape[-1], generator=g, dtype=torch.float64)
    B = torch.randn(shape[-1], generator=g, dtype=torch.float64)
    dy = torch.randn(shape, generator=g, dtype=torch.float64)
    return scope, x, A, B, dy


def _run(x, A, B, dy, **kw):
    x, A, B = (t.detach().clone().requires_grad_() for t in (x, A, B))
    y = layer_norm(x, A, B, **kw)
    (y.double() * dy).sum().backward()
    return y.detach(), x.grad, A.grad, B.grad


@settings(max_examples=40, deadline=None)
@given(
    problems(), scales, st.floats(min_value=-1e6, max_value=1e6), st.sampled_from(list(ACTIVATIONS))
)
def test_output_is_unchanged_by_shifting_and_scaling_x(problem, scale, shift, activation):
    scope, x, A, B, _ = problem
    kw = {"scope": scope, "activation": activation, "eps": 0.0}
    y = layer_norm(x, A, B, **kw)
    moved = layer_norm(x * scale + shift * scale, A, B, **kw)
    torch.testing.assert_close(moved, y, rtol=1e-6, atol=1e-6)


@settings(max_examples=40, deadline=None)
@given(problems(), scales, st.sampled_from(list(ACTIVATIONS)))
def test_float32_matches_float64_reference_at_any_scale(problem, scale, activation):
    scope, x, A, B, dy = problem
    kw = {"scope": scope, "activation": activation, "eps": 0.0}
    y, dx, dA, dB = _run((x * scale).float(), A.float(), B.float(), dy.float(), **kw)
    leaves = [t.clone().requires_grad_() for t in (x * scale, A, B)]
    ref = layer_norm_reference(*leaves, **kw)
    ref_dx, ref_dA, ref_dB = torch.autograd.grad(ref, leaves, dy)
    torch.testing.assert_close(y.double(), ref, rtol=1e-4, atol=1e-4)
    # dx scales as 1/σ: compare σ·dx, which is of the order of dy·A at any scale
    dims = (-2, -1) if scope == "layer" else (-1,)
    sigma = (x * scale).std(dims, correction=0, keepdim=True)
    torch.testing.assert_close(dx.double() * sigma, ref_dx * sigma, rtol=0, atol=1e-4)
    torch.testing.assert_close(dA.double(), ref_dA, rtol=1e-4, atol=1e-4)
    torch.testing.assert_close(dB.double(), ref_dB, rtol=1e-4, atol=1e-4)


def _spread(x, scope):
    """The smallest max − min over the layers (or positions) of x: 0 if one is constant."""
    rows = x.flatten(-2) if scope == "layer" else x
    return (rows.amax(-1) - rows.amin(-1)).min().item()


@settings(max_examples=25, deadline=None)
@given(problems(), st.sampled_from([1e-30, 1.0, 1e30]))
def test_bfloat16_stays_finite_and_close_at_any_scale(problem, scale):
    scope, x, A, B, dy = problem
    x, A, B = (x * scale).bfloat16(), A.bfloat16(), B.bfloat16()
    # rounding to bfloat16 (8 bits) can make a small layer constant, which eps = 0 refuses
    assume(_spread(x, scope) > 0)
    kw = {"scope": scope, "activation": "gelu", "eps": 0.0}
    y, dx, dA, dB = _run(x, A, B, dy, **kw)
    assert all(torch.isfinite(t).all() for t in (y, dx, dA, dB))
    # the reference sees the same rounded numbers in float64
    leaves = [t.double().requires_grad_() for t in (x, A, B)]
    ref = layer_norm_reference(*leaves, **kw)
    ref_dx, ref_dA, ref_dB = torch.autograd.grad(ref, leaves, dy)
    torch.testing.assert_close(y.double(), ref, rtol=0.05, atol=0.05)
    # gradients to bfloat16's precision relative to the size of their terms, which may
    # cancel: σ·dx (see above) is of the order of dy·A, even where it is 0 (two neurons:
    # h = ±1 whatever x is); dA = Σ dy σ'(…) h and dB = Σ dy σ'(…) of the order of Σ |dy|
    dims = (-2, -1) if scope == "layer" else (-1,)
    sigma = leaves[0].detach().std(dims, correction=0, keepdim=True)
    terms_dx = (dy * leaves[1].detach()).abs().max().item()
    terms_dAB = dy.abs().flatten(0, -2).sum(0).max().item()
    for got, want, terms in (
        (dx.double() * sigma, ref_dx * sigma, terms_dx),
        (dA, ref_dA, terms_dAB),
        (dB, ref_dB, terms_dAB),
    ):
        torch.testing.assert_close(got.double(), want, rtol=0.05, atol=0.02 * terms)


@pytest.mark.parametrize(
    "needs",
    [(True, False, False), (False, True, False), (False, False, True), (False, False, False)],
)
def test_every_requires_grad_combination(needs):
    x, A, B = torch.randn(3, 4, 5), torch.randn(5), torch.randn(5)
    x, A, B = (t.requires_grad_(n) for t, n in zip((x, A, B), needs, strict=True))
    y = layer_norm(x, A, B, activation="silu")
    if not any(needs):
        assert not y.requires_grad
        return
    y.sum().backward()
    for t, n in zip((x, A, B), needs, strict=True):
        assert (t.grad is not None) == n


def test_non_contiguous_and_zero_size_inputs():
    x = torch.randn(5, 4, 6).transpose(0, 1)
    A, B = torch.randn(6), torch.randn(6)
    torch.testing.assert_close(layer_norm(x, A, B), layer_norm(x.contiguous(), A, B))
    empty = torch.randn(0, 4, 6, requires_grad=True)
    y = layer_norm(empty, A, B)
    assert y.shape == (0, 4, 6)
    y.sum().backward()
    assert empty.grad.shape == (0, 4, 6)
