import pytest

from infonorm import geometric
from infonorm.quiz.claims import Context
from infonorm.quiz.claims import geometric as claims
from infonorm.quiz.claims.engine import evaluate

CLAIMS = {claim.id: claim for claim in claims.CLAIMS}


def test_problem_one_claims_are_the_quiz_parts():
    assert {"P1.a", "P1.b", "P1.c"} <= set(CLAIMS)
    assert all(claim.problem == "P1" for claim in claims.CLAIMS)


@pytest.mark.parametrize("claim_id", sorted(CLAIMS))
def test_every_problem_one_claim_is_confirmed(claim_id):
    result = evaluate(CLAIMS[claim_id], Context(seed=0, quick=True))
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


def test_closed_form_evidence_carries_figure_data():
    details = evaluate(CLAIMS["P1.a"], Context(quick=True)).evidence.details
    assert len(details["populations"]) == len(claims.populations())
    assert all(len(row["lam"]) == len(row["scipy"]) for row in details["populations"])
    assert details["empirical"]
