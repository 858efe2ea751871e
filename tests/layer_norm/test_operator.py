"""layer_norm as a PyTorch operator: torch.library registration, torch.compile and
torch.export capture, opcheck, recompilation, second derivatives and torch.func."""

import pytest
import torch
import torch.func as tf
import torch.nn.functional as F
from torch._dynamo.backends.common import aot_autograd
from torch._dynamo.testing import CompileCounter
from torch.autograd import forward_ad

from infonorm import LayerNorm, layer_norm
from infonorm.activations import ACTIVATIONS
from infonorm.layer_norm import SCOPES, layer_norm_reference

F64 = torch.float64
ACTS = sorted(ACTIVATIONS)
OP = torch.ops.infonorm.layer_norm.default
BACKWARD_OP = torch.ops.infonorm.layer_norm_backward.default
# what a re-derived layer norm would show in a graph instead of our operator
DECOMPOSED = ("aten.native_layer_norm", "aten.mean", "aten.var", "aten.rsqrt", "aten.sum")


def _inputs(shape, dtype=F64, seed=0):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(shape, generator=g, dtype=dtype) * 1.5 + 0.3
    A = torch.randn(shape[-1], generator=g, dtype=dtype)
    B = torch.randn(shape[-1], generator=g, dtype=dtype)
    return x, A, B


def _leaves(*tensors):
    return [t.detach().clone().requires_grad_() for t in tensors]


# ---------------------------------------------------------------------------- compile and export


class _Graphs:
    """An aot_autograd backend that keeps the forward and backward graphs it is given."""

    def __init__(self):
        self.forward, self.backward = [], []
        self.backend = aot_autograd(
            fw_compiler=self._keep(self.forward), bw_compiler=self._keep(self.backward)
        )

    @staticmethod
    def _keep(graphs):
        def compiler(gm, example_inputs):
            graphs.append(gm.graph)
            return gm.forward

        return compiler


def _targets(graph) -> list[str]:
    return [str(node.target) for node in graph.nodes if node.op == "call_function"]


@pytest.mark.parametrize(("scope", "activation"), [("layer", "relu"), ("position", "gelu")])
def test_compile_fullgraph_captures_one_operator_forward_and_backward(scope, activation):
    graphs = _Graphs()

    def f(x, A, B):
        return layer_norm(x, A, B, scope=scope, activation=activation)

    compiled = torch.compile(f, fullgraph=True, backend=graphs.backend)
    x, A, B = _inputs((2, 5, 8), torch.float32)
    ours, expected = _leaves(x, A, B), _leaves(x, A, B)
    y = compiled(*ours)
    y.square().sum().backward()
    f(*expected).square().sum().backward()
    torch.testing.assert_close(y, f(*expected))
    for got, want in zip(ours, expected, strict=True):
        torch.testing.assert_close(got.grad, want.grad)
    (forward,), (backward,) = graphs.forward, graphs.backward
    assert str(OP) in _targets(forward)
    assert str(BACKWARD_OP) in _targets(backward)
    for target in _targets(forward) + _targets(backward):
        assert not target.startswith(DECOMPOSED), target


def test_export_captures_one_operator_with_dynamic_batch_and_length():
    model = torch.nn.Sequential(
        torch.nn.Linear(8, 8), LayerNorm(8, scope="layer", activation="relu")
    )
    batch, length = torch.export.Dim("batch"), torch.export.Dim("length")
    x = torch.randn(2, 5, 8)
    exported = torch.export.export(model, (x,), dynamic_shapes={"input": {0: batch, 1: length}})
    targets = _targets(exported.graph)
    assert str(OP) in targets
    assert not any(t.startswith(DECOMPOSED) for t in targets)
    other = torch.randn(3, 7, 8)
    torch.testing.assert_close(exported.module()(other), model(other))


def test_changing_batch_or_length_recompiles_no_more_than_torchs_own_layer_norm():
    A, B = torch.randn(8), torch.randn(8)

    def ours(x):
        return layer_norm(x, A, B, scope="position", activation="gelu")

    def torchs(x):
        return F.gelu(F.layer_norm(x, (8,), A, B))

    frames = {}
    for name, f in (("ours", ours), ("torch", torchs)):
        torch._dynamo.reset()
        counter = CompileCounter()
        compiled = torch.compile(f, backend=counter, fullgraph=True)
        for T in (5, 7, 9, 11):
            for batch in (2, 3):
                compiled(torch.randn(batch, T, 8))
        frames[name] = counter.frame_count
    torch._dynamo.reset()
    assert frames["ours"] <= frames["torch"], frames


def test_jit_trace_records_the_operator():
    x, A, B = _inputs((2, 5, 8), torch.float32)
    traced = torch.jit.trace(lambda x: layer_norm(x, A, B, scope="position", activation="tanh"), x)
    assert "infonorm::layer_norm" in str(traced.graph)
    other = torch.randn(3, 4, 8)
    torch.testing.assert_close(
        traced(other), layer_norm(other, A, B, scope="position", activation="tanh")
    )


@pytest.mark.parametrize("scope", SCOPES)
def test_fx_symbolic_trace_records_the_module_as_the_operator(scope):
    model = torch.nn.Sequential(
        torch.nn.Linear(8, 8), LayerNorm(8, scope=scope, activation="gelu"), torch.nn.Linear(8, 3)
    )
    graph_module = torch.fx.symbolic_trace(model)
    assert OP.overloadpacket in [node.target for node in graph_module.graph.nodes]
    x = torch.randn(2, 5, 8)
    got, want = graph_module(x), model(x)
    torch.testing.assert_close(got, want)
    (got_grad,) = torch.autograd.grad(got.square().sum(), model[1].weight)
    (want_grad,) = torch.autograd.grad(want.square().sum(), model[1].weight)
    torch.testing.assert_close(got_grad, want_grad)


# ---------------------------------------------------------------------------- opcheck


@pytest.mark.parametrize(("scope", "backend"), [("layer", "torch"), ("position", "aten")])
def test_opcheck_forward(scope, backend):
    x, A, B = _leaves(*_inputs((2, 3, 5)))
    torch.library.opcheck(OP, (x, A, B, scope, "gelu", 1e-5, backend))


def test_opcheck_backward():
    x, A, B = _inputs((2, 3, 5))
    dy = torch.randn_like(x)
    _, mean, rstd = OP(x, A, B, "position", "tanh", 1e-5, "torch")
    torch.library.opcheck(BACKWARD_OP, (dy, x, A, B, mean, rstd, "position", "tanh", "torch"))


# ---------------------------------------------------------------------------- second derivatives


CPU_PATHS = [("layer", "torch"), ("position", "torch"), ("position", "aten")]
# every activation through the operator; ATen's path is torch's own autograd
GRADGRAD = [
    (scope, backend, activation)
    for scope, backend in CPU_PATHS
    for activation in (ACTS if backend == "torch" else ["gelu", "relu"])
]


@pytest.mark.parametrize(("scope", "backend", "activation"), GRADGRAD)
def test_gradgradcheck(scope, backend, activation):
    inputs = _leaves(*_inputs((2, 2, 3)))

    def f(x, A, B):
        return layer_norm(x, A, B, scope=scope, activation=activation, backend=backend)

    assert torch.autograd.gradgradcheck(f, inputs)


def _hessians(scope, backend, activation, x, A, B):
    def ours(x):
        return layer_norm(x, A, B, scope=scope, activation=activation, backend=backend).sum()

    def reference(x):
        return layer_norm_reference(x, A, B, scope=scope, activation=activation).sum()

    return (
        torch.autograd.functional.hessian(ours, x),
        torch.autograd.functional.hessian(reference, x.double()),
    )


@pytest.mark.parametrize("activation", ["tanh", "gelu", "identity"])
@pytest.mark.parametrize(("scope", "backend"), CPU_PATHS)
def test_hessian_equals_the_float64_composites(scope, backend, activation):
    got, want = _hessians(scope, backend, activation, *_inputs((2, 3, 4)))
    assert want.abs().max() > 0.1  # never a silent zero
    torch.testing.assert_close(got, want, rtol=1e-10, atol=1e-10)


def test_hessian_through_the_triton_kernels_falls_back_to_the_composite():
    x, A, B = _inputs((2, 3, 4), torch.float32)
    got, want = _hessians("layer", "triton", "tanh", x, A, B)
    torch.testing.assert_close(got.double(), want, rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize(("scope", "backend"), CPU_PATHS)
def test_gradient_penalty_gives_the_references_parameter_gradients(scope, backend):
    x, A, B = _inputs((2, 3, 5))

    def penalty(f, x, A, B):
        x, A, B = _leaves(x, A, B)
        (g,) = torch.autograd.grad(f(x, A, B).sum(), x, create_graph=True)
        g.square().sum().backward()
        return A.grad, B.grad, x.grad

    kw = {"scope": scope, "activation": "silu"}
    ours = penalty(lambda x, A, B: layer_norm(x, A, B, backend=backend, **kw), x, A, B)
    reference = penalty(lambda x, A, B: layer_norm_reference(x, A, B, **kw), x, A, B)
    for got, want in zip(ours, reference, strict=True):
        assert got is not None
        torch.testing.assert_close(got, want, rtol=1e-10, atol=1e-10)


# ---------------------------------------------------------------------------- torch.func


def _transforms(x):
    """Each transform applied to a function of x, as a function of that function."""
    row = x[0]
    return {
        "vmap": lambda f: tf.vmap(f)(x),
        "grad": lambda f: tf.grad(lambda z: f(z).square().sum())(x),
        "jacrev": lambda f: tf.jacrev(f)(row),
        "jacfwd": lambda f: tf.jacfwd(f)(row),
        "hessian": lambda f: tf.hessian(lambda z: f(z).sum())(row),
        # (not along ones: layer norm ignores a shift of x, and that derivative is 0)
        "jvp": lambda f: tf.jvp(
            f, (x,), (torch.linspace(-1, 2, x.numel(), dtype=x.dtype).view_as(x),)
        )[1],
    }


@pytest.mark.parametrize("transform", ["vmap", "grad", "jacrev", "jacfwd", "hessian", "jvp"])
@pytest.mark.parametrize("scope", SCOPES)
def test_torch_func_transforms_match_the_reference(scope, transform):
    x, A, B = _inputs((2, 3, 4))
    run = _transforms(x)[transform]
    kw = {"scope": scope, "activation": "tanh"}
    got = run(lambda z: layer_norm(z, A, B, **kw))
    want = run(lambda z: layer_norm_reference(z, A, B, **kw))
    assert want.abs().max() > 0.1
    torch.testing.assert_close(got, want, rtol=1e-10, atol=1e-10)


@pytest.mark.parametrize("scope", SCOPES)
def test_forward_mode_ad_gives_the_directional_derivative(scope):
    x, A, B = _inputs((2, 3, 4))
    direction = torch.randn_like(x)
    kw = {"scope": scope, "activation": "gelu"}
    with forward_ad.dual_level():
        tangent = forward_ad.unpack_dual(
            layer_norm(forward_ad.make_dual(x, direction), A, B, **kw)
        ).tangent
    _, expected = torch.autograd.functional.jvp(
        lambda z: layer_norm_reference(z, A, B, **kw), x, direction
    )
    torch.testing.assert_close(tangent, expected, rtol=1e-10, atol=1e-10)


# ---------------------------------------------------------------------------- the Triton path


@pytest.mark.parametrize("scope", SCOPES)
def test_the_operator_runs_the_triton_kernels_forward_and_backward(scope):
    # on CPU under Triton's interpreter (tests/conftest.py), on CUDA where there is a GPU
    device = "cuda" if torch.cuda.is_available() else "cpu"
    x, A, B = (t.to(device) for t in _inputs((2, 5, 12), torch.float32))
    dy = torch.randn_like(x)
    kw = {"scope": scope, "activation": "silu"}
    got = _leaves(x, A, B)
    y = layer_norm(*got, backend="triton", **kw)
    y.backward(dy)
    want = _leaves(x.double(), A.double(), B.double())
    expected = layer_norm_reference(*want, **kw)
    expected.backward(dy.double())
    torch.testing.assert_close(y.double(), expected, rtol=1e-5, atol=1e-5)
    for g, w in zip(got, want, strict=True):
        torch.testing.assert_close(g.grad.double(), w.grad, rtol=1e-4, atol=1e-4)


def test_a_direct_call_of_the_operator_refuses_aten_for_whole_layers():
    x, A, B = _inputs((2, 3, 4))
    with pytest.raises(ValueError, match="backend='aten' computes per-position statistics only"):
        OP(x, A, B, "layer", "relu", 1e-5, "aten")


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
@pytest.mark.parametrize("scope", SCOPES)
def test_opcheck_on_cuda_tensors(scope):
    x, A, B = (t.cuda().requires_grad_() for t in _inputs((4, 16, 64), torch.float32))
    torch.library.opcheck(OP, (x, A, B, scope, "gelu", 1e-5, "auto"))


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
@pytest.mark.parametrize("scope", SCOPES)
def test_a_training_step_on_cuda_never_synchronizes_and_graphs_capture_it(scope):
    # the Triton kernels' launches, forward and backward, recorded once and replayed on new x
    norm = LayerNorm(64, scope=scope, activation="gelu", device="cuda")
    x = torch.randn(4, 16, 64, device="cuda", requires_grad=True)
    norm(x).square().sum().backward()  # warm up: kernels compiled, caches filled
    torch.cuda.synchronize()
    torch.cuda.set_sync_debug_mode("error")
    try:
        norm(x).square().sum().backward()
    finally:
        torch.cuda.set_sync_debug_mode("default")
    stream = torch.cuda.Stream()
    stream.wait_stream(torch.cuda.current_stream())
    with torch.cuda.stream(stream):
        for _ in range(2):
            x.grad = None
            norm.zero_grad(set_to_none=False)
            norm(x).square().sum().backward()
    torch.cuda.current_stream().wait_stream(stream)
    x.grad = torch.zeros_like(x)
    norm.zero_grad(set_to_none=False)
    graph = torch.cuda.CUDAGraph()
    with torch.cuda.graph(graph):
        y = norm(x)
        y.square().sum().backward()
    with torch.no_grad():
        x.copy_(torch.randn_like(x) * 2 + 1)
        x.grad.zero_()
        norm.weight.grad.zero_()
    graph.replay()
    leaf = x.detach().clone().requires_grad_()
    expected = layer_norm_reference(
        leaf.double(), norm.weight.double(), norm.bias.double(), scope=scope, activation="gelu"
    )
    expected.square().sum().backward()
    torch.testing.assert_close(y.double(), expected, rtol=1e-4, atol=1e-4)
    torch.testing.assert_close(x.grad.double(), leaf.grad, rtol=1e-3, atol=1e-3)
