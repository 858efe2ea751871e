"""The activations σ and their derivatives σ' as Triton functions, for fusing into kernels.

`activation(z, ACTIVATION)` and `activation_derivative(z, ACTIVATION)` take float32 z and a
compile-time name, one of `NAMES`: the activations that `infonorm.activations.ACTIVATIONS`
lists with the "triton" backend (a test checks that the branches below are exactly those).
Each branch matches torch's definition of the same name: relu with σ'(0) = 0, gelu in its
exact erf form, and so on.

Only operations that both the GPU compiler and Triton's CPU interpreter know are used
(`tl.exp`, `tl.math.erf`; no libdevice), so the interpreter tests check the code the GPU runs.
tanh is built from exp for |z| ≥ 0.6 and from a polynomial below, where 1 − e^{−2|z|} would
cancel; both parts are within 2e-7 relative of tanh in float32.
"""

from __future__ import annotations

import triton
import triton.language as tl

from infonorm.activations import ACTIVATIONS

NAMES = tuple(name for name, entry in ACTIVATIONS.items() if "triton" in entry.backends)

# 1/√2 and 1/√(2π), for Φ(z) = ½(1 + erf(z/√2)) and φ(z) = e^{−z²/2}/√(2π)
_SQRT1_2 = tl.constexpr(0.7071067811865476)
_INV_SQRT_2PI = tl.constexpr(0.3989422804014327)


@triton.jit
def _sigmoid(z):
    # s(z) = 1/(1 + e^{−z}), from e = e^{−|z|} ∈ (0, 1] so that nothing overflows:
    # s = 1/(1 + e) for z ≥ 0 and e/(1 + e) for z < 0
    e = tl.exp(-tl.abs(z))
    r = 1.0 / (1.0 + e)
    return tl.where(z >= 0, r, e * r)


@triton.jit
def _tanh(z):
    # tanh z = sign(z) (1 − e)/(1 + e) with e = e^{−2|z|}, for |z| ≥ 0.6;
    # below, tanh z = z + z³ P(z²) with P a least-squares fit (relative error < 1e-7)
    a = tl.abs(z)
    e = tl.exp(-2.0 * a)
    far = (1.0 - e) / (1.0 + e)
    far = tl.where(z < 0, -far, far)
    s = z * z
    p = -0.005984960589557886
    p = p * s + 0.020868148654699326
    p = p * s - 0.053803566843271255
    p = p * s + 0.13332132995128632
    p = p * s - 0.3333330452442169
    near = z + z * s * p
    return tl.where(a < 0.6, near, far)


@triton.jit
def activation(z, ACTIVATION: tl.constexpr):
    """σ(z) for the activation named ACTIVATION."""
    if ACTIVATION == "relu":
        # σ(z) = max(z, 0); NaN stays NaN as in torch.relu
        return tl.where(z < 0, 0.0, z)
    elif ACTIVATION == "identity":
        return z
    elif ACTIVATION == "gelu":
        # σ(z) = z Φ(z) = ½ z (1 + erf(z/√2))
        return 0.5 * z * (1.0 + tl.math.erf(z * _SQRT1_2))
    elif ACTIVATION == "tanh":
        return _tanh(z)
    elif ACTIVATION == "sigmoid":
        return _sigmoid(z)
    else:
        tl.static_assert(ACTIVATION == "silu", "unknown activation")
        # σ(z) = z s(z)
        return z * _sigmoid(z)


@triton.jit
def activation_derivative(z, ACTIVATION: tl.constexpr):
    """σ'(z) for the activation named ACTIVATION."""
    if ACTIVATION == "relu":
        # σ'(z) = 1 if z > 0 else 0 (σ'(0) = 0, as torch)
        return tl.where(z > 0, 1.0, 0.0)
    elif ACTIVATION == "identity":
        return tl.full(z.shape, 1.0, tl.float32)
    elif ACTIVATION == "gelu":
        # σ'(z) = Φ(z) + z φ(z)
        Phi = 0.5 * (1.0 + tl.math.erf(z * _SQRT1_2))
        phi = tl.exp(-0.5 * z * z) * _INV_SQRT_2PI
        return Phi + z * phi
    elif ACTIVATION == "tanh":
        # σ'(z) = 1 − tanh² z
        t = _tanh(z)
        return 1.0 - t * t
    elif ACTIVATION == "sigmoid":
        # σ'(z) = s(1 − s)
        s = _sigmoid(z)
        return s * (1.0 - s)
    else:
        tl.static_assert(ACTIVATION == "silu", "unknown activation")
        # σ'(z) = s + z s(1 − s) = s (1 + z (1 − s))
        s = _sigmoid(z)
        return s * (1.0 + z * (1.0 - s))
