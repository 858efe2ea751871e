"""Softmax and cross-entropy over a batch, with one deliberately wrong line.

Line 2 treats softmax as if it acted on each entry alone: it drops the sum over c'
that the normalization brings. The checker refutes it. Check it:
infonorm check-backprop softmax_cross_entropy_wrong.py
"""

import torch

from infonorm.backprop import onehot, sum_over

N, C = 4, 5
axes = {"n": N, "c": C}
inputs = {"z": "n c", "Y": onehot("n c")}  # Y: the labels, one-hot rows


def forward(z, Y):
    p = torch.softmax(z, dim=-1)
    loss = -sum_over("n c", Y * torch.log(p)) / N
    return loss


def backward(z, Y, p, loss):
    "p.grad[n, c] = −loss.grad Y[n, c] / (N p[n, c])"
    p.grad = -loss.grad * Y / (N * p)

    "z.grad[n, c] += p[n, c] p.grad[n, c]"
    z.grad += p * p.grad
