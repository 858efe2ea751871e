"""Layer norm + ReLU, forward and backward: ours against its peers in the same run.

CPU peers, float32: the autograd composite of the same function (`layer_norm_reference`
in float32, what a user writes without a hand backward) for both scopes, and torch's native
`F.layer_norm` followed by ReLU where it computes the same thing (scope="position"). Each
is timed as forward + backward of ⟨dy, L̃⟩ into x, A and B; the bytes autograd saves for
backward are measured with saved-tensor hooks and given per byte of x.

On CUDA the benchmark lives in `infonorm.quiz.bench.layer_norm_cuda` (Triton kernels, GB/s),
imported only when asked for.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Callable
from typing import Any

import torch
import torch.nn.functional as F

from infonorm.layer_norm import SCOPES, layer_norm, layer_norm_reference
from infonorm.quiz.bench import BenchReport, median_seconds, saved_tensor_bytes

Progress = Callable[[str, int, int], None] | None

SHAPES = ((8, 256, 512), (8, 512, 768))
QUICK_SHAPES = ((4, 128, 256),)
TARGET_TIME_RATIO = 0.7  # ours / composite
TARGET_SAVED_RATIO = 1.25  # bytes saved for backward / bytes of x
COLUMNS = [
    "scope",
    "shape",
    "ours ms",
    "composite ms",
    "F.layer_norm ms",
    "ours/composite",
    "ours/F.layer_norm",
    "saved/x ours",
    "saved/x composite",
    "saved/x F.layer_norm",
]


def run(
    device: str, *, quick: bool = False, progress: Progress = None, checkpoint=None
) -> BenchReport:
    """Time forward + backward of ours and its peers on `device` ("cpu" or "cuda");
    `checkpoint` receives the report so far after each case."""
    if device == "cuda":
        from infonorm.quiz.bench.layer_norm_cuda import run_cuda

        return run_cuda(quick, progress, checkpoint)
    return _run_cpu(quick, progress, checkpoint)


def _peers(scope: str) -> dict[str, Callable[..., torch.Tensor]]:
    """The functions timed, each (x, A, B) -> L̃ with ReLU and eps = 1e-5."""
    peers = {
        "ours": lambda x, A, B: layer_norm(x, A, B, scope=scope, backend="torch"),
        "composite": lambda x, A, B: layer_norm_reference(
            x, A, B, scope=scope, dtype=torch.float32
        ),
    }
    if scope == "position":
        # torch's fused layer norm over the last dim, then ReLU: the same function
        peers["F.layer_norm"] = lambda x, A, B: torch.relu(
            F.layer_norm(x, x.shape[-1:], A, B, eps=1e-5)
        )
    return peers


def _inputs(shape: tuple[int, ...]) -> tuple[torch.Tensor, ...]:
    g = torch.Generator().manual_seed(0)
    x = torch.randn(shape, generator=g).requires_grad_()
    A = torch.randn(shape[-1], generator=g).requires_grad_()
    B = torch.randn(shape[-1], generator=g).requires_grad_()
    dy = torch.randn(shape, generator=g)
    return x, A, B, dy


def _step(f, x, A, B, dy) -> Callable[[], Any]:
    """Forward + backward of ⟨dy, f(x, A, B)⟩ into x, A and B."""
    return lambda: torch.autograd.grad(f(x, A, B), (x, A, B), dy)


def _time_interleaved(steps: dict[str, Callable[[], Any]], *, quick: bool) -> dict[str, float]:
    """Median ms of each step over rounds that alternate the peers, so that slow spells of
    the machine (other work, the allocator returning memory) fall on every peer alike."""
    times: dict[str, list[float]] = {name: [] for name in steps}
    for _ in range(2 if quick else 7):
        for name, step in steps.items():
            seconds = median_seconds(
                step,
                device="cpu",
                warmup=1,
                repeat=3 if quick else 5,
                min_seconds=0.01 if quick else 0.05,
            )
            times[name].append(1e3 * seconds)
    return {name: statistics.median(t) for name, t in times.items()}


def _saved_per_byte_of_x(f, x, A, B) -> float:
    return saved_tensor_bytes(lambda: f(x, A, B)) / (x.numel() * x.element_size())


def _run_cpu(quick: bool, progress: Progress, checkpoint=None) -> BenchReport:
    shapes = QUICK_SHAPES if quick else SHAPES
    cases = [(scope, shape) for shape in shapes for scope in SCOPES]
    # warm up on the largest shape first: the allocator's thresholds then settle on sizes
    # that every later case reuses instead of mapping fresh pages
    for scope, shape in sorted(cases, key=lambda case: -math.prod(case[1])):
        x, A, B, dy = _inputs(shape)
        for f in _peers(scope).values():
            for _ in range(2):
                _step(f, x, A, B, dy)()
    rows = []
    for done, (scope, shape) in enumerate(cases):
        if progress is not None:
            progress(f"layer_norm {scope} {'×'.join(map(str, shape))}", done, len(cases))
        x, A, B, dy = _inputs(shape)
        peers = _peers(scope)
        ms = _time_interleaved(
            {name: _step(f, x, A, B, dy) for name, f in peers.items()}, quick=quick
        )
        saved = {name: _saved_per_byte_of_x(f, x, A, B) for name, f in peers.items()}
        rows.append(_row(scope, shape, ms, saved))
        if checkpoint is not None and done + 1 < len(cases):
            checkpoint(_cpu_report(rows, quick))
    if progress is not None:
        progress("layer_norm", len(cases), len(cases))
    return _cpu_report(rows, quick)


def _cpu_report(rows: list[dict[str, Any]], quick: bool) -> BenchReport:
    return BenchReport(
        op="layer_norm",
        device="cpu",
        columns=COLUMNS,
        rows=list(rows),
        environment={"dtype": "float32", "activation": "relu", "eps": 1e-5},
        notes=_notes(rows, quick=quick),
    )


def _row(
    scope: str, shape: tuple[int, ...], ms: dict[str, float], saved: dict[str, float]
) -> dict[str, Any]:
    return {
        "scope": scope,
        "shape": "×".join(map(str, shape)),
        "ours ms": ms["ours"],
        "composite ms": ms["composite"],
        "F.layer_norm ms": ms.get("F.layer_norm"),
        "ours/composite": ms["ours"] / ms["composite"],
        "ours/F.layer_norm": ms["ours"] / ms["F.layer_norm"] if "F.layer_norm" in ms else None,
        "saved/x ours": saved["ours"],
        "saved/x composite": saved["composite"],
        "saved/x F.layer_norm": saved.get("F.layer_norm"),
    }


def _notes(rows: list[dict], *, quick: bool) -> list[str]:
    worst_time = max(row["ours/composite"] for row in rows)
    worst_saved = max(row["saved/x ours"] for row in rows)
    notes = [
        "forward + backward into x, A and B of layer norm + ReLU, float32, eps 1e-5; median "
        "wall time over rounds that alternate the peers; saved/x = bytes autograd keeps for "
        "backward per byte of x",
        f"targets: ours/composite <= {TARGET_TIME_RATIO} (worst here {worst_time:.3g}: "
        f"{'met' if worst_time <= TARGET_TIME_RATIO else 'missed'}); saved/x ours <= "
        f"{TARGET_SAVED_RATIO} (worst here {worst_saved:.3g}: "
        f"{'met' if worst_saved <= TARGET_SAVED_RATIO else 'missed'})",
    ]
    if quick:
        notes.append("quick run: shapes below the targets' (8×256×512 and up), a smoke test")
    return notes
