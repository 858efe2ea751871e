import math
import re
from pathlib import Path
from typing import get_args

import pytest
import torch

import infonorm
from infonorm.activations import ACTIVATIONS, ActivationName, derivative

NAMES = sorted(ACTIVATIONS)


def _points(dtype=torch.float64) -> torch.Tensor:
    # a wide range, kept away from ReLU's kink at 0 where autograd's choice is a convention
    z = torch.linspace(-8, 8, 401, dtype=dtype)
    return z[z.abs() > 1e-3]


def test_the_table_has_the_six_activations():
    assert set(ACTIVATIONS) == {"relu", "identity", "gelu", "tanh", "sigmoid", "silu"}
    assert all(a.name == name for name, a in ACTIVATIONS.items())


@pytest.mark.parametrize("name", NAMES)
def test_hand_derivative_matches_autograd_of_torch_forward(name):
    z = _points().requires_grad_()
    (expected,) = torch.autograd.grad(ACTIVATIONS[name].forward(z).sum(), z)
    torch.testing.assert_close(derivative(name, z.detach()), expected, rtol=1e-12, atol=1e-14)


@pytest.mark.parametrize("name", NAMES)
def test_in_place_forms_agree_with_out_of_place(name):
    z = _points()
    activation = ACTIVATIONS[name]
    torch.testing.assert_close(activation.forward_(z.clone()), activation.forward(z))
    torch.testing.assert_close(activation.derivative_(z.clone()), derivative(name, z))


@pytest.mark.parametrize("name", NAMES)
def test_derivative_leaves_its_input_unchanged(name):
    z = _points()
    before = z.clone()
    derivative(name, z)
    assert torch.equal(z, before)


@pytest.mark.parametrize("name", NAMES)
def test_derivative_in_float32_matches_float64(name):
    z = _points()
    torch.testing.assert_close(
        derivative(name, z.float()), derivative(name, z).float(), rtol=1e-5, atol=1e-6
    )


def test_relu_derivative_is_zero_at_zero_and_a_step_elsewhere():
    z = torch.tensor([-2.0, -1e-30, 0.0, 1e-30, 3.0])
    assert derivative("relu", z).tolist() == [0.0, 0.0, 0.0, 1.0, 1.0]


def test_gelu_is_the_exact_erf_form():
    z = _points()
    Phi = torch.special.ndtr(z)
    torch.testing.assert_close(ACTIVATIONS["gelu"].forward(z), z * Phi, rtol=1e-12, atol=1e-14)
    phi = torch.exp(-(z**2) / 2) / math.sqrt(2 * math.pi)
    torch.testing.assert_close(derivative("gelu", z), Phi + z * phi, rtol=1e-12, atol=1e-14)


def test_unknown_activation_is_a_value_error():
    with pytest.raises(ValueError, match="activation must be one of"):
        derivative("swish", torch.zeros(3))


def test_the_literal_type_names_the_table():
    assert get_args(ActivationName) == tuple(ACTIVATIONS)


@pytest.mark.parametrize("name", NAMES)
def test_the_module_of_an_entry_computes_its_activation(name):
    z = _points()
    module = ACTIVATIONS[name].module()
    torch.testing.assert_close(module(z), ACTIVATIONS[name].forward(z), rtol=0, atol=0)


def _triton_branches() -> dict[str, list[str]]:
    """The names each Triton function of kernels/_activation.py branches on, read from its
    source (without importing triton)."""
    source = (Path(infonorm.__file__).parent / "kernels" / "_activation.py").read_text()
    functions = re.split(r"\ndef ", source)
    return {
        head.split("(")[0]: re.findall(r'ACTIVATION == "(\w+)"', body)
        for head, body in (f.split("\n", 1) for f in functions[1:])
        if "ACTIVATION: tl.constexpr" in head
    }


def test_the_triton_kernels_have_exactly_the_activations_the_table_gives_them():
    branches = _triton_branches()
    assert set(branches) == {"activation", "activation_derivative"}
    table = {name for name, entry in ACTIVATIONS.items() if "triton" in entry.backends}
    for function, names in branches.items():
        assert set(names) == table, function


def test_every_backend_of_the_table_is_known_and_torch_fuses_everything():
    from infonorm.layer_norm import BACKENDS

    for entry in ACTIVATIONS.values():
        assert entry.backends <= set(BACKENDS) - {"auto"}
        # the hand backward and the ATen path need only σ and σ', which every entry has
        assert {"torch", "aten"} <= entry.backends
