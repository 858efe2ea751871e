"""The derivation checker: the file format, the truth it compares with, and what it catches."""

import json
import math
import textwrap
from pathlib import Path

import pytest
import torch

from infonorm import backprop
from infonorm.layer_norm import layer_norm_reference
from tests.backprop.derivations import TANH

EXAMPLES = Path(__file__).resolve().parents[2] / "examples" / "backprop"


def _parse(source: str = TANH, **replacements: str) -> backprop.Derivation:
    for old, new in replacements.items():
        assert old in source, old
        source = source.replace(old, new)
    return backprop.parse(textwrap.dedent(source), "derivation.py")


def _holding(report: backprop.Report) -> dict[int, bool]:
    return {line.update.number: line.holds_with_assertions for line in report.lines}


# ----------------------------------------------------------------------------------- the format


def test_a_file_parses_into_inputs_steps_and_updates():
    d = backprop.load(EXAMPLES / "layer_norm_printed.py")
    assert list(d.inputs) == ["L", "A", "B"]
    assert [s.name for s in d.steps] == ["mu", "sigma", "h", "Lt"]
    assert d.output == "Lt"
    # h's adjoint is never mentioned: an abbreviation, which the graph sees through
    assert d.nodes == ["L", "A", "B", "mu", "sigma", "Lt"]
    assert d.step("Lt").args == ("L", "A", "B", "mu", "sigma")
    assert [(u.target, u.op, u.reads) for u in d.updates][2:4] == [
        ("sigma", "=", ("Lt",)),
        ("mu", "=", ("Lt",)),
    ]
    assert d.updates[0].printed.startswith(r"A.grad[i] += \sum_t")
    assert d.claim(d.updates[3]) == "mu.grad via Lt"  # μ also feeds σ
    assert d.claim(d.updates[2]) == "sigma.grad"  # σ feeds L̃ alone
    (assertion,) = d.assertions
    assert assertion.after == 6


def test_shapes_follow_the_named_axes_and_broadcast():
    d = backprop.load(EXAMPLES / "layer_norm_printed.py")
    assert d.shape("L") == (8, 6)
    assert d.shape("A") == (6,)
    d = _parse(TANH, **{'inputs = {"x": "n", "w": "n"}': 'inputs = {"x": "n", "w": ""}'})
    assert d.shape("w") == ()
    d = backprop.load(EXAMPLES / "residual_gelu.py")
    assert d.shape("W") == (3, 3)


def test_an_input_over_the_first_axis_alone_keeps_the_second_as_one():
    d = backprop.parse(
        textwrap.dedent("""
        from infonorm.backprop import sum_over
        axes = {"t": 3, "i": 4}
        inputs = {"x": "t i", "s": "t"}
        def forward(x, s):
            y = x * s
        def backward(x, s, y):
            s.grad += sum_over("i", y.grad * x)
            x.grad += y.grad * s
        """),
        "per_row.py",
    )
    assert d.shape("s") == (3, 1)
    assert backprop.check(d).holds


@pytest.mark.parametrize(
    ("axes", "shape", "expected"),
    [
        ("t", (3, 4), lambda x: x.sum(0)),
        ("i", (3, 4), lambda x: x.sum(1, keepdim=True)),
        ("t i", (3, 4), lambda x: x.sum()),
        # Σ_t of a quantity that does not vary with t: T copies of it (index notation)
        ("t", (4,), lambda x: 3 * x),
        ("t i", (4,), lambda x: 3 * x.sum()),
    ],
)
def test_sum_over_is_the_index_notation_sum(axes, shape, expected):
    x = torch.randn(shape, dtype=torch.float64)
    token = backprop._AXES.set({"t": 3, "i": 4})
    try:
        torch.testing.assert_close(backprop.sum_over(axes, x), expected(x))
        with pytest.raises(ValueError, match="no axis 'j'"):
            backprop.sum_over("j", x)
    finally:
        backprop._AXES.reset(token)


def test_sum_over_outside_a_check_says_so():
    with pytest.raises(RuntimeError, match="inside a derivation"):
        backprop.sum_over("t", torch.ones(3))


def test_relu_prime_is_the_derivative_of_relu_away_from_zero():
    z = torch.tensor([-2.0, -1e-3, 1e-3, 3.0], dtype=torch.float64, requires_grad=True)
    (grad,) = torch.autograd.grad(backprop.relu(z).sum(), z)
    torch.testing.assert_close(backprop.relu_prime(z.detach()), grad)


# ------------------------------------------------------------------------------- the truth


def test_true_adjoints_are_autograd_on_an_independent_implementation():
    report = backprop.check(EXAMPLES / "layer_norm_corrected.py")
    for values, adjoints in zip(report.draws, report.adjoints, strict=True):
        leaves = [values[n].clone().requires_grad_() for n in ("L", "A", "B")]
        y = layer_norm_reference(*leaves, scope="layer", activation="relu", eps=0.0)
        grads = torch.autograd.grad(y, leaves, adjoints["Lt"])
        for name, grad in zip(("L", "A", "B"), grads, strict=True):
            torch.testing.assert_close(adjoints[name], grad, rtol=0, atol=1e-12)


def test_draws_are_seeded_of_both_signs_and_away_from_the_kink():
    first = backprop.check(EXAMPLES / "layer_norm_printed.py", seed=3)
    again = backprop.check(EXAMPLES / "layer_norm_printed.py", seed=3)
    other = backprop.check(EXAMPLES / "layer_norm_printed.py", seed=4)
    torch.testing.assert_close(first.draws[0]["L"], again.draws[0]["L"], rtol=0, atol=0)
    assert not torch.equal(first.draws[0]["L"], other.draws[0]["L"])
    for values in first.draws:
        assert (values["A"] > 0).any()
        assert (values["A"] < 0).any()
        assert (values["B"] > 0).any()
        assert (values["B"] < 0).any()
        z = values["A"] * values["h"] + values["B"]
        assert z.abs().min() >= backprop.KINK_MARGIN * z.square().mean().sqrt()
        # σ'(h) and σ'(A h + B) differ: line 3's wrong argument is visible
        assert ((values["h"] > 0) != (z > 0)).any()


def test_a_check_leaves_the_global_random_state_and_threads_alone():
    torch.manual_seed(5)
    expected = torch.rand(3)
    threads = torch.get_num_threads()
    torch.manual_seed(5)
    backprop.check(EXAMPLES / "softmax_cross_entropy.py")
    assert torch.equal(torch.rand(3), expected)
    assert torch.get_num_threads() == threads


# ------------------------------------------------------------------------- what it catches


def test_a_wrong_sign_a_wrong_factor_and_a_missing_adjoint_are_refuted():
    d = _parse()
    assert backprop.check(d).holds
    for number, wrong in [
        (1, "-y.grad * (1 - y**2)"),
        (1, "y.grad * (1 - y)"),
        (2, "2 * s.grad * x"),
        (3, "s.grad * w + 0 * y.grad"),  # reads y.grad: claims an edge y → x that is not there
    ]:
        if number == 3:
            with pytest.raises(backprop.DerivationError, match="does not read x"):
                d.with_update(number, wrong)
            continue
        report = backprop.check(d.with_update(number, wrong), draws=1)
        assert not report.line(number).holds, wrong
        assert not report.holds


def test_each_line_is_judged_alone_and_the_lines_after_a_wrong_one_inherit_it():
    report = backprop.check(_parse().with_update(1, "-y.grad * (1 - y**2)"))
    assert _holding(report) == {1: False, 2: True, 3: True}
    assert report.line(2).inherits_from == [1]
    assert report.line(3).inherits_from == [1]
    assert report.line(1).passes_error_to == [2, 3]
    assert report.line(2).chained_max_error > 1e-3
    assert not report.chain.holds


def test_lines_that_each_hold_but_do_not_add_up_fail_in_order():
    # y = tanh(w·x) + x; the last line overwrites (=) the skip connection's x.grad
    d = backprop.parse(
        textwrap.dedent("""
        import torch
        from infonorm.backprop import sum_over
        axes = {"n": 5}
        inputs = {"x": "n", "w": "n"}
        def forward(x, w):
            s = sum_over("n", w * x)
            a = torch.tanh(s)
            y = a + x
        def backward(x, w, s, a, y):
            a.grad = sum_over("n", y.grad)
            x.grad += y.grad
            s.grad = a.grad * (1 - a**2)
            w.grad += s.grad * x
            x.grad = s.grad * w
        """),
        "overwrite.py",
    )
    report = backprop.check(d)
    assert all(_holding(report).values())
    assert not report.chain.holds
    assert report.chain.errors["x"] > 1e-3
    assert report.chain.errors["w"] < 1e-12
    assert not report.holds


def test_a_line_that_reads_an_adjoint_before_it_is_complete_is_named():
    source = (EXAMPLES / "layer_norm_corrected.py").read_text()
    line8 = '    r"L.grad[t, i] += \\mu.grad \\frac{1}{TI}"\n    L.grad += mu.grad / (T * I)\n'
    assert line8 in source
    # line 8 moved before line 4: it reads μ.grad before any line computes it
    source = source.replace(line8, "")
    at = source.index('    (\n        r"\\mu.grad = -')
    d = backprop.parse(source[:at] + line8 + "\n" + source[at:], "early.py")
    report = backprop.check(d)
    early = next(
        line for line in report.lines if line.update.target == "L" and "mu" in line.update.reads
    )
    assert early.holds
    assert {"reads": "mu.grad", "before_line": early.update.number + 1} in early.reads_early
    assert report.chain.read_before_written
    assert not report.chain.holds


def test_a_value_of_the_wrong_shape_does_not_hold():
    # a scalar where x.grad is a vector broadcasts (line 8 of the quiz does so); an outer
    # product of shape (5, 5) where x.grad has shape (5,) does not fit
    report = backprop.check(_parse().with_update(3, "s.grad * w[:, None] * x"))
    line = report.line(3)
    assert not line.holds
    assert "shape (5, 5)" in line.reason
    assert math.isinf(line.max_error)
    json.dumps(report.to_dict(), allow_nan=True)


def test_an_assert_is_checked_at_the_forward_values_apart_from_its_line():
    d = backprop.load(EXAMPLES / "batch_norm.py")
    report = backprop.check(d)
    (zero,) = report.line(6).assertions
    assert zero.holds
    assert zero.max_error < 1e-12
    wrong = backprop.parse(
        (EXAMPLES / "batch_norm.py").read_text().replace("/ N == 0", "/ N == 1"), "bn.py"
    )
    report = backprop.check(wrong)
    assert report.line(6).holds  # the derivative itself
    assert not report.line(6).assertions[0].holds
    assert not report.line(6).holds_with_assertions
    assert not report.holds


def test_the_report_is_json():
    report = backprop.check(EXAMPLES / "layer_norm_printed.py")
    data = json.loads(json.dumps(report.to_dict(), allow_nan=False))
    assert data["holds"] is False
    assert [line["holds"] for line in data["lines"]] == [
        True,
        True,
        False,
        False,
        True,
        True,
        True,
        True,
    ]
    assert data["lines"][6]["inherits_from"] == [3]
    assert data["lines"][2]["passes_error_to"] == [7]
    assert data["chain"]["holds"] is False
    assert data["finite_differences"]["holds"] is True


@pytest.mark.parametrize(("draws", "seed"), [(0, 0), (1.5, 0), (True, 0), (1, -1), (1, "x")])
def test_bad_arguments_are_refused_by_name(draws, seed):
    with pytest.raises(ValueError, match=r"draws|seed"):
        backprop.check(EXAMPLES / "batch_norm.py", draws=draws, seed=seed)


def test_an_output_with_a_large_offset_is_not_taken_for_a_kink():
    # ⟨out.grad, out⟩ ~ 1e4 rounds its differences to ~1e-6 of the gradient: still smooth
    d = _parse(
        **{
            "y = torch.tanh(s)": "y = torch.tanh(s) + 1e4",
            "y.grad * (1 - y**2)": "y.grad * (1 - (y - 1e4) ** 2)",
        }
    )
    report = backprop.check(d)
    assert report.holds
    assert report.finite_differences.tolerance > backprop.FINITE_DIFFERENCE_TOLERANCE
