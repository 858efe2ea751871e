"""The claim engine: the quiz's statements as checks against independent references.

A `Claim` pairs a statement of the quiz with a check. The check returns `Evidence`:
what the quiz's formula gives (expected), what a reference outside infonorm gives
(measured), the tolerance, a verdict, the reference's name and one sentence that says how
the verdict was reached. A refuted claim is a finding about the source, not a failure of
the run; a check that raises is recorded with verdict "error".

Statements, titles and references hold math as LaTeX between $…$, which the report
typesets; everything else in them is plain text.
"""

from __future__ import annotations

import math
import time
import traceback
import zlib
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal, TypeVar

import numpy as np
import torch

Verdict = Literal["confirmed", "refuted", "error"]
VERDICTS: tuple[Verdict, ...] = ("confirmed", "refuted", "error")
PROBLEMS = ("P1", "P2", "P3")

T = TypeVar("T")


@dataclass
class Evidence:
    """The outcome of one check.

    `summary` is one sentence of plain text on how the verdict was reached ("largest
    difference 6e-16 (allowed 1e-9) on 7 populations"); `label` names a part of a combined
    check ("float32", "soft predictions"). A tolerance of None on a combined check means
    its parts have tolerances of their own (see `combine`).
    """

    expected: Any
    measured: Any
    tolerance: float | None
    verdict: Verdict
    reference: str
    details: dict[str, Any] = field(default_factory=dict)
    note: str = ""
    summary: str = ""
    label: str = ""


def within(
    expected: Any,
    measured: Any,
    tolerance: float,
    *,
    reference: str,
    relative: bool = False,
    details: dict[str, Any] | None = None,
    note: str = "",
    label: str = "",
    over: str = "",
) -> Evidence:
    """Confirmed when every |measured − expected| <= tolerance (times |expected| if relative).

    Infinite values agree only with the same infinity; NaN never agrees. `over` says what
    the values were computed on, for the summary ("7 populations").
    """
    e = np.asarray(expected, dtype=np.float64)
    m = np.asarray(measured, dtype=np.float64)
    if e.shape != m.shape:
        raise ValueError(f"expected has shape {e.shape} but measured has shape {m.shape}")
    error = max_error(e, m, relative=relative)
    verdict: Verdict = "confirmed" if error <= tolerance else "refuted"
    info = {"max_error": error, "relative": relative, **(details or {})}
    summary = difference_sentence(error, tolerance, relative=relative, count=e.size, over=over)
    return Evidence(expected, measured, tolerance, verdict, reference, info, note, summary, label)


def below(
    error: float,
    tolerance: float,
    *,
    reference: str,
    relative: bool = False,
    label: str = "",
    over: str = "",
    details: dict[str, Any] | None = None,
) -> Evidence:
    """Confirmed when an error already measured against the reference is <= tolerance."""
    verdict: Verdict = "confirmed" if error <= tolerance else "refuted"
    info = {"max_error": error, "relative": relative, **(details or {})}
    summary = difference_sentence(error, tolerance, relative=relative, over=over)
    return Evidence(0.0, error, tolerance, verdict, reference, info, "", summary, label)


def number(x: float) -> str:
    """A number for a sentence: two significant digits, exponents without padding (6e-16)."""
    if not math.isfinite(x):
        return "∞" if x > 0 else ("−∞" if x < 0 else "NaN")
    text = f"{x:.2g}"
    mantissa, _, exponent = text.partition("e")
    if exponent:
        text = f"{mantissa}e{int(exponent)}"
    return text.replace("-", "−")


def difference_sentence(
    error: float, tolerance: float, *, relative: bool = False, count: int = 0, over: str = ""
) -> str:
    """'largest difference 6e-16 (allowed 1e-9) over 42 values on 7 populations'."""
    kind = "relative difference" if relative else "difference"
    values = f" over {count} values" if count > 1 else ""
    where = f" on {over}" if over else ""
    return f"largest {kind} {number(error)} (allowed {number(tolerance)}){values}{where}"


def max_error(expected: Any, measured: Any, *, relative: bool = False) -> float:
    """Largest |measured − expected| (relative: divided by max(|expected|, tiny))."""
    e = np.asarray(expected, dtype=np.float64)
    m = np.asarray(measured, dtype=np.float64)
    same_infinity = np.isinf(e) & (e == m)
    with np.errstate(invalid="ignore", over="ignore"):  # inf − inf is handled just below
        diff = np.where(same_infinity, 0.0, np.abs(m - e))
        if relative:
            diff = np.where(same_infinity, 0.0, diff / np.maximum(np.abs(e), 1e-300))
    diff = np.where(np.isnan(diff), np.inf, diff)
    return float(diff.max()) if diff.size else 0.0


def holds(
    condition: bool,
    *,
    expected: Any,
    measured: Any,
    reference: str,
    tolerance: float | None = None,
    details: dict[str, Any] | None = None,
    note: str = "",
    summary: str = "",
    label: str = "",
) -> Evidence:
    """Evidence for a claim whose truth is a condition (an inequality, a count, a match).

    `summary` says in one sentence what was found, from the measured values.
    """
    verdict: Verdict = "confirmed" if bool(condition) else "refuted"
    return Evidence(
        expected, measured, tolerance, verdict, reference, dict(details or {}), note, summary, label
    )


def combine(
    parts: Sequence[Evidence],
    *,
    reference: str,
    note: str = "",
    over: str = "",
    summary: str = "",
    label: str = "",
) -> Evidence:
    """One verdict from several sub-checks: refuted if any part is.

    Each part keeps its own tolerance and error: `details["checks"]` lists them (nested
    combinations flattened), and the combined tolerance and largest error are set only when
    every part shares one tolerance, since the loosest tolerance of a float64 part and a
    bfloat16 part says nothing about the float64 part. Every part is kept in full in
    `details["parts"]`. The summary is built from the checks unless one is given.
    """
    verdict: Verdict = "confirmed" if all(p.verdict == "confirmed" for p in parts) else "refuted"
    checks = [check for part in parts for check in _checks(part)]
    details: dict[str, Any] = {"parts": [_evidence_dict(p) for p in parts], "checks": checks}
    tolerances = {c["tolerance"] for c in checks}
    relative = {c["relative"] for c in checks}
    errors = [c["max_error"] for c in checks]
    shared = len(tolerances) == 1 and len(relative) == 1 and None not in tolerances
    tolerance = next(iter(tolerances)) if shared else None
    if shared and all(isinstance(e, float) for e in errors):
        details["max_error"] = max(errors)
        details["relative"] = relative.pop()
    return Evidence(
        expected=[p.expected for p in parts],
        measured=[p.measured for p in parts],
        tolerance=tolerance,
        verdict=verdict,
        reference=reference,
        details=details,
        note=note,
        summary=summary or _combined_summary(checks, details, tolerance, over),
        label=label,
    )


def _checks(evidence: Evidence) -> list[dict[str, Any]]:
    """The leaf checks of `evidence`: one row per part with its own tolerance and error."""
    nested = evidence.details.get("checks")
    if nested:
        label = evidence.label
        return [{**c, "label": ", ".join(filter(None, (label, c["label"])))} for c in nested]
    error = evidence.details.get("max_error")
    return [
        {
            "label": evidence.label,
            "reference": evidence.reference,
            "verdict": evidence.verdict,
            "tolerance": evidence.tolerance,
            "max_error": float(error) if isinstance(error, (int, float)) else None,
            "relative": bool(evidence.details.get("relative", False)),
            "summary": evidence.summary,
        }
    ]


def _combined_summary(
    checks: list[dict[str, Any]], details: dict[str, Any], tolerance: float | None, over: str
) -> str:
    """One sentence: the largest error against the shared tolerance, or else one clause per
    label and tolerance (each with its own largest error), then what the other parts found."""
    if tolerance is not None and "max_error" in details:
        return difference_sentence(
            details["max_error"], tolerance, relative=details["relative"], over=over
        )
    groups: dict[tuple, list[dict[str, Any]]] = {}
    for c in checks:
        numeric = c["max_error"] is not None and c["tolerance"] is not None
        key = (c["label"], c["tolerance"], c["relative"]) if numeric else (c["label"], c["summary"])
        groups.setdefault(key, []).append(c)
    clauses = []
    for key, group in groups.items():
        label = f"{key[0]}: " if key[0] else ""
        if len(key) == 3:
            worst = max(c["max_error"] for c in group)
            clauses.append(label + difference_sentence(worst, key[1], relative=key[2]))
        elif key[1]:
            clauses.append(label + key[1])
    where = f" (on {over})" if over else ""
    return "; ".join(clauses) + where


@dataclass
class Context:
    """What a check may use: the seed, the quick switch, shared results, progress."""

    seed: int = 0
    quick: bool = False
    progress: Callable[[str, int, int], None] | None = None
    _memo: dict[str, Any] = field(default_factory=dict, repr=False)

    def _salted(self, salt: str) -> int:
        return (self.seed * 1_000_003 + zlib.crc32(salt.encode())) % 2**63

    def generator(self, salt: str) -> torch.Generator:
        """A torch generator seeded from the run's seed and `salt`, independent of order."""
        return torch.Generator().manual_seed(self._salted(salt))

    def rng(self, salt: str) -> np.random.Generator:
        """A NumPy generator seeded from the run's seed and `salt`."""
        return np.random.default_rng(self._salted(salt))

    def shared(self, key: str, compute: Callable[[], T]) -> T:
        """Compute once per run a result that several claims read (a training run, say)."""
        if key not in self._memo:
            self._memo[key] = compute()
        return self._memo[key]

    def track(self, items: Iterable[T], description: str, total: int | None = None) -> Iterator[T]:
        """Iterate, reporting each step to the progress display when there is one."""
        items = list(items) if total is None else items
        total = len(items) if total is None else total
        for done, item in enumerate(items):
            if self.progress is not None:
                self.progress(description, done, total)
            yield item
        if self.progress is not None:
            self.progress(description, total, total)


@dataclass(frozen=True)
class Claim:
    """A statement of the quiz and the check that tests it."""

    id: str
    problem: str
    statement: str
    check: Callable[[Context], Evidence]
    title: str = ""

    def __post_init__(self) -> None:
        if self.problem not in PROBLEMS:
            raise ValueError(f"problem must be one of {PROBLEMS}, got {self.problem!r}")


@dataclass
class ClaimResult:
    claim: Claim
    evidence: Evidence
    seconds: float

    @property
    def verdict(self) -> Verdict:
        return self.evidence.verdict

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.claim.id,
            "problem": self.claim.problem,
            "title": self.claim.title,
            "statement": self.claim.statement,
            **_evidence_dict(self.evidence),
            "seconds": round(self.seconds, 3),
        }


def evaluate(claim: Claim, context: Context) -> ClaimResult:
    """Run one claim's check; an exception becomes verdict "error" with its message."""
    start = time.perf_counter()
    try:
        evidence = claim.check(context)
        if evidence.verdict not in VERDICTS:
            raise ValueError(f"check returned verdict {evidence.verdict!r}")
    except Exception as error:  # a broken check is reported, not raised: the run goes on
        evidence = Evidence(
            expected=None,
            measured=None,
            tolerance=None,
            verdict="error",
            reference="",
            details={"traceback": traceback.format_exc(limit=8)},
            note=f"{type(error).__name__}: {error}",
        )
    return ClaimResult(claim, evidence, time.perf_counter() - start)


def _evidence_dict(evidence: Evidence) -> dict[str, Any]:
    return {
        "verdict": evidence.verdict,
        "expected": jsonable(evidence.expected),
        "measured": jsonable(evidence.measured),
        "tolerance": jsonable(evidence.tolerance),
        "reference": evidence.reference,
        "note": evidence.note,
        "summary": evidence.summary,
        "label": evidence.label,
        "details": jsonable(evidence.details),
    }


def jsonable(value: Any) -> Any:
    """Plain JSON types; non-finite floats become the strings "inf", "-inf", "nan"."""
    if isinstance(value, torch.Tensor):
        value = value.detach().cpu()
        value = value.double().numpy() if value.is_floating_point() else value.numpy()
    if isinstance(value, np.ndarray):
        return jsonable(value.tolist())
    if isinstance(value, (np.floating, float)):
        value = float(value)
        if math.isfinite(value):
            return value
        return "nan" if math.isnan(value) else ("inf" if value > 0 else "-inf")
    if isinstance(value, (np.integer,)):
        return int(value)
    if isinstance(value, (np.bool_,)):
        return bool(value)
    if isinstance(value, dict):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [jsonable(v) for v in value]
    if value is None or isinstance(value, (bool, int, str)):
        return value
    return str(value)
