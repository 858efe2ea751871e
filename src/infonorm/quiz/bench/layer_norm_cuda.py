"""Layer norm + ReLU on a CUDA device: our Triton kernels against their peers in one run.

Invoked through `infonorm bench --op layer_norm --device cuda` (the CPU module
`infonorm.quiz.bench.layer_norm` hands over to `run_cuda`). For every case (scope, shape,
dtype) it

1. checks ours (`infonorm.kernels.layer_norm.forward`/`backward`) against a float64
   autograd reference on the same inputs: ‖out − ref‖/‖ref‖ for y, dx, dA, dB, the largest
   reported;
2. times forward and forward+backward (into x, A and B, given dy) of each peer with
   `triton.testing.do_bench` (median; L2 cleared before each run by do_bench, and inputs
   rotated among a few sets when they fit in L2), so that a host-bound call is timed with
   its host cost:
   - ours: the kernels' entry points directly (forward, then backward);
   - torch eager: F.layer_norm + relu (scope="position"); for scope="layer" the autograd
     composite over the last two dims (statistics in float32) with per-feature A, B;
   - torch.compile of the eager function, compiled afresh for each shape (dynamic=False);
   - Liger-Kernel's, Apex's and QuACK's LayerNorm + relu (scope="position") where they
     import (QuACK's has a forward only); a peer that does not import or fails is named in
     the notes;
3. reports effective bandwidth with the minimal bytes (forward: read x, write y = 2
   passes; forward+backward: + read x, dy and write dx = 5 passes) against the
   device-to-device copy bandwidth measured in the same run.

`run_block` times a small transformer block under `torch.compile(mode="reduce-overhead")`
(CUDA graphs) with `infonorm.LayerNorm` against the same block with `torch.nn.LayerNorm`.

Shapes can be narrowed with INFONORM_BENCH_CASES (comma-separated substrings of
"scope shape dtype", e.g. "position 16384×4096 bfloat16"). This module measures only;
what the figures are held against is in docs/benchmarks.md.
"""

from __future__ import annotations

import math
import os
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F

from infonorm.layer_norm import layer_norm_reference
from infonorm.quiz.bench import BenchReport

Progress = Callable[[str, int, int], None] | None
Checkpoint = Callable[[BenchReport], None] | None

EPS = 1e-5
ACTIVATION = "relu"
FORWARD_PASSES = 2  # read x, write y
TRAINING_PASSES = 5  # forward's 2 + read x, read dy, write dx

COLUMNS = [
    "scope",
    "shape",
    "dtype",
    "peer",
    "fwd ms",
    "fwd+bwd ms",
    "fwd TB/s",
    "fwd+bwd TB/s",
    "ours speedup fwd",
    "ours speedup fwd+bwd",
    "max rel err",
]


@dataclass(frozen=True)
class Case:
    scope: str
    shape: tuple[int, ...]
    dtype: torch.dtype

    @property
    def label(self) -> str:
        return f"{self.scope} {_shape(self.shape)} {_dtype(self.dtype)}"


# the largest shapes first, then the host-bound ones (a run cut short keeps
# them: the JSON is rewritten after each case), then the rest
CASES = (
    Case("position", (16384, 4096), torch.bfloat16),
    Case("layer", (8, 2048, 4096), torch.bfloat16),
    Case("position", (16384, 1024), torch.bfloat16),
    Case("position", (8, 256), torch.bfloat16),
    Case("layer", (32, 512, 1024), torch.bfloat16),
    Case("layer", (8, 256), torch.bfloat16),
    Case("position", (16384, 4096), torch.float32),
    Case("position", (4096, 8192), torch.bfloat16),
    Case("position", (4096, 8192), torch.float32),
    Case("layer", (4, 4096, 4096), torch.bfloat16),
    Case("layer", (8, 2048, 4096), torch.float32),
)
QUICK_CASES = CASES[:2]


# ---------------------------------------------------------------------------- pure helpers


def _shape(shape: tuple[int, ...]) -> str:
    return "×".join(map(str, shape))


def _dtype(dtype: torch.dtype) -> str:
    return str(dtype).removeprefix("torch.")


def minimal_bytes(shape: tuple[int, ...], dtype: torch.dtype, passes: int) -> int:
    """Bytes of `passes` passes over a tensor of `shape` and `dtype` (A, B, μ, σ neglected)."""
    return passes * math.prod(shape) * dtype.itemsize


def tb_per_s(nbytes: float, ms: float | None) -> float | None:
    """Effective bandwidth in TB/s (10¹² bytes per second) of `nbytes` moved in `ms`."""
    if ms is None or ms <= 0:
        return None
    return nbytes / (ms * 1e-3) / 1e12


def selected_cases(quick: bool, selection: str | None = None) -> tuple[Case, ...]:
    """The cases to run: QUICK_CASES or CASES, narrowed by comma-separated substrings."""
    cases = QUICK_CASES if quick else CASES
    if not selection:
        return cases
    wanted = [s.strip() for s in selection.split(",") if s.strip()]
    return tuple(case for case in cases if any(w in case.label for w in wanted))


def input_set_count(x_bytes: int, l2_bytes: int) -> int:
    """How many input sets to rotate among: enough that x and dy of the sets in turn
    overflow L2 four times (at most 8); one set when x alone exceeds L2."""
    if x_bytes > l2_bytes:
        return 1
    return min(8, max(2, math.ceil(4 * l2_bytes / (2 * x_bytes))))


def build_rows(case: Case, timings: dict[str, tuple[float | None, float | None]], error):
    """One row per peer; `timings` maps peer -> (forward ms, forward+backward ms) and must
    hold "ours"; `error` is ours' largest relative error against float64."""
    forward_bytes = minimal_bytes(case.shape, case.dtype, FORWARD_PASSES)
    training_bytes = minimal_bytes(case.shape, case.dtype, TRAINING_PASSES)
    ours_fwd, ours_train = timings["ours"]
    rows = []
    for peer, (fwd, train) in timings.items():
        rows.append(
            {
                "scope": case.scope,
                "shape": _shape(case.shape),
                "dtype": _dtype(case.dtype),
                "peer": peer,
                "fwd ms": fwd,
                "fwd+bwd ms": train,
                "fwd TB/s": tb_per_s(forward_bytes, fwd),
                "fwd+bwd TB/s": tb_per_s(training_bytes, train),
                "ours speedup fwd": _ratio(fwd, ours_fwd),
                "ours speedup fwd+bwd": _ratio(train, ours_train),
                "max rel err": error if peer == "ours" else None,
            }
        )
    return rows


def _ratio(peer_ms: float | None, ours_ms: float | None) -> float | None:
    if peer_ms is None or ours_ms is None or ours_ms <= 0:
        return None
    return peer_ms / ours_ms


def max_relative_error(got, want) -> float:
    """The largest ‖got − want‖/‖want‖ over paired tensors (inf if got is not finite)."""
    errors = []
    for g, w in zip(got, want, strict=True):
        if not torch.isfinite(g).all():
            return math.inf
        errors.append(((g.double() - w).norm() / w.norm().clamp_min(1e-300)).item())
    return max(errors)


# ---------------------------------------------------------------------------- ours, reference


def ours_steps(scope: str, tuning=None) -> tuple[Callable[..., Any], Callable[..., Any]]:
    """Our forward, and forward then backward, each called as step(x, A, B, dy)."""
    from infonorm.kernels import layer_norm as kernels

    options = {"scope": scope, "activation": ACTIVATION, "tuning": tuning}

    def forward(x, A, B, dy):
        return kernels.forward(x, A, B, eps=EPS, **options)

    def training(x, A, B, dy):
        y, mean, rstd = forward(x, A, B, dy)
        return (y, *kernels.backward(dy, x, A, B, mean, rstd, **options))

    return forward, training


def reference(case: Case, inputs) -> tuple[torch.Tensor, ...]:
    """(y, dx, dA, dB) in float64 by autograd on the same inputs."""
    x, A, B, dy = inputs
    x64, A64, B64 = (t.detach().double().requires_grad_() for t in (x, A, B))
    y64 = layer_norm_reference(x64, A64, B64, scope=case.scope, activation="relu", eps=EPS)
    grads = torch.autograd.grad(y64, (x64, A64, B64), dy.double())
    return (y64.detach(), *grads)


def ours_error(case: Case, inputs, tuning=None, want=None) -> float:
    """Largest ‖ours − ref‖/‖ref‖ over y, dx, dA, dB."""
    _, training = ours_steps(case.scope, tuning)
    return max_relative_error(training(*inputs), want or reference(case, inputs))


# ---------------------------------------------------------------------------- peers


def _composite(x: torch.Tensor, A: torch.Tensor, B: torch.Tensor, scope: str) -> torch.Tensor:
    """The eager peer: what a user writes without a fused kernel."""
    if scope == "position":
        return torch.relu(F.layer_norm(x, x.shape[-1:], A, B, eps=EPS))
    # whole-layer statistics over the last two dims (float32), per-feature A[i], B[i]
    xf = x.float()
    mu = xf.mean((-2, -1), keepdim=True)
    var = xf.var((-2, -1), unbiased=False, keepdim=True)
    return torch.relu(A * ((xf - mu) * torch.rsqrt(var + EPS)) + B).to(x.dtype)


def fused_peers() -> tuple[dict[str, tuple[Callable, bool]], list[str]]:
    """Per-position LayerNorm + relu of the libraries that import here, as
    {name: (fn(x, A, B), differentiable)}, and a note for each that does not."""
    peers: dict[str, tuple[Callable, bool]] = {}
    notes = []
    try:
        from liger_kernel.ops.layer_norm import LigerLayerNormFunction

        peers["Liger-Kernel"] = (
            lambda x, A, B: torch.relu(LigerLayerNormFunction.apply(x, A, B, EPS)),
            True,
        )
    except Exception as exc:  # any import failure: the peer is left out, with a note
        notes.append(f"Liger-Kernel does not import here ({exc!r:.120}): its peer is left out")
    try:
        from apex.normalization.fused_layer_norm import fused_layer_norm_affine

        peers["Apex"] = (
            lambda x, A, B: torch.relu(fused_layer_norm_affine(x, A, B, x.shape[-1:], EPS)),
            True,
        )
    except Exception as exc:
        notes.append(f"Apex does not import here ({exc!r:.120}): its peer is left out")
    try:
        from quack import layernorm as quack_layernorm

        forward = getattr(quack_layernorm, "layernorm", None) or quack_layernorm._layernorm_fwd
        # QuACK's LayerNorm has a float32 scale and no shift: A as float32, B added after
        peers["QuACK"] = (
            lambda x, A, B: torch.relu(forward(x.view(-1, x.shape[-1]), A.float(), EPS) + B),
            False,
        )
    except Exception as exc:
        notes.append(f"QuACK does not import here ({exc!r:.120}): its peer is left out")
    return peers, notes


# ---------------------------------------------------------------------------- timing


def _do_bench(fn: Callable[[], Any], quick: bool) -> float:
    import triton.testing

    return triton.testing.do_bench(
        fn, warmup=10 if quick else 25, rep=40 if quick else 100, return_mode="median"
    )


def input_sets(case: Case, l2_bytes: int, count: int | None = None):
    """A few (x, A, B, dy) sets, fresh random data: more than one when x fits in L2."""
    if count is None:
        count = input_set_count(minimal_bytes(case.shape, case.dtype, 1), l2_bytes)
    sets = []
    for _ in range(count):
        x = torch.randn(case.shape, device="cuda", dtype=case.dtype)
        features = case.shape[-1]
        A = (1 + 0.1 * torch.randn(features, device="cuda")).to(case.dtype)
        B = (0.1 * torch.randn(features, device="cuda")).to(case.dtype)
        dy = torch.randn(case.shape, device="cuda", dtype=case.dtype)
        sets.append((x, A, B, dy))
    return sets


def rotating(sets, body: Callable[..., Any]) -> Callable[[], Any]:
    """body(*set) over the sets in turn, one per call."""
    state = {"i": 0}

    def run():
        inputs = sets[state["i"] % len(sets)]
        state["i"] += 1
        return body(*inputs)

    return run


def _time_ours(case: Case, sets, quick: bool) -> tuple[float, float]:
    forward, training = ours_steps(case.scope)
    forward_ms = _do_bench(rotating(sets, forward), quick)
    return forward_ms, _do_bench(rotating(sets, training), quick)


def _time_autograd(fn, sets, quick: bool, differentiable: bool = True):
    """Forward under no_grad, and forward + backward into x, A, B of an autograd function
    (None for a forward-only peer)."""
    leaves = [(*(t.detach().requires_grad_() for t in s[:3]), s[3]) for s in sets]

    def forward(x, A, B, dy):
        with torch.no_grad():
            return fn(x, A, B)

    def training(x, A, B, dy):
        return torch.autograd.grad(fn(x, A, B), (x, A, B), dy)

    forward_ms = _do_bench(rotating(leaves, forward), quick)
    if not differentiable:
        return forward_ms, None
    return forward_ms, _do_bench(rotating(leaves, training), quick)


def copy_bandwidth(quick: bool) -> float:
    """TB/s of a device-to-device copy of 1 GiB (bytes read + written), the ceiling."""
    src = torch.randn(2**28, device="cuda")
    dst = torch.empty_like(src)
    ms = _do_bench(lambda: dst.copy_(src), quick)
    nbytes = 2 * src.numel() * src.element_size()
    return tb_per_s(nbytes, ms)


# ---------------------------------------------------------------------------- the run


def run_cuda(
    quick: bool = False,
    progress: Progress = None,
    checkpoint: Checkpoint = None,
    deadline: float | None = None,
) -> BenchReport:
    """Time ours against its peers at every case on the current CUDA device; `checkpoint`
    receives the report so far after each case; cases left when time.monotonic() passes
    `deadline` are skipped, and the report says so."""
    if not torch.cuda.is_available():
        raise ValueError("the CUDA benchmark needs a CUDA device; torch sees none")
    properties = torch.cuda.get_device_properties(torch.cuda.current_device())
    l2_bytes = int(getattr(properties, "L2_cache_size", 50 * 2**20))
    cases = selected_cases(quick, os.environ.get("INFONORM_BENCH_CASES"))
    peers, failures = fused_peers()
    copy_tbs = copy_bandwidth(quick)
    rows: list[dict[str, Any]] = []
    for done, case in enumerate(cases):
        if deadline is not None and time.monotonic() > deadline:
            failures.append(f"time budget spent: {len(cases) - done} cases not run")
            break
        if progress is not None:
            progress(f"layer_norm cuda {case.label}", done, len(cases))
        torch.manual_seed(done)
        rows.extend(_run_case(case, l2_bytes, peers, failures, quick))
        torch.cuda.empty_cache()
        if checkpoint is not None and done + 1 < len(cases):
            checkpoint(_report(rows, failures, copy_tbs, properties, quick, done + 1, len(cases)))
    if progress is not None:
        progress("layer_norm cuda", len(cases), len(cases))
    finished = len({(row["scope"], row["shape"], row["dtype"]) for row in rows})
    return _report(rows, failures, copy_tbs, properties, quick, finished, len(cases))


def _run_case(case: Case, l2_bytes: int, peers, failures: list[str], quick: bool):
    """The rows of one case: ours checked against float64, then every peer timed."""
    sets = input_sets(case, l2_bytes)
    error = ours_error(case, sets[0])
    timings: dict[str, tuple[float | None, float | None]] = {"ours": _time_ours(case, sets, quick)}

    def eager(x, A, B, scope=case.scope):
        return _composite(x, A, B, scope)

    timings["torch eager"] = _time_autograd(eager, sets, quick)
    torch._dynamo.reset()  # compiled afresh for this shape
    compiled = torch.compile(eager, dynamic=False)
    timings["torch.compile"] = _time_autograd(compiled, sets, quick)
    if case.scope == "position":
        for name, (fn, differentiable) in peers.items():
            try:
                timings[name] = _time_autograd(fn, sets, quick, differentiable)
            except Exception as exc:  # a peer that fails is reported, not fatal
                failures.append(f"{name} failed at {case.label}: {exc!r}"[:300])
    return build_rows(case, timings, error)


def _report(rows, failures, copy_tbs, properties, quick, done: int, total: int) -> BenchReport:
    import triton

    notes = [
        f"layer norm + {ACTIVATION}, eps {EPS}; triton.testing.do_bench median; effective "
        f"TB/s counts the minimal bytes: forward {FORWARD_PASSES} passes over x's size, "
        f"forward+backward {TRAINING_PASSES}; device-to-device copy: {copy_tbs:.2f} TB/s "
        "(read + written), the ceiling",
        *failures,
    ]
    if done < total:
        notes.append(f"partial: {done} of {total} cases so far")
    if quick:
        notes.append("quick run: the first two cases")
    from infonorm.kernels.layer_norm import Tuning

    environment = {
        "copy TB/s": copy_tbs,
        "L2 bytes": int(getattr(properties, "L2_cache_size", 0)),
        "multiprocessors": properties.multi_processor_count,
        "triton": triton.__version__,
        "kernel tuning": {k: v for k, v in vars(Tuning()).items() if v is not None},
    }
    return BenchReport(
        op="layer_norm",
        device="cuda",
        columns=COLUMNS,
        rows=list(rows),
        environment=environment,
        notes=notes,
    )


# ---------------------------------------------------------------------------- a compiled block

BLOCK_SHAPE = (8, 512, 1024)  # (batch, tokens, features), bfloat16


def run_block(shape: tuple[int, int, int] = BLOCK_SHAPE, quick: bool = False):
    """Rows of (block, mode, fwd ms, fwd+bwd ms) for a pre-norm MLP block,
    x + W₂ gelu(W₁ LN(x)), with `torch.nn.LayerNorm` and with `infonorm.LayerNorm`
    (identity activation, per position), eager and under torch.compile in "default" and
    "reduce-overhead" (CUDA graphs) modes; and notes (why a variant did not run)."""
    from torch import nn

    import infonorm

    # infonorm.LayerNorm's defaults are nn.LayerNorm's: per position, no activation
    blocks, notes = {"nn.LayerNorm": nn.LayerNorm, "infonorm.LayerNorm": infonorm.LayerNorm}, []
    features = shape[-1]
    x = torch.randn(shape, device="cuda", dtype=torch.bfloat16)
    dy = torch.randn_like(x)
    rows = []
    for name, norm in blocks.items():
        torch.manual_seed(0)
        block = _Block(norm(features, device="cuda", dtype=torch.bfloat16), features)
        for mode in ("eager", "default", "reduce-overhead"):
            torch._dynamo.reset()
            model = block if mode == "eager" else torch.compile(block, mode=mode)
            row = {"block": name, "mode": mode, "shape": _shape(shape)}
            try:
                row |= _time_block(model, x, dy, graphs=mode == "reduce-overhead", quick=quick)
            except Exception as exc:  # recorded: the op may not compile or capture yet
                row["error"] = repr(exc)[:300]
            rows.append(row)
    return rows, notes


class _Block(torch.nn.Module):
    def __init__(self, norm: torch.nn.Module, features: int):
        super().__init__()
        self.norm = norm
        self.up = torch.nn.Linear(features, 4 * features, device="cuda", dtype=torch.bfloat16)
        self.down = torch.nn.Linear(4 * features, features, device="cuda", dtype=torch.bfloat16)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.down(F.gelu(self.up(self.norm(x))))


def _time_block(model, x, dy, *, graphs: bool, quick: bool) -> dict[str, float]:
    params = [p for p in model.parameters() if p.requires_grad]
    leaf = x.detach().requires_grad_()

    def step_begin():
        if graphs:
            torch.compiler.cudagraph_mark_step_begin()

    def forward():
        step_begin()
        with torch.no_grad():
            return model(x)

    def training():
        step_begin()
        return torch.autograd.grad(model(leaf), [leaf, *params], dy)

    return {"fwd ms": _do_bench(forward, quick), "fwd+bwd ms": _do_bench(training, quick)}
