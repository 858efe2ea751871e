"""Tuning aid for the layer-norm kernels on a CUDA device: knob variants, per-kernel times,
registers.

    PYTHONPATH=src python3 -m infonorm.quiz.bench.layer_norm_knobs --out knobs.json

For each anchor shape it times our forward and forward+backward (`triton.testing.do_bench`
median, input sets rotated as in the benchmark) under the default knobs of
`infonorm.kernels.layer_norm` and under each variant of VARIANTS (module constants or
heuristics replaced for the duration of one measurement), then records one
forward+backward of the default under `torch.profiler` (the time of each kernel) and the
registers and spills of every kernel compiled. It checks nothing against peers: that is
`infonorm bench --op layer_norm --device cuda`. What it found is in
docs/kernels-layer-norm.md.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import math
import time
from collections.abc import Callable, Iterator
from typing import Any

import torch

from infonorm.quiz.bench import layer_norm_cuda as bench

# variant name -> replacements of module attributes of infonorm.kernels.layer_norm
Replacements = dict[str, Any]


def _warps_at_most(cap: int) -> Callable[[int], int]:
    from infonorm.kernels import layer_norm as kernels

    return lambda tile_elements: min(cap, kernels._pow2(tile_elements // 256))


def _variants(scope: str) -> dict[str, Callable[[], Replacements]]:
    """Knob settings worth comparing for `scope` (built lazily: they import the kernels)."""
    if scope == "position":
        return {
            "default": dict,
            "bwd 32 warps/SM": lambda: {"ROW_BWD_WARPS_PER_SM": 32},
            "tile 2048": lambda: {"ROW_TILE_ELEMENTS": 2048},
            "tile 8192": lambda: {"ROW_TILE_ELEMENTS": 8192},
            "prefetch two always": lambda: {"_prefetch_two": lambda tile, size: True},
            "prefetch one always": lambda: {"_prefetch_two": lambda tile, size: False},
            "≤ 8 warps": lambda: {"_warps": _warps_at_most(8)},
            "split bwd for rows > 4096": lambda: {"MAX_ROW_BWD": 4096},
        }
    return {
        "default": dict,
        "unit 4 tiles": lambda: {"SPLIT_UNIT_TILES": 4},
        "unit 16 tiles": lambda: {"SPLIT_UNIT_TILES": 16},
        "dx 32 warps/SM": lambda: {"SPLIT_DX_WARPS_PER_SM": 32},
        "tile 8192": lambda: {"SPLIT_TILE_ELEMENTS": 8192},
        "tile 2048": lambda: {"SPLIT_TILE_ELEMENTS": 2048},
        "prefetch one always": lambda: {"_prefetch_two": lambda tile, size: False},
        "≤ 8 warps": lambda: {"_warps": _warps_at_most(8)},
    }


@contextlib.contextmanager
def replaced(replacements: Replacements) -> Iterator[None]:
    """The kernels module with some attributes replaced, restored afterwards."""
    from infonorm.kernels import layer_norm as kernels

    saved = {name: getattr(kernels, name) for name in replacements}
    try:
        for name, value in replacements.items():
            setattr(kernels, name, value)
        yield
    finally:
        for name, value in saved.items():
            setattr(kernels, name, value)


def _time_variants(case: bench.Case, sets, rep: int) -> list[dict[str, Any]]:
    import triton.testing

    forward_bytes = bench.minimal_bytes(case.shape, case.dtype, bench.FORWARD_PASSES)
    training_bytes = bench.minimal_bytes(case.shape, case.dtype, bench.TRAINING_PASSES)
    forward, training = bench.ours_steps(case.scope)

    def median_ms(body) -> float:
        fn = bench._rotating(sets, body)
        return triton.testing.do_bench(fn, warmup=10, rep=rep, return_mode="median")

    variants = _variants(case.scope)
    # the default once more at the end: its spread against the first is the noise floor
    variants["default (again)"] = variants["default"]
    rows = []
    for name, make in variants.items():
        row: dict[str, Any] = {"case": case.label, "variant": name}
        try:
            with replaced(make()):
                fwd, train = median_ms(forward), median_ms(training)
        except Exception as exc:  # a variant that fails to compile or run is recorded
            row["error"] = repr(exc)[:300]
        else:
            row |= {
                "fwd ms": fwd,
                "fwd+bwd ms": train,
                "fwd TB/s": bench.tb_per_s(forward_bytes, fwd),
                "fwd+bwd TB/s": bench.tb_per_s(training_bytes, train),
            }
        rows.append(row)
        print(_line(row), flush=True)
    return rows


def _kernel_times(case: bench.Case, inputs) -> list[dict[str, Any]]:
    """Device time of each kernel in one forward+backward (default knobs), in µs."""
    from torch.profiler import ProfilerActivity, profile

    _, training = bench.ours_steps(case.scope)

    def step():
        training(*inputs)

    for _ in range(3):
        step()
    torch.cuda.synchronize()
    repeats = 5
    with profile(activities=[ProfilerActivity.CUDA]) as prof:
        for _ in range(repeats):
            step()
        torch.cuda.synchronize()
    totals: dict[str, list[float]] = {}
    for event in prof.events():
        if event.device_type == torch.autograd.DeviceType.CUDA:
            totals.setdefault(event.name, []).append(event.device_time)
    return [
        {
            "case": case.label,
            "kernel": name,
            "launches per step": len(times) / repeats,
            "µs per step": sum(times) / repeats,
        }
        for name, times in sorted(totals.items(), key=lambda item: -sum(item[1]))
    ]


def host_overhead(calls: int = 200) -> list[dict[str, Any]]:
    """CPU time per call (µs) of ours and its peers on inputs so small that the GPU work is
    negligible: the fixed cost every call pays whatever its size."""
    rows = []
    for scope, shape in (("position", (8, 256)), ("layer", (2, 8, 256))):
        steps = _host_steps(scope, shape)
        for name, step in steps.items():
            for _ in range(20):
                step()
            torch.cuda.synchronize()
            start = time.perf_counter()
            for _ in range(calls):
                step()
            seconds = time.perf_counter() - start
            torch.cuda.synchronize()
            rows.append({"scope": scope, "step": name, "host µs per call": 1e6 * seconds / calls})
            print(f"host {scope:<9} {name:<22} {1e6 * seconds / calls:7.1f} µs/call", flush=True)
        if scope == "position":
            rows.append({"scope": scope, "profile": _profile(steps["ours fwd+bwd"], calls)})
    return rows


def _host_steps(scope: str, shape: tuple[int, ...]) -> dict[str, Callable[[], Any]]:
    import torch.nn.functional as F

    x = torch.randn(shape, device="cuda", dtype=torch.bfloat16)
    A = torch.ones(shape[-1], device="cuda", dtype=torch.bfloat16)
    B = torch.zeros(shape[-1], device="cuda", dtype=torch.bfloat16)
    dy = torch.randn_like(x)
    leaves = [t.detach().requires_grad_() for t in (x, A, B)]
    forward, training = bench.ours_steps(scope)

    def ours_forward():
        return forward(x, A, B, dy)

    def ours_training():
        return training(x, A, B, dy)

    def eager_training():
        if scope == "position":
            y = torch.relu(F.layer_norm(leaves[0], shape[-1:], leaves[1], leaves[2]))
        else:
            y = bench._composite(*leaves, "layer")
        return torch.autograd.grad(y, leaves, dy)

    steps = {
        "ours fwd": ours_forward,
        "ours fwd+bwd": ours_training,
        "torch eager fwd+bwd": eager_training,
    }
    liger = bench._liger()
    if liger is not None and scope == "position":
        steps["Liger fwd+bwd"] = lambda: torch.autograd.grad(
            torch.relu(liger.apply(*leaves, 1e-5)), leaves, dy
        )
    return steps


def _profile(step: Callable[[], Any], calls: int) -> str:
    """cProfile of `calls` steps: the 25 functions with the most own time."""
    import cProfile
    import io
    import pstats

    profiler = cProfile.Profile()
    profiler.enable()
    for _ in range(calls):
        step()
    profiler.disable()
    torch.cuda.synchronize()
    text = io.StringIO()
    pstats.Stats(profiler, stream=text).sort_stats("tottime").print_stats(25)
    print(text.getvalue(), flush=True)
    return text.getvalue()


def compiled_resources() -> list[dict[str, Any]]:
    """Registers and spills of every kernel variant compiled so far in this process."""
    from infonorm.kernels import _layer_norm_position, _layer_norm_split

    rows = []
    for module in (_layer_norm_position, _layer_norm_split):
        for name in dir(module):
            fn = getattr(module, name)
            caches = getattr(fn, "device_caches", None)
            if not isinstance(caches, dict):
                continue
            for entry in caches.values():
                cache = entry[0] if isinstance(entry, tuple) else entry
                for compiled in getattr(cache, "values", lambda: [])():
                    meta = getattr(compiled, "metadata", None)
                    rows.append(
                        {
                            "kernel": name,
                            "registers": getattr(compiled, "n_regs", None),
                            "spills": getattr(compiled, "n_spills", None),
                            "warps": getattr(meta, "num_warps", None),
                            "shared bytes": getattr(meta, "shared", None),
                        }
                    )
    return rows


def _line(row: dict[str, Any]) -> str:
    if "error" in row:
        return f"{row['case']:<34} {row['variant']:<26} ERROR {row['error']}"
    return (
        f"{row['case']:<34} {row['variant']:<26} fwd {1e3 * row['fwd ms']:7.1f} µs "
        f"{row['fwd TB/s']:5.2f} TB/s   fwd+bwd {1e3 * row['fwd+bwd ms']:7.1f} µs "
        f"{row['fwd+bwd TB/s']:5.2f} TB/s"
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", required=True, help="JSON file for every figure")
    parser.add_argument("--cases", default="", help="substrings of case labels, comma-separated")
    parser.add_argument("--rep", type=int, default=50, help="do_bench repetition time, ms")
    args = parser.parse_args(argv)
    if not torch.cuda.is_available():
        parser.error("needs a CUDA device; torch sees none")
    properties = torch.cuda.get_device_properties(0)
    l2_bytes = int(getattr(properties, "L2_cache_size", 50 * 2**20))
    record: dict[str, Any] = {
        "device": torch.cuda.get_device_name(0),
        "copy TB/s": bench.copy_bandwidth(quick=True),
        "host": host_overhead(),
        "variants": [],
        "kernels": [],
    }
    for case in bench.selected_cases(False, args.cases):
        torch.manual_seed(math.prod(case.shape) % 2**31)
        sets = bench._input_sets(case, l2_bytes)
        record["variants"] += _time_variants(case, sets, args.rep)
        try:
            record["kernels"] += _kernel_times(case, sets[0])
        except Exception as exc:  # the profiler is a diagnostic: its failure is recorded
            record["kernels"].append({"case": case.label, "error": repr(exc)[:300]})
        del sets
        torch.cuda.empty_cache()
        with open(args.out, "w", encoding="utf-8") as file:
            json.dump(record, file, indent=1)
    record["resources"] = compiled_resources()
    with open(args.out, "w", encoding="utf-8") as file:
        json.dump(record, file, indent=1)
    for row in record["kernels"]:
        if "error" in row:
            print(f"{row['case']:<34} profiler failed: {row['error']}")
        else:
            print(f"{row['case']:<34} {row['kernel'][:60]:<60} {row['µs per step']:8.1f} µs")
    for row in record["resources"]:
        print(row)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
