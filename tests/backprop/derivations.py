"""A small derivation file that the checker's tests vary: a tanh of a weighted sum."""

TANH = """import torch
from infonorm.backprop import sum_over

N = 5
axes = {"n": N}
inputs = {"x": "n", "w": "n"}


def forward(x, w):
    s = sum_over("n", w * x)
    y = torch.tanh(s)
    return y


def backward(x, w, s, y):
    "s.grad = y.grad (1 − y²)"
    s.grad = y.grad * (1 - y**2)
    "w.grad += s.grad x"
    w.grad += s.grad * x
    "x.grad += s.grad w"
    x.grad += s.grad * w
"""
