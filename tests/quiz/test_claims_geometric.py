from types import SimpleNamespace

import pytest
from scipy import optimize
from torch.distributions import Geometric

from infonorm import geometric
from infonorm.quiz.claims import Context
from infonorm.quiz.claims import geometric as claims
from infonorm.quiz.claims.engine import evaluate
from tests.quiz.test_report import INLINE_MATH, PSEUDO_LATEX

CLAIMS = {claim.id: claim for claim in claims.CLAIMS}


@pytest.fixture(scope="module")
def results():
    """Every problem 1 claim evaluated once, quick, for the checks that only read them."""
    return {claim.id: evaluate(claim, Context(seed=0, quick=True)) for claim in claims.CLAIMS}


def test_problem_one_claims_are_the_quiz_parts():
    assert {"P1.a", "P1.b", "P1.c"} <= set(CLAIMS)
    assert all(claim.problem == "P1" for claim in claims.CLAIMS)


@pytest.mark.parametrize("claim_id", sorted(CLAIMS))
def test_every_problem_one_claim_is_confirmed(results, claim_id):
    result = results[claim_id]
    assert result.verdict == "confirmed", result.evidence.note or result.evidence.details


def test_populations_include_real_count_data():
    data = [p for p in claims.populations() if p.kind == "data"]
    assert any("digits" in p.name for p in data)
    assert all(p.counts is not None and p.counts.min() >= 0 for p in data)


def test_closed_form_check_refutes_a_wrong_formula(monkeypatch):
    monkeypatch.setattr(geometric, "cross_entropy", lambda mu, lam: -(1 - lam) - mu * lam)
    assert evaluate(CLAIMS["P1.a"], Context(quick=True)).verdict == "refuted"


def test_minimizer_check_refutes_a_wrong_optimum(monkeypatch):
    monkeypatch.setattr(geometric, "optimal_lambda", lambda mu: mu / (mu + 2))
    assert evaluate(CLAIMS["P1.b"], Context(quick=True)).verdict == "refuted"


def test_mean_check_refutes_a_wrong_optimum(monkeypatch):
    monkeypatch.setattr(geometric, "optimal_lambda", lambda mu: mu / (mu + 2))
    assert evaluate(CLAIMS["P1.c"], Context(quick=True)).verdict == "refuted"
    assert evaluate(CLAIMS["P1.c.series"], Context(quick=True)).verdict == "refuted"


def test_closed_form_evidence_carries_figure_data(results):
    details = results["P1.a"].evidence.details
    assert len(details["populations"]) == len(claims.populations())
    assert all(len(row["lam"]) == len(row["scipy"]) for row in details["populations"])
    assert details["empirical"]


# ---------------------------------------------------------------------------- references outside


def _shifted(function, factor):
    def shifted(*args, **kwargs):
        return factor * function(*args, **kwargs)

    return shifted


class _MeanOff(Geometric):
    """torch's Geometric with a mean off by one part in 1e9."""

    @property
    def mean(self):
        return super().mean * (1 + 1e-9)


def _concave(population, lam):
    return 10 - (lam - 0.5) ** 2


# the references themselves, kept before any test replaces them
ORIGINAL_CROSS_ENTROPY = claims._direct_cross_entropy
ORIGINAL_DERIVATIVES = claims._autograd_derivatives
ORIGINAL_SERIES_MEAN = claims._series_mean
ORIGINAL_MINIMIZE = optimize.minimize_scalar


def _series_off(lam, tail_bound):
    partial_sum, tail, K = ORIGINAL_SERIES_MEAN(lam, tail_bound)
    return partial_sum + 1e-6, tail, K


# each claim's reference outside infonorm, made wrong: the claim must then fail, which shows
# that the reference decides the verdict rather than sitting beside it
CORRUPTIONS = {
    "P1.a": ("_direct_cross_entropy", lambda: _shifted(ORIGINAL_CROSS_ENTROPY, 1.001)),
    "P1.b": (
        "optimize.minimize_scalar",
        lambda: lambda f, **kw: SimpleNamespace(x=ORIGINAL_MINIMIZE(f, **kw).x + 1e-3),
    ),
    "P1.b.derivative": (
        "_autograd_derivatives",
        lambda: lambda mu, lam: (ORIGINAL_DERIVATIVES(mu, lam)[0] * 1.001, 1.0),
    ),
    "P1.b.convexity": ("_direct_cross_entropy", lambda: _concave),
    "P1.c": ("Geometric", lambda: _MeanOff),
    "P1.c.series": ("_series_mean", lambda: _series_off),
}


def test_every_problem_one_claim_has_a_corruption_of_its_outside_reference():
    assert set(CORRUPTIONS) == set(CLAIMS)


@pytest.mark.parametrize("claim_id", sorted(CLAIMS))
def test_each_problem_one_claim_names_a_reference_outside_infonorm(results, claim_id):
    evidence = results[claim_id].evidence
    reference = evidence.reference
    assert reference
    assert "infonorm" not in reference
    assert "geometric." not in reference  # infonorm's own module
    assert any(name in reference for name in ("scipy", "torch", "math.fsum"))


@pytest.mark.parametrize("claim_id", sorted(CLAIMS))
def test_each_problem_one_claim_fails_when_its_outside_reference_is_wrong(claim_id, monkeypatch):
    target, make = CORRUPTIONS[claim_id]
    owner, _, name = target.rpartition(".")
    monkeypatch.setattr(getattr(claims, owner) if owner else claims, name, make())
    assert evaluate(CLAIMS[claim_id], Context(quick=True)).verdict == "refuted"


def test_convexity_is_also_seen_in_scipys_cross_entropy_without_derivatives(results):
    evidence = results["P1.b.convexity"].evidence
    checks = {c["label"]: c for c in evidence.details["checks"]}
    assert set(checks) == {"autograd", "scipy's H"}
    assert checks["scipy's H"]["reference"] == claims.SCIPY_SUM
    assert all(c["verdict"] == "confirmed" for c in checks.values())


def test_the_gradient_fit_is_a_declared_cross_check_inside_infonorm(results):
    evidence = results["P1.b"].evidence
    inside = [c for c in evidence.details["checks"] if "infonorm" in c["reference"]]
    outside = [c for c in evidence.details["checks"] if "infonorm" not in c["reference"]]
    assert inside
    assert outside
    assert all("cross-check" in c["reference"] for c in inside)
    assert {c["reference"] for c in outside} == {"scipy.optimize.minimize_scalar"}


@pytest.mark.parametrize("claim_id", sorted(CLAIMS))
def test_math_in_what_the_page_shows_is_marked_for_typesetting(results, claim_id):
    evidence = results[claim_id].evidence
    claim = CLAIMS[claim_id]
    for text in (claim.statement, claim.title, evidence.reference, evidence.summary):
        assert not PSEUDO_LATEX.findall(INLINE_MATH.sub("", text)), text
