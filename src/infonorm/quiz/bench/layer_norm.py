"""Layer norm + activation, forward and backward: ours against its peers in the same run.

CPU peers, float32, each timed as forward + backward of ⟨dy, L̃⟩ into x, A and B:

- "ours": `layer_norm` with backend="auto" (per position: ATen's fused layer norm with the
  activation in place; whole layer: the torch forward and the hand backward);
- "hand backward": backend="torch", the hand-derived backward the claims check (per
  position; for whole layers it is "ours");
- "composite": the autograd composite of the same function (`layer_norm_reference` in
  float32), what a user writes without a hand backward;
- "nn.LayerNorm + activation": torch's own module pair, nn.LayerNorm's forward
  (F.layer_norm with weight A and bias B) followed by the activation's nn module (per
  position, where it computes the same function).

The bytes autograd saves for backward are measured with saved-tensor hooks and given per
byte of x. Targets and verdicts live in docs/benchmarks.md. On CUDA the benchmark lives in
`infonorm.quiz.bench.layer_norm_cuda` (Triton kernels, GB/s), imported only when asked for.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Callable
from typing import Any

import torch
import torch.nn.functional as F

from infonorm.activations import ACTIVATIONS
from infonorm.layer_norm import layer_norm, layer_norm_reference
from infonorm.quiz.bench import BenchReport, median_seconds, saved_tensor_bytes

Progress = Callable[[str, int, int], None] | None

SHAPES = ((32, 64, 128), (8, 256, 512), (8, 512, 1024))
QUICK_SHAPES = ((4, 128, 256),)
# (scope, activation) per shape: the quiz's layer, and per position the drop-in default
# (identity), the quiz's relu and a smooth activation
CASES = (("layer", "relu"), ("position", "identity"), ("position", "relu"), ("position", "gelu"))
PEERS = ("ours", "hand backward", "composite", "nn.LayerNorm + activation")
COLUMNS = [
    "scope",
    "activation",
    "shape",
    *(f"{peer} ms" for peer in PEERS),
    "ours / nn.LayerNorm + activation",
    "ours / composite",
    *(f"saved/x {peer}" for peer in PEERS),
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


def _peers(scope: str, activation: str) -> dict[str, Callable[..., torch.Tensor]]:
    """The functions timed, each (x, A, B) -> L̃ with eps = 1e-5."""
    kw = {"scope": scope, "activation": activation}
    peers = {
        "ours": lambda x, A, B: layer_norm(x, A, B, **kw),
        "composite": lambda x, A, B: layer_norm_reference(x, A, B, dtype=torch.float32, **kw),
    }
    if scope == "position":
        peers["hand backward"] = lambda x, A, B: layer_norm(x, A, B, backend="torch", **kw)
        module = ACTIVATIONS[activation].module()
        # nn.LayerNorm's forward is F.layer_norm(x, (I,), weight, bias, eps)
        peers["nn.LayerNorm + activation"] = lambda x, A, B: module(
            F.layer_norm(x, x.shape[-1:], A, B, 1e-5)
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
    the machine (other work, the allocator returning memory) fall on every peer alike.
    Every other round runs the peers in reverse order, so that no peer always follows the
    same one (the allocator and the caches keep what the previous peer left)."""
    times: dict[str, list[float]] = {name: [] for name in steps}
    for round_ in range(2 if quick else 7):
        order = list(steps) if round_ % 2 == 0 else list(reversed(steps))
        for name in order:
            step = steps[name]
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
    cases = [(scope, activation, shape) for shape in shapes for scope, activation in CASES]
    # warm up on the largest shape first: the allocator's thresholds then settle on sizes
    # that every later case reuses instead of mapping fresh pages
    for scope, activation, shape in sorted(cases, key=lambda case: -math.prod(case[2])):
        x, A, B, dy = _inputs(shape)
        for f in _peers(scope, activation).values():
            for _ in range(2):
                _step(f, x, A, B, dy)()
    rows = []
    for done, (scope, activation, shape) in enumerate(cases):
        if progress is not None:
            label = f"layer_norm {scope} {activation} {'×'.join(map(str, shape))}"
            progress(label, done, len(cases))
        x, A, B, dy = _inputs(shape)
        peers = _peers(scope, activation)
        ms = _time_interleaved(
            {name: _step(f, x, A, B, dy) for name, f in peers.items()}, quick=quick
        )
        saved = {name: _saved_per_byte_of_x(f, x, A, B) for name, f in peers.items()}
        rows.append(_row(scope, activation, shape, ms, saved))
        if checkpoint is not None and done + 1 < len(cases):
            checkpoint(_cpu_report(rows, quick))
    if progress is not None:
        progress("layer_norm", len(cases), len(cases))
    return _cpu_report(rows, quick)


def _cpu_report(rows: list[dict[str, Any]], quick: bool) -> BenchReport:
    notes = [
        "forward + backward into x, A and B, float32, eps 1e-5; median wall time over rounds "
        "that alternate the peers; saved/x = bytes autograd keeps for backward per byte of x; "
        "ratios below 1 mean ours is faster",
    ]
    if quick:
        notes.append("quick run: shapes smaller than the full run's, a smoke test")
    return BenchReport(
        op="layer_norm",
        device="cpu",
        columns=COLUMNS,
        rows=list(rows),
        environment={"dtype": "float32", "eps": 1e-5},
        notes=notes,
    )


def _ratio(ms: dict[str, float], peer: str) -> float | None:
    return ms["ours"] / ms[peer] if peer in ms else None


def _row(
    scope: str,
    activation: str,
    shape: tuple[int, ...],
    ms: dict[str, float],
    saved: dict[str, float],
) -> dict[str, Any]:
    return {
        "scope": scope,
        "activation": activation,
        "shape": "×".join(map(str, shape)),
        **{f"{peer} ms": ms.get(peer) for peer in PEERS},
        "ours / nn.LayerNorm + activation": _ratio(ms, "nn.LayerNorm + activation"),
        "ours / composite": _ratio(ms, "composite"),
        **{f"saved/x {peer}": saved.get(peer) for peer in PEERS},
    }
