"""Benchmarks: each op timed against its peers in the same run, reported as ratios.

One module per op (`infonorm.quiz.bench.layer_norm`, `infonorm.quiz.bench.mutual_information`), each
with `run(device, *, quick=False, progress=None, checkpoint=None) -> BenchReport`.
"""

from __future__ import annotations

import importlib
import platform
import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any

import torch

OPS = ("layer_norm", "mutual_information")
DEVICES = ("cpu", "cuda")


@dataclass
class BenchReport:
    """The rows of one benchmark run and what it ran on."""

    op: str
    device: str
    columns: list[str]
    rows: list[dict[str, Any]]
    environment: dict[str, Any] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {
            "op": self.op,
            "device": self.device,
            "environment": self.environment,
            "columns": self.columns,
            "rows": self.rows,
            "notes": self.notes,
        }


def run(
    op: str, device: str, *, quick: bool = False, progress=None, checkpoint=None
) -> BenchReport:
    """Run the benchmark of `op` on `device` ("cpu" or "cuda"). `checkpoint`, if given,
    receives the report so far after each case, so that a run cut short keeps what it
    measured."""
    if op not in OPS:
        raise ValueError(f"op must be one of {', '.join(OPS)}; got {op!r}")
    if device not in DEVICES:
        raise ValueError(f"device must be one of {', '.join(DEVICES)}; got {device!r}")
    if device == "cuda" and not torch.cuda.is_available():
        raise ValueError("device 'cuda' asked for, but torch sees no CUDA device here")
    module = importlib.import_module(f"infonorm.quiz.bench.{op}")
    on_case = None
    if checkpoint is not None:

        def on_case(report: BenchReport) -> None:
            checkpoint(_with_environment(report, device))

    report = module.run(device, quick=quick, progress=progress, checkpoint=on_case)
    return _with_environment(report, device)


def _with_environment(report: BenchReport, device: str) -> BenchReport:
    """`report` with the device, date and versions recorded beside its own environment."""
    report.environment = {**environment(device), **report.environment}
    return report


def environment(device: str) -> dict[str, Any]:
    """Device, date and library versions, recorded beside every figure."""
    env = {
        "date": datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        "torch": torch.__version__,
        "python": platform.python_version(),
        "machine": platform.machine(),
        "processor": _cpu_name(),
        "threads": torch.get_num_threads(),
    }
    if device == "cuda":
        env["gpu"] = torch.cuda.get_device_name()
        env["cuda"] = torch.version.cuda
        try:
            import triton

            env["triton"] = triton.__version__
        except ImportError:
            env["triton"] = None
    return env


def _cpu_name() -> str:
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as info:
            for line in info:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def median_seconds(
    fn: Callable[[], Any],
    *,
    device: str,
    warmup: int = 3,
    repeat: int = 20,
    min_seconds: float = 0.2,
) -> float:
    """Median wall time of `fn()` over at least `repeat` runs (and at least `min_seconds`).

    CUDA work is asynchronous: each run is bracketed by device synchronization.
    """
    sync = torch.cuda.synchronize if device == "cuda" else (lambda: None)
    for _ in range(warmup):
        fn()
    sync()
    times: list[float] = []
    started = time.perf_counter()
    while len(times) < repeat or time.perf_counter() - started < min_seconds:
        begin = time.perf_counter()
        fn()
        sync()
        times.append(time.perf_counter() - begin)
        if len(times) >= 10 * repeat:
            break
    return statistics.median(times)


def saved_tensor_bytes(fn: Callable[[], torch.Tensor]) -> int:
    """Bytes of the distinct tensors autograd saves for backward while `fn()` runs."""
    seen: dict[tuple[int, int], int] = {}

    def pack(tensor: torch.Tensor) -> torch.Tensor:
        storage = tensor.untyped_storage()
        seen[(storage.data_ptr(), storage.nbytes())] = storage.nbytes()
        return tensor

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda tensor: tensor):
        fn()
    return sum(seen.values())
