"""Argument checks shared by the public functions.

Every check raises before any work is done, with a message that names the argument and
says what was expected, so that a caller (or the CLI) can show it as one line.
"""

from __future__ import annotations

import math
import tempfile
from collections.abc import Sequence
from numbers import Integral, Real
from pathlib import Path
from typing import Any, NoReturn

import numpy as np
import torch

# Beyond 1e12 the fitted 1 − λ* = 1/(μ + 1) keeps less than four significant digits in
# float64 (λ* itself rounds to 1 near 1e16), so larger counts are refused rather than misfit.
MAX_COUNT = 10**12


def as_counts(samples: Any, name: str = "samples") -> torch.Tensor:
    """Return `samples` as a 1-D int64 tensor of non-negative integers, or raise ValueError."""
    if isinstance(samples, (str, bytes)):
        raise ValueError(f"{name} must be a 1-D sequence of non-negative integers, got a string")
    if isinstance(samples, torch.Tensor):
        check_has_values(samples, name, "it holds no values to fit")
        if samples.layout != torch.strided:
            raise ValueError(f"{name} must be a dense tensor, got layout {samples.layout}")
        values = samples.detach().cpu()
        if values.dtype == torch.bool or values.is_complex():
            raise ValueError(f"{name} must hold non-negative integers, got dtype {values.dtype}")
        array = values.to(torch.float64 if values.is_floating_point() else torch.int64).numpy()
    else:
        if not isinstance(samples, (Sequence, np.ndarray)) and not hasattr(samples, "__array__"):
            raise ValueError(
                f"{name} must be a 1-D sequence of non-negative integers, "
                f"got {type(samples).__name__}"
            )
        try:
            array = np.asarray(samples)
        except (TypeError, ValueError) as error:
            raise ValueError(f"{name} must be a 1-D sequence of non-negative integers") from error
    if array.ndim != 1:
        raise ValueError(f"{name} must be 1-D, got shape {tuple(array.shape)}")
    if array.size == 0:
        raise ValueError(f"{name} is empty: at least one count is needed")
    if array.dtype == object and all(_is_integer(v) for v in array):
        # only Python integers beyond int64 make an object array of integers
        _reject_big_integers(array, name)
    if array.dtype == np.bool_ or not np.issubdtype(array.dtype, np.number):
        raise ValueError(
            f"{name} must hold non-negative integers, got values of type {array.dtype}"
        )
    if np.iscomplexobj(array):
        raise ValueError(f"{name} must hold real non-negative integers, got complex values")
    if np.issubdtype(array.dtype, np.floating):
        # compared in float64: 1e12 itself overflows float16 (inf, with a warning)
        array = array.astype(np.float64)
        if not np.all(np.isfinite(array)):
            raise ValueError(f"{name} holds NaN or infinite values")
        if np.any(array != np.floor(array)):
            raise ValueError(f"{name} holds fractional values: counts must be whole numbers")
    if np.any(array < 0):
        raise ValueError(f"{name} holds negative values: counts must be >= 0")
    if np.any(array > MAX_COUNT):
        raise ValueError(f"{name} holds values above 1e12, too large to fit in float64")
    return torch.as_tensor(array.astype(np.int64))


def _is_integer(value: Any) -> bool:
    return isinstance(value, Integral) and not isinstance(value, bool)


def _reject_big_integers(array: np.ndarray, name: str) -> NoReturn:
    if any(v < 0 for v in array):
        raise ValueError(f"{name} holds negative values: counts must be >= 0")
    raise ValueError(f"{name} holds values above 1e12, too large to fit in float64")


def as_float64(value: Any, name: str) -> tuple[torch.Tensor, bool]:
    """Return (value as a float64 tensor, whether it was a Python/NumPy scalar)."""
    if isinstance(value, torch.Tensor):
        if not (value.is_floating_point() or value.dtype in _INTEGER_DTYPES):
            raise TypeError(f"{name} must be a real number or tensor, got dtype {value.dtype}")
        check_dense(value, name)
        return value.to(torch.float64) if value.dtype != torch.float64 else value, False
    if isinstance(value, (bool, str, bytes)) or not isinstance(value, (Real, np.ndarray, Sequence)):
        raise TypeError(f"{name} must be a real number or tensor, got {type(value).__name__}")
    try:
        array = np.asarray(value, dtype=np.float64)
    except OverflowError:  # a Python integer beyond float64, such as 10**400
        raise ValueError(
            f"{name} holds an integer too large for float64 (beyond 1.8e308)"
        ) from None
    except (TypeError, ValueError) as error:
        raise TypeError(f"{name} must be a real number or tensor") from error
    return torch.as_tensor(array), array.ndim == 0


def check_dense(t: torch.Tensor, name: str) -> None:
    """TypeError unless `t` is a dense (strided) tensor: sparse and other layouts lack the
    views and in-place ops the computations use."""
    if t.layout != torch.strided:
        raise TypeError(f"{name} must be a dense tensor, got layout {t.layout}")


def check_has_values(t: torch.Tensor, name: str, needed_for: str) -> None:
    """ValueError if `t` is on the meta device: it has a shape but no values."""
    if t.device.type == "meta":
        raise ValueError(f"{name} is on the meta device: {needed_for}")


def check_in_range(
    value: torch.Tensor, name: str, *, low: float, high: float, high_open: bool
) -> None:
    """Raise ValueError unless every element lies in [low, high) or [low, high]."""
    check_has_values(value, name, "its values are needed to check it")
    if torch.isnan(value).any():
        raise ValueError(f"{name} holds NaN")
    above = value >= high if high_open else value > high
    if (value < low).any() or above.any():
        closing = ")" if high_open else "]"
        bad = value[(value < low) | above].flatten()[0].item()
        raise ValueError(f"{name} must lie in [{low:g}, {high:g}{closing}, got {bad!r}")


def check_choice(value: Any, name: str, choices: Sequence[str]) -> None:
    if value not in choices:
        raise ValueError(f"{name} must be one of {', '.join(map(repr, choices))}; got {value!r}")


def check_finite_scalar(value: Any, name: str, *, minimum: float | None = None) -> float:
    """`value` as a finite float, or a TypeError/ValueError that names `name`."""
    if type(value) is float and math.isfinite(value):
        # the common case, without the ABC check below (a hot path calls this)
        if minimum is not None and value < minimum:
            raise ValueError(f"{name} must be >= {minimum:g}, got {value!r}")
        return value
    if isinstance(value, bool) or not isinstance(value, Real):
        raise TypeError(f"{name} must be a real number, got {type(value).__name__}")
    try:
        value = float(value)
    except OverflowError:
        # a Python int (or Fraction) beyond the float range, e.g. 10**400
        digits = len(str(abs(int(value))))
        raise ValueError(
            f"{name} must be finite, got a number of {digits} digits, beyond the float range"
        ) from None
    if not math.isfinite(value):
        raise ValueError(f"{name} must be finite, got {value!r}")
    if minimum is not None and value < minimum:
        raise ValueError(f"{name} must be >= {minimum:g}, got {value!r}")
    return value


_INTEGER_DTYPES = (torch.int8, torch.int16, torch.int32, torch.int64, torch.uint8)


def check_creatable(path: Path, label: str) -> None:
    """Raise unless `path` (a file or folder, existing or not) can be created: the nearest
    existing folder on the way to it must take a new entry. Tried for real (a folder made
    and removed), since permission bits do not tell root or read-only mounts. NotADirectoryError
    when a file stands on the way, OSError when the folder refuses; messages start with
    `label` and `path`."""
    folder = path.parent
    while not folder.exists():
        folder = folder.parent
    if not folder.is_dir():
        raise NotADirectoryError(
            f"{label} {path} cannot be created: {folder} is a file, not a folder"
        )
    try:
        Path(tempfile.mkdtemp(prefix=".infonorm-check.", dir=folder)).rmdir()
    except OSError as error:
        raise OSError(f"{label} {path} cannot be written: {folder}: {error.strerror}") from None
