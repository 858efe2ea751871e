"""The bad inputs tried on every public function and command, and what each gets.

One table per kind of check; tests/test_robustness.py and tests/test_cli_robustness.py run
every row, and docs/robustness.md is rendered from these same rows (`render()`), so that the
page says exactly what the tests check. After changing a row:

    .venv/bin/python tests/robustness_cases.py > docs/robustness.md
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from infonorm import LayerNorm, MMILoss, entropies, geometric, layer_norm, matched_accuracy
from infonorm import mutual_information as mutual_information_fn
from infonorm.layer_norm import layer_norm_backward

# ---------------------------------------------------------------------------- API


@dataclass(frozen=True)
class ApiCase:
    """`call()` raises `error` whose message starts with `prefix`; before any work unless
    `from_forward` (NaN and inf logits, seen in the forward's sums: a check of its own would
    cost a pass over the logits)."""

    function: str
    bad_input: str
    call: Callable[[], Any]
    error: type[Exception]
    prefix: str
    from_forward: bool = False

    @property
    def id(self) -> str:
        return f"{self.function}: {self.bad_input}"


def _x(*shape: int, **kw: Any) -> torch.Tensor:
    return torch.randn(*shape, generator=torch.Generator().manual_seed(0), **kw)


def _ln(**changes: Any) -> Callable[[], Any]:
    """layer_norm on x (2, 3, 4), A = 1, B = 0, with `changes` applied."""

    def call() -> Any:
        kwargs = {"x": _x(2, 3, 4), "A": torch.ones(4), "B": torch.zeros(4), **changes}
        return layer_norm(kwargs.pop("x"), kwargs.pop("A"), kwargs.pop("B"), **kwargs)

    return call


def _ln_backward(dy: Any) -> Callable[[], Any]:
    def call() -> Any:
        x, A, B = _x(2, 3, 4), torch.ones(4), torch.zeros(4)
        return layer_norm_backward(dy, x, A, B, scope="layer", activation="relu", eps=1e-5)

    return call


_Z = _x(6, 4)
_Y = torch.tensor([0, 1, 2, 3, 0, 1])
_ROWS = torch.full((6, 2), 0.5)


def _mi(input: Any = None, target: Any = None, **kw: Any) -> Callable[[], Any]:
    def call() -> Any:
        return mutual_information_fn(
            _Z if input is None else input, _Y if target is None else target, **kw
        )

    return call


def _with(t: torch.Tensor, index: tuple, value: float) -> torch.Tensor:
    t = t.clone()
    t[index] = value
    return t


API_CASES: list[ApiCase] = [
    # ------------------------------------------------------------ geometric (Problem 1)
    ApiCase(
        "geometric.cross_entropy",
        "mu shape (3,) with lam shape (2,)",
        lambda: geometric.cross_entropy(torch.ones(3), torch.full((2,), 0.5)),
        ValueError,
        "mu of shape (3,) and lam of shape (2,) do not broadcast together",
    ),
    ApiCase(
        "geometric.cross_entropy",
        "mu on meta, lam on cpu",
        lambda: geometric.cross_entropy(torch.ones(3, device="meta"), torch.full((3,), 0.5)),
        ValueError,
        "mu is on meta but lam is on cpu: put both on one",
    ),
    ApiCase(
        "geometric.cross_entropy",
        "mu and lam on meta (no values)",
        lambda: geometric.cross_entropy(
            torch.ones(3, device="meta"), torch.full((3,), 0.5, device="meta")
        ),
        ValueError,
        "mu is on the meta device: its values are needed to check it",
    ),
    ApiCase(
        "geometric.cross_entropy",
        "mu = inf",
        lambda: geometric.cross_entropy(math.inf, 0.5),
        ValueError,
        "mu must lie in [0, inf), got inf",
    ),
    ApiCase(
        "geometric.cross_entropy",
        "mu = NaN (NumPy scalar)",
        lambda: geometric.cross_entropy(np.float64("nan"), 0.5),
        ValueError,
        "mu holds NaN",
    ),
    ApiCase(
        "geometric.cross_entropy",
        "mu = '1' (a string)",
        lambda: geometric.cross_entropy("1", 0.5),
        TypeError,
        "mu must be a real number or tensor, got str",
    ),
    ApiCase(
        "geometric.cross_entropy",
        "lam = True",
        lambda: geometric.cross_entropy(1.0, True),
        TypeError,
        "lam must be a real number or tensor, got bool",
    ),
    ApiCase(
        "geometric.cross_entropy",
        "lam = None",
        lambda: geometric.cross_entropy(1.0, None),
        TypeError,
        "lam must be a real number or tensor, got NoneType",
    ),
    ApiCase(
        "geometric.cross_entropy",
        "lam a complex tensor",
        lambda: geometric.cross_entropy(1.0, torch.tensor(0.5j)),
        TypeError,
        "lam must be a real number or tensor, got dtype torch.complex64",
    ),
    ApiCase(
        "geometric.cross_entropy",
        "lam a bool tensor",
        lambda: geometric.cross_entropy(1.0, torch.tensor(True)),
        TypeError,
        "lam must be a real number or tensor, got dtype torch.bool",
    ),
    ApiCase(
        "geometric.cross_entropy",
        "lam a sparse tensor",
        lambda: geometric.cross_entropy(1.0, torch.tensor([0.5, 0.0]).to_sparse()),
        TypeError,
        "lam must be a dense tensor, got layout torch.sparse_coo",
    ),
    ApiCase(
        "geometric.cross_entropy",
        "lam a ragged list",
        lambda: geometric.cross_entropy(1.0, [0.1, [0.2]]),
        TypeError,
        "lam must be a real number or tensor",
    ),
    ApiCase(
        "geometric.cross_entropy",
        "lam = 1",
        lambda: geometric.cross_entropy(1.0, 1.0),
        ValueError,
        "lam must lie in [0, 1), got 1.0",
    ),
    ApiCase(
        "geometric.cross_entropy_grad",
        "lam = -0.1",
        lambda: geometric.cross_entropy_grad(1.0, -0.1),
        ValueError,
        "lam must lie in [0, 1), got -0.1",
    ),
    ApiCase(
        "geometric.cross_entropy_grad",
        "mu shape (2, 3) with lam shape (2,)",
        lambda: geometric.cross_entropy_grad(torch.ones(2, 3), torch.full((2,), 0.5)),
        ValueError,
        "mu of shape (2, 3) and lam of shape (2,) do not broadcast together",
    ),
    ApiCase(
        "geometric.optimal_lambda",
        "mu = -1",
        lambda: geometric.optimal_lambda(-1.0),
        ValueError,
        "mu must lie in [0, inf), got -1.0",
    ),
    ApiCase(
        "geometric.optimal_lambda",
        "mu = [1, NaN]",
        lambda: geometric.optimal_lambda([1.0, math.nan]),
        ValueError,
        "mu holds NaN",
    ),
    ApiCase(
        "geometric.distribution",
        "lam = [0.5, 1.0]",
        lambda: geometric.distribution([0.5, 1.0]),
        ValueError,
        "lam must lie in [0, 1), got 1.0",
    ),
    ApiCase(
        "geometric.distribution",
        "lam = 'x'",
        lambda: geometric.distribution("x"),
        TypeError,
        "lam must be a real number or tensor, got str",
    ),
    ApiCase(
        "geometric.empirical_cross_entropy",
        "samples = []",
        lambda: geometric.empirical_cross_entropy([], 0.5),
        ValueError,
        "samples is empty: at least one count is needed",
    ),
    ApiCase(
        "geometric.empirical_cross_entropy",
        "lam = NaN",
        lambda: geometric.empirical_cross_entropy([1, 2], math.nan),
        ValueError,
        "lam holds NaN",
    ),
    ApiCase(
        "geometric.total_variation",
        "lam a tensor of 2 values",
        lambda: geometric.total_variation([1], torch.tensor([0.1, 0.2])),
        ValueError,
        "lam must be a single number, got shape (2,)",
    ),
    ApiCase(
        "geometric.fit",
        "samples = []",
        lambda: geometric.fit([]),
        ValueError,
        "samples is empty: at least one count is needed",
    ),
    ApiCase(
        "geometric.fit",
        "samples = [1, -2]",
        lambda: geometric.fit([1, -2]),
        ValueError,
        "samples holds negative values: counts must be >= 0",
    ),
    ApiCase(
        "geometric.fit",
        "samples = [1, 2.5]",
        lambda: geometric.fit([1, 2.5]),
        ValueError,
        "samples holds fractional values: counts must be whole numbers",
    ),
    ApiCase(
        "geometric.fit",
        "samples = [1, inf]",
        lambda: geometric.fit([1, math.inf]),
        ValueError,
        "samples holds NaN or infinite values",
    ),
    ApiCase(
        "geometric.fit",
        "samples = [10**13]",
        lambda: geometric.fit([10**13]),
        ValueError,
        "samples holds values above 1e12, too large to fit in float64",
    ),
    ApiCase(
        "geometric.fit",
        "samples = [2**70] (beyond int64)",
        lambda: geometric.fit([2**70]),
        ValueError,
        "samples holds values above 1e12, too large to fit in float64",
    ),
    ApiCase(
        "geometric.fit",
        "samples = [-2**70] (beyond int64)",
        lambda: geometric.fit([-(2**70)]),
        ValueError,
        "samples holds negative values: counts must be >= 0",
    ),
    ApiCase(
        "geometric.fit",
        "samples a uint64 array holding 2**63 + 5",
        lambda: geometric.fit(np.array([2**63 + 5], dtype=np.uint64)),
        ValueError,
        "samples holds values above 1e12, too large to fit in float64",
    ),
    ApiCase(
        "geometric.fit",
        "samples = ['a', 'b']",
        lambda: geometric.fit(["a", "b"]),
        ValueError,
        "samples must hold non-negative integers, got values of type <U1",
    ),
    ApiCase(
        "geometric.fit",
        "samples = [1, None]",
        lambda: geometric.fit([1, None]),
        ValueError,
        "samples must hold non-negative integers, got values of type object",
    ),
    ApiCase(
        "geometric.fit",
        "samples = '123' (a string)",
        lambda: geometric.fit("123"),
        ValueError,
        "samples must be a 1-D sequence of non-negative integers, got a string",
    ),
    ApiCase(
        "geometric.fit",
        "samples = 3 (a scalar)",
        lambda: geometric.fit(3),
        ValueError,
        "samples must be a 1-D sequence of non-negative integers, got int",
    ),
    ApiCase(
        "geometric.fit",
        "samples an iterator",
        lambda: geometric.fit(iter([1, 2])),
        ValueError,
        "samples must be a 1-D sequence of non-negative integers, got list_iterator",
    ),
    ApiCase(
        "geometric.fit",
        "samples a set",
        lambda: geometric.fit({1, 2}),
        ValueError,
        "samples must be a 1-D sequence of non-negative integers, got set",
    ),
    ApiCase(
        "geometric.fit",
        "samples [[1, 2], [3, 4]]",
        lambda: geometric.fit([[1, 2], [3, 4]]),
        ValueError,
        "samples must be 1-D, got shape (2, 2)",
    ),
    ApiCase(
        "geometric.fit",
        "samples a 0-d tensor",
        lambda: geometric.fit(torch.tensor(3)),
        ValueError,
        "samples must be 1-D, got shape ()",
    ),
    ApiCase(
        "geometric.fit",
        "samples a bool tensor",
        lambda: geometric.fit(torch.tensor([True, False])),
        ValueError,
        "samples must hold non-negative integers, got dtype torch.bool",
    ),
    ApiCase(
        "geometric.fit",
        "samples a complex array",
        lambda: geometric.fit(np.array([1 + 0j])),
        ValueError,
        "samples must hold real non-negative integers, got complex values",
    ),
    ApiCase(
        "geometric.fit",
        "samples a datetime64 array",
        lambda: geometric.fit(np.array(["2020-01-01"], dtype="datetime64[D]")),
        ValueError,
        "samples must hold non-negative integers, got values of type datetime64[D]",
    ),
    ApiCase(
        "geometric.fit",
        "samples on the meta device",
        lambda: geometric.fit(torch.ones(3, device="meta")),
        ValueError,
        "samples is on the meta device: it holds no values to fit",
    ),
    ApiCase(
        "geometric.fit",
        "samples a sparse tensor",
        lambda: geometric.fit(torch.tensor([1, 0, 2]).to_sparse()),
        ValueError,
        "samples must be a dense tensor, got layout torch.sparse_coo",
    ),
    ApiCase(
        "geometric.fit",
        "method = 'newton'",
        lambda: geometric.fit([1, 2], method="newton"),
        ValueError,
        "method must be one of 'closed-form', 'gradient'; got 'newton'",
    ),
    ApiCase(
        "geometric.fit",
        "method = None",
        lambda: geometric.fit([1, 2], method=None),
        ValueError,
        "method must be one of 'closed-form', 'gradient'; got None",
    ),
    # ------------------------------------------------------------ layer norm (Problem 3)
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
        _ln(x=_x(2, 3, 4).to_sparse()),
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
        _ln(x=_x(4)),
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
        "backend must be one of 'auto', 'torch', 'triton'; got 'cuda'",
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
        "eps = 0 with a constant layer",
        _ln(x=_with(_x(2, 3, 4), (1,), 0.25), eps=0.0),
        ValueError,
        "eps=0 but layer 1 of x (flattened leading dims) has all values equal: σ = 0 there",
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
        "num_features = 4.0",
        lambda: LayerNorm(4.0),
        TypeError,
        "num_features must be an int, got float",
    ),
    ApiCase(
        "LayerNorm",
        "num_features = True",
        lambda: LayerNorm(True),
        TypeError,
        "num_features must be an int, got bool",
    ),
    ApiCase(
        "LayerNorm",
        "num_features = 0",
        lambda: LayerNorm(0),
        ValueError,
        "num_features must be >= 1, got 0",
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
        "activation = 'swish'",
        lambda: LayerNorm(4, activation="swish"),
        ValueError,
        "activation must be one of",
    ),
    ApiCase(
        "LayerNorm",
        "called on x whose last dim is not num_features",
        lambda: LayerNorm(5)(_x(2, 3, 4)),
        ValueError,
        "A must have shape (4,), one entry per neuron i of x's last dim, got shape (5,)",
    ),
    # ------------------------------------------------------------ mutual information (Problem 2)
    ApiCase(
        "mutual_information",
        "input a list",
        _mi(input=[[0.0, 1.0]], target=torch.tensor([0])),
        TypeError,
        "input must be a torch.Tensor, got list",
    ),
    ApiCase(
        "mutual_information",
        "input an int64 tensor",
        _mi(input=torch.zeros(6, 4, dtype=torch.int64)),
        TypeError,
        "input must be a floating-point tensor, got dtype torch.int64",
    ),
    ApiCase(
        "mutual_information",
        "input a complex tensor",
        _mi(input=torch.zeros(6, 4, dtype=torch.complex64)),
        TypeError,
        "input must be a floating-point tensor, got dtype torch.complex64",
    ),
    ApiCase(
        "mutual_information",
        "input 1-D",
        _mi(input=torch.zeros(6)),
        ValueError,
        "input must be (B, C) logits, got shape (6,)",
    ),
    ApiCase(
        "mutual_information",
        "input 3-D with probs=True",
        _mi(input=torch.full((6, 4, 1), 0.25), probs=True),
        ValueError,
        "input must be (B, C) probabilities Q(ŷ|x), got shape (6, 4, 1)",
    ),
    ApiCase(
        "mutual_information",
        "input (0, 4): an empty batch",
        _mi(input=torch.zeros(0, 4), target=torch.zeros(0, dtype=torch.int64)),
        ValueError,
        "input is an empty batch (B = 0): I(y; ŷ) needs at least one example",
    ),
    ApiCase(
        "mutual_information",
        "input (6, 0): no classes",
        _mi(input=torch.zeros(6, 0)),
        ValueError,
        "input has no classes (C = 0)",
    ),
    ApiCase(
        "mutual_information",
        "probs = 1",
        _mi(probs=1),
        TypeError,
        "probs must be True or False, got int",
    ),
    ApiCase(
        "mutual_information",
        "logits with a NaN",
        _mi(input=_with(_Z, (3, 2), math.nan)),
        ValueError,
        "input holds NaN, +inf, or a row of only −inf: Q(ŷ|x) is undefined",
        from_forward=True,
    ),
    ApiCase(
        "mutual_information",
        "logits with a +inf",
        _mi(input=_with(_Z, (3, 2), math.inf)),
        ValueError,
        "input holds NaN, +inf, or a row of only −inf: Q(ŷ|x) is undefined",
        from_forward=True,
    ),
    ApiCase(
        "mutual_information",
        "logits with a row of only −inf",
        _mi(input=_with(_Z, (3,), -math.inf)),
        ValueError,
        "input holds NaN, +inf, or a row of only −inf: Q(ŷ|x) is undefined",
        from_forward=True,
    ),
    ApiCase(
        "mutual_information",
        "probabilities with a NaN",
        _mi(input=_with(torch.full((6, 4), 0.25), (1, 0), math.nan), probs=True),
        ValueError,
        "input holds NaN",
    ),
    ApiCase(
        "mutual_information",
        "probabilities with a negative entry",
        _mi(input=torch.tensor([[1.5, -0.5], [0.5, 0.5]]), target=torch.tensor([0, 1]), probs=True),
        ValueError,
        "input holds negative values: rows must be probabilities",
    ),
    ApiCase(
        "mutual_information",
        "probabilities whose rows sum to 1.2",
        _mi(input=torch.full((6, 4), 0.3), probs=True),
        ValueError,
        "input rows must sum to 1, but row 0 sums to 1.2",
    ),
    ApiCase(
        "mutual_information",
        "probabilities with an inf",
        _mi(input=_with(torch.full((6, 4), 0.25), (0, 0), math.inf), probs=True),
        ValueError,
        "input rows must sum to 1, but row 0 sums to inf",
    ),
    ApiCase(
        "mutual_information",
        "target a NumPy array",
        _mi(target=np.array([0, 1, 2, 3, 0, 1])),
        TypeError,
        "target must be a torch.Tensor, got ndarray",
    ),
    ApiCase(
        "mutual_information",
        "target on meta, input on cpu",
        _mi(target=_Y.to("meta")),
        ValueError,
        "target is on meta but input is on cpu",
    ),
    ApiCase(
        "mutual_information",
        "input on meta, target on cpu",
        _mi(input=_Z.to("meta")),
        ValueError,
        "input is on the meta device: I(y; ŷ) needs its values",
    ),
    ApiCase(
        "mutual_information",
        "input and target on meta",
        _mi(input=_Z.to("meta"), target=_Y.to("meta")),
        ValueError,
        "input is on the meta device: I(y; ŷ) needs its values",
    ),
    ApiCase(
        "mutual_information",
        "input a sparse tensor",
        _mi(input=_Z.to_sparse()),
        TypeError,
        "input must be a dense tensor, got layout torch.sparse_coo",
    ),
    ApiCase(
        "mutual_information",
        "target a sparse tensor",
        _mi(target=_Y.to_sparse()),
        TypeError,
        "target must be a dense tensor, got layout torch.sparse_coo",
    ),
    ApiCase(
        "mutual_information",
        "target (B,) float32",
        _mi(target=_Y.float()),
        TypeError,
        "target of shape (B,) must hold integer class indices, got dtype torch.float32",
    ),
    ApiCase(
        "mutual_information",
        "target (B,) bool",
        _mi(target=_Y > 0),
        TypeError,
        "target of shape (B,) must hold integer class indices, got dtype torch.bool",
    ),
    ApiCase(
        "mutual_information",
        "target 0-d",
        _mi(target=torch.tensor(1)),
        ValueError,
        "target must be (B,) class indices or (B, C_y) rows Pop(y|x), got shape ()",
    ),
    ApiCase(
        "mutual_information",
        "target 3-D",
        _mi(target=torch.zeros(6, 2, 2)),
        ValueError,
        "target must be (B,) class indices or (B, C_y) rows Pop(y|x), got shape (6, 2, 2)",
    ),
    ApiCase(
        "mutual_information",
        "target of 3 labels for B = 6",
        _mi(target=_Y[:3]),
        ValueError,
        "target has 3 labels but input has B = 6 rows",
    ),
    ApiCase(
        "mutual_information",
        "target label 4 for C = 4",
        _mi(target=_with(_Y, (1,), 4)),
        ValueError,
        "target holds label 4, outside [0, 4) (input has C = 4)",
    ),
    ApiCase(
        "mutual_information",
        "target label −1",
        _mi(target=_with(_Y, (1,), -1)),
        ValueError,
        "target holds label -1, outside [0, 4) (input has C = 4)",
    ),
    ApiCase(
        "mutual_information",
        "target label 2**40",
        _mi(target=_with(_Y, (1,), 2**40)),
        ValueError,
        "target holds label 1099511627776, outside [0, 4) (input has C = 4)",
    ),
    ApiCase(
        "mutual_information",
        "target rows (B, C_y) of int64",
        _mi(target=torch.zeros(6, 2, dtype=torch.int64)),
        TypeError,
        "target of shape (B, C_y) must hold probabilities Pop(y|x), got dtype torch.int64",
    ),
    ApiCase(
        "mutual_information",
        "target rows of 4 rows for B = 6",
        _mi(target=_ROWS[:4]),
        ValueError,
        "target has 4 rows but input has B = 6 rows",
    ),
    ApiCase(
        "mutual_information",
        "target rows (6, 0)",
        _mi(target=torch.zeros(6, 0)),
        ValueError,
        "target has no label classes (C_y = 0)",
    ),
    ApiCase(
        "mutual_information",
        "target rows summing to 1.4",
        _mi(target=torch.full((6, 2), 0.7)),
        ValueError,
        "target rows must sum to 1, but row 0 sums to 1.4",
    ),
    ApiCase(
        "mutual_information",
        "target rows with a NaN",
        _mi(target=_with(_ROWS, (2, 1), math.nan)),
        ValueError,
        "target holds NaN",
    ),
    ApiCase(
        "mutual_information",
        "target rows with a negative entry",
        _mi(target=torch.tensor([[1.5, -0.5]] * 6)),
        ValueError,
        "target holds negative values: rows must be probabilities",
    ),
    ApiCase(
        "mutual_information",
        "group given without torch.distributed",
        _mi(group=object()),
        ValueError,
        "group: ",
    ),
    ApiCase(
        "MMILoss",
        "target (B,) float32",
        lambda: MMILoss()(_Z, _Y.float()),
        TypeError,
        "target of shape (B,) must hold integer class indices, got dtype torch.float32",
    ),
    ApiCase(
        "entropies",
        "target of 3 labels for B = 6",
        lambda: entropies(_Z, _Y[:3]),
        ValueError,
        "target has 3 labels but input has B = 6 rows",
    ),
    ApiCase(
        "entropies",
        "probs = 0",
        lambda: entropies(torch.full((6, 4), 0.25), _Y, probs=0),
        TypeError,
        "probs must be True or False, got int",
    ),
    ApiCase(
        "entropies",
        "logits all NaN",
        lambda: entropies(torch.full((6, 4), math.nan), _Y),
        ValueError,
        "input holds NaN, +inf, or a row of only −inf: Q(ŷ|x) is undefined",
        from_forward=True,
    ),
    ApiCase(
        "matched_accuracy",
        "pred of 2 examples, target of 3",
        lambda: matched_accuracy([0, 1], [0, 1, 1]),
        ValueError,
        "pred has 2 examples but target has 3",
    ),
    ApiCase(
        "matched_accuracy",
        "pred = []",
        lambda: matched_accuracy([], []),
        ValueError,
        "pred is empty: at least one example is needed",
    ),
    ApiCase(
        "matched_accuracy",
        "pred = None",
        lambda: matched_accuracy(None, [0, 1]),
        ValueError,
        "pred must be (B,) class indices or (B, C) scores, got shape ()",
    ),
    ApiCase(
        "matched_accuracy",
        "pred (B,) floats",
        lambda: matched_accuracy([0.5, 1.0], [0, 1]),
        TypeError,
        "pred must hold integer class indices, got dtype float64",
    ),
    ApiCase(
        "matched_accuracy",
        "pred (B,) bools",
        lambda: matched_accuracy([True, False], [0, 1]),
        TypeError,
        "pred must hold integer class indices, got dtype bool",
    ),
    ApiCase(
        "matched_accuracy",
        "pred strings",
        lambda: matched_accuracy(["a", "b"], [0, 1]),
        TypeError,
        "pred must hold integer class indices, got dtype <U1",
    ),
    ApiCase(
        "matched_accuracy",
        "pred 3-D",
        lambda: matched_accuracy([[[0]]], [0]),
        ValueError,
        "pred must be (B,) class indices or (B, C) scores, got shape (1, 1, 1)",
    ),
    ApiCase(
        "matched_accuracy",
        "pred scores (2, 0)",
        lambda: matched_accuracy(np.zeros((2, 0)), [0, 1]),
        ValueError,
        "pred scores have no classes (shape (2, 0))",
    ),
    ApiCase(
        "matched_accuracy",
        "pred scores with a NaN",
        lambda: matched_accuracy(np.array([[0.0, math.nan], [1.0, 0.0]]), [0, 1]),
        ValueError,
        "pred holds NaN",
    ),
    ApiCase(
        "matched_accuracy",
        "pred scores complex",
        lambda: matched_accuracy(np.ones((2, 2), dtype=np.complex64), [0, 1]),
        TypeError,
        "pred scores must be real numbers, got dtype complex64",
    ),
    ApiCase(
        "matched_accuracy",
        "pred a ragged list [[0, 1], [2]]",
        lambda: matched_accuracy([[0, 1], [2]], [0, 1]),
        ValueError,
        "pred must be (B,) class indices or (B, C) scores, got a ragged sequence",
    ),
    ApiCase(
        "matched_accuracy",
        "target a ragged list [0, [1]]",
        lambda: matched_accuracy([0, 1], [0, [1]]),
        ValueError,
        "target must be (B,) class indices, got a ragged sequence",
    ),
    ApiCase(
        "matched_accuracy",
        "pred on the meta device",
        lambda: matched_accuracy(torch.ones(2, device="meta"), [0, 1]),
        ValueError,
        "pred is on the meta device: its labels are needed",
    ),
    ApiCase(
        "matched_accuracy",
        "target a sparse tensor",
        lambda: matched_accuracy([0, 1], torch.tensor([0, 1]).to_sparse()),
        TypeError,
        "target must be a dense tensor, got layout torch.sparse_coo",
    ),
    ApiCase(
        "matched_accuracy",
        "target 2-D",
        lambda: matched_accuracy([0], [[0, 1]]),
        ValueError,
        "target must be (B,) class indices, got shape (1, 2)",
    ),
]


# ---------------------------------------------------------------------------- dtype mixes


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


@dataclass(frozen=True)
class MutualInformationDtypes:
    """mutual_information(input, target): the value's and the gradient's dtype."""

    input: torch.dtype
    target: str  # "int64 indices", "int32 indices", "float64 rows", …
    value: torch.dtype
    grad: torch.dtype


MUTUAL_INFORMATION_DTYPES = [
    MutualInformationDtypes(torch.float32, "int64 indices", torch.float32, torch.float32),
    MutualInformationDtypes(torch.float32, "int32 indices", torch.float32, torch.float32),
    MutualInformationDtypes(torch.float32, "int16 indices", torch.float32, torch.float32),
    MutualInformationDtypes(torch.float32, "int8 indices", torch.float32, torch.float32),
    MutualInformationDtypes(torch.float32, "uint8 indices", torch.float32, torch.float32),
    MutualInformationDtypes(torch.bfloat16, "int64 indices", torch.bfloat16, torch.bfloat16),
    MutualInformationDtypes(torch.float16, "int64 indices", torch.float16, torch.float16),
    MutualInformationDtypes(torch.float64, "int64 indices", torch.float64, torch.float64),
    MutualInformationDtypes(torch.float32, "float64 rows", torch.float32, torch.float32),
    MutualInformationDtypes(torch.float64, "float32 rows", torch.float64, torch.float64),
    MutualInformationDtypes(torch.bfloat16, "float32 rows", torch.bfloat16, torch.bfloat16),
    MutualInformationDtypes(torch.float32, "bfloat16 rows", torch.float32, torch.float32),
]


# ---------------------------------------------------------------------------- CLI


@dataclass(frozen=True)
class CliCase:
    """`infonorm *argv`, run in a folder prepared by `files`: one line on stderr starting
    with `line`, exit status `code`. `files` maps names to bytes (None: a folder)."""

    command: str
    bad_input: str
    argv: tuple[str, ...]
    code: int
    line: str
    files: dict[str, bytes | None] = field(default_factory=dict)

    @property
    def id(self) -> str:
        return f"{self.command}: {self.bad_input}"


E = "infonorm: error: "
CLI_CASES: list[CliCase] = [
    CliCase("fit", "no FILE", ("fit",), 2, E + "the following arguments are required: FILE"),
    CliCase(
        "fit",
        "--method newton",
        ("fit", "c.txt", "--method", "newton"),
        2,
        E + "argument --method: invalid choice: 'newton'",
        {"c.txt": b"1\n"},
    ),
    CliCase(
        "fit",
        "--column without a name",
        ("fit", "c.txt", "--column"),
        2,
        E + "argument --column: expected one argument",
        {"c.txt": b"1\n"},
    ),
    CliCase("fit", "a missing file", ("fit", "missing.txt"), 1, E + "missing.txt: no such file"),
    CliCase(
        "fit",
        "a folder",
        ("fit", "folder"),
        1,
        E + "folder: is a folder, not a file",
        {"folder": None},
    ),
    CliCase(
        "fit", "an empty file", ("fit", "c.txt"), 1, E + "c.txt: holds no counts", {"c.txt": b""}
    ),
    CliCase(
        "fit",
        "blank lines only",
        ("fit", "c.txt"),
        1,
        E + "c.txt: holds no counts",
        {"c.txt": b"\n  \r\n\t\n"},
    ),
    CliCase(
        "fit",
        "a binary file (NUL bytes)",
        ("fit", "c.txt"),
        1,
        E + "c.txt: not a text file (it holds NUL bytes)",
        {"c.txt": b"\x00\x01\x02binary"},
    ),
    CliCase(
        "fit",
        "not UTF-8",
        ("fit", "c.txt"),
        1,
        E + "c.txt: not a UTF-8 text file",
        {"c.txt": b"1\n\xff\xfe\xfa\n"},
    ),
    CliCase(
        "fit",
        "a word",
        ("fit", "c.txt"),
        1,
        E + "c.txt:3: 'three' is not a whole number",
        {"c.txt": b"1\n2\nthree\n"},
    ),
    CliCase(
        "fit",
        "a negative count",
        ("fit", "c.txt"),
        1,
        E + "c.txt:2: '-2' is negative: counts must be >= 0",
        {"c.txt": b"1\n-2\n"},
    ),
    CliCase(
        "fit",
        "a fraction",
        ("fit", "c.txt"),
        1,
        E + "c.txt:2: '2.5' is not a whole number",
        {"c.txt": b"1\n2.5\n"},
    ),
    CliCase(
        "fit",
        "nan",
        ("fit", "c.txt"),
        1,
        E + "c.txt:2: 'nan' is not a whole number",
        {"c.txt": b"1\nnan\n"},
    ),
    CliCase(
        "fit",
        "inf",
        ("fit", "c.txt"),
        1,
        E + "c.txt:2: 'inf' is not a whole number",
        {"c.txt": b"1\ninf\n"},
    ),
    CliCase(
        "fit",
        "hexadecimal 0x10",
        ("fit", "c.txt"),
        1,
        E + "c.txt:1: '0x10' is not a whole number",
        {"c.txt": b"0x10\n"},
    ),
    CliCase(
        "fit",
        "a count above 1e12",
        ("fit", "c.txt"),
        1,
        E + "c.txt:2: '1000000000001' is above 1e12, too large for a count",
        {"c.txt": b"1\n1000000000001\n"},
    ),
    CliCase(
        "fit",
        "30 nines",
        ("fit", "c.txt"),
        1,
        E + "c.txt:2: '" + "9" * 30 + "' is above 1e12, too large for a count",
        {"c.txt": b"1\n" + b"9" * 30 + b"\n"},
    ),
    CliCase(
        "fit",
        "1e400 (overflows a float)",
        ("fit", "c.txt"),
        1,
        E + "c.txt:2: '1e400' is above 1e12, too large for a count",
        {"c.txt": b"1\n1e400\n"},
    ),
    CliCase(
        "fit",
        "-1e400",
        ("fit", "c.txt"),
        1,
        E + "c.txt:1: '-1e400' is negative: counts must be >= 0",
        {"c.txt": b"-1e400\n"},
    ),
    CliCase(
        "fit",
        "a line of 100 000 digits (beyond int()'s 4300)",
        ("fit", "c.txt"),
        1,
        E + "c.txt:2: '" + "9" * 40 + "…' is above 1e12, too large for a count",
        {"c.txt": b"1\n" + b"9" * 100_000 + b"\n"},
    ),
    CliCase(
        "fit",
        "a line of 100 000 letters",
        ("fit", "c.txt"),
        1,
        E + "c.txt:1: '" + "x" * 40 + "…' is not a whole number",
        {"c.txt": b"x" * 100_000 + b"\n"},
    ),
    CliCase(
        "fit",
        "a CSV file without --column",
        ("fit", "d.csv"),
        1,
        E + "d.csv: a CSV file needs --column NAME to name the column of counts",
        {"d.csv": b"a,b\n1,2\n"},
    ),
    CliCase(
        "fit",
        "a CSV without the named column",
        ("fit", "d.csv", "--column", "c"),
        1,
        E + "d.csv: no column 'c' (columns: 'a', 'b')",
        {"d.csv": b"a,b\n1,2\n"},
    ),
    CliCase(
        "fit",
        "a CSV with a header only",
        ("fit", "d.csv", "--column", "a"),
        1,
        E + "d.csv: holds no counts",
        {"d.csv": b"a,b\n"},
    ),
    CliCase(
        "fit",
        "a CSV whose column is all blank",
        ("fit", "d.csv", "--column", "b"),
        1,
        E + "d.csv: holds no counts",
        {"d.csv": b"a,b\n1,\n2, \n"},
    ),
    CliCase(
        "fit",
        "an empty file with --column",
        ("fit", "d.csv", "--column", "a"),
        1,
        E + "d.csv: no column 'a' (columns: none)",
        {"d.csv": b""},
    ),
    CliCase(
        "fit",
        "a CSV naming the column twice",
        ("fit", "d.csv", "--column", "a"),
        1,
        E + "d.csv: column 'a' appears 2 times",
        {"d.csv": b"a,a\n1,2\n"},
    ),
    CliCase(
        "fit",
        "a CSV with an unclosed quote",
        ("fit", "d.csv", "--column", "b"),
        1,
        E + "d.csv: malformed CSV (unexpected end of data)",
        {"d.csv": b'a,b\n1,"2\n'},
    ),
    CliCase(
        "fit",
        "a CSV with text after a closing quote",
        ("fit", "d.csv", "--column", "b"),
        1,
        E + "d.csv: malformed CSV (',' expected after '\"')",
        {"d.csv": b'a,b\n1,"2"x\n'},
    ),
    CliCase(
        "fit",
        "a CSV field of 200 000 characters",
        ("fit", "d.csv", "--column", "b"),
        1,
        E + "d.csv: malformed CSV (field larger than field limit (131072))",
        {"d.csv": b"a,b\n1," + b"2" * 200_000 + b"\n"},
    ),
    CliCase(
        "fit",
        "a CSV with a bad cell",
        ("fit", "d.csv", "--column", "b"),
        1,
        E + "d.csv:3: 'x' is not a whole number",
        {"d.csv": b"a,b\n1,2\n3,x\n"},
    ),
    CliCase(
        "reproduce",
        "--only P9",
        ("reproduce", "--only", "P9"),
        2,
        E + "argument --only: expected a comma-separated list of P1, P2, P3, got 'P9'",
    ),
    CliCase(
        "reproduce",
        "--only ''",
        ("reproduce", "--only", ""),
        2,
        E + "argument --only: expected a comma-separated list of P1, P2, P3, got ''",
    ),
    CliCase(
        "reproduce",
        "--seed -1",
        ("reproduce", "--seed", "-1"),
        2,
        E + "argument --seed: expected a seed >= 0, got -1",
    ),
    CliCase(
        "reproduce",
        "--seed x",
        ("reproduce", "--seed", "x"),
        2,
        E + "argument --seed: expected a whole number, got 'x'",
    ),
    CliCase(
        "reproduce",
        "--bogus",
        ("reproduce", "--bogus"),
        2,
        E + "unrecognized arguments: --bogus",
    ),
    CliCase(
        "reproduce",
        "--out a file",
        ("reproduce", "--out", "r.txt"),
        2,
        E + "--out r.txt is a file, not a folder",
        {"r.txt": b"x"},
    ),
    CliCase(
        "reproduce",
        "--out a folder that holds other files, not a report",
        ("reproduce", "--out", "home"),
        2,
        E + "--out home is a folder that holds no report (no claims.json and meta.json): "
        "replacing it would delete its files; choose a new or empty folder",
        {"home": None, "home/notes.txt": b"mine"},
    ),
    CliCase(
        "reproduce",
        "--out below a file",
        ("reproduce", "--out", "r.txt/report"),
        1,
        E + "--out r.txt/report cannot be created: r.txt is a file, not a folder",
        {"r.txt": b"x"},
    ),
    CliCase("bench", "no --op", ("bench",), 2, E + "the following arguments are required: --op"),
    CliCase(
        "bench",
        "--op softmax",
        ("bench", "--op", "softmax"),
        2,
        E + "argument --op: invalid choice: 'softmax'",
    ),
    CliCase(
        "bench",
        "--device tpu",
        ("bench", "--op", "layer_norm", "--device", "tpu"),
        2,
        E + "argument --device: invalid choice: 'tpu'",
    ),
    CliCase(
        "bench",
        "--quick yes",
        ("bench", "--op", "layer_norm", "--quick", "yes"),
        2,
        E + "unrecognized arguments: yes",
    ),
    CliCase(
        "bench",
        "--out a folder",
        ("bench", "--op", "layer_norm", "--out", "folder"),
        2,
        E + "--out folder is a folder, not a file",
        {"folder": None},
    ),
    CliCase(
        "bench",
        "--out below a file",
        ("bench", "--op", "layer_norm", "--out", "r.txt/b.json"),
        1,
        E + "--out r.txt/b.json cannot be created: r.txt is a file, not a folder",
        {"r.txt": b"x"},
    ),
    CliCase("(none)", "no command", (), 2, E + "the following arguments are required: command"),
    CliCase("(none)", "an unknown command", ("train",), 2, E + "argument command: invalid choice"),
]

# Inputs that are awkward but valid: each is read as the counts shown.
CLI_ACCEPTED: list[tuple[str, tuple[str, ...], dict[str, bytes], list[int]]] = [
    ("Windows line endings", ("fit", "c.txt"), {"c.txt": b"1\r\n2\r\n3\r\n"}, [1, 2, 3]),
    ("old Mac line endings (CR)", ("fit", "c.txt"), {"c.txt": b"1\r2\r3\r"}, [1, 2, 3]),
    ("a UTF-8 byte-order mark", ("fit", "c.txt"), {"c.txt": b"\xef\xbb\xbf1\n2\n"}, [1, 2]),
    ("no final newline", ("fit", "c.txt"), {"c.txt": b"4\n5"}, [4, 5]),
    ("spaces, tabs, signs", ("fit", "c.txt"), {"c.txt": b" +5 \n\t0\t\n-0\n"}, [5, 0, 0]),
    ("whole floats", ("fit", "c.txt"), {"c.txt": b"5.0\n1e3\n"}, [5, 1000]),
    ("the largest count, 1e12", ("fit", "c.txt"), {"c.txt": b"1\n1000000000000\n"}, [1, 10**12]),
    (
        "a CSV with Windows line endings",
        ("fit", "d.csv", "--column", "b"),
        {"d.csv": b"a,b\r\n1,2\r\n3,4\r\n"},
        [2, 4],
    ),
    (
        "a CSV with a byte-order mark, first column",
        ("fit", "d.csv", "--column", "a"),
        {"d.csv": b"\xef\xbb\xbfa,b\n1,2\n"},
        [1],
    ),
    (
        "a CSV with quoted cells and blanks",
        ("fit", "d.csv", "--column", "b"),
        {"d.csv": b'a,b\n1,"7"\n2,\n3," 8 "\n'},
        [7, 8],
    ),
]


def make_files(folder: Path, files: dict[str, bytes | None]) -> None:
    for name, content in files.items():
        path = folder / name
        if content is None:
            path.mkdir(parents=True, exist_ok=True)
        else:
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(content)


# ---------------------------------------------------------------------------- the page


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def _code(text: str) -> str:
    text = _cell(text)
    if len(text) > 110:
        text = text[:110] + "…"
    return f"`{text}`" if "`" not in text else f"``{text}``"


def _dtype(d: torch.dtype) -> str:
    return str(d).removeprefix("torch.")


def render() -> str:
    lines = [
        "# Robustness: bad input and what it gets",
        "",
        "Generated from `tests/robustness_cases.py` by "
        "`.venv/bin/python tests/robustness_cases.py > docs/robustness.md`; "
        "`tests/test_robustness.py` and `tests/test_cli_robustness.py` run every row and check "
        "that this page is up to date. A message is shown by its beginning (the test checks "
        "that the message starts so). Every error is raised before any work starts, but for "
        "the rows marked †: NaN and infinite logits are found in the sums of "
        "`mutual_information`'s forward pass (a check of their own would cost one more pass "
        "over the B × C logits); the error comes before any result or gradient.",
        "",
        "Conventions. Arguments of the wrong type get `TypeError`, of the wrong value, shape or "
        "device `ValueError`; each message names the argument. The counts given to "
        "`geometric.fit`, `empirical_cross_entropy` and `total_variation` (`samples`) are data, "
        "as read from a "
        "file by `infonorm fit`: whatever is wrong with them gets `ValueError`, the type "
        "included. The command line prints one "
        "line, `infonorm: error: …`, on stderr and exits 2 for usage errors, 1 for bad data "
        "(and for a destination that cannot be written), never with a traceback.",
        "",
        "## Library",
        "",
        "| function | bad input | exception | message begins with |",
        "|---|---|---|---|",
    ]
    for case in API_CASES:
        lines.append(
            f"| `{case.function}` | {_cell(case.bad_input)} | `{case.error.__name__}` "
            f"| {_code(case.prefix)}{' †' if case.from_forward else ''} |"
        )
    lines += [
        "",
        "### Accepted mixes of dtype, device, layout and gradients",
        "",
        "`layer_norm(x, A, B)`: statistics in float32 for half-precision x, in x's dtype "
        "otherwise; the output and x.grad have x's dtype, A.grad and B.grad their parameter's.",
        "",
        "| x | A, B | output | x.grad | A.grad, B.grad |",
        "|---|---|---|---|---|",
    ]
    for row in LAYER_NORM_DTYPES:
        lines.append(
            f"| {_dtype(row.x)} | {_dtype(row.params)} | {_dtype(row.y)} | {_dtype(row.dx)} "
            f"| {_dtype(row.dparams)} |"
        )
    lines += [
        "",
        "`mutual_information(input, target)`: sums in float32 for half-precision input, in "
        "input's dtype otherwise; label rows are cast to that dtype. No gradient flows into "
        "the target.",
        "",
        "| input | target | value | input.grad |",
        "|---|---|---|---|",
    ]
    for row in MUTUAL_INFORMATION_DTYPES:
        lines.append(
            f"| {_dtype(row.input)} | {row.target} | {_dtype(row.value)} | {_dtype(row.grad)} |"
        )
    lines += [
        "",
        "Also tested (tests/test_robustness.py): every `requires_grad` combination of x, A, B "
        "(only the inputs that need a gradient get one, each equal to the float64 reference; "
        "none: the output needs no grad), `torch.no_grad` and `torch.inference_mode`; "
        "non-contiguous x, A, B, expanded (stride 0) and channels-last x, transposed logits and "
        "strided targets give the contiguous results; zero-size leading dims give empty outputs "
        "and gradients; a layer with NaN or inf in x gives NaN in that layer only (no check: "
        "it would cost a device sync per call, and torch's own layer norm does the same); "
        "x, A, B all on the meta device give a meta output of x's shape, eps = 0 included; "
        "on a CUDA machine, x on CUDA with A or B on the CPU gets "
        "`ValueError: A is on cpu but x is on cuda:0: put both on one`, and logits on CUDA "
        "with labels on the CPU `ValueError: target is on cpu but input is on cuda:0`; "
        "geometric functions take Python numbers, NumPy values, and tensors of any integer "
        "or float dtype (computed in float64), keep a gradient through `lam`, and "
        "`total_variation` costs O(distinct counts), a count of 1e12 included.",
        "",
        "`mutual_information` also takes (tests/test_robustness.py, "
        "tests/test_mutual_information_properties.py): class indices of any integer dtype "
        "(uint8, int8, int16, int32, int64 give the same I and gradient; `entropies` and "
        "`mutual_information_reference` too); masked logits (−inf anywhere but in a whole "
        "row), with every kind of target: a finite I, finite gradients, 0 at the masked "
        "entries, equal to the reference on logits of −1e4 in their place; logits of ±100 in "
        "float32 and bfloat16, and ±3e38 in float32: finite and equal to the float64 "
        "reference; a target that requires grad (it is data: no gradient flows into it). "
        "`matched_accuracy` takes bfloat16 and float16 scores, negative and huge labels, and "
        "tensors that require grad.",
    ]
    lines += [
        "",
        "## Command line",
        "",
        "Run in a folder holding the files named; paths in messages are as given on the "
        "command line.",
        "",
        "| command | bad input | exit | stderr (one line) begins with |",
        "|---|---|---|---|",
    ]
    for case in CLI_CASES:
        lines.append(
            f"| `{case.command}` | {_cell(case.bad_input)} | {case.code} | {_code(case.line)} |"
        )
    lines += [
        "",
        "Also tested (tests/test_cli_robustness.py): a file that cannot be read "
        "(permission denied) exits 1 with `infonorm: error: c.txt: cannot be read "
        "(Permission denied)`; `reproduce --out` and `bench --out` are checked before any claim "
        "or benchmark runs, and a destination that cannot be written exits 1 with "
        "`infonorm: error: --out … cannot be written: …`; a report that fails while being "
        "written (disk full) exits 1 with one line and leaves the previous report as it was, "
        "with nothing beside it; `bench --out` writes its JSON through a file beside it; "
        "`bench --device cuda` without a CUDA device exits 1 with "
        "`infonorm: error: device 'cuda' asked for, but torch sees no CUDA device here`.",
        "",
        "### Awkward files that are read",
        "",
        "| input | counts read |",
        "|---|---|",
    ]
    for label, _argv, _files, counts in CLI_ACCEPTED:
        lines.append(f"| {label} | {', '.join(map(str, counts))} |")
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    print(render(), end="")
