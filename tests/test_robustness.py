"""Bad input, mixed dtypes and devices, layouts, zero sizes and requires_grad combinations
across the library (the command line: test_cli_robustness.py). The bad inputs and what each
gets are the rows of robustness_cases.py, which also renders docs/robustness.md."""

import importlib
import math
import re
import warnings
from pathlib import Path

import numpy as np
import pytest
import torch

from infonorm import LayerNorm, entropies, geometric, layer_norm, matched_accuracy
from infonorm.layer_norm import layer_norm_backward, layer_norm_reference
from infonorm.mutual_information import mutual_information, mutual_information_reference
from robustness_cases import (
    API_CASES,
    LAYER_NORM_DTYPES,
    MUTUAL_INFORMATION_DTYPES,
    render,
)

# the module (the package's `layer_norm` is the function)
layer_norm_module = importlib.import_module("infonorm.layer_norm")
mi_module = importlib.import_module("infonorm.mutual_information")
DOCS = Path(__file__).resolve().parents[1] / "docs" / "robustness.md"
# output and gradients against the float64 reference on the same (rounded) inputs
requires_cuda = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
TOLERANCE = {torch.float64: 1e-10, torch.float32: 1e-5, torch.float16: 1e-2, torch.bfloat16: 5e-2}


def _coarsest(*dtypes):
    return max(TOLERANCE[d] for d in dtypes)


# ---------------------------------------------------------------------------- bad input


@pytest.mark.parametrize("case", API_CASES, ids=[c.id for c in API_CASES])
def test_bad_input_gets_the_documented_error(case):
    with pytest.raises(case.error) as info:
        case.call()
    assert type(info.value) is case.error
    assert str(info.value).startswith(case.prefix), str(info.value)


LAYER_NORM_CASES = [c for c in API_CASES if c.function in ("layer_norm", "layer_norm_backward")]


@pytest.mark.parametrize("case", LAYER_NORM_CASES, ids=[c.id for c in LAYER_NORM_CASES])
def test_layer_norm_refuses_before_any_work(case, monkeypatch):
    def no_work(*args, **kwargs):
        raise AssertionError("the computation started before the arguments were checked")

    monkeypatch.setattr(layer_norm_module, "_statistics", no_work)
    monkeypatch.setattr(layer_norm_module._LayerNormFunction, "apply", no_work)
    with pytest.raises(case.error, match="^" + re.escape(case.prefix)):
        case.call()


def test_docs_page_is_rendered_from_the_cases():
    assert DOCS.read_text(encoding="utf-8") == render(), (
        "docs/robustness.md is stale: run .venv/bin/python tests/robustness_cases.py "
        "> docs/robustness.md"
    )


# ---------------------------------------------------------------------------- geometric


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


# ---------------------------------------------------------------------------- layer norm


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
    tolerance = _coarsest(row.x, row.params)
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
    assert module.num_features == 4
    assert type(module.num_features) is int
    assert module.A.dtype == torch.bfloat16
    assert module(torch.randn(2, 3, 4)).dtype == torch.float32


# ---------------------------------------------------------------------------- mutual information


def _target(kind: str, B: int, g: torch.Generator) -> torch.Tensor:
    dtype_name, what = kind.split()
    dtype = getattr(torch, dtype_name)
    if what == "indices":
        return torch.randint(0, 3, (B,), generator=g).to(dtype)
    return torch.softmax(torch.randn(B, 3, generator=g, dtype=torch.float64) * 2, 1).to(dtype)


@pytest.mark.parametrize(
    "row", MUTUAL_INFORMATION_DTYPES, ids=lambda r: f"{r.input}-{r.target.replace(' ', '-')}"
)
def test_mutual_information_dtype_mixes(row):
    g = torch.Generator().manual_seed(3)
    z = (torch.randn(17, 5, generator=g) * 2).to(row.input).requires_grad_()
    target = _target(row.target, 17, g)
    value = mutual_information(z, target)
    value.backward()
    assert (value.dtype, z.grad.dtype) == (row.value, row.grad)
    # the reference sees the same numbers: the target as mutual_information reads it
    compute = torch.float32 if row.input in (torch.bfloat16, torch.float16) else row.input
    if target.dim() == 1:
        ref_target = target.long()
    else:  # rows rounded to bfloat16 sum to 1 within its precision only: renormalized
        ref_target = target.to(compute).double()
        ref_target = ref_target / ref_target.sum(1, keepdim=True)
    ref_z = z.detach().double().requires_grad_()
    ref = mutual_information_reference(ref_z, ref_target)
    ref.backward()
    tolerance = _coarsest(row.input, *([target.dtype] if target.is_floating_point() else []))
    torch.testing.assert_close(value.double(), ref, rtol=tolerance, atol=tolerance)
    scale = ref_z.grad.abs().max().item()
    torch.testing.assert_close(z.grad.double(), ref_z.grad, rtol=tolerance, atol=tolerance * scale)


@pytest.mark.parametrize("kind", ["indices", "rows"])
def test_mutual_information_gradient_flows_into_input_only(kind):
    g = torch.Generator().manual_seed(4)
    z = torch.randn(9, 4, generator=g)
    target = _target("float32 rows" if kind == "rows" else "int64 indices", 9, g)
    if kind == "rows":
        target.requires_grad_()
        # a target that needs grad but an input that does not: nothing to differentiate
        assert not mutual_information(z, target).requires_grad
    z.requires_grad_()
    mutual_information(z, target).backward()
    assert z.grad is not None
    assert torch.isfinite(z.grad).all()
    if kind == "rows":
        assert target.grad is None


@pytest.mark.parametrize("context", [torch.no_grad, torch.inference_mode])
def test_mutual_information_without_autograd(context):
    z = torch.randn(8, 3, requires_grad=True)
    y = torch.tensor([0, 1, 2, 0, 1, 2, 0, 1])
    expected = mutual_information(z, y).detach()
    with context():
        value = mutual_information(z, y)
    assert not value.requires_grad
    torch.testing.assert_close(value, expected)


@pytest.mark.parametrize("probs", [False, True])
def test_mutual_information_layouts_give_the_contiguous_result(probs):
    g = torch.Generator().manual_seed(5)
    logits = torch.randn(5, 11, generator=g).T  # (11, 5), not contiguous
    x = torch.softmax(logits, 1) if probs else logits
    x_t = x.T.contiguous().T  # the same values, transposed storage
    labels = torch.randint(0, 5, (11, 2), generator=g)[:, 1]  # stride 2
    results = []
    for inp, tgt in ((x_t, labels), (x.contiguous(), labels.contiguous())):
        inp = inp.detach().requires_grad_()
        value = mutual_information(inp, tgt, probs=probs)
        value.backward()
        results.append((value, inp.grad))
    (v1, g1), (v2, g2) = results
    torch.testing.assert_close(v1, v2)
    torch.testing.assert_close(g1, g2)


def test_mutual_information_of_expanded_identical_rows_is_zero():
    z = torch.randn(1, 4).expand(6, 4)
    value = mutual_information(z, torch.tensor([0, 1, 2, 3, 0, 1]))
    assert abs(value.item()) < 1e-6


@pytest.mark.parametrize("dtype", [torch.uint8, torch.int8, torch.int16, torch.int32])
@pytest.mark.parametrize("labels", ["repeated", "distinct"])
def test_mutual_information_takes_labels_of_any_integer_dtype(dtype, labels):
    g = torch.Generator().manual_seed(6)
    # distinct labels: every example alone with its label, the path without rows of S
    y = torch.randperm(8, generator=g) if labels == "distinct" else torch.tensor([0, 1, 2, 3] * 2)
    z = torch.randn(8, 8, generator=g)
    want_value, want_grad = _value_and_grad(z, y)
    got_value, got_grad = _value_and_grad(z, y.to(dtype))
    assert torch.equal(got_value, want_value)
    assert torch.equal(got_grad, want_grad)
    assert entropies(z, y.to(dtype)) == entropies(z, y)
    torch.testing.assert_close(
        mutual_information_reference(z, y.to(dtype)), mutual_information_reference(z, y)
    )


def _value_and_grad(z, target):
    z = z.detach().clone().requires_grad_()
    value = mutual_information(z, target)
    value.backward()
    return value.detach(), z.grad


def test_matched_accuracy_takes_negative_and_huge_labels_and_grad_tensors():
    assert matched_accuracy([-1, 5, 5], [0, 1, 1]) == (1.0, {-1: 0, 5: 1})
    assert matched_accuracy([10**18, 5], [0, 1])[0] == 1.0
    scores = torch.tensor([[0.1, 0.9], [0.8, 0.2]], requires_grad=True)
    assert matched_accuracy(scores, torch.tensor([1, 0])) == (1.0, {0: 0, 1: 1})


@pytest.mark.parametrize("bad", [-math.inf, 3e38], ids=["-inf", "3e38"])
@pytest.mark.parametrize("labels", ["distinct", "repeated", "rows"])
def test_masked_or_extreme_logits_give_finite_values_and_gradients(bad, labels):
    g = torch.Generator().manual_seed(7)
    z = torch.randn(4, 6, generator=g)
    z[:, 5] = -math.inf if bad == -math.inf else -3e38  # a masked class
    z[0, 2] = bad
    target = {
        "distinct": torch.tensor([0, 1, 2, 3]),  # each example alone with its label
        "repeated": torch.tensor([0, 1, 1, 0]),
        "rows": torch.softmax(torch.randn(4, 3, generator=g), 1),
    }[labels]
    value, grad = _value_and_grad(z, target)
    assert torch.isfinite(value)
    assert torch.isfinite(grad).all()
    # the reference on logits clamped to ±1e4 (softmax puts exactly 0 or 1 there as well)
    ref_z = z.double().clamp(-1e4, 1e4).requires_grad_()
    ref = mutual_information_reference(ref_z, target.double() if labels == "rows" else target)
    ref.backward()
    torch.testing.assert_close(value.double(), ref, rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(grad.double(), ref_z.grad, rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float16])
def test_matched_accuracy_takes_half_precision_scores(dtype):
    g = torch.Generator().manual_seed(8)
    scores = torch.randn(20, 4, generator=g).to(dtype)
    y = torch.randint(0, 4, (20,), generator=g)
    # every half-precision value is exact in float32: the same argmax, the same matching
    assert matched_accuracy(scores, y) == matched_accuracy(scores.float(), y)


MI_CASES = [
    c
    for c in API_CASES
    if c.function in ("mutual_information", "MMILoss", "entropies", "matched_accuracy")
    and not c.from_forward
]


@pytest.mark.parametrize("case", MI_CASES, ids=[c.id for c in MI_CASES])
def test_mutual_information_refuses_before_any_work(case, monkeypatch):
    def no_work(*args, **kwargs):
        raise AssertionError("the computation started before the arguments were checked")

    for name in ("_targets", "_sums", "linear_sum_assignment"):
        monkeypatch.setattr(mi_module, name, no_work)
    monkeypatch.setattr(mi_module._MutualInformation, "apply", no_work)
    with pytest.raises(case.error, match="^" + re.escape(case.prefix)):
        case.call()


# ---------------------------------------------------------------------------- CUDA


@requires_cuda
@pytest.mark.gpu
@pytest.mark.parametrize("name", ["A", "B"])
def test_layer_norm_parameters_on_the_cpu_for_x_on_cuda(name):
    x, A, B = torch.randn(2, 3, 4, device="cuda"), torch.ones(4), torch.zeros(4)
    params = {"A": A.cuda(), "B": B.cuda(), name: {"A": A, "B": B}[name]}
    with pytest.raises(ValueError, match=f"^{name} is on cpu but x is on cuda:0: put both on one"):
        layer_norm(x, params["A"], params["B"])


@requires_cuda
@pytest.mark.gpu
def test_mutual_information_labels_on_the_cpu_for_logits_on_cuda():
    z, y = torch.randn(6, 4, device="cuda"), torch.tensor([0, 1, 2, 3, 0, 1])
    with pytest.raises(ValueError, match=r"^target is on cpu but input is on cuda:0"):
        mutual_information(z, y)
    with pytest.raises(ValueError, match=r"^target is on cuda:0 but input is on cpu"):
        mutual_information(z.cpu(), y.cuda())


@requires_cuda
@pytest.mark.gpu
def test_geometric_parameters_on_two_devices():
    with pytest.raises(ValueError, match=r"^mu is on cuda:0 but lam is on cpu: put both on one"):
        geometric.cross_entropy(torch.ones(3, device="cuda"), torch.full((3,), 0.5))


@requires_cuda
@pytest.mark.gpu
@pytest.mark.parametrize("labels", ["distinct", "repeated"])
def test_masked_logits_on_cuda_match_the_cpu(labels):
    g = torch.Generator().manual_seed(9)
    z = torch.randn(64, 80, generator=g)
    z[torch.rand(64, 80, generator=g) < 0.5] = -math.inf
    z[:, 0] = 0.0  # every row keeps a class
    y = torch.randperm(80, generator=g)[:64] if labels == "distinct" else torch.arange(64) % 5
    value, grad = _value_and_grad(z, y)
    value_cuda, grad_cuda = _value_and_grad(z.cuda(), y.cuda())
    assert torch.isfinite(grad_cuda).all()
    torch.testing.assert_close(value_cuda.cpu(), value, rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(grad_cuda.cpu(), grad, rtol=1e-4, atol=1e-6)
