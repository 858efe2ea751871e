r"""Quiz 1, Problem 3: layer normalization, the combined backpropagation equations as printed.

Here μ, σ and h are abbreviations (no line mentions μ.grad or σ.grad), so the graph is
L, A, B → L̃ and each line claims the whole of A.grad, B.grad, L.grad. `sigma` is the
standard deviation, `relu` and `relu_prime` the activation σ and σ'; Lt is L̃. Check it:
infonorm check-backprop layer_norm_combined.py
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
    r"A.grad[i] += \sum_t \tilde{L}.grad[t, i] \sigma'(A[i]h[t, i] + B[i]) h[t, i]"
    A.grad += sum_over("t", Lt.grad * relu_prime(A * h + B) * h)

    r"B.grad[i] += \sum_t \tilde{L}.grad[t, i] \sigma'(A[i]h[t, i] + B[i])"
    B.grad += sum_over("t", Lt.grad * relu_prime(A * h + B))

    (
        r"L.grad[t, i] += \frac{1}{\sigma} \left(\tilde{L}.grad[t, i] \sigma'(A[i]h[t, i] + B[i]) "
        r"A[i] - \frac{\sum_{t,i} \tilde{L}.grad[t, i] \sigma'(A[i]h[t, i] + B[i]) A[i]}{TI} "
        r"- h[t, i] \frac{\sum_{t,i} \tilde{L}.grad[t, i] \sigma'(A[i]h[t, i] + B[i]) A[i] "
        r"h[t, i]}{TI} \right)"
    )
    L.grad += (
        Lt.grad * relu_prime(A * h + B) * A
        - sum_over("t i", Lt.grad * relu_prime(A * h + B) * A) / (T * I)
        - h * sum_over("t i", Lt.grad * relu_prime(A * h + B) * A * h) / (T * I)
    ) / sigma
