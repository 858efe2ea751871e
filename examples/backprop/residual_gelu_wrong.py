"""A residual block y = x + GELU(x W + b), with one deliberately wrong line.

Line 3 takes GELU'(z) to be Φ(z), as if GELU(z) = z Φ(z) had Φ constant: it drops z φ(z).
The checker refutes line 3 and names the lines that inherit its error (W.grad, b.grad and
the x.grad through z). Check it: infonorm check-backprop residual_gelu_wrong.py
"""

import math

import torch

N, D = 4, 3
inputs = {"x": (N, D), "W": (D, D), "b": (D,)}


def forward(x, W, b):
    z = x @ W + b
    a = torch.nn.functional.gelu(z)
    y = x + a
    return y


def backward(x, W, b, z, a, y):
    "a.grad = y.grad"
    a.grad = y.grad

    "x.grad += y.grad   (the skip connection)"
    x.grad += y.grad

    "z.grad = a.grad Φ(z)"
    z.grad = a.grad * 0.5 * (1 + torch.erf(z / math.sqrt(2)))

    "W.grad += xᵀ z.grad"
    W.grad += x.T @ z.grad

    "b.grad += Σ_n z.grad[n, :]"
    b.grad += z.grad.sum(0)

    "x.grad += z.grad Wᵀ"
    x.grad += z.grad @ W.T
