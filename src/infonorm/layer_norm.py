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

Whole-layer statistics mix positions. In a causal model every position's output then
depends on later tokens: in a 2-layer causal transformer (d = 32, 16 tokens, every layer
norm swapped by `replace_layer_norms`), changing only the last token moved the logits of
earlier positions by 0.011 to 0.076 (five random initializations) with scope="layer", and
by exactly 0 with scope="position". On (B, I) or (T, B, I) inputs the (T, I) slice that is
normalized spans the batch, so examples leak into each other.

Backends, one computation each (`backend=`):

- "torch": the torch forward and the hand backward below, in plain tensor code. Exact at
  any scale of x (the statistics are taken on x − μ rescaled by its largest magnitude).
  What the claims check; saves x and two numbers per layer for backward.
- "aten" (scope="position"): ATen's fused layer norm (`torch.native_layer_norm`, the kernel
  behind `torch.nn.LayerNorm`) followed by torch's activation, differentiated by torch's own
  backward formulas: the arithmetic of `nn.LayerNorm` + the activation module, minus one
  buffer. ATen accumulates the variance in float32, which fails when σ leaves about
  [1e-18, 1e18] (all 0 or NaN from 3e18 on, off by 7e-4 at 1e-21 with eps = 0); on CPU each
  call reads the R values of 1/σ (no device to wait for) and recomputes inputs with σ
  outside [1e-16, 1e16] with "torch".
- "triton": the fused kernels of `infonorm.kernels.layer_norm` (CUDA).
- "auto": "triton" on CUDA where the activation table has a kernel, else "aten" for
  scope="position" and "torch" for scope="layer".

The operator `infonorm::layer_norm` (with `infonorm::layer_norm_backward`) is registered
with torch.library, so torch.compile and torch.export capture each as one node and call
the backend's own code. In eager mode on CPU the "aten" backend runs without the operator:
the same ATen calls with torch's autograd, sparing the operator's Python dispatch (tens of
µs per call). Second derivatives (create_graph=True, `torch.autograd.functional.hessian`)
and torch.func transforms (vmap, grad, jacrev, jacfwd, hessian, jvp) run a composite of
torch ops with the same equations, which autograd and torch.func differentiate to any order.

Values are read on the host only where no device waits for them: on CPU tensors (the
"aten" range check and, with eps = 0, the refusal of a constant layer read the R values of
1/σ), and for eps = 0 on CUDA in eager mode (to name the constant layer). The CUDA paths
with eps > 0, and everything under torch.compile on CUDA, read nothing.

Layout of this file: types and argument checks, the float64 reference, the torch forward
and the hand backward, the ATen path and the composite, the operator and its autograd, the
process-group path, the public function, the nn.Module and the model-wide swap.
"""

# I is the quiz's name for the number of neurons per position (ambiguous to E741 only)
# ruff: noqa: E741

from __future__ import annotations

import functools
import math
from collections.abc import Iterable
from numbers import Integral
from typing import Any, Literal, get_args

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.autograd import forward_ad

from infonorm._distributed import all_count, all_max, all_sum, check_group
from infonorm._validation import check_choice, check_dense, check_finite_scalar
from infonorm.activations import ACTIVATIONS, ActivationName, backends_of

__all__ = [
    "BACKENDS",
    "SCOPES",
    "Backend",
    "LayerNorm",
    "Scope",
    "layer_norm",
    "layer_norm_backward",
    "layer_norm_reference",
    "replace_layer_norms",
]

Scope = Literal["layer", "position"]
Backend = Literal["auto", "torch", "aten", "triton"]
SCOPES: tuple[Scope, ...] = get_args(Scope)
BACKENDS: tuple[Backend, ...] = get_args(Backend)
_HALF = (torch.float16, torch.bfloat16)
# the dtypes the Triton kernels take (float64 stays on torch); infonorm.kernels reads it here
_KERNEL_DTYPES = (torch.float32, torch.bfloat16, torch.float16)
_ACTIVATION_NAMES = tuple(ACTIVATIONS)


# ---------------------------------------------------------------------------- argument checks


def _check_tensor(t: Any, name: str) -> None:
    if not isinstance(t, torch.Tensor):
        raise TypeError(f"{name} must be a torch.Tensor, got {type(t).__name__}")
    if not t.is_floating_point():
        raise TypeError(f"{name} must be a floating-point tensor, got dtype {t.dtype}")
    if t.layout is not torch.strided:
        check_dense(t, name)


def check_arguments(
    x: Any,
    A: Any,
    B: Any,
    *,
    scope: Any,
    activation: Any,
    eps: Any = None,
    sliced: bool = False,
) -> float | None:
    """The op's contract on its arguments, checked before any work (no tensor op runs);
    returns eps as a float (None if not given). Shared by every backend and the kernels.

    `sliced`: x is one rank's slice of layers split along t (a process group), which may be
    empty (T = 0 here).
    """
    check_choice(scope, "scope", SCOPES)
    check_choice(activation, "activation", _ACTIVATION_NAMES)
    if eps is not None:
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
        # (ints compared, not sizes: torch.Size against a tuple takes a slow path)
        if p.dim() != 1 or p.shape[0] != features:
            raise ValueError(
                f"{name} must have shape ({features},), one entry per neuron i of x's last dim, "
                f"got shape {tuple(p.shape)}"
            )
        if p.device != x.device:
            raise ValueError(f"{name} is on {p.device} but x is on {x.device}: put both on one")
    normalized = x.shape[-1:] if sliced or scope == "position" else x.shape[-2:]
    if math.prod(normalized) == 0:
        raise ValueError(f"x has no elements to normalize over: shape {tuple(x.shape)}")
    if eps is not None:
        _check_eps_survives(eps, _compute_dtype(x))
    return eps


def _smallest_subnormal(dtype: torch.dtype) -> float:
    finfo = torch.finfo(dtype)
    # 2^(−mantissa bits) below the smallest normal
    return finfo.tiny * finfo.eps


# a plain dict rather than a cache: torch.compile traces this check
_SMALLEST_SUBNORMAL = {d: _smallest_subnormal(d) for d in (torch.float32, torch.float64)}


def _check_eps_survives(eps: float, dtype: torch.dtype) -> None:
    """A positive eps that rounds to 0 in the statistics' dtype would be eps = 0 in disguise,
    without its check of constant layers (a constant layer would give NaN)."""
    smallest = _SMALLEST_SUBNORMAL.get(dtype) or _smallest_subnormal(dtype)
    if 0 < eps <= smallest / 2:
        raise ValueError(
            f"eps={eps!r} is 0 in {dtype}, the precision of the statistics: pass eps=0 (the "
            f"quiz's σ, which refuses constant layers) or at least {smallest:.3g}"
        )


def _check_backend(backend: Any, scope: str, activation: str, group: Any) -> None:
    check_choice(backend, "backend", BACKENDS)
    if backend == "auto":
        return
    if group is not None and backend == "triton":
        raise ValueError("backend='triton' runs one process; with a group use 'torch' or 'auto'")
    if backend == "aten" and scope != "position":
        raise ValueError(
            "backend='aten' computes per-position statistics only (ATen's layer norm takes "
            "weights of the normalized shape, (T, I) here); use 'torch' for scope='layer'"
        )
    if backend not in backends_of(activation):
        raise ValueError(f"backend={backend!r} has no fused form of activation={activation!r}")


def _check_dy(dy: Any, x: torch.Tensor) -> None:
    _check_tensor(dy, "dy")
    if dy.shape != x.shape:
        raise ValueError(f"dy must have x's shape {tuple(x.shape)}, got {tuple(dy.shape)}")
    if dy.device != x.device:
        raise ValueError(f"dy is on {dy.device} but x is on {x.device}: put both on one")


def _refuse_constant_layers(rstd: torch.Tensor, scope: str) -> None:
    """With eps = 0 a constant layer has σ = 0 (1/σ = inf), and h = (L − μ)/σ is undefined.

    Reads the R values of 1/σ on the host: called on CPU tensors, on CUDA only in eager mode
    and only for eps = 0 (the quiz's σ), never under torch.compile.
    """
    constant = torch.isinf(rstd).flatten().nonzero()
    if constant.numel():
        where = "layer" if scope == "layer" else "position"
        raise ValueError(
            f"eps=0 but {where} {constant[0].item()} of x (flattened leading dims) has all values "
            "equal: σ = 0 there; pass eps > 0"
        )


# ---------------------------------------------------------------------------- shapes and dtypes


def _statistics_shape(x: torch.Tensor, scope: str) -> torch.Size:
    """The shape of μ and 1/σ: one per layer (scope "layer") or per position."""
    return x.shape[:-2] if scope == "layer" else x.shape[:-1]


def _as_rows(t: torch.Tensor, scope: str) -> tuple[torch.Tensor, int, int, int]:
    """t as (R, T, I), statistics over the last two dims: R layers of (T, I) for scope
    "layer", R positions with T = 1 for scope "position"; and R, T, I.

    A view whenever the leading dims merge into one stride (contiguous tensors, slices along
    the normalized dims, transposes among them, …), otherwise a copy.
    """
    I = t.shape[-1]
    T = t.shape[-2] if scope == "layer" else 1
    # R spelled out: -1 cannot be inferred when T = 0 (an empty slice of a sharded layer)
    R = math.prod(_statistics_shape(t, scope))
    return t.reshape(R, T, I), R, T, I


def _rows(t: torch.Tensor, scope: str) -> torch.Tensor:
    return _as_rows(t, scope)[0]


def _compute_dtype(x: torch.Tensor) -> torch.dtype:
    """float32 for half-precision inputs (statistics and sums lose too much in 8-bit mantissas)."""
    return torch.float32 if x.dtype in _HALF else x.dtype


# ---------------------------------------------------------------------------- float64 reference


def layer_norm_reference(
    x: torch.Tensor,
    A: torch.Tensor,
    B: torch.Tensor,
    *,
    scope: Scope = "layer",
    activation: ActivationName = "relu",
    eps: float = 1e-5,
    dtype: torch.dtype = torch.float64,
) -> torch.Tensor:
    """The quiz's forward as plain torch ops, computed in `dtype`, differentiable by autograd.

    The independent reference for tests and claims (float64, torch's own activation), and
    the "autograd composite" peer of the benchmark (float32). Returns a `dtype` tensor.
    """
    eps = check_arguments(x, A, B, scope=scope, activation=activation, eps=eps)
    dims = (-2, -1) if scope == "layer" else (-1,)
    L, A, B = x.to(dtype), A.to(dtype), B.to(dtype)
    # μ = (1/TI) Σ_{t,i} L[t, i]
    mu = L.mean(dims, keepdim=True)
    # σ = sqrt((1/TI) Σ_{t,i} (L[t, i] − μ)² + eps)
    sigma = (L - mu).square().mean(dims, keepdim=True).add(eps).sqrt()
    if eps == 0 and sigma.device.type != "meta":
        _refuse_constant_layers(sigma.detach().reciprocal(), scope)
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
    # L̃ = act(z), on the buffer itself: a view of it returned from autograd could not be
    # modified in place by the caller
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
    scope: Scope,
    activation: ActivationName,
    eps: float,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(L.grad, A.grad, B.grad) of `layer_norm` given L̃.grad = dy, by the hand equations."""
    eps = check_arguments(x, A, B, scope=scope, activation=activation, eps=eps)
    _check_dy(dy, x)
    mu, rstd, _, _ = _statistics(x.to(_compute_dtype(x)), scope, eps)
    if eps == 0 and x.device.type != "meta":
        _refuse_constant_layers(rstd, scope)
    return _backward(dy, x, A, B, mu, rstd, scope=scope, activation=activation)


# ---------------------------------------------------------------------------- ATen path


def _aten_forward(
    x: torch.Tensor, A: torch.Tensor, B: torch.Tensor, *, activation: str, eps: float
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(L̃, μ, 1/σ) per position by ATen's fused layer norm, then the activation in z's own
    buffer; differentiable by torch's autograd (which then keeps x and, for relu, tanh and
    sigmoid, L̃, as nn.LayerNorm + the activation module do). μ and 1/σ have shape
    x.shape[:-1] + (1,)."""
    dtype = _compute_dtype(x)
    if x.dtype == A.dtype == B.dtype == dtype:
        L = x  # no conversions: this is the hot path of nn.LayerNorm-style use
    else:
        L, A, B = x.to(dtype), A.to(dtype), B.to(dtype)
    # z = A h + B with h = (L − μ)/σ, σ = sqrt(var + eps), and μ, 1/σ of shape (..., 1)
    z, mean, rstd = torch.native_layer_norm(L, L.shape[-1:], A, B, eps)
    # L̃ = act(z)
    y = ACTIVATIONS[activation].forward_(z)
    return (y if L is x else y.to(x.dtype)), mean, rstd


def _aten_rstd_range(dtype: torch.dtype) -> tuple[float, float]:
    """The 1/σ for which ATen's arithmetic is right: it accumulates Σ (L − μ)² in the
    compute dtype, so σ² must stay in the normal range with a factor N to spare (10⁶ here,
    10³ on σ). float32: σ from 1.1e-16 to 1.8e16 (measured right from 1e-18 to 1e18; from
    3e18 on the output is all 0 or NaN, at 1e-21 with eps = 0 it is off by 7e-4 and dx NaN)."""
    finfo = torch.finfo(dtype)
    return 1e3 * finfo.max**-0.5, 1e-3 * finfo.tiny**-0.5


_ATEN_RSTD_RANGE = {d: _aten_rstd_range(d) for d in (torch.float32, torch.float64)}


def _aten_handles(rstd: torch.Tensor, eps: float) -> bool:
    """Whether ATen's float arithmetic is right for these statistics. Reads rstd on the host
    for CPU tensors only (no device to wait for); elsewhere ATen is trusted as nn.LayerNorm
    is. A NaN (from non-finite x) sends the call to "torch", which keeps it to its layer."""
    if rstd.device.type != "cpu" or rstd.numel() == 0:
        return True
    low, high = _ATEN_RSTD_RANGE.get(rstd.dtype) or _aten_rstd_range(rstd.dtype)
    if eps * high * high >= 1:
        # 1/σ <= 1/sqrt(eps) <= high: only the lower bound can fail (one reduction)
        return rstd.min().item() >= low
    smallest, largest = torch.aminmax(rstd)
    return low <= smallest.item() and largest.item() <= high


def _aten_backward(
    dy: torch.Tensor,
    x: torch.Tensor,
    A: torch.Tensor,
    B: torch.Tensor,
    mean: torch.Tensor,
    rstd: torch.Tensor,
    *,
    activation: str,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(L.grad, A.grad, B.grad) per position: G = L̃.grad act'(z) by the hand act', then
    ATen's fused layer-norm backward of G (the operator saves x only, so z is rebuilt)."""
    dtype = _compute_dtype(x)
    L, dY, A_, B_ = x.to(dtype), dy.to(dtype), A.to(dtype), B.to(dtype)
    mu, r = mean.unsqueeze(-1).to(dtype), rstd.unsqueeze(-1).to(dtype)
    if activation == "identity":
        G = dY
    else:
        # z = A (L − μ)/σ + B, then G = L̃.grad act'(z) in z's buffer
        z = (L - mu).mul_(r).mul_(A_).add_(B_)
        G = ACTIVATIONS[activation].derivative_(z).mul_(dY)
    dx, dA, dB = torch.ops.aten.native_layer_norm_backward(
        G, L, L.shape[-1:], mu, r, A_, B_, [True, True, True]
    )
    return dx.to(x.dtype), dA.to(A.dtype), dB.to(B.dtype)


# ---------------------------------------------------------------------------- composite


def _composite(
    x: torch.Tensor, A: torch.Tensor, B: torch.Tensor, *, scope: str, activation: str, eps: float
) -> torch.Tensor:
    """L̃ as ATen's layer norm and torch's activation, out of place: what autograd and every
    torch.func transform differentiate to any order (second derivatives, vmap, jvp, …)."""
    dtype = _compute_dtype(x)
    L, A, B = x.to(dtype), A.to(dtype), B.to(dtype)
    if scope == "position":
        z = F.layer_norm(L, L.shape[-1:], A, B, eps)
    else:
        # z = A h + B with h normalized over the whole (T, I) layer
        z = torch.addcmul(B, F.layer_norm(L, L.shape[-2:], eps=eps), A)
    return ACTIVATIONS[activation].forward(z).to(x.dtype)


def _composite_gradients(
    dy: torch.Tensor,
    x: torch.Tensor,
    A: torch.Tensor,
    B: torch.Tensor,
    needs: tuple[bool, ...],
    *,
    scope: str,
    activation: str,
    eps: float,
) -> tuple[torch.Tensor | None, ...]:
    """(L.grad, A.grad, B.grad) as functions of dy, x, A and B that autograd can
    differentiate again: the composite's gradient with create_graph. The saved μ and 1/σ
    carry no dependence on x, so the statistics are rebuilt from x here."""
    with torch.enable_grad():
        wanted = [t for t, need in zip((x, A, B), needs, strict=True) if need]
        y = _composite(x, A, B, scope=scope, activation=activation, eps=eps)
        grads = iter(torch.autograd.grad(y, wanted, dy, create_graph=True))
    return tuple(next(grads) if need else None for need in needs)


def _differentiating_twice(*tensors: torch.Tensor) -> bool:
    """Inside a backward: autograd records it (create_graph=True) and something needs it."""
    return torch.is_grad_enabled() and any(t.requires_grad for t in tensors)


# ---------------------------------------------------------------------------- the operator


def _resolve(backend: str, x: torch.Tensor, scope: str, activation: str) -> str:
    """The backend that runs: "auto" is "triton" for CUDA tensors of the kernels' dtypes when
    the activation table has a kernel and triton imports, else "aten" per position and
    "torch" for whole layers. Decided from metadata only (device, dtype, names)."""
    if backend != "auto":
        if backend == "aten" and scope != "position":
            # only a direct call of the operator gets here (layer_norm checks it first)
            raise ValueError("backend='aten' computes per-position statistics only")
        return backend
    triton = "triton" in backends_of(activation) and x.dtype in _KERNEL_DTYPES
    if x.is_cuda and triton and _triton_imports():
        return "triton"
    if scope == "position" and "aten" in backends_of(activation):
        return "aten"
    return "torch"


@functools.cache
def _triton_imports() -> bool:
    try:
        import triton  # noqa: F401
    except ImportError:
        return False
    return True


def _kernels():
    # imported here so that CPU-only code never imports triton
    from infonorm.kernels import layer_norm as kernels

    return kernels


@torch.library.custom_op("infonorm::layer_norm", mutates_args=())
def _layer_norm_op(
    x: Tensor, A: Tensor, B: Tensor, scope: str, activation: str, eps: float, backend: str
) -> tuple[Tensor, Tensor, Tensor]:
    """(L̃, μ, 1/σ), the statistics of shape x.shape[:-2] ("layer") or x.shape[:-1]
    ("position"), float32 for half-precision x. Arguments are checked by `layer_norm`."""
    kw = {"activation": activation, "eps": eps}
    path = _resolve(backend, x, scope, activation)
    if path == "triton":
        y, mean, rstd = _kernels().forward(x, A, B, scope=scope, **kw)
    if path == "aten":
        y, mean, rstd = _aten_forward(x, A, B, **kw)
        mean, rstd = mean.view(x.shape[:-1]), rstd.view(x.shape[:-1])
        path = "aten" if _aten_handles(rstd, eps) else "torch"
    if path == "torch":
        y, mean, rstd = _forward(x, A, B, scope=scope, **kw)
    if eps == 0 and x.device.type == "cpu":
        _refuse_constant_layers(rstd, scope)
    return y, mean, rstd


@_layer_norm_op.register_fake
def _(x, A, B, scope, activation, eps, backend):
    shape, dtype = _statistics_shape(x, scope), _compute_dtype(x)
    return x.new_empty(x.shape), x.new_empty(shape, dtype=dtype), x.new_empty(shape, dtype=dtype)


@torch.library.custom_op("infonorm::layer_norm_backward", mutates_args=())
def _layer_norm_backward_op(
    dy: Tensor,
    x: Tensor,
    A: Tensor,
    B: Tensor,
    mean: Tensor,
    rstd: Tensor,
    scope: str,
    activation: str,
    backend: str,
) -> tuple[Tensor, Tensor, Tensor]:
    """(L.grad, A.grad, B.grad) of `infonorm::layer_norm` from L̃.grad = dy and its μ, 1/σ,
    by the backend its forward ran (the same choice, made again from the same inputs)."""
    path = _resolve(backend, x, scope, activation)
    if path == "triton":
        return _kernels().backward(dy, x, A, B, mean, rstd, scope=scope, activation=activation)
    if path == "aten" and _aten_handles(rstd, 0.0):
        return _aten_backward(dy, x, A, B, mean, rstd, activation=activation)
    return _backward(dy, x, A, B, mean, rstd, scope=scope, activation=activation)


@_layer_norm_backward_op.register_fake
def _(dy, x, A, B, mean, rstd, scope, activation, backend):
    return x.new_empty(x.shape), A.new_empty(A.shape), B.new_empty(B.shape)


def _setup_context(ctx, inputs, output) -> None:
    x, A, B, scope, activation, eps, backend = inputs
    _, mean, rstd = output
    # x and two numbers per layer: h and z are rebuilt in backward
    ctx.save_for_backward(x, A, B, mean, rstd)
    ctx.mark_non_differentiable(mean, rstd)
    ctx.scope, ctx.activation, ctx.eps, ctx.backend = scope, activation, eps, backend


def _op_backward(ctx, dy, _dmean, _drstd):
    x, A, B, mean, rstd = ctx.saved_tensors
    needs = tuple(ctx.needs_input_grad[:3])
    if _differentiating_twice(dy, x, A, B):
        # the backward op is plain (or Triton) code that autograd cannot see into
        grads = _composite_gradients(
            dy, x, A, B, needs, scope=ctx.scope, activation=ctx.activation, eps=ctx.eps
        )
    else:
        grads = _layer_norm_backward_op(
            dy, x, A, B, mean, rstd, ctx.scope, ctx.activation, ctx.backend
        )
    dx, dA, dB = (g if need else None for g, need in zip(grads, needs, strict=True))
    return dx, dA, dB, None, None, None, None


_layer_norm_op.register_autograd(_op_backward, setup_context=_setup_context)


# ---------------------------------------------------------------------------- process group


class _ShardedLayerNorm(torch.autograd.Function):
    """Whole-layer statistics of layers split along t across a process group: the torch
    forward and hand backward with all-reduced sums. Not an operator (collectives on a
    group object cannot be one) and differentiable once."""

    @staticmethod
    def forward(x, A, B, activation, eps, group):
        return _forward(x, A, B, scope="layer", activation=activation, eps=eps, group=group)

    @staticmethod
    def setup_context(ctx, inputs, output):
        x, A, B, activation, _eps, group = inputs
        _y, mean, rstd = output
        ctx.save_for_backward(x, A, B, mean, rstd)
        ctx.mark_non_differentiable(mean, rstd)
        ctx.activation, ctx.group = activation, group

    @staticmethod
    def backward(ctx, dy, _dmean, _drstd):
        x, A, B, mean, rstd = ctx.saved_tensors
        if _differentiating_twice(dy, x, A, B):
            raise RuntimeError(
                "layer_norm(..., group=...) is differentiable once: its backward all-reduces "
                "across the group with torch.distributed, which autograd does not record; "
                "second derivatives (create_graph=True) need group=None"
            )
        grads = _backward(
            dy, x, A, B, mean, rstd, scope="layer", activation=ctx.activation, group=ctx.group
        )
        dx, dA, dB = (
            g if need else None for g, need in zip(grads, ctx.needs_input_grad[:3], strict=True)
        )
        return dx, dA, dB, None, None, None


# ---------------------------------------------------------------------------- public API


def _traced() -> bool:
    """torch.compile, torch.export or torch.jit.trace is recording the call."""
    return torch.compiler.is_compiling() or torch.jit.is_tracing()


def _transformed(*tensors: torch.Tensor) -> bool:
    """A torch.func transform is running, or forward-mode AD sees these tensors. The
    operator has no forward-mode formula and torch.func cannot run its autograd, so they
    take the composite."""
    if torch._C._functorch.peek_interpreter_stack() is not None:
        return True
    return forward_ad._current_level >= 0 and any(
        forward_ad.unpack_dual(t).tangent is not None for t in tensors
    )


def layer_norm(
    x: torch.Tensor,
    A: torch.Tensor,
    B: torch.Tensor,
    *,
    scope: Scope = "layer",
    activation: ActivationName = "relu",
    eps: float = 1e-5,
    backend: Backend = "auto",
    group: Any = None,
) -> torch.Tensor:
    """L̃ = act(A (L − μ)/σ + B), differentiable in x, A and B (to any order).

    scope="layer": x is (..., T, I) and μ, σ are taken over the last two dims (the quiz);
    scope="position": x is (..., I) and μ, σ over the last dim (nn.LayerNorm's statistics).
    Whole-layer statistics mix positions: in a causal model later tokens reach earlier
    positions (a 2-layer causal transformer's earlier logits moved by up to 0.076 when only
    the last token changed), and on (B, I) or (T, B, I) inputs a layer spans the batch.
    σ = sqrt(var + eps) with the biased (1/N) variance; eps=0 is exactly the quiz (a
    constant layer is then refused: on CUDA this reads the statistics on the host, in eager
    mode only). activation is one of `infonorm.activations.ACTIVATIONS`. backend: "torch"
    (plain tensor code and the hand backward), "aten" (ATen's fused layer norm, per
    position), "triton" (CUDA kernels), or "auto" (see the module's docstring). Statistics
    are float32 for half-precision x; the output has x's dtype. Second derivatives and
    torch.func transforms work (through a composite of torch ops).

    group: a torch.distributed process group across which each layer is split along t
    (sequence parallelism, scope="layer"): x is this rank's slice (..., T_r, I), and μ, σ
    and the backward's two sums over (t, i) are all-reduced, so that the output and
    x's gradient equal those of the unsplit layer. A.grad and B.grad are this rank's part
    of the sum over t (DDP, or an all-reduce, adds the parts up). Every rank must call
    forward and backward; differentiable once. Per-position statistics (scope="position")
    need no communication: the group is then only checked. With a group the torch backend
    runs, outside the operator.
    """
    group = check_group(group)
    sliced = group is not None and scope == "layer"
    eps = check_arguments(x, A, B, scope=scope, activation=activation, eps=eps, sliced=sliced)
    _check_backend(backend, scope, activation, group)
    if sliced:
        y, _, _ = _ShardedLayerNorm.apply(x, A, B, activation, eps, group)
        return y
    traced = _traced()
    if not traced and _transformed(x, A, B):
        return _composite(x, A, B, scope=scope, activation=activation, eps=eps)
    if not traced and _resolve(backend, x, scope, activation) == "aten":
        y, _, rstd = _aten_forward(x, A, B, activation=activation, eps=eps)
        if _aten_handles(rstd, eps):
            return y
        backend = "torch"
    y, _, rstd = _layer_norm_op(x, A, B, scope, activation, eps, backend)
    if eps == 0 and x.is_cuda and not traced:
        _refuse_constant_layers(rstd, scope)
    return y


# ---------------------------------------------------------------------------- nn.Module


def _decline_fused_paths(module, args: tuple[Tensor]) -> None:
    """A forward pre-hook that does nothing. PyTorch's fused paths that read a layer norm's
    weight, bias and eps and compute plain layer norm themselves (nn.TransformerEncoderLayer
    in eval mode) decline any module with hooks: a LayerNorm whose scope or activation is
    not nn.LayerNorm's carries this one, so that it always runs its own forward."""
    return None


def _features(normalized_shape: Any) -> int:
    """I from an int or a 1-tuple, as nn.LayerNorm takes it."""
    if isinstance(normalized_shape, (tuple, list, torch.Size)):
        if len(normalized_shape) != 1:
            raise ValueError(
                "normalized_shape must be an int or a 1-tuple (I,): infonorm.LayerNorm has "
                f"one weight per feature of x's last dim; got {tuple(normalized_shape)}"
            )
        (normalized_shape,) = normalized_shape
    if isinstance(normalized_shape, bool) or not isinstance(normalized_shape, Integral):
        raise TypeError(
            f"normalized_shape must be an int or a 1-tuple, got {type(normalized_shape).__name__}"
        )
    if normalized_shape < 1:
        raise ValueError(f"normalized_shape must be >= 1, got {int(normalized_shape)}")
    if normalized_shape >= 2**63:
        shown = f"{int(normalized_shape)}" if normalized_shape < 10**30 else "an integer beyond it"
        raise ValueError(f"normalized_shape must be a tensor size (below 2^63), got {shown}")
    return int(normalized_shape)


def _symbolic(x: Any) -> bool:
    """torch.fx.symbolic_trace is recording: x is a Proxy, whose values and shape are
    unknown, so the call is recorded as the operator itself, unchecked."""
    return isinstance(x, torch.fx.Proxy)


class LayerNorm(nn.Module):
    """torch.nn.LayerNorm with a choice of statistics and a fused activation:
    act(weight · (x − μ)/σ + bias).

    The signature, parameters (`weight` ones and `bias` zeros at init, None when not affine),
    state_dict keys and defaults are nn.LayerNorm's: `LayerNorm(d)` is `nn.LayerNorm(d)` to
    rounding, forward and backward, and loads its state_dict. The keyword-only options:

    - activation: one of `infonorm.activations.ACTIVATIONS` ("identity" by default), fused
      into the same call as the normalization;
    - scope: "position" (default, μ and σ over the last dim) or "layer" (over the last two
      dims, (T, I): the quiz's layer). Whole-layer statistics mix positions: in a causal
      model every position then sees later tokens (a 2-layer causal transformer's earlier
      logits moved by up to 0.076 when only the last token changed; 0 with "position"), and
      on (B, I) or (T, B, I) inputs they span the batch.

    The quiz's layer is `LayerNorm(I, scope="layer", activation="relu")`. A module whose
    scope or activation differs from nn.LayerNorm's carries a no-op forward pre-hook, which
    makes nn.TransformerEncoderLayer's eval fast path (a fused op that reads weight, bias
    and eps and would compute plain layer norm) decline it. torch.jit.script compiles the
    module to the `infonorm::layer_norm` operator, and torch.fx.symbolic_trace records it as
    that operator (unchecked: a Proxy has no values or shape to check).

    Under autocast the output keeps the input's dtype (statistics in float32 for half
    precision): as nn.LayerNorm under CPU autocast, whereas CUDA autocast runs nn.LayerNorm
    in float32 and returns float32. The operator has no autocast rule, so that bf16
    activations stay bf16 through the kernels; call `.float()` on the output where float32
    is wanted.
    """

    # read by torch.jit.script, as in torch.nn's own modules
    __constants__ = ["normalized_shape", "eps", "elementwise_affine", "scope", "activation"]  # noqa: RUF012
    normalized_shape: tuple[int, ...]
    eps: float
    elementwise_affine: bool
    scope: str
    activation: str

    def __init__(
        self,
        normalized_shape: int | tuple[int] | list[int] | torch.Size,
        eps: float = 1e-5,
        elementwise_affine: bool = True,
        bias: bool = True,
        device: torch.device | str | None = None,
        dtype: torch.dtype | None = None,
        *,
        scope: Scope = "position",
        activation: ActivationName = "identity",
    ) -> None:
        super().__init__()
        check_choice(scope, "scope", SCOPES)
        check_choice(activation, "activation", _ACTIVATION_NAMES)
        if dtype is not None and not (isinstance(dtype, torch.dtype) and dtype.is_floating_point):
            raise TypeError(f"dtype must be a floating-point torch.dtype, got {dtype!r}")
        self.normalized_shape = (_features(normalized_shape),)
        self.eps = check_finite_scalar(eps, "eps", minimum=0.0)
        self.elementwise_affine = bool(elementwise_affine)
        factory = {"device": device, "dtype": dtype}
        for name, wanted in (
            ("weight", self.elementwise_affine),
            ("bias", self.elementwise_affine and bias),
        ):
            parameter = (
                nn.Parameter(torch.empty(self.normalized_shape, **factory)) if wanted else None
            )
            self.register_parameter(name, parameter)
        self.scope = scope
        self.activation = activation
        self.reset_parameters()

    def __setattr__(self, name: str, value: Any) -> None:
        if name == "scope":
            check_choice(value, "scope", SCOPES)
        elif name == "activation":
            check_choice(value, "activation", _ACTIVATION_NAMES)
        super().__setattr__(name, value)
        if name in ("scope", "activation"):
            self._sync_fused_path_guard()

    def _sync_fused_path_guard(self) -> None:
        """The no-op pre-hook present exactly when this is not plain nn.LayerNorm."""
        plain = (getattr(self, "scope", "position"), getattr(self, "activation", "identity")) == (
            "position",
            "identity",
        )
        hooks = self._forward_pre_hooks
        present = [key for key, hook in hooks.items() if hook is _decline_fused_paths]
        if plain:
            for key in present:
                del hooks[key]
        elif not present:
            self.register_forward_pre_hook(_decline_fused_paths)

    def reset_parameters(self) -> None:
        if self.weight is not None:
            nn.init.ones_(self.weight)
        if self.bias is not None:
            nn.init.zeros_(self.bias)

    def forward(self, input: Tensor) -> Tensor:
        weight, bias = self.weight, self.bias
        A = weight if weight is not None else input.new_ones(self.normalized_shape)
        B = bias if bias is not None else input.new_zeros(self.normalized_shape)
        if torch.jit.is_scripting():
            return torch.ops.infonorm.layer_norm(
                input, A, B, self.scope, self.activation, self.eps, "auto"
            )[0]
        return self._call(input, A, B)

    @torch.jit.unused
    def _call(self, x: Tensor, A: Tensor, B: Tensor) -> Tensor:
        if _symbolic(x):
            return torch.ops.infonorm.layer_norm(
                x, A, B, self.scope, self.activation, self.eps, "auto"
            )[0]
        if x.is_nested:
            return self._call_nested(x, A, B)
        if x.dim() == 0 or x.shape[-1] != self.normalized_shape[0]:
            raise ValueError(
                f"input must have {self.normalized_shape[0]} features in its last dim "
                f"(normalized_shape), got shape {tuple(x.shape)}"
            )
        return layer_norm(x, A, B, scope=self.scope, activation=self.activation, eps=self.eps)

    @torch.jit.unused
    def _call_nested(self, x: Tensor, A: Tensor, B: Tensor) -> Tensor:
        """nn.TransformerEncoder (enable_nested_tensor=True) hands padded batches over as
        nested tensors in eval mode, never in training. Per position that changes nothing;
        whole-layer statistics would leave out the padding that training included."""
        if self.scope == "layer":
            raise ValueError(
                "LayerNorm(scope='layer') got a nested tensor: nn.TransformerEncoder packs "
                "padded batches so in eval mode only, which would leave the padding out of the "
                "whole-layer statistics that training includes; build the encoder with "
                "enable_nested_tensor=False (replace_layer_norms sets it)"
            )
        return torch.nested.as_nested_tensor([self._call(t, A, B) for t in x.unbind()])

    def extra_repr(self) -> str:
        text = (
            f"{self.normalized_shape}, eps={self.eps}, "
            f"elementwise_affine={self.elementwise_affine}, bias={self.bias is not None}"
        )
        if (self.scope, self.activation) != ("position", "identity"):
            text += f", scope={self.scope!r}, activation={self.activation!r}"
        return text


# ---------------------------------------------------------------------------- the swap


def _fused_name(module: nn.Module | None, names: frozenset[str]) -> str | None:
    """The activation of `names` that `module` computes, if it is one of torch's modules for
    it (exactly that class: a subclass may compute something else), else None."""
    for name in names:
        kind = ACTIVATIONS[name].module
        if kind is not None and type(module) is kind:
            exact = getattr(module, "approximate", "none") == "none"  # GELU's erf form only
            return name if exact else None
    return None


def _activations_to_fuse(activation: Any) -> frozenset[str]:
    names = (activation,) if isinstance(activation, str) else tuple(activation)
    for name in names:
        check_choice(name, "activation", _ACTIVATION_NAMES)
    return frozenset(names) - {"identity"}


def _check_replaceable(path: str, module: nn.LayerNorm) -> None:
    if len(module.normalized_shape) != 1:
        raise ValueError(
            f"{path or 'model'}: nn.LayerNorm over {tuple(module.normalized_shape)} has no "
            "infonorm equivalent (infonorm.LayerNorm has one weight per feature of the last dim)"
        )
    if module._forward_hooks or module._forward_pre_hooks or module._backward_hooks:
        raise ValueError(f"{path or 'model'}: the nn.LayerNorm has hooks, which would be lost")


def _drop_in(module: nn.LayerNorm, scope: str, activation: str) -> LayerNorm:
    """An infonorm.LayerNorm holding `module`'s very Parameters (device, dtype, requires_grad
    and any optimizer's references all kept)."""
    new = LayerNorm(
        module.normalized_shape,
        eps=module.eps,
        elementwise_affine=module.elementwise_affine,
        bias=module.bias is not None,
        device="meta",
        scope=scope,
        activation=activation,
    )
    new.weight, new.bias = module.weight, module.bias
    return new.train(module.training)


def replace_layer_norms(
    model: nn.Module,
    *,
    scope: Scope = "position",
    activation: ActivationName | Iterable[ActivationName] = "identity",
) -> nn.Module:
    """Replace every torch.nn.LayerNorm of `model` by an infonorm.LayerNorm, in place, and
    return the model.

    Each new module holds the old one's Parameters (so device, dtype, requires_grad and an
    optimizer built before the swap are kept) and its training mode. With the defaults the
    model computes the same function. `scope` is given to every new module (scope="layer"
    changes the function: see LayerNorm). `activation`: a name, or several, of the
    activations to fuse: a LayerNorm directly followed in an nn.Sequential by torch's module
    of one of them (nn.ReLU, nn.GELU with approximate="none", nn.Tanh, nn.Sigmoid, nn.SiLU)
    takes it into its own call, and the activation's place holds an nn.Identity (indices and
    state_dict keys are unchanged). Subclasses of nn.LayerNorm are left alone (they may
    compute something else). A model that is itself an nn.LayerNorm is returned replaced.
    With scope="layer", nn.TransformerEncoders stop packing padded batches into nested
    tensors (their eval-only fast path), which would change the statistics in eval mode.
    """
    if not isinstance(model, nn.Module):
        raise TypeError(f"model must be a torch.nn.Module, got {type(model).__name__}")
    check_choice(scope, "scope", SCOPES)
    fuse = _activations_to_fuse(activation)
    if type(model) is nn.LayerNorm:
        _check_replaceable("", model)
        return _drop_in(model, scope, "identity")
    # plan every replacement first, so that a model that cannot be converted is left as it was
    plan: list[tuple[nn.Module, str, nn.Module]] = []
    for parent_path, parent in model.named_modules():
        children = list(parent.named_children())
        for index, (name, child) in enumerate(children):
            if type(child) is not nn.LayerNorm:
                continue
            _check_replaceable(f"{parent_path}.{name}".lstrip("."), child)
            follower = children[index + 1][1] if index + 1 < len(children) else None
            fused = _fused_name(follower, fuse) if isinstance(parent, nn.Sequential) else None
            plan.append((parent, name, _drop_in(child, scope, fused or "identity")))
            if fused is not None:
                plan.append((parent, children[index + 1][0], nn.Identity()))
    for parent, name, new in plan:
        setattr(parent, name, new)
    if scope == "layer":
        # an encoder would hand whole layers over without their padding in eval mode only
        for module in model.modules():
            if isinstance(module, nn.TransformerEncoder):
                module.use_nested_tensor = False
    return model
