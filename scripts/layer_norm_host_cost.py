"""Host cost of the layer-norm entry points with every kernel launch stubbed out, on CPU.

What `infonorm.kernels.layer_norm.forward`/`backward` spend in Python around their
launches (checks, views, configuration, allocations), measured on CPU tensors under
Triton's interpreter switch with each kernel replaced by a no-op: Triton's own launch
path and CUDA's allocator are not in these figures (the GPU session measures the whole
call: `python -m infonorm.quiz.bench.layer_norm_knobs`, host table).

    PYTHONPATH=src python scripts/layer_norm_host_cost.py [--calls N] [--rounds K]

Works on any version of the kernels module that launches module-level kernel objects as
`kernel[grid](...)`, so a checkout before a change can be timed the same way.
"""

from __future__ import annotations

import argparse
import os
import statistics
import time

os.environ["TRITON_INTERPRET"] = "1"  # before the kernels import: CPU tensors accepted

import torch

from infonorm.kernels import layer_norm as kernels


class _Stub:
    """Stands for a kernel: kernel[grid](*args, **meta) does nothing."""

    def __getitem__(self, grid):
        return _nothing


def _nothing(*args, **kwargs):
    return None


def stub_kernels() -> list[str]:
    names = [
        name
        for name, value in vars(kernels).items()
        if type(value).__name__ in ("InterpretedFunction", "JITFunction")
    ]
    for name in names:
        setattr(kernels, name, _Stub())
    return names


def per_call_us(step, calls: int, rounds: int) -> float:
    """Median over `rounds` of the mean time per call of `calls` calls, in µs."""
    for _ in range(calls // 10 + 1):
        step()
    times = []
    for _ in range(rounds):
        start = time.perf_counter()
        for _ in range(calls):
            step()
        times.append((time.perf_counter() - start) / calls)
    return 1e6 * statistics.median(times)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=2000)
    parser.add_argument("--rounds", type=int, default=7)
    args = parser.parse_args(argv)
    print(f"stubbed: {', '.join(sorted(stub_kernels()))}")
    for scope, shape in (("position", (8, 256)), ("layer", (2, 8, 256))):
        x = torch.randn(shape, dtype=torch.bfloat16)
        A = torch.ones(shape[-1], dtype=torch.bfloat16)
        B = torch.zeros(shape[-1], dtype=torch.bfloat16)
        dy = torch.randn_like(x)
        options = {"scope": scope, "activation": "relu"}
        _, mean, rstd = kernels.forward(x, A, B, eps=1e-5, **options)

        def forward(x=x, A=A, B=B, options=options):
            return kernels.forward(x, A, B, eps=1e-5, **options)

        def backward(x=x, A=A, B=B, dy=dy, mean=mean, rstd=rstd, options=options):
            return kernels.backward(dy, x, A, B, mean, rstd, **options)

        fwd = per_call_us(forward, args.calls, args.rounds)
        bwd = per_call_us(backward, args.calls, args.rounds)
        print(
            f"{scope:<9} {tuple(shape)!s:<13} forward {fwd:6.1f} µs   backward {bwd:6.1f} µs   "
            f"forward+backward {fwd + bwd:6.1f} µs per call (launches stubbed, CPU)"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
