"""Bad input to layer norm (the rows of cases.py), mixed dtypes, layouts, zero sizes,
requires_grad combinations, devices."""

import math
import re

import numpy as np
import pytest
import torch
from torch.utils._python_dispatch import TorchDispatchMode

from infonorm import LayerNorm, layer_norm
from infonorm.layer_norm import layer_norm_backward, layer_norm_reference
from tests.cases import assert_documented_error, coarsest, requires_cuda
from tests.layer_norm.cases import CASES, LAYER_NORM_DTYPES


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_bad_input_gets_the_documented_error(case):
    assert_documented_error(case)


class _NoWork(TorchDispatchMode):
    """Fails on the first tensor operation (ours, ATen's or a kernel's) that runs."""

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        raise AssertionError(f"{func} ran before the arguments were checked")


BEFORE_ANY_WORK = [c for c in CASES if not c.from_forward]


@pytest.mark.parametrize("case", BEFORE_ANY_WORK, ids=[c.id for c in BEFORE_ANY_WORK])
def test_layer_norm_refuses_before_any_work(case):
    with _NoWork(), pytest.raises(case.error, match="^" + re.escape(case.prefix)):
        case.call()


def test_no_work_mode_sees_the_operator():
    # the seam above would catch the computation starting
    x, A, B = torch.randn(2, 3, 4), torch.ones(4), torch.zeros(4)
    for scope in ("layer", "position"):
        with _NoWork(), pytest.raises(AssertionError, match="ran before the arguments"):
            layer_norm(x, A, B, scope=scope)


def _leaves(x, A, B, needs=(True, True, True)):
    return [t.detach().clone().requires_grad_(n) for t, n in zip((x, A, B), needs, strict=True)]


@pytest.mark.parametrize("row", LAYER_NORM_DTYPES, ids=lambda r: f"x={r.x}-params={r.params}")
def test_layer_norm_dtype_mixes(row):
    g = torch.Generator().manual_seed(1)
    x = torch.randn(3, 5, 7, generator=g).to(row.x)
    A, B = torch.randn(7, generator=g).to(row.params), torch.randn(7, generator=g).to(row.params)
    dy = torch.randn(3, 5, 7, generator=g).to(row.y)
    x, A, B = _leaves(x, A, B)
    y = layer_norm(x, A, B, activation="gelu")
    y.backward(dy)
    assert (y.dtype, x.grad.dtype, A.grad.dtype, B.grad.dtype) == (
        row.y,
        row.dx,
        row.dparams,
        row.dparams,
    )
    ref_leaves = [t.detach().double().requires_grad_() for t in (x, A, B)]
    ref = layer_norm_reference(*ref_leaves, activation="gelu")
    ref.backward(dy.double())
    tolerance = coarsest(row.x, row.params)
    torch.testing.assert_close(y.double(), ref, rtol=tolerance, atol=tolerance)
    for got, leaf in zip((x.grad, A.grad, B.grad), ref_leaves, strict=True):
        scale = leaf.grad.abs().max().item()
        torch.testing.assert_close(got.double(), leaf.grad, rtol=tolerance, atol=tolerance * scale)


def test_layer_norm_backward_takes_dy_of_another_float_dtype():
    x, A, B = torch.randn(2, 3, 4), torch.randn(4), torch.randn(4)
    dy = torch.randn(2, 3, 4)
    kw = {"scope": "layer", "activation": "tanh", "eps": 1e-5}
    dx, dA, dB = layer_norm_backward(dy.bfloat16(), x, A, B, **kw)
    assert (dx.dtype, dA.dtype, dB.dtype) == (torch.float32,) * 3
    expected = layer_norm_backward(dy.bfloat16().float(), x, A, B, **kw)
    for got, want in zip((dx, dA, dB), expected, strict=True):
        torch.testing.assert_close(got, want)


NEEDS = [(a, b, c) for a in (False, True) for b in (False, True) for c in (False, True)]


@pytest.mark.parametrize("scope", ["layer", "position"])
@pytest.mark.parametrize("needs", NEEDS, ids=lambda n: "".join("xAB"[i] for i in range(3) if n[i]))
def test_layer_norm_every_requires_grad_combination_matches_the_reference(scope, needs):
    g = torch.Generator().manual_seed(2)
    x, A, B = (torch.randn(s, generator=g, dtype=torch.float64) for s in ((2, 3, 5), 5, 5))
    dy = torch.randn(2, 3, 5, generator=g, dtype=torch.float64)
    ours = _leaves(x, A, B, needs)
    y = layer_norm(*ours, scope=scope, activation="silu")
    assert y.requires_grad == any(needs)
    reference = _leaves(x, A, B)
    ref = layer_norm_reference(*reference, scope=scope, activation="silu")
    torch.testing.assert_close(y.detach(), ref.detach(), rtol=1e-12, atol=1e-12)
    if not any(needs):
        return
    y.backward(dy)
    ref.backward(dy)
    for got, want, needed in zip(ours, reference, needs, strict=True):
        if needed:
            torch.testing.assert_close(got.grad, want.grad, rtol=1e-10, atol=1e-10)
        else:
            assert got.grad is None


@pytest.mark.parametrize("context", [torch.no_grad, torch.inference_mode])
def test_layer_norm_without_autograd(context):
    x, A = torch.randn(2, 3, 4, requires_grad=True), torch.randn(4, requires_grad=True)
    B = torch.randn(4, requires_grad=True)
    expected = layer_norm(x, A, B).detach()
    with context():
        y = layer_norm(x, A, B)
    assert not y.requires_grad
    torch.testing.assert_close(y, expected)


def _layer_norm_and_grads(x, A, B, dy, **kw):
    x, A, B = _leaves(x, A, B)
    y = layer_norm(x, A, B, **kw)
    y.backward(dy)
    return y.detach(), x.grad, A.grad, B.grad


@pytest.mark.parametrize(
    "make",
    [
        pytest.param(lambda: torch.randn(4, 5, 6).transpose(0, 1), id="transposed"),
        pytest.param(lambda: torch.randn(1, 5, 6).expand(4, 5, 6), id="expanded"),
        pytest.param(lambda: torch.randn(4, 5, 12)[..., ::2], id="strided-last-dim"),
        pytest.param(
            lambda: torch.randn(2, 4, 5, 6).contiguous(memory_format=torch.channels_last),
            id="channels-last",
        ),
    ],
)
@pytest.mark.parametrize("scope", ["layer", "position"])
def test_layer_norm_layouts_give_the_contiguous_result(make, scope):
    x = make()
    A, B = torch.randn(12)[::2], torch.randn(12)[1::2]  # strided parameters too
    dy = torch.randn(x.shape)
    got = _layer_norm_and_grads(x, A, B, dy, scope=scope, activation="gelu")
    want = _layer_norm_and_grads(
        x.contiguous(), A.contiguous(), B.contiguous(), dy, scope=scope, activation="gelu"
    )
    for g, w in zip(got, want, strict=True):
        torch.testing.assert_close(g, w, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize(
    ("shape", "scope"),
    [((0, 3, 4), "layer"), ((2, 0, 3, 4), "layer"), ((0, 4), "position"), ((3, 0, 4), "position")],
)
@pytest.mark.parametrize("eps", [0.0, 1e-5])
def test_layer_norm_zero_size_leading_dims(shape, scope, eps):
    x = torch.randn(shape, requires_grad=True)
    A, B = torch.randn(4, requires_grad=True), torch.randn(4, requires_grad=True)
    y = layer_norm(x, A, B, scope=scope, eps=eps)
    assert y.shape == shape
    y.sum().backward()
    assert x.grad.shape == shape
    assert torch.equal(A.grad, torch.zeros(4))
    assert torch.equal(B.grad, torch.zeros(4))


@pytest.mark.parametrize("bad", [math.nan, math.inf, -math.inf])
@pytest.mark.parametrize("scope", ["layer", "position"])
def test_layer_norm_non_finite_x_spoils_its_own_layer_only(bad, scope):
    x, A, B = torch.randn(3, 4, 5), torch.randn(5), torch.randn(5)
    x[1, 2, 3] = bad
    y = layer_norm(x, A, B, scope=scope, activation="identity")
    spoiled = (1, slice(None)) if scope == "layer" else (1, 2)
    assert torch.isnan(y[spoiled]).all()
    clean = torch.ones(y.shape, dtype=torch.bool)
    clean[spoiled] = False
    expected = layer_norm(torch.where(clean, x, 0.0), A, B, scope=scope, activation="identity")
    torch.testing.assert_close(y[clean], expected[clean])


@pytest.mark.parametrize("scope", ["layer", "position"])
@pytest.mark.parametrize("eps", [0.0, 1e-5])
def test_layer_norm_on_the_meta_device_gives_shapes(scope, eps):
    x = torch.empty(2, 3, 4, device="meta", dtype=torch.bfloat16, requires_grad=True)
    A = torch.empty(4, device="meta", requires_grad=True)
    B = torch.empty(4, device="meta")
    y = layer_norm(x, A, B, scope=scope, eps=eps)
    assert (y.device.type, y.shape, y.dtype) == ("meta", x.shape, torch.bfloat16)
    y.sum().backward()
    assert (x.grad.device.type, x.grad.shape, A.grad.shape) == ("meta", x.shape, (4,))


def test_layer_norm_module_takes_numpy_integers_and_half_dtypes():
    module = LayerNorm(np.int64(4), dtype=torch.bfloat16)
    assert module.normalized_shape == (4,)
    assert type(module.normalized_shape[0]) is int
    assert module.weight.dtype == module.bias.dtype == torch.bfloat16
    assert module(torch.randn(2, 3, 4)).dtype == torch.float32


@requires_cuda
@pytest.mark.gpu
@pytest.mark.parametrize("name", ["A", "B"])
def test_layer_norm_parameters_on_the_cpu_for_x_on_cuda(name):
    x, A, B = torch.randn(2, 3, 4, device="cuda"), torch.ones(4), torch.zeros(4)
    params = {"A": A.cuda(), "B": B.cuda(), name: {"A": A, "B": B}[name]}
    with pytest.raises(ValueError, match=f"^{name} is on cpu but x is on cuda:0: put both on one"):
        layer_norm(x, params["A"], params["B"])
