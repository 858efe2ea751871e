"""Metrics of a classifier judged by mutual information: the entropies that I(y; ŷ) is made
of, and accuracy under the best relabeling of the predictions (what an MMI-trained model,
which does not know which output column means which class, is judged by).
"""

from __future__ import annotations

from typing import Any, NamedTuple

import numpy as np
import torch
from scipy.optimize import linear_sum_assignment

from infonorm._validation import check_dense, check_has_values
from infonorm.mutual_information import (
    _as_examples,
    _check_arguments,
    _check_values,
    _joint_float64,
)

__all__ = ["Entropies", "entropies", "matched_accuracy"]


class Entropies(NamedTuple):
    """The parts of I(y; ŷ) in nats (float64 scalars): I = H(ŷ) − H(ŷ|y) = H(y) − H(y|ŷ)."""

    H_y: torch.Tensor
    H_yhat: torch.Tensor
    H_yhat_given_y: torch.Tensor
    H_y_given_yhat: torch.Tensor
    mutual_information: torch.Tensor


@torch.no_grad()
def entropies(
    input: torch.Tensor, target: torch.Tensor, *, probs: bool = False, ignore_index: int = -100
) -> Entropies:
    """H(y), H(ŷ), H(ŷ|y), H(y|ŷ) and I(y; ŷ) of the batch's joint, in float64, no gradient.

    Arguments as for `mutual_information` (values are always checked on the host). I <=
    min(H(y), H(ŷ)): the bound that a perfect predictor, and any relabeling of it, attains.
    """
    _check_arguments(input, target, probs, ignore_index)
    x, target = _as_examples(input, target)
    _check_values(x, target, probs, ignore_index)
    S, s, sum_single, n, N = _joint_float64(x, target, probs, ignore_index)
    # H(m) = ln N − (1/N) Σ m ln m for counts m summing to N
    ln_N = torch.log(N)
    H_y = ln_N - torch.xlogy(n, n).sum() / N
    H_yhat = ln_N - torch.xlogy(s, s).sum() / N
    # the joint's entries: the rows of S, and each single example's own Q[b]
    H_joint = ln_N - (torch.xlogy(S, S).sum() + sum_single) / N
    return Entropies(
        H_y=H_y,
        H_yhat=H_yhat,
        H_yhat_given_y=H_joint - H_y,
        H_y_given_yhat=H_joint - H_yhat,
        mutual_information=H_y + H_yhat - H_joint,
    )


def matched_accuracy(pred: Any, target: Any) -> tuple[float, dict[int, int]]:
    """(accuracy, mapping) under the relabeling of predictions that agrees most with target.

    pred: (B,) predicted class indices, or (B, C) scores with C >= 2 (their argmax is
    taken); target: (B,) class indices; tensors or arrays. Integer (B, 1) columns are read as
    class indices, for pred and target alike. mapping sends each matched predicted class to a
    true class, one-to-one, found by the Hungarian method
    (scipy.optimize.linear_sum_assignment) on the contingency table of the classes present;
    examples whose predicted class has no partner count as wrong. Memory is O(P·T) for P
    predicted and T true classes present.
    """
    predicted = _as_labels(pred, "pred", allow_scores=True)
    truth = _as_labels(target, "target", allow_scores=False)
    if predicted.shape != truth.shape:
        raise ValueError(f"pred has {predicted.size} examples but target has {truth.size}")
    pred_classes, p = np.unique(predicted, return_inverse=True)
    true_classes, t = np.unique(truth, return_inverse=True)
    # contingency[i, j] = #{b : pred_b is the i-th predicted class, y_b the j-th true class}
    contingency = np.zeros((pred_classes.size, true_classes.size), dtype=np.int64)
    np.add.at(contingency, (p, t), 1)
    i, j = linear_sum_assignment(contingency, maximize=True)
    accuracy = float(contingency[i, j].sum() / truth.size)
    mapping = {int(pred_classes[a]): int(true_classes[b]) for a, b in zip(i, j, strict=True)}
    return accuracy, mapping


def _as_labels(value: Any, name: str, *, allow_scores: bool) -> np.ndarray:
    """Class indices as a 1-D int64 array (argmax of (B, C) scores where allowed)."""
    shapes = "(B,) class indices or (B, C) scores" if allow_scores else "(B,) class indices"
    array = _as_array(value, name, shapes)
    integral = array.dtype == np.bool_ or np.issubdtype(array.dtype, np.integer)
    if array.ndim == 2 and array.shape[1] == 1 and integral:
        # a column of class indices, as label tensors of shape (B, 1) often come
        array = array[:, 0]
    elif allow_scores and array.ndim == 2:
        if array.shape[1] == 0:
            raise ValueError(f"{name} scores have no classes (shape {array.shape})")
        if array.shape[1] == 1:
            raise ValueError(
                f"{name} scores of shape {array.shape} have a single class, so their argmax "
                "is always 0: pass class indices as (B,) or (B, 1) integers"
            )
        if np.iscomplexobj(array):
            raise TypeError(f"{name} scores must be real numbers, got dtype {array.dtype}")
        if np.issubdtype(array.dtype, np.floating) and np.isnan(array).any():
            raise ValueError(f"{name} holds NaN")
        array = array.argmax(1)
    if array.ndim != 1:
        raise ValueError(f"{name} must be {shapes}, got shape {array.shape}")
    if array.size == 0:
        raise ValueError(f"{name} is empty: at least one example is needed")
    if array.dtype == np.bool_ or not np.issubdtype(array.dtype, np.integer):
        raise TypeError(f"{name} must hold integer class indices, got dtype {array.dtype}")
    return array.astype(np.int64)


def _as_array(value: Any, name: str, shapes: str) -> np.ndarray:
    """`value` (tensor, array or nested sequence) as a NumPy array, errors naming `name`."""
    if isinstance(value, torch.Tensor):
        check_dense(value, name)
        check_has_values(value, name, "its labels are needed")
        value = value.detach()
        # NumPy has no bfloat16; float32 holds every bfloat16 exactly, so argmax is unchanged
        if value.dtype == torch.bfloat16:
            value = value.float()
        return value.cpu().numpy()
    try:
        return np.asarray(value)
    except ValueError:  # ragged nesting: rows of different lengths
        raise ValueError(
            f"{name} must be {shapes}, got a ragged sequence (rows of different lengths)"
        ) from None
