"""What the robustness tables share: one row of bad input through the API.

Each op's rows live beside its tests (`tests/<op>/cases.py`, the command line's in
`tests/quiz/cases.py`); `scripts/robustness_page.py` renders them all into
docs/robustness.md, and each op's tests check that the page is up to date.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pytest
import torch


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


# output and gradients against the float64 reference on the same (rounded) inputs, per dtype
TOLERANCE = {torch.float64: 1e-10, torch.float32: 1e-5, torch.float16: 1e-2, torch.bfloat16: 5e-2}
requires_cuda = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")


def coarsest(*dtypes: torch.dtype) -> float:
    """The tolerance of the least precise of `dtypes`."""
    return max(TOLERANCE[d] for d in dtypes)


def assert_documented_error(case: ApiCase) -> None:
    """The row's call raises exactly its error type, with a message that starts as listed."""
    with pytest.raises(case.error) as info:
        case.call()
    assert type(info.value) is case.error
    assert str(info.value).startswith(case.prefix), str(info.value)


def randn(*shape: int, **kw: Any) -> torch.Tensor:
    return torch.randn(*shape, generator=torch.Generator().manual_seed(0), **kw)


def with_value(t: torch.Tensor, index: tuple, value: float) -> torch.Tensor:
    t = t.clone()
    t[index] = value
    return t
