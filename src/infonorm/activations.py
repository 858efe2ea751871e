"""The activations σ that layer normalization fuses in, each with its derivative σ' by hand.

One table, `ACTIVATIONS`, keyed by name. Each entry holds

- `forward`: σ(z) as torch's own op, so that autograd differentiates it independently of
  our σ' (the float64 references use it);
- `forward_` and `derivative_`: σ(z) and the hand-written σ'(z) computed in z's storage
  where torch has an in-place form. The caller hands over a scratch buffer it owns, which
  spares a fresh allocation of the whole tensor; the result is the returned tensor (z
  itself or a new one).

`derivative(name, z)` is σ'(z) on a copy, for callers that keep z.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from infonorm._validation import check_choice

__all__ = ["ACTIVATIONS", "Activation", "derivative"]

Unary = Callable[[torch.Tensor], torch.Tensor]


@dataclass(frozen=True)
class Activation:
    """σ by torch, σ in place, and σ' by hand (in place)."""

    name: str
    forward: Unary
    forward_: Unary
    derivative_: Unary


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


ACTIVATIONS: dict[str, Activation] = {
    a.name: a
    for a in (
        Activation("relu", torch.relu, torch.relu_, _relu_derivative_),
        Activation("identity", lambda z: z, lambda z: z, _identity_derivative_),
        # exact GELU (the erf form), torch's default approximate="none"
        Activation("gelu", F.gelu, F.gelu, _gelu_derivative_),
        Activation("tanh", torch.tanh, torch.tanh_, _tanh_derivative_),
        Activation("sigmoid", torch.sigmoid, torch.sigmoid_, _sigmoid_derivative_),
        Activation("silu", F.silu, lambda z: F.silu(z, inplace=True), _silu_derivative_),
    )
}


def derivative(name: str, z: torch.Tensor) -> torch.Tensor:
    """σ'(z) by hand for the activation `name`, leaving z unchanged."""
    check_choice(name, "activation", tuple(ACTIVATIONS))
    return ACTIVATIONS[name].derivative_(z.clone())
