import json
from dataclasses import replace

import pytest
import torch

from infonorm.mutual_information import mutual_information
from infonorm.quiz.claims import Context
from infonorm.quiz.claims import mutual_information as claims
from infonorm.quiz.claims.engine import evaluate

CLAIMS = {claim.id: claim for claim in claims.CLAIMS}


@pytest.fixture(scope="module")
def context():
    """One quick context for the module: the training runs are computed once."""
    return Context(seed=0, quick=True)


@pytest.fixture(scope="module")
def results(context):
    return {claim.id: evaluate(claim, context) for claim in claims.CLAIMS}


def test_problem_two_claims_are_the_quiz_parts():
    expected = {"P2.a", "P2.a.perturbation", "P2.b", "P2.b.relabeling", "P2.values"}
    assert expected | {"P2.gradients", "P2.train.binary", "P2.train.digits"} == set(CLAIMS)
    assert all(claim.problem == "P2" for claim in claims.CLAIMS)


@pytest.mark.parametrize("claim_id", sorted(CLAIMS))
def test_every_problem_two_claim_is_confirmed_with_json_evidence(results, claim_id):
    result = results[claim_id]
    assert result.verdict == "confirmed", result.evidence.note or result.evidence.details
    json.dumps(result.to_dict(), allow_nan=False)


def test_binary_training_evidence_has_counts_and_curves(results):
    details = results["P2.train.binary"].evidence.details
    mmi = details["counts"]["mmi"]
    assert mmi["predictor"] > 0
    assert mmi["anti-predictor"] > 0
    assert mmi["predictor"] + mmi["anti-predictor"] == len(details["runs"]) // 2
    objectives = {curve["objective"] for curve in details["curves"]}
    assert objectives == {"mmi", "cross_entropy"}
    for curve in details["curves"]:
        assert len(curve["steps"]) == len(curve["mutual_information"])
        assert len(curve["steps"]) == len(curve["cross_entropy"])


def test_digits_evidence_keeps_confusions_and_relabelings(results):
    details = results["P2.train.digits"].evidence.details
    mmi = [run for run in details["runs"] if run["objective"] == "mmi"]
    assert mmi
    for run in mmi:
        assert len(run["confusion"]) == len(run["confusion_matched"]) == 10
        assert run["matched_accuracy"] >= run["raw_accuracy"]
        # one-to-one: a run that merged two digits into one column matches 9 columns
        assert len(set(run["mapping"].values())) == len(run["mapping"]) >= 9


def test_values_check_refutes_a_wrong_mutual_information(monkeypatch):
    def scaled(*args, **kwargs):
        return 1.01 * mutual_information(*args, **kwargs)

    monkeypatch.setattr(claims, "mutual_information", scaled)
    for claim_id in ("P2.a", "P2.b", "P2.values", "P2.b.relabeling"):
        assert evaluate(CLAIMS[claim_id], Context(quick=True)).verdict == "refuted"


def test_gradient_check_refutes_a_wrong_backward(monkeypatch):
    class Doubled(torch.autograd.Function):
        @staticmethod
        def forward(x):
            return x.clone()

        @staticmethod
        def setup_context(ctx, inputs, output):
            pass

        @staticmethod
        def backward(ctx, grad):
            return 2 * grad

    def doubled_gradient(input, target, **kwargs):
        return mutual_information(Doubled.apply(input), target, **kwargs)

    monkeypatch.setattr(claims, "mutual_information", doubled_gradient)
    assert evaluate(CLAIMS["P2.gradients"], Context(quick=True)).verdict == "refuted"


def test_relabeling_check_refutes_a_matching_that_ignores_relabelings(monkeypatch):
    def raw(pred, target):
        accuracy = float((torch.as_tensor(pred) == torch.as_tensor(target)).double().mean())
        return accuracy, {}

    monkeypatch.setattr(claims, "matched_accuracy", raw)
    assert evaluate(CLAIMS["P2.b.relabeling"], Context(quick=True)).verdict == "refuted"


def test_binary_training_check_refutes_a_stuck_run(monkeypatch, context):
    experiment = claims._binary(context)
    stuck = [
        replace(run, outcome="neither") if run.objective == "mmi" and run.seed == 0 else run
        for run in experiment.runs
    ]
    monkeypatch.setattr(claims, "_binary", lambda ctx: replace(experiment, runs=stuck))
    assert evaluate(CLAIMS["P2.train.binary"], Context(quick=True)).verdict == "refuted"


def test_digits_check_refutes_mmi_far_below_cross_entropy(monkeypatch, context):
    experiment = claims._digits(context)
    worse = [
        replace(run, matched_accuracy=run.matched_accuracy - 0.2) if run.objective == "mmi" else run
        for run in experiment.runs
    ]
    monkeypatch.setattr(claims, "_digits", lambda ctx: replace(experiment, runs=worse))
    assert evaluate(CLAIMS["P2.train.digits"], Context(quick=True)).verdict == "refuted"
