import subprocess
import sys

import pytest
import torch

from infonorm.activations import ACTIVATIONS
from infonorm.layer_norm import (
    BACKENDS,
    SCOPES,
    LayerNorm,
    layer_norm,
    layer_norm_backward,
    layer_norm_reference,
)

ACTS = sorted(ACTIVATIONS)
# awkward shapes per scope: T or I equal to 1, primes, extra leading dims, no leading dims
SHAPES = {
    "layer": [(1, 1), (7, 1), (1, 13), (3, 5, 7), (2, 3, 4, 5)],
    "position": [(1,), (13,), (5, 1), (3, 5, 7), (2, 3, 1, 11)],
}
CASES = [(scope, shape) for scope in SCOPES for shape in SHAPES[scope]]
# per-dtype tolerances, relative to the largest |entry| of the float64 reference
TOLERANCE = {torch.float64: 1e-12, torch.float32: 2e-6, torch.float16: 1e-3, torch.bfloat16: 8e-3}


def _inputs(shape, dtype=torch.float64, seed=0):
    g = torch.Generator().manual_seed(seed)
    x = (torch.randn(shape, generator=g, dtype=torch.float64) * 1.5 + 0.3).to(dtype)
    A = torch.randn(shape[-1], generator=g, dtype=torch.float64).to(dtype)
    B = torch.randn(shape[-1], generator=g, dtype=torch.float64).to(dtype)
    dy = torch.randn(shape, generator=g, dtype=torch.float64).to(dtype)
    return x, A, B, dy


def _value_and_grads(f, x, A, B, dy, **kw):
    leaves = [t.detach().clone().requires_grad_() for t in (x, A, B)]
    y = f(*leaves, **kw)
    return (y, *torch.autograd.grad(y, leaves, dy.to(y.dtype)))


def _assert_close_relative(actual, expected, tolerance):
    """|actual − expected| <= tolerance · max(1, max |expected|), entry by entry."""
    expected = expected.to(torch.float64)
    scale = max(1.0, expected.abs().max().item()) if expected.numel() else 1.0
    torch.testing.assert_close(actual.to(torch.float64), expected, rtol=0, atol=tolerance * scale)


@pytest.mark.parametrize("activation", ACTS)
@pytest.mark.parametrize(("scope", "shape"), CASES)
def test_output_and_gradients_match_float64_reference(scope, shape, activation):
    x, A, B, dy = _inputs(shape)
    kw = {"scope": scope, "activation": activation, "eps": 1e-5}
    ours = _value_and_grads(layer_norm, x, A, B, dy, backend="torch", **kw)
    reference = _value_and_grads(layer_norm_reference, x, A, B, dy, **kw)
    for name, got, want in zip(("y", "dx", "dA", "dB"), ours, reference, strict=True):
        assert got.shape == want.shape, name
        _assert_close_relative(got, want, TOLERANCE[torch.float64])


@pytest.mark.parametrize("activation", ACTS)
@pytest.mark.parametrize("scope", SCOPES)
def test_gradcheck(scope, activation):
    x, A, B, _ = _inputs((2, 3, 5))
    inputs = tuple(t.requires_grad_() for t in (x, A, B))

    def f(x, A, B):
        return layer_norm(x, A, B, scope=scope, activation=activation, backend="torch")

    assert torch.autograd.gradcheck(f, inputs)


@pytest.mark.parametrize("scope", SCOPES)
def test_hand_backward_function_matches_autograd(scope):
    x, A, B, dy = _inputs((2, 4, 6))
    kw = {"scope": scope, "activation": "gelu", "eps": 1e-5}
    _, *expected = _value_and_grads(layer_norm_reference, x, A, B, dy, **kw)
    for got, want in zip(layer_norm_backward(dy, x, A, B, **kw), expected, strict=True):
        _assert_close_relative(got, want, TOLERANCE[torch.float64])


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16, torch.float16])
@pytest.mark.parametrize("activation", ACTS)
@pytest.mark.parametrize(("scope", "shape"), [("layer", (3, 17, 29)), ("position", (4, 5, 31))])
def test_low_precision_matches_reference_cast_down(scope, shape, activation, dtype):
    x, A, B, dy = _inputs(shape, dtype)
    kw = {"scope": scope, "activation": activation, "eps": 1e-5}
    ours = _value_and_grads(layer_norm, x, A, B, dy, backend="torch", **kw)
    # the reference sees the same rounded inputs, in float64
    reference = _value_and_grads(layer_norm_reference, x.double(), A.double(), B.double(), dy, **kw)
    for got, want, like in zip(ours, reference, (x, x, A, B), strict=True):
        assert got.dtype == like.dtype
        _assert_close_relative(got, want, TOLERANCE[dtype])


def test_half_precision_parameters_may_stay_float32():
    x, A, B, dy = _inputs((3, 8, 16))
    y, dx, dA, dB = _value_and_grads(layer_norm, x.bfloat16(), A.float(), B.float(), dy)
    assert (y.dtype, dx.dtype, dA.dtype, dB.dtype) == (torch.bfloat16,) * 2 + (torch.float32,) * 2
    _, _, dA64, _ = _value_and_grads(layer_norm_reference, x.bfloat16().double(), A, B, dy)
    _assert_close_relative(dA, dA64, TOLERANCE[torch.bfloat16])


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
@pytest.mark.parametrize(("scope", "shape"), [("layer", (2, 7, 8)), ("position", (2, 7, 8))])
def test_saves_x_and_float32_statistics_only(scope, shape, dtype):
    x, A, B, _ = _inputs(shape, dtype)
    x.requires_grad_()
    saved = []

    def pack(t):
        saved.append(t)
        return t

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        layer_norm(x, A.requires_grad_(), B.requires_grad_(), scope=scope, backend="torch")
    statistics_shape = shape[:-2] if scope == "layer" else shape[:-1]
    assert x.data_ptr() in {t.data_ptr() for t in saved}
    inputs = {x.data_ptr(), A.data_ptr(), B.data_ptr()}
    statistics = [t for t in saved if t.data_ptr() not in inputs]
    assert [t.shape for t in statistics] == [statistics_shape] * 2
    assert all(t.dtype == torch.float32 for t in statistics)


@pytest.mark.parametrize("activation", ["relu", "tanh"])
@pytest.mark.parametrize(("scope", "shape"), [("layer", (2, 5, 7)), ("position", (3, 4, 6))])
def test_eps_zero_is_the_quiz(scope, shape, activation):
    x, A, B, dy = _inputs(shape)
    kw = {"scope": scope, "activation": activation, "eps": 0.0}
    ours = _value_and_grads(layer_norm, x, A, B, dy, backend="torch", **kw)
    reference = _value_and_grads(layer_norm_reference, x, A, B, dy, **kw)
    for got, want in zip(ours, reference, strict=True):
        _assert_close_relative(got, want, TOLERANCE[torch.float64])


def test_eps_zero_output_is_A_h_plus_B_with_the_biased_variance():
    x, A, B, _ = _inputs((4, 6))
    y = layer_norm(x, A, B, scope="layer", activation="identity", eps=0.0)
    h = (x - x.mean()) / x.var(unbiased=False).sqrt()
    torch.testing.assert_close(y, A * h + B, rtol=1e-12, atol=1e-12)


def test_grads_only_for_inputs_that_need_them():
    x, A, B, dy = _inputs((3, 4, 5))
    A.requires_grad_()
    y = layer_norm(x, A, B, backend="torch")
    y.backward(dy)
    assert A.grad is not None
    assert x.grad is None
    assert B.grad is None


def test_non_contiguous_input():
    x, A, B, dy = _inputs((5, 4, 3))
    x_t = x.transpose(0, 1)  # (4, 5, 3), not contiguous
    ours = _value_and_grads(layer_norm, x_t, A, B, dy.transpose(0, 1), backend="torch")
    reference = _value_and_grads(layer_norm_reference, x_t, A, B, dy.transpose(0, 1))
    for got, want in zip(ours, reference, strict=True):
        _assert_close_relative(got, want, TOLERANCE[torch.float64])


def test_auto_backend_on_cpu_never_imports_triton():
    code = (
        "import sys, torch\n"
        "from infonorm.layer_norm import layer_norm\n"
        "x = torch.randn(2, 3, 4, requires_grad=True)\n"
        "layer_norm(x, torch.ones(4), torch.zeros(4)).sum().backward()\n"
        "assert 'triton' not in sys.modules, 'triton was imported'\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr


def _bad(**changes):
    x, A, B, _ = _inputs((2, 3, 4))
    kwargs = {"x": x, "A": A, "B": B, "scope": "layer", "activation": "relu", "eps": 1e-5}
    return {**kwargs, **changes}


def _with_constant(shape, index):
    x, *_ = _inputs(shape)
    x[index] = 0.25
    return x


F64 = {"dtype": torch.float64}
BAD_INPUTS = [
    (_bad(A=torch.ones(5, **F64)), ValueError, r"A must have shape \(4,\)"),
    (_bad(B=torch.ones(1, 4, **F64)), ValueError, r"B must have shape \(4,\)"),
    (_bad(scope="batch"), ValueError, "scope must be one of"),
    (_bad(activation="swish"), ValueError, "activation must be one of"),
    (_bad(x=torch.randn(4, **F64)), ValueError, "at least 2 dims"),
    (_bad(x=torch.tensor(1.0, **F64), scope="position"), ValueError, "at least 1 dim"),
    (_bad(eps=-1e-5), ValueError, "eps must be >= 0"),
    (_bad(eps=float("nan")), ValueError, "eps must be finite"),
    (_bad(eps="small"), TypeError, "eps must be a real number"),
    (_bad(x=torch.ones(2, 3, 4, dtype=torch.int64)), TypeError, "x must be a floating-point"),
    (_bad(A=torch.ones(4, dtype=torch.int32)), TypeError, "A must be a floating-point"),
    (_bad(B=[0.0] * 4), TypeError, "B must be a torch.Tensor"),
    (_bad(x=torch.empty(2, 0, 4, **F64)), ValueError, "no elements to normalize"),
    (_bad(A=torch.ones(4, device="meta", **F64)), ValueError, "A is on meta but x is on cpu"),
    (_bad(x=_with_constant((2, 3, 4), 1), eps=0.0), ValueError, "layer 1 of x .* all values equal"),
    (
        _bad(x=_with_constant((3, 4), 2), scope="position", eps=0),
        ValueError,
        "position 2 of x .* all values equal",
    ),
    (
        _bad(
            x=torch.randn(3, 1, **F64),
            A=torch.ones(1, **F64),
            B=torch.ones(1, **F64),
            scope="position",
            eps=0,
        ),
        ValueError,
        "all values equal",
    ),
]


def _backward_of(x, A, B, **kw):
    return layer_norm_backward(torch.ones_like(x) if torch.is_tensor(x) else x, x, A, B, **kw)


@pytest.mark.parametrize("function", [layer_norm, layer_norm_reference, _backward_of])
@pytest.mark.parametrize(("kwargs", "error", "match"), BAD_INPUTS)
def test_bad_inputs_raise_before_any_work(function, kwargs, error, match):
    kwargs = dict(kwargs)
    x, A, B = kwargs.pop("x"), kwargs.pop("A"), kwargs.pop("B")
    with pytest.raises(error, match=match):
        function(x, A, B, **kwargs)


def test_backend_must_be_known():
    x, A, B, _ = _inputs((2, 3))
    assert BACKENDS == ("auto", "torch", "triton")
    with pytest.raises(ValueError, match="backend must be one of"):
        layer_norm(x, A, B, backend="cuda")


def test_a_group_needs_torch_distributed_initialized():
    x, A, B, _ = _inputs((2, 3))
    with pytest.raises(ValueError, match=r"group: torch\.distributed is not initialized"):
        layer_norm(x, A, B, group=object())


@pytest.mark.parametrize("dy_shape", [(2, 3), (3, 4, 1)])
def test_backward_needs_dy_of_x_shape(dy_shape):
    x, A, B, _ = _inputs((3, 4))
    with pytest.raises(ValueError, match=r"dy must have x's shape \(3, 4\)"):
        layer_norm_backward(
            torch.ones(dy_shape, **F64), x, A, B, scope="layer", activation="relu", eps=1e-5
        )


def test_module_starts_as_plain_normalization_and_resets():
    m = LayerNorm(6, scope="position", activation="identity", eps=0.0)
    assert [name for name, _ in m.named_parameters()] == ["A", "B"]
    assert torch.equal(m.A, torch.ones(6))
    assert torch.equal(m.B, torch.zeros(6))
    x = torch.randn(4, 6)
    torch.testing.assert_close(m(x), torch.nn.functional.layer_norm(x, (6,), eps=0.0))
    with torch.no_grad():
        m.A.mul_(3)
        m.B.add_(1)
    m.reset_parameters()
    assert torch.equal(m.A, torch.ones(6))
    assert torch.equal(m.B, torch.zeros(6))


def test_module_forward_is_the_function_and_trains():
    torch.manual_seed(1)
    m = LayerNorm(5, activation="gelu").double()
    with torch.no_grad():
        m.A.normal_()
        m.B.normal_()
    x, *_ = _inputs((2, 3, 5))
    expected = layer_norm(x, m.A, m.B, activation="gelu")
    torch.testing.assert_close(m(x), expected)
    m(x).square().sum().backward()
    assert m.A.grad is not None
    assert m.B.grad is not None


def test_module_repr_and_bad_arguments():
    assert repr(LayerNorm(8)) == "LayerNorm(8, scope='layer', activation='relu', eps=1e-05)"
    with pytest.raises(ValueError, match="num_features must be >= 1"):
        LayerNorm(0)
    with pytest.raises(TypeError, match="num_features must be an int"):
        LayerNorm(4.0)
    with pytest.raises(ValueError, match="scope must be one of"):
        LayerNorm(4, scope="channel")
    with pytest.raises(ValueError, match="eps must be >= 0"):
        LayerNorm(4, eps=-1.0)


@pytest.mark.parametrize("activation", ["relu", "gelu"])
@pytest.mark.parametrize("scope", SCOPES)
def test_output_can_be_modified_in_place(scope, activation):
    x, A, B, dy = _inputs((2, 3, 4))
    x.requires_grad_()
    y = layer_norm(x, A, B, scope=scope, activation=activation, backend="torch")
    y.mul_(2).backward(dy)
    expected = layer_norm_reference(x, A, B, scope=scope, activation=activation)
    (dx,) = torch.autograd.grad(expected, x, 2 * dy)
    _assert_close_relative(x.grad, dx, TOLERANCE[torch.float64])
