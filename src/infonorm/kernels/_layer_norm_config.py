"""How the layer-norm kernels cut their work: the tuning knobs, and the launch configuration
each shape gets from them.

`Tuning` holds every knob (frozen: pass a modified copy, `dataclasses.replace(DEFAULT, …)`,
to `forward`/`backward`; nothing here is a module global that callers overwrite).
`row_config` and `split_config` turn a shape and a `Tuning` into the block sizes, warps and
grid of one launch; both are cached per shape, so that a call repeats no arithmetic.

Where a default was measured on a device, the measurement is in docs/kernels-layer-norm.md;
the defaults not measured yet are marked so below, with the reason for the choice.
"""

# I is the quiz's name for the number of neurons per position (ambiguous to E741 only)
# ruff: noqa: E741

from __future__ import annotations

import functools
from dataclasses import dataclass, fields

PIPELINES = ("hand", "compiler")
PREFETCHES = ("auto", "one", "two")
AB_PLACES = ("auto", "registers", "reload")
LAUNCHES = ("triton", "direct")
# under Triton's CPU interpreter there is no device to ask: pretend to this many multiprocessors
INTERPRETER_MULTIPROCESSORS = 2


@dataclass(frozen=True)
class Tuning:
    """Every knob of the layer-norm kernels. Sizes in elements; powers of two where they
    are block sizes.

    Per-row kernels (scope="position", a row in registers):
      row_tile_elements: elements of one program tile (rows × a row's power of two);
      max_row_forward / max_row_backward: the longest row (rounded up to a power of two)
        kept in registers; longer rows go through the looped forward and split backward;
      looped_block_i: column block of the looped forward;
      forward_programs_per_sm: 0 = one program per row tile (measured default); k > 0 = a
        persistent forward of k programs per multiprocessor, the next tiles' loads in flight
        while one is normalized (argued from bytes in flight, not yet measured);
      row_backward_warps_per_sm: warps of the persistent backward per multiprocessor.
    Split kernels (scope="layer", and the backward of long rows):
      split_block_i, split_tile_elements: column block and tile (rows × block) of a unit;
      split_unit_tiles: tiles per unit of the statistics and partial-sum passes;
      split_max_units_per_layer: units per layer at most (each program merges them all);
      split_dx_warps_per_sm: warps of the persistent dx pass per multiprocessor;
      split_stats_stages: software-pipelining stages of the two passes over a unit that
        had no prefetch (statistics, normalizing); 1 = none (measured default).
    Both:
      forward_elements_per_thread / backward_elements_per_thread: elements of a tile per
        thread, which sets the warps of a program (at most 16);
      prefetch: tiles whose loads are in flight ahead of the one being computed in the
        persistent backward passes: "auto" (two when x and dy of a tile are under 32 KB),
        "one" or "two";
      pipelining: how those loads are put ahead. "hand": the kernel issues them itself and
        keeps them in registers (measured default); "compiler": `tl.range(num_stages=…)`,
        Triton's pipeliner stages them through shared memory (fewer registers; not yet
        measured on a device, hence not the default);
      ab_in_registers: the row backward holds A and B in registers ("registers"), reloads
        them from L1 for each tile ("reload"), or "auto" (reload for float32 rows of more
        than 8 elements per thread, which spill otherwise);
      launch: "triton" (each launch through `JITFunction.run`, measured default) or "direct"
        (after the first launch of a specialization, the compiled kernel is called with the
        same arguments, skipping Triton's per-call binding; not yet measured on a device);
      multiprocessors: the device's count when None (INTERPRETER_MULTIPROCESSORS under the
        interpreter), else this many (tests, and configurations for another device).
    """

    row_tile_elements: int = 4096
    max_row_forward: int = 16384
    max_row_backward: int = 8192
    looped_block_i: int = 4096
    forward_programs_per_sm: int = 0
    row_backward_warps_per_sm: int = 16
    split_block_i: int = 4096
    split_tile_elements: int = 4096
    split_unit_tiles: int = 8
    split_max_units_per_layer: int = 1024
    split_dx_warps_per_sm: int = 16
    split_stats_stages: int = 1
    forward_elements_per_thread: int = 8
    backward_elements_per_thread: int = 8
    prefetch: str = "auto"
    pipelining: str = "hand"
    ab_in_registers: str = "auto"
    launch: str = "triton"
    multiprocessors: int | None = None

    def __post_init__(self) -> None:
        powers_of_two = (
            "row_tile_elements", "max_row_forward", "max_row_backward", "looped_block_i",
            "split_block_i", "split_tile_elements", "forward_elements_per_thread",
            "backward_elements_per_thread",
        )  # fmt: skip
        choices = {
            "prefetch": PREFETCHES,
            "pipelining": PIPELINES,
            "ab_in_registers": AB_PLACES,
            "launch": LAUNCHES,
        }
        for field in fields(self):
            value = getattr(self, field.name)
            if field.name in choices:
                if value not in choices[field.name]:
                    options = ", ".join(choices[field.name])
                    raise ValueError(f"{field.name} must be one of {options}; got {value!r}")
                continue
            if field.name == "multiprocessors" and value is None:
                continue
            minimum = 0 if field.name == "forward_programs_per_sm" else 1
            if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
                raise ValueError(f"{field.name} must be an int >= {minimum}, got {value!r}")
            if field.name in powers_of_two and value & (value - 1):
                raise ValueError(f"{field.name} must be a power of two, got {value}")

    @property
    def ahead(self) -> int | None:
        """Tiles prefetched by the persistent backward passes, None for "auto"."""
        return {"auto": None, "one": 1, "two": 2}[self.prefetch]


DEFAULT = Tuning()


def pow2(n: int) -> int:
    """The smallest power of two ≥ n (1 for n ≤ 1)."""
    return 1 << max(0, n - 1).bit_length()


def cdiv(a: int, b: int) -> int:
    return -(-a // b)


def warps(tile_elements: int, elements_per_thread: int) -> int:
    """`elements_per_thread` elements of a tile per thread (8: one 16-byte access of bf16, two
    of fp32), 1 to 16 warps: at about 100 registers per thread (the backward kernels, read off
    the sm_90 compiler's resource usage) 16 warps fill a multiprocessor's register file."""
    return min(16, pow2(tile_elements // (32 * elements_per_thread)))


def _ahead(tuning: Tuning, tile_elements: int, element_size: int) -> int:
    """Tiles prefetched by a persistent backward pass: as asked, or "auto": two when one tile
    of x and dy is under 32 KB (the bytes one multiprocessor should have in flight) and fits
    at 8 elements per thread, else one."""
    if tuning.ahead is not None:
        return tuning.ahead
    fits = tile_elements <= 8 * 32 * 16
    return 2 if fits and 2 * tile_elements * element_size < 32 * 1024 else 1


@dataclass(frozen=True)
class RowConfig:
    """Per-row kernels: tiles of block_r rows × block_i columns; `programs` launched, each
    walking tiles pid, pid + programs, …; `ahead` tiles prefetched (0: one tile per program,
    no loop ahead); A and B held in registers or reloaded per tile (backward)."""

    block_r: int
    block_i: int
    num_warps: int
    programs: int
    ahead: int
    ab_in_registers: bool = True


@functools.lru_cache(maxsize=1024)
def row_config(
    R: int, I: int, element_size: int, *, backward: bool, multiprocessors: int, tuning: Tuning
) -> RowConfig | None:
    """The tile of the fused per-row kernels, or None when a row is too long for registers."""
    block_i = pow2(I)
    if block_i > (tuning.max_row_backward if backward else tuning.max_row_forward):
        return None
    block_r = min(pow2(R), max(1, tuning.row_tile_elements // block_i))
    elements = block_r * block_i
    tiles = cdiv(R, block_r)
    if not backward:
        num_warps = warps(elements, tuning.forward_elements_per_thread)
        per_sm = tuning.forward_programs_per_sm
        if per_sm == 0:
            return RowConfig(block_r, block_i, num_warps, tiles, ahead=0)
        programs = min(tiles, multiprocessors * per_sm)
        ahead = _ahead(tuning, elements, element_size)
        return RowConfig(block_r, block_i, num_warps, programs, ahead)
    # persistent backward: row_backward_warps_per_sm warps per multiprocessor, each program
    # writing one partial row of dA and dB
    num_warps = warps(elements, tuning.backward_elements_per_thread)
    per_sm = max(1, tuning.row_backward_warps_per_sm // num_warps)
    programs = min(tiles, multiprocessors * per_sm)
    if tuning.ab_in_registers == "auto":
        # fp32 rows of 16 elements per thread spill less with A and B re-read from L1
        ab_in_registers = element_size < 4 or elements <= 8 * 32 * num_warps
    else:
        ab_in_registers = tuning.ab_in_registers == "registers"
    return RowConfig(
        block_r, block_i, num_warps, programs, _ahead(tuning, elements, element_size),
        ab_in_registers,
    )  # fmt: skip


@dataclass(frozen=True)
class SplitConfig:
    """Split kernels: units of chunk_t rows × block_i columns (ct × ci per layer), walked in
    tiles of block_t × block_i; the dx pass runs dx_programs × ci programs, prefetching
    `ahead` tiles; the passes over a unit pipelined in `stats_stages` stages."""

    block_t: int
    block_i: int
    chunk_t: int
    ct: int
    ci: int
    forward_warps: int
    backward_warps: int
    dx_programs: int
    ahead: int
    stats_stages: int

    @property
    def units_per_layer(self) -> int:
        return self.ct * self.ci


@functools.lru_cache(maxsize=1024)
def split_config(
    R: int, T: int, I: int, element_size: int, *, multiprocessors: int, tuning: Tuning
) -> SplitConfig:
    block_i = min(pow2(I), tuning.split_block_i)
    block_t = min(pow2(T), max(1, tuning.split_tile_elements // block_i))
    ci = cdiv(I, block_i)
    row_blocks = cdiv(T, block_t)
    # split_unit_tiles tiles per unit, more if the layer would have too many units
    max_ct = max(1, tuning.split_max_units_per_layer // ci)
    tiles = min(row_blocks, max(tuning.split_unit_tiles, cdiv(row_blocks, max_ct)))
    chunk_t = block_t * tiles
    elements = block_t * block_i
    backward_warps = warps(elements, tuning.backward_elements_per_thread)
    per_sm = max(1, tuning.split_dx_warps_per_sm // backward_warps)
    dx_programs = max(1, min(R * row_blocks, multiprocessors * per_sm // ci))
    return SplitConfig(
        block_t, block_i, chunk_t, cdiv(T, chunk_t), ci,
        warps(elements, tuning.forward_elements_per_thread), backward_warps, dx_programs,
        _ahead(tuning, elements, element_size), tuning.split_stats_stages,
    )  # fmt: skip
