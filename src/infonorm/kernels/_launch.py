"""Launching a Triton kernel, and launching it again with less host work.

`launch(kernel, grid, args, meta, direct=...)` is `kernel[grid](*args, **meta)`. Each such
call goes through `JITFunction.run`: it binds the arguments, works out their
specialization (dtypes, 16-byte alignment of pointers, integers equal to 1 or divisible by
16), builds the compiled kernel's cache key, reads Triton's knobs, then launches. With
direct=True the compiled kernel returned by the first launch is kept under a key of our
own, and later launches with the same key call it as `JITFunction.run` would (Triton 3.6
to 3.9: `CompiledKernel.run(grid, stream, function, packed metadata, launch metadata,
hooks, *every argument in signature order)`), skipping the rest.

The key holds each tensor's dtype and whether its address is a multiple of 16, and every
other argument's exact value: whatever Triton specializes on is fixed by it, so a kept
kernel is only reused for arguments it would have been compiled for anyway. When a launch
hook is installed (a profiler), every launch goes through `JITFunction.run`.
"""

from __future__ import annotations

from typing import Any

import torch

try:
    from triton import knobs
except ImportError:  # a Triton without knobs (before 3.4): every launch through JITFunction.run
    knobs = None

# id(kernel) -> key -> (compiled kernel, the constexpr values that follow the arguments)
_COMPILED: dict[int, dict[tuple, tuple[Any, tuple]]] = {}
_MAX_KEYS_PER_KERNEL = 512


def launch(
    kernel,
    grid: tuple[int, ...],
    args: tuple,
    meta: dict[str, Any],
    *,
    direct: bool,
    device: int | None = None,
    stream: int | None = None,
) -> None:
    """kernel[grid](*args, **meta), `meta` holding the constexpr parameters (those after
    `args` in the kernel's signature) and launch options (num_warps, …). A direct launch
    goes to `stream` on `device` (default: the current ones)."""
    if not direct or _hooks_installed():
        kernel[grid](*args, **meta)
        return
    if device is None:
        device = torch.cuda.current_device()
    key = (device, *map(_specialization, args), *meta.items())
    kept = _COMPILED.setdefault(id(kernel), {})
    entry = kept.get(key)
    if entry is None:
        compiled = kernel[grid](*args, **meta)
        if hasattr(compiled, "result"):  # compiled asynchronously
            compiled = compiled.result()
        if len(kept) >= _MAX_KEYS_PER_KERNEL:
            kept.clear()
        constexprs = tuple(meta[p.name] for p in kernel.params[len(args) :])
        kept[key] = (compiled, constexprs)
        return
    compiled, constexprs = entry
    g = (*grid, 1, 1)[:3]
    if stream is None:
        stream = _current_stream(device)
    compiled.run(
        g[0], g[1], g[2], stream, compiled.function, compiled.packed_metadata,
        None, None, None, *args, *constexprs,
    )  # fmt: skip


def _specialization(arg):
    if isinstance(arg, torch.Tensor):
        return arg.dtype, arg.data_ptr() % 16 == 0
    return arg


def _hooks_installed() -> bool:
    if knobs is None:
        return True
    hooks = (knobs.runtime.launch_enter_hook, knobs.runtime.launch_exit_hook)
    return any(hook is not None and getattr(hook, "calls", True) for hook in hooks)


def _current_stream(device: int) -> int:
    # the raw handle, as Triton's own launch path reads it (no Stream object built)
    raw = getattr(torch._C, "_cuda_getCurrentRawStream", None)
    return raw(device) if raw is not None else torch.cuda.current_stream(device).cuda_stream
