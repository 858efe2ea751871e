"""The ATen operations a call runs, as a TorchDispatchMode sees them, inside infonorm's own
operators too; and which of them would make the host wait for a CUDA device."""

from __future__ import annotations

from typing import Any

import torch
from torch.utils._python_dispatch import TorchDispatchMode

# operations that read a value on the host, or whose output's shape depends on values:
# on a CUDA device each waits for the device to finish
SYNCHRONIZING = {
    "aten._local_scalar_dense.default",
    "aten.item.default",
    "aten.is_nonzero.default",
    "aten.equal.default",
    "aten.allclose.default",
    "aten.nonzero.default",
    "aten.nonzero_numpy.default",
    "aten.argwhere.default",
    "aten.masked_select.default",
    "aten.bincount.default",
    "aten.repeat_interleave.Tensor",
}
# indexing with a boolean (or uint8) mask is a nonzero in disguise
MASK_INDEXING = {
    "aten.index.Tensor",
    "aten.index_put.default",
    "aten.index_put_.default",
    "aten._index_put_impl_.default",
}


class OperatorLog(TorchDispatchMode):
    """Records (name, args, kwargs) of every ATen operation run while active.

    A dispatch mode sees a custom operator as one call and not the operations its
    implementation runs; for infonorm's operators the implementation is run again with the
    mode on, so that those are recorded too.
    """

    def __init__(self) -> None:
        super().__init__()
        self.calls: list[tuple[str, tuple, dict]] = []

    @property
    def names(self) -> list[str]:
        return [name for name, _, _ in self.calls]

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        self.calls.append((str(func), args, kwargs))
        if func.namespace == "infonorm":
            keys = torch._C.DispatchKeySet(torch._C.DispatchKey.CompositeExplicitAutograd)
            with self:
                return func.redispatch(keys, *args, **kwargs)
        return func(*args, **kwargs)

    def synchronizing(self) -> list[str]:
        """The recorded operations that would wait for a CUDA device."""
        return [name for name, args, kwargs in self.calls if _synchronizes(name, args, kwargs)]


def _synchronizes(name: str, args: tuple, kwargs: dict) -> bool:
    if name in SYNCHRONIZING or name.startswith(("aten.unique", "aten._unique")):
        return True
    if name in MASK_INDEXING:
        indices = args[1] if len(args) > 1 else kwargs.get("indices", ())
        return any(_is_mask(index) for index in indices)
    return False


def _is_mask(index: Any) -> bool:
    return isinstance(index, torch.Tensor) and index.dtype in (torch.bool, torch.uint8)
