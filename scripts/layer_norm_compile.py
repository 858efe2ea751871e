"""What the sm_90 compiler makes of the layer-norm kernels, on a machine without a GPU.

For each benchmark shape and each tuning named below, runs the launch path of
`infonorm.kernels.layer_norm` on meta tensors with the launches recorded instead of made,
then compiles every recorded launch as `JITFunction.run` would on an H100/H200 (Triton's
own argument binder and specialization, target sm_90) and reads off the result: registers
per thread, stack bytes (spilled registers), 16-byte global loads, asynchronous copies
(Triton's pipeliner), shared memory. Registers and warps give the programs that fit on a
multiprocessor.

    PYTHONPATH=src python scripts/layer_norm_compile.py [--cases SUBSTRING,...] [--out FILE]

Needs triton (its bundled ptxas and cuobjdump), not a GPU; TRITON_INTERPRET must be unset.
"""

# ruff: noqa: E741

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import re
import subprocess
import sys
import tempfile
import time

import torch
import triton
from triton.backends.compiler import GPUTarget
from triton.compiler import ASTSource, make_backend
from triton.runtime.jit import create_function_from_signature

from infonorm.kernels import layer_norm as kernels
from infonorm.kernels._layer_norm_config import Tuning
from infonorm.quiz.bench import layer_norm_cuda as bench
from infonorm.quiz.bench.layer_norm_knobs import LEVERS

TARGET = GPUTarget("cuda", 90, 32)
REGISTERS_PER_SM = 65536
MAX_WARPS_PER_SM = 64


def record_launches(case: bench.Case, tuning: Tuning) -> list[tuple]:
    """(kernel, grid, args, meta) of every launch of one forward and one backward."""
    launches = []
    original = kernels.launch
    kernels.launch = lambda kernel, grid, args, meta, direct: launches.append(
        (kernel, grid, args, meta)
    )
    try:
        I = case.shape[-1]
        x = torch.empty(case.shape, dtype=case.dtype, device="meta")
        A = torch.empty(I, dtype=case.dtype, device="meta")
        X, R, _, _ = kernels._as_rows(x, case.scope)
        y = torch.empty_like(X)
        stats = torch.empty(R, device="meta")
        run = kernels._position_forward if case.scope == "position" else kernels._layer_forward
        run(X, y, A, A, stats, stats, 1e-5, bench.ACTIVATION, tuning)
        dA = torch.empty(I, dtype=case.dtype, device="meta")
        kernels._backward(X, X, A, A, stats, stats, y, dA, dA, bench.ACTIVATION, case.scope, tuning)
    finally:
        kernels.launch = original
    return launches


def compile_like_launch(kernel, args: tuple, meta: dict):
    backend = make_backend(TARGET)
    binder = create_function_from_signature(kernel.signature, kernel.params, backend)
    bound, specialization, options = binder(*args, **meta)
    options, signature, constexprs, attrs = kernel._pack_args(
        backend, meta, bound, specialization, options
    )
    source = ASTSource(kernel, signature, constexprs, attrs)
    return triton.compile(source, target=TARGET, options=options.__dict__)


def resources(compiled) -> dict:
    ptx = compiled.asm["ptx"]
    tools = os.path.join(os.path.dirname(triton.__file__), "backends", "nvidia", "bin")
    with tempfile.NamedTemporaryFile(suffix=".cubin", delete=False) as file:
        file.write(compiled.asm["cubin"])
    try:
        usage = subprocess.run(
            [os.path.join(tools, "cuobjdump"), "-res-usage", file.name],
            capture_output=True,
            text=True,
            check=True,
        ).stdout
    finally:
        os.unlink(file.name)
    match = re.search(r"REG:(\d+) STACK:(\d+) SHARED:(\d+) LOCAL:(\d+)", usage)
    registers = int(match[1]) if match else None
    warps = compiled.metadata.num_warps
    by_registers = REGISTERS_PER_SM // (registers * 32 * warps) if registers else None
    return {
        "registers": registers,
        "stack bytes": int(match[2]) if match else None,  # per thread: spilled registers
        "warps": warps,
        "programs per SM": min(by_registers or 0, MAX_WARPS_PER_SM // warps),
        "shared bytes": compiled.metadata.shared,
        "16-byte loads": len(re.findall(r"ld\.global[\w.]*\.v4", ptx)),
        "async copies": len(re.findall(r"cp\.async\.c[ag]", ptx)),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cases", default="", help="substrings of case labels, comma-separated")
    parser.add_argument("--tunings", default="", help="lever names, comma-separated")
    parser.add_argument("--out", help="JSON file for every row")
    args = parser.parse_args(argv)
    if os.environ.get("TRITON_INTERPRET") == "1":
        parser.error("unset TRITON_INTERPRET: this compiles for sm_90")
    rows = []
    for case in bench.selected_cases(False, args.cases):
        levers = {"default": {}, **LEVERS[case.scope]}
        wanted = [w for w in args.tunings.split(",") if w]
        for name, changes in levers.items():
            if wanted and name not in wanted:
                continue
            tuning = dataclasses.replace(Tuning(multiprocessors=132), **changes)
            for kernel, grid, launch_args, meta in record_launches(case, tuning):
                started = time.perf_counter()
                row = {"case": case.label, "tuning": name, "kernel": kernel.__name__}
                row["grid"] = list(grid)
                try:
                    row |= resources(compile_like_launch(kernel, launch_args, meta))
                except Exception as exc:  # a tuning that fails to compile is a finding
                    row["error"] = repr(exc)[:300]
                row["compile s"] = round(time.perf_counter() - started, 2)
                rows.append(row)
                print(json.dumps(row, ensure_ascii=False), flush=True)
    if args.out:
        record = {
            "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
            "command": " ".join(sys.argv),
            "target": "sm_90 (compiled offline, no GPU)",
            "triton": triton.__version__,
            "rows": rows,
        }
        with open(args.out, "w", encoding="utf-8") as file:
            json.dump(record, file, indent=1, ensure_ascii=False)
    return 0


if __name__ == "__main__":
    sys.exit(main())
