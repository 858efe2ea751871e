"""The activations σ that layer normalization fuses in, each with its derivative σ' by hand.

One table, `ACTIVATIONS`, keyed by name. Each entry holds

- `forward`: σ(z) as torch's own op, so that autograd differentiates it independently of
  our σ' (the float64 references use it), to any order;
- `forward_` and `derivative_`: σ(z) and the hand-written σ'(z) computed in z's storage
  where torch has an in-place form. The caller hands over a scratch buffer it owns, which
  spares a fresh allocation of the whole tensor; the result is the returned tensor (z
  itself or a new one). Under autograd, `forward_` is only used where torch's backward of
  the in-place op reads its result, never its overwritten input;
- `backends`: the layer-norm backends that fuse it. "torch" (the hand backward) and "aten"
  (ATen's layer norm, then `forward`) need only the two functions above, so every entry has
  them; "triton" needs a branch in `infonorm.kernels._activation`, whose names are read
  from this table;
- `module`: the torch.nn module that computes the same σ, which `replace_layer_norms` fuses
  when it directly follows a layer norm (None where torch has none).

`derivative(name, z)` is σ'(z) on a copy, for callers that keep z.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal, get_args

import torch
import torch.nn.functional as F
from torch import nn

from infonorm._validation import check_choice

__all__ = ["ACTIVATIONS", "Activation", "ActivationName", "backends_of", "derivative"]

Unary = Callable[[torch.Tensor], torch.Tensor]
ActivationName = Literal["relu", "identity", "gelu", "tanh", "sigmoid", "silu"]
ALL_BACKENDS = frozenset({"torch", "aten", "triton"})


@dataclass(frozen=True)
class Activation:
    """σ by torch, σ in place, σ' by hand (in place), the backends that fuse it, and the
    torch.nn module of the same σ."""

    name: str
    forward: Unary
    forward_: Unary
    derivative_: Unary
    backends: frozenset[str]
    module: type[nn.Module] | None


def _identity_derivative_(z: torch.Tensor) -> torch.Tensor:
    # σ(z) = z  ⇒  σ'(z) = 1
    return z.fill_(1)


def _relu_derivative_(z: torch.Tensor) -> torch.Tensor:
    # σ(z) = max(z, 0)  ⇒  σ'(z) = 1 if z > 0 else 0, taking σ'(0) = 0 as torch does
    return z.gt_(0)


def _gelu_derivative_(z: torch.Tensor) -> torch.Tensor:
    # σ(z) = z Φ(z), Φ(z) = ½(1 + erf(z/√2))  ⇒  σ'(z) = Φ(z) + z φ(z), φ(z) = e^{−z²/2}/√(2π)
    Phi = torch.erf(z * math.sqrt(0.5)).add_(1).mul_(0.5)
    phi = torch.square(z).mul_(-0.5).exp_().mul_(1 / math.sqrt(2 * math.pi))
    return z.mul_(phi).add_(Phi)


def _tanh_derivative_(z: torch.Tensor) -> torch.Tensor:
    # σ(z) = tanh z  ⇒  σ'(z) = 1 − tanh² z
    return z.tanh_().square_().neg_().add_(1)


def _sigmoid_derivative_(z: torch.Tensor) -> torch.Tensor:
    # σ(z) = s = 1/(1 + e^{−z})  ⇒  σ'(z) = s(1 − s) = s − s·s
    s = z.sigmoid_()
    return s.addcmul_(s, s, value=-1)


def _silu_derivative_(z: torch.Tensor) -> torch.Tensor:
    # σ(z) = z s(z), s the sigmoid  ⇒  σ'(z) = s + z s(1 − s) = s(1 + z(1 − s))
    s = torch.sigmoid(z)
    return z.mul_(1 - s).add_(1).mul_(s)


def _identity(z: torch.Tensor) -> torch.Tensor:
    return z


def _silu_(z: torch.Tensor) -> torch.Tensor:
    return F.silu(z, inplace=True)


ACTIVATIONS: dict[str, Activation] = {
    a.name: a
    for a in (
        # under autograd, relu_, tanh_ and sigmoid_ keep their result for backward: z's buffer
        Activation("relu", torch.relu, torch.relu_, _relu_derivative_, ALL_BACKENDS, nn.ReLU),
        Activation(
            "identity", _identity, _identity, _identity_derivative_, ALL_BACKENDS, nn.Identity
        ),
        # exact GELU (the erf form), torch's default approximate="none"; its backward reads z
        Activation("gelu", F.gelu, F.gelu, _gelu_derivative_, ALL_BACKENDS, nn.GELU),
        Activation("tanh", torch.tanh, torch.tanh_, _tanh_derivative_, ALL_BACKENDS, nn.Tanh),
        Activation(
            "sigmoid", torch.sigmoid, torch.sigmoid_, _sigmoid_derivative_, ALL_BACKENDS, nn.Sigmoid
        ),
        # under autograd, silu_ keeps a copy of z for its backward: no gain, no harm
        Activation("silu", F.silu, _silu_, _silu_derivative_, ALL_BACKENDS, nn.SiLU),
    )
}
assert tuple(ACTIVATIONS) == get_args(ActivationName), "the Literal lists the table's names"


def backends_of(name: str) -> frozenset[str]:
    """The layer-norm backends that fuse the activation `name`."""
    return ACTIVATIONS[name].backends


def derivative(name: str, z: torch.Tensor) -> torch.Tensor:
    """σ'(z) by hand for the activation `name`, leaving z unchanged."""
    check_choice(name, "activation", tuple(ACTIVATIONS))
    return ACTIVATIONS[name].derivative_(z.clone())
