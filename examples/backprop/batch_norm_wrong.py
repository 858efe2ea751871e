"""Batch normalization, with one deliberately wrong line.

Line 8 drops the 2 of ∂var/∂x = 2(x − μ)/N. The checker refutes line 8, and the lines run
in order then miss x.grad. Check it: infonorm check-backprop batch_norm_wrong.py
"""

from infonorm.backprop import sum_over

N, D = 7, 3
eps = 1e-5
axes = {"n": N, "d": D}
inputs = {"x": "n d", "gamma": "d", "beta": "d"}


def forward(x, gamma, beta):
    mu = sum_over("n", x) / N
    var = sum_over("n", (x - mu) ** 2) / N
    xhat = (x - mu) / (var + eps).sqrt()
    y = gamma * xhat + beta
    return y


def backward(x, gamma, beta, mu, var, xhat, y):
    "gamma.grad[d] += Σ_n y.grad[n, d] xhat[n, d]"
    gamma.grad += sum_over("n", y.grad * xhat)

    "beta.grad[d] += Σ_n y.grad[n, d]"
    beta.grad += sum_over("n", y.grad)

    "xhat.grad[n, d] = y.grad[n, d] gamma[d]"
    xhat.grad = y.grad * gamma

    "var.grad[d] = −½ (var[d] + ε)^(−3/2) Σ_n xhat.grad[n, d] (x[n, d] − μ[d])"
    var.grad = -0.5 * (var + eps) ** -1.5 * sum_over("n", xhat.grad * (x - mu))

    "μ.grad[d] = −(var[d] + ε)^(−1/2) Σ_n xhat.grad[n, d]"
    mu.grad = -sum_over("n", xhat.grad) / (var + eps).sqrt()

    "μ.grad[d] += var.grad[d] (−2/N) Σ_n (x[n, d] − μ[d]) = 0"
    mu.grad += var.grad * -2 * sum_over("n", x - mu) / N
    assert var.grad * -2 * sum_over("n", x - mu) / N == 0

    "x.grad[n, d] += xhat.grad[n, d] / sqrt(var[d] + ε)"
    x.grad += xhat.grad / (var + eps).sqrt()

    "x.grad[n, d] += var.grad[d] (x[n, d] − μ[d]) / N"
    x.grad += var.grad * (x - mu) / N

    "x.grad[n, d] += μ.grad[d] / N"
    x.grad += mu.grad / N
