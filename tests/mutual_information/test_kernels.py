"""The Triton kernels of the mutual-information objective against a float64 reference.

Without CUDA the kernels run on CPU tensors under Triton's interpreter (conftest sets
TRITON_INTERPRET=1 before they are imported): small awkward shapes, rows mixing the three
kinds (a row of S, alone with its label, ignored), masked logits, every dtype, strided
logits, and configurations that cut the sorted examples into many chunks so that rows of S
begin, end and run across chunk boundaries. With CUDA the same tests run on the GPU, and the
`gpu` tests add the benchmark's shapes. Every output and scratch buffer the kernels allocate
is poisoned with NaN first, so an element left unwritten fails the comparison.
"""

from __future__ import annotations

import dataclasses
import importlib.util
import math
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

pytest.importorskip("triton")

from infonorm.kernels import mutual_information as km
from tests.cases import requires_cuda

# the "CPU" tests run on the GPU where there is one (the interpreter is off there)
DEVICE = "cuda" if torch.cuda.is_available() else "cpu"
ROOT = Path(__file__).resolve().parents[2]
# ‖dz − ref‖ allowed relative to ‖scale Q (|G| + |ΣQG|)‖ (the terms that cancel in dz), per
# dtype of z (rounding of dz itself); the forward's outputs, ‖out − ref‖/‖ref‖, are float32
# sums of float32 arithmetic on the same logits, for every dtype
DZ_TOLERANCE = {torch.float32: 5e-6, torch.bfloat16: 8e-3, torch.float16: 1e-3}
FORWARD_TOLERANCE = 5e-6
NAMES = ("S", "s", "lse", "sum_single")


# ---------------------------------------------------------------------------- reference


def _reference_forward(z, rows, R):
    """(S, s, lse, sum_single) in float64 by plain torch ops."""
    z64 = z.detach().to(torch.float64).cpu()
    rows = rows.cpu()
    lse = torch.logsumexp(z64, 1)
    Q = torch.softmax(z64, 1)
    joint = (rows >= 0) & (rows < R)
    single = rows == -2
    S = torch.zeros(R, z.shape[1], dtype=torch.float64).index_add_(0, rows[joint], Q[joint])
    s = Q[joint | single].sum(0)
    # Q ln Q = Q (z − lse), 0 where Q = 0
    QlnQ = torch.where(Q > 0, Q * (z64 - lse[:, None]), 0.0)
    return S, s, lse, QlnQ[single].sum()


def _reference_backward(z, rows, Lam, ln_s, scale, *, terms=False):
    """dz = scale · Q ∘ (G − Σ Q G) in float64, G = Λ[row] or z − ln s, 0 for ignored rows
    (terms: |scale| Q ∘ (|G| + |Σ Q G|) instead, the size of what cancels in dz)."""
    z64 = z.detach().to(torch.float64).cpu()
    rows = rows.cpu()
    R = Lam.shape[0]
    Q = torch.softmax(z64, 1)
    joint = (rows >= 0) & (rows < R)
    single = rows == -2
    G = torch.where(
        joint[:, None], Lam.double().cpu()[rows.clamp(0, R - 1)], z64 - ln_s.double().cpu()
    )
    G = torch.where(torch.isneginf(z64), 0.0, G)
    gbar = (Q * G).sum(1, keepdim=True)
    if terms:
        dz = scale.double().cpu().abs() * Q * (G.abs() + gbar.abs())
    else:
        dz = scale.double().cpu() * Q * (G - gbar)
    return torch.where((joint | single)[:, None], dz, 0.0)


# ---------------------------------------------------------------------------- helpers


def _inputs(B, C, R, dtype=torch.float32, *, masked=0.0, device=None, seed=0):
    """Logits (a fraction `masked` of entries −inf, never a whole row), rows mixing the three
    kinds, and finite Λ, ln s and scale."""
    device = device or DEVICE
    g = torch.Generator().manual_seed(seed + 1000 * B + C)
    z = torch.randn(B, C, generator=g) * 3
    if masked:
        drop = torch.rand(B, C, generator=g) < masked
        drop[torch.arange(B), torch.randint(0, C, (B,), generator=g)] = False
        z = z.masked_fill(drop, -math.inf)
    rows = torch.randint(-2, R, (B,), generator=g)
    Lam = torch.randn(R, C, generator=g) * 2
    ln_s = torch.randn(C, generator=g) - 1
    scale = torch.tensor(0.7)
    return (
        z.to(dtype).to(device), rows.to(device), Lam.to(device), ln_s.to(device),
        scale.to(device),
    )  # fmt: skip


def _assert_close(got, want, tolerance, name, *, size=None):
    """‖got − want‖ within tolerance × ‖size‖ (size: the terms that make `want`, by default
    `want` itself), and no single element off by more than 20 × tolerance × max|size|."""
    assert got.shape == want.shape, f"{name}: shape {tuple(got.shape)} != {tuple(want.shape)}"
    g = got.detach().to(torch.float64).cpu()
    assert torch.isfinite(g).all(), f"{name}: non-finite entries (an element left unwritten?)"
    size = want if size is None else size
    scale = size.norm()
    if scale == 0:
        assert (g == 0).all(), f"{name}: expected zeros, got up to {g.abs().max()}"
        return
    error = ((g - want).norm() / scale).item()
    assert error <= tolerance, f"{name}: ‖got − ref‖/‖size‖ = {error:.3g} > {tolerance:g}"
    worst = ((g - want).abs().max() / size.abs().max()).item()
    assert worst <= 20 * tolerance, f"{name}: worst element off by {worst:.3g} of max|size|"


def _check_forward(z, rows, R):
    got = km.forward(z, rows, R)
    assert [t.dtype for t in got] == [torch.float32] * 4
    for name, g, w in zip(NAMES, got, _reference_forward(z, rows, R), strict=True):
        _assert_close(g, w, FORWARD_TOLERANCE, name)
    return got


def _check_backward(z, rows, Lam, ln_s, scale):
    lse = torch.logsumexp(z.float(), 1)
    dz = km.backward(z, rows, lse, Lam, ln_s, scale)
    assert dz.dtype == z.dtype
    want = _reference_backward(z, rows, Lam, ln_s, scale)
    size = _reference_backward(z, rows, Lam, ln_s, scale, terms=True)
    _assert_close(dz, want, DZ_TOLERANCE[z.dtype], "dz", size=size)
    ignored = ((rows < -2) | (rows == -1) | (rows >= Lam.shape[0])).cpu()
    assert (dz.cpu()[ignored] == 0).all(), "dz of ignored examples must be exactly 0"
    return dz


def _check(B, C, R, dtype=torch.float32, *, masked=0.0, seed=0):
    z, rows, Lam, ln_s, scale = _inputs(B, C, R, dtype, masked=masked, seed=seed)
    _check_forward(z, rows, R)
    _check_backward(z, rows, Lam, ln_s, scale)


@pytest.fixture(autouse=True)
def _poisoned(monkeypatch):
    """Every buffer the kernels allocate starts as NaN (−1 for integers)."""
    original = km._empty

    def poisoned(shape, *, dtype, device):
        t = original(shape, dtype=dtype, device=device)
        return t.fill_(math.nan) if t.is_floating_point() else t.fill_(-1)

    monkeypatch.setattr(km, "_empty", poisoned)


@pytest.fixture
def long_rows(monkeypatch):
    """Rows longer than 8 columns take the long-row kernels (logsumexp pass, two sweeps)."""
    for name in ("MAX_ROW_FWD", "MAX_ROW_BWD", "LOOPED_BLOCK_C"):
        monkeypatch.setattr(km, name, 8)


def _force_chunks(monkeypatch, block_r, tiles_per_chunk):
    """Forward tiles of block_r examples, chunks of tiles_per_chunk tiles."""
    original = km._forward_config

    def config(B, C, device):
        c = original(B, C, device)
        chunk = block_r * tiles_per_chunk
        return dataclasses.replace(c, block_r=block_r, chunk=chunk, chunks=-(-B // chunk))

    monkeypatch.setattr(km, "_forward_config", config)


# ---------------------------------------------------------------------------- CPU (interpreter)


@pytest.mark.parametrize(
    ("B", "C", "R"),
    [
        (1, 1, 1),  # C = 1: Q = 1, Q ln Q = 0
        (1, 7, 3),  # one example, empty rows of S
        (2, 3, 1),
        (3, 2, 2),
        (7, 17, 3),
        (17, 64, 5),
        (64, 130, 7),  # C not a power of two, several tiles and chunks
        (130, 7, 4),  # many short rows: several examples per tile
    ],
)
def test_matches_the_reference(B, C, R):
    _check(B, C, R)


@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float16])
def test_half_precision(dtype):
    _check(37, 45, 3, dtype, masked=0.2)


def test_masked_logits():
    # a third of the logits −inf: Q = 0 there, 0 · (−inf) = 0 in Σ Q ln Q and in G = z − ln s
    z, rows, Lam, ln_s, scale = _inputs(40, 13, 3, masked=0.35)
    assert torch.isneginf(z[rows == -2]).any(), "no masked logit among the single examples"
    _check_forward(z, rows, 3)
    dz = _check_backward(z, rows, Lam, ln_s, scale)
    assert (dz[torch.isneginf(z)] == 0).all()


@pytest.mark.parametrize("block_r", [1, 2, 4])
@pytest.mark.parametrize("tiles_per_chunk", [1, 3])
def test_rows_across_chunk_boundaries(monkeypatch, block_r, tiles_per_chunk):
    # 45 sorted examples in chunks of 1 to 12: rows of S that begin before a chunk, end in
    # one, run through several, begin or end exactly at a boundary
    _force_chunks(monkeypatch, block_r, tiles_per_chunk)
    g = torch.Generator().manual_seed(block_r + 10 * tiles_per_chunk)
    z = (torch.randn(45, 6, generator=g) * 2).to(DEVICE)
    counts = torch.tensor([1, 7, 2, 1, 11, 3, 4, 0, 1, 15])  # row −2, −1, 0, 1, …, 7
    rows = torch.repeat_interleave(torch.arange(-2, 8), counts)
    rows = rows[torch.randperm(45, generator=g)].to(DEVICE)
    _check_forward(z, rows, 8)


def test_one_row_of_S_for_the_whole_batch(monkeypatch):
    # R = 1: one row spanning every chunk, its sum the column sums s
    _force_chunks(monkeypatch, 2, 2)
    z, _, Lam, ln_s, scale = _inputs(23, 9, 1)
    rows = torch.zeros(23, dtype=torch.int64, device=DEVICE)
    S, s, _, sum_single = _check_forward(z, rows, 1)
    assert sum_single == 0
    torch.testing.assert_close(S[0], s, rtol=1e-6, atol=1e-7)
    _check_backward(z, rows, Lam, ln_s, scale)


def test_all_ignored_but_one():
    z, _, Lam, ln_s, scale = _inputs(19, 11, 2)
    for kept in (0, -2):
        rows = torch.full((19,), -1, dtype=torch.int64, device=DEVICE)
        rows[5] = kept
        _, s, *_ = _check_forward(z, rows, 2)
        torch.testing.assert_close(s, torch.softmax(z[5].float(), 0))
        dz = _check_backward(z, rows, Lam, ln_s, scale)
        assert (dz[torch.arange(19, device=DEVICE) != 5] == 0).all()


def test_row_values_outside_the_range_count_as_ignored():
    z, rows, Lam, ln_s, scale = _inputs(20, 5, 3)
    rows[[1, 6, 11]] = torch.tensor([3, 99, -7], device=DEVICE)
    _check_forward(z, rows, 3)
    _check_backward(z, rows, Lam, ln_s, scale)


def test_strided_logits_are_read_in_place(monkeypatch):
    # a slice of wider rows (row stride 40, element stride 2) and a transpose (element
    # stride 23): the kernels take both strides, no copy
    seen = []

    class Recorded:
        def __init__(self, kernel):
            self.kernel = kernel

        def __getitem__(self, grid):
            def launch(z, *args, **kwargs):
                seen.append(z.data_ptr())
                return self.kernel[grid](z, *args, **kwargs)

            return launch

    monkeypatch.setattr(km, "_mi_fwd_chunks", Recorded(km._mi_fwd_chunks))
    base = torch.randn(23, 40, device=DEVICE) * 2
    for z in (base[:, 3:37:2], torch.randn(17, 23, device=DEVICE).t()):
        _, rows, Lam, ln_s, scale = _inputs(z.shape[0], z.shape[1], 3)
        seen.clear()
        _check_forward(z, rows, 3)
        assert seen == [z.data_ptr()]
        _check_backward(z, rows, Lam, ln_s, scale)


def test_long_rows(long_rows):
    # 8-column blocks: 17 columns are 3 blocks; the first block of some rows entirely −inf
    # (the online logsumexp starts from −inf)
    z, rows, Lam, ln_s, scale = _inputs(11, 17, 3, masked=0.3)
    z[[0, 4], :8] = -math.inf
    _check_forward(z, rows, 3)
    _check_backward(z, rows, Lam, ln_s, scale)
    config = km._forward_config(11, 17, torch.device(DEVICE))
    assert config.column_blocks == 3


def test_long_rows_half_precision(long_rows):
    _check(9, 20, 2, torch.bfloat16, masked=0.2)


def test_results_repeat_bit_for_bit(monkeypatch):
    _force_chunks(monkeypatch, 2, 2)
    z, rows, Lam, ln_s, scale = _inputs(50, 7, 3, masked=0.1)
    first = km.forward(z, rows, 3)
    second = km.forward(z, rows, 3)
    for name, a, b in zip(NAMES, first, second, strict=True):
        assert torch.equal(a, b), name
    lse = first[2]
    assert torch.equal(
        km.backward(z, rows, lse, Lam, ln_s, scale), km.backward(z, rows, lse, Lam, ln_s, scale)
    )


@pytest.mark.filterwarnings("ignore:invalid value:RuntimeWarning")
def test_a_row_of_only_minus_inf_reaches_s_as_nan():
    # Q is undefined there: the caller's check on s must see it
    z, rows, *_ = _inputs(6, 5, 2)
    rows[2] = -2
    z[2] = -math.inf
    _, s, _, _ = km.forward(z, rows, 2)
    assert torch.isnan(s).all()


def test_empty_batch():
    z = torch.randn(0, 5, device=DEVICE)
    rows = torch.zeros(0, dtype=torch.int64, device=DEVICE)
    S, s, lse, sum_single = km.forward(z, rows, 2)
    assert S.shape == (2, 5)
    assert lse.shape == (0,)
    assert (S == 0).all()
    assert (s == 0).all()
    assert sum_single == 0
    Lam, ln_s = torch.zeros(2, 5, device=DEVICE), torch.zeros(5, device=DEVICE)
    dz = km.backward(z, rows, lse, Lam, ln_s, torch.tensor(1.0, device=DEVICE))
    assert dz.shape == (0, 5)


def test_the_sums_compose_into_the_mutual_information_and_its_gradient():
    """I = ln N + (Σ S ln S + Σ_single Q ln Q − Σ s ln s − Σ n ln n)/N and ∂I/∂z from Λ/N,
    against float64 autograd of I(y; ŷ) from the dense joint."""
    B, C = 40, 6
    g = torch.Generator().manual_seed(7)
    z = (torch.randn(B, C, generator=g) * 2).to(DEVICE)
    # labels 0–2 shared, 3 and 4 alone in the batch, 5 absent; a few ignored (−100)
    y = torch.randint(0, 3, (B,), generator=g)
    y[[4, 9]] = torch.tensor([3, 4])
    y[[1, 17, 30]] = -100
    kept = y != -100
    counts = torch.bincount(y[kept], minlength=C)
    multi = counts >= 2
    row_of_label = torch.where(multi, torch.cumsum(multi, 0) - 1, -2)
    rows = torch.where(kept, row_of_label[y.clamp(0)], -1).to(DEVICE)
    R = int(multi.sum()) + 2  # two rows of S stay empty
    N = int(kept.sum())
    n = torch.zeros(R, dtype=torch.float64)
    n[: int(multi.sum())] = counts[multi].double()

    S, s, lse, sum_single = (t.double().cpu() for t in km.forward(z, rows, R))
    xlogx = lambda t: torch.where(t > 0, t * t.log(), 0.0)  # noqa: E731
    information = math.log(N) + (xlogx(S).sum() + sum_single - xlogx(s).sum() - xlogx(n).sum()) / N
    nonempty = (n > 0)[:, None]
    Lam = torch.where(nonempty, S.clamp_min(1e-300).log() - s.log() - (n / N).log()[:, None], 0)
    dz = km.backward(
        z, rows, lse.float().to(DEVICE), Lam.float().to(DEVICE), s.log().float().to(DEVICE),
        torch.tensor(1.0 / N, device=DEVICE),
    )  # fmt: skip

    z64 = z.double().cpu().requires_grad_()
    Q = torch.softmax(z64, 1)[kept]
    joint = torch.nn.functional.one_hot(y[kept], C).double().T @ Q / N
    outer = joint.sum(1, keepdim=True) * joint.sum(0, keepdim=True)
    present = joint.detach() > 0  # label 5's empty row: 0 ln 0 = 0, no gradient
    information_ref = (joint[present] * (joint[present] / outer[present]).log()).sum()
    (dz_ref,) = torch.autograd.grad(information_ref, z64)
    assert information.item() == pytest.approx(information_ref.item(), rel=1e-5, abs=1e-6)
    _assert_close(dz, dz_ref, 1e-5, "dI/dz")


def test_bad_arguments():
    z, rows, Lam, ln_s, scale = _inputs(4, 3, 2)
    with pytest.raises(TypeError, match="z must be"):
        km.forward(z.double(), rows, 2)
    with pytest.raises(ValueError, match=r"\(B, C\)"):
        km.forward(z[0], rows, 2)
    with pytest.raises(TypeError, match="rows must be an int64"):
        km.forward(z, rows.int(), 2)
    with pytest.raises(ValueError, match=r"rows must have shape \(4,\)"):
        km.forward(z, rows[:3], 2)
    with pytest.raises(ValueError, match="R must be"):
        km.forward(z, rows, 0)
    lse = torch.logsumexp(z, 1)
    with pytest.raises(ValueError, match="Lam"):
        km.backward(z, rows, lse, Lam[:, :2], ln_s, scale)
    with pytest.raises(TypeError, match="scale must be a float32"):
        km.backward(z, rows, lse, Lam, ln_s, scale.double())
    with pytest.raises(ValueError, match=r"scale must have shape \(\)"):
        km.backward(z, rows, lse, Lam, ln_s, scale[None])
    with pytest.raises(ValueError, match="lse"):
        km.backward(z, rows, lse[:2], Lam, ln_s, scale)


def test_configurations_on_the_benchmark_shapes():
    """What a 132-multiprocessor H200 gets (docs/kernels-mutual-information.md)."""
    h200 = torch.device("cpu")
    with pytest.MonkeyPatch.context() as m:
        m.setattr(km, "INTERPRETER_MULTIPROCESSORS", 132)
        got = {
            shape: dataclasses.astuple(km._forward_config(*shape, h200))
            for shape in [(1024, 32768), (1024, 4096), (4096, 1024), (8192, 16)]
        }
    # block_r, block_c, column_blocks, chunk, chunks, num_warps
    assert got == {
        (1024, 32768): (1, 4096, 8, 64, 16, 16),
        (1024, 4096): (1, 4096, 1, 8, 128, 16),
        (4096, 1024): (2, 1024, 1, 32, 128, 16),
        (8192, 16): (16, 16, 1, 64, 128, 16),
    }


# compiles every kernel as the benchmark shapes configure it, for sm_90, without a GPU (the
# interpreter checks the arithmetic, not what the GPU compiler accepts); prints each
# kernel's registers and stack bytes per thread
_COMPILE_FOR_SM90 = """
import os, subprocess, sys, tempfile
import triton
from triton.backends.compiler import GPUTarget
from triton.compiler import ASTSource
import infonorm.kernels._mutual_information as k

BIN = os.path.join(os.path.dirname(triton.__file__), "backends", "nvidia", "bin")
F32, I64 = "*fp32", "*i64"
SCALARS = ("B", "C", "R", "K", "P", "N_SINGLE", "SEARCH_STEPS")
FORWARD = {"Z": "*bf16", "SORTED_ROWS": I64, "ORDER": I64, "BOUNDS": I64}
BACKWARD = {"Z": "*bf16", "ROWS": I64, "DZ": "*bf16"}
CASES = [
    (k._mi_fwd_chunks, FORWARD, dict(LSE_KNOWN=False, BLOCK_R=16, BLOCK_C=16, BLOCK_BOUNDS=1)),
    (k._mi_fwd_chunks, FORWARD, dict(LSE_KNOWN=False, BLOCK_R=1, BLOCK_C=4096, BLOCK_BOUNDS=8)),
    (k._mi_fwd_chunks, FORWARD, dict(LSE_KNOWN=True, BLOCK_R=1, BLOCK_C=4096, BLOCK_BOUNDS=64)),
    (k._mi_logsumexp, {"Z": "*bf16", "ROWS": I64}, dict(BLOCK_C=4096)),
    (k._mi_fwd_combine, {"BOUNDS": I64}, dict(BLOCK_P=4, BLOCK_N=1024, BLOCK_S=1024)),
    (k._mi_bwd, BACKWARD, dict(BLOCK_R=256, BLOCK_C=16, ONE_BLOCK=True)),
    (k._mi_bwd, BACKWARD, dict(BLOCK_R=1, BLOCK_C=4096, ONE_BLOCK=False)),
]
for fn, pointers, constants in CASES:
    signature = {}
    for name in fn.arg_names:
        if name in constants:
            signature[name] = "constexpr"
        elif name.isupper() and name not in SCALARS:
            signature[name] = pointers.get(name, F32)
        else:
            signature[name] = "i32"
    keys = {(fn.arg_names.index(n),): v for n, v in constants.items()}
    source = ASTSource(fn=fn, signature=signature, constexprs=keys)
    compiled = triton.compile(source, target=GPUTarget("cuda", 90, 32), options={"num_warps": 16})
    with tempfile.NamedTemporaryFile(suffix=".cubin") as f:
        f.write(compiled.asm["cubin"])
        f.flush()
        usage = subprocess.run(
            [os.path.join(BIN, "cuobjdump"), "--dump-resource-usage", f.name],
            capture_output=True, text=True, check=True,
        ).stdout
    resources = next(line.strip() for line in usage.splitlines() if "REG:" in line)
    print("compiled", fn.__name__, constants, resources)
"""


def test_kernels_compile_for_sm90():
    gpu_target = pytest.importorskip("triton.backends.compiler")
    if not hasattr(gpu_target, "GPUTarget"):
        pytest.skip("this Triton has no GPUTarget")
    env = {k: v for k, v in os.environ.items() if k != "TRITON_INTERPRET"}
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT / "src"), env.get("PYTHONPATH", "")])
    env.setdefault("TRITON_DEFAULT_FP_FUSION", "1")
    result = subprocess.run(
        [sys.executable, "-c", _COMPILE_FOR_SM90],
        capture_output=True, text=True, env=env, timeout=600,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr[-3000:]
    assert result.stdout.count("compiled ") == 7


# ---------------------------------------------------------------------------- GPU

GPU_SHAPES = [(1024, 32768), (1024, 4096), (4096, 1024), (8192, 16), (333, 10007), (77, 9000)]


@requires_cuda
@pytest.mark.gpu
@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16, torch.float16])
@pytest.mark.parametrize(("B", "C"), GPU_SHAPES)
def test_gpu_matches_the_reference(B, C, dtype):
    R = max(1, min(B // 2, C))
    _check(B, C, R, dtype, masked=0.05, seed=1)


@requires_cuda
@pytest.mark.gpu
@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
def test_gpu_labels_of_a_real_batch(dtype):
    # class indices uniform over C: most examples alone with their label, a few rows of S
    B, C = 1024, 32768
    z = (torch.randn(B, C, device="cuda") * 2).to(dtype)
    y = torch.randint(0, C, (B,), device="cuda")
    counts = torch.bincount(y, minlength=C)
    multi = counts >= 2
    rows = torch.where(multi, torch.cumsum(multi, 0) - 1, -2)[y]
    _check_forward(z, rows, B // 2)


@requires_cuda
@pytest.mark.gpu
def test_gpu_strided_and_repeatable():
    base = torch.randn(2048, 2 * 4096, device="cuda", dtype=torch.bfloat16)
    z = base[::2, ::2]  # (1024, 4096), row stride 16384, element stride 2
    _, rows, Lam, ln_s, scale = _inputs(1024, 4096, 300, device="cuda")
    first = _check_forward(z, rows, 300)
    second = km.forward(z, rows, 300)
    for name, a, b in zip(NAMES, first, second, strict=True):
        assert torch.equal(a, b), name
    dz = _check_backward(z, rows, Lam, ln_s, scale)
    assert torch.equal(dz, km.backward(z, rows, first[2], Lam, ln_s, scale))


def test_benchmark_glue_on_cpu():
    """scripts/bench_mutual_information_cuda.py: its kernels + torch glue give its float64
    reference gradient (so that the script measures a correct step)."""
    path = ROOT / "scripts" / "bench_mutual_information_cuda.py"
    spec = importlib.util.spec_from_file_location("bench_mutual_information_cuda", path)
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)
    g = torch.Generator().manual_seed(3)
    z = (torch.randn(30, 7, generator=g) * 2).to(DEVICE)
    y = torch.randint(0, 5, (30,), generator=g)
    y[:2] = torch.tensor([5, 6])  # two labels alone in the batch
    y = y.to(DEVICE)
    rows, n, R = bench.label_rows(y, 7)
    assert R == 7
    assert (rows == -2).sum() == 2
    assert n.sum() == (rows >= 0).sum()
    got = bench.glue_step(z, y)
    _assert_close(got, bench.reference_gradient(z, y), 1e-5, "∂(−I)/∂z")
