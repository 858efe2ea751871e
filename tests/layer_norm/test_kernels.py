"""The Triton kernels of layer norm + activation against a float64 autograd reference.

Without CUDA the kernels run on CPU tensors under Triton's interpreter (conftest sets
TRITON_INTERPRET=1 before they are imported): small awkward shapes, every activation, both
scopes, inputs whose σ is near √eps, and `Tuning`s that force every code path (several
units per layer, several column blocks, long rows, persistent loops, prefetch and pipelining
variants). With CUDA the same tests run on the GPU, and the `gpu` tests add larger shapes
(the anchors' scaled down), every dtype, strided inputs, every tuning variant at those
shapes and the direct launch path. Every output and scratch buffer the kernels allocate is
poisoned with NaN first, so an element left unwritten fails the comparison.
"""

# I is the quiz's name for the number of neurons per position (ambiguous to E741 only)
# ruff: noqa: E741

from __future__ import annotations

import dataclasses
import math

import pytest
import torch

pytest.importorskip("triton")

from infonorm.activations import ACTIVATIONS as ACTIVATION_TABLE
from infonorm.kernels import layer_norm as kl
from infonorm.kernels._layer_norm_config import Tuning, row_config, split_config
from infonorm.layer_norm import layer_norm_reference
from infonorm.quiz.bench import layer_norm_cuda as bench
from tests.cases import requires_cuda

# the "CPU" tests run on the GPU where there is one (the interpreter is off there)
DEVICE = "cuda" if torch.cuda.is_available() else "cpu"
ACTIVATIONS = tuple(ACTIVATION_TABLE)
# ‖out − ref‖/‖ref‖ allowed, per dtype of x (the reference is float64 on the same inputs)
TOLERANCE = {torch.float32: 2e-5, torch.bfloat16: 1.5e-2, torch.float16: 2e-3}


# ---------------------------------------------------------------------------- helpers


def _reference(x, A, B, dy, *, scope, activation, eps):
    """(y, mean, rstd, dx, dA, dB) in float64: the op's own reference and autograd."""
    dims = (-2, -1) if scope == "layer" else (-1,)
    L, A64, B64 = (t.detach().to(torch.float64).requires_grad_() for t in (x, A, B))
    y = layer_norm_reference(L, A64, B64, scope=scope, activation=activation, eps=eps)
    dx, dA, dB = torch.autograd.grad(y, (L, A64, B64), dy.to(torch.float64))
    mu = L.detach().mean(dims)
    rstd = (L.detach().var(dims, correction=0) + eps).rsqrt()
    return y.detach(), mu, rstd, dx, dA, dB


def _run(x, A, B, dy, *, scope, activation, eps=1e-5, tuning=None):
    kw = {"scope": scope, "activation": activation, "tuning": tuning}
    y, mean, rstd = kl.forward(x, A, B, eps=eps, **kw)
    dx, dA, dB = kl.backward(dy, x, A, B, mean, rstd, **kw)
    return y, mean, rstd, dx, dA, dB


def _inputs(shape, dtype=torch.float32, device=None, *, ab_dtype=None):
    device = device or DEVICE
    g = torch.Generator(device=device).manual_seed(hash(shape) % 2**31)
    x = (torch.randn(shape, generator=g, device=device) * 3 + 0.5).to(dtype)
    dy = torch.randn(shape, generator=g, device=device).to(dtype)
    I = shape[-1]
    A = torch.randn(I, generator=g, device=device).to(ab_dtype or dtype)
    B = torch.randn(I, generator=g, device=device).to(ab_dtype or dtype)
    return x, A, B, dy


def _assert_matches(
    got, want, tolerance, *, names=("y", "mean", "rstd", "dx", "dA", "dB"), zero_scales=None
):
    """‖got − want‖/‖want‖ within `tolerance` for each output. Where `want` is exactly zero,
    |got| must stay within `tolerance` times zero_scales[name] (the size of the terms that
    cancel; 0, i.e. exact zeros, for outputs not named there)."""
    zero_scales = zero_scales or {}
    for name, g, w in zip(names, got, want, strict=True):
        assert g.shape == w.shape, f"{name}: shape {tuple(g.shape)} != {tuple(w.shape)}"
        assert torch.isfinite(g).all(), f"{name}: non-finite entries (an element left unwritten?)"
        g = g.detach().to(torch.float64).cpu()
        w = w.to(torch.float64).cpu()
        scale = w.norm()
        if scale == 0:
            bound = tolerance * zero_scales.get(name, 0.0)
            assert g.abs().max() <= bound, f"{name}: expected zeros, got up to {g.abs().max()}"
            continue
        error = ((g - w).norm() / scale).item()
        assert error <= tolerance, f"{name}: ‖got − ref‖/‖ref‖ = {error:.3g} > {tolerance:g}"
        # and no single element far off relative to the output's size
        worst = ((g - w).abs().max() / w.abs().max()).item()
        assert worst <= 20 * tolerance, f"{name}: worst element off by {worst:.3g} of max|ref|"


def _check(
    shape, *, scope, activation="relu", eps=1e-5, dtype=torch.float32, device=None, tuning=None
):
    x, A, B, dy = _inputs(shape, dtype, device)
    _check_inputs(x, A, B, dy, scope=scope, activation=activation, eps=eps, tuning=tuning)


def _check_inputs(x, A, B, dy, *, scope, activation, eps, tuning=None):
    dtype = x.dtype
    got = _run(x, A, B, dy, scope=scope, activation=activation, eps=eps, tuning=tuning)
    want = _reference(x, A, B, dy, scope=scope, activation=activation, eps=eps)
    assert got[0].dtype == x.dtype
    assert got[3].dtype == x.dtype
    assert got[1].dtype == got[2].dtype == torch.float32
    assert got[4].dtype == A.dtype
    assert got[5].dtype == B.dtype
    # dx = rstd (G A − mean(G A) − h mean(G A h)) is exactly zero when every h is (I = 1, or
    # T = I = 1); compiled for a GPU, G A − mean(G A) can keep the rounding of G A (seen with
    # gelu on an H200), scaled by rstd
    cancelled = want[2].max() * dy.abs().max() * A.abs().max()
    _assert_matches(got, want, TOLERANCE[dtype], zero_scales={"dx": cancelled.item()})


@pytest.fixture(autouse=True)
def _poisoned(monkeypatch):
    """Every buffer the kernels allocate starts as NaN (−1 for integers)."""
    original = kl._empty

    def poisoned(shape, *, dtype, device):
        t = original(shape, dtype=dtype, device=device)
        return t.fill_(math.nan) if t.is_floating_point() else t.fill_(-1)

    monkeypatch.setattr(kl, "_empty", poisoned)


# small layers cut into several units and column blocks; rows longer than 8 go through the
# long-row kernels
SMALL_SPLIT = Tuning(
    split_block_i=8,
    split_tile_elements=16,
    split_unit_tiles=2,
    split_max_units_per_layer=64,
    max_row_forward=8,
    max_row_backward=8,
    looped_block_i=8,
)
# short rows of 13 in tiles of 2 rows (BLOCK_I 16, one warp), on 2 "multiprocessors": the
# persistent loops of 2 programs over 6 tiles each take 3 turns
SMALL_ROWS = Tuning(
    row_tile_elements=32, row_backward_warps_per_sm=1, forward_programs_per_sm=1, multiprocessors=2
)


# ---------------------------------------------------------------------------- CPU (interpreter)


@pytest.mark.parametrize("activation", ACTIVATIONS)
@pytest.mark.parametrize(("scope", "shape"), [("position", (3, 5, 13)), ("layer", (2, 7, 13))])
def test_every_activation_matches_the_reference(scope, shape, activation):
    _check(shape, scope=scope, activation=activation)


@pytest.mark.parametrize(
    ("scope", "shape"),
    [
        ("position", (5, 1)),  # I = 1: h = 0 everywhere
        ("position", (1, 17)),  # one row
        ("position", (31,)),  # no leading dims: one statistic, mean of shape ()
        ("position", (2, 3, 4, 7)),  # several leading dims
        ("position", (37, 3)),  # many short rows: several rows per tile
        ("layer", (1, 5)),  # T = 1, no leading dims
        ("layer", (3, 1, 1)),  # T = I = 1
        ("layer", (4, 1)),  # I = 1
        ("layer", (2, 3, 5, 7)),  # several leading dims
        ("layer", (1, 29, 3)),  # a prime T
    ],
)
@pytest.mark.parametrize("activation", ["gelu", "relu"])
def test_awkward_shapes(scope, shape, activation):
    _check(shape, scope=scope, activation=activation)


@pytest.mark.parametrize("scope", ["position", "layer"])
def test_eps_zero(scope):
    _check((3, 4, 11), scope=scope, activation="silu", eps=0.0)


def _near_sqrt_eps(shape, *, scope, dtype, eps):
    """x whose statistics all have σ² between eps/4 and 4 eps (log-uniform), around means
    between −0.1 and 0.1. There rstd = 1/sqrt(σ² + eps) is ≥ 10% away from what eps in
    any other place gives (1/σ, 1/(σ + eps), 1/sqrt(σ² + eps²), a fixed eps of 1e-5, …)."""
    g = torch.Generator().manual_seed(7)
    dims = (-2, -1) if scope == "layer" else (-1,)
    z = torch.randn(shape, generator=g, dtype=torch.float64)
    z = (z - z.mean(dims, keepdim=True)) / z.std(dims, unbiased=False, keepdim=True)
    statistics = z.mean(dims, keepdim=True).shape
    sigma = math.sqrt(eps) * 2 ** (2 * torch.rand(statistics, generator=g, dtype=torch.float64) - 1)
    mu = 0.2 * torch.rand(statistics, generator=g, dtype=torch.float64) - 0.1
    return (mu + sigma * z).to(dtype).to(DEVICE)


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16, torch.float16])
@pytest.mark.parametrize(
    ("scope", "shape", "tuning"),
    [
        ("position", (4, 6, 24), None),  # rows in registers
        ("position", (3, 21), SMALL_SPLIT),  # long rows: looped forward, split backward
        ("layer", (3, 5, 24), None),  # split statistics
    ],
    ids=["rows", "long-rows", "layer"],
)
def test_sigma_near_sqrt_eps(scope, shape, tuning, dtype):
    eps = 1e-3
    x = _near_sqrt_eps(shape, scope=scope, dtype=dtype, eps=eps)
    _, A, B, dy = _inputs(shape, dtype)
    _check_inputs(x, A, B, dy, scope=scope, activation="identity", eps=eps, tuning=tuning)


@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float16])
@pytest.mark.parametrize(("scope", "shape"), [("position", (6, 24)), ("layer", (2, 5, 24))])
def test_half_precision(scope, shape, dtype):
    _check(shape, scope=scope, activation="gelu", dtype=dtype)


def test_half_x_with_float32_parameters():
    x, _, _, dy = _inputs((4, 6, 10), torch.bfloat16)
    _, A, B, _ = _inputs((4, 6, 10))
    for scope in ("position", "layer"):
        got = _run(x, A, B, dy, scope=scope, activation="tanh")
        assert got[4].dtype == got[5].dtype == torch.float32
        want = _reference(x, A, B, dy, scope=scope, activation="tanh", eps=1e-5)
        _assert_matches(got, want, TOLERANCE[torch.bfloat16])


@pytest.mark.parametrize(
    ("scope", "activation"), [("position", "relu"), ("layer", "sigmoid"), ("layer", "relu")]
)
def test_split_kernels_with_several_units_and_blocks(scope, activation):
    # layers of 11 × 21: 6 row blocks of 2, 3 column blocks of 8, 2 tiles per unit;
    # position rows of 21 > 8: long-row kernels (looped forward, split backward with T = 1)
    shape = (2, 11, 21) if scope == "position" else (3, 11, 21)
    _check(shape, scope=scope, activation=activation, tuning=SMALL_SPLIT)


def test_layer_with_more_units_than_one_program_merges():
    # 10 row blocks × 3 column blocks > 8 units: units grow to stay within the limit
    tuning = dataclasses.replace(SMALL_SPLIT, split_unit_tiles=1, split_max_units_per_layer=8)
    config = split_config(2, 20, 21, 4, multiprocessors=2, tuning=tuning)
    assert (config.units_per_layer, config.ci, config.chunk_t) == (6, 3, 10)
    _check((2, 20, 21), scope="layer", activation="tanh", tuning=tuning)


@pytest.mark.parametrize("pipelining", ["hand", "compiler"])
@pytest.mark.parametrize("prefetch", ["one", "two"])
@pytest.mark.parametrize("ab_in_registers", ["registers", "reload"])
def test_row_backward_variants(pipelining, prefetch, ab_in_registers):
    tuning = dataclasses.replace(
        SMALL_ROWS, pipelining=pipelining, prefetch=prefetch, ab_in_registers=ab_in_registers
    )
    config = row_config(11, 13, 4, backward=True, multiprocessors=2, tuning=tuning)
    assert (config.block_r, config.programs) == (2, 2)
    _check((11, 13), scope="position", activation="gelu", tuning=tuning)


@pytest.mark.parametrize("pipelining", ["hand", "compiler"])
@pytest.mark.parametrize("prefetch", ["one", "two"])
def test_persistent_forward_variants(pipelining, prefetch):
    tuning = dataclasses.replace(SMALL_ROWS, pipelining=pipelining, prefetch=prefetch)
    config = row_config(11, 13, 4, backward=False, multiprocessors=2, tuning=tuning)
    assert (config.programs, config.ahead) == (2, 1 if prefetch == "one" else 2)
    x, A, B, _ = _inputs((11, 13))
    y, mean, rstd = kl.forward(
        x, A, B, scope="position", activation="silu", eps=1e-5, tuning=tuning
    )
    want = _reference(x, A, B, torch.ones_like(x), scope="position", activation="silu", eps=1e-5)
    _assert_matches(
        (y, mean, rstd), want[:3], TOLERANCE[torch.float32], names=("y", "mean", "rstd")
    )


@pytest.mark.parametrize(
    "changes",
    [
        {"prefetch": "one"},
        {"prefetch": "two", "pipelining": "compiler"},
        {"split_stats_stages": 3, "pipelining": "compiler"},
    ],
    ids=["hand-one", "compiler-two", "compiler-stages3"],
)
def test_split_pipelining_variants(changes):
    tuning = dataclasses.replace(SMALL_SPLIT, **changes)
    _check((3, 9, 13), scope="layer", activation="identity", tuning=tuning)


def test_tuning_rejects_bad_knobs():
    with pytest.raises(ValueError, match="row_tile_elements must be a power of two"):
        Tuning(row_tile_elements=3000)
    with pytest.raises(ValueError, match="pipelining must be one of hand, compiler"):
        Tuning(pipelining="auto")
    with pytest.raises(ValueError, match="split_unit_tiles must be an int >= 1"):
        Tuning(split_unit_tiles=0)
    with pytest.raises(ValueError, match="forward_programs_per_sm must be an int >= 0"):
        Tuning(forward_programs_per_sm=-1)


@pytest.mark.parametrize("scope", ["position", "layer"])
def test_strided_inputs_are_read_in_place(scope):
    base = torch.randn(7, 3, 26, device=DEVICE)
    x = base.transpose(0, 1)[..., ::2]  # (3, 7, 13), strides (26, 78, 2)
    dy = torch.randn(3, 13, 7, device=DEVICE).transpose(1, 2)  # strides (91, 1, 7)
    A, B = torch.randn(13, device=DEVICE), torch.randn(13, device=DEVICE)
    if scope == "layer":
        view, *_ = kl._as_rows(x, scope)
        assert view.data_ptr() == x.data_ptr(), "the layer view of x was copied"
    else:
        x, dy = x[0], dy[0]  # (7, 13) with a row stride of 78 and an element stride of 2
        view, *_ = kl._as_rows(x, scope)
        assert view.data_ptr() == x.data_ptr()
        assert (view.stride(0), view.stride(2)) == (78, 2)
    got = _run(x, A, B, dy, scope=scope, activation="relu")
    want = _reference(x, A, B, dy, scope=scope, activation="relu", eps=1e-5)
    _assert_matches(got, want, TOLERANCE[torch.float32])


@pytest.mark.parametrize("scope", ["position", "layer"])
def test_expanded_dy_as_from_a_sum(scope):
    # y.sum().backward() hands over dy = 1 expanded: every stride 0
    x, A, B, _ = _inputs((3, 6, 10))
    dy = torch.ones((), device=DEVICE).expand(x.shape)
    got = _run(x, A, B, dy, scope=scope, activation="sigmoid")
    want = _reference(x, A, B, dy, scope=scope, activation="sigmoid", eps=1e-5)
    _assert_matches(got, want, TOLERANCE[torch.float32])


def test_leading_dims_that_do_not_merge_are_copied_others_not():
    x = torch.randn(4, 6, 5, 3, device=DEVICE)[:, ::2]  # leading (4, 3), strides (90, 30): merge
    y = torch.randn(4, 6, 5, 3, device=DEVICE).transpose(0, 1)[::2]  # (3, 4), strides (30, 90)
    assert kl._as_rows(x, "layer")[0].data_ptr() == x.data_ptr()
    assert kl._as_rows(y, "layer")[0].data_ptr() != y.data_ptr()
    A, B = torch.randn(3, device=DEVICE), torch.randn(3, device=DEVICE)
    for t in (x, y):
        dy = torch.randn_like(t)
        got = _run(t, A, B, dy, scope="layer", activation="relu")
        want = _reference(t, A, B, dy, scope="layer", activation="relu", eps=1e-5)
        _assert_matches(got, want, TOLERANCE[torch.float32])


@pytest.mark.parametrize(("scope", "shape"), [("position", (0, 5)), ("layer", (0, 3, 4))])
def test_no_rows(scope, shape):
    x, A, B, dy = _inputs(shape)
    y, mean, rstd, dx, dA, dB = _run(x, A, B, dy, scope=scope, activation="relu")
    assert y.shape == dx.shape == shape
    assert mean.shape == rstd.shape == shape[: -2 if scope == "layer" else -1]
    assert dA.shape == dB.shape == (shape[-1],)
    assert (dA == 0).all()
    assert (dB == 0).all()


@pytest.mark.parametrize(("scope", "shape"), [("position", (9, 11)), ("layer", (3, 9, 11))])
def test_backward_is_deterministic(scope, shape):
    x, A, B, dy = _inputs(shape)
    first = _run(x, A, B, dy, scope=scope, activation="gelu", tuning=SMALL_SPLIT)
    second = _run(x, A, B, dy, scope=scope, activation="gelu", tuning=SMALL_SPLIT)
    for a, b in zip(first, second, strict=True):
        assert torch.equal(a, b)


def test_bad_arguments():
    x, A, B, dy = _inputs((2, 3, 4))
    with pytest.raises(TypeError, match="float64"):
        kl.forward(x.double(), A, B, scope="layer", activation="relu", eps=1e-5)
    with pytest.raises(ValueError, match="scope"):
        kl.forward(x, A, B, scope="token", activation="relu", eps=1e-5)
    with pytest.raises(ValueError, match="activation"):
        kl.forward(x, A, B, scope="layer", activation="elu", eps=1e-5)
    with pytest.raises(ValueError, match=r"shape \(4,\)"):
        kl.forward(x, A[:3], B, scope="layer", activation="relu", eps=1e-5)
    with pytest.raises(ValueError, match="no elements"):
        kl.forward(x[:, :0], A, B, scope="layer", activation="relu", eps=1e-5)
    _, mean, rstd = kl.forward(x, A, B, scope="layer", activation="relu", eps=1e-5)
    with pytest.raises(ValueError, match="dy"):
        kl.backward(dy[0], x, A, B, mean, rstd, scope="layer", activation="relu")
    with pytest.raises(ValueError, match="mean"):
        kl.backward(dy, x, A, B, mean[:1], rstd, scope="layer", activation="relu")


def test_heuristics_on_the_anchor_shapes():
    """The configurations a 132-multiprocessor H100 or H200 gets by default (see
    docs/kernels-layer-norm.md)."""
    default = Tuning()
    h200 = {"multiprocessors": 132, "tuning": default}
    forward = row_config(16384, 4096, 2, backward=False, **h200)
    assert (forward.block_r, forward.block_i, forward.num_warps) == (1, 4096, 16)
    assert (forward.programs, forward.ahead) == (16384, 0)
    backward = row_config(16384, 4096, 2, backward=True, **h200)
    assert (backward.programs, backward.ahead) == (132, 2)
    assert row_config(16384, 4096, 4, backward=True, **h200).ahead == 1
    assert row_config(4096, 8192, 4, backward=True, **h200).ab_in_registers is False
    assert row_config(16384, 1024, 2, backward=True, **h200).block_r == 4
    assert row_config(8, 32768, 2, backward=False, **h200) is None
    split = split_config(8, 2048, 4096, 2, **h200)
    assert (split.block_t, split.block_i, split.chunk_t, split.ct, split.ci) == (1, 4096, 8, 256, 1)
    assert (split.dx_programs, split.ahead, split.stats_stages) == (132, 2, 1)
    # the levers the GPU session compares against the defaults
    persistent = dataclasses.replace(default, forward_programs_per_sm=2)
    lever = row_config(16384, 4096, 2, backward=False, multiprocessors=132, tuning=persistent)
    assert (lever.programs, lever.ahead, lever.num_warps) == (264, 2, 16)
    wide = dataclasses.replace(default, forward_elements_per_thread=32)
    assert (
        row_config(16384, 4096, 2, backward=False, multiprocessors=132, tuning=wide).num_warps == 4
    )


def test_cuda_bench_helpers_on_cpu():
    labels = {case.label for case in bench.CASES}
    assert "position 16384×4096 bfloat16" in labels
    assert "layer 8×2048×4096 float32" in labels
    assert "position 8×256 bfloat16" in labels
    assert len(labels) == len(bench.CASES) == 11
    assert set(bench.QUICK_CASES) <= set(bench.CASES)
    assert bench.selected_cases(False, "layer 8×2048") == (bench.CASES[1], bench.CASES[10])
    # 16384×4096 bf16: 134 MB per pass; forward+backward 5 passes in 0.226 ms = 2.97 TB/s
    assert bench.minimal_bytes((16384, 4096), torch.bfloat16, 5) == 5 * 2 * 16384 * 4096
    assert bench.tb_per_s(bench.minimal_bytes((16384, 4096), torch.bfloat16, 5), 0.226) == (
        pytest.approx(2.97, abs=0.01)
    )
    assert bench.input_set_count(134 * 2**20, 50 * 2**20) == 1
    assert bench.input_set_count(32 * 2**20, 50 * 2**20) == 4
    case = bench.CASES[0]
    timings = {"ours": (0.1, 0.25), "torch eager": (0.211, 0.675), "QuACK": (0.09, None)}
    rows = bench.build_rows(case, timings, 3e-3)
    assert [row["peer"] for row in rows] == list(timings)
    assert all(set(row) == set(bench.COLUMNS) for row in rows)
    eager, quack = rows[1], rows[2]
    assert eager["ours speedup fwd+bwd"] == pytest.approx(0.675 / 0.25)
    assert eager["fwd+bwd TB/s"] == pytest.approx(0.994, abs=0.01)
    assert quack["ours speedup fwd"] == pytest.approx(0.9)
    assert quack["fwd+bwd TB/s"] is None
    assert rows[0]["max rel err"] == 3e-3
    assert rows[1]["max rel err"] is None


def test_bench_reference_error_catches_a_wrong_output():
    case = bench.Case("position", (6, 16), torch.float32)
    x, A, B, dy = _inputs(case.shape)
    want = bench.reference(case, (x, A, B, dy))
    assert bench.ours_error(case, (x, A, B, dy), want=want) < 1e-5
    wrong = (want[0], want[1] * 1.01, want[2], want[3])
    assert bench.max_relative_error(wrong, want) == pytest.approx(0.01, rel=1e-6)
    assert bench.max_relative_error((want[0] * math.nan, *want[1:]), want) == math.inf


# ---------------------------------------------------------------------------- GPU

GPU_CASES = [
    ("position", (2048, 4096)),
    ("position", (4096, 1024)),
    ("position", (512, 8192)),
    ("position", (333, 1000)),
    ("position", (64, 20000)),  # long rows: looped forward, split backward
    ("layer", (2, 512, 4096)),
    ("layer", (4, 256, 1024)),
    ("layer", (3, 77, 1000)),
    ("layer", (1, 4, 9000)),  # several column blocks
]


@requires_cuda
@pytest.mark.gpu
@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16, torch.float16])
@pytest.mark.parametrize(("scope", "shape"), GPU_CASES)
def test_gpu_matches_the_reference(scope, shape, dtype):
    x, A, B, dy = _inputs(shape, dtype, "cuda")
    for activation in ("relu", "gelu", "silu"):
        got = _run(x, A, B, dy, scope=scope, activation=activation)
        want = _reference(x, A, B, dy, scope=scope, activation=activation, eps=1e-5)
        _assert_matches(got, want, TOLERANCE[dtype])


@requires_cuda
@pytest.mark.gpu
@pytest.mark.parametrize("activation", ACTIVATIONS)
@pytest.mark.parametrize("scope", ["position", "layer"])
def test_gpu_every_activation(scope, activation):
    shape = (4, 96, 768)
    x, A, B, dy = _inputs(shape, torch.bfloat16, "cuda", ab_dtype=torch.float32)
    got = _run(x, A, B, dy, scope=scope, activation=activation)
    want = _reference(x, A, B, dy, scope=scope, activation=activation, eps=1e-5)
    _assert_matches(got, want, TOLERANCE[torch.bfloat16])


@requires_cuda
@pytest.mark.gpu
@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
@pytest.mark.parametrize("scope", ["position", "layer"])
def test_gpu_strided_inputs(scope, dtype):
    base = torch.randn(512, 4, 2 * 1024, device="cuda", dtype=dtype)
    x = base.transpose(0, 1)[..., ::2]  # (4, 512, 1024), element stride 2
    dy = torch.randn(4, 1024, 512, device="cuda", dtype=dtype).transpose(1, 2)
    A = torch.randn(1024, device="cuda", dtype=dtype)
    B = torch.randn(1024, device="cuda", dtype=dtype)
    got = _run(x, A, B, dy, scope=scope, activation="gelu")
    want = _reference(x, A, B, dy, scope=scope, activation="gelu", eps=1e-5)
    _assert_matches(got, want, TOLERANCE[dtype])


@requires_cuda
@pytest.mark.gpu
def test_gpu_results_repeat_bit_for_bit():
    x, A, B, dy = _inputs((8, 512, 2048), torch.bfloat16, "cuda")
    for scope in ("position", "layer"):
        first = _run(x, A, B, dy, scope=scope, activation="relu")
        second = _run(x, A, B, dy, scope=scope, activation="relu")
        for a, b in zip(first, second, strict=True):
            assert torch.equal(a, b)


def _tunings(scope: str) -> dict[str, dict]:
    """Every tuning the GPU session times (docs/kernels-layer-norm.md), by name."""
    from infonorm.quiz.bench import layer_norm_knobs as knobs

    return {**knobs.LEVERS[scope], **knobs.SWEEP[scope]}


@requires_cuda
@pytest.mark.gpu
@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
@pytest.mark.parametrize(
    ("scope", "shape"),
    [("position", (2048, 4096)), ("position", (300, 8192)), ("layer", (3, 500, 4096))],
)
def test_gpu_every_timed_tuning_matches_the_reference(scope, shape, dtype):
    x, A, B, dy = _inputs(shape, dtype, "cuda")
    want = _reference(x, A, B, dy, scope=scope, activation="gelu", eps=1e-5)
    for name, changes in _tunings(scope).items():
        tuning = dataclasses.replace(Tuning(), **changes)
        got = _run(x, A, B, dy, scope=scope, activation="gelu", tuning=tuning)
        try:
            _assert_matches(got, want, TOLERANCE[dtype])
        except AssertionError as error:
            raise AssertionError(f"tuning {name!r}: {error}") from error


@requires_cuda
@pytest.mark.gpu
@pytest.mark.parametrize("scope", ["position", "layer"])
def test_gpu_direct_launch_repeats_the_triton_launch(scope):
    # direct launches reuse a compiled kernel only for arguments it was compiled for: an
    # input 2 bytes off 16-byte alignment after aligned ones, a second shape, a stride of 1
    # and of 2, must all give Triton's own results bit for bit
    direct = Tuning(launch="direct")
    flat = torch.randn(3 * 40 * 96 + 8, device="cuda", dtype=torch.bfloat16)
    aligned = flat[: 3 * 40 * 96].view(3, 40, 96)
    shifted = flat[1 : 1 + 3 * 40 * 96].view(3, 40, 96)
    other = torch.randn(2, 24, 160, device="cuda", dtype=torch.bfloat16)
    strided = torch.randn(3, 40, 192, device="cuda", dtype=torch.bfloat16)[..., ::2]
    for x in (aligned, shifted, aligned, other, strided, shifted):
        _, A, B, dy = _inputs(tuple(x.shape), torch.bfloat16, "cuda")
        for _ in range(2):  # the first launch of a key compiles, the second reuses
            got = _run(x, A, B, dy, scope=scope, activation="relu", tuning=direct)
            want = _run(x, A, B, dy, scope=scope, activation="relu")
            for a, b in zip(got, want, strict=True):
                assert torch.equal(a, b)


def test_direct_launch_reuses_a_kernel_only_for_the_same_specialization():
    """The bookkeeping of `launch(direct=True)`, with a stand-in for a Triton kernel: the
    first launch of each specialization goes through kernel[grid] (JITFunction.run), later
    ones call the compiled kernel with every argument in signature order."""
    from types import SimpleNamespace

    from infonorm.kernels._launch import launch

    through_triton, direct_calls = [], []
    compiled = SimpleNamespace(
        function="function", packed_metadata="packed", run=lambda *a: direct_calls.append(a)
    )

    class Kernel:
        params = tuple(SimpleNamespace(name=n) for n in ("X", "n", "strides", "BLOCK", "MODE"))

        def __getitem__(self, grid):
            return lambda *args, **meta: through_triton.append((grid, args, meta)) or compiled

    kernel = Kernel()
    buffer = torch.zeros(64)
    aligned, shifted = buffer[:32], buffer[1:33]  # 4 bytes off 16-byte alignment
    meta = {"BLOCK": 32, "MODE": "hand", "num_warps": 4}

    def go(x, n, strides=(32, 1)):
        launch(kernel, (3,), (x, n, strides), meta, direct=True, device=0, stream=7)

    go(aligned, 5)
    go(aligned, 5)
    assert len(through_triton) == 1
    assert direct_calls == [
        (3, 1, 1, 7, "function", "packed", None, None, None, aligned, 5, (32, 1), 32, "hand")
    ]
    go(shifted, 5)  # another alignment: Triton specializes on it
    go(aligned, 1)  # an integer 1 (a constant to Triton)
    go(aligned, 5, (32, 2))  # another stride
    go(aligned.double(), 5)  # another dtype
    assert len(through_triton) == 5
    assert len(direct_calls) == 1
    go(shifted, 5)
    assert len(through_triton) == 5
    assert direct_calls[-1][9] is shifted
