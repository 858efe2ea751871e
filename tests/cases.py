"""What the robustness tables share: one row of bad input through the API.

Each op's rows live beside its tests (`tests/<op>/cases.py`, the command line's in
`tests/quiz/cases.py`); `scripts/robustness_page.py` renders them all into
docs/robustness.md, and each op's tests check that the page is up to date.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

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


def randn(*shape: int, **kw: Any) -> torch.Tensor:
    return torch.randn(*shape, generator=torch.Generator().manual_seed(0), **kw)


def with_value(t: torch.Tensor, index: tuple, value: float) -> torch.Tensor:
    t = t.clone()
    t[index] = value
    return t
