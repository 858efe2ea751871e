import importlib
import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from scipy import stats
from sklearn.metrics import mutual_info_score

from infonorm.metrics import entropies, matched_accuracy
from infonorm.mutual_information import MMILoss, mutual_information, mutual_information_reference

# the module itself (`infonorm.mutual_information` may also name the function)
mi_module = importlib.import_module("infonorm.mutual_information")
F64 = torch.float64
# value (nats) and gradient (relative to the largest entry) against the float64 reference
TOLERANCE = {
    torch.float64: (1e-12, 1e-10),
    torch.float32: (1e-5, 1e-4),
    torch.bfloat16: (2e-2, 5e-2),
    torch.float16: (5e-3, 1e-2),
}
# (B, C): one example, one class, primes, and one of several default chunks (2^18 elements)
SIZES = [(1, 1), (1, 6), (2, 2), (7, 3), (13, 5), (97, 31), (257, 13), (523, 2011)]
# targets: class indices from two thirds of the classes, distinct class indices (each
# example alone with its label, where B <= C), and rows Pop(y|x)
CASES = [
    (size, kind)
    for size in SIZES
    for kind in ("indices", "distinct", "rows")
    if kind != "distinct" or size[0] <= size[1]
]


def _inputs(B, C, kind, probs, seed=0, spread=3.0):
    g = torch.Generator().manual_seed(seed)
    z = torch.randn(B, C, generator=g, dtype=F64) * spread
    x = torch.softmax(z, 1) if probs else z
    if kind == "indices":
        # two thirds of the classes can occur: the rest are absent from the batch
        target = torch.randint(0, max(1, C - C // 3), (B,), generator=g)
    elif kind == "distinct":
        # every example alone with its label (the large-C regime)
        target = torch.randperm(C, generator=g)[:B]
    else:
        target = torch.softmax(torch.randn(B, 4, generator=g, dtype=F64) * 2, 1)
    return x, target


def _rounded(x, dtype, probs):
    """x in dtype, and what the reference should see: the same numbers in float64
    (probabilities renormalized after rounding)."""
    xd = x.to(dtype)
    ref = xd.double()
    if probs:
        ref = ref / ref.sum(1, keepdim=True)
        xd = ref.to(dtype)
    return xd, ref


def _value_and_gradient(fn, x, target, probs):
    x = x.detach().requires_grad_()
    value = fn(x, target, probs=probs)
    (grad,) = torch.autograd.grad(value, x)
    return value, grad


@pytest.fixture(params=[None, 64], ids=["one-chunk", "chunked"])
def chunk(request, monkeypatch):
    """Run each case with the default chunking and with chunks of a few rows."""
    if request.param is not None:
        monkeypatch.setattr(mi_module, "_CHUNK_ELEMENTS", request.param)


@pytest.mark.parametrize("dtype", list(TOLERANCE), ids=str)
@pytest.mark.parametrize("probs", [False, True], ids=["logits", "probs"])
@pytest.mark.parametrize(("size", "kind"), CASES, ids=[f"{s[0]}x{s[1]}-{k}" for s, k in CASES])
def test_value_and_gradient_match_the_dense_reference(size, kind, probs, dtype, chunk):
    B, C = size
    # probabilities kept above float16's subnormals: the reference's autograd has no
    # derivative at Q = 0 (ln 0), where ours returns 0
    x, target = _inputs(B, C, kind, probs, spread=1.0 if probs else 3.0)
    xd, ref = _rounded(x, dtype, probs)
    value, grad = _value_and_gradient(mutual_information, xd, target, probs)
    expected, expected_grad = _value_and_gradient(mutual_information_reference, ref, target, probs)
    value_tol, grad_tol = TOLERANCE[dtype]
    assert value.dtype == dtype
    assert grad.dtype == dtype
    assert abs(value.double().item() - expected.item()) <= value_tol
    # ∂I/∂Q = Λ/B: the unit 1/B where the true gradient vanishes (B = 1 or C = 1: I ≡ 0)
    scale = max(expected_grad.abs().max().item(), 1 / B)
    assert (grad.double() - expected_grad).abs().max().item() <= grad_tol * scale


@pytest.mark.parametrize("probs", [False, True], ids=["logits", "probs"])
@pytest.mark.parametrize("kind", ["indices", "distinct", "rows"])
def test_gradcheck_float64(kind, probs, chunk):
    x, target = _inputs(9, 11, kind, probs, seed=1, spread=1.0)
    x.requires_grad_()
    assert torch.autograd.gradcheck(lambda t: mutual_information(t, target, probs=probs), (x,))


def test_hard_predictions_match_sklearn():
    rng = np.random.default_rng(0)
    for B, C in [(1, 3), (50, 2), (301, 7), (1000, 97)]:
        y = rng.integers(0, C, B)
        # predictions that agree with y for about half of the examples
        pred = np.where(rng.random(B) < 0.5, y, rng.integers(0, C, B))
        one_hot = F.one_hot(torch.from_numpy(pred), C).to(F64)
        value = mutual_information(one_hot, torch.from_numpy(y), probs=True)
        assert value.item() == pytest.approx(mutual_info_score(y, pred), abs=1e-12)


def test_entropies_match_scipy_and_combine_into_I():
    x, y = _inputs(200, 9, "indices", probs=True, seed=2)
    parts = entropies(x, y, probs=True)
    P = F.one_hot(y, 9).double().T @ x / 200
    H_y, H_yhat, H_joint = (stats.entropy(p) for p in (P.sum(1), P.sum(0), P.flatten()))
    assert parts.H_y.item() == pytest.approx(H_y, abs=1e-12)
    assert parts.H_yhat.item() == pytest.approx(H_yhat, abs=1e-12)
    assert parts.H_yhat_given_y.item() == pytest.approx(H_joint - H_y, abs=1e-12)
    assert parts.H_y_given_yhat.item() == pytest.approx(H_joint - H_yhat, abs=1e-12)
    information = mutual_information(x, y, probs=True).item()
    assert parts.mutual_information.item() == pytest.approx(information, abs=1e-12)
    assert min(parts.H_y.item(), parts.H_yhat.item()) >= information


def test_entropies_of_logits_with_distinct_labels_use_the_same_joint():
    z, y = _inputs(50, 300, "distinct", probs=False, seed=3)
    parts = entropies(z, y)
    assert parts.H_y.item() == pytest.approx(math.log(50), abs=1e-12)
    reference = mutual_information_reference(z, y).item()
    assert parts.mutual_information.item() == pytest.approx(reference, abs=1e-12)


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16], ids=str)
@pytest.mark.parametrize("kind", ["indices", "distinct"])
def test_logits_of_plus_minus_100_give_finite_values_and_gradients(dtype, kind):
    B, C = 40, 64
    _, y = _inputs(B, C, kind, probs=False, seed=4)
    # a perfect predictor (±100 on the true class), and a wrong one
    for labels in (y, (y + 1) % C):
        z = (200 * F.one_hot(labels, C) - 100).to(dtype).requires_grad_()
        value = mutual_information(z, y)
        (grad,) = torch.autograd.grad(value, z)
        assert torch.isfinite(value)
        assert torch.isfinite(grad).all()
        H_y = entropies(z.detach().float(), y).H_y.item()
        assert value.item() == pytest.approx(H_y, abs=TOLERANCE[dtype][0])


def test_class_absent_from_the_batch_gets_a_zero_gradient():
    # class 4 is never a label and gets only logits of −50: Q there underflows to ~0
    g = torch.Generator().manual_seed(5)
    z = torch.randn(30, 5, generator=g)
    z[:, 4] = -50
    z.requires_grad_()
    y = torch.randint(0, 4, (30,), generator=g)
    (grad,) = torch.autograd.grad(mutual_information(z, y), z)
    assert torch.isfinite(grad).all()
    assert grad[:, 4].abs().max() < 1e-12


@pytest.mark.parametrize("kind", ["indices", "distinct", "rows"])
def test_constant_predictions_carry_no_information(kind):
    _, target = _inputs(64, 100, kind, probs=False, seed=6)
    z = torch.randn(1, 100).expand(64, 100).clone().requires_grad_()
    value = mutual_information(z, target)
    (grad,) = torch.autograd.grad(value, z)
    assert abs(value.item()) < 1e-6
    assert grad.abs().max().item() < 1e-7


@pytest.mark.parametrize("kind", ["indices", "distinct", "rows"])
def test_relabeling_prediction_columns_leaves_I_unchanged(kind):
    z, target = _inputs(80, 90, kind, probs=False, seed=7)
    perm = torch.randperm(90, generator=torch.Generator().manual_seed(8))
    value, grad = _value_and_gradient(mutual_information, z, target, False)
    permuted, permuted_grad = _value_and_gradient(mutual_information, z[:, perm], target, False)
    assert permuted.item() == pytest.approx(value.item(), abs=1e-12)
    torch.testing.assert_close(permuted_grad, grad[:, perm], rtol=0, atol=1e-14)


@pytest.mark.parametrize("kind", ["indices", "distinct", "rows"])
def test_duplicating_the_batch_leaves_I_unchanged_and_halves_the_gradient(kind):
    z, target = _inputs(40, 50, kind, probs=False, seed=9)
    value, grad = _value_and_gradient(mutual_information, z, target, False)
    doubled, doubled_grad = _value_and_gradient(
        mutual_information, torch.cat([z, z]), torch.cat([target, target]), False
    )
    assert doubled.item() == pytest.approx(value.item(), abs=1e-12)
    torch.testing.assert_close(doubled_grad[:40], grad / 2, rtol=1e-10, atol=1e-14)


def test_perfect_predictor_and_binary_anti_predictor_reach_H_y():
    y = torch.tensor([0, 1, 1, 0, 1, 1, 1])
    H_y = stats.entropy(np.bincount(y.numpy()))
    for predicted in (y, 1 - y):
        Q = F.one_hot(predicted, 2).double()
        assert mutual_information(Q, y, probs=True).item() == pytest.approx(H_y, abs=1e-15)


def test_mmi_loss_is_minus_I_and_trains_a_relabeling():
    z, y = _inputs(30, 4, "indices", probs=False, seed=10)
    loss = MMILoss()
    assert loss(z, y).item() == pytest.approx(-mutual_information(z, y).item(), abs=0)
    # gradient descent on −I makes the prediction more informative
    z = z.clone().requires_grad_()
    before = mutual_information(z, y).item()
    for _ in range(20):
        (grad,) = torch.autograd.grad(loss(z, y), z)
        z = (z - 50 * grad).detach().requires_grad_()
    assert mutual_information(z, y).item() > before + 0.1


def test_no_gradient_is_computed_when_input_needs_none():
    z, y = _inputs(8, 5, "indices", probs=False)
    value = mutual_information(z, y)
    assert not value.requires_grad


def test_matched_accuracy_finds_the_relabeling():
    y = np.array([0, 0, 1, 1, 2, 2, 2, 3])
    relabel = np.array([2, 3, 1, 0])
    pred = relabel[y]
    pred[0] = 1  # one mistake
    accuracy, mapping = matched_accuracy(pred, y)
    assert accuracy == pytest.approx(7 / 8)
    assert mapping == {2: 0, 3: 1, 1: 2, 0: 3}
    # raw agreement is far lower, and scores are read through their argmax
    assert (pred == y).mean() < 0.5
    scores = F.one_hot(torch.from_numpy(pred), 4).float()
    assert matched_accuracy(scores, torch.from_numpy(y)) == (accuracy, mapping)


def test_matched_accuracy_with_more_predicted_classes_than_true_ones():
    accuracy, mapping = matched_accuracy([0, 1, 2, 2], [5, 5, 7, 7])
    assert accuracy == pytest.approx(3 / 4)
    assert mapping[2] == 7
    assert len(mapping) == 2


@pytest.mark.parametrize(
    ("input", "target", "kwargs", "error", "match"),
    [
        ([[0.0, 1.0]], torch.tensor([0]), {}, TypeError, "input must be a torch.Tensor"),
        (torch.zeros(3, 2, dtype=torch.int64), torch.tensor([0, 1, 0]), {}, TypeError, "floating"),
        (torch.zeros(3), torch.tensor([0, 1, 0]), {}, ValueError, r"\(B, C\)"),
        (torch.zeros(0, 4), torch.zeros(0, dtype=torch.int64), {}, ValueError, "empty batch"),
        (torch.zeros(3, 0), torch.tensor([0, 1, 0]), {}, ValueError, "no classes"),
        (torch.zeros(3, 4), torch.tensor([0, 1]), {}, ValueError, "2 labels but input has B = 3"),
        (torch.zeros(3, 4), torch.tensor([0, 4, 1]), {}, ValueError, r"label 4, outside \[0, 4\)"),
        (torch.zeros(3, 4), torch.tensor([0, -1, 1]), {}, ValueError, "label -1"),
        (torch.zeros(3, 4), torch.tensor([0.0, 1.0, 2.0]), {}, TypeError, "integer class"),
        (torch.zeros(3, 4), torch.tensor([True, False, True]), {}, TypeError, "integer class"),
        (torch.zeros(3, 4), torch.zeros(3, 2, dtype=torch.int64), {}, TypeError, "Pop"),
        (torch.zeros(3, 4), torch.full((3, 2), 0.7), {}, ValueError, "target rows must sum"),
        (torch.zeros(3, 4), torch.zeros(3, 2, 2), {}, ValueError, "target must be"),
        (torch.zeros(3, 4), [0, 1, 2], {}, TypeError, "target must be a torch.Tensor"),
        (torch.full((2, 2), 0.6), torch.tensor([0, 1]), {"probs": True}, ValueError, "sum to 1"),
        (
            torch.tensor([[1.5, -0.5], [0.5, 0.5]]),
            torch.tensor([0, 1]),
            {"probs": True},
            ValueError,
            "negative",
        ),
        (torch.zeros(2, 2), torch.tensor([0, 1]), {"probs": 1}, TypeError, "probs must be"),
    ],
)
def test_bad_arguments_are_refused_by_name(input, target, kwargs, error, match):
    with pytest.raises(error, match=match):
        mutual_information(input, target, **kwargs)


@pytest.mark.parametrize("bad", [math.nan, math.inf])
@pytest.mark.parametrize("kind", ["indices", "distinct", "rows"])
def test_nan_and_infinite_logits_are_refused(bad, kind):
    z, target = _inputs(6, 8, kind, probs=False)
    z[3, 2] = bad
    with pytest.raises(ValueError, match="NaN"):
        mutual_information(z, target)


def test_nan_probabilities_are_refused():
    Q = torch.full((2, 2), 0.5)
    Q[1, 0] = math.nan
    with pytest.raises(ValueError, match="input holds NaN"):
        mutual_information(Q, torch.tensor([0, 1]), probs=True)


def test_a_group_needs_torch_distributed_initialized():
    # the multi-process runs are in test_mutual_information_distributed.py
    with pytest.raises(ValueError, match=r"torch\.distributed is not initialized"):
        mutual_information(torch.zeros(2, 2), torch.tensor([0, 1]), group=object())
    with pytest.raises(ValueError, match=r"torch\.distributed is not initialized"):
        MMILoss(group=object())


@pytest.mark.parametrize(
    ("pred", "target", "error", "match"),
    [
        ([0, 1], [0, 1, 1], ValueError, "2 examples but target has 3"),
        ([], [], ValueError, "empty"),
        ([0.5, 1.0], [0, 1], TypeError, "integer class indices"),
        ([[[0]]], [0], ValueError, "shape"),
        ([0, 1], [[0, 1]], ValueError, "target must be"),
    ],
)
def test_matched_accuracy_refuses_bad_labels(pred, target, error, match):
    with pytest.raises(error, match=match):
        matched_accuracy(pred, target)


# ---------------------------------------------------------------------------- differentiating twice


@pytest.mark.parametrize("probs", [False, True], ids=["logits", "probs"])
@pytest.mark.parametrize("kind", ["indices", "distinct", "rows"])
def test_gradgradcheck_float64(kind, probs):
    # a double backward connected to the input, numerically consistent with itself; whether
    # its formula is I's is the Hessian test's to say (below)
    # class indices: one label alone, one repeated, one example ignored
    x, target = _inputs(5, 6, kind, probs, seed=11, spread=1.0)
    if kind == "indices":
        target = torch.tensor([0, 3, 3, -100, 1])
    x.requires_grad_()
    assert torch.autograd.gradgradcheck(lambda t: mutual_information(t, target, probs=probs), (x,))


@pytest.mark.parametrize("probs", [False, True], ids=["logits", "probs"])
@pytest.mark.parametrize("kind", ["indices", "distinct", "rows"])
def test_hessian_equals_the_float64_references(kind, probs):
    # differentiating twice goes through the composite, which never chunks
    x, target = _inputs(6, 7, kind, probs, seed=12, spread=2.0)
    hessian = torch.autograd.functional.hessian(
        lambda t: mutual_information(t, target, probs=probs), x
    )
    expected = torch.autograd.functional.hessian(
        lambda t: mutual_information_reference(t, target, probs=probs), x
    )
    assert expected.abs().max() > 1e-3  # not the silent zeros of a once-differentiable backward
    torch.testing.assert_close(hessian, expected, rtol=1e-9, atol=1e-12)


def test_a_gradient_penalty_trains_the_parameters_as_the_reference_does():
    g = torch.Generator().manual_seed(13)
    x = torch.randn(20, 6, generator=g, dtype=F64)
    y = torch.randint(0, 4, (20,), generator=g)
    grads = []
    for fn in (mutual_information, mutual_information_reference):
        model = torch.nn.Linear(6, 5, dtype=F64)
        for parameter in model.parameters():
            torch.nn.init.normal_(parameter, generator=torch.Generator().manual_seed(14))
        inputs = x.clone().requires_grad_()
        (g_x,) = torch.autograd.grad(fn(model(inputs), y), inputs, create_graph=True)
        g_x.pow(2).sum().backward()
        grads.append((model.weight.grad, model.bias.grad))
    (weight, bias), (weight_ref, bias_ref) = grads
    assert weight_ref.abs().max() > 1e-4
    torch.testing.assert_close(weight, weight_ref, rtol=1e-9, atol=1e-12)
    torch.testing.assert_close(bias, bias_ref, rtol=1e-9, atol=1e-12)


# ------------------------------------------------------------------ F.cross_entropy's conventions


@pytest.mark.parametrize("probs", [False, True], ids=["logits", "probs"])
def test_ignored_examples_are_left_out_of_the_joint(probs, chunk):
    x, y = _inputs(40, 12, "indices", probs, seed=15)
    y[::3] = -100
    kept = y != -100
    value, grad = _value_and_gradient(mutual_information, x, y, probs)
    expected, expected_grad = _value_and_gradient(
        mutual_information_reference, x[kept], y[kept], probs
    )
    assert value.item() == pytest.approx(expected.item(), abs=1e-12)
    torch.testing.assert_close(grad[kept], expected_grad, rtol=1e-9, atol=1e-13)
    assert (grad[~kept] == 0).all()
    # any ignore_index, in [0, C) or not, as F.cross_entropy takes it
    for ignore_index in (9, 50):
        relabeled = torch.where(kept, y, ignore_index)
        other = mutual_information(x, relabeled, probs=probs, ignore_index=ignore_index)
        assert other.item() == pytest.approx(expected.item(), abs=1e-12)


def test_ignore_index_is_compared_in_int64_for_small_integer_labels():
    # in uint8 −100 is 156: label 156 is a class, not an ignored example
    g = torch.Generator().manual_seed(16)
    z = torch.randn(8, 256, generator=g, dtype=F64)
    y = torch.tensor([156, 156, 3, 3, 255, 0, 1, 1])
    value = mutual_information(z, y.to(torch.uint8))
    assert value.item() == pytest.approx(mutual_information_reference(z, y).item(), abs=1e-12)


@pytest.mark.parametrize("kind", ["indices", "rows"])
def test_positions_of_a_B_C_d1_d2_input_are_examples(kind):
    # as F.cross_entropy: (B, C, d1, d2) logits with (B, d1, d2) targets
    g = torch.Generator().manual_seed(17)
    z = torch.randn(3, 7, 4, 5, generator=g, dtype=F64, requires_grad=True)
    if kind == "indices":
        target = torch.randint(0, 7, (3, 4, 5), generator=g)
        target[0, 1] = -100
        flat_target = target.reshape(-1)
    else:
        target = torch.softmax(torch.randn(3, 2, 4, 5, generator=g, dtype=F64), 1)
        flat_target = target.movedim(1, -1).reshape(-1, 2)
    value = mutual_information(z, target)
    (grad,) = torch.autograd.grad(value, z)
    flat = z.detach().movedim(1, -1).reshape(-1, 7).requires_grad_()
    expected = mutual_information_reference(flat, flat_target)
    (expected_grad,) = torch.autograd.grad(expected, flat)
    assert value.item() == pytest.approx(expected.item(), abs=1e-12)
    torch.testing.assert_close(grad, expected_grad.reshape(3, 4, 5, 7).movedim(-1, 1))
    assert MMILoss()(z, target).item() == -value.item()


def test_mmi_loss_takes_cross_entropy_options_and_refuses_a_reduction():
    z, y = _inputs(30, 6, "indices", probs=False, seed=18)
    y[:4] = 2
    y[-3:] = -1
    loss = MMILoss(ignore_index=-1, backend="torch", validate=True)
    assert loss(z, y).item() == -mutual_information(z, y, ignore_index=-1).item()
    for bad in ({"group": "mean"}, {"group": "none"}, {"reduction": "sum"}, {"reduction": "mean"}):
        with pytest.raises(ValueError, match="statistic of the whole batch"):
            MMILoss(**bad)


# ---------------------------------------------------------------------------- backends


def _kernels_or_skip():
    pytest.importorskip("triton")
    return pytest.importorskip("infonorm.kernels.mutual_information")


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16, torch.float16], ids=str)
@pytest.mark.parametrize(("B", "C"), [(1, 1), (7, 3), (13, 40), (33, 5)])
def test_the_triton_backend_gives_the_torch_backends_results(B, C, dtype):
    _kernels_or_skip()
    g = torch.Generator().manual_seed(19)
    z = (3 * torch.randn(B, C, generator=g)).to(dtype)
    y = torch.randint(0, C, (B,), generator=g)
    if B > 3:
        y[1] = -100  # one ignored example
        z[0, C // 2] = -math.inf  # one masked class
    results = []
    for backend in ("torch", "triton"):
        x = z.clone().requires_grad_()
        value = mutual_information(x, y, backend=backend)
        value.backward()
        results.append((value.double(), x.grad.double()))
    (value, grad), (value_t, grad_t) = results
    tolerance = {torch.float32: 2e-6, torch.bfloat16: 1e-2, torch.float16: 2e-3}[dtype]
    assert abs(value_t.item() - value.item()) <= tolerance
    scale = max(grad.abs().max().item(), 1 / B)
    torch.testing.assert_close(grad_t, grad, rtol=0, atol=tolerance * scale)


def test_auto_is_torch_on_cpu_and_triton_is_refused_where_it_does_not_apply():
    z, y = _inputs(6, 4, "indices", probs=False)
    for backend in ("auto", "torch"):
        assert mutual_information(z, y, backend=backend).item() == pytest.approx(
            mutual_information_reference(z, y).item(), abs=1e-12
        )
    with pytest.raises(ValueError, match="backend='triton' computes class-index targets"):
        mutual_information(z, y, backend="triton")  # float64 logits


# ---------------------------------------------------------------------------- values


def test_half_precision_rows_are_held_to_their_rounding_not_to_sqrt_C():
    g = torch.Generator().manual_seed(20)
    rows = torch.softmax(torch.randn(6, 10000, generator=g, dtype=F64), 1)
    # stored in bfloat16 the rows sum to 1 within its rounding: accepted
    mutual_information(rows.to(torch.bfloat16), torch.arange(6), probs=True)
    # 1.5: refused, for input and target alike (the old tolerance, eps √C, was 0.78)
    with pytest.raises(ValueError, match=r"input rows must sum to 1, but row \d sums to 1.5"):
        mutual_information((1.5 * rows).to(torch.bfloat16), torch.arange(6), probs=True)
    four = rows[:, :4] / rows[:, :4].sum(1, keepdim=True)
    with pytest.raises(ValueError, match=r"target rows must sum to 1, but row \d sums to 1.5"):
        mutual_information(torch.randn(6, 3), (1.5 * four).to(torch.bfloat16))


def test_matched_accuracy_reads_a_column_of_labels_as_labels():
    assert matched_accuracy(torch.tensor([[1], [0]]), torch.tensor([1, 0])) == (1.0, {0: 0, 1: 1})
    assert matched_accuracy(np.array([[2], [2], [0]]), np.array([[5], [5], [1]])) == (
        1.0,
        {0: 1, 2: 5},
    )
