"""Layer norm + ReLU on a CUDA device: our Triton kernels against their peers in one run.

Invoked through `infonorm bench --op layer_norm --device cuda` (the CPU module
`infonorm.quiz.bench.layer_norm` hands over to `run_cuda`). For every shape and dtype of the
anchors (../shared/anchors.md) it

1. checks ours (`infonorm.kernels.layer_norm.forward`/`backward`) against a float64
   autograd reference on the same inputs: ‖out − ref‖/‖ref‖ for y, dx, dA, dB, the largest
   reported;
2. times forward and forward+backward (into x, A and B, given dy) of each peer with
   `triton.testing.do_bench` (median; L2 cleared before each run by do_bench, and inputs
   rotated among a few sets when they fit in L2):
   - ours: the kernels' entry points directly (forward, then backward);
   - torch eager: F.layer_norm + relu (scope="position"); for scope="layer" the autograd
     composite over the last two dims (statistics in float32) with per-feature A, B;
   - torch.compile of the eager function, compiled afresh for each shape (dynamic=False);
   - Liger-Kernel's LayerNorm + relu (scope="position") where `liger_kernel` imports;
3. reports effective bandwidth with the minimal bytes (forward: read x, write y = 2
   passes; forward+backward: + read x, dy and write dx = 5 passes) against the
   device-to-device copy bandwidth measured in the same run.

Shapes can be narrowed with INFONORM_BENCH_CASES (comma-separated substrings of
"scope shape dtype", e.g. "position 16384×4096 bfloat16"), to split a long run.
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F

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


# the anchors (../shared/anchors.md): every shape and dtype measured there, the two shapes
# with targets first (a run cut short keeps them: the JSON is rewritten after each case)
CASES = (
    Case("position", (16384, 4096), torch.bfloat16),
    Case("layer", (8, 2048, 4096), torch.bfloat16),
    Case("position", (16384, 1024), torch.bfloat16),
    Case("position", (4096, 8192), torch.bfloat16),
    Case("layer", (4, 4096, 4096), torch.bfloat16),
    Case("layer", (32, 512, 1024), torch.bfloat16),
    Case("position", (16384, 4096), torch.float32),
    Case("position", (4096, 8192), torch.float32),
    Case("layer", (8, 2048, 4096), torch.float32),
)
QUICK_CASES = CASES[:2]

# the targets (H100), checked in the notes, never asserted
TARGETS_TBS = {
    # (scope, shape, dtype): (forward TB/s or None, forward+backward TB/s)
    ("position", (16384, 4096), torch.bfloat16): (2.6, 2.4),
    ("layer", (8, 2048, 4096), torch.bfloat16): (None, 1.7),
}


# ---------------------------------------------------------------------------- pure helpers


def _shape(shape: tuple[int, ...]) -> str:
    return "×".join(map(str, shape))


def _dtype(dtype: torch.dtype) -> str:
    return str(dtype).removeprefix("torch.")


def minimal_bytes(shape: tuple[int, ...], dtype: torch.dtype, passes: int) -> int:
    """Bytes of `passes` passes over a tensor of `shape` and `dtype` (A, B, μ, σ neglected)."""
    return passes * math.prod(shape) * torch.empty((), dtype=dtype).element_size()


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


def target_notes(rows: list[dict[str, Any]], copy_tbs: float | None) -> list[str]:
    """The issue's targets, each with its measured figure and met/missed."""
    notes = []
    by_case: dict[tuple[str, str, str], dict[str, dict[str, Any]]] = {}
    for row in rows:
        by_case.setdefault((row["scope"], row["shape"], row["dtype"]), {})[row["peer"]] = row
    for (scope, shape, dtype), target in TARGETS_TBS.items():
        peers = by_case.get((scope, _shape(shape), _dtype(dtype)))
        if not peers or "ours" not in peers:
            continue
        ours = peers["ours"]
        fwd_target, train_target = target
        parts = []
        if fwd_target is not None and ours["fwd TB/s"] is not None:
            met = ours["fwd TB/s"] >= fwd_target
            parts.append(
                f"forward {ours['fwd TB/s']:.2f} TB/s (target ≥ {fwd_target}: "
                f"{'met' if met else 'missed'})"
            )
        if ours["fwd+bwd TB/s"] is not None:
            met = ours["fwd+bwd TB/s"] >= train_target
            parts.append(
                f"forward+backward {ours['fwd+bwd TB/s']:.2f} TB/s (target ≥ {train_target}: "
                f"{'met' if met else 'missed'})"
            )
        notes.append(f"target {scope} {_shape(shape)} {dtype}: " + "; ".join(parts))
    for key, peers in by_case.items():
        if "ours" not in peers:
            continue
        ours = peers["ours"]
        others = {
            name: row
            for name, row in peers.items()
            if not name.startswith("ours") and row["fwd+bwd ms"] is not None
        }
        if not others or ours["fwd+bwd ms"] is None:
            continue
        fastest = min(others.values(), key=lambda row: row["fwd+bwd ms"])
        slower_than = [
            name
            for name, row in peers.items()
            if not name.startswith("ours")
            and any(
                row[c] is not None and ours[c] is not None and row[c] < ours[c]
                for c in ("fwd ms", "fwd+bwd ms")
            )
        ]
        speedup = fastest["fwd+bwd ms"] / ours["fwd+bwd ms"]
        goal = "2× the fastest peer"
        met = speedup >= 2
        if (
            copy_tbs
            and ours["fwd+bwd TB/s"] is not None
            and 2 * (fastest["fwd+bwd TB/s"] or 0) > 0.9 * copy_tbs
        ):
            goal = "90% of the copy bandwidth (2× the fastest peer would exceed it)"
            met = ours["fwd+bwd TB/s"] >= 0.9 * copy_tbs
        notes.append(
            f"{' '.join(key)}: ours {speedup:.2f}× the fastest peer ({fastest['peer']}) in "
            f"forward+backward, goal {goal}: {'met' if met else 'missed'}; "
            + (f"slower than {', '.join(slower_than)} somewhere" if slower_than else
               "never slower than a peer")
        )  # fmt: skip
    return notes


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


def _liger():
    """Liger-Kernel's LayerNorm autograd function, or None where it does not import."""
    try:
        from liger_kernel.ops.layer_norm import LigerLayerNormFunction
    except Exception:  # any import failure: the peer is left out, with a note
        return None
    return LigerLayerNormFunction


def _reference_error(case: Case, inputs) -> float:
    """Largest ‖ours − ref‖/‖ref‖ over y, dx, dA, dB; ref in float64 autograd."""
    from infonorm.kernels import layer_norm as kernels

    x, A, B, dy = inputs
    y, mean, rstd = kernels.forward(x, A, B, scope=case.scope, activation=ACTIVATION, eps=EPS)
    dx, dA, dB = kernels.backward(dy, x, A, B, mean, rstd, scope=case.scope, activation=ACTIVATION)
    dims = (-2, -1) if case.scope == "layer" else (-1,)
    x64, A64, B64 = (t.detach().double().requires_grad_() for t in (x, A, B))
    mu = x64.mean(dims, keepdim=True)
    var = (x64 - mu).square().mean(dims, keepdim=True)
    y64 = torch.relu(A64 * (x64 - mu) / torch.sqrt(var + EPS) + B64)
    grads = torch.autograd.grad(y64, (x64, A64, B64), dy.double())
    errors = []
    for got, want in zip((y, dx, dA, dB), (y64.detach(), *grads), strict=True):
        if not torch.isfinite(got).all():
            return math.inf
        errors.append(((got.double() - want).norm() / want.norm().clamp_min(1e-300)).item())
    del x64, A64, B64, y64, grads
    return max(errors)


# ---------------------------------------------------------------------------- timing


def _do_bench(fn: Callable[[], Any], quick: bool) -> float:
    import triton.testing

    return triton.testing.do_bench(
        fn, warmup=10 if quick else 25, rep=40 if quick else 100, return_mode="median"
    )


def _input_sets(case: Case, l2_bytes: int, count: int | None = None):
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


def _rotating(sets, body: Callable[..., Any]) -> Callable[[], Any]:
    state = {"i": 0}

    def run():
        inputs = sets[state["i"] % len(sets)]
        state["i"] += 1
        return body(*inputs)

    return run


def ours_steps(scope: str) -> tuple[Callable[..., Any], Callable[..., Any]]:
    """Our forward, and forward then backward, each called as step(x, A, B, dy)."""
    from infonorm.kernels import layer_norm as kernels

    def forward(x, A, B, dy):
        return kernels.forward(x, A, B, scope=scope, activation=ACTIVATION, eps=EPS)

    def training(x, A, B, dy):
        _, mean, rstd = forward(x, A, B, dy)
        return kernels.backward(dy, x, A, B, mean, rstd, scope=scope, activation=ACTIVATION)

    return forward, training


def _time_ours(case: Case, sets, quick: bool) -> tuple[float, float]:
    forward, training = ours_steps(case.scope)
    forward_ms = _do_bench(_rotating(sets, forward), quick)
    return forward_ms, _do_bench(_rotating(sets, training), quick)


def _time_autograd(fn, sets, quick: bool) -> tuple[float, float]:
    """Forward under no_grad, and forward + backward into x, A, B of an autograd function."""
    leaves = [(*(t.detach().requires_grad_() for t in s[:3]), s[3]) for s in sets]

    def forward(x, A, B, dy):
        with torch.no_grad():
            return fn(x, A, B)

    def training(x, A, B, dy):
        return torch.autograd.grad(fn(x, A, B), (x, A, B), dy)

    forward_ms = _do_bench(_rotating(leaves, forward), quick)
    return forward_ms, _do_bench(_rotating(leaves, training), quick)


def copy_bandwidth(quick: bool) -> float:
    """TB/s of a device-to-device copy of 1 GiB (bytes read + written), the ceiling."""
    src = torch.randn(2**28, device="cuda")
    dst = torch.empty_like(src)
    ms = _do_bench(lambda: dst.copy_(src), quick)
    nbytes = 2 * src.numel() * src.element_size()
    return tb_per_s(nbytes, ms)


# ---------------------------------------------------------------------------- the run


def run_cuda(
    quick: bool = False, progress: Progress = None, checkpoint: Checkpoint = None
) -> BenchReport:
    """Time ours against its peers at every anchor shape on the current CUDA device;
    `checkpoint` receives the report so far after each case."""
    if not torch.cuda.is_available():
        raise ValueError("the CUDA benchmark needs a CUDA device; torch sees none")
    properties = torch.cuda.get_device_properties(torch.cuda.current_device())
    l2_bytes = int(getattr(properties, "L2_cache_size", 50 * 2**20))
    cases = selected_cases(quick, os.environ.get("INFONORM_BENCH_CASES"))
    liger = _liger()
    failures: list[str] = []
    if liger is None:
        failures.append("Liger-Kernel does not import here: its peer is left out")
    copy_tbs = copy_bandwidth(quick)
    rows: list[dict[str, Any]] = []
    for done, case in enumerate(cases):
        if progress is not None:
            progress(f"layer_norm cuda {case.label}", done, len(cases))
        torch.manual_seed(done)
        rows.extend(_run_case(case, l2_bytes, liger, failures, quick))
        torch.cuda.empty_cache()
        if checkpoint is not None and done + 1 < len(cases):
            checkpoint(_report(rows, failures, copy_tbs, properties, quick, done + 1, len(cases)))
    if progress is not None:
        progress("layer_norm cuda", len(cases), len(cases))
    return _report(rows, failures, copy_tbs, properties, quick, len(cases), len(cases))


def _run_case(case: Case, l2_bytes: int, liger, failures: list[str], quick: bool):
    """The rows of one case: ours checked against float64, then every peer timed."""
    sets = _input_sets(case, l2_bytes)
    error = _reference_error(case, sets[0])
    timings: dict[str, tuple[float | None, float | None]] = {"ours": _time_ours(case, sets, quick)}

    def eager(x, A, B, scope=case.scope):
        return _composite(x, A, B, scope)

    timings["torch eager"] = _time_autograd(eager, sets, quick)
    torch._dynamo.reset()  # compiled afresh for this shape
    compiled = torch.compile(eager, dynamic=False)
    timings["torch.compile"] = _time_autograd(compiled, sets, quick)
    if case.scope == "position" and liger is not None:
        try:
            timings["Liger-Kernel"] = _time_autograd(
                lambda x, A, B: torch.relu(liger.apply(x, A, B, EPS)), sets, quick
            )
        except Exception as exc:  # a peer that fails is reported, not fatal
            failures.append(f"Liger-Kernel failed at {case.label}: {exc!r}"[:300])
    return build_rows(case, timings, error)


def _report(rows, failures, copy_tbs, properties, quick, done: int, total: int) -> BenchReport:
    import triton

    from infonorm.kernels import layer_norm as kernels

    notes = [
        f"layer norm + {ACTIVATION}, eps {EPS}; triton.testing.do_bench median; effective "
        f"TB/s counts the minimal bytes: forward {FORWARD_PASSES} passes over x's size, "
        f"forward+backward {TRAINING_PASSES}; device-to-device copy: {copy_tbs:.2f} TB/s "
        "(read + written), the ceiling",
        *target_notes(rows, copy_tbs),
        *failures,
    ]
    if done < total:
        notes.append(f"partial: {done} of {total} cases so far")
    if quick:
        notes.append("quick run: the two shapes with targets")
    environment = {
        "copy TB/s": copy_tbs,
        "L2 bytes": int(getattr(properties, "L2_cache_size", 0)),
        "multiprocessors": properties.multi_processor_count,
        "triton": triton.__version__,
        "kernel knobs": {
            name: getattr(kernels, name)
            for name in dir(kernels)
            if name.isupper()
            and not name.startswith("_")
            and isinstance(getattr(kernels, name), int | float)
        },
    }
    return BenchReport(
        op="layer_norm",
        device="cuda",
        columns=COLUMNS,
        rows=list(rows),
        environment=environment,
        notes=notes,
    )
