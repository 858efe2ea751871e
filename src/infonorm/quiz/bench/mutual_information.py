"""I(y; ŷ) forward + backward against cross-entropy on the same logits, in the same run.

Peers, float32, class-index targets drawn uniformly from the C classes:

- `F.cross_entropy`: the objective MMI is trained beside, and the cost to compare with;
- a dense IIC-style MI: the C × C joint one_hot(y)ᵀ softmax(z)/B, entries and marginals
  clamped below at eps, autograd backward (what users have today), where C <= DENSE_LIMIT.

Each is timed as forward + backward into the logits, in rounds that alternate the peers.
Memory is the bytes autograd keeps for backward beyond the logits themselves ("saved").
On CUDA the same code runs on the device, each timing bracketed by synchronization, and the
peak memory allocated during forward + backward beyond the inputs is added.
"""

from __future__ import annotations

import statistics
import sys
from collections.abc import Callable
from typing import Any

import torch
import torch.nn.functional as F

from infonorm.mutual_information import mutual_information
from infonorm.quiz.bench import BenchReport, median_seconds

Progress = Callable[[str, int, int], None] | None
Loss = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]

SHAPES = ((1024, 32768), (1024, 4096), (4096, 1024), (8192, 16))
QUICK_SHAPES = ((256, 4096), (512, 64))
DENSE_LIMIT = 1024  # the dense peer's joint is C × C: 4 GiB in float32 at C = 32768
MB = 2**20
COLUMNS = [
    "B×C",
    "labels",
    "ours ms",
    "CE ms",
    "dense ms",
    "ours/CE",
    "dense/CE",
    "saved MB ours",
    "saved MB CE",
    "saved MB dense",
]
CUDA_COLUMNS = [*COLUMNS, "peak MB ours", "peak MB CE"]


def dense_iic(z: torch.Tensor, y: torch.Tensor, eps: float = sys.float_info.epsilon):
    """I(y; ŷ) as IIC-style code computes it: the dense C × C joint, clamped at eps."""
    C = z.shape[1]
    P = F.one_hot(y, C).to(z.dtype).T @ torch.softmax(z, 1) / z.shape[0]
    Pop_y, P_yhat = P.sum(1, keepdim=True), P.sum(0, keepdim=True)
    P, Pop_y, P_yhat = P.clamp_min(eps), Pop_y.clamp_min(eps), P_yhat.clamp_min(eps)
    return (P * (P.log() - Pop_y.log() - P_yhat.log())).sum()


def _peers(C: int) -> dict[str, Loss]:
    peers: dict[str, Loss] = {"ours": mutual_information, "cross-entropy": F.cross_entropy}
    if C <= DENSE_LIMIT:
        peers["dense"] = dense_iic
    return peers


def _inputs(B: int, C: int, device: str) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(0)
    z = (3 * torch.randn(B, C, generator=g)).to(device).requires_grad_()
    y = torch.randint(0, C, (B,), generator=g).to(device)
    return z, y


def _step(loss: Loss, z: torch.Tensor, y: torch.Tensor) -> Callable[[], Any]:
    """Forward + backward into the logits."""
    return lambda: torch.autograd.grad(loss(z, y), z)


def _time_interleaved(
    steps: dict[str, Callable[[], Any]], *, device: str, quick: bool
) -> dict[str, float]:
    """Median ms of each step over rounds that alternate the peers, so that slow spells of
    the machine fall on every peer alike."""
    times: dict[str, list[float]] = {name: [] for name in steps}
    for _ in range(2 if quick else 5):
        for name, step in steps.items():
            seconds = median_seconds(
                step, device=device, warmup=1, repeat=3, min_seconds=0.01 if quick else 0.1
            )
            times[name].append(1e3 * seconds)
    return {name: statistics.median(t) for name, t in times.items()}


def new_saved_bytes(loss: Loss, z: torch.Tensor, y: torch.Tensor) -> int:
    """Bytes of the distinct tensors autograd saves for backward, beyond z's and y's own."""
    inputs = {z.untyped_storage().data_ptr(), y.untyped_storage().data_ptr()}
    seen: dict[int, int] = {}

    def pack(tensor: torch.Tensor) -> torch.Tensor:
        storage = tensor.untyped_storage()
        if storage.data_ptr() not in inputs:
            seen[storage.data_ptr()] = storage.nbytes()
        return tensor

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda tensor: tensor):
        loss(z, y)
    return sum(seen.values())


def _peak_bytes(step: Callable[[], Any]) -> int:
    """CUDA memory allocated at the peak of one step, beyond what was allocated before."""
    torch.cuda.synchronize()
    before = torch.cuda.memory_allocated()
    torch.cuda.reset_peak_memory_stats()
    step()
    torch.cuda.synchronize()
    return torch.cuda.max_memory_allocated() - before


def run(
    device: str, *, quick: bool = False, progress: Progress = None, checkpoint=None
) -> BenchReport:
    """Time forward + backward of ours and its peers on `device` ("cpu" or "cuda");
    `checkpoint` receives the report so far after each shape."""
    shapes = QUICK_SHAPES if quick else SHAPES
    rows = []
    for done, (B, C) in enumerate(shapes):
        if progress is not None:
            progress(f"mutual_information {B}×{C}", done, len(shapes))
        z, y = _inputs(B, C, device)
        steps = {name: _step(loss, z, y) for name, loss in _peers(C).items()}
        for step in steps.values():
            step()  # first touch of every code path before timing
        ms = _time_interleaved(steps, device=device, quick=quick)
        saved = {name: new_saved_bytes(loss, z, y) for name, loss in _peers(C).items()}
        peak = (
            {name: _peak_bytes(steps[name]) for name in ("ours", "cross-entropy")}
            if device == "cuda"
            else {}
        )
        rows.append(_row(B, C, torch.unique(y).numel(), ms, saved, peak))
        if checkpoint is not None and done + 1 < len(shapes):
            checkpoint(_report(rows, device, quick))
    if progress is not None:
        progress("mutual_information", len(shapes), len(shapes))
    return _report(rows, device, quick)


def _report(rows: list[dict[str, Any]], device: str, quick: bool) -> BenchReport:
    return BenchReport(
        op="mutual_information",
        device=device,
        columns=CUDA_COLUMNS if device == "cuda" else COLUMNS,
        rows=list(rows),
        environment={"dtype": "float32", "targets": "class indices, uniform over C"},
        notes=_notes(quick=quick),
    )


def _row(
    B: int,
    C: int,
    present: int,
    ms: dict[str, float],
    saved: dict[str, int],
    peak: dict[str, int],
) -> dict[str, Any]:
    dense = "dense" in ms
    row = {
        "B×C": f"{B}×{C}",
        "labels": present,
        "ours ms": ms["ours"],
        "CE ms": ms["cross-entropy"],
        "dense ms": ms.get("dense"),
        "ours/CE": ms["ours"] / ms["cross-entropy"],
        "dense/CE": ms["dense"] / ms["cross-entropy"] if dense else None,
        "saved MB ours": saved["ours"] / MB,
        "saved MB CE": saved["cross-entropy"] / MB,
        "saved MB dense": saved["dense"] / MB if dense else None,
    }
    if peak:
        row["peak MB ours"] = peak["ours"] / MB
        row["peak MB CE"] = peak["cross-entropy"] / MB
    return row


def _notes(*, quick: bool) -> list[str]:
    notes = [
        "forward + backward into float32 logits, class-index targets uniform over the C "
        "classes; labels = how many distinct ones the batch holds; CE = F.cross_entropy; "
        "median wall time over rounds that alternate the peers; saved = bytes autograd "
        "keeps for backward beyond the logits and labels themselves",
        f"dense = IIC-style joint one_hot(y)ᵀ softmax(z)/B clamped at eps, run only where "
        f"C <= {DENSE_LIMIT} (at C = 32768 the joint alone is 4 GiB in float32)",
    ]
    if quick:
        notes.append("quick run: shapes far below the full run's, a smoke test")
    return notes
