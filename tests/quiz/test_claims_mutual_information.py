import json
from dataclasses import replace

import pytest
import torch

from infonorm.mutual_information import mutual_information
from infonorm.quiz.claims import Context
from infonorm.quiz.claims import mutual_information as claims
from infonorm.quiz.claims.engine import evaluate
from infonorm.quiz.report.markup import evidence_summary
from tests.quiz.test_report import INLINE_MATH, PSEUDO_LATEX

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


# ---------------------------------------------------------------------------- tolerance per dtype


def test_values_report_each_dtype_against_its_own_tolerance(results):
    entry = results["P2.values"].to_dict()
    checks = {c["label"]: c for c in entry["details"]["checks"]}
    for dtype, tolerance in claims.TOLERANCE.items():
        name = str(dtype).removeprefix("torch.")
        assert checks[f"soft predictions, {name}"]["tolerance"] == tolerance
    assert checks["hard predictions, float64"]["tolerance"] == claims.EXACT
    # no single headline tolerance: the bfloat16 one would hide the float64 one
    assert entry["tolerance"] is None
    summary = evidence_summary(entry)
    assert "soft predictions, float64: largest difference" in summary
    assert "(allowed 1e−12)" in summary
    assert "soft predictions, bfloat16" in summary


def test_values_refute_a_float64_error_hidden_under_the_bfloat16_tolerance(monkeypatch):
    def off_in_float64(input, *args, **kwargs):
        value = mutual_information(input, *args, **kwargs)
        return value + 1e-6 if input.dtype == torch.float64 else value

    monkeypatch.setattr(claims, "mutual_information", off_in_float64)
    evidence = evaluate(CLAIMS["P2.values"], Context(quick=True)).evidence
    assert evidence.verdict == "refuted"
    refuted = {c["label"] for c in evidence.details["checks"] if c["verdict"] == "refuted"}
    assert refuted == {"hard predictions, float64", "soft predictions, float64"}


def test_negative_mutual_information_from_rounding_is_explained(results):
    entry = results["P2.values"].to_dict()
    parts = entry["details"]["parts"]
    smallest = min(v for part in parts[:2] for p in part["details"]["parts"] for v in p["measured"])
    if smallest < 0:
        assert "slightly negative" in entry["note"]
        assert "rounding" in entry["note"]
    else:
        assert entry["note"] == ""


def test_gradients_report_each_dtype_against_its_own_tolerance(results):
    checks = {c["label"]: c for c in results["P2.gradients"].evidence.details["checks"]}
    for dtype, tolerance in claims.GRADIENT_TOLERANCE.items():
        assert checks[str(dtype).removeprefix("torch.")]["tolerance"] == tolerance


# ---------------------------------------------------------------------------- digits restarts


def _digits_with(context, train_I_of):
    """The quick digits experiment with each MMI run's training I replaced."""
    experiment = claims._digits(context)
    runs = [
        replace(run, train_mutual_information=train_I_of(run)) if run.objective == "mmi" else run
        for run in experiment.runs
    ]
    return replace(experiment, runs=runs)


def test_digits_is_judged_on_the_restart_with_the_best_training_I(monkeypatch, context):
    # the worst restart on held-out data gets the best training I: the pick must follow it
    experiment = _digits_with(context, lambda run: 10 - run.matched_accuracy)
    monkeypatch.setattr(claims, "_digits", lambda ctx: experiment)
    evidence = evaluate(CLAIMS["P2.train.digits"], Context(quick=True)).evidence
    worst = min(r.matched_accuracy for r in experiment.of("mmi"))
    assert evidence.measured["MMI matched accuracy (best training I)"] == worst
    assert evidence.verdict == "refuted"


def test_digits_refutes_a_pick_by_a_training_I_that_does_not_rank_the_restarts(
    monkeypatch, context
):
    # the best restart keeps the best training I, the others are ranked backwards
    mmi = sorted(claims._digits(context).of("mmi"), key=lambda r: -r.matched_accuracy)
    order = {run.seed: k for k, run in enumerate(mmi)}
    best = mmi[0].seed

    def backwards(run):
        return 100.0 if run.seed == best else float(order[run.seed])

    experiment = _digits_with(context, backwards)
    monkeypatch.setattr(claims, "_digits", lambda ctx: experiment)
    evidence = evaluate(CLAIMS["P2.train.digits"], Context(quick=True)).evidence
    assert evidence.measured["MMI matched accuracy (best training I)"] == mmi[0].matched_accuracy
    assert evidence.details["rank_agreement"] < claims.RANK_AGREEMENT
    assert evidence.verdict == "refuted"


def test_digits_states_the_restarts_and_their_spread(results):
    evidence = results["P2.train.digits"].evidence
    matched = [r["matched_accuracy"] for r in evidence.details["runs"] if r["objective"] == "mmi"]
    assert f"best of {len(matched)} MMI restarts by training I" in evidence.summary
    assert f"from {min(matched):.3f} to {max(matched):.3f}" in evidence.summary
    within = evidence.details["restarts_within_gap"]
    assert f"{within} of {len(matched)} within" in evidence.summary
    assert "best of N MMI restarts" in CLAIMS["P2.train.digits"].statement


@pytest.mark.parametrize("claim_id", sorted(CLAIMS))
def test_math_in_what_the_page_shows_is_marked_for_typesetting(results, claim_id):
    evidence = results[claim_id].evidence
    claim = CLAIMS[claim_id]
    for text in (claim.statement, claim.title, evidence.reference, evidence.summary, evidence.note):
        assert not PSEUDO_LATEX.findall(INLINE_MATH.sub("", text)), text
