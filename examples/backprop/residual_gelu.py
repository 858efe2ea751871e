"""A residual block y = x + GELU(x W + b), backpropagated by hand with matrix products.

Shapes are given as plain tuples here (no named axes); GELU is torch's exact (erf) form,
GELU'(z) = Φ(z) + z φ(z) with Φ, φ the standard normal CDF and density.
Check it: infonorm check-backprop residual_gelu.py
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

    "z.grad = a.grad (Φ(z) + z φ(z))"
    z.grad = a.grad * (
        0.5 * (1 + torch.erf(z / math.sqrt(2)))
        + z * torch.exp(-(z**2) / 2) / math.sqrt(2 * math.pi)
    )

    "W.grad += xᵀ z.grad"
    W.grad += x.T @ z.grad

    "b.grad += Σ_n z.grad[n, :]"
    b.grad += z.grad.sum(0)

    "x.grad += z.grad Wᵀ"
    x.grad += z.grad @ W.T
