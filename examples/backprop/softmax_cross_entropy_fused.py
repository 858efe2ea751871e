"""Softmax and cross-entropy over a batch, the backward in one line: z.grad = (p − Y)/N.

p is an abbreviation here (no line mentions p.grad), so the graph is z → loss and the line
claims the whole of z.grad. Check it: infonorm check-backprop softmax_cross_entropy_fused.py
"""

import torch

from infonorm.backprop import onehot, sum_over

N, C = 4, 5
axes = {"n": N, "c": C}
inputs = {"z": "n c", "Y": onehot("n c")}


def forward(z, Y):
    p = torch.softmax(z, dim=-1)
    loss = -sum_over("n c", Y * torch.log(p)) / N
    return loss


def backward(z, Y, p, loss):
    "z.grad[n, c] += loss.grad (p[n, c] − Y[n, c]) / N"
    z.grad += loss.grad * (p - Y) / N
