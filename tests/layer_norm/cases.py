"""The bad inputs tried on layer norm, and the dtype mixes it takes."""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch

from infonorm import LayerNorm, layer_norm, replace_layer_norms
from infonorm.layer_norm import layer_norm_backward
from tests.cases import ApiCase, randn, with_value


def _ln(**changes: Any) -> Callable[[], Any]:
    """layer_norm on x (2, 3, 4), A = 1, B = 0, with `changes` applied. The tensors are made
    here, so that `call()` runs nothing but the checks before the error."""
    kwargs = {"x": randn(2, 3, 4), "A": torch.ones(4), "B": torch.zeros(4), **changes}
    x, A, B = kwargs.pop("x"), kwargs.pop("A"), kwargs.pop("B")
    return lambda: layer_norm(x, A, B, **kwargs)


def _ln_backward(dy: Any) -> Callable[[], Any]:
    x, A, B = randn(2, 3, 4), torch.ones(4), torch.zeros(4)
    return lambda: layer_norm_backward(dy, x, A, B, scope="layer", activation="relu", eps=1e-5)


def _module_on(module: LayerNorm, x: torch.Tensor) -> Callable[[], Any]:
    return lambda: module(x)


def _replace_in(model: torch.nn.Module, **options: Any) -> Callable[[], Any]:
    return lambda: replace_layer_norms(model, **options)


def _set_on(module: LayerNorm, name: str, value: Any) -> Callable[[], Any]:
    return lambda: setattr(module, name, value)


CASES: list[ApiCase] = [
    ApiCase(
        "layer_norm",
        "x an int64 tensor",
        _ln(x=torch.ones(2, 3, 4, dtype=torch.int64)),
        TypeError,
        "x must be a floating-point tensor, got dtype torch.int64",
    ),
    ApiCase(
        "layer_norm",
        "x a bool tensor",
        _ln(x=torch.ones(2, 3, 4, dtype=torch.bool)),
        TypeError,
        "x must be a floating-point tensor, got dtype torch.bool",
    ),
    ApiCase(
        "layer_norm",
        "x a complex tensor",
        _ln(x=torch.ones(2, 3, 4, dtype=torch.complex64)),
        TypeError,
        "x must be a floating-point tensor, got dtype torch.complex64",
    ),
    ApiCase(
        "layer_norm",
        "x a sparse tensor",
        _ln(x=randn(2, 3, 4).to_sparse()),
        TypeError,
        "x must be a dense tensor, got layout torch.sparse_coo",
    ),
    ApiCase(
        "layer_norm",
        "x a list",
        _ln(x=[[1.0, 2.0]]),
        TypeError,
        "x must be a torch.Tensor, got list",
    ),
    ApiCase(
        "layer_norm",
        "x 1-D with scope='layer'",
        _ln(x=randn(4)),
        ValueError,
        "x must have at least 2 dims (..., T, I) for scope='layer', got shape (4,)",
    ),
    ApiCase(
        "layer_norm",
        "x 0-d with scope='position'",
        _ln(x=torch.tensor(1.0), scope="position"),
        ValueError,
        "x must have at least 1 dim (..., I) for scope='position', got a scalar",
    ),
    ApiCase(
        "layer_norm",
        "x (2, 0, 4): T = 0",
        _ln(x=torch.empty(2, 0, 4)),
        ValueError,
        "x has no elements to normalize over: shape (2, 0, 4)",
    ),
    ApiCase(
        "layer_norm",
        "x (2, 3, 0) with A, B of shape (0,)",
        _ln(x=torch.empty(2, 3, 0), A=torch.ones(0), B=torch.zeros(0)),
        ValueError,
        "x has no elements to normalize over: shape (2, 3, 0)",
    ),
    ApiCase(
        "layer_norm",
        "x on meta, A and B on cpu",
        _ln(x=torch.empty(2, 3, 4, device="meta")),
        ValueError,
        "A is on cpu but x is on meta: put both on one",
    ),
    ApiCase(
        "layer_norm",
        "B on meta, x and A on cpu",
        _ln(B=torch.zeros(4, device="meta")),
        ValueError,
        "B is on meta but x is on cpu: put both on one",
    ),
    ApiCase(
        "layer_norm",
        "A of shape (5,) for I = 4",
        _ln(A=torch.ones(5)),
        ValueError,
        "A must have shape (4,), one entry per neuron i of x's last dim, got shape (5,)",
    ),
    ApiCase(
        "layer_norm",
        "A 0-d",
        _ln(A=torch.tensor(1.0)),
        ValueError,
        "A must have shape (4,), one entry per neuron i of x's last dim, got shape ()",
    ),
    ApiCase(
        "layer_norm",
        "A an int32 tensor",
        _ln(A=torch.ones(4, dtype=torch.int32)),
        TypeError,
        "A must be a floating-point tensor, got dtype torch.int32",
    ),
    ApiCase(
        "layer_norm",
        "B a list",
        _ln(B=[0.0] * 4),
        TypeError,
        "B must be a torch.Tensor, got list",
    ),
    ApiCase(
        "layer_norm",
        "scope = 'batch'",
        _ln(scope="batch"),
        ValueError,
        "scope must be one of 'layer', 'position'; got 'batch'",
    ),
    ApiCase(
        "layer_norm",
        "scope = {} (unhashable)",
        _ln(scope={}),
        ValueError,
        "scope must be one of 'layer', 'position'; got {}",
    ),
    ApiCase(
        "layer_norm",
        "activation = None",
        _ln(activation=None),
        ValueError,
        "activation must be one of 'relu', 'identity', 'gelu', 'tanh', 'sigmoid', 'silu'; got None",
    ),
    ApiCase(
        "layer_norm",
        "backend = 'cuda'",
        _ln(backend="cuda"),
        ValueError,
        "backend must be one of 'auto', 'torch', 'aten', 'triton'; got 'cuda'",
    ),
    ApiCase(
        "layer_norm",
        "eps = -1e-5",
        _ln(eps=-1e-5),
        ValueError,
        "eps must be >= 0, got -1e-05",
    ),
    ApiCase(
        "layer_norm", "eps = NaN", _ln(eps=math.nan), ValueError, "eps must be finite, got nan"
    ),
    ApiCase(
        "layer_norm", "eps = inf", _ln(eps=math.inf), ValueError, "eps must be finite, got inf"
    ),
    ApiCase(
        "layer_norm",
        "eps = True",
        _ln(eps=True),
        TypeError,
        "eps must be a real number, got bool",
    ),
    ApiCase(
        "layer_norm",
        "eps a tensor",
        _ln(eps=torch.tensor(1e-5)),
        TypeError,
        "eps must be a real number, got Tensor",
    ),
    ApiCase(
        "layer_norm",
        "eps = 10**400 (an int beyond the float range)",
        _ln(eps=10**400),
        ValueError,
        "eps must be finite, got a number of 401 digits, beyond the float range",
    ),
    ApiCase(
        "layer_norm",
        "eps = 5e-324 (0 in float32, the statistics' precision)",
        _ln(eps=5e-324),
        ValueError,
        "eps=5e-324 is 0 in torch.float32, the precision of the statistics: pass eps=0",
    ),
    ApiCase(
        "layer_norm",
        "eps = 0 with a constant layer",
        _ln(x=with_value(randn(2, 3, 4), (1,), 0.25), eps=0.0),
        ValueError,
        "eps=0 but layer 1 of x (flattened leading dims) has all values equal: σ = 0 there",
        from_forward=True,
    ),
    ApiCase(
        "layer_norm",
        "eps = 0 with a constant position, scope='position'",
        _ln(x=with_value(randn(2, 3, 4), (0, 2), -3.0), eps=0.0, scope="position"),
        ValueError,
        "eps=0 but position 2 of x (flattened leading dims) has all values equal: σ = 0 there",
        from_forward=True,
    ),
    ApiCase(
        "layer_norm",
        "backend = 'aten' with scope='layer'",
        _ln(backend="aten"),
        ValueError,
        "backend='aten' computes per-position statistics only",
    ),
    ApiCase(
        "layer_norm",
        "group given without torch.distributed initialized",
        _ln(group=object()),
        ValueError,
        "group: torch.distributed is not initialized",
    ),
    ApiCase(
        "layer_norm_backward",
        "dy an int64 tensor",
        _ln_backward(torch.ones(2, 3, 4, dtype=torch.int64)),
        TypeError,
        "dy must be a floating-point tensor, got dtype torch.int64",
    ),
    ApiCase(
        "layer_norm_backward",
        "dy a list",
        _ln_backward([1.0]),
        TypeError,
        "dy must be a torch.Tensor, got list",
    ),
    ApiCase(
        "layer_norm_backward",
        "dy of shape (2, 3) for x (2, 3, 4)",
        _ln_backward(torch.ones(2, 3)),
        ValueError,
        "dy must have x's shape (2, 3, 4), got (2, 3)",
    ),
    ApiCase(
        "layer_norm_backward",
        "dy on meta, x on cpu",
        _ln_backward(torch.ones(2, 3, 4, device="meta")),
        ValueError,
        "dy is on meta but x is on cpu: put both on one",
    ),
    ApiCase(
        "LayerNorm",
        "normalized_shape = 4.0",
        lambda: LayerNorm(4.0),
        TypeError,
        "normalized_shape must be an int or a 1-tuple, got float",
    ),
    ApiCase(
        "LayerNorm",
        "normalized_shape = True",
        lambda: LayerNorm(True),
        TypeError,
        "normalized_shape must be an int or a 1-tuple, got bool",
    ),
    ApiCase(
        "LayerNorm",
        "normalized_shape = 0",
        lambda: LayerNorm(0),
        ValueError,
        "normalized_shape must be >= 1, got 0",
    ),
    ApiCase(
        "LayerNorm",
        "normalized_shape = 2**63",
        lambda: LayerNorm(2**63),
        ValueError,
        "normalized_shape must be a tensor size (below 2^63), got 9223372036854775808",
    ),
    ApiCase(
        "LayerNorm",
        "normalized_shape = (10**400,)",
        lambda: LayerNorm((10**400,)),
        ValueError,
        "normalized_shape must be a tensor size (below 2^63), got an integer beyond it",
    ),
    ApiCase(
        "LayerNorm",
        "normalized_shape = (3, 4)",
        lambda: LayerNorm((3, 4)),
        ValueError,
        "normalized_shape must be an int or a 1-tuple (I,): infonorm.LayerNorm has one weight "
        "per feature of x's last dim; got (3, 4)",
    ),
    ApiCase(
        "LayerNorm",
        "dtype = torch.int64",
        lambda: LayerNorm(4, dtype=torch.int64),
        TypeError,
        "dtype must be a floating-point torch.dtype, got torch.int64",
    ),
    ApiCase(
        "LayerNorm",
        "eps = -1",
        lambda: LayerNorm(4, eps=-1),
        ValueError,
        "eps must be >= 0, got -1.0",
    ),
    ApiCase(
        "LayerNorm",
        "eps = 10**400",
        lambda: LayerNorm(4, eps=10**400),
        ValueError,
        "eps must be finite, got a number of 401 digits, beyond the float range",
    ),
    ApiCase(
        "LayerNorm",
        "activation = 'swish'",
        lambda: LayerNorm(4, activation="swish"),
        ValueError,
        "activation must be one of",
    ),
    ApiCase(
        "LayerNorm",
        "scope = 'batch'",
        lambda: LayerNorm(4, scope="batch"),
        ValueError,
        "scope must be one of 'layer', 'position'; got 'batch'",
    ),
    ApiCase(
        "LayerNorm",
        "called on x whose last dim is not normalized_shape",
        _module_on(LayerNorm(5), randn(2, 3, 4)),
        ValueError,
        "input must have 5 features in its last dim (normalized_shape), got shape (2, 3, 4)",
    ),
    ApiCase(
        "LayerNorm",
        "activation set to 'swish' after construction",
        _set_on(LayerNorm(4), "activation", "swish"),
        ValueError,
        "activation must be one of",
    ),
    ApiCase(
        "replace_layer_norms",
        "an nn.LayerNorm over two dims, (3, 4)",
        _replace_in(torch.nn.Sequential(torch.nn.LayerNorm((3, 4)))),
        ValueError,
        "0: nn.LayerNorm over (3, 4) has no infonorm equivalent",
    ),
    ApiCase(
        "replace_layer_norms",
        "activation = 'swish'",
        lambda: replace_layer_norms(torch.nn.Sequential(), activation="swish"),
        ValueError,
        "activation must be one of",
    ),
    ApiCase(
        "replace_layer_norms",
        "model a function",
        lambda: replace_layer_norms(print),
        TypeError,
        "model must be a torch.nn.Module, got builtin_function_or_method",
    ),
]


@dataclass(frozen=True)
class LayerNormDtypes:
    """layer_norm(x, A, B) with x in `x` and A, B in `params`: output and gradient dtypes."""

    x: torch.dtype
    params: torch.dtype
    y: torch.dtype
    dx: torch.dtype
    dparams: torch.dtype


LAYER_NORM_DTYPES = [
    LayerNormDtypes(torch.bfloat16, torch.float32, torch.bfloat16, torch.bfloat16, torch.float32),
    LayerNormDtypes(torch.float16, torch.float32, torch.float16, torch.float16, torch.float32),
    LayerNormDtypes(torch.float16, torch.bfloat16, torch.float16, torch.float16, torch.bfloat16),
    LayerNormDtypes(torch.float32, torch.float64, torch.float32, torch.float32, torch.float64),
    LayerNormDtypes(torch.float64, torch.float32, torch.float64, torch.float64, torch.float32),
    LayerNormDtypes(torch.float32, torch.bfloat16, torch.float32, torch.float32, torch.bfloat16),
]
