r"""Quiz 1, Problem 3: layer normalization over a whole layer, backpropagation as printed.

Each string is a line of the solution as printed (LaTeX); the statement under it is the same
line in torch. The quiz writes σ for both the standard deviation and the activation: here
`sigma` is the standard deviation and the activation is ReLU, `relu` and `relu_prime` (σ and
σ'). Lt is L̃. Check it: infonorm check-backprop layer_norm_printed.py
"""

from infonorm.backprop import relu, relu_prime, sum_over

T, I = 8, 6  # noqa: E741 (the quiz's names)
axes = {"t": T, "i": I}
inputs = {"L": "t i", "A": "i", "B": "i"}


def forward(L, A, B):
    mu = sum_over("t i", L) / (T * I)
    sigma = (sum_over("t i", (L - mu) ** 2) / (T * I)).sqrt()
    h = (L - mu) / sigma
    Lt = relu(A * h + B)
    return Lt


def backward(L, A, B, mu, sigma, h, Lt):
    (
        r"A.grad[i] += \sum_t \tilde{L}.grad[t, i] \sigma'(A[i]h[t, i] + B[i]) "
        r"\frac{L[t, i] - \mu}{\sigma}"
    )
    A.grad += sum_over("t", Lt.grad * relu_prime(A * h + B) * (L - mu) / sigma)

    r"B.grad[i] += \sum_t \tilde{L}.grad[t, i] \sigma'(A[i]h[t, i] + B[i])"
    B.grad += sum_over("t", Lt.grad * relu_prime(A * h + B))

    (
        r"\sigma.grad = \sum_{t,i} \tilde{L}.grad[t, i] \sigma'(h[t, i]) "
        r"\frac{A[i](L[t, i] - \mu)}{\sigma^2}"
    )
    sigma.grad = sum_over("t i", Lt.grad * relu_prime(h) * A * (L - mu) / sigma**2)

    (
        r"\mu.grad = \sum_{t,i} \tilde{L}.grad[t, i] \sigma'(A[i]h[t, i] + B[i]) "
        r"\frac{A[i]}{\sigma}"
    )
    mu.grad = sum_over("t i", Lt.grad * relu_prime(A * h + B) * A / sigma)

    r"L.grad[t, i] += \tilde{L}.grad[t, i] \sigma'(A[i]h[t, i] + B[i]) \frac{A[i]}{\sigma}"
    L.grad += Lt.grad * relu_prime(A * h + B) * A / sigma

    r"\mu.grad += \sum_{t,i} \sigma.grad \frac{1}{TI\sigma} (\mu - L[t, i]) = 0"
    mu.grad += sum_over("t i", sigma.grad / (T * I * sigma) * (mu - L))
    assert sum_over("t i", sigma.grad / (T * I * sigma) * (mu - L)) == 0

    r"L.grad[t, i] += \sigma.grad \frac{1}{TI\sigma} (L[t, i] - \mu)"
    L.grad += sigma.grad / (T * I * sigma) * (L - mu)

    r"L.grad[t, i] += \mu.grad \frac{1}{TI}"
    L.grad += mu.grad / (T * I)
