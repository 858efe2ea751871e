"""Problem 3: layer normalization with the activation fused in, and its backward by hand.

The quiz's forward, for one layer L[t, i] of T positions t and I neurons i:

    μ          = (1/TI) Σ_{t,i} L[t, i]
    σ          = sqrt((1/TI) Σ_{t,i} (L[t, i] − μ)² + eps)        (eps = 0 in the quiz)
    h[t, i]    = (L[t, i] − μ)/σ
    L̃[t, i]    = act(A[i] h[t, i] + B[i])

With G[t, i] = L̃.grad[t, i] act'(A[i] h[t, i] + B[i]) the backward is

    A.grad[i]  = Σ_t G[t, i] h[t, i]
    B.grad[i]  = Σ_t G[t, i]
    L.grad     = (1/σ) (G A − (1/TI) Σ_{t,i} G A − h (1/TI) Σ_{t,i} G A h)

which holds for any eps >= 0 (eps enters only through σ). `scope="layer"` takes μ and σ over
the last two dims (T, I) of x, the quiz's definition; `scope="position"` over the last dim
only (T = 1 in the equations: the usual transformer layer norm). Leading dims index
independent layers; A.grad and B.grad also sum over them.

Layout of this file: argument checks, the float64 reference (plain autograd), the torch
forward and the hand backward (plain tensor code), the autograd.Function that runs either
them or the Triton kernels, the public function and the nn.Module.
"""

from __future__ import annotations

import functools
from numbers import Integral
from typing import Any

import torch
from torch import nn
from torch.autograd.function import once_differentiable

from infonorm._distributed import all_count, all_max, all_sum, check_group
from infonorm._validation import check_choice, check_dense, check_finite_scalar
from infonorm.activations import ACTIVATIONS

__all__ = [
    "BACKENDS",
    "SCOPES",
    "LayerNorm",
    "layer_norm",
    "layer_norm_backward",
    "layer_norm_reference",
]

SCOPES = ("layer", "position")
BACKENDS = ("auto", "torch", "triton")
_HALF = (torch.float16, torch.bfloat16)


# ---------------------------------------------------------------------------- argument checks


def _check_tensor(t: Any, name: str) -> None:
    if not isinstance(t, torch.Tensor):
        raise TypeError(f"{name} must be a torch.Tensor, got {type(t).__name__}")
    if not t.is_floating_point():
        raise TypeError(f"{name} must be a floating-point tensor, got dtype {t.dtype}")
    check_dense(t, name)


def _check_arguments(
    x: Any, A: Any, B: Any, *, scope: Any, activation: Any, eps: Any, group: Any = None
) -> float:
    """Every check on the forward's arguments, before any work; returns eps as a float.

    With a group, this rank's slice of a layer may be empty (T = 0 here), and a zero
    variance can only be told once the statistics are summed over the ranks.
    """
    check_choice(scope, "scope", SCOPES)
    check_choice(activation, "activation", tuple(ACTIVATIONS))
    eps = check_finite_scalar(eps, "eps", minimum=0.0)
    _check_tensor(x, "x")
    if scope == "layer" and x.dim() < 2:
        raise ValueError(
            f"x must have at least 2 dims (..., T, I) for scope='layer', got shape {tuple(x.shape)}"
        )
    if x.dim() < 1:
        raise ValueError("x must have at least 1 dim (..., I) for scope='position', got a scalar")
    features = x.shape[-1]
    for name, p in (("A", A), ("B", B)):
        _check_tensor(p, name)
        if p.shape != (features,):
            raise ValueError(
                f"{name} must have shape ({features},), one entry per neuron i of x's last dim, "
                f"got shape {tuple(p.shape)}"
            )
        if p.device != x.device:
            raise ValueError(f"{name} is on {p.device} but x is on {x.device}: put both on one")
    sliced = group is not None and scope == "layer"
    normalized = x.shape[-1:] if sliced else (x.shape[-2:] if scope == "layer" else x.shape[-1:])
    if normalized.numel() == 0:
        raise ValueError(f"x has no elements to normalize over: shape {tuple(x.shape)}")
    # a meta tensor has a shape but no values: nothing to look at
    if eps == 0 and not sliced and x.device.type != "meta":
        _check_spread(x, scope)
    return eps


def _check_spread(x: torch.Tensor, scope: str) -> None:
    """With eps = 0 a constant layer has σ = 0, and h = (L − μ)/σ is undefined."""
    rows = _rows(x, scope).flatten(1)
    low, high = rows.amin(1), rows.amax(1)
    constant = (low == high).nonzero()
    if constant.numel():
        where = "layer" if scope == "layer" else "position"
        raise ValueError(
            f"eps=0 but {where} {constant[0].item()} of x (flattened leading dims) has all values "
            "equal: σ = 0 there; pass eps > 0"
        )


def _check_dy(dy: Any, x: torch.Tensor) -> None:
    _check_tensor(dy, "dy")
    if dy.shape != x.shape:
        raise ValueError(f"dy must have x's shape {tuple(x.shape)}, got {tuple(dy.shape)}")
    if dy.device != x.device:
        raise ValueError(f"dy is on {dy.device} but x is on {x.device}: put both on one")


# ---------------------------------------------------------------------------- shapes and dtypes


def _rows(x: torch.Tensor, scope: str) -> torch.Tensor:
    """x as (R, T, I), statistics over the last two dims: R layers of (T, I) for scope
    "layer", R positions with T = 1 for scope "position"."""
    T = x.shape[-2] if scope == "layer" else 1
    # R spelled out: -1 cannot be inferred when T = 0 (an empty slice of a sharded layer)
    return x.reshape(_statistics_shape(x, scope).numel(), T, x.shape[-1])


def _statistics_shape(x: torch.Tensor, scope: str) -> torch.Size:
    return x.shape[:-2] if scope == "layer" else x.shape[:-1]


def _compute_dtype(x: torch.Tensor) -> torch.dtype:
    """float32 for half-precision inputs (statistics and sums lose too much in 8-bit mantissas)."""
    return torch.float32 if x.dtype in _HALF else x.dtype


# ---------------------------------------------------------------------------- float64 reference


def layer_norm_reference(
    x: torch.Tensor,
    A: torch.Tensor,
    B: torch.Tensor,
    *,
    scope: str = "layer",
    activation: str = "relu",
    eps: float = 1e-5,
    dtype: torch.dtype = torch.float64,
) -> torch.Tensor:
    """The quiz's forward as plain torch ops, computed in `dtype`, differentiable by autograd.

    The independent reference for tests and claims (float64, torch's own activation), and
    the "autograd composite" peer of the benchmark (float32). Returns a `dtype` tensor.
    """
    eps = _check_arguments(x, A, B, scope=scope, activation=activation, eps=eps)
    dims = (-2, -1) if scope == "layer" else (-1,)
    L, A, B = x.to(dtype), A.to(dtype), B.to(dtype)
    # μ = (1/TI) Σ_{t,i} L[t, i]
    mu = L.mean(dims, keepdim=True)
    # σ = sqrt((1/TI) Σ_{t,i} (L[t, i] − μ)² + eps)
    sigma = (L - mu).square().mean(dims, keepdim=True).add(eps).sqrt()
    # L̃[t, i] = act(A[i] (L[t, i] − μ)/σ + B[i])
    return ACTIVATIONS[activation].forward(A * (L - mu) / sigma + B)


# ---------------------------------------------------------------------------- torch forward


def _statistics(
    X: torch.Tensor, scope: str, eps: float, group: Any = None
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """(μ, 1/σ, (L − μ)/s, s/σ): the statistics, each of shape (R, 1, 1), and L − μ divided
    by s = max_{t,i} |L[t, i] − μ| as a new contiguous tensor of X's shape.

    Dividing by s keeps Σ ((L − μ)/s)² within [1, TI], so σ is right at any scale of x:
    (L − μ)² itself overflows float32 beyond |x| ≈ 1e19 and underflows below 1e-19.
    With a process group, X holds this rank's slice of each layer along t, and every sum
    and maximum runs over the slices of all ranks.
    """
    L = _rows(X, scope)
    N = all_count(L.shape[1] * L.shape[2], group, X.device)
    # μ = (1/TI) Σ_{t,i} L[t, i]
    mu = all_sum(L.sum((1, 2), keepdim=True), group).div_(N)
    shape = _statistics_shape(X, scope)
    # L − μ in X's shape (μ broadcast over the normalized dims), contiguous so that its rows
    # are views of it
    centered = X.contiguous() - mu.view(*shape, *[1] * (X.dim() - len(shape)))
    rows = _rows(centered, scope)
    # s = max_{t,i} |L[t, i] − μ|, 1 for a constant layer
    s = all_max(_largest_magnitude(rows), group)
    if group is not None and eps == 0 and not bool(s.all()):
        raise ValueError("eps=0 but a layer of x has all values equal across the group: σ = 0")
    s = torch.where(s > 0, s, torch.ones_like(s))
    rows.div_(s)
    # s/σ = ((1/TI) Σ_{t,i} ((L[t, i] − μ)/s)² + eps/s²)^(−1/2), the sum of squares as a norm²
    # (eps/s/s rather than eps/s²: s² may underflow to 0, and eps = 0 must stay 0)
    sum_squares = torch.linalg.vector_norm(rows, dim=(1, 2), keepdim=True).square_()
    s_rstd = all_sum(sum_squares, group).div_(N).add_(eps / s / s).rsqrt_()
    # rstd = 1/σ = (s/σ)/s
    return mu, s_rstd / s, centered, s_rstd


def _largest_magnitude(rows: torch.Tensor) -> torch.Tensor:
    """max_{t,i} |rows[r, t, i]| as (R, 1, 1); 0 for an empty slice."""
    if rows.shape[1] == 0:
        return rows.new_zeros(rows.shape[0], 1, 1)
    # two plain reductions: torch's ord=inf norm and aminmax are far slower on CPU
    return torch.maximum(rows.amax((1, 2), keepdim=True), rows.amin((1, 2), keepdim=True).neg_())


def _scale_by_A_over_sigma_(t: torch.Tensor, A: torch.Tensor, rstd: torch.Tensor) -> torch.Tensor:
    """t[r, t, i] · A[i]/σ[r], in place."""
    if t.shape[1] > 1:
        # one pass with the (R, 1, I) factor A/σ, small next to t when T > 1
        return t.mul_(A * rstd)
    # with T = 1 that factor is as large as t itself: two in-place passes cost less
    return t.mul_(rstd).mul_(A)


def _sum_over_t(t: torch.Tensor) -> torch.Tensor:
    """Σ_t of t shaped (R, T, I), as (R, I)."""
    # with T = 1 (scope "position") there is nothing to add, and sum(1) would copy t
    return t.squeeze(1) if t.shape[1] == 1 else t.sum(1)


def _forward(
    x: torch.Tensor,
    A: torch.Tensor,
    B: torch.Tensor,
    *,
    scope: str,
    activation: str,
    eps: float,
    group: Any = None,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(L̃, μ, 1/σ) by torch ops; the statistics have shape x.shape[:-2] ("layer") or
    x.shape[:-1] ("position"), in float32 for half-precision x."""
    dtype = _compute_dtype(x)
    A, B = A.to(dtype), B.to(dtype)
    mu, rstd, centered, s_rstd = _statistics(x.to(dtype), scope, eps, group)
    # z = A[i] h[t, i] + B[i] with h = ((L − μ)/s)(s/σ), built in place in the buffer of (L − μ)/s
    _scale_by_A_over_sigma_(_rows(centered, scope), A, s_rstd).add_(B)
    # L̃ = act(z), on the buffer itself: a view of it returned from autograd.Function could not
    # be modified in place by the caller
    y = ACTIVATIONS[activation].forward_(centered)
    shape = _statistics_shape(x, scope)
    return y.to(x.dtype), mu.reshape(shape), rstd.reshape(shape)


# ---------------------------------------------------------------------------- hand backward


def _backward(
    dy: torch.Tensor,
    x: torch.Tensor,
    A: torch.Tensor,
    B: torch.Tensor,
    mean: torch.Tensor,
    rstd: torch.Tensor,
    *,
    scope: str,
    activation: str,
    group: Any = None,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(L.grad, A.grad, B.grad) from L̃.grad = dy and the forward's saved μ and 1/σ.

    Plain tensor code, no autograd: h and z are recomputed from x rather than saved, so
    the forward keeps only x and two numbers per layer. With a process group the two sums
    over (t, i) run over every rank's slice; A.grad and B.grad are this rank's part.
    """
    dtype, dA_dtype, dB_dtype = _compute_dtype(x), A.dtype, B.dtype
    L, dY = _rows(x, scope).to(dtype), _rows(dy, scope).to(dtype)
    A, B = A.to(dtype), B.to(dtype)
    N = all_count(L.shape[1] * L.shape[2], group, x.device)
    mu, rstd = mean.reshape(-1, 1, 1).to(dtype), rstd.reshape(-1, 1, 1).to(dtype)
    # h[t, i] = (L[t, i] − μ)/σ
    h = (L - mu).mul_(rstd)
    # G[t, i] = L̃.grad[t, i] act'(A[i] h[t, i] + B[i])
    G = ACTIVATIONS[activation].derivative_(torch.mul(h, A).add_(B)).mul_(dY)
    # Σ_t G[t, i], per layer
    sum_G = _sum_over_t(G)
    # B.grad[i] = Σ_t G[t, i], summed over the layers too (one B for all)
    dB = sum_G.sum(0)
    # G h, in h's buffer (no new tensor of x's size): the last step reads L rather than h
    sum_Gh = _sum_over_t(h.mul_(G))
    # A.grad[i] = Σ_t G[t, i] h[t, i], summed over the layers too
    dA = sum_Gh.sum(0)
    # Σ_{t,i} G A and Σ_{t,i} G A h, per layer (over every rank's slice: one all-reduce)
    sum_GA, sum_GAh = all_sum(torch.stack([sum_G @ A, sum_Gh @ A]), group).view(2, -1, 1, 1)
    # L.grad = (1/σ)(G A − Σ G A/TI − h Σ G A h/TI), and with h = (L − μ)/σ and
    # c = Σ G A h/(TI σ):  L.grad = (1/σ)(G A − c L + (c μ − Σ G A/TI)), in G's buffer.
    # The factor 1/σ comes last: (1/σ)² would overflow float32 for a spread below 1e-19.
    c = sum_GAh * rstd / N
    dx = G.mul_(A).addcmul_(L, c, value=-1).add_(c * mu - sum_GA / N).mul_(rstd)
    return dx.to(x.dtype).reshape(x.shape), dA.to(dA_dtype), dB.to(dB_dtype)


def layer_norm_backward(
    dy: torch.Tensor,
    x: torch.Tensor,
    A: torch.Tensor,
    B: torch.Tensor,
    *,
    scope: str,
    activation: str,
    eps: float,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(L.grad, A.grad, B.grad) of `layer_norm` given L̃.grad = dy, by the hand equations."""
    eps = _check_arguments(x, A, B, scope=scope, activation=activation, eps=eps)
    _check_dy(dy, x)
    mu, rstd, _, _ = _statistics(x.to(_compute_dtype(x)), scope, eps)
    return _backward(dy, x, A, B, mu, rstd, scope=scope, activation=activation)


# ---------------------------------------------------------------------------- autograd


def _resolve(backend: str, x: torch.Tensor) -> str:
    """Backend "auto" is Triton for CUDA tensors of 16- and 32-bit floats when triton
    imports (the kernels keep float32 statistics: float64 stays on torch), torch otherwise."""
    if backend != "auto":
        return backend
    kernel_dtype = x.dtype in (torch.float32, torch.float16, torch.bfloat16)
    return "triton" if x.is_cuda and kernel_dtype and _triton_imports() else "torch"


@functools.cache
def _triton_imports() -> bool:
    try:
        import triton  # noqa: F401
    except ImportError:
        return False
    return True


def _implementation(backend: str, group: Any):
    """The (forward, backward) pair of `backend`, both with the same signatures."""
    if backend == "torch":
        return functools.partial(_forward, group=group), functools.partial(_backward, group=group)
    # imported here so that CPU-only code never imports triton
    from infonorm.kernels import layer_norm as kernels

    return kernels.forward, kernels.backward


class _LayerNormFunction(torch.autograd.Function):
    """Saves x and the per-layer μ, 1/σ only; h and z are recomputed in backward."""

    @staticmethod
    def forward(x, A, B, scope, activation, eps, backend, group):
        forward, _ = _implementation(backend, group)
        return forward(x, A, B, scope=scope, activation=activation, eps=eps)

    @staticmethod
    def setup_context(ctx, inputs, output):
        x, A, B, scope, activation, _eps, backend, group = inputs
        _y, mean, rstd = output
        ctx.save_for_backward(x, A, B, mean, rstd)
        ctx.mark_non_differentiable(mean, rstd)
        ctx.scope, ctx.activation, ctx.backend, ctx.group = scope, activation, backend, group

    @staticmethod
    @once_differentiable
    def backward(ctx, dy, _dmean, _drstd):
        x, A, B, mean, rstd = ctx.saved_tensors
        _, backward = _implementation(ctx.backend, ctx.group)
        grads = backward(dy, x, A, B, mean, rstd, scope=ctx.scope, activation=ctx.activation)
        dx, dA, dB = (
            g if needed else None for g, needed in zip(grads, ctx.needs_input_grad[:3], strict=True)
        )
        return dx, dA, dB, None, None, None, None, None


# ---------------------------------------------------------------------------- public API


def layer_norm(
    x: torch.Tensor,
    A: torch.Tensor,
    B: torch.Tensor,
    *,
    scope: str = "layer",
    activation: str = "relu",
    eps: float = 1e-5,
    backend: str = "auto",
    group: Any = None,
) -> torch.Tensor:
    """L̃ = act(A (L − μ)/σ + B), differentiable in x, A and B by the hand backward.

    scope="layer": x is (..., T, I) and μ, σ are taken over the last two dims (the quiz);
    scope="position": x is (..., I) and μ, σ over the last dim. σ = sqrt(var + eps) with the
    biased (1/N) variance; eps=0 is exactly the quiz. activation is one of
    `infonorm.activations.ACTIVATIONS`. backend: "torch", "triton", or "auto" (Triton for
    CUDA tensors when triton imports). Statistics are float32 for half-precision x; the
    output has x's dtype.

    group: a torch.distributed process group across which each layer is split along t
    (sequence parallelism, scope="layer"): x is this rank's slice (..., T_r, I), and μ, σ
    and the backward's two sums over (t, i) are all-reduced, so that the output and
    x's gradient equal those of the unsplit layer. A.grad and B.grad are this rank's part
    of the sum over t (DDP, or an all-reduce, adds the parts up). Every rank must call
    forward and backward. Per-position statistics (scope="position") need no
    communication: the group is then only checked. With a group the torch backend runs.
    """
    group = check_group(group)
    eps = _check_arguments(x, A, B, scope=scope, activation=activation, eps=eps, group=group)
    check_choice(backend, "backend", BACKENDS)
    if group is not None and backend == "triton":
        raise ValueError("backend='triton' runs one process; with a group use 'torch' or 'auto'")
    sliced = group if scope == "layer" else None
    resolved = "torch" if sliced is not None else _resolve(backend, x)
    y, _, _ = _LayerNormFunction.apply(x, A, B, scope, activation, eps, resolved, sliced)
    return y


class LayerNorm(nn.Module):
    """Layer normalization followed by an activation: act(A (x − μ)/σ + B).

    A (ones at init) and B (zeros at init) have one entry per feature of x's last dim.
    """

    def __init__(
        self,
        num_features: int,
        *,
        scope: str = "layer",
        activation: str = "relu",
        eps: float = 1e-5,
        device: torch.device | str | None = None,
        dtype: torch.dtype | None = None,
    ) -> None:
        super().__init__()
        if isinstance(num_features, bool) or not isinstance(num_features, Integral):
            raise TypeError(f"num_features must be an int, got {type(num_features).__name__}")
        num_features = int(num_features)
        if num_features < 1:
            raise ValueError(f"num_features must be >= 1, got {num_features}")
        check_choice(scope, "scope", SCOPES)
        check_choice(activation, "activation", tuple(ACTIVATIONS))
        if dtype is not None and not (isinstance(dtype, torch.dtype) and dtype.is_floating_point):
            raise TypeError(f"dtype must be a floating-point torch.dtype, got {dtype!r}")
        self.num_features = num_features
        self.scope = scope
        self.activation = activation
        self.eps = check_finite_scalar(eps, "eps", minimum=0.0)
        self.A = nn.Parameter(torch.empty(num_features, device=device, dtype=dtype))
        self.B = nn.Parameter(torch.empty(num_features, device=device, dtype=dtype))
        self.reset_parameters()

    def reset_parameters(self) -> None:
        nn.init.ones_(self.A)
        nn.init.zeros_(self.B)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return layer_norm(
            x, self.A, self.B, scope=self.scope, activation=self.activation, eps=self.eps
        )

    def extra_repr(self) -> str:
        return (
            f"{self.num_features}, scope={self.scope!r}, activation={self.activation!r}, "
            f"eps={self.eps}"
        )
