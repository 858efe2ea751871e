import io
import json
from dataclasses import replace

import pytest
import torch
from matplotlib import mathtext

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


def _evaluate(claim_id, seed=0):
    return evaluate(CLAIMS[claim_id], Context(seed=seed, quick=True))


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


def test_line_six_sums_to_zero_as_printed():
    details = _evaluate("P3.line6").evidence.details
    assert abs(details["printed"]) < 1e-12
    assert abs(details["true"]) < 1e-12


def test_checker_refutes_a_wrong_line_and_confirms_a_right_one():
    ctx = Context(quick=True)
    line5 = claims.LINES[4]
    flipped = replace(line5, printed=lambda ly, adjoints: -line5.printed(ly, adjoints))
    assert claims.check_line(flipped, ctx).verdict == "refuted"
    line3 = claims.LINES[2]
    assert claims.check_line(replace(line3, printed=line3.corrected), ctx).verdict == "confirmed"


def test_printed_lines_read_the_true_adjoints_not_each_other():
    # line 7 reads σ.grad: it must hold although line 3, which prints σ.grad, does not
    layer = claims._layer(Context(quick=True))
    line7 = claims.LINES[6]
    true_edge = layer.true[line7.claims]
    torch.testing.assert_close(line7.printed(layer, layer.true), true_edge)
    wrong = {**layer.true, "σ.grad": claims.LINES[2].printed(layer, layer.true)}
    assert not torch.allclose(line7.printed(layer, wrong), true_edge)


def test_edges_add_up_to_the_full_gradients():
    true = claims._layer(Context(quick=True)).true
    total = true["L.grad via L̃"] + true["L.grad via σ"] + true["L.grad via μ"]
    torch.testing.assert_close(total, true["L.grad"], rtol=0, atol=1e-12)
    torch.testing.assert_close(
        true["μ.grad via L̃"] + true["μ.grad via σ"], true["μ.grad"], rtol=0, atol=1e-12
    )


def test_backward_claim_refutes_a_wrong_backward(monkeypatch):
    right = claims.layer_norm_backward

    def wrong(*args, **kwargs):
        dx, dA, dB = right(*args, **kwargs)
        return dx, dA * 1.001, dB

    monkeypatch.setattr(claims, "layer_norm_backward", wrong)
    assert _evaluate("P3.backward").verdict == "refuted"


def test_backward_evidence_has_an_error_per_scope_activation_and_gradient():
    rows = _evaluate("P3.backward").evidence.details["rows"]
    assert len(rows) == 24
    for row in rows:
        assert set(row["autograd"]) == set(row["finite_differences"]) == {"dx", "dA", "dB"}


def test_forward_claim_refutes_a_wrong_forward(monkeypatch):
    right = claims.layer_norm
    monkeypatch.setattr(claims, "layer_norm", lambda *a, **k: right(*a, **{**k, "eps": 1e-3}))
    assert _evaluate("P3.forward").verdict == "refuted"


@pytest.mark.parametrize("line", [*claims.LINES, *claims.COMBINED], ids=lambda line: line.id)
def test_every_equation_renders_with_mathtext(line):
    for latex in filter(None, (line.latex, line.corrected_latex)):
        mathtext.math_to_image(f"${latex}$", io.BytesIO(), format="svg")
    assert line.text
