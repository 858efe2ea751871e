"""Every checkable statement of Quiz 1, grouped by problem (see `engine` for the types)."""

from __future__ import annotations

from collections.abc import Callable, Iterable

from infonorm.quiz.claims import geometric, layer_norm, mutual_information
from infonorm.quiz.claims.engine import (
    PROBLEMS,
    Claim,
    ClaimResult,
    Context,
    Evidence,
    evaluate,
)

__all__ = [
    "PROBLEMS",
    "Claim",
    "ClaimResult",
    "Context",
    "Evidence",
    "all_claims",
    "run",
    "select",
]


def all_claims() -> list[Claim]:
    """Every claim, in the quiz's order."""
    claims = [*geometric.CLAIMS, *mutual_information.CLAIMS, *layer_norm.CLAIMS]
    ids = [claim.id for claim in claims]
    duplicated = sorted({i for i in ids if ids.count(i) > 1})
    if duplicated:
        raise RuntimeError(f"claim ids must be unique; repeated: {', '.join(duplicated)}")
    return claims


def select(problems: Iterable[str] | None = None) -> list[Claim]:
    """The claims of the given problems ("P1", "P2", "P3"); all of them for None."""
    if problems is None:
        return all_claims()
    wanted = list(problems)
    unknown = [p for p in wanted if p not in PROBLEMS]
    if unknown:
        raise ValueError(
            f"problems must be among {', '.join(PROBLEMS)}; got {', '.join(map(str, unknown))}"
        )
    return [claim for claim in all_claims() if claim.problem in wanted]


def run(
    claims: Iterable[Claim],
    context: Context,
    on_start: Callable[[Claim], None] | None = None,
    on_result: Callable[[ClaimResult], None] | None = None,
) -> list[ClaimResult]:
    """Evaluate claims in order; the callbacks see each claim as it starts and ends."""
    results = []
    for claim in claims:
        if on_start is not None:
            on_start(claim)
        result = evaluate(claim, context)
        results.append(result)
        if on_result is not None:
            on_result(result)
    return results
