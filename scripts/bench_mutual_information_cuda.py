"""Mutual information on a CUDA device: forward + backward against F.cross_entropy, one run.

    PYTHONPATH=src python scripts/bench_mutual_information_cuda.py --out mi-cuda.json

For B×C in 1024×32768, 1024×4096, 4096×1024, 8192×16 (class indices uniform over C), in
float32 and bfloat16, it times with `triton.testing.do_bench` (medians, peers alternating
over rounds):

- "cross_entropy": torch.autograd.grad(F.cross_entropy(z, y), z);
- "ours": torch.autograd.grad(infonorm.mutual_information(z, y, backend="triton"), z) when
  mutual_information takes a `backend`, else the kernels (`infonorm.kernels.
  mutual_information`) with the torch glue written below (labels to rows, I, Λ, ln s);
- "ours kernels": the kernels' forward and backward alone, on rows and Λ computed once;
- "cross_entropy graph", "ours graph": the same steps captured in a CUDA graph and replayed
  (no host cost; a capture fails on any host synchronization, which is then reported).

It also runs "ours" once under torch.cuda.set_sync_debug_mode("error"), checks the
gradient of "ours" against a float64 computation of the same sums, measures the
device-to-device copy bandwidth, prints a table and writes everything as JSON to --out.
Effective TB/s counts the minimal bytes of forward+backward: read z, then read z and write
dz (3 passes of z's size). Targets (docs/kernels-mutual-information.md): ours ≤ 1.5×
cross_entropy at every shape, ≤ 1.2× at 1024×32768.
"""

from __future__ import annotations

import argparse
import datetime
import inspect
import json
import math
import platform
import statistics
import sys
from collections.abc import Callable
from pathlib import Path

import torch
import torch.nn.functional as F
import triton
import triton.testing

import infonorm
from infonorm.kernels import mutual_information as kernels

SHAPES = ((1024, 32768), (1024, 4096), (4096, 1024), (8192, 16))
DTYPES = {"float32": torch.float32, "bfloat16": torch.bfloat16}
PASSES = 3  # read z (forward), read z and write dz (backward)
ROUNDS = 3


# ------------------------------------------------------------------ the glue around the kernels


def label_rows(y: torch.Tensor, C: int) -> tuple[torch.Tensor, torch.Tensor, int]:
    """(rows, n, R) of class indices y: labels with several examples get rows 0, 1, … in
    label order, a label alone gets −2; n[r] the examples of row r; R = min(B // 2, C), the
    most labels with two examples or more (static: no value of y read on the host)."""
    B = y.shape[0]
    R = max(1, min(B // 2, C))
    counts = torch.zeros(C, dtype=torch.int64, device=y.device).index_add_(0, y, torch.ones_like(y))
    multi = counts >= 2
    row_of_label = torch.where(multi, torch.cumsum(multi, 0) - 1, -2)
    rows = row_of_label[y]
    n = torch.zeros(R + 1, dtype=torch.float32, device=y.device)
    n.index_add_(0, torch.where(multi, row_of_label, R), counts.float())
    return rows, n[:R], R


def _xlogx(t: torch.Tensor) -> torch.Tensor:
    return torch.special.xlogy(t, t).sum()


def glue_information(z, rows, n, R):
    """I(y; ŷ), Λ, ln s and lse from the kernels' sums (N = B, no example ignored):
    I = ln N + (Σ S ln S + Σ_single Q ln Q − Σ s ln s − Σ n ln n)/N,
    Λ[r] = ln S[r] − ln s − ln(n_r/N) (0 where S = 0)."""
    N = z.shape[0]
    S, s, lse, sum_single = kernels.forward(z, rows, R)
    information = math.log(N) + (_xlogx(S) + sum_single - _xlogx(s) - _xlogx(n)) / N
    ln_s = s.log()
    Lam = torch.where(S > 0, S.log() - ln_s - (n / N).log()[:, None], 0.0)
    return information, Lam, ln_s, lse


def glue_step(z, y):
    """∂(−I)/∂z by the kernels and the glue: the step timed as "ours" without a backend."""
    rows, n, R = label_rows(y, z.shape[1])
    _, Lam, ln_s, lse = glue_information(z, rows, n, R)
    scale = torch.full((), -1.0 / z.shape[0], device=z.device)
    return kernels.backward(z, rows, lse, Lam, ln_s, scale)


def _has_backend() -> bool:
    return "backend" in inspect.signature(infonorm.mutual_information).parameters


def ours_step(z: torch.Tensor, y: torch.Tensor) -> Callable[[], torch.Tensor]:
    if _has_backend():
        leaf = z.detach().requires_grad_()

        def step():
            loss = -infonorm.mutual_information(leaf, y, backend="triton")
            return torch.autograd.grad(loss, leaf)[0]

        return step
    return lambda: glue_step(z, y)


def cross_entropy_step(z: torch.Tensor, y: torch.Tensor) -> Callable[[], torch.Tensor]:
    leaf = z.detach().requires_grad_()
    return lambda: torch.autograd.grad(F.cross_entropy(leaf, y), leaf)[0]


def kernels_step(z: torch.Tensor, y: torch.Tensor) -> Callable[[], torch.Tensor]:
    rows, n, R = label_rows(y, z.shape[1])
    _, Lam, ln_s, _ = glue_information(z, rows, n, R)
    scale = torch.full((), -1.0 / z.shape[0], device=z.device)

    def step():
        _, _, lse, _ = kernels.forward(z, rows, R)
        return kernels.backward(z, rows, lse, Lam, ln_s, scale)

    return step


# ------------------------------------------------------------------ checks


def reference_gradient(z: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """∂(−I)/∂z in float64 by the same formula on the present labels' rows (torch.unique:
    a check, not timed): −Q ∘ (G − Σ Q G)/N, G[b] = ln S[y_b] − ln s − ln(n_{y_b}/N)."""
    z64 = z.double()
    N, C = z.shape
    Q = torch.softmax(z64, 1)
    labels, inverse, counts = torch.unique(y, return_inverse=True, return_counts=True)
    S = torch.zeros(labels.shape[0], C, dtype=torch.float64, device=z.device)
    S.index_add_(0, inverse, Q)
    G = S[inverse].log() - Q.sum(0).log() - (counts[inverse].double() / N).log()[:, None]
    gbar = (Q * G).sum(1, keepdim=True)
    return -Q * (G - gbar) / N


def gradient_error(z: torch.Tensor, y: torch.Tensor) -> float:
    got = ours_step(z, y)().double()
    want = reference_gradient(z, y)
    return ((got - want).norm() / want.norm()).item()


def sync_free(z: torch.Tensor, y: torch.Tensor) -> str:
    """'yes', or the error torch raised on a host synchronization inside "ours"."""
    step = ours_step(z, y)
    step()
    torch.cuda.synchronize()
    torch.cuda.set_sync_debug_mode("error")
    try:
        step()
        return "yes"
    except RuntimeError as error:
        return f"no: {str(error).splitlines()[0]}"
    finally:
        torch.cuda.set_sync_debug_mode(0)
        torch.cuda.synchronize()


def graphed(step: Callable[[], torch.Tensor]) -> Callable[[], None] | str:
    """step captured in a CUDA graph (replay), or the reason capture failed."""
    stream = torch.cuda.Stream()
    stream.wait_stream(torch.cuda.current_stream())
    with torch.cuda.stream(stream):
        for _ in range(3):
            step()
    torch.cuda.current_stream().wait_stream(stream)
    graph = torch.cuda.CUDAGraph()
    try:
        with torch.cuda.graph(graph):
            step()
    except Exception as error:  # any capture failure is a result to report
        torch.cuda.synchronize()
        return f"capture failed: {type(error).__name__}: {str(error).splitlines()[0]}"
    return graph.replay


# ------------------------------------------------------------------ timing


def bench(fn: Callable[[], object]) -> float:
    return triton.testing.do_bench(fn, warmup=25, rep=100, return_mode="median")


def copy_bandwidth() -> float:
    """TB/s of a device-to-device copy of 1 GiB (bytes read + written), the ceiling."""
    src = torch.empty(2**28, dtype=torch.float32, device="cuda")
    dst = torch.empty_like(src)
    ms = bench(lambda: dst.copy_(src))
    return 2 * src.numel() * 4 / (ms * 1e-3) / 1e12


def run_case(B: int, C: int, dtype: torch.dtype) -> dict:
    g = torch.Generator(device="cuda").manual_seed(B * 7 + C)
    z = (torch.randn(B, C, device="cuda", generator=g) * 2).to(dtype)
    y = torch.randint(0, C, (B,), device="cuda", generator=g)
    steps = {
        "cross_entropy": cross_entropy_step(z, y),
        "ours": ours_step(z, y),
        "ours kernels": kernels_step(z, y),
    }
    notes = []
    for name in ("cross_entropy", "ours"):
        replay = graphed(steps[name])
        if isinstance(replay, str):
            notes.append(f"{name} graph: {replay}")
        else:
            steps[f"{name} graph"] = replay
    times: dict[str, list[float]] = {name: [] for name in steps}
    for _ in range(ROUNDS):
        for name, fn in steps.items():
            times[name].append(bench(fn))
    ms = {name: statistics.median(values) for name, values in times.items()}
    nbytes = PASSES * B * C * z.element_size()
    row = {
        "B×C": f"{B}×{C}",
        "dtype": str(dtype).removeprefix("torch."),
        "labels": int(torch.unique(y).numel()),
        **{f"{name} ms": value for name, value in ms.items()},
        "ours/CE": ms["ours"] / ms["cross_entropy"],
        "ours TB/s": nbytes / (ms["ours"] * 1e-3) / 1e12,
        "ours kernels TB/s": nbytes / (ms["ours kernels"] * 1e-3) / 1e12,
        "max rel err": gradient_error(z, y),
        "sync-free": sync_free(z, y),
        "notes": notes,
    }
    if "ours graph ms" in row and "cross_entropy graph ms" in row:
        row["ours/CE graph"] = row["ours graph ms"] / row["cross_entropy graph ms"]
    return row


def _format(row: dict) -> str:
    cells = []
    for key, value in row.items():
        if key == "notes":
            continue
        text = f"{value:.4g}" if isinstance(value, float) else str(value)
        cells.append(f"{key} {text}")
    return " | ".join(cells)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, required=True, help="JSON file to write")
    parser.add_argument("--shapes", help="comma-separated B×C (or BxC) to run, default all four")
    parser.add_argument("--dtypes", default="float32,bfloat16")
    args = parser.parse_args(argv)
    if not torch.cuda.is_available():
        print("bench_mutual_information_cuda: needs a CUDA device", file=sys.stderr)
        return 2
    shapes = SHAPES
    if args.shapes:
        shapes = tuple(
            tuple(int(v) for v in item.replace("×", "x").split("x"))
            for item in args.shapes.split(",")
        )
    dtypes = [DTYPES[name] for name in args.dtypes.split(",")]
    report = {
        "command": " ".join(sys.argv),
        "date": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        "device": torch.cuda.get_device_name(),
        "multiprocessors": torch.cuda.get_device_properties(0).multi_processor_count,
        "torch": torch.__version__,
        "triton": triton.__version__,
        "python": platform.python_version(),
        "ours": "mutual_information(backend='triton')" if _has_backend() else "kernels + glue",
        "copy TB/s": copy_bandwidth(),
        "passes": PASSES,
        "rows": [],
    }
    print(f"{report['device']}: copy {report['copy TB/s']:.2f} TB/s; ours = {report['ours']}")
    for B, C in shapes:
        for dtype in dtypes:
            row = run_case(B, C, dtype)
            report["rows"].append(row)
            print(_format(row), *row["notes"], sep="\n  ", flush=True)
            args.out.write_text(json.dumps(report, indent=1, ensure_ascii=False) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
