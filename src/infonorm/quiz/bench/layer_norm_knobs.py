"""Tuning aid for the layer-norm kernels on a CUDA device: tunings against the default,
per-kernel times, host cost per call, registers.

    PYTHONPATH=src python3 -m infonorm.quiz.bench.layer_norm_knobs --out knobs.json [--sweep]

For each benchmark shape it checks and times our forward and forward+backward
(`triton.testing.do_bench` median, input sets rotated as in the benchmark) under the
default `Tuning` and under each lever of LEVERS (and, with --sweep, each setting of SWEEP):
the default first and again last, its spread the noise floor of the table. Each tuning's
outputs are compared with a float64 reference of the same inputs. Then it records one
forward+backward of the default under `torch.profiler` (the device time of each kernel),
the host cost per call on inputs so small that the device work is negligible, and the
registers and spills of every kernel compiled in the process. It checks nothing against
peers: that is `infonorm bench --op layer_norm --device cuda`. What it found, and what the
levers are expected to do, is in docs/kernels-layer-norm.md.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import math
import time
from collections.abc import Callable
from typing import Any

import torch

from infonorm.quiz.bench import layer_norm_cuda as bench

# tuning name -> fields of `infonorm.kernels.layer_norm.Tuning` changed from the default.
# LEVERS: the changes argued in docs/kernels-layer-norm.md, each to be kept or dropped on
# what the device measures.
LEVERS: dict[str, dict[str, dict[str, Any]]] = {
    "position": {
        "compiler pipelining": {"pipelining": "compiler"},
        "persistent forward": {"forward_programs_per_sm": 2},
        "persistent forward, compiler pipelining": {
            "forward_programs_per_sm": 2,
            "pipelining": "compiler",
        },
        "forward 32 elements/thread": {"forward_elements_per_thread": 32},
        # two rows per tile: measured faster in forward+backward and slower in forward on
        # an H200, which no single kernel time explains; timed here with its kernel times
        "tile 8192": {"row_tile_elements": 8192},
        "direct launch": {"launch": "direct"},
    },
    "layer": {
        "compiler pipelining": {"pipelining": "compiler"},
        "unit passes 2 stages": {"split_stats_stages": 2},
        "unit passes 3 stages": {"split_stats_stages": 3},
        "forward 16 elements/thread": {"forward_elements_per_thread": 16},
        "direct launch": {"launch": "direct"},
    },
}
# tunings whose kernel times are recorded too, beside the default's
PROFILED = ("tile 8192",)
_SIXTEEN_PER_THREAD = {"forward_elements_per_thread": 16, "backward_elements_per_thread": 16}
# SWEEP: the settings the earlier sessions compared (docs/results/layer_norm-knobs-cuda.json)
SWEEP: dict[str, dict[str, dict[str, Any]]] = {
    "position": {
        "bwd 32 warps/SM": {"row_backward_warps_per_sm": 32},
        "tile 2048": {"row_tile_elements": 2048},
        "prefetch two always": {"prefetch": "two"},
        "prefetch one always": {"prefetch": "one"},
        "16 elements/thread": _SIXTEEN_PER_THREAD,
        "split bwd for rows > 4096": {"max_row_backward": 4096},
    },
    "layer": {
        "unit 4 tiles": {"split_unit_tiles": 4},
        "unit 16 tiles": {"split_unit_tiles": 16},
        "dx 32 warps/SM": {"split_dx_warps_per_sm": 32},
        "tile 8192": {"split_tile_elements": 8192},
        "tile 2048": {"split_tile_elements": 2048},
        "prefetch one always": {"prefetch": "one"},
        "16 elements/thread": _SIXTEEN_PER_THREAD,
    },
}


def tuning(changes: dict[str, Any]):
    """The default `Tuning` with `changes`."""
    from infonorm.kernels.layer_norm import Tuning

    return dataclasses.replace(Tuning(), **changes)


def time_tunings(
    case: bench.Case,
    sets,
    tunings: dict[str, dict[str, Any]],
    rep: int = 50,
    deadline: float | None = None,
) -> list[dict[str, Any]]:
    """One row per tuning (the default first and last): error against float64, forward and
    forward+backward medians. Tunings left when time.monotonic() passes `deadline` are
    recorded as skipped."""
    import triton.testing

    forward_bytes = bench.minimal_bytes(case.shape, case.dtype, bench.FORWARD_PASSES)
    training_bytes = bench.minimal_bytes(case.shape, case.dtype, bench.TRAINING_PASSES)
    want = bench.reference(case, sets[0])

    def median_ms(body) -> float:
        fn = bench.rotating(sets, body)
        return triton.testing.do_bench(fn, warmup=10, rep=rep, return_mode="median")

    named = {"default": {}, **tunings, "default (again)": {}}
    rows = []
    for name, changes in named.items():
        row: dict[str, Any] = {"case": case.label, "tuning": name, "changes": changes}
        if deadline is not None and time.monotonic() > deadline and name != "default":
            row["skipped"] = "time budget spent"
            rows.append(row)
            continue
        try:
            chosen = tuning(changes)
            row["max rel err"] = bench.ours_error(case, sets[0], chosen, want)
            forward, training = bench.ours_steps(case.scope, chosen)
            fwd, train = median_ms(forward), median_ms(training)
        except Exception as exc:  # a tuning that fails to compile or run is recorded
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


def kernel_times(case: bench.Case, inputs, changes: dict[str, Any] | None = None):
    """Device time of each kernel in one forward+backward, in µs per step."""
    from torch.profiler import ProfilerActivity, profile

    _, training = bench.ours_steps(case.scope, tuning(changes or {}))
    for _ in range(3):
        training(*inputs)
    torch.cuda.synchronize()
    repeats = 5
    with profile(activities=[ProfilerActivity.CUDA]) as prof:
        for _ in range(repeats):
            training(*inputs)
        torch.cuda.synchronize()
    totals: dict[str, list[float]] = {}
    for event in prof.events():
        if event.device_type == torch.autograd.DeviceType.CUDA:
            totals.setdefault(event.name, []).append(event.device_time)
    return [
        {
            "case": case.label,
            "tuning": "default" if not changes else json.dumps(changes),
            "kernel": name,
            "launches per step": len(times) / repeats,
            "µs per step": sum(times) / repeats,
        }
        for name, times in sorted(totals.items(), key=lambda item: -sum(item[1]))
    ]


def host_overhead(calls: int = 200) -> list[dict[str, Any]]:
    """Wall time per call (µs) of ours and its peers on inputs so small that the device
    work is negligible: the fixed cost every call pays whatever its size."""
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
            torch.cuda.synchronize()
            per_call = 1e6 * (time.perf_counter() - start) / calls
            rows.append({"scope": scope, "step": name, "host µs per call": per_call})
            print(f"host {scope:<9} {name:<30} {per_call:7.1f} µs/call", flush=True)
        if scope == "position":
            for name in ("ours fwd+bwd", "ours direct fwd+bwd"):
                rows.append({"scope": scope, "step": name, "profile": _profile(steps[name], calls)})
    return rows


def _host_steps(scope: str, shape: tuple[int, ...]) -> dict[str, Callable[[], Any]]:
    x = torch.randn(shape, device="cuda", dtype=torch.bfloat16)
    A = torch.ones(shape[-1], device="cuda", dtype=torch.bfloat16)
    B = torch.zeros(shape[-1], device="cuda", dtype=torch.bfloat16)
    dy = torch.randn_like(x)
    leaves = [t.detach().requires_grad_() for t in (x, A, B)]
    steps: dict[str, Callable[[], Any]] = {}
    for label, changes in (("ours", {}), ("ours direct", {"launch": "direct"})):
        forward, training = bench.ours_steps(scope, tuning(changes))
        steps[f"{label} fwd"] = lambda forward=forward: forward(x, A, B, dy)
        steps[f"{label} fwd+bwd"] = lambda training=training: training(x, A, B, dy)

    def eager(x, A, B):
        return bench._composite(x, A, B, scope)

    steps["torch eager fwd"] = lambda: _no_grad(eager, *leaves)
    steps["torch eager fwd+bwd"] = lambda: _gradients(eager, leaves, dy)
    if scope == "position":
        peers, _ = bench.fused_peers()
        for name, (fn, differentiable) in peers.items():
            if differentiable:
                steps[f"{name} fwd+bwd"] = lambda fn=fn: _gradients(fn, leaves, dy)
    return steps


def _gradients(fn, leaves, dy):
    return torch.autograd.grad(fn(*leaves), leaves, dy)


def _no_grad(fn, *args):
    with torch.no_grad():
        return fn(*args)


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
    return text.getvalue()


def compiled_resources() -> list[dict[str, Any]]:
    """Registers and spills of every kernel variant compiled so far in this process."""
    from infonorm.kernels import _layer_norm_position, _layer_norm_split

    rows = []
    for module in (_layer_norm_position, _layer_norm_split):
        for name in dir(module):
            caches = getattr(getattr(module, name), "device_caches", None)
            if not isinstance(caches, dict):
                continue
            for entry in caches.values():
                cache = entry[0] if isinstance(entry, tuple) else entry
                for compiled in getattr(cache, "values", list)():
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
    head = f"{row['case']:<30} {row['tuning']:<42}"
    if "error" in row or "skipped" in row:
        return f"{head} {row.get('error') or row.get('skipped')}"
    return (
        f"{head} fwd {1e3 * row['fwd ms']:7.1f} µs {row['fwd TB/s']:5.2f} TB/s   "
        f"fwd+bwd {1e3 * row['fwd+bwd ms']:7.1f} µs {row['fwd+bwd TB/s']:5.2f} TB/s   "
        f"err {row['max rel err']:.1e}"
    )


def run(
    cases: tuple[bench.Case, ...],
    *,
    sweep: bool = False,
    rep: int = 50,
    deadline: float | None = None,
    checkpoint: Callable[[dict[str, Any]], None] | None = None,
) -> dict[str, Any]:
    """Every tuning table, kernel profile and resource row for `cases`."""
    properties = torch.cuda.get_device_properties(0)
    l2_bytes = int(getattr(properties, "L2_cache_size", 50 * 2**20))
    record: dict[str, Any] = {"device": torch.cuda.get_device_name(0), "tunings": [], "kernels": []}
    for case in cases:
        torch.manual_seed(math.prod(case.shape) % 2**31)
        sets = bench.input_sets(case, l2_bytes)
        tunings = {**LEVERS[case.scope], **(SWEEP[case.scope] if sweep else {})}
        record["tunings"] += time_tunings(case, sets, tunings, rep, deadline)
        for changes in ({}, *(tunings[name] for name in PROFILED if name in tunings)):
            try:
                record["kernels"] += kernel_times(case, sets[0], changes)
            except Exception as exc:  # the profiler is a diagnostic: its failure is recorded
                record["kernels"].append({"case": case.label, "error": repr(exc)[:300]})
        del sets
        torch.cuda.empty_cache()
        if checkpoint is not None:
            checkpoint(record)
    record["resources"] = compiled_resources()
    return record


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", required=True, help="JSON file for every figure")
    parser.add_argument("--cases", default="", help="substrings of case labels, comma-separated")
    parser.add_argument("--rep", type=int, default=50, help="do_bench repetition time, ms")
    parser.add_argument("--sweep", action="store_true", help="also the settings of SWEEP")
    args = parser.parse_args(argv)
    if not torch.cuda.is_available():
        parser.error("needs a CUDA device; torch sees none")

    def save(record: dict[str, Any]) -> None:
        with open(args.out, "w", encoding="utf-8") as file:
            json.dump(record, file, indent=1, ensure_ascii=False)

    host = host_overhead()
    record = run(bench.selected_cases(False, args.cases), sweep=args.sweep, rep=args.rep,
                 checkpoint=lambda r: save({"host": host, **r}))  # fmt: skip
    save({"host": host, **record})
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
