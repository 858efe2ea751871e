import io
import json
import re

import pytest
import torch
from matplotlib import mathtext

from infonorm.layer_norm import layer_norm_reference
from infonorm.quiz.claims import Context
from infonorm.quiz.claims import layer_norm as claims
from infonorm.quiz.claims.engine import evaluate

CLAIMS = {claim.id: claim for claim in claims.CLAIMS}
LINE_IDS = [f"P3.line{n}" for n in range(1, 9)]
COMBINED_IDS = ["P3.combined.A", "P3.combined.B", "P3.combined.L"]
# what the checker finds in the quiz's printed solution: lines 3 and 4 have the wrong sign
# (line 3 also evaluates σ' at h instead of A h + B), and so lines 1–8 do not combine into
# the combined equations, which are themselves right
REFUTED = {"P3.line3", "P3.line4", "P3.chain"}


_CONTEXTS: dict[int, Context] = {}


def _evaluate(claim_id, seed=0, *, fresh=False):
    """A claim's result; the derivation checks are shared by the claims of one seed, as in a
    run, unless `fresh` (a test that changes a derivation file)."""
    ctx = (
        Context(seed=seed, quick=True)
        if fresh
        else _CONTEXTS.setdefault(seed, Context(seed=seed, quick=True))
    )
    return evaluate(CLAIMS[claim_id], ctx)


def test_claim_ids_follow_the_design():
    assert set(LINE_IDS + COMBINED_IDS) <= set(CLAIMS)
    assert {"P3.forward", "P3.backward"} <= set(CLAIMS)
    assert all(claim.problem == "P3" for claim in claims.CLAIMS)
    assert [line.id for line in claims.LINES] == LINE_IDS
    assert [line.id for line in claims.COMBINED] == COMBINED_IDS


@pytest.mark.parametrize("claim_id", sorted(CLAIMS))
def test_verdicts(claim_id):
    result = _evaluate(claim_id)
    expected = "refuted" if claim_id in REFUTED else "confirmed"
    assert result.verdict == expected, result.evidence.note or result.evidence.details
    json.dumps(result.to_dict(), allow_nan=False)


@pytest.mark.parametrize("seed", [1, 2, 3])
@pytest.mark.parametrize("claim_id", ["P3.line3", "P3.line4", "P3.line6", "P3.combined.L"])
def test_line_verdicts_do_not_depend_on_the_seed(claim_id, seed):
    expected = "refuted" if claim_id in REFUTED else "confirmed"
    assert _evaluate(claim_id, seed).verdict == expected


@pytest.mark.parametrize("claim_id", ["P3.line3", "P3.line4"])
def test_refuted_lines_carry_a_corrected_form_that_holds(claim_id):
    details = _evaluate(claim_id).evidence.details
    assert details["corrected_verdict"] == "confirmed"
    assert details["corrected_max_error"] <= 1e-10 * max(1.0, abs(details["true"]))
    assert details["corrected_latex"].startswith(details["latex"].split("=")[0] + "= -")
    assert details["max_error"] > 1e-3


def test_line_three_is_wrong_in_sign_and_in_the_argument_of_sigma_prime():
    details = _evaluate("P3.line3").evidence.details
    assert details["layer"]["relu_disagreements"] > 0
    assert "\\sigma'(h[t, i])" in details["latex"]
    sign_only, argument_only = details["diagnostics"]
    assert sign_only["max_error"] > 1e-3
    assert argument_only["value"] == pytest.approx(-details["true"], rel=1e-12)


def test_line_six_is_zero_at_the_forward_values_as_printed():
    details = _evaluate("P3.line6").evidence.details
    (zero,) = details["assertions"]
    assert zero["verdict"] == "confirmed"
    assert abs(zero["value"]) < 1e-12
    assert abs(details["printed"]) < 1e-12
    assert abs(details["true"]) < 1e-12
    # and off the forward's values, where Σ(μ − L) ≠ 0, the line is a derivative that holds
    assert details["max_error_off_forward"] <= 1e-10


def _with_line(monkeypatch, number, expression, name="printed"):
    """Problem 3's claims with one line of a derivation file replaced."""
    original = claims.derivation

    def derivation(which):
        d = original(which)
        return d.with_update(number, expression) if which == name else d

    monkeypatch.setattr(claims, "derivation", derivation)


@pytest.mark.parametrize(
    "wrong",
    [
        'sum_over("t i", sigma.grad * (-5 / sigma) * (mu - L))',  # coefficient −5/σ
        'sum_over("t i", sigma.grad / (T * I * sigma) * (L - mu))',  # sign flipped
        'sum_over("t i", sigma.grad / (sigma) * (mu - L))',  # 1/TI dropped
        "0 * sigma.grad",  # "= 0" taken for the derivative
    ],
)
def test_a_wrong_line_six_is_refuted(wrong, monkeypatch):
    _with_line(monkeypatch, 6, wrong)
    result = _evaluate("P3.line6", fresh=True)
    assert result.verdict == "refuted"
    details = result.evidence.details
    # at the forward's values every one of these is 0, as the right line is
    assert details["max_error_at_forward"] <= 1e-10
    assert details["max_error_off_forward"] > 1e-3
    assert "moved off" in result.evidence.note
    # the "= 0" statement is checked on its own, and still holds
    assert details["assertions"][0]["verdict"] == "confirmed"


def test_a_wrong_equals_zero_is_refuted_on_its_own(monkeypatch):
    original = claims.derivation

    def derivation(which):
        if which != "printed":
            return original(which)
        path = claims.resources.files(claims.DERIVATIONS) / "layer_norm_printed.py"
        text = path.read_text(encoding="utf-8").replace("(mu - L)) == 0", "(mu - L)) == 1")
        return claims.backprop.parse(text, str(path))

    monkeypatch.setattr(claims, "derivation", derivation)
    result = _evaluate("P3.line6", fresh=True)
    assert result.verdict == "refuted"
    assert result.evidence.details["max_error"] <= 1e-10  # the derivative holds
    assert result.evidence.details["assertions"][0]["verdict"] == "refuted"


# Terms that are 0 at the forward's values (μ = mean L, σ = std L): Σ(L − μ), Σh, Σh² − TI.
# Added to a line they must be refuted unless they are identities of the step the line
# differentiates: σ(L, μ) makes Σh² = TI for every μ (lines 6, 7), μ(L) makes Σ(L − μ) = 0
# and so Σh = 0 (line 8).
VANISHING = {
    "sum(L - mu)": 'sum_over("t i", L - mu)',
    "sum(h)": 'sum_over("t i", h)',
    "sum(h^2) - TI": '(sum_over("t i", h**2) - T * I)',
}
IDENTITIES = {6: {"sum(h^2) - TI"}, 7: {"sum(h^2) - TI"}, 8: {"sum(L - mu)", "sum(h)"}}


@pytest.mark.parametrize("term", sorted(VANISHING))
@pytest.mark.parametrize("number", range(1, 9))
def test_no_line_hides_a_term_that_vanishes_at_the_forward_values(number, term):
    d = claims.derivation("corrected")
    u = d.updates[number - 1]
    right = u.source.split(f" {u.op} ", 1)[1]
    adjoint = f"{u.reads[0]}.grad.sum()"
    # as many draws as the claims use: a term the draws cannot see would pass them too
    report = claims.backprop.check(
        d.with_update(number, f"({right}) + {adjoint} * {VANISHING[term]}"), draws=claims.DRAWS
    )
    line = report.line(number)
    assert line.max_error_at_forward <= 1e-10  # invisible at the forward's values
    identity = term in IDENTITIES.get(number, set())
    assert line.holds == identity, (number, term, line.max_error_off_forward)


@pytest.mark.parametrize("number", range(1, 9))
def test_every_line_with_a_wrong_factor_or_sign_is_refuted(number):
    d = claims.derivation("corrected")
    u = d.updates[number - 1]
    right = u.source.split(f" {u.op} ", 1)[1]
    for wrong in (f"-({right})", f"(1 + 1 / (T * I)) * ({right})"):
        report = claims.backprop.check(d.with_update(number, wrong), draws=1)
        assert not report.line(number).holds


def test_checker_refutes_a_wrong_line_and_confirms_a_right_one(monkeypatch):
    _with_line(monkeypatch, 5, "-Lt.grad * relu_prime(A * h + B) * A / sigma")
    assert _evaluate("P3.line5", fresh=True).verdict == "refuted"
    monkeypatch.undo()
    corrected = claims.derivation("corrected").updates[2].source.split(" = ", 1)[1]
    _with_line(monkeypatch, 3, corrected)
    assert _evaluate("P3.line3", fresh=True).verdict == "confirmed"


def test_printed_lines_read_the_true_adjoints_and_name_what_they_inherit():
    # line 7 reads σ.grad: it holds although line 3, which prints σ.grad, does not; run in
    # order after line 3 it is off, and the evidence says from where
    evidence = {i: _evaluate(i).evidence for i in ("P3.line3", "P3.line4", "P3.line7", "P3.line8")}
    assert evidence["P3.line7"].verdict == "confirmed"
    assert evidence["P3.line7"].details["inherits_from"] == ["P3.line3"]
    assert evidence["P3.line7"].details["chained_max_error"] > 1e-3
    assert evidence["P3.line8"].details["inherits_from"] == ["P3.line4"]
    assert evidence["P3.line3"].details["passes_error_to"] == ["P3.line7"]
    assert evidence["P3.line4"].details["passes_error_to"] == ["P3.line8"]
    assert "P3.line3" in evidence["P3.line7"].note


def test_the_chain_names_the_lines_it_follows_from():
    details = _evaluate("P3.chain").evidence.details
    assert details["caused_by"] == ["P3.line3", "P3.line4"]
    assert details["inherited"] == {"P3.line7": ["P3.line3"], "P3.line8": ["P3.line4"]}
    assert max(details["errors"]["corrected"].values()) <= 1e-10
    assert max(details["combined_errors"].values()) <= 1e-10
    assert details["errors"]["printed"]["L.grad"] > 1e-3
    assert details["finite_differences"]["holds"]


def test_the_truth_is_autograd_on_an_independent_layer_norm():
    reports = claims._reports(Context(quick=True))  # what the claims of seed 0 read
    report = reports["printed"]
    for values, adjoints in zip(report.draws, report.adjoints, strict=True):
        leaves = [values[n].clone().requires_grad_() for n in ("L", "A", "B")]
        y = layer_norm_reference(*leaves, scope="layer", activation="relu", eps=0.0)
        for name, grad in zip(
            ("L", "A", "B"), torch.autograd.grad(y, leaves, adjoints["Lt"]), strict=True
        ):
            torch.testing.assert_close(adjoints[name], grad, rtol=0, atol=1e-12)
    # the three files are checked on the same draws
    for other in ("corrected", "combined"):
        torch.testing.assert_close(
            reports[other].draws[0]["L"], report.draws[0]["L"], rtol=0, atol=0
        )


def test_backward_claim_refutes_a_wrong_backward(monkeypatch):
    right = claims.layer_norm_backward

    def wrong(*args, **kwargs):
        dx, dA, dB = right(*args, **kwargs)
        return dx, dA * 1.001, dB

    monkeypatch.setattr(claims, "layer_norm_backward", wrong)
    assert _evaluate("P3.backward", fresh=True).verdict == "refuted"


def test_backward_evidence_has_an_error_per_scope_activation_and_gradient():
    rows = _evaluate("P3.backward").evidence.details["rows"]
    assert len(rows) == 24
    for row in rows:
        assert set(row["autograd"]) == set(row["finite_differences"]) == {"dx", "dA", "dB"}


def test_forward_claim_refutes_a_wrong_forward(monkeypatch):
    right = claims.layer_norm
    monkeypatch.setattr(claims, "layer_norm", lambda *a, **k: right(*a, **{**k, "eps": 1e-3}))
    assert _evaluate("P3.forward", fresh=True).verdict == "refuted"


@pytest.mark.parametrize("claim_id", LINE_IDS + COMBINED_IDS)
def test_every_equation_renders_with_mathtext(claim_id):
    details = _evaluate(claim_id).evidence.details
    for latex in filter(None, (details["latex"], details.get("corrected_latex"))):
        mathtext.math_to_image(f"${latex}$", io.BytesIO(), format="svg")
    assert CLAIMS[claim_id].statement.startswith("As printed in the solution: ")


@pytest.mark.parametrize("claim_id", ["P3.forward", "P3.backward", "P3.chain"])
def test_statements_hold_math_only_between_dollars(claim_id):
    prose = re.sub(r"(?<!\\)\$.+?(?<!\\)\$", "", CLAIMS[claim_id].statement)
    assert not re.search(r"\\[A-Za-z]+|Σ_|sqrt\(|[_^]\{", prose), prose
