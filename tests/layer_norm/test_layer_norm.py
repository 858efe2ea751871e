import dataclasses
import subprocess
import sys

import pytest
import torch

from infonorm.activations import ACTIVATIONS
from infonorm.layer_norm import (
    BACKENDS,
    SCOPES,
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
# the CPU backends of each scope ("triton" is tested in test_kernels.py and below)
CPU_BACKENDS = {"layer": ("torch",), "position": ("torch", "aten")}
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


def _op(x, A, B, *, scope, activation, eps, backend):
    """The registered operator itself (what torch.compile and torch.export call)."""
    return torch.ops.infonorm.layer_norm(x, A, B, scope, activation, eps, backend)[0]


@pytest.mark.parametrize("call", [layer_norm, _op], ids=["layer_norm", "operator"])
@pytest.mark.parametrize("activation", ACTS)
@pytest.mark.parametrize(("scope", "shape"), CASES)
def test_output_and_gradients_match_float64_reference(scope, shape, activation, call):
    x, A, B, dy = _inputs(shape)
    kw = {"scope": scope, "activation": activation, "eps": 1e-5}
    for backend in CPU_BACKENDS[scope]:
        ours = _value_and_grads(call, x, A, B, dy, backend=backend, **kw)
        reference = _value_and_grads(layer_norm_reference, x, A, B, dy, **kw)
        for name, got, want in zip(("y", "dx", "dA", "dB"), ours, reference, strict=True):
            assert got.shape == want.shape, name
            _assert_close_relative(got, want, TOLERANCE[torch.float64])


@pytest.mark.parametrize("activation", ACTS)
@pytest.mark.parametrize("scope", SCOPES)
def test_gradcheck(scope, activation):
    x, A, B, _ = _inputs((2, 3, 5))
    inputs = tuple(t.requires_grad_() for t in (x, A, B))
    for backend in CPU_BACKENDS[scope]:

        def f(x, A, B, backend=backend):
            return layer_norm(x, A, B, scope=scope, activation=activation, backend=backend)

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


def test_auto_backend_on_cpu_never_imports_the_kernels():
    # (torch itself may import triton when the operator first runs: torch._dynamo does)
    code = (
        "import sys, torch\n"
        "from infonorm.layer_norm import layer_norm\n"
        "x = torch.randn(2, 3, 4, requires_grad=True)\n"
        "for scope in ('layer', 'position'):\n"
        "    layer_norm(x, torch.ones(4), torch.zeros(4), scope=scope).sum().backward()\n"
        "assert 'infonorm.kernels.layer_norm' not in sys.modules, 'the kernels were imported'\n"
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
    assert BACKENDS == ("auto", "torch", "aten", "triton")
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


# ---------------------------------------------------------------------------- the ATen backend


@pytest.mark.parametrize("shape", [(2, 5, 16), (7, 1), (3, 4, 33)])
def test_aten_backend_is_nn_layer_norm_then_the_activation_module(shape):
    # float32, per position: the very arithmetic of nn.LayerNorm's forward + nn.GELU
    x, A, B, dy = (t.float() for t in _inputs(shape))
    ours = _value_and_grads(layer_norm, x, A, B, dy, scope="position", activation="gelu")

    def peer(x, A, B):
        return torch.nn.GELU()(torch.nn.functional.layer_norm(x, x.shape[-1:], A, B, 1e-5))

    for got, want in zip(ours, _value_and_grads(peer, x, A, B, dy), strict=True):
        assert torch.equal(got, want)


@pytest.mark.parametrize(("scale", "eps"), [(1e21, 1e-5), (1e30, 0.0), (1e-21, 0.0)])
@pytest.mark.parametrize("backend", ["auto", "aten"])
def test_aten_backend_hands_what_its_float32_arithmetic_cannot_do_to_torch(backend, scale, eps):
    x, A, B, dy = _inputs((3, 4, 8))
    kw = {"scope": "position", "activation": "tanh", "eps": eps}
    y, dx, dA, dB = _value_and_grads(
        layer_norm, (x * scale).float(), A.float(), B.float(), dy, backend=backend, **kw
    )
    ry, rdx, rdA, rdB = _value_and_grads(layer_norm_reference, x * scale, A, B, dy, **kw)
    _assert_close_relative(y, ry, 1e-5)
    # dx scales as 1/σ: compare σ·dx
    sigma = (x * scale).std(-1, correction=0, keepdim=True)
    _assert_close_relative(dx * sigma, rdx * sigma, 1e-4)
    _assert_close_relative(dA, rdA, 1e-4)
    _assert_close_relative(dB, rdB, 1e-4)


@pytest.mark.parametrize(("scale", "eps"), [(1e21, 1e-5), (1e-21, 0.0)])
def test_atens_own_float32_arithmetic_is_wrong_at_those_scales(scale, eps):
    # what the hand-over above spares: nn.LayerNorm's own results there
    x, _, _, dy = _inputs((3, 4, 8))
    leaf = (x * scale).float().requires_grad_()
    y = torch.nn.functional.layer_norm(leaf, (8,), eps=eps)
    y.backward(dy.float())
    right = torch.nn.functional.layer_norm(x * scale, (8,), eps=eps)
    wrong = (y.double() - right).abs().max() > 1e-4 or not torch.isfinite(leaf.grad).all()
    assert wrong


def test_auto_backend_asks_the_activation_table(monkeypatch):
    from torch._subclasses.fake_tensor import FakeTensorMode

    from infonorm.activations import ACTIVATIONS
    from infonorm.layer_norm import _resolve

    with FakeTensorMode():
        x = torch.empty(2, 3, 8, device="cuda")
    monkeypatch.setattr(sys.modules["infonorm.layer_norm"], "_triton_imports", lambda: True)
    assert _resolve("auto", x, "position", "gelu") == "triton"
    assert _resolve("auto", x.double(), "position", "gelu") == "aten"
    assert _resolve("auto", torch.empty(2, 3, 8), "position", "gelu") == "aten"
    assert _resolve("auto", torch.empty(2, 3, 8), "layer", "gelu") == "torch"
    # an activation without a Triton kernel stays on torch's side on CUDA
    without = dataclasses.replace(ACTIVATIONS["gelu"], backends=frozenset({"torch", "aten"}))
    monkeypatch.setitem(ACTIVATIONS, "gelu", without)
    assert _resolve("auto", x, "position", "gelu") == "aten"
    assert _resolve("auto", x, "layer", "gelu") == "torch"
    with pytest.raises(ValueError, match="backend='triton' has no fused form of activation='gelu'"):
        layer_norm(
            torch.randn(2, 3), torch.ones(3), torch.zeros(3), activation="gelu", backend="triton"
        )


@pytest.mark.parametrize("eps", [5e-324, 1e-46])
def test_an_eps_that_is_zero_in_float32_is_refused(eps):
    x = torch.zeros(2, 3, 4)  # a constant layer: with eps rounded to 0, σ = 0 and all NaN
    with pytest.raises(ValueError, match=r"is 0 in torch\.float32"):
        layer_norm(x, torch.ones(4), torch.zeros(4), eps=eps)
    # the same eps is representable in float64 and serves there
    y = layer_norm(x.double(), torch.ones(4).double(), torch.zeros(4).double(), eps=5e-324)
    assert torch.equal(y, torch.zeros_like(y))
    # the smallest float32 subnormal still counts
    assert torch.isfinite(layer_norm(x, torch.ones(4), torch.zeros(4), eps=1.5e-45)).all()


@pytest.mark.parametrize(
    ("scope", "backend"), [(scope, b) for scope in SCOPES for b in CPU_BACKENDS[scope]]
)
def test_eps_zero_refuses_a_constant_layer_on_every_cpu_path(scope, backend):
    x, A, B, _ = _inputs((2, 3, 4))
    x[1] = 0.5  # layer 1, positions 3 to 5
    first = {"layer": "layer 1", "position": "position 3"}[scope]
    for call in (layer_norm, _op):
        with pytest.raises(ValueError, match=f"eps=0 but {first} of x .*all values equal"):
            call(x, A, B, scope=scope, activation="relu", eps=0.0, backend=backend)
