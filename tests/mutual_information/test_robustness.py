"""Bad input to mutual information and its metrics (the rows of cases.py), mixed dtypes,
layouts, masked logits, integer labels, devices."""

import importlib
import math
import re

import pytest
import torch

from infonorm import entropies, matched_accuracy
from infonorm.mutual_information import mutual_information, mutual_information_reference
from tests.cases import assert_documented_error, coarsest, requires_cuda
from tests.mutual_information.cases import CASES, MUTUAL_INFORMATION_DTYPES
from tests.mutual_information.operator_log import OperatorLog

metrics_module = importlib.import_module("infonorm.metrics")


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_bad_input_gets_the_documented_error(case):
    assert_documented_error(case)


def _target(kind: str, B: int, g: torch.Generator) -> tuple[torch.Tensor, int]:
    """(target, C) that a row of the table names: "int8 indices", "float32 rows",
    "uint8 indices up to 255, C = 256" (the largest label of the dtype included), …"""
    head, _, classes = kind.partition(", C = ")
    dtype_name, what = head.split()[:2]
    dtype = getattr(torch, dtype_name)
    C = int(classes) if classes else 5
    if what == "indices":
        labels = torch.randint(0, 3 if not classes else C, (B,), generator=g)
        if classes:  # C − 1 twice (a row of S) and C − 2 once (alone with its label)
            labels[:3] = torch.tensor([C - 1, C - 1, C - 2])
        return labels.to(dtype), C
    rows = torch.softmax(torch.randn(B, 3, generator=g, dtype=torch.float64) * 2, 1)
    return rows.to(dtype), C


@pytest.mark.parametrize(
    "row", MUTUAL_INFORMATION_DTYPES, ids=lambda r: f"{r.input}-{r.target.replace(' ', '-')}"
)
def test_mutual_information_dtype_mixes(row):
    g = torch.Generator().manual_seed(3)
    target, C = _target(row.target, 17, g)
    z = (torch.randn(17, C, generator=g) * 2).to(row.input).requires_grad_()
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
    tolerance = coarsest(row.input, *([target.dtype] if target.is_floating_point() else []))
    torch.testing.assert_close(value.double(), ref, rtol=tolerance, atol=tolerance)
    scale = ref_z.grad.abs().max().item()
    torch.testing.assert_close(z.grad.double(), ref_z.grad, rtol=tolerance, atol=tolerance * scale)


@pytest.mark.parametrize("kind", ["indices", "rows"])
def test_mutual_information_gradient_flows_into_input_only(kind):
    g = torch.Generator().manual_seed(4)
    z = torch.randn(9, 4, generator=g)
    target, _ = _target("float32 rows" if kind == "rows" else "int64 indices", 9, g)
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
    for c in CASES
    if c.function in ("mutual_information", "MMILoss", "entropies", "matched_accuracy")
    and not c.from_forward
]
# what computing I costs: a pass over the logits or probabilities (a value check reads them
# too, but never through these), and the Hungarian matching
WORK = {
    "aten._softmax.default",
    "aten.exp.out",
    "aten.exp.default",
    "aten.index_add_.default",
    "aten.index_add.default",
    "aten.addmm_.default",
    "aten.mm.default",
    "aten.log_.default",
    "aten.nansum.default",
}


@pytest.mark.parametrize("case", MI_CASES, ids=[c.id for c in MI_CASES])
def test_mutual_information_refuses_before_any_work(case, monkeypatch):
    def no_matching(*args, **kwargs):
        raise AssertionError("the matching started before the arguments were checked")

    monkeypatch.setattr(metrics_module, "linear_sum_assignment", no_matching)
    with OperatorLog() as log, pytest.raises(case.error, match="^" + re.escape(case.prefix)):
        case.call()
    assert not WORK & set(log.names), sorted(WORK & set(log.names))


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
