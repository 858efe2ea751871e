"""Properties of mutual_information over random shapes, targets and values (hypothesis)."""

import importlib
import math
from contextlib import contextmanager

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from hypothesis import given, settings
from hypothesis import strategies as st
from sklearn.metrics import mutual_info_score

from infonorm.metrics import entropies
from infonorm.mutual_information import mutual_information, mutual_information_reference

mi_module = importlib.import_module("infonorm.mutual_information")
F64 = torch.float64
# |I − I'| in nats between two evaluations of the same batch, and the gradient relative to
# its largest entry, per dtype of the input
TOLERANCE = {
    torch.float64: (1e-10, 1e-9),
    torch.float32: (2e-5, 1e-4),
    torch.bfloat16: (3e-2, 6e-2),
}
SETTINGS = settings(max_examples=30, deadline=None)
KINDS = ("indices", "distinct", "rows")


@st.composite
def batches(draw, kinds=KINDS, dtypes=(F64, torch.float32), max_B=40, max_C=12):
    """(input, target, probs, dtype, chunk): logits or probabilities of random shape, and
    class indices from a few classes, distinct class indices, or rows Pop(y|x)."""
    kind = draw(st.sampled_from(kinds))
    C = draw(st.integers(1, max_C))
    B = draw(st.integers(1, C if kind == "distinct" else max_B))
    probs = draw(st.booleans())
    dtype = draw(st.sampled_from(dtypes))
    spread = draw(st.sampled_from([0.0, 0.3, 3.0, 30.0]))
    g = torch.Generator().manual_seed(draw(st.integers(0, 2**31 - 1)))
    z = torch.randn(B, C, generator=g, dtype=F64) * spread
    if kind == "indices":
        K = draw(st.integers(1, C))
        target = torch.randint(0, K, (B,), generator=g)
    elif kind == "distinct":
        target = torch.randperm(C, generator=g)[:B]
    else:
        C_y = draw(st.integers(1, 5))
        target = torch.softmax(torch.randn(B, C_y, generator=g, dtype=F64) * 2, 1)
    x = (torch.softmax(z, 1) if probs else z).to(dtype)
    if probs:  # rows that sum to 1 in their own dtype
        x = (x.double() / x.double().sum(1, keepdim=True)).to(dtype)
    # chunks of a few rows, or the default (one chunk for these sizes)
    chunk = draw(st.sampled_from([None, C, 3 * C]))
    return x, target, probs, dtype, chunk


@contextmanager
def _chunks(elements):
    if elements is None:
        yield
        return
    saved = mi_module._CHUNK_ELEMENTS
    mi_module._CHUNK_ELEMENTS = elements
    try:
        yield
    finally:
        mi_module._CHUNK_ELEMENTS = saved


def _value_and_grad(x, target, probs):
    x = x.detach().requires_grad_()
    value = mutual_information(x, target, probs=probs)
    (grad,) = torch.autograd.grad(value, x)
    return value.double(), grad.double()


def _assert_grad_close(got, want, dtype, N=None):
    """Entries of ∂I/∂input are Q (G − ḡ)/N with G of order 1: relative to the largest entry,
    but never tighter than relative to 1/N, the gradient's own scale (N: the batch, by
    default got's rows). Where I is flat (one label, identical rows) the exact gradient is 0
    and both sides are rounding noise."""
    scale = max(want.abs().max().item(), 1.0 / (N or got.shape[0]))
    torch.testing.assert_close(got, want, rtol=0, atol=TOLERANCE[dtype][1] * scale)


@SETTINGS
@given(batches())
def test_information_lies_between_zero_and_both_entropies(batch):
    x, target, probs, dtype, chunk = batch
    with _chunks(chunk):
        value = mutual_information(x, target, probs=probs).double().item()
        H = entropies(x, target, probs=probs)
    atol = TOLERANCE[dtype][0]
    assert value >= -atol
    assert value <= min(H.H_y.item(), H.H_yhat.item()) + atol
    assert value == pytest.approx(H.mutual_information.item(), abs=atol)


@SETTINGS
@given(batches(), st.integers(0, 2**31 - 1))
def test_relabeling_prediction_columns_permutes_the_gradient_only(batch, seed):
    x, target, probs, dtype, chunk = batch
    perm = torch.randperm(x.shape[1], generator=torch.Generator().manual_seed(seed))
    with _chunks(chunk):
        value, grad = _value_and_grad(x, target, probs)
        value_p, grad_p = _value_and_grad(x[:, perm], target, probs)
    assert value_p.item() == pytest.approx(value.item(), abs=TOLERANCE[dtype][0])
    _assert_grad_close(grad_p, grad[:, perm], dtype)


@SETTINGS
@given(batches(kinds=("indices", "distinct")), st.integers(0, 2**31 - 1))
def test_relabeling_the_labels_or_reordering_the_batch_leaves_I_unchanged(batch, seed):
    x, target, probs, dtype, chunk = batch
    g = torch.Generator().manual_seed(seed)
    # new names for the labels (any injective map into [0, C)), and the examples reordered
    names = torch.randperm(x.shape[1], generator=g)
    order = torch.randperm(x.shape[0], generator=g)
    with _chunks(chunk):
        value, grad = _value_and_grad(x, target, probs)
        renamed, _ = _value_and_grad(x, names[target], probs)
        reordered, grad_o = _value_and_grad(x[order], target[order], probs)
    assert renamed.item() == pytest.approx(value.item(), abs=TOLERANCE[dtype][0])
    assert reordered.item() == pytest.approx(value.item(), abs=TOLERANCE[dtype][0])
    _assert_grad_close(grad_o, grad[order], dtype)


@SETTINGS
@given(batches(max_B=20))
def test_duplicating_the_batch_leaves_I_unchanged_and_halves_the_gradient(batch):
    x, target, probs, dtype, chunk = batch
    with _chunks(chunk):
        value, grad = _value_and_grad(x, target, probs)
        twice, grad_2 = _value_and_grad(torch.cat([x, x]), torch.cat([target, target]), probs)
    assert twice.item() == pytest.approx(value.item(), abs=TOLERANCE[dtype][0])
    # each copy enters the joint with weight 1/(2B) instead of 1/B, Λ is unchanged
    B = x.shape[0]
    _assert_grad_close(grad_2[:B], grad / 2, dtype, N=2 * B)
    _assert_grad_close(grad_2[B:], grad / 2, dtype, N=2 * B)


@SETTINGS
@given(
    st.integers(1, 60),
    st.integers(1, 9),
    st.integers(1, 9),
    st.floats(0.0, 1.0),
    st.integers(0, 2**31 - 1),
)
def test_hard_predictions_equal_sklearn(B, C_true, C_pred, agreement, seed):
    rng = np.random.default_rng(seed)
    y = rng.integers(0, C_true, B)
    pred = np.where(rng.random(B) < agreement, y % C_pred, rng.integers(0, C_pred, B))
    one_hot = F.one_hot(torch.from_numpy(pred), C_pred).to(F64)
    # the labels must index the input's columns: pad the predictions to max(C_true, C_pred)
    C = max(C_true, C_pred)
    one_hot = F.pad(one_hot, (0, C - C_pred))
    expected = mutual_info_score(y, pred)
    value = mutual_information(one_hot, torch.from_numpy(y), probs=True)
    assert value.item() == pytest.approx(expected, abs=1e-12)
    H = entropies(one_hot, torch.from_numpy(y), probs=True)
    assert H.mutual_information.item() == pytest.approx(expected, abs=1e-12)
    # and in float32 the same numbers, to float32's precision
    value32 = mutual_information(one_hot.float(), torch.from_numpy(y), probs=True)
    assert value32.item() == pytest.approx(expected, abs=1e-5)


@settings(max_examples=40, deadline=None)
@given(
    batches(kinds=KINDS, dtypes=(torch.float32, torch.bfloat16), max_B=30, max_C=40),
    st.integers(0, 2**31 - 1),
)
def test_logits_of_plus_minus_100_give_finite_values_and_gradients(batch, seed):
    _, target, _, dtype, chunk = batch
    B, C = target.shape[0], batch[0].shape[1]
    g = torch.Generator().manual_seed(seed)
    # ±100 everywhere, a little noise so that rows differ: softmax rows are (nearly) one-hot
    signs = torch.randint(0, 2, (B, C), generator=g) * 2 - 1
    z = (100.0 * signs + torch.rand(B, C, generator=g)).to(dtype)
    with _chunks(chunk):
        value, grad = _value_and_grad(z, target, False)
    assert torch.isfinite(value)
    assert torch.isfinite(grad).all()
    # the reference sees the same (rounded) logits in float64
    ref_z = z.double().requires_grad_()
    ref = mutual_information_reference(ref_z, target)
    (ref_grad,) = torch.autograd.grad(ref, ref_z)
    assert value.item() == pytest.approx(ref.item(), abs=TOLERANCE[dtype][0])
    _assert_grad_close(grad, ref_grad, dtype)


@SETTINGS
@given(
    batches(kinds=KINDS, dtypes=(F64, torch.float32, torch.bfloat16)),
    st.floats(0.1, 0.9),
    st.integers(0, 2**31 - 1),
)
def test_masked_logits_give_the_limit_of_very_negative_ones(batch, fraction, seed):
    x, target, probs, dtype, chunk = batch
    if probs:  # masking is of logits; probabilities have exact zeros instead (tested above)
        x = torch.log(x.double()).clamp_min(-30).to(dtype)
    B, C = x.shape
    g = torch.Generator().manual_seed(seed)
    # a random share of the classes at −inf, each row keeping its largest logit
    masked = torch.rand(B, C, generator=g) < fraction
    masked[torch.arange(B), x.double().argmax(1)] = False
    z = x.masked_fill(masked, -math.inf)
    with _chunks(chunk):
        value, grad = _value_and_grad(z, target, False)
    assert torch.isfinite(value)
    assert torch.isfinite(grad).all()
    assert (grad[masked] == 0).all()
    # −1e4 has Q = 0 exactly as well, in float64 too: the reference meets no infinity
    ref_z = z.double().clamp_min(-1e4).requires_grad_()
    ref = mutual_information_reference(ref_z, target)
    (ref_grad,) = torch.autograd.grad(ref, ref_z)
    assert value.item() == pytest.approx(ref.item(), abs=TOLERANCE[dtype][0])
    _assert_grad_close(grad, ref_grad, dtype)
